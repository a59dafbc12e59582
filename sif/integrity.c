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
#include <sys/mman.h>

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

/* ------------------------------------------------------- DSSE signing */

static char *b64enc(const unsigned char *in, size_t n, bool pad)
{
	char *out = sifu_xmalloc(4 * ((n + 2) / 3) + 1);
	int l = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	if (!pad)
		while (l > 0 && out[l - 1] == '=')
			out[--l] = '\0';
	return out;
}

static void ssh_string(unsigned char **p, const void *data, size_t n)
{
	uint32_t be = htobe32((uint32_t)n);
	memcpy(*p, &be, 4);
	memcpy(*p + 4, data, n);
	*p += 4 + n;
}

static void ssh_mpint(unsigned char **p, const BIGNUM *bn)
{
	unsigned char buf[1024 + 1];
	int n = BN_num_bytes(bn);
	buf[0] = 0;
	BN_bn2bin(bn, buf + 1);
	bool lead = n > 0 && (buf[1] & 0x80);
	ssh_string(p, lead ? buf : buf + 1, (size_t)n + lead);
}

/* The key id sylabs/sif puts in DSSE signatures: the SSH SHA-256
 * fingerprint of the public key ("SHA256:" + unpadded base64). */
int sif_ssh_fingerprint(EVP_PKEY *key, char *out, size_t len, struct sifu_err *err)
{
	unsigned char wire[2048], *p = wire;
	int id = EVP_PKEY_get_base_id(key);
	if (id == EVP_PKEY_ED25519) {
		unsigned char raw[32];
		size_t rl = sizeof(raw);
		if (!EVP_PKEY_get_raw_public_key(key, raw, &rl))
			return sifu_err_set(err, SIFU_E_UNSUPPORTED, EINVAL, "unreadable Ed25519 key");
		ssh_string(&p, "ssh-ed25519", 11);
		ssh_string(&p, raw, rl);
	} else if (id == EVP_PKEY_RSA) {
		BIGNUM *n = NULL, *e = NULL;
		if (!EVP_PKEY_get_bn_param(key, "n", &n) || !EVP_PKEY_get_bn_param(key, "e", &e) ||
		    BN_num_bytes(n) > 1000) {
			BN_free(n), BN_free(e);
			return sifu_err_set(err, SIFU_E_UNSUPPORTED, EINVAL, "unsupported RSA key");
		}
		ssh_string(&p, "ssh-rsa", 7);
		ssh_mpint(&p, e);
		ssh_mpint(&p, n);
		BN_free(n), BN_free(e);
	} else if (id == EVP_PKEY_EC) {
		char group[64];
		unsigned char pt[200];
		size_t gl = 0, pl = 0;
		if (!EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof(group), &gl) ||
		    !EVP_PKEY_get_octet_string_param(key, "encoded-pub-key", pt, sizeof(pt), &pl))
			return sifu_err_set(err, SIFU_E_UNSUPPORTED, EINVAL, "unreadable EC key");
		const char *curve = !strcmp(group, "prime256v1") ? "nistp256"
				    : !strcmp(group, "secp384r1") ? "nistp384"
				    : !strcmp(group, "secp521r1") ? "nistp521" : NULL;
		if (!curve)
			return sifu_err_set(err, SIFU_E_UNSUPPORTED, EINVAL, "EC curve %s", group);
		char name[32];
		snprintf(name, sizeof(name), "ecdsa-sha2-%s", curve);
		ssh_string(&p, name, strlen(name));
		ssh_string(&p, curve, strlen(curve));
		ssh_string(&p, pt, pl);
	} else {
		return sifu_err_set(err, SIFU_E_UNSUPPORTED, EINVAL,
				    "key type is not Ed25519, RSA or ECDSA");
	}
	unsigned char h[32];
	EVP_Digest(wire, (size_t)(p - wire), h, NULL, EVP_sha256(), NULL);
	_cleanup_free_ char *b = b64enc(h, sizeof(h), false);
	snprintf(out, len, "SHA256:%s", b);
	return 0;
}

/* Go's encoding/json of sylabs/sif's metadata: compact, fields in order. */
static char *metadata_json(const struct sif_image *img, uint32_t link, int32_t alg,
			   struct sifu_err *err)
{
	const struct sif_descr *objs[4096];
	struct sif_descr probe = {.link = link};
	size_t n = covered(img, &probe, objs, ARRAY_SIZE(objs));
	if (!n) {
		sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT, "nothing to sign: no %s %u",
			     (link & SIF_GROUP_MASK) == SIF_GROUP_MASK ? "object group" : "object",
			     link & ~SIF_GROUP_MASK);
		return NULL;
	}
	char hd[200];
	if (sif_digest_header(img, alg, hd, sizeof(hd), err) < 0)
		return NULL;
	size_t cap = 128 + n * 512, o = 0;
	char *j = sifu_xmalloc(cap);
	o += (size_t)snprintf(j + o, cap - o, "{\"version\":1,\"header\":{\"digest\":\"%s\"},"
			      "\"objects\":[", hd);
	for (size_t i = 0; i < n; i++) {
		char dd[200], od[200];
		if (sif_digest_descriptor(img, objs[i], alg, dd, sizeof(dd), err) < 0 ||
		    sif_digest_object(img, objs[i], alg, od, sizeof(od), err) < 0) {
			free(j);
			return NULL;
		}
		o += (size_t)snprintf(j + o, cap - o, "%s{\"relativeId\":%u,\"descriptorDigest\":"
				      "\"%s\",\"objectDigest\":\"%s\"}", i ? "," : "",
				      objs[i]->id - sif_group_min_id(img, objs[i]->groupid), dd, od);
	}
	snprintf(j + o, cap - o, "]}");
	return j;
}

int sif_dsse_envelope(const struct sif_image *img, uint32_t link, const char *const *keys,
		      size_t nkeys, char **out, size_t *outlen, struct sifu_err *err)
{
	static const char type[] = "application/vnd.sylabs.sif-metadata+json";
	_cleanup_free_ char *meta = metadata_json(img, link, SIF_HASH_SHA256, err);
	if (!meta)
		return -EINVAL;
	size_t mlen;
	_cleanup_free_ char *msg = pae(type, (const unsigned char *)meta, strlen(meta), &mlen);
	_cleanup_free_ char *p64 = b64enc((const unsigned char *)meta, strlen(meta), true);
	size_t cap = strlen(p64) + 256 + nkeys * 1600, o = 0;
	char *env = sifu_xmalloc(cap);
	o += (size_t)snprintf(env + o, cap - o, "{\"payloadType\":\"%s\",\"payload\":\"%s\","
			      "\"signatures\":[", type, p64);
	for (size_t i = 0; i < nkeys; i++) {
		FILE *f = fopen(keys[i], "re");
		EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
		if (f)
			fclose(f);
		if (!k) {
			free(env);
			return f ? sifu_err_set(err, SIFU_E_USAGE, EINVAL, "%s is not an unencrypted PEM "
						"private key", keys[i])
				 : sifu_err_sys(err, "open %s", keys[i]);
		}
		char kid[80];
		int id = EVP_PKEY_get_base_id(k);
		EVP_MD_CTX *c = EVP_MD_CTX_new();
		unsigned char sig[1024];
		size_t slen = sizeof(sig);
		int r = sif_ssh_fingerprint(k, kid, sizeof(kid), err);
		if (r == 0 && (EVP_DigestSignInit(c, NULL, id == EVP_PKEY_ED25519 ? NULL : EVP_sha256(),
						  NULL, k) != 1 ||
			       EVP_DigestSign(c, sig, &slen, (const unsigned char *)msg, mlen) != 1))
			r = sifu_err_set(err, SIFU_E_UNSUPPORTED, EINVAL, "signing with %s failed",
					 keys[i]);
		EVP_MD_CTX_free(c);
		EVP_PKEY_free(k);
		if (r < 0) {
			free(env);
			return r;
		}
		_cleanup_free_ char *s64 = b64enc(sig, slen, true);
		o += (size_t)snprintf(env + o, cap - o, "%s{\"keyid\":\"%s\",\"sig\":\"%s\"}",
				      i ? "," : "", kid, s64);
	}
	o += (size_t)snprintf(env + o, cap - o, "]}");
	*out = env;
	*outlen = o;
	return 0;
}

int sif_sign_dsse(const char *path, uint32_t link, const char *const *keys, size_t nkeys,
		  uint32_t *sigid, struct sifu_err *err)
{
	_cleanup_sif_ struct sif_image *img = NULL;
	int r = sif_open_path(path, false, &img, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *env = NULL;
	size_t len;
	if ((r = sif_dsse_envelope(img, link, keys, nkeys, &env, &len, err)) < 0)
		return r;
	_cleanup_close_ int mfd = memfd_create("sif-signature", MFD_CLOEXEC);
	if (mfd < 0)
		return sifu_err_sys(err, "memfd_create");
	if (write(mfd, env, len) != (ssize_t)len || lseek(mfd, 0, SEEK_SET) != 0)
		return sifu_err_sys(err, "write the signature");
	struct sif_add_opts o;
	sif_add_opts_init(&o);
	o.datatype = SIF_DT_SIGNATURE;
	o.groupid = 0;
	o.link = link;
	o.hashtype = SIF_HASH_SHA256; /* DSSE signatures carry no key fingerprint here */
	return sif_add_object(path, mfd, &o, sigid, err);
}
