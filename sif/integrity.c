/* SPDX-License-Identifier: BSD-3-Clause */
/* The integrity metadata Apptainer and SingularityCE sign (sylabs/sif
 * pkg/integrity): a JSON document with the digest of the header's fixed
 * fields and, per object of the signed set, the digest of its descriptor's
 * integrity fields and of its data.  This file computes those digests from
 * an opened image and checks a metadata document against them; it also
 * verifies DSSE envelopes made with PEM keys.  (OpenPGP clear-signed
 * metadata needs GPGME and is the sign/verify work's; the digest check here
 * is shared by both.)
 *
 *   header digest:     LaunchScript[32] Magic[10] Version[3] ID[16]
 *   descriptor digest: DataType i32, Used u8, relative id u32 (id minus the
 *                      smallest id of the object's group), LinkedID u32,
 *                      Size i64, CreatedAt i64, UID i64, GID i64 (all little
 *                      endian), Name[128], Extra[384]
 *   object digest:     the object's bytes */
#include "sif.h"

#include <endian.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

static const EVP_MD *md_of(int32_t alg)
{
	switch (alg) {
	case SIF_HASH_SHA256: return EVP_sha256();
	case SIF_HASH_SHA384: return EVP_sha384();
	case SIF_HASH_SHA512: return EVP_sha512();
	}
	return NULL;
}

static const char *alg_prefix(int32_t alg)
{
	switch (alg) {
	case SIF_HASH_SHA256: return "sha256";
	case SIF_HASH_SHA384: return "sha384";
	case SIF_HASH_SHA512: return "sha512";
	}
	return NULL;
}

static void to_digest_string(int32_t alg, const unsigned char *h, unsigned n, char *out,
			     size_t len)
{
	int o = snprintf(out, len, "%s:", alg_prefix(alg));
	for (unsigned i = 0; i < n && (size_t)o + 3 <= len; i++)
		o += snprintf(out + o, len - (size_t)o, "%02x", h[i]);
}

static EVP_MD_CTX *md_start(int32_t alg)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c || !EVP_DigestInit_ex(c, md_of(alg), NULL))
		abort(); /* OpenSSL without SHA-2 or out of memory */
	return c;
}

static void md_finish(EVP_MD_CTX *c, int32_t alg, char *out, size_t len)
{
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	EVP_DigestFinal_ex(c, h, &n);
	EVP_MD_CTX_free(c);
	to_digest_string(alg, h, n, out, len);
}

int sif_digest_header(const struct sif_image *img, int32_t alg, char *out, size_t len,
		      struct sifu_err *err)
{
	if (!md_of(alg))
		return sifu_err_set(err, SIFU_E_UNSUPPORTED, ENOTSUP, "hash type %d is not supported",
				    alg);
	EVP_MD_CTX *c = md_start(alg);
	EVP_DigestUpdate(c, img->h.launch, SIF_LAUNCH_LEN);
	EVP_DigestUpdate(c, img->h.magic, 10);
	EVP_DigestUpdate(c, img->h.version, 3);
	EVP_DigestUpdate(c, img->h.id, 16);
	md_finish(c, alg, out, len);
	return 0;
}

uint32_t sif_group_min_id(const struct sif_image *img, uint32_t raw_group)
{
	uint32_t min = 0;
	for (int64_t i = 0; i < img->h.dtotal; i++)
		if (img->d[i].used && img->d[i].groupid == raw_group && (!min || img->d[i].id < min))
			min = img->d[i].id;
	return min;
}

int sif_digest_descriptor(const struct sif_image *img, const struct sif_descr *d, int32_t alg,
			  char *out, size_t len, struct sifu_err *err)
{
	if (!md_of(alg))
		return sifu_err_set(err, SIFU_E_UNSUPPORTED, ENOTSUP, "hash type %d is not supported",
				    alg);
	uint8_t b[4 + 1 + 4 + 4 + 8 * 4];
	uint32_t u;
	uint64_t q;
	u = htole32((uint32_t)d->datatype), memcpy(b, &u, 4);
	b[4] = d->used ? 1 : 0;
	u = htole32(d->id - sif_group_min_id(img, d->groupid)), memcpy(b + 5, &u, 4);
	u = htole32(d->link), memcpy(b + 9, &u, 4);
	q = htole64((uint64_t)d->size), memcpy(b + 13, &q, 8);
	q = htole64((uint64_t)d->ctime), memcpy(b + 21, &q, 8);
	q = htole64((uint64_t)d->uid), memcpy(b + 29, &q, 8);
	q = htole64((uint64_t)d->gid), memcpy(b + 37, &q, 8);
	EVP_MD_CTX *c = md_start(alg);
	EVP_DigestUpdate(c, b, sizeof(b));
	EVP_DigestUpdate(c, d->name, SIF_NAME_LEN);
	EVP_DigestUpdate(c, d->extra, SIF_EXTRA_LEN);
	md_finish(c, alg, out, len);
	return 0;
}

int sif_digest_object(const struct sif_image *img, const struct sif_descr *d, int32_t alg,
		      char *out, size_t len, struct sifu_err *err)
{
	if (!md_of(alg))
		return sifu_err_set(err, SIFU_E_UNSUPPORTED, ENOTSUP, "hash type %d is not supported",
				    alg);
	EVP_MD_CTX *c = md_start(alg);
	_cleanup_free_ uint8_t *buf = sifu_xmalloc(1 << 20);
	for (int64_t done = 0; done < d->size;) {
		size_t want = (size_t)(d->size - done < (1 << 20) ? d->size - done : (1 << 20));
		if (img->mem) {
			EVP_DigestUpdate(c, img->mem + d->offset + done, want);
			done += (int64_t)want;
			continue;
		}
		ssize_t n = pread(img->fd, buf, want, (off_t)(d->offset + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			EVP_MD_CTX_free(c);
			return n < 0 ? sifu_err_sys(err, "read object %u", d->id)
				     : sifu_err_set(err, SIFU_E_RANGE, EIO, "object %u: file shrank", d->id);
		}
		EVP_DigestUpdate(c, buf, (size_t)n);
		done += n;
	}
	md_finish(c, alg, out, len);
	return 0;
}

static int32_t alg_of_digest(const char *s)
{
	if (!strncmp(s, "sha256:", 7))
		return SIF_HASH_SHA256;
	if (!strncmp(s, "sha384:", 7))
		return SIF_HASH_SHA384;
	if (!strncmp(s, "sha512:", 7))
		return SIF_HASH_SHA512;
	return 0;
}

static int check_digest(const char *what, const char *want, int (*fn)(const struct sif_image *,
			const struct sif_descr *, int32_t, char *, size_t, struct sifu_err *),
			const struct sif_image *img, const struct sif_descr *d, struct sifu_err *err)
{
	int32_t alg = want ? alg_of_digest(want) : 0;
	if (!alg)
		return sifu_err_set(err, SIFU_E_VERIFY, EINVAL, "signed metadata: %s digest '%s' "
				    "is not sha256/sha384/sha512", what, want ? want : "(missing)");
	char got[200];
	int r = fn(img, d, alg, got, sizeof(got), err);
	if (r < 0)
		return r;
	if (strcmp(got, want))
		return sifu_err_set(err, SIFU_E_VERIFY, EBADMSG, "%s digest mismatch: signed %s, "
				    "image has %s", what, want, got);
	return 0;
}

static int header_fn(const struct sif_image *img, const struct sif_descr *d, int32_t alg,
		     char *out, size_t len, struct sifu_err *err)
{
	(void)d;
	return sif_digest_header(img, alg, out, len, err);
}

/* Which objects a signature descriptor covers: its linked group (all objects
 * of the group), or its one linked object. */
static size_t covered(const struct sif_image *img, const struct sif_descr *sig,
		      const struct sif_descr **out, size_t max)
{
	size_t n = 0;
	bool group = (sig->link & SIF_GROUP_MASK) == SIF_GROUP_MASK;
	for (int64_t i = 0; i < img->h.dtotal && n < max; i++) {
		const struct sif_descr *d = &img->d[i];
		if (!d->used || d == sig)
			continue;
		if (group ? d->groupid == sig->link : d->id == sig->link)
			out[n++] = d;
	}
	return n;
}

int sif_check_metadata(const struct sif_image *img, const struct sif_descr *sig,
		       const char *json, size_t len, uint32_t *ids, size_t *nids,
		       struct sifu_err *err)
{
	json_error_t je;
	json_t *m = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	int r = 0;
	if (!json_is_object(m)) {
		r = sifu_err_set(err, SIFU_E_VERIFY, EINVAL, "signed metadata is not a JSON object "
				 "(line %d: %s)", je.line, je.text);
		goto out;
	}
	json_t *ver = json_object_get(m, "version");
	if (!json_is_integer(ver) || json_integer_value(ver) != 1) {
		r = sifu_err_set(err, SIFU_E_UNSUPPORTED, EINVAL,
				 "signed metadata version is not 1");
		goto out;
	}
	json_t *hd = json_object_get(json_object_get(m, "header"), "digest");
	if ((r = check_digest("header", json_string_value(hd), header_fn, img, NULL, err)) < 0)
		goto out;
	const struct sif_descr *objs[SIF_DESCR_MAX > 4096 ? 4096 : SIF_DESCR_MAX];
	size_t nobj = covered(img, sig, objs, ARRAY_SIZE(objs));
	json_t *arr = json_object_get(m, "objects");
	if (!json_is_array(arr)) {
		r = sifu_err_set(err, SIFU_E_VERIFY, EINVAL, "signed metadata has no objects");
		goto out;
	}
	/* the signed set must be exactly the objects the signature claims */
	if (json_array_size(arr) != nobj) {
		r = sifu_err_set(err, SIFU_E_VERIFY, EBADMSG,
				 "signature object %u covers %zu objects, but %zu were signed",
				 sig->id, nobj, json_array_size(arr));
		goto out;
	}
	for (size_t i = 0; i < nobj; i++) {
		json_t *o = json_array_get(arr, i);
		json_t *rel = json_object_get(o, "relativeId");
		const struct sif_descr *d = NULL;
		if (json_is_integer(rel))
			for (size_t k = 0; k < nobj; k++)
				if ((json_int_t)(objs[k]->id - sif_group_min_id(img, objs[k]->groupid)) ==
				    json_integer_value(rel))
					d = objs[k];
		if (!d) {
			r = sifu_err_set(err, SIFU_E_VERIFY, EBADMSG, "signed object %zu (relative id "
					 "%" JSON_INTEGER_FORMAT ") is not in the image", i,
					 json_is_integer(rel) ? json_integer_value(rel) : -1);
			goto out;
		}
		char what[64];
		snprintf(what, sizeof(what), "object %u descriptor", d->id);
		if ((r = check_digest(what, json_string_value(json_object_get(o, "descriptorDigest")),
				      sif_digest_descriptor, img, d, err)) < 0)
			goto out;
		snprintf(what, sizeof(what), "object %u data", d->id);
		if ((r = check_digest(what, json_string_value(json_object_get(o, "objectDigest")),
				      sif_digest_object, img, d, err)) < 0)
			goto out;
		if (ids && i < *nids)
			ids[i] = d->id;
	}
	if (nids)
		*nids = nobj;
out:
	json_decref(m);
	return r;
}

/* ------------------------------------------------------------------ DSSE */

static unsigned char *b64dec(const char *s, size_t *outlen)
{
	size_t n = strlen(s);
	unsigned char *out = sifu_xmalloc(n / 4 * 3 + 4);
	EVP_ENCODE_CTX *c = EVP_ENCODE_CTX_new();
	int l1 = 0, l2 = 0;
	EVP_DecodeInit(c);
	if (EVP_DecodeUpdate(c, out, &l1, (const unsigned char *)s, (int)n) < 0 ||
	    EVP_DecodeFinal(c, out + l1, &l2) < 0) {
		EVP_ENCODE_CTX_free(c);
		free(out);
		return NULL;
	}
	EVP_ENCODE_CTX_free(c);
	*outlen = (size_t)(l1 + l2);
	return out;
}

/* DSSE v1 pre-authentication encoding */
static char *pae(const char *type, const unsigned char *payload, size_t plen, size_t *len)
{
	size_t tl = strlen(type);
	char head[128];
	int h = snprintf(head, sizeof(head), "DSSEv1 %zu ", tl);
	char mid[32];
	int m = snprintf(mid, sizeof(mid), " %zu ", plen);
	*len = (size_t)h + tl + (size_t)m + plen;
	char *b = sifu_xmalloc(*len);
	memcpy(b, head, (size_t)h);
	memcpy(b + h, type, tl);
	memcpy(b + (size_t)h + tl, mid, (size_t)m);
	memcpy(b + (size_t)h + tl + (size_t)m, payload, plen);
	return b;
}

static bool verify_one(EVP_PKEY *key, const char *msg, size_t len, const unsigned char *sig,
		       size_t slen)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int id = EVP_PKEY_get_base_id(key);
	/* Ed25519 signs the message itself; RSA (PKCS#1 v1.5) and ECDSA its SHA-256 */
	const EVP_MD *md = (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448) ? NULL : EVP_sha256();
	bool ok = c && EVP_DigestVerifyInit(c, NULL, md, NULL, key) == 1 &&
		  EVP_DigestVerify(c, sig, slen, (const unsigned char *)msg, len) == 1;
	EVP_MD_CTX_free(c);
	return ok;
}

int sif_verify_dsse(const struct sif_image *img, const struct sif_descr *sig,
		    const char *pubkey_pem, uint32_t *ids, size_t *nids, struct sifu_err *err)
{
	FILE *f = fopen(pubkey_pem, "re");
	if (!f)
		return sifu_err_sys(err, "open %s", pubkey_pem);
	EVP_PKEY *key = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (!key)
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "%s is not a PEM public key",
				    pubkey_pem);
	_cleanup_free_ char *env = NULL;
	size_t elen;
	int r = sif_read_object(img, sig, 16u << 20, &env, &elen, err);
	json_t *e = NULL;
	unsigned char *payload = NULL;
	char *msg = NULL;
	if (r < 0)
		goto out;
	json_error_t je;
	e = json_loadb(env, elen, JSON_REJECT_DUPLICATES, &je);
	const char *type = json_string_value(json_object_get(e, "payloadType"));
	const char *p64 = json_string_value(json_object_get(e, "payload"));
	json_t *sigs = json_object_get(e, "signatures");
	if (!type || !p64 || !json_is_array(sigs)) {
		r = sifu_err_set(err, SIFU_E_VERIFY, EINVAL, "signature object %u is not a DSSE "
				 "envelope", sig->id);
		goto out;
	}
	if (strcmp(type, "application/vnd.sylabs.sif-metadata+json")) {
		r = sifu_err_set(err, SIFU_E_VERIFY, EINVAL, "DSSE payload type '%s' is not SIF "
				 "metadata", type);
		goto out;
	}
	size_t plen;
	if (!(payload = b64dec(p64, &plen))) {
		r = sifu_err_set(err, SIFU_E_VERIFY, EINVAL, "DSSE payload is not base64");
		goto out;
	}
	size_t mlen;
	msg = pae(type, payload, plen, &mlen);
	bool ok = false;
	for (size_t i = 0; i < json_array_size(sigs) && !ok; i++) {
		const char *s64 = json_string_value(json_object_get(json_array_get(sigs, i), "sig"));
		size_t slen;
		unsigned char *s = s64 ? b64dec(s64, &slen) : NULL;
		ok = s && verify_one(key, msg, mlen, s, slen);
		free(s);
	}
	if (!ok) {
		r = sifu_err_set(err, SIFU_E_VERIFY, EPERM, "signature object %u: no signature made "
				 "by the key in %s", sig->id, pubkey_pem);
		goto out;
	}
	r = sif_check_metadata(img, sig, (const char *)payload, plen, ids, nids, err);
out:
	free(msg);
	free(payload);
	json_decref(e);
	EVP_PKEY_free(key);
	return r;
}
