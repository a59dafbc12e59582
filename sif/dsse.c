/* SPDX-License-Identifier: BSD-3-Clause */
/* sif/dsse.c: DSSE envelopes (https://github.com/secure-systems-lab/dsse,
 * protocol.md) signed with PEM keys, as Apptainer's `sign --key` writes them.
 *
 * Facts the bytes depend on (sylabs/sif pkg/integrity/dsse.go, sigstore's
 * signature loaders, go-securesystemslib's dsse):
 *  - payloadType "application/vnd.sylabs.sif-metadata+json", payload the
 *    metadata JSON in standard base64 with padding;
 *  - each key signs PAE = "DSSEv1 <len type> <type> <len body> <body>":
 *    Ed25519 the PAE itself, RSA PKCS#1 v1.5 and ECDSA (ASN.1) its SHA-256;
 *  - keyid: the OpenSSH SHA-256 fingerprint of the public key ("SHA256:" +
 *    unpadded base64 of the SHA-256 of the SSH wire-format key blob,
 *    RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709), as go-securesystemslib's
 *    SHA256KeyID computes it;
 *  - the envelope is {"payloadType","payload","signatures":[{"keyid","sig"}]}
 *    in that order, signatures in the order of the keys, compact; the
 *    reference's images hold it with no newline after it (the fixture
 *    one-group-signed-dsse.sif: 1694 bytes ending in '}');
 *  - verification succeeds when one signature verifies with one key. */
#include "sif.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/err.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>

struct sif_pemkey {
	EVP_PKEY *pkey;
	char id[64];
};

static char *b64(const void *p, size_t n, bool pad)
{
	char *s = sifu_xmalloc(4 * ((n + 2) / 3) + 1);
	int l = EVP_EncodeBlock((unsigned char *)s, p, (int)n);
	if (!pad)
		while (l > 0 && s[l - 1] == '=')
			s[--l] = 0;
	return s;
}

/* Standard or URL-safe base64, padded or not (Go's dsse accepts both). */
static int unb64(const char *s, uint8_t **out, size_t *outlen)
{
	size_t n = strlen(s);
	char *t = sifu_xmalloc(n + 4);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		t[k++] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	while (k % 4)
		t[k++] = '=';
	t[k] = 0;
	uint8_t *o = sifu_xmalloc(k / 4 * 3 + 1);
	int l = EVP_DecodeBlock(o, (unsigned char *)t, (int)k);
	if (l < 0) {
		free(t);
		free(o);
		return -1;
	}
	for (size_t i = k; i > 0 && t[i - 1] == '='; i--)
		l--;
	free(t);
	*out = o;
	*outlen = (size_t)l;
	return 0;
}

static int ssl_err(struct sifu_err *err, const char *what, const char *path)
{
	char buf[256] = "";
	unsigned long e = ERR_get_error();
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return sifu_err_set(err, SIFU_E_CORRUPT, EINVAL, "%s %s%s%s", what, path, *buf ? ": " : "",
	                    buf);
}

/* SSH wire format of a public key, for its fingerprint. */
struct blob {
	uint8_t *p;
	size_t n;
};

static void put_string(struct blob *b, const void *data, size_t len)
{
	b->p = sifu_xrealloc(b->p, b->n + 4 + len);
	for (int i = 0; i < 4; i++)
		b->p[b->n + (size_t)i] = (uint8_t)(len >> (24 - 8 * i));
	memcpy(b->p + b->n + 4, data, len);
	b->n += 4 + len;
}

static void put_cstr(struct blob *b, const char *s)
{
	put_string(b, s, strlen(s));
}

/* mpint: big-endian, a leading zero byte when the top bit is set */
static int put_mpint(struct blob *b, EVP_PKEY *k, const char *param)
{
	BIGNUM *bn = NULL;
	if (!EVP_PKEY_get_bn_param(k, param, &bn))
		return -1;
	size_t l = (size_t)BN_num_bytes(bn);
	uint8_t *t = sifu_xcalloc(l + 1, 1);
	BN_bn2bin(bn, t + 1);
	BN_free(bn);
	bool pad = l && (t[1] & 0x80);
	put_string(b, pad ? t : t + 1, pad ? l + 1 : l);
	free(t);
	return 0;
}

static int ssh_blob(EVP_PKEY *k, struct blob *b)
{
	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_ED25519: {
		uint8_t raw[32];
		size_t l = sizeof(raw);
		if (!EVP_PKEY_get_raw_public_key(k, raw, &l))
			return -1;
		put_cstr(b, "ssh-ed25519");
		put_string(b, raw, l);
		return 0;
	}
	case EVP_PKEY_RSA:
		put_cstr(b, "ssh-rsa");
		if (put_mpint(b, k, "e") < 0 || put_mpint(b, k, "n") < 0)
			return -1;
		return 0;
	case EVP_PKEY_EC: {
		char group[64];
		const char *curve;
		if (!EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group), NULL))
			return -1;
		if (!strcmp(group, "prime256v1") || !strcmp(group, "P-256"))
			curve = "nistp256";
		else if (!strcmp(group, "secp384r1") || !strcmp(group, "P-384"))
			curve = "nistp384";
		else if (!strcmp(group, "secp521r1") || !strcmp(group, "P-521"))
			curve = "nistp521";
		else
			return -1;
		uint8_t pt[160];
		size_t l = 0;
		if (!EVP_PKEY_get_octet_string_param(k, "encoded-pub-key", pt, sizeof(pt), &l))
			return -1;
		char name[32];
		snprintf(name, sizeof(name), "ecdsa-sha2-%s", curve);
		put_cstr(b, name);
		put_cstr(b, curve);
		put_string(b, pt, l);
		return 0;
	}
	}
	return -1;
}

int sif_pemkey_load(const char *path, bool private_key, struct sif_pemkey **out,
                    struct sifu_err *err)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return sifu_err_sys(err, "open key %s", path);
	EVP_PKEY *k = private_key ? PEM_read_PrivateKey(f, NULL, NULL, NULL)
	                          : PEM_read_PUBKEY(f, NULL, NULL, NULL);
	if (!k) {
		int r = ssl_err(err,
		                private_key ? "cannot read a PEM private key from"
		                            : "cannot read a PEM public key from",
		                path);
		sifu_err_hint(err,
		              private_key
		                  ? "sign --key takes a PEM private key (RSA, ECDSA or Ed25519)"
		                  : "verify --key takes a PEM public key (RSA, ECDSA or Ed25519)");
		return r;
	}
	int t = EVP_PKEY_get_base_id(k);
	if (t != EVP_PKEY_RSA && t != EVP_PKEY_EC && t != EVP_PKEY_ED25519) {
		EVP_PKEY_free(k);
		return sifu_err_set(err, SIFU_E_UNSUPPORTED, ENOTSUP,
		                    "%s: only RSA, ECDSA and Ed25519 keys sign SIF images", path);
	}
	struct sif_pemkey *pk = sifu_xcalloc(1, sizeof(*pk));
	pk->pkey = k;
	struct blob b = {0};
	if (ssh_blob(k, &b) < 0) {
		free(b.p);
		sif_pemkey_free(pk);
		return sifu_err_set(
		    err, SIFU_E_UNSUPPORTED, ENOTSUP,
		    "%s: unsupported key (ECDSA keys must be on P-256, P-384 or P-521)", path);
	}
	unsigned char h[32];
	unsigned hl;
	EVP_Digest(b.p, b.n, h, &hl, EVP_sha256(), NULL);
	free(b.p);
	char *s = b64(h, hl, false);
	snprintf(pk->id, sizeof(pk->id), "SHA256:%s", s);
	free(s);
	*out = pk;
	return 0;
}

void sif_pemkey_free(struct sif_pemkey *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

const char *sif_pemkey_id(const struct sif_pemkey *k)
{
	return k->id;
}

char *sif_dsse_pae(const char *type, const void *body, size_t len, size_t *outlen)
{
	size_t tl = strlen(type);
	size_t cap = tl + len + 64;
	char *s = sifu_xmalloc(cap);
	int h = snprintf(s, cap, "DSSEv1 %zu %s %zu ", tl, type, len);
	memcpy(s + h, body, len);
	*outlen = (size_t)h + len;
	return s;
}

static const EVP_MD *md_for(EVP_PKEY *k)
{
	return EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
}

static int sign_one(struct sif_pemkey *k, const char *m, size_t mlen, char **sig_b64,
                    struct sifu_err *err)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t sl = 0;
	unsigned char *sig = NULL;
	int ok = ctx && EVP_DigestSignInit(ctx, NULL, md_for(k->pkey), NULL, k->pkey) == 1 &&
	         EVP_DigestSign(ctx, NULL, &sl, (const unsigned char *)m, mlen) == 1;
	if (ok) {
		sig = sifu_xmalloc(sl);
		ok = EVP_DigestSign(ctx, sig, &sl, (const unsigned char *)m, mlen) == 1;
	}
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		free(sig);
		return ssl_err(err, "signing failed with key", k->id);
	}
	*sig_b64 = b64(sig, sl, true);
	free(sig);
	return 0;
}

int sif_dsse_sign(struct sif_pemkey *const *keys, size_t nkeys, const void *body, size_t len,
                  char **out, size_t *outlen, struct sifu_err *err)
{
	size_t plen;
	_cleanup_free_ char *pae = sif_dsse_pae(SIF_DSSE_PAYLOAD_TYPE, body, len, &plen);
	_cleanup_free_ char *payload = b64(body, len, true);
	size_t cap = strlen(payload) + 256, n = 0;
	char *s = sifu_xmalloc(cap);
	/* Base64 and the media type need no JSON escaping; written by hand
	 * so the bytes are those of Go's encoder. */
	n += (size_t)snprintf(s, cap, "{\"payloadType\":\"%s\",\"payload\":\"%s\",\"signatures\":[",
	                      SIF_DSSE_PAYLOAD_TYPE, payload);
	for (size_t i = 0; i < nkeys; i++) {
		char *sig = NULL;
		int r = sign_one(keys[i], pae, plen, &sig, err);
		if (r < 0) {
			free(s);
			return r;
		}
		size_t need = strlen(sig) + strlen(keys[i]->id) + 64;
		if (n + need + 8 > cap)
			s = sifu_xrealloc(s, cap = n + need + 8);
		n += (size_t)snprintf(s + n, cap - n, "%s{\"keyid\":\"%s\",\"sig\":\"%s\"}",
		                      i ? "," : "", keys[i]->id, sig);
		free(sig);
	}
	n += (size_t)snprintf(s + n, cap - n, "]}");
	*out = s;
	*outlen = n;
	return 0;
}

static json_t *load_envelope(const void *data, size_t len)
{
	json_t *e = json_loadb(data, len, JSON_DISABLE_EOF_CHECK, NULL);
	json_t *t = e ? json_object_get(e, "payloadType") : NULL;
	if (!json_is_string(t) || strcmp(json_string_value(t), SIF_DSSE_PAYLOAD_TYPE) ||
	    !json_is_string(json_object_get(e, "payload")) ||
	    !json_is_array(json_object_get(e, "signatures"))) {
		json_decref(e);
		return NULL;
	}
	return e;
}

bool sif_dsse_is_envelope(const void *data, size_t len)
{
	json_t *e = load_envelope(data, len);
	json_decref(e);
	return e != NULL;
}

static bool verify_one(EVP_PKEY *k, const char *m, size_t mlen, const uint8_t *sig, size_t sl)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, md_for(k), NULL, k) == 1 &&
	          EVP_DigestVerify(ctx, sig, sl, (const unsigned char *)m, mlen) == 1;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

static void append(char **s, const char *id)
{
	char *n = sifu_xasprintf("%s%s%s", *s ? *s : "", *s ? "," : "", id);
	free(*s);
	*s = n;
}

int sif_dsse_verify(const void *env, size_t len, struct sif_pemkey *const *keys, size_t nkeys,
                    char **payload, size_t *plen, char **signers, struct sifu_err *err)
{
	*signers = NULL;
	json_t *e = load_envelope(env, len);
	if (!e)
		return sifu_err_set(err, SIFU_E_CORRUPT, EINVAL,
		                    "not a DSSE envelope of SIF metadata");
	uint8_t *body = NULL;
	size_t blen;
	if (unb64(json_string_value(json_object_get(e, "payload")), &body, &blen) < 0) {
		json_decref(e);
		return sifu_err_set(err, SIFU_E_CORRUPT, EINVAL, "DSSE payload is not base64");
	}
	size_t pl;
	_cleanup_free_ char *pae = sif_dsse_pae(SIF_DSSE_PAYLOAD_TYPE, body, blen, &pl);
	char *ok_ids = NULL, *all_ids = NULL;
	json_t *sigs = json_object_get(e, "signatures");
	for (size_t i = 0; i < json_array_size(sigs); i++) {
		json_t *sg = json_array_get(sigs, i);
		const char *kid = json_string_value(json_object_get(sg, "keyid"));
		const char *sv = json_string_value(json_object_get(sg, "sig"));
		if (kid && *kid)
			append(&all_ids, kid);
		uint8_t *sig;
		size_t sl;
		if (!sv || unb64(sv, &sig, &sl) < 0)
			continue;
		for (size_t k = 0; k < nkeys; k++) {
			/* a key id that names another key is not tried (as go-securesystemslib) */
			if (kid && *kid && strcmp(kid, keys[k]->id))
				continue;
			if (verify_one(keys[k]->pkey, pae, pl, sig, sl)) {
				append(&ok_ids, keys[k]->id);
				break;
			}
		}
		free(sig);
	}
	json_decref(e);
	if (!ok_ids) {
		free(body);
		*signers = all_ids;
		return sifu_err_set(err, SIFU_E_VERIFY, EBADMSG,
		                    "no trusted key: none of the given keys verifies it (signed by "
		                    "key id %s)",
		                    all_ids ? all_ids : "unknown");
	}
	free(all_ids);
	*signers = ok_ids;
	*payload = (char *)sifu_xrealloc(body, blen + 1);
	(*payload)[blen] = 0;
	*plen = blen;
	return 0;
}
