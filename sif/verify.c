/* SPDX-License-Identifier: BSD-3-Clause */
/* sif/verify.c: verify a SIF image's signatures as Apptainer/SingularityCE
 * do, recomputing every digest the signed metadata names (sif/digest.c),
 * and record what a verified run may serve.
 *
 * Facts from the reference (sylabs/sif v2, pkg/integrity):
 *  - one signature per group, in a Signature object with no group, linked to
 *    the group; every object of the group must be covered when the whole
 *    group is verified; non-signature objects outside any group make
 *    verification fail;
 *  - legacy signatures (before 3.6) clear-sign "SIFHASH:\n<hex digest>" of an
 *    object (linked to it) or of the concatenated objects of a group. */
#include "sif_priv.h"

#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>

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
	struct sif_digest_ctx ic;
	const char *path;
	const struct sif_verify_opts *o;
	struct sif_verify_report *r;
	bool pgp_ready;
};

static int read_sig(struct vctx *v, const struct sif_descr *d, char **buf, size_t *len)
{
	struct sifu_err e = {0};
	int r = sif_read_object(v->ic.img, d, SIF_SIG_MAX, buf, len, &e);
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
	if (sif_pgp_verify(v->o->keyring, b, n, plain, plen, fpr, &e) < 0) {
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

/* Where ID is among the N IDS, or N. */
static size_t id_index(const uint32_t *ids, size_t n, uint32_t id)
{
	size_t i = 0;
	while (i < n && ids[i] != id)
		i++;
	return i;
}

/* The object ids the metadata's entries OBJS sign (relative ids from MINID,
 * the smallest id of the group), into SIGNED (as many as OBJS has); -1 when
 * an entry is malformed. */
static int signed_objects(struct vctx *v, uint32_t sig_id, json_t *objs, uint32_t minid,
                          uint32_t *signed_ids)
{
	for (size_t i = 0; i < json_array_size(objs); i++) {
		json_t *rel = json_object_get(json_array_get(objs, i), "relativeId");
		if (!json_is_integer(rel) || json_integer_value(rel) < 0 ||
		    json_integer_value(rel) > UINT32_MAX - minid) {
			problem(v->r, "signature object %u: malformed object entry %zu", sig_id, i);
			return -1;
		}
		signed_ids[i] = minid + (uint32_t)json_integer_value(rel);
	}
	return 0;
}

/* When the whole group is checked, the signed set must be exactly the group. */
static void check_group_covered(struct vctx *v, uint32_t sig_id, const struct task *t,
                                const uint32_t *signed_ids, size_t nsigned)
{
	for (size_t i = 0; i < t->nids; i++)
		if (id_index(signed_ids, nsigned, t->ids[i]) == nsigned)
			problem(v->r, "object %u of group %u is not covered by signature object %u",
			        t->ids[i], t->gid, sig_id);
	for (size_t j = 0; j < nsigned; j++)
		if (id_index(t->ids, t->nids, signed_ids[j]) == t->nids)
			problem(v->r,
			        "signature object %u covers object %u, which is not in group %u "
			        "(the objects it claims are gone or moved)",
			        sig_id, signed_ids[j], t->gid);
}

/* The header digest the metadata M signs against the image's; -1 when it is
 * malformed. */
static int check_header(struct vctx *v, uint32_t sig_id, json_t *m)
{
	struct sif_digest want, got;
	json_t *hd = json_object_get(json_object_get(m, "header"), "digest");
	if (sif_digest_parse(json_string_value(hd), &want) < 0) {
		problem(v->r, "signature object %u: malformed header digest", sig_id);
		return -1;
	}
	sif_digest_header(&v->ic, want.alg, &got);
	if (!sif_digest_eq(&want, &got))
		problem(v->r,
		        "header: digest differs from the one signature object %u signed "
		        "(launch script, magic, version or image id changed)",
		        sig_id);
	return 0;
}

/* Do the descriptor and object digests that the metadata entry E signs for
 * object D (MINID: the smallest id of its group) match the image? */
static bool check_object(struct vctx *v, uint32_t sig_id, const struct sif_descr *d, uint32_t minid,
                         json_t *e)
{
	struct sif_verify_report *r = v->r;
	struct sif_digest want, got;
	if (sif_digest_parse(json_string_value(json_object_get(e, "descriptorDigest")), &want) <
	    0) {
		problem(r, "signature object %u: malformed descriptor digest", sig_id);
		return false;
	}
	sif_digest_descr(&v->ic, d, minid, want.alg, &got);
	bool ok = sif_digest_eq(&want, &got);
	if (!ok)
		problem(r,
		        "descriptor of object %u: digest differs from the one signature object %u "
		        "signed",
		        d->id, sig_id);
	if (sif_digest_parse(json_string_value(json_object_get(e, "objectDigest")), &want) < 0) {
		problem(r, "signature object %u: malformed object digest", sig_id);
		return false;
	}
	struct sifu_err e2 = {0};
	if (sif_digest_object(&v->ic, d, want.alg, &got, &e2) < 0) {
		char line[SIFU_ERR_MSG_MAX];
		sifu_err_format(&e2, line, sizeof(line));
		problem(r, "object %u: %s", d->id, line);
		return false;
	}
	if (!sif_digest_eq(&want, &got)) {
		char a[SIF_DIGEST_STR_MAX], b[sizeof(a)];
		sif_digest_fmt(&want, a, sizeof(a));
		sif_digest_fmt(&got, b, sizeof(b));
		problem(r, "object %u: digest differs: signed %s, image has %s", d->id, a, b);
		return false;
	}
	return ok;
}

/* Does the signed metadata M hold for the objects of task T?  Which objects
 * it signs, that they are the group's, the header, then each object. */
static void check_metadata(struct vctx *v, struct sif_verify_sig *s, const struct task *t,
                           json_t *m)
{
	uint32_t minid = sif_group_min_id(v->ic.img, t->gid);
	json_t *objs = json_object_get(m, "objects");
	size_t nobj = json_array_size(objs);
	size_t before = v->r->nproblems;
	_cleanup_free_ uint32_t *signed_ids = sifu_xcalloc(nobj + 1, sizeof(uint32_t));
	if (signed_objects(v, s->sig_id, objs, minid, signed_ids) < 0)
		return;
	if (!t->subset)
		check_group_covered(v, s->sig_id, t, signed_ids, nobj);
	if (check_header(v, s->sig_id, m) < 0)
		return;
	for (size_t i = 0; i < t->nids; i++) {
		size_t j = id_index(signed_ids, nobj, t->ids[i]);
		if (j == nobj) {
			if (t->subset)
				problem(v->r, "object %u is not signed by signature object %u",
				        t->ids[i], s->sig_id);
			continue;
		}
		const struct sif_descr *d = sif_get(v->ic.img, t->ids[i]);
		if (check_object(v, s->sig_id, d, minid, json_array_get(objs, j)))
			cover(s, d->id);
	}
	s->ok = v->r->nproblems == before;
}

/* A legacy signature's plain text, "SIFHASH:\n<hex>\n", against the digest
 * of the object, or of the group's objects in order. */
static void check_legacy(struct vctx *v, struct sif_verify_sig *s, const struct task *t,
                         const char *plain, size_t plen)
{
	const char *hx = plain + 9;
	size_t hl = plen > 9 ? plen - 9 : 0;
	while (hl && (hx[hl - 1] == '\n' || hx[hl - 1] == '\r'))
		hl--;
	const struct sif_hash_alg *alg = sif_hash_alg_by_type(s->hashtype);
	struct sif_digest want, got;
	if (sif_digest_from_hex(alg, hx, hl, &want) < 0) {
		problem(v->r, "signature object %u: malformed legacy digest", s->sig_id);
		return;
	}
	uint32_t failed;
	if (sif_digest_objects(&v->ic, t->ids, t->nids, alg, &got, &failed) < 0) {
		if (failed)
			problem(v->r, "object %u: cannot read it", failed);
		return;
	}
	if (!sif_digest_eq(&want, &got)) {
		if (t->gid)
			problem(v->r,
			        "objects of group %u: digest differs from the one legacy signature "
			        "object %u signed",
			        t->gid, s->sig_id);
		else
			problem(v->r,
			        "object %u: digest differs from the one legacy signature object %u "
			        "signed",
			        t->object, s->sig_id);
		return;
	}
	for (size_t i = 0; i < t->nids; i++)
		cover(s, t->ids[i]);
	s->ok = true;
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
		check_legacy(v, s, t, plain, plen);
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
		if (sif_read_object(img, d, SIF_SIG_MAX, &b, &len, &e) < 0)
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
		if (sif_read_object(img, d, SIF_SIG_MAX, &b, &len, &e) == 0 &&
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
	t->nids = sif_group_objects(img, gid, &t->ids);
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
			if (d->used && d->datatype != SIF_DT_SIGNATURE &&
			    sif_plain_group(d->groupid))
				objs[no++] = d->id;
		}
		sif_ids_sort(objs, no);
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
		uint32_t pg = p ? sif_plain_group(p->groupid) : 0;
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
		if (d->used && d->datatype != SIF_DT_SIGNATURE && !sif_plain_group(d->groupid))
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
		if (!sif_plain_group(d->groupid) && !o->legacy) {
			problem(r, "object %u is in no object group, so no signature covers it",
			        d->id);
			return 0;
		}
	}
	if (o->group_id && !sif_group_min_id(img, o->group_id)) {
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
		    .gid = sif_plain_group(d->groupid), .ids = &id, .nids = 1, .subset = true};
		run_task(v, &t, false);
		return 0;
	}
	_cleanup_free_ uint32_t *groups = sifu_xcalloc((size_t)img->h.dtotal + 1, sizeof(uint32_t));
	size_t ng = 0;
	if (o->group_id) {
		groups[ng++] = o->group_id;
	} else {
		for (int64_t i = 0; i < img->h.dtotal; i++) {
			uint32_t g = img->d[i].used ? sif_plain_group(img->d[i].groupid) : 0;
			bool dup = !g;
			for (size_t j = 0; j < ng && !dup; j++)
				dup = groups[j] == g;
			if (!dup)
				groups[ng++] = g;
		}
		sif_ids_sort(groups, ng);
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
 * reads against those (fs-verity's idea, in user space: fuse/backend.c).  The
 * location comes from the descriptors as parsed here: a later rewrite of
 * the descriptor table cannot move what is served. */

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
	if (!p->block || (p->block & (p->block - 1)) || p->block > SIF_READ_CHUNK)
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
	ret = sif_digest_ctx_init(&v.ic, img, err);
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
	sif_digest_ctx_free(&v.ic);
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
