/* SPDX-License-Identifier: BSD-3-Clause */
/* Digests and JSON for fetch/. */
#include "fetch_priv.h"

#include <openssl/evp.h>

void fetch_sha256_init(struct fetch_sha256 *h)
{
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || !EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL))
		abort();
}

void fetch_sha256_update(struct fetch_sha256 *h, const void *p, size_t n)
{
	EVP_DigestUpdate(h->ctx, p, n);
}

void fetch_sha256_final_hex(struct fetch_sha256 *h, char hex[FETCH_HEX_LEN + 1])
{
	unsigned char md[32];
	unsigned int len = 0;
	EVP_DigestFinal_ex(h->ctx, md, &len);
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

void fetch_sha256_free(struct fetch_sha256 *h)
{
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}

void fetch_sha256_buf(const void *p, size_t n, char hex[FETCH_HEX_LEN + 1])
{
	struct fetch_sha256 h;
	fetch_sha256_init(&h);
	fetch_sha256_update(&h, p, n);
	fetch_sha256_final_hex(&h, hex);
	fetch_sha256_free(&h);
}

int fetch_sha256_fd(int fd, char hex[FETCH_HEX_LEN + 1], uint64_t *size)
{
	struct fetch_sha256 h;
	_cleanup_free_ char *buf = sifu_xmalloc(1 << 20);
	uint64_t total = 0;
	fetch_sha256_init(&h);
	for (;;) {
		ssize_t n = read(fd, buf, 1 << 20);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = -errno;
			fetch_sha256_free(&h);
			return e;
		}
		if (n == 0)
			break;
		fetch_sha256_update(&h, buf, (size_t)n);
		total += (uint64_t)n;
	}
	fetch_sha256_final_hex(&h, hex);
	fetch_sha256_free(&h);
	if (size)
		*size = total;
	return 0;
}

int fetch_digest_parse(const char *digest, char hex[FETCH_HEX_LEN + 1], struct sifu_err *err)
{
	if (!digest || strncmp(digest, "sha256:", 7) != 0)
		return sifu_err_set(err, SIFU_E_UNSUPPORTED, 0,
		                    "digest \"%s\": only sha256 digests are supported",
		                    digest ? digest : "");
	const char *h = digest + 7;
	size_t i;
	for (i = 0; h[i]; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
			break;
	if (i != FETCH_HEX_LEN || h[i])
		return sifu_err_set(err, SIFU_E_CORRUPT, 0, "digest \"%s\" is malformed", digest);
	memcpy(hex, h, FETCH_HEX_LEN + 1);
	return 0;
}

json_t *fetch_json_parse(const char *s, size_t len, const char *what, struct sifu_err *err)
{
	json_error_t je;
	json_t *j = json_loadb(s, len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		sifu_err_set(err, SIFU_E_CORRUPT, 0, "%s: bad JSON at line %d column %d: %s", what,
		             je.line, je.column, je.text);
	return j;
}

bool fetch_available(void)
{
	return true;
}
