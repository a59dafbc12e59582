/* SPDX-License-Identifier: BSD-3-Clause */
/* sif/digest.c: the digests a SIF signature covers and the metadata JSON
 * that carries them, as Apptainer/SingularityCE write them.  Signing
 * (sif/sign.c) and verification (sif/verify.c) both stand on this.
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
 *    writes it (no spaces). */
#include "sif_priv.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>

/* ------------------------------------------------------------- digests -- */

static const struct sif_hash_alg hash_algs[] = {
    {SIF_HASH_SHA256, "sha256", "SHA256"}, {SIF_HASH_SHA384, "sha384", "SHA384"},
    {SIF_HASH_SHA512, "sha512", "SHA512"}, {0, "sha224", "SHA224"},
    {0, "sha512_224", "SHA512-224"},       {0, "sha512_256", "SHA512-256"},
};

const struct sif_hash_alg *sif_hash_alg_by_type(int t)
{
	for (size_t i = 0; i < ARRAY_SIZE(hash_algs); i++)
		if (hash_algs[i].hashtype && hash_algs[i].hashtype == t)
			return &hash_algs[i];
	return NULL;
}

static const struct sif_hash_alg *alg_by_name(const char *n, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(hash_algs); i++)
		if (strlen(hash_algs[i].name) == len && !memcmp(hash_algs[i].name, n, len))
			return &hash_algs[i];
	return NULL;
}

static void digest_mem(const struct sif_hash_alg *alg, const void *p, size_t n,
                       struct sif_digest *d)
{
	d->alg = alg;
	EVP_Digest(p, n, d->v, &d->len, EVP_get_digestbyname(alg->evp), NULL);
}

void sif_digest_fmt(const struct sif_digest *d, char *buf, size_t len)
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

int sif_digest_from_hex(const struct sif_hash_alg *alg, const char *hex, size_t n,
                        struct sif_digest *d)
{
	d->alg = alg;
	if (!alg)
		return -1;
	int len = hex_decode(hex, n, d->v, sizeof(d->v));
	if (len < 0 || len != EVP_MD_get_size(EVP_get_digestbyname(alg->evp)))
		return -1;
	d->len = (unsigned)len;
	return 0;
}

/* "alg:hex" as the metadata holds it. */
int sif_digest_parse(const char *s, struct sif_digest *d)
{
	const char *colon = s ? strchr(s, ':') : NULL;
	if (!colon || strchr(colon + 1, ':'))
		return -1;
	return sif_digest_from_hex(alg_by_name(s, (size_t)(colon - s)), colon + 1,
	                           strlen(colon + 1), d);
}

bool sif_digest_eq(const struct sif_digest *a, const struct sif_digest *b)
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

uint32_t sif_group_min_id(const struct sif_image *img, uint32_t gid)
{
	uint32_t min = 0;
	for (int64_t i = 0; i < img->h.dtotal; i++) {
		const struct sif_descr *d = &img->d[i];
		if (d->used && sif_plain_group(d->groupid) == gid && (!min || d->id < min))
			min = d->id;
	}
	return min;
}

/* ------------------------------------------------- the digest context -- */

struct sif_digest_cache {
	struct sif_digest d[ARRAY_SIZE(hash_algs)];
	bool have[ARRAY_SIZE(hash_algs)];
};

void sif_digest_ctx_free(struct sif_digest_ctx *c)
{
	free(c->dtab);
	free(c->cache);
	free(c->buf);
}

int sif_digest_ctx_init(struct sif_digest_ctx *c, const struct sif_image *img, struct sifu_err *err)
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

static size_t descr_index(const struct sif_digest_ctx *c, const struct sif_descr *d)
{
	return (size_t)(d - c->img->d);
}

/* The served partition's block digests, for bytes [pos, pos+len) of it
 * (pos is a multiple of the block size: SIF_READ_CHUNK is one of those). */
static void part_blocks(struct sif_digest_ctx *c, const struct sif_descr *d, uint64_t pos,
                        const uint8_t *p, size_t len)
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
static int hash_object(struct sif_digest_ctx *c, const struct sif_descr *d, EVP_MD_CTX *md,
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
	size_t bufsz = (uint64_t)d->size < SIF_READ_CHUNK ? (size_t)d->size + 1 : SIF_READ_CHUNK;
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
			posix_fadvise(
			    img->fd, (off_t)(off + want),
			    (off_t)(left - want < SIF_READ_CHUNK ? left - want : SIF_READ_CHUNK),
			    POSIX_FADV_WILLNEED);
		EVP_DigestUpdate(md, c->buf, want);
		part_blocks(c, d, off - (uint64_t)d->offset, c->buf, want);
		off += want, left -= want;
	}
	c->part_done |= served;
	return 0;
}

static EVP_MD_CTX *md_new(const struct sif_hash_alg *alg, struct sifu_err *err)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || !EVP_DigestInit_ex(md, EVP_get_digestbyname(alg->evp), NULL)) {
		EVP_MD_CTX_free(md);
		sifu_err_set(err, SIFU_E_UNSUPPORTED, ENOTSUP, "no %s in libcrypto", alg->name);
		return NULL;
	}
	return md;
}

int sif_digest_object(struct sif_digest_ctx *c, const struct sif_descr *d,
                      const struct sif_hash_alg *alg, struct sif_digest *out, struct sifu_err *err)
{
	size_t ai = (size_t)(alg - hash_algs);
	struct sif_digest_cache *oc = &c->cache[descr_index(c, d)];
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

int sif_digest_objects(struct sif_digest_ctx *c, const uint32_t *ids, size_t nids,
                       const struct sif_hash_alg *alg, struct sif_digest *out, uint32_t *failed)
{
	*failed = 0;
	EVP_MD_CTX *md = md_new(alg, &(struct sifu_err){0});
	if (!md)
		return -1;
	for (size_t i = 0; i < nids; i++) {
		if (hash_object(c, sif_get(c->img, ids[i]), md, &(struct sifu_err){0}) < 0) {
			*failed = ids[i];
			EVP_MD_CTX_free(md);
			return -1;
		}
	}
	out->alg = alg;
	EVP_DigestFinal_ex(md, out->v, &out->len);
	EVP_MD_CTX_free(md);
	return 0;
}

void sif_digest_descr(const struct sif_digest_ctx *c, const struct sif_descr *d, uint32_t minid,
                      const struct sif_hash_alg *alg, struct sif_digest *out)
{
	uint8_t b[SIF_DESCR_SIGNED_LEN];
	sif_descr_signed_bytes(c->dtab + descr_index(c, d) * SIF_DESCR_SIZE, d->id - minid, b);
	digest_mem(alg, b, sizeof(b), out);
}

void sif_digest_header(const struct sif_digest_ctx *c, const struct sif_hash_alg *alg,
                       struct sif_digest *out)
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

void sif_ids_sort(uint32_t *ids, size_t n)
{
	qsort(ids, n, sizeof(uint32_t), cmp_u32);
}

size_t sif_group_objects(const struct sif_image *img, uint32_t gid, uint32_t **ids)
{
	size_t n = 0;
	*ids = sifu_xcalloc((size_t)img->h.dtotal + 1, sizeof(uint32_t));
	for (int64_t i = 0; i < img->h.dtotal; i++)
		if (img->d[i].used && sif_plain_group(img->d[i].groupid) == gid)
			(*ids)[n++] = img->d[i].id;
	sif_ids_sort(*ids, n);
	return n;
}

static int metadata_build(struct sif_digest_ctx *c, uint32_t gid, const uint32_t *ids, size_t nids,
                          const struct sif_hash_alg *alg, char **out, size_t *outlen,
                          struct sifu_err *err)
{
	uint32_t minid = sif_group_min_id(c->img, gid);
	if (!minid)
		return sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT, "object group %u does not exist",
		                    gid);
	char dig[SIF_DIGEST_STR_MAX];
	struct sif_digest d;
	sif_digest_header(c, alg, &d);
	sif_digest_fmt(&d, dig, sizeof(dig));
	/* Written by hand: field order and Go's compact form are part of what
	 * is signed, and the values (digests, numbers) need no escaping. */
	size_t cap = 128 + nids * 400, len = 0;
	char *s = sifu_xmalloc(cap);
	len += (size_t)snprintf(s, cap,
	                        "{\"version\":1,\"header\":{\"digest\":\"%s\"},\"objects\":[", dig);
	for (size_t i = 0; i < nids; i++) {
		const struct sif_descr *od = sif_get(c->img, ids[i]);
		if (!od || sif_plain_group(od->groupid) != gid) {
			free(s);
			return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
			                    "object %u is not in object group %u", ids[i], gid);
		}
		struct sif_digest dd, ob;
		sif_digest_descr(c, od, minid, alg, &dd);
		int r = sif_digest_object(c, od, alg, &ob, err);
		if (r < 0) {
			free(s);
			return r;
		}
		char a[sizeof(dig)], b[sizeof(dig)];
		sif_digest_fmt(&dd, a, sizeof(a));
		sif_digest_fmt(&ob, b, sizeof(b));
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
	const struct sif_hash_alg *alg =
	    sif_hash_alg_by_type(hashtype ? hashtype : SIF_HASH_SHA256);
	if (!alg)
		return sifu_err_set(
		    err, SIFU_E_UNSUPPORTED, ENOTSUP,
		    "hash type %d: only SHA-256, SHA-384 and SHA-512 digest metadata", hashtype);
	struct sif_digest_ctx c;
	int r = sif_digest_ctx_init(&c, img, err);
	_cleanup_free_ uint32_t *all = NULL;
	if (r == 0) {
		if (!ids || !nids)
			nids = sif_group_objects(img, gid, &all), ids = all;
		r = metadata_build(&c, gid, ids, nids, alg, out, outlen, err);
	}
	sif_digest_ctx_free(&c);
	return r;
}

/* ----------------------------------------- the served partition's blocks --
 * One SHA-256 per block of a verified partition (sif/verify.c takes them
 * while digesting it; fuse/ checks what it serves against them). */

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
