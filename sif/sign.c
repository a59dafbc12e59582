/* SPDX-License-Identifier: BSD-3-Clause */
/* sif/sign.c: sign a SIF image as Apptainer/SingularityCE do — one
 * Signature object per object group, with no group of its own, linked to
 * the group, over the group's metadata JSON (sif/digest.c): clear-signed
 * with an OpenPGP key (sif/pgp.c) or in a DSSE envelope of PEM keys
 * (sif/dsse.c).  Its extra field holds the hash type and, for OpenPGP, the
 * signing key's fingerprint. */
#include "sif_priv.h"

#include <sys/mman.h>

static int add_signature(const char *path, const void *data, size_t len, uint32_t gid, int hashtype,
                         const uint8_t fpr[20], const struct sif_sign_opts *so, uint32_t *id,
                         struct sifu_err *err)
{
	_cleanup_close_ int fd = memfd_create("sifu-signature", MFD_CLOEXEC);
	if (fd < 0)
		return sifu_err_sys(err, "memfd_create");
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, (const char *)data + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sifu_err_sys(err, "write signature");
		done += (size_t)n;
	}
	if (lseek(fd, 0, SEEK_SET) < 0)
		return sifu_err_sys(err, "seek signature");
	struct sif_add_opts o;
	sif_add_opts_init(&o);
	o.datatype = SIF_DT_SIGNATURE;
	o.groupid = 0;
	o.link = SIF_GROUP_MASK | gid;
	o.hashtype = hashtype;
	if (fpr)
		memcpy(o.entity, fpr, 20);
	o.time = so->time;
	o.write = so->write;
	return sif_add_object(path, fd, &o, id, err);
}

static int hashtype_of_gpg(const char *body, size_t len)
{
	/* "Hash: SHA256" line of the clear-signed header */
	const char *h = memmem(body, len, "\nHash: ", 7);
	if (!h)
		return SIF_HASH_SHA256;
	h += 7;
	if (!strncmp(h, "SHA384", 6))
		return SIF_HASH_SHA384;
	if (!strncmp(h, "SHA512", 6))
		return SIF_HASH_SHA512;
	return SIF_HASH_SHA256;
}

static int sign_group(const char *path, const struct sif_image *img, const struct sif_sign_opts *o,
                      uint32_t gid, const uint32_t *ids, size_t nids, uint32_t *sig_id,
                      struct sifu_err *err)
{
	_cleanup_free_ char *md = NULL;
	size_t mdlen;
	int r = sif_metadata_json(img, gid, ids, nids, o->hashtype, &md, &mdlen, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *sig = NULL;
	size_t siglen;
	uint8_t fpr[20] = {0};
	int ht = SIF_HASH_SHA256;
	if (o->nkeys) {
		r = sif_dsse_sign(o->keys, o->nkeys, md, mdlen, &sig, &siglen, err);
	} else {
		r = sif_pgp_clearsign(o->keyring, o->pgp_fpr, md, mdlen, &sig, &siglen, fpr, err);
		if (r == 0)
			ht = hashtype_of_gpg(sig, siglen);
	}
	if (r < 0)
		return r;
	return add_signature(path, sig, siglen, gid, ht, o->nkeys ? NULL : fpr, o, sig_id, err);
}

/* Which groups to sign: those of the objects asked for, the group asked
 * for, or every group; sorted, each once.  Computed before the first
 * signature is added (adding one changes nothing signed). */
static int groups_to_sign(const char *path, const struct sif_image *img,
                          const struct sif_sign_opts *o, uint32_t *groups, size_t *ngroups,
                          struct sifu_err *err)
{
	size_t ng = 0;
	if (o->nobject_ids) {
		for (size_t i = 0; i < o->nobject_ids; i++) {
			const struct sif_descr *d = sif_get(img, o->object_ids[i]);
			if (!d)
				return sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT,
				                    "%s has no object %u", path, o->object_ids[i]);
			if (!sif_plain_group(d->groupid))
				return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
				                    "object %u is in no object group: only grouped "
				                    "objects can be signed",
				                    d->id);
			groups[ng++] = sif_plain_group(d->groupid);
		}
	} else if (o->group_id) {
		if (!sif_group_min_id(img, o->group_id))
			return sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT,
			                    "%s has no object group %u", path, o->group_id);
		groups[ng++] = o->group_id;
	} else {
		for (int64_t i = 0; i < img->h.dtotal; i++)
			if (img->d[i].used && sif_plain_group(img->d[i].groupid))
				groups[ng++] = sif_plain_group(img->d[i].groupid);
	}
	sif_ids_sort(groups, ng);
	size_t u = 0;
	for (size_t i = 0; i < ng; i++)
		if (!u || groups[u - 1] != groups[i])
			groups[u++] = groups[i];
	if (!u) {
		sifu_err_set(err, SIFU_E_USAGE, ENOENT, "%s has no object groups to sign", path);
		sifu_err_hint(err, "signatures cover object groups; this image has none");
		return -ENOENT;
	}
	*ngroups = u;
	return 0;
}

/* The objects asked for that are in group GID, sorted, into *IDS (NULL and
 * 0 when no objects were asked for: the whole group is signed). */
static size_t objects_in_group(const struct sif_image *img, const struct sif_sign_opts *o,
                               uint32_t gid, uint32_t **ids)
{
	*ids = NULL;
	if (!o->nobject_ids)
		return 0;
	size_t n = 0;
	*ids = sifu_xcalloc(o->nobject_ids, sizeof(uint32_t));
	for (size_t i = 0; i < o->nobject_ids; i++)
		if (sif_plain_group(sif_get(img, o->object_ids[i])->groupid) == gid)
			(*ids)[n++] = o->object_ids[i];
	sif_ids_sort(*ids, n);
	return n;
}

int sif_sign_image(const char *path, const struct sif_sign_opts *o, uint32_t **sig_ids,
                   size_t *nsig, struct sifu_err *err)
{
	_cleanup_sif_ struct sif_image *img = NULL;
	int r = sif_open_path(path, false, &img, err);
	if (r < 0)
		return r;
	_cleanup_free_ uint32_t *groups =
	    sifu_xcalloc((size_t)img->h.dtotal + o->nobject_ids + 1, sizeof(uint32_t));
	size_t ng = 0;
	if ((r = groups_to_sign(path, img, o, groups, &ng, err)) < 0)
		return r;
	*sig_ids = sifu_xcalloc(ng, sizeof(uint32_t));
	*nsig = 0;
	for (size_t g = 0; g < ng && r == 0; g++) {
		_cleanup_free_ uint32_t *ids = NULL;
		size_t nids = objects_in_group(img, o, groups[g], &ids);
		r = sign_group(path, img, o, groups[g], ids, nids, &(*sig_ids)[*nsig], err);
		if (r == 0)
			(*nsig)++;
	}
	return r;
}
