/* SPDX-License-Identifier: BSD-3-Clause */
/* sif/signature.c: the signed metadata of a SIF image, signing and
 * verification, interoperable with Apptainer/SingularityCE.
 *
 * Facts from the reference (sylabs/sif v2, pkg/integrity and pkg/sif):
 *  - the header digest covers launch script (32), magic (10), version (3)
 *    and image id (16), nothing else (times and counters change on every
 *    edit);
 *  - a descriptor digest covers, little endian: datatype (i32), used (bool,
 *    one byte), the object's id relative to the smallest id of its group
 *    (u32), link (u32), size (i64), ctime (i64), uid (i64), gid (i64), then
 *    name (128) and extra (384) — not the group, offset, padding or mtime,
 *    so an image can be rewritten around its objects;
 *  - the metadata JSON is {"version":1,"header":{"digest":"sha256:…"},
 *    "objects":[{"relativeId":N,"descriptorDigest":…,"objectDigest":…}]}
 *    in that field order with objects sorted by id, as Go's encoding/json
 *    writes it (no spaces);
 *  - one signature per group, in a Signature object with no group, linked to
 *    the group; every object of the group must be covered when the whole
 *    group is verified; non-signature objects outside any group make
 *    verification fail;
 *  - legacy signatures (before 3.6) clear-sign "SIFHASH:\n<hex digest>" of an
 *    object (linked to it) or of the concatenated objects of a group. */
#include "sif.h"

#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define SIG_MAX    (16u << 20)
#define READ_CHUNK (8u << 20)

/* ------------------------------------------------------------- digests -- */

struct hash_alg {
	int hashtype;     /* enum sif_hashtype, 0 if none */
	const char *name; /* as the metadata JSON names it */
	const char *evp;
};

static const struct hash_alg hash_algs[] = {
    {SIF_HASH_SHA256, "sha256", "SHA256"}, {SIF_HASH_SHA384, "sha384", "SHA384"},
    {SIF_HASH_SHA512, "sha512", "SHA512"}, {0, "sha224", "SHA224"},
    {0, "sha512_224", "SHA512-224"},       {0, "sha512_256", "SHA512-256"},
};

static const struct hash_alg *alg_by_type(int t)
{
	for (size_t i = 0; i < ARRAY_SIZE(hash_algs); i++)
		if (hash_algs[i].hashtype && hash_algs[i].hashtype == t)
			return &hash_algs[i];
	return NULL;
}

static const struct hash_alg *alg_by_name(const char *n, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(hash_algs); i++)
		if (strlen(hash_algs[i].name) == len && !memcmp(hash_algs[i].name, n, len))
			return &hash_algs[i];
	return NULL;
}

struct digest {
	const struct hash_alg *alg;
	unsigned len;
	uint8_t v[EVP_MAX_MD_SIZE];
};

static void digest_mem(const struct hash_alg *alg, const void *p, size_t n, struct digest *d)
{
	d->alg = alg;
	EVP_Digest(p, n, d->v, &d->len, EVP_get_digestbyname(alg->evp), NULL);
}

static void digest_fmt(const struct digest *d, char *buf, size_t len)
{
	int o = snprintf(buf, len, "%s:", d->alg->name);
	for (unsigned i = 0; i < d->len && (size_t)o < len; i++)
		o += snprintf(buf + o, len - (size_t)o, "%02x", d->v[i]);
}

static int hex_decode(const char *s, size_t n, uint8_t *out, size_t max)
{
	if (n % 2 || n / 2 > max)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int a = sif_hexval(s[2 * i]), b = sif_hexval(s[2 * i + 1]);
		if (a < 0 || b < 0)
			return -1;
		out[i] = (uint8_t)(a << 4 | b);
	}
	return (int)(n / 2);
}

/* "alg:hex" as the metadata holds it. */
static int digest_parse(const char *s, struct digest *d)
{
	const char *colon = s ? strchr(s, ':') : NULL;
	if (!colon || strchr(colon + 1, ':'))
		return -1;
	d->alg = alg_by_name(s, (size_t)(colon - s));
	if (!d->alg)
		return -1;
	int n = hex_decode(colon + 1, strlen(colon + 1), d->v, sizeof(d->v));
	if (n < 0 || n != EVP_MD_get_size(EVP_get_digestbyname(d->alg->evp)))
		return -1;
	d->len = (unsigned)n;
	return 0;
}

static bool digest_eq(const struct digest *a, const struct digest *b)
{
	return a->alg == b->alg && a->len == b->len && !memcmp(a->v, b->v, a->len);
}

/* ------------------------------------------------------ raw structures -- */

void sif_header_signed_bytes(const uint8_t raw[SIF_HDR_SIZE], uint8_t out[SIF_HDR_SIGNED_LEN])
{
	memcpy(out, raw + SIF_HDR_LAUNCH, 32);
	memcpy(out + 32, raw + SIF_HDR_MAGIC, 10);
	memcpy(out + 42, raw + SIF_HDR_VERSION, 3);
	memcpy(out + 45, raw + SIF_HDR_ID, 16);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void sif_descr_signed_bytes(const uint8_t raw[SIF_DESCR_SIZE], uint32_t relid,
                            uint8_t out[SIF_DESCR_SIGNED_LEN])
{
	uint8_t *p = out;
	memcpy(p, raw + SIF_D_DATATYPE, 4), p += 4;
	*p++ = raw[SIF_D_USED]; /* as stored: 1 in every image the reference writes */
	put_le32(p, relid), p += 4;
	memcpy(p, raw + SIF_D_LINK, 4), p += 4;
	memcpy(p, raw + SIF_D_SIZE, 8), p += 8;
	memcpy(p, raw + SIF_D_CTIME, 8), p += 8;
	memcpy(p, raw + SIF_D_UID, 8), p += 8;
	memcpy(p, raw + SIF_D_GID, 8), p += 8;
	memcpy(p, raw + SIF_D_NAME, SIF_NAME_LEN + SIF_EXTRA_LEN);
}

static uint32_t plain_group(uint32_t raw)
{
	return raw & ~SIF_GROUP_MASK;
}

static uint32_t group_min_id(const struct sif_image *img, uint32_t gid)
{
	uint32_t min = 0;
	for (int64_t i = 0; i < img->h.dtotal; i++) {
		const struct sif_descr *d = &img->d[i];
		if (d->used && plain_group(d->groupid) == gid && (!min || d->id < min))
			min = d->id;
	}
	return min;
}

/* ------------------------------------------------- the digest context --
 * Verification of several signatures over one group must not read the
 * objects more than once: object digests are cached per (object, alg). */

struct obj_cache {
	uint32_t id;
	struct digest d[ARRAY_SIZE(hash_algs)];
	bool have[ARRAY_SIZE(hash_algs)];
};

struct ictx {
	const struct sif_image *img;
	uint8_t hdr[SIF_HDR_SIZE];
	uint8_t *dtab;           /* raw descriptor table */
	struct obj_cache *cache; /* one per descriptor, table order */
	uint8_t *buf;
	size_t buflen;
	/* sif_verify_fd's served partition: its block digests are taken from
	 * the very buffers whose digest is compared with the signed one */
	struct sif_served_part *part;
	bool part_done; /* the last pass over it read it whole */
};

static void ictx_free(struct ictx *c)
{
	free(c->dtab);
	free(c->cache);
	free(c->buf);
}

static int ictx_init(struct ictx *c, const struct sif_image *img, struct sifu_err *err)
{
	memset(c, 0, sizeof(*c));
	c->img = img;
	int r = sif_read_at(img, c->hdr, SIF_HDR_SIZE, 0, err);
	if (r < 0)
		return r;
	size_t tl = (size_t)img->h.dtotal * SIF_DESCR_SIZE;
	c->dtab = sifu_xmalloc(tl ? tl : 1);
	if ((r = sif_read_at(img, c->dtab, tl, (uint64_t)img->h.doff, err)) < 0)
		return r;
	c->cache = sifu_xcalloc((size_t)img->h.dtotal + 1, sizeof(*c->cache));
	return 0;
}

static size_t descr_index(const struct ictx *c, const struct sif_descr *d)
{
	return (size_t)(d - c->img->d);
}

/* The served partition's block digests, for bytes [pos, pos+len) of it
 * (pos is a multiple of the block size: READ_CHUNK is one of those). */
static void part_blocks(struct ictx *c, const struct sif_descr *d, uint64_t pos, const uint8_t *p,
                        size_t len)
{
	struct sif_served_part *sp = c->part;
	if (!sp || d->id != sp->id)
		return;
	for (size_t done = 0; done < len;) {
		size_t n = len - done < sp->block ? len - done : (size_t)sp->block;
		sif_sha256(p + done, n, sp->sha256[(pos + done) / sp->block]);
		done += n;
	}
}

/* Feed object D's bytes into MD, in large sequential reads; the kernel is
 * asked for the next chunk while this one is hashed, so reading and hashing
 * overlap and the object streams at storage speed. */
static int hash_object(struct ictx *c, const struct sif_descr *d, EVP_MD_CTX *md,
                       struct sifu_err *err)
{
	const struct sif_image *img = c->img;
	if (d->offset < 0 || d->size < 0 || (uint64_t)d->offset > img->file_size ||
	    (uint64_t)d->size > img->file_size - (uint64_t)d->offset)
		return sifu_err_set(err, SIFU_E_RANGE, ERANGE,
		                    "object %u lies past the end of the image", d->id);
	bool served = c->part && d->id == c->part->id;
	if (served)
		c->part_done = false;
	if (img->mem) {
		EVP_DigestUpdate(md, img->mem + d->offset, (size_t)d->size);
		part_blocks(c, d, 0, img->mem + d->offset, (size_t)d->size);
		c->part_done |= served;
		return 0;
	}
	size_t bufsz = (uint64_t)d->size < READ_CHUNK ? (size_t)d->size + 1 : READ_CHUNK;
	if (c->buflen < bufsz) {
		free(c->buf);
		c->buf = sifu_xmalloc(c->buflen = bufsz);
	}
	posix_fadvise(img->fd, d->offset, d->size, POSIX_FADV_SEQUENTIAL);
	uint64_t off = (uint64_t)d->offset, left = (uint64_t)d->size;
	while (left) {
		size_t want = left < c->buflen ? (size_t)left : c->buflen;
		int r = sif_read_at(img, c->buf, want, off, err);
		if (r < 0)
			return r;
		if (left > want)
			posix_fadvise(img->fd, (off_t)(off + want),
			              (off_t)(left - want < READ_CHUNK ? left - want : READ_CHUNK),
			              POSIX_FADV_WILLNEED);
		EVP_DigestUpdate(md, c->buf, want);
		part_blocks(c, d, off - (uint64_t)d->offset, c->buf, want);
		off += want, left -= want;
	}
	c->part_done |= served;
	return 0;
}

static EVP_MD_CTX *md_new(const struct hash_alg *alg, struct sifu_err *err)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || !EVP_DigestInit_ex(md, EVP_get_digestbyname(alg->evp), NULL)) {
		EVP_MD_CTX_free(md);
		sifu_err_set(err, SIFU_E_UNSUPPORTED, ENOTSUP, "no %s in libcrypto", alg->name);
		return NULL;
	}
	return md;
}

static int object_digest(struct ictx *c, const struct sif_descr *d, const struct hash_alg *alg,
                         struct digest *out, struct sifu_err *err)
{
	size_t ai = (size_t)(alg - hash_algs);
	struct obj_cache *oc = &c->cache[descr_index(c, d)];
	if (oc->have[ai]) {
		*out = oc->d[ai];
		return 0;
	}
	EVP_MD_CTX *md = md_new(alg, err);
	if (!md)
		return -ENOTSUP;
	int r = hash_object(c, d, md, err);
	if (r == 0) {
		out->alg = alg;
		EVP_DigestFinal_ex(md, out->v, &out->len);
		oc->d[ai] = *out;
		oc->have[ai] = true;
	}
	EVP_MD_CTX_free(md);
	return r;
}

static void descr_digest(const struct ictx *c, const struct sif_descr *d, uint32_t minid,
                         const struct hash_alg *alg, struct digest *out)
{
	uint8_t b[SIF_DESCR_SIGNED_LEN];
	sif_descr_signed_bytes(c->dtab + descr_index(c, d) * SIF_DESCR_SIZE, d->id - minid, b);
	digest_mem(alg, b, sizeof(b), out);
}

static void header_digest(const struct ictx *c, const struct hash_alg *alg, struct digest *out)
{
	uint8_t b[SIF_HDR_SIGNED_LEN];
	sif_header_signed_bytes(c->hdr, b);
	digest_mem(alg, b, sizeof(b), out);
}

/* --------------------------------------------------- the metadata JSON -- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* The objects of group GID, sorted by id (malloc'ed). */
static size_t group_objects(const struct sif_image *img, uint32_t gid, uint32_t **ids)
{
	size_t n = 0;
	*ids = sifu_xcalloc((size_t)img->h.dtotal + 1, sizeof(uint32_t));
	for (int64_t i = 0; i < img->h.dtotal; i++)
		if (img->d[i].used && plain_group(img->d[i].groupid) == gid)
			(*ids)[n++] = img->d[i].id;
	qsort(*ids, n, sizeof(uint32_t), cmp_u32);
	return n;
}

static int metadata_build(struct ictx *c, uint32_t gid, const uint32_t *ids, size_t nids,
                          const struct hash_alg *alg, char **out, size_t *outlen,
                          struct sifu_err *err)
{
	uint32_t minid = group_min_id(c->img, gid);
	if (!minid)
		return sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT, "object group %u does not exist",
		                    gid);
	char dig[2 * EVP_MAX_MD_SIZE + 16];
	struct digest d;
	header_digest(c, alg, &d);
	digest_fmt(&d, dig, sizeof(dig));
	/* Written by hand: field order and Go's compact form are part of what
	 * is signed, and the values (digests, numbers) need no escaping. */
	size_t cap = 128 + nids * 400, len = 0;
	char *s = sifu_xmalloc(cap);
	len += (size_t)snprintf(s, cap,
	                        "{\"version\":1,\"header\":{\"digest\":\"%s\"},\"objects\":[", dig);
	for (size_t i = 0; i < nids; i++) {
		const struct sif_descr *od = sif_get(c->img, ids[i]);
		if (!od || plain_group(od->groupid) != gid) {
			free(s);
			return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
			                    "object %u is not in object group %u", ids[i], gid);
		}
		struct digest dd, ob;
		descr_digest(c, od, minid, alg, &dd);
		int r = object_digest(c, od, alg, &ob, err);
		if (r < 0) {
			free(s);
			return r;
		}
		char a[sizeof(dig)], b[sizeof(dig)];
		digest_fmt(&dd, a, sizeof(a));
		digest_fmt(&ob, b, sizeof(b));
		len += (size_t)snprintf(s + len, cap - len,
		                        "%s{\"relativeId\":%" PRIu32
		                        ",\"descriptorDigest\":\"%s\",\"objectDigest\":\"%s\"}",
		                        i ? "," : "", od->id - minid, a, b);
	}
	len += (size_t)snprintf(s + len, cap - len, "]}");
	*out = s;
	*outlen = len;
	return 0;
}

int sif_metadata_json(const struct sif_image *img, uint32_t gid, const uint32_t *ids, size_t nids,
                      int hashtype, char **out, size_t *outlen, struct sifu_err *err)
{
	const struct hash_alg *alg = alg_by_type(hashtype ? hashtype : SIF_HASH_SHA256);
	if (!alg)
		return sifu_err_set(
		    err, SIFU_E_UNSUPPORTED, ENOTSUP,
		    "hash type %d: only SHA-256, SHA-384 and SHA-512 digest metadata", hashtype);
	struct ictx c;
	int r = ictx_init(&c, img, err);
	_cleanup_free_ uint32_t *all = NULL;
	if (r == 0) {
		if (!ids || !nids)
			nids = group_objects(img, gid, &all), ids = all;
		r = metadata_build(&c, gid, ids, nids, alg, out, outlen, err);
	}
	ictx_free(&c);
	return r;
}

/* --------------------------------------------------------------- sign -- */

static int add_signature(const char *path, const void *data, size_t len, uint32_t gid, int hashtype,
                         const uint8_t fpr[20], int64_t t, uint32_t *id, struct sifu_err *err)
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
	o.time = t;
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
		r = sif_pgp_clearsign(o->pgp_fpr, md, mdlen, &sig, &siglen, fpr, err);
		if (r == 0)
			ht = hashtype_of_gpg(sig, siglen);
	}
	if (r < 0)
		return r;
	return add_signature(path, sig, siglen, gid, ht, o->nkeys ? NULL : fpr, o->time, sig_id,
	                     err);
}

int sif_sign_image(const char *path, const struct sif_sign_opts *o, uint32_t **sig_ids,
                   size_t *nsig, struct sifu_err *err)
{
	_cleanup_sif_ struct sif_image *img = NULL;
	int r = sif_open_path(path, false, &img, err);
	if (r < 0)
		return r;
	/* Which groups, and which objects of each: computed before the first
	 * signature is added (adding one changes nothing signed). */
	uint32_t *groups =
	    sifu_xcalloc((size_t)img->h.dtotal + o->nobject_ids + 1, sizeof(uint32_t));
	size_t ng = 0;
	if (o->nobject_ids) {
		for (size_t i = 0; i < o->nobject_ids; i++) {
			const struct sif_descr *d = sif_get(img, o->object_ids[i]);
			if (!d) {
				free(groups);
				return sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT,
				                    "%s has no object %u", path, o->object_ids[i]);
			}
			if (!plain_group(d->groupid)) {
				free(groups);
				return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
				                    "object %u is in no object group: only grouped "
				                    "objects can be signed",
				                    d->id);
			}
			groups[ng++] = plain_group(d->groupid);
		}
	} else if (o->group_id) {
		if (!group_min_id(img, o->group_id)) {
			free(groups);
			return sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT,
			                    "%s has no object group %u", path, o->group_id);
		}
		groups[ng++] = o->group_id;
	} else {
		for (int64_t i = 0; i < img->h.dtotal; i++)
			if (img->d[i].used && plain_group(img->d[i].groupid))
				groups[ng++] = plain_group(img->d[i].groupid);
	}
	qsort(groups, ng, sizeof(uint32_t), cmp_u32);
	size_t u = 0;
	for (size_t i = 0; i < ng; i++)
		if (!u || groups[u - 1] != groups[i])
			groups[u++] = groups[i];
	ng = u;
	if (!ng) {
		free(groups);
		sifu_err_set(err, SIFU_E_USAGE, ENOENT, "%s has no object groups to sign", path);
		sifu_err_hint(err, "signatures cover object groups; this image has none");
		return -ENOENT;
	}
	*sig_ids = sifu_xcalloc(ng, sizeof(uint32_t));
	*nsig = 0;
	for (size_t g = 0; g < ng && r == 0; g++) {
		_cleanup_free_ uint32_t *ids = NULL;
		size_t nids = 0;
		if (o->nobject_ids) {
			ids = sifu_xcalloc(o->nobject_ids, sizeof(uint32_t));
			for (size_t i = 0; i < o->nobject_ids; i++)
				if (plain_group(sif_get(img, o->object_ids[i])->groupid) ==
				    groups[g])
					ids[nids++] = o->object_ids[i];
			qsort(ids, nids, sizeof(uint32_t), cmp_u32);
		}
		r = sign_group(path, img, o, groups[g], ids, nids, &(*sig_ids)[*nsig], err);
		if (r == 0)
			(*nsig)++;
	}
	free(groups);
	return r;
}

/* ------------------------------------------------------------- verify -- */

void sif_verify_report_free(struct sif_verify_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nsigs; i++)
		free(r->sigs[i].covered);
	free(r->sigs);
	for (size_t i = 0; i < r->nproblems; i++)
		free(r->problems[i]);
	free(r->problems);
	memset(r, 0, sizeof(*r));
}

__attribute__((format(printf, 2, 3))) static void problem(struct sif_verify_report *r,
                                                          const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	r->problems = sifu_xrealloc(r->problems, (r->nproblems + 1) * sizeof(char *));
	r->problems[r->nproblems++] = s;
}

static struct sif_verify_sig *new_sig(struct sif_verify_report *r, const struct sif_descr *d)
{
	r->sigs = sifu_xrealloc(r->sigs, (r->nsigs + 1) * sizeof(*r->sigs));
	struct sif_verify_sig *s = &r->sigs[r->nsigs++];
	memset(s, 0, sizeof(*s));
	s->sig_id = d->id;
	s->link = d->link;
	uint8_t fp[20];
	bool has;
	s->hashtype = sif_descr_signature(d, fp, &has);
	if (has)
		for (int i = 0; i < 20; i++)
			snprintf(s->expected + 2 * i, 3, "%02X", fp[i]);
	return s;
}

static void cover(struct sif_verify_sig *s, uint32_t id)
{
	s->covered = sifu_xrealloc(s->covered, (s->ncovered + 1) * sizeof(uint32_t));
	s->covered[s->ncovered++] = id;
}

/* A verification task: a group (all its objects, or a subset), or for
 * legacy signatures one object. */
struct task {
	uint32_t gid;  /* group (0 for a legacy object task) */
	uint32_t *ids; /* objects to check, sorted */
	size_t nids;
	bool subset;     /* the signature may cover more than ids */
	uint32_t object; /* legacy object task: the object */
};

struct vctx {
	struct ictx ic;
	const char *path;
	const struct sif_verify_opts *o;
	struct sif_verify_report *r;
	bool pgp_ready;
};

static int read_sig(struct vctx *v, const struct sif_descr *d, char **buf, size_t *len)
{
	struct sifu_err e = {0};
	int r = sif_read_object(v->ic.img, d, SIG_MAX, buf, len, &e);
	if (r < 0) {
		char line[SIFU_ERR_MSG_MAX];
		sifu_err_format(&e, line, sizeof(line));
		problem(v->r, "signature object %u: %s", d->id, line);
	}
	return r;
}

static enum sif_sig_kind sig_kind(const char *b, size_t n)
{
	bool legacy = false;
	if (sif_dsse_is_envelope(b, n))
		return SIF_SIG_DSSE;
	if (sif_pgp_is_clearsigned(b, n, &legacy))
		return legacy ? SIF_SIG_LEGACY : SIF_SIG_PGP;
	return SIF_SIG_UNKNOWN;
}

/* Check the cryptographic signature; the signed text on success. */
static int check_signature(struct vctx *v, struct sif_verify_sig *s, const char *b, size_t n,
                           char **plain, size_t *plen)
{
	struct sifu_err e = {0};
	char line[SIFU_ERR_MSG_MAX];
	if (s->kind == SIF_SIG_DSSE) {
		if (!v->o->nkeys) {
			problem(v->r,
			        "signature object %u is a DSSE envelope: verify it with --key "
			        "PUBLIC.pem",
			        s->sig_id);
			return -1;
		}
		char *signers = NULL;
		if (sif_dsse_verify(b, n, v->o->keys, v->o->nkeys, plain, plen, &signers, &e) < 0) {
			sifu_err_format(&e, line, sizeof(line));
			problem(v->r, "signature object %u: %s", s->sig_id, line);
			snprintf(s->expected, sizeof(s->expected), "%s", signers ? signers : "");
			free(signers);
			return -1;
		}
		snprintf(s->signer, sizeof(s->signer), "%s", signers);
		free(signers);
		return 0;
	}
	char fpr[41] = "";
	if (sif_pgp_verify(b, n, plain, plen, fpr, &e) < 0) {
		sifu_err_format(&e, line, sizeof(line));
		if (e.code == SIFU_E_NOTFOUND)
			problem(v->r,
			        "signature object %u: no trusted key: signed by %s, which is not "
			        "in the keyring (sifu key import KEYFILE)",
			        s->sig_id,
			        *s->expected ? s->expected : (*fpr ? fpr : "an unknown key"));
		else
			problem(v->r, "signature object %u: %s", s->sig_id, line);
		return -1;
	}
	snprintf(s->signer, sizeof(s->signer), "%s", fpr);
	if (strcasecmp(fpr, s->expected)) {
		problem(v->r, "signature object %u: made by %s, but its descriptor names %s",
		        s->sig_id, fpr, *s->expected ? s->expected : "no key");
		free(*plain);
		*plain = NULL;
		return -1;
	}
	return 0;
}

static json_t *parse_metadata(struct vctx *v, uint32_t sig_id, const char *p, size_t n)
{
	json_error_t je;
	json_t *m = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je);
	json_t *ver = m ? json_object_get(m, "version") : NULL;
	if (!json_is_integer(ver) || json_integer_value(ver) != 1 ||
	    !json_is_object(json_object_get(m, "header")) ||
	    !json_is_array(json_object_get(m, "objects"))) {
		problem(
		    v->r,
		    "signature object %u: the signed metadata is not SIF metadata version 1%s%s",
		    sig_id, m ? "" : ": ", m ? "" : je.text);
		json_decref(m);
		return NULL;
	}
	return m;
}

/* Does the signed metadata M hold for the objects of task T? */
static void check_metadata(struct vctx *v, struct sif_verify_sig *s, const struct task *t,
                           json_t *m)
{
	struct sif_verify_report *r = v->r;
	const struct sif_image *img = v->ic.img;
	uint32_t minid = group_min_id(img, t->gid);
	json_t *objs = json_object_get(m, "objects");
	size_t nobj = json_array_size(objs);
	size_t before = r->nproblems;
	_cleanup_free_ uint32_t *signed_ids = sifu_xcalloc(nobj + 1, sizeof(uint32_t));
	for (size_t i = 0; i < nobj; i++) {
		json_t *rel = json_object_get(json_array_get(objs, i), "relativeId");
		if (!json_is_integer(rel) || json_integer_value(rel) < 0 ||
		    json_integer_value(rel) > UINT32_MAX - minid) {
			problem(r, "signature object %u: malformed object entry %zu", s->sig_id, i);
			return;
		}
		signed_ids[i] = minid + (uint32_t)json_integer_value(rel);
	}
	/* the signed set must be exactly the group when the group is checked */
	if (!t->subset) {
		for (size_t i = 0; i < t->nids; i++) {
			bool found = false;
			for (size_t j = 0; j < nobj && !found; j++)
				found = signed_ids[j] == t->ids[i];
			if (!found)
				problem(
				    r,
				    "object %u of group %u is not covered by signature object %u",
				    t->ids[i], t->gid, s->sig_id);
		}
		for (size_t j = 0; j < nobj; j++) {
			bool found = false;
			for (size_t i = 0; i < t->nids && !found; i++)
				found = signed_ids[j] == t->ids[i];
			if (!found)
				problem(r,
				        "signature object %u covers object %u, which is not in "
				        "group %u "
				        "(the objects it claims are gone or moved)",
				        s->sig_id, signed_ids[j], t->gid);
		}
	}
	struct digest want, got;
	json_t *hd = json_object_get(json_object_get(m, "header"), "digest");
	if (digest_parse(json_string_value(hd), &want) < 0) {
		problem(r, "signature object %u: malformed header digest", s->sig_id);
		return;
	}
	header_digest(&v->ic, want.alg, &got);
	if (!digest_eq(&want, &got))
		problem(r,
		        "header: digest differs from the one signature object %u signed "
		        "(launch script, magic, version or image id changed)",
		        s->sig_id);
	for (size_t i = 0; i < t->nids; i++) {
		size_t j = 0;
		while (j < nobj && signed_ids[j] != t->ids[i])
			j++;
		if (j == nobj) {
			if (t->subset)
				problem(r, "object %u is not signed by signature object %u",
				        t->ids[i], s->sig_id);
			continue;
		}
		json_t *e = json_array_get(objs, j);
		const struct sif_descr *d = sif_get(img, t->ids[i]);
		bool ok = true;
		if (digest_parse(json_string_value(json_object_get(e, "descriptorDigest")), &want) <
		    0) {
			problem(r, "signature object %u: malformed descriptor digest", s->sig_id);
			continue;
		}
		descr_digest(&v->ic, d, minid, want.alg, &got);
		if (!digest_eq(&want, &got)) {
			problem(r,
			        "descriptor of object %u: digest differs from the one signature "
			        "object %u signed",
			        d->id, s->sig_id);
			ok = false;
		}
		if (digest_parse(json_string_value(json_object_get(e, "objectDigest")), &want) <
		    0) {
			problem(r, "signature object %u: malformed object digest", s->sig_id);
			continue;
		}
		struct sifu_err e2 = {0};
		if (object_digest(&v->ic, d, want.alg, &got, &e2) < 0) {
			char line[SIFU_ERR_MSG_MAX];
			sifu_err_format(&e2, line, sizeof(line));
			problem(r, "object %u: %s", d->id, line);
			continue;
		}
		if (!digest_eq(&want, &got)) {
			char a[2 * EVP_MAX_MD_SIZE + 16], b[sizeof(a)];
			digest_fmt(&want, a, sizeof(a));
			digest_fmt(&got, b, sizeof(b));
			problem(r, "object %u: digest differs: signed %s, image has %s", d->id, a,
			        b);
			ok = false;
		}
		if (ok)
			cover(s, d->id);
	}
	s->ok = r->nproblems == before;
}

static void verify_one(struct vctx *v, const struct sif_descr *sd, const struct task *t)
{
	_cleanup_free_ char *b = NULL;
	size_t n;
	struct sif_verify_sig *s = new_sig(v->r, sd);
	if (read_sig(v, sd, &b, &n) < 0)
		return;
	s->kind = sig_kind(b, n);
	if (s->kind == SIF_SIG_UNKNOWN) {
		problem(v->r,
		        "signature object %u: neither a DSSE envelope nor OpenPGP clear-signed "
		        "text",
		        sd->id);
		return;
	}
	_cleanup_free_ char *plain = NULL;
	size_t plen = 0;
	if (check_signature(v, s, b, n, &plain, &plen) < 0)
		return;
	if (s->kind == SIF_SIG_LEGACY) {
		/* "SIFHASH:\n<hex>\n" over the object, or the group's objects in order */
		const char *hx = plain + 9;
		size_t hl = plen > 9 ? plen - 9 : 0;
		while (hl && (hx[hl - 1] == '\n' || hx[hl - 1] == '\r'))
			hl--;
		const struct hash_alg *alg = alg_by_type(s->hashtype);
		struct digest want = {.alg = alg}, got = {.alg = alg};
		int dl = hex_decode(hx, hl, want.v, sizeof(want.v));
		if (!alg || dl < 0 || dl != EVP_MD_get_size(EVP_get_digestbyname(alg->evp))) {
			problem(v->r, "signature object %u: malformed legacy digest", sd->id);
			return;
		}
		want.len = (unsigned)dl;
		EVP_MD_CTX *md = md_new(alg, &(struct sifu_err){0});
		bool fail = !md;
		for (size_t i = 0; i < t->nids && !fail; i++) {
			struct sifu_err e = {0};
			if (hash_object(&v->ic, sif_get(v->ic.img, t->ids[i]), md, &e) < 0) {
				problem(v->r, "object %u: cannot read it", t->ids[i]);
				fail = true;
			}
		}
		if (md)
			EVP_DigestFinal_ex(md, got.v, &got.len);
		EVP_MD_CTX_free(md);
		if (fail)
			return;
		if (!digest_eq(&want, &got)) {
			if (t->gid)
				problem(v->r,
				        "objects of group %u: digest differs from the one legacy "
				        "signature object %u signed",
				        t->gid, sd->id);
			else
				problem(v->r,
				        "object %u: digest differs from the one legacy signature "
				        "object %u signed",
				        t->object, sd->id);
			return;
		}
		for (size_t i = 0; i < t->nids; i++)
			cover(s, t->ids[i]);
		s->ok = true;
		return;
	}
	json_t *m = parse_metadata(v, sd->id, plain, plen);
	if (!m)
		return;
	check_metadata(v, s, t, m);
	json_decref(m);
}

/* Signature objects linked to LINK (raw), legacy or not. */
static size_t find_sigs(struct vctx *v, uint32_t link, bool legacy, const struct sif_descr **out)
{
	size_t n = 0;
	const struct sif_image *img = v->ic.img;
	for (int64_t i = 0; i < img->h.dtotal; i++) {
		const struct sif_descr *d = &img->d[i];
		if (!d->used || d->datatype != SIF_DT_SIGNATURE || d->link != link)
			continue;
		_cleanup_free_ char *b = NULL;
		size_t len;
		struct sifu_err e = {0};
		if (sif_read_object(img, d, SIG_MAX, &b, &len, &e) < 0)
			continue;
		bool is_legacy = sig_kind(b, len) == SIF_SIG_LEGACY;
		if (is_legacy != legacy) {
			if (is_legacy)
				v->r->legacy_seen = true;
			continue;
		}
		out[n++] = d;
	}
	return n;
}

/* Any legacy signature in the image, whatever it is linked to? */
static bool image_has_legacy(struct vctx *v)
{
	const struct sif_image *img = v->ic.img;
	for (int64_t i = 0; i < img->h.dtotal; i++) {
		const struct sif_descr *d = &img->d[i];
		if (!d->used || d->datatype != SIF_DT_SIGNATURE)
			continue;
		_cleanup_free_ char *b = NULL;
		size_t len;
		struct sifu_err e = {0};
		if (sif_read_object(img, d, SIG_MAX, &b, &len, &e) == 0 &&
		    sig_kind(b, len) == SIF_SIG_LEGACY)
			return true;
	}
	return false;
}

static size_t count_sigs(struct vctx *v, uint32_t link, bool legacy)
{
	const struct sif_descr **sigs =
	    sifu_xcalloc((size_t)v->ic.img->h.dtotal + 1, sizeof(*sigs));
	bool seen = v->r->legacy_seen;
	size_t n = find_sigs(v, link, legacy, sigs);
	v->r->legacy_seen = seen;
	free(sigs);
	return n;
}

static void run_task(struct vctx *v, const struct task *t, bool legacy)
{
	const struct sif_image *img = v->ic.img;
	const struct sif_descr **sigs = sifu_xcalloc((size_t)img->h.dtotal + 1, sizeof(*sigs));
	uint32_t link = t->gid ? (SIF_GROUP_MASK | t->gid) : t->object;
	bool seen_before = v->r->legacy_seen;
	v->r->legacy_seen = false;
	size_t n = find_sigs(v, link, legacy, sigs);
	if (!n && !legacy && !v->r->legacy_seen)
		v->r->legacy_seen = image_has_legacy(v);
	if (!n) {
		const char *what = t->gid ? "object group" : "object";
		uint32_t id = t->gid ? t->gid : t->object;
		if (!legacy && v->r->legacy_seen)
			problem(v->r,
			        "%s %u has only legacy signatures (before Apptainer 3.6), which "
			        "do not cover the header and descriptors: accept them with "
			        "--legacy-insecure",
			        what, id);
		else if (legacy)
			problem(v->r, "%s %u has no legacy signature", what, id);
		else
			problem(v->r, "%s %u is not signed", what, id);
	}
	v->r->legacy_seen |= seen_before;
	for (size_t i = 0; i < n; i++)
		verify_one(v, sigs[i], t);
	free(sigs);
}

static void group_task(const struct sif_image *img, uint32_t gid, struct task *t)
{
	memset(t, 0, sizeof(*t));
	t->gid = gid;
	t->nids = group_objects(img, gid, &t->ids);
}

/* --legacy-insecure: Apptainer's legacy tasks. */
static void legacy_tasks(struct vctx *v)
{
	const struct sif_image *img = v->ic.img;
	const struct sif_verify_opts *o = v->o;
	struct sif_verify_report *r = v->r;
	_cleanup_free_ uint32_t *objs = sifu_xcalloc((size_t)img->h.dtotal + 1, sizeof(uint32_t));
	size_t no = 0;
	if (o->all) {
		for (int64_t i = 0; i < img->h.dtotal; i++) {
			const struct sif_descr *d = &img->d[i];
			if (d->used && d->datatype != SIF_DT_SIGNATURE && plain_group(d->groupid))
				objs[no++] = d->id;
		}
		qsort(objs, no, sizeof(uint32_t), cmp_u32);
	} else if (o->sif_id) {
		objs[no++] = o->sif_id;
	} else if (o->group_id) {
		struct task t;
		group_task(img, o->group_id, &t);
		run_task(v, &t, true);
		free(t.ids);
	} else {
		/* Apptainer checks the primary partition's own signature; an
		 * image whose legacy signature covers the primary's group is
		 * checked through that group instead of failing. */
		const struct sif_descr *p = sif_primary(img);
		uint32_t pg = p ? plain_group(p->groupid) : 0;
		if (!p) {
			problem(r,
			        "%s has no primary partition to check a legacy signature of "
			        "(use --sif-id or --group-id)",
			        v->path);
		} else if (!count_sigs(v, p->id, true) && pg &&
		           count_sigs(v, SIF_GROUP_MASK | pg, true)) {
			struct task t;
			group_task(img, pg, &t);
			run_task(v, &t, true);
			free(t.ids);
		} else {
			objs[no++] = p->id;
		}
	}
	for (size_t i = 0; i < no; i++) {
		struct task t = {.object = objs[i], .ids = &objs[i], .nids = 1};
		run_task(v, &t, true);
	}
}

static int verify_tasks(struct vctx *v)
{
	const struct sif_image *img = v->ic.img;
	const struct sif_verify_opts *o = v->o;
	struct sif_verify_report *r = v->r;
	/* every non-signature object must be in a group, or it is unsigned */
	for (int64_t i = 0; i < img->h.dtotal; i++) {
		const struct sif_descr *d = &img->d[i];
		if (d->used && d->datatype != SIF_DT_SIGNATURE && !plain_group(d->groupid))
			problem(
			    r, "object %u (%s) is in no object group, so no signature can cover it",
			    d->id, sif_datatype_name(d->datatype));
	}
	if (o->sif_id) {
		const struct sif_descr *d = sif_get(img, o->sif_id);
		if (!d) {
			problem(r, "%s has no object %u", v->path, o->sif_id);
			return 0;
		}
		if (!plain_group(d->groupid) && !o->legacy) {
			problem(r, "object %u is in no object group, so no signature covers it",
			        d->id);
			return 0;
		}
	}
	if (o->group_id && !group_min_id(img, o->group_id)) {
		problem(r, "%s has no object group %u", v->path, o->group_id);
		return 0;
	}
	if (o->legacy) {
		legacy_tasks(v);
		return 0;
	}
	if (o->sif_id) {
		const struct sif_descr *d = sif_get(img, o->sif_id);
		uint32_t id = d->id;
		struct task t = {
		    .gid = plain_group(d->groupid), .ids = &id, .nids = 1, .subset = true};
		run_task(v, &t, false);
		return 0;
	}
	_cleanup_free_ uint32_t *groups = sifu_xcalloc((size_t)img->h.dtotal + 1, sizeof(uint32_t));
	size_t ng = 0;
	if (o->group_id) {
		groups[ng++] = o->group_id;
	} else {
		for (int64_t i = 0; i < img->h.dtotal; i++) {
			uint32_t g = img->d[i].used ? plain_group(img->d[i].groupid) : 0;
			bool dup = !g;
			for (size_t j = 0; j < ng && !dup; j++)
				dup = groups[j] == g;
			if (!dup)
				groups[ng++] = g;
		}
		qsort(groups, ng, sizeof(uint32_t), cmp_u32);
	}
	if (!ng)
		problem(r, "%s has no object groups, so nothing in it is signed", v->path);
	for (size_t i = 0; i < ng; i++) {
		struct task t;
		group_task(img, groups[i], &t);
		run_task(v, &t, false);
		free(t.ids);
	}
	return 0;
}

/* ------------------------------------------- what a verified run serves --
 * `exec --verify` must run the bytes it verified.  Verifying a path and
 * serving it later reads the file twice (and the FUSE server reads lazily,
 * for as long as the container runs): a rename between the opens, or a
 * write into the partition at any time, would run bytes nobody signed.  So
 * the caller opens the image once and verifies that fd, and the pass that
 * recomputes the partition's signed digest also records a SHA-256 of every
 * block of it; the launcher serves the same fd and checks each block it
 * reads against those (fs-verity's idea, in user space: fuse/io.c).  The
 * location comes from the descriptors as parsed here: a later rewrite of
 * the descriptor table cannot move what is served. */

static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;

static void sha256_fetch(void)
{
	/* fetched once: an implicit fetch per call takes a lock that the
	 * FUSE server's threads would contend for */
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void sif_sha256(const void *data, size_t len, uint8_t out[32])
{
	pthread_once(&sha256_once, sha256_fetch);
	unsigned n = 0;
	if (!EVP_Digest(data, len, out, &n, sha256_md ? sha256_md : EVP_sha256(), NULL) || n != 32)
		memset(out, 0, 32); /* never equal to a real block's digest by chance */
}

void sif_served_part_free(struct sif_served_part *p)
{
	if (!p)
		return;
	free(p->sha256);
	p->sha256 = NULL;
	p->nblocks = 0;
}

static int served_part_init(const struct sif_image *img, struct sif_served_part *p,
                            struct sifu_err *err)
{
	const struct sif_descr *d = sif_primary(img);
	if (!d) {
		sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT,
		             "the image has no primary system partition");
		sifu_err_hint(err, "'sifu sif list IMAGE' shows its objects");
		return -ENOENT;
	}
	if (!p->block || (p->block & (p->block - 1)) || p->block > READ_CHUNK)
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "bad block size %" PRIu64, p->block);
	struct sif_partinfo pi;
	sif_descr_partition(d, &pi);
	p->id = d->id;
	p->fstype = (uint32_t)pi.fstype;
	p->offset = (uint64_t)d->offset;
	p->size = (uint64_t)d->size;
	p->nblocks = (size_t)((p->size + p->block - 1) / p->block);
	p->sha256 = sifu_xcalloc(p->nblocks ? p->nblocks : 1, sizeof(*p->sha256));
	return 0;
}

/* The served partition must be among the objects a signature verified, and
 * its block digests must come from a complete pass over it. */
static void served_part_check(struct vctx *v)
{
	const struct sif_served_part *p = v->ic.part;
	bool covered = false;
	for (size_t i = 0; i < v->r->nsigs && !covered; i++)
		for (size_t j = 0; v->r->sigs[i].ok && j < v->r->sigs[i].ncovered; j++)
			covered |= v->r->sigs[i].covered[j] == p->id;
	if (!covered || !v->ic.part_done)
		problem(v->r,
		        "the primary partition (object %u) is not covered by a signature that "
		        "verified",
		        p->id);
}

int sif_verify_fd(int fd, const char *name, const struct sif_verify_opts *o,
                  struct sif_verify_report *report, struct sif_served_part *part,
                  struct sifu_err *err)
{
	struct sif_verify_report local = {0};
	struct sif_verify_report *r = report ? report : &local;
	memset(r, 0, sizeof(*r));
	_cleanup_sif_ struct sif_image *img = NULL;
	int ret = sif_open_fd(fd, &img, err);
	if (ret == 0 && part)
		ret = served_part_init(img, part, err);
	if (ret < 0) {
		sifu_err_wrap(err, "%s", name);
		char line[SIFU_ERR_MSG_MAX];
		sifu_err_format(err, line, sizeof(line));
		problem(r, "%s", line);
		sif_verify_report_free(&local);
		return ret;
	}
	struct vctx v = {.path = name, .o = o, .r = r};
	ret = ictx_init(&v.ic, img, err);
	if (ret == 0) {
		v.ic.part = part;
		verify_tasks(&v);
		if (part && !r->nproblems)
			served_part_check(&v);
		if (r->nproblems) {
			ret = sifu_err_set(err, SIFU_E_VERIFY, EBADMSG, "%s", r->problems[0]);
			if (r->nproblems > 1)
				sifu_err_wrap(err, "%s: %zu problems, the first", name,
				              r->nproblems);
			else
				sifu_err_wrap(err, "%s does not verify", name);
		}
	}
	ictx_free(&v.ic);
	sif_verify_report_free(&local);
	if (ret < 0 && part)
		sif_served_part_free(part);
	return ret;
}

int sif_verify_image(const char *path, const struct sif_verify_opts *o,
                     struct sif_verify_report *report, struct sifu_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int ret = sifu_err_sys(err, "open %s", path);
		if (report) {
			memset(report, 0, sizeof(*report));
			char line[SIFU_ERR_MSG_MAX];
			sifu_err_format(err, line, sizeof(line));
			problem(report, "%s", line);
		}
		return ret;
	}
	int ret = sif_verify_fd(fd, path, o, report, NULL, err);
	close(fd);
	return ret;
}
