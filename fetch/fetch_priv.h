/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared inside fetch/ only. */
#pragma once

#include "fetch.h"

#include <jansson.h>

struct fetch_sha256 {
	void *ctx; /* EVP_MD_CTX */
};
void fetch_sha256_init(struct fetch_sha256 *h);
void fetch_sha256_update(struct fetch_sha256 *h, const void *p, size_t n);
/* Finish into 64 hex chars + NUL; the context may be freed afterwards. */
void fetch_sha256_final_hex(struct fetch_sha256 *h, char hex[FETCH_HEX_LEN + 1]);
void fetch_sha256_free(struct fetch_sha256 *h);
void fetch_sha256_buf(const void *p, size_t n, char hex[FETCH_HEX_LEN + 1]);
/* sha256 of everything readable from FD (from its current offset). */
int fetch_sha256_fd(int fd, char hex[FETCH_HEX_LEN + 1], uint64_t *size);

/* The blob DIGEST names, if the cache holds it: 1 with *FD open on it, 0
 * when it does not (HEX is filled either way), -EINVAL with ERR set when
 * DIGEST is malformed. */
int fetch_cache_find(struct fetch_cache *c, const char *digest, char hex[FETCH_HEX_LEN + 1],
                     int *fd, struct sifu_err *err);

/* An image config is read whole into memory: the most it may be.  A
 * manifest that announces more is refused before anything is downloaded. */
#define FETCH_CONFIG_MAX (16u << 20)

/* Parse JSON with duplicate keys refused; the message names line/column. */
json_t *fetch_json_parse(const char *s, size_t len, const char *what, struct sifu_err *err);

/* An image source: where the manifest and the blobs come from. */
struct fetch_source {
	/* the manifest (or index) the reference names, into *out (malloc) */
	int (*get_manifest)(struct fetch_source *s, const char *digest_or_null, char **out,
	                    size_t *len, struct sifu_err *err);
	/* an fd positioned at the start of the blob (verified against DIGEST
	 * by whoever reads it); SIZE is the descriptor's */
	int (*open_blob)(struct fetch_source *s, const struct fetch_blob *b, struct sifu_err *err);
	void (*free)(struct fetch_source *s);
};

int fetch_source_registry(const struct fetch_ref *ref, const struct fetch_pull_opts *o,
                          struct fetch_cache *cache, struct fetch_source **out,
                          struct sifu_err *err);
int fetch_source_oci_dir(const struct fetch_ref *ref, struct fetch_source **out,
                         struct sifu_err *err);
int fetch_source_archive(const struct fetch_ref *ref, struct fetch_cache *cache,
                         struct fetch_source **out, struct sifu_err *err);
/* GET URL into FD (retries, Range resume; TLS as O says). */
int fetch_http_download(const char *url, const struct fetch_pull_opts *o, int fd,
                        struct sifu_err *err);

/* The registry client for a push (registry.c; push.c uses it): one
 * repository, credentials found as for a pull, tokens asked for with the
 * pull,push scope. */
struct reg;
struct reg *fetch_reg_open(const char *host, const char *repo, const struct fetch_pull_opts *o,
                           struct sifu_err *err);
void fetch_reg_close(struct reg *g);
/* What a request sends: METHOD "HEAD", "POST" (no body) or "PUT" with SIZE
 * bytes from MEM, or else read from FD at offset 0 (again on each retry). */
struct fetch_send {
	const char *method;
	const char *ctype; /* Content-Type, or NULL */
	const char *mem;
	int fd;
	uint64_t size;
	uint64_t sent;                  /* private */
	struct sifu_progress *progress; /* or NULL */
};
/* What the registry answered: the status, its Location and
 * Docker-Content-Digest headers (NULL when absent). */
struct fetch_answer {
	long status;
	char *location, *digest;
};
void fetch_answer_free(struct fetch_answer *a);
/* Send S to WHERE (a path on the registry, "/v2/…", or a Location it gave)
 * through the pull's auth and retry loop; any 2xx is success.  WHAT names
 * the request in errors (a 404 is SIFU_E_NOTFOUND). */
int fetch_reg_send(struct reg *g, const char *where, struct fetch_send *s, struct fetch_answer *a,
                   const char *what, struct sifu_err *err);
