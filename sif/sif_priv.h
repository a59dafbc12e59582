/* SPDX-License-Identifier: BSD-3-Clause */
/* sif/sif_priv.h: what sif/'s own files share and nobody else sees — the
 * digests of the signed metadata (sif/digest.c), used by signing
 * (sif/sign.c) and verification (sif/verify.c). */
#pragma once

#include "sif.h"

#include <openssl/evp.h>

/* The largest signature object sifu reads. */
#define SIF_SIG_MAX (16u << 20)
/* Objects are digested in reads of this size; a served partition's block
 * size divides it. */
#define SIF_READ_CHUNK (8u << 20)

/* A group number without SIF_GROUP_MASK (0: in no group). */
static inline uint32_t sif_plain_group(uint32_t raw)
{
	return raw & ~SIF_GROUP_MASK;
}
/* The smallest object id of group GID, 0 when the group has no object. */
uint32_t sif_group_min_id(const struct sif_image *img, uint32_t gid);
/* The objects of group GID, sorted by id, into *IDS (malloc'ed). */
size_t sif_group_objects(const struct sif_image *img, uint32_t gid, uint32_t **ids);
/* Sort N object ids in place, ascending. */
void sif_ids_sort(uint32_t *ids, size_t n);

/* A digest algorithm the metadata may name. */
struct sif_hash_alg {
	int hashtype;     /* enum sif_hashtype, 0 if none */
	const char *name; /* as the metadata JSON names it */
	const char *evp;
};
/* The algorithm of an enum sif_hashtype, or NULL. */
const struct sif_hash_alg *sif_hash_alg_by_type(int t);

struct sif_digest {
	const struct sif_hash_alg *alg;
	unsigned len;
	uint8_t v[EVP_MAX_MD_SIZE];
};
/* Room for "alg:hex" of any digest. */
#define SIF_DIGEST_STR_MAX (2 * EVP_MAX_MD_SIZE + 16)
/* "alg:hex", as the metadata writes it. */
void sif_digest_fmt(const struct sif_digest *d, char *buf, size_t len);
/* Parse "alg:hex" (-1 when malformed or of an unknown algorithm). */
int sif_digest_parse(const char *s, struct sif_digest *d);
/* Parse N hex digits of a digest of ALG (-1 when ALG is NULL or the digits
 * are not one whole digest of it). */
int sif_digest_from_hex(const struct sif_hash_alg *alg, const char *hex, size_t n,
                        struct sif_digest *d);
bool sif_digest_eq(const struct sif_digest *a, const struct sif_digest *b);

/* What digests an image's objects: its raw header and descriptor table, and
 * the object digests already taken.  Verification of several signatures
 * over one group must not read the objects more than once: object digests
 * are cached per (object, algorithm). */
struct sif_digest_cache;
struct sif_digest_ctx {
	const struct sif_image *img;
	uint8_t hdr[SIF_HDR_SIZE];
	uint8_t *dtab;                  /* raw descriptor table */
	struct sif_digest_cache *cache; /* one per descriptor, table order */
	uint8_t *buf;
	size_t buflen;
	/* sif_verify_fd's served partition: its block digests are taken from
	 * the very buffers whose digest is compared with the signed one */
	struct sif_served_part *part;
	bool part_done; /* the last pass over it read it whole */
};
int sif_digest_ctx_init(struct sif_digest_ctx *c, const struct sif_image *img,
                        struct sifu_err *err);
void sif_digest_ctx_free(struct sif_digest_ctx *c);

/* The digest of the header's signed bytes. */
void sif_digest_header(const struct sif_digest_ctx *c, const struct sif_hash_alg *alg,
                       struct sif_digest *out);
/* The digest of descriptor D's signed bytes, MINID the smallest id of its group. */
void sif_digest_descr(const struct sif_digest_ctx *c, const struct sif_descr *d, uint32_t minid,
                      const struct sif_hash_alg *alg, struct sif_digest *out);
/* The digest of object D's bytes (read once per algorithm). */
int sif_digest_object(struct sif_digest_ctx *c, const struct sif_descr *d,
                      const struct sif_hash_alg *alg, struct sif_digest *out, struct sifu_err *err);
/* One digest over the bytes of the objects IDS in turn (legacy signatures
 * of a group).  -1 with *FAILED the id that could not be read (0 when the
 * algorithm is not available). */
int sif_digest_objects(struct sif_digest_ctx *c, const uint32_t *ids, size_t nids,
                       const struct sif_hash_alg *alg, struct sif_digest *out, uint32_t *failed);
