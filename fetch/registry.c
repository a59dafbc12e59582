/* SPDX-License-Identifier: BSD-3-Clause */
/* The OCI distribution client (distribution-spec v1.1, "Pull"), over libcurl:
 * manifests by tag or digest, blobs into the cache with Range resume,
 * anonymous and credentialed bearer tokens (the WWW-Authenticate challenge of
 * the Docker token spec), basic auth, retries with backoff.  The requests
 * `push` makes (HEAD, POST, PUT with a body; push.c) go through the same
 * auth and retry loop (fetch_reg_send).
 *
 * The Authorization header never follows a redirect to another host: libcurl
 * (>= 7.58) drops custom Authorization headers when a redirect changes host,
 * and CURLOPT_UNRESTRICTED_AUTH stays off. */
#include "fetch_priv.h"
#include "config.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

/* Bounds on what a registry may send.  Manifests and indexes: 4 MiB, what
 * the distribution spec asks every client to accept ("at least 4 megabytes",
 * spec.md, Pushing Manifests); tokens are a few KiB in practice; error bodies
 * are only read for their message.  Blobs are bounded by their descriptor's
 * size (see struct resp). */
#define MANIFEST_MAX (4u << 20)
#define ERRBODY_MAX  (64u << 10)
#define TOKEN_MAX    (1u << 20)

static const char *const ACCEPT_MANIFESTS =
    "Accept: application/vnd.oci.image.index.v1+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

struct reg {
	struct fetch_source base;
	char *host, *repo, *tag, *digest;
	char *base_url;
	CURL *curl;
	char *token;
	time_t token_expiry;
	bool use_basic;
	char *user, *pass;
	bool insecure, quiet;
	bool push; /* tokens are asked for with the pull,push scope */
	/* an HTTP answer came from the host in this process: a refused
	 * connection after that is a restart in progress, worth waiting for */
	bool reached;
	int retries;
	char *label;           /* "registry HOST", or the URL's host for https:// */
	const char *ca_bundle; /* the options', borrowed */
	struct fetch_cache *cache;
};

/* --------------------------------------------------------------- requests */

struct resp {
	CURL *curl;
	char *www_auth, *retry_after, *content_digest, *location;
	struct sifu_buf mem;
	int fd; /* blob sink for 200/206, or -1 */
	uint64_t range_from;
	bool started;
	bool overflow; /* an error body over ERRBODY_MAX */
	int write_errno;
	uint64_t written; /* bytes in fd */
	struct sifu_progress *progress;
	/* The most bytes a 200/206 body may hold in all (for a blob: its
	 * descriptor's size, counting what a resumed download already has),
	 * UINT64_MAX for none.  A Content-Length over it is refused before the
	 * body is read, and the transfer stops at the first byte past it, so a
	 * registry that lies about a size can neither fill the disk nor the
	 * memory before the digest check would have caught it. */
	uint64_t limit;
	const char *limit_what; /* "the 100 bytes its descriptor gives", ... */
	bool limit_is_space;    /* the limit is free disk space, not a promise */
	bool too_big;           /* the limit was passed ... */
	bool announced;         /* ... by the Content-Length header */
	uint64_t too_big_at;    /* bytes announced or received by then */
};

static void resp_reset_headers(struct resp *r)
{
	free(r->www_auth);
	free(r->retry_after);
	free(r->content_digest);
	free(r->location);
	r->www_auth = r->retry_after = r->content_digest = r->location = NULL;
}

static void resp_clear(struct resp *r)
{
	resp_reset_headers(r);
	free(r->mem.p);
	memset(&r->mem, 0, sizeof(r->mem));
	r->started = r->overflow = r->too_big = r->announced = false;
	r->write_errno = 0;
	r->too_big_at = 0;
}

static char *header_value(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);
	if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return NULL;
	const char *v = line + n + 1, *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	return sifu_xstrndup(v, (size_t)(end - v));
}

static bool status_ok(struct resp *r, long *status)
{
	*status = 0;
	curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, status);
	return *status == 200 || *status == 206;
}

/* A Content-Length past the limit: refuse before any of the body is read.
 * (One under it is a truncated body, which the size and digest checks of
 * the finished download catch.) */
static bool content_length_ok(struct resp *r, const char *v)
{
	long status;
	if (r->limit == UINT64_MAX || !status_ok(r, &status))
		return true;
	char *end;
	errno = 0;
	unsigned long long cl = strtoull(v, &end, 10);
	if (end == v || *end || errno || *v == '-')
		return true; /* libcurl itself refuses a malformed length */
	uint64_t have = status == 206 && r->fd >= 0 ? r->range_from : 0;
	if (cl <= r->limit && have + cl <= r->limit)
		return true;
	r->too_big = r->announced = true;
	r->too_big_at = cl;
	return false;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ctx)
{
	struct resp *r = ctx;
	size_t len = size * nitems;
	char *v;
	if (len > 5 && strncmp(buf, "HTTP/", 5) == 0) {
		resp_reset_headers(r); /* a new response: after a redirect, or a 100 */
	} else if ((v = header_value(buf, len, "Content-Length"))) {
		bool ok = content_length_ok(r, v);
		free(v);
		if (!ok)
			return 0; /* stops the transfer */
	} else if ((v = header_value(buf, len, "WWW-Authenticate")))
		free(r->www_auth), r->www_auth = v;
	else if ((v = header_value(buf, len, "Retry-After")))
		free(r->retry_after), r->retry_after = v;
	else if ((v = header_value(buf, len, "Docker-Content-Digest")))
		free(r->content_digest), r->content_digest = v;
	else if ((v = header_value(buf, len, "Location")))
		free(r->location), r->location = v;
	return len;
}

static size_t on_body(char *buf, size_t size, size_t nitems, void *ctx)
{
	struct resp *r = ctx;
	size_t len = size * nitems;
	long status;
	bool ok = status_ok(r, &status);
	if (r->fd >= 0 && ok) {
		if (!r->started) {
			r->started = true;
			if (status == 200 && r->range_from > 0) {
				/* the server ignored Range: start over */
				if (ftruncate(r->fd, 0) < 0 || lseek(r->fd, 0, SEEK_SET) < 0) {
					r->write_errno = errno;
					return 0;
				}
				r->written = 0;
			}
		}
		if (r->limit != UINT64_MAX && (len > r->limit || r->written > r->limit - len)) {
			r->too_big = true;
			r->too_big_at = r->written + len;
			return 0; /* nothing past the limit reaches the disk */
		}
		for (size_t off = 0; off < len;) {
			ssize_t n = write(r->fd, buf + off, len - off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				r->write_errno = errno;
				return 0;
			}
			off += (size_t)n;
		}
		r->written += len;
		if (r->progress)
			sifu_progress_update(r->progress, r->written);
		return len;
	}
	if (ok && r->fd < 0 && r->limit != UINT64_MAX &&
	    (len > r->limit || r->mem.len > r->limit - len)) {
		r->too_big = true;
		r->too_big_at = r->mem.len + len;
		return 0;
	}
	if (!ok && r->mem.len + len > ERRBODY_MAX) {
		r->overflow = true;
		return 0;
	}
	sifu_buf_add(&r->mem, buf, len);
	return len;
}

static char *b64(const char *s)
{
	size_t n = strlen(s);
	char *out = sifu_xmalloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
	return out;
}

static void set_common(struct reg *g, struct resp *r, struct curl_slist *hdrs)
{
	CURL *c = g->curl;
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "sifu/" SIFU_VERSION);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH, 0L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	/* a stalled transfer (under 1 byte/s for 60 s) is retried, and resumed */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, g->insecure ? 0L : 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, g->insecure ? 0L : 2L);
	if (g->ca_bundle && *g->ca_bundle)
		curl_easy_setopt(c, CURLOPT_CAINFO, g->ca_bundle);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
}

static bool transient(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_COULDNT_RESOLVE_HOST: return true;
	default: return false;
	}
}

/* Does HOST ("name[:port]", "[v6]:port", or an https:// URL's
 * "https://name") name this machine's loopback?  By name: libcurl gives no
 * address (CURLINFO_PRIMARY_IP) for a connection that failed. */
static bool loopback(const char *host)
{
	const char *h = strstr(host, "://") ? strstr(host, "://") + 3 : host;
	size_t n = h[0] == '[' ? strcspn(h, "]") + 1 : strcspn(h, ":/");
	return (n == 9 && strncmp(h, "localhost", 9) == 0) || strncmp(h, "127.", 4) == 0 ||
	       (n == 5 && strncmp(h, "[::1]", 5) == 0);
}

/* Is a failed transfer worth another try?  A connection refused by a
 * loopback address, before the registry has answered at all in this run, is
 * not: the local kernel answered at once that nothing listens on that port,
 * and five retries (31 s) would only delay the same answer -- the usual
 * cause is a wrong port or a registry that is not started.  Once the
 * registry has answered, a refusal is a restart in progress and is waited
 * for like any other transient failure; so is a refusal from another host
 * (a load balancer or registry coming back). */
static bool worth_retrying(const struct reg *g, CURLcode cc)
{
	if (!transient(cc))
		return false;
	if (cc != CURLE_COULDNT_CONNECT || g->reached)
		return true;
	long oserr = 0;
	curl_easy_getinfo(g->curl, CURLINFO_OS_ERRNO, &oserr);
	return !(oserr == ECONNREFUSED && loopback(g->host));
}

/* What went wrong below HTTP, in words (libcurl's own text is for --debug). */
static const char *cause_words(CURL *c, CURLcode cc)
{
	long oserr = 0;
	curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &oserr);
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST: return "name not resolved";
	case CURLE_COULDNT_RESOLVE_PROXY: return "proxy name not resolved";
	case CURLE_COULDNT_CONNECT:
		return oserr == ECONNREFUSED   ? "connection refused"
		       : oserr == ENETUNREACH  ? "network unreachable"
		       : oserr == EHOSTUNREACH ? "host unreachable"
		                               : "could not connect";
	case CURLE_OPERATION_TIMEDOUT: return "timed out";
	case CURLE_PEER_FAILED_VERIFICATION: return "TLS certificate not trusted";
	case CURLE_SSL_CACERT_BADFILE: return "the CA certificate file could not be read";
	case CURLE_SSL_CONNECT_ERROR: return "TLS handshake failed";
	case CURLE_GOT_NOTHING: return "the connection closed without an answer";
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		return oserr == ECONNRESET ? "connection reset" : "connection broken";
	case CURLE_PARTIAL_FILE: return "the transfer was cut short";
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM: return "HTTP/2 stream error";
	default: return curl_easy_strerror(cc);
	}
}

/* "key=\"value\"" parameters of a challenge. */
static char *challenge_param(const char *ch, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = ch; (p = strcasestr(p, key)) != NULL; p += kl) {
		if (p != ch && p[-1] != ' ' && p[-1] != ',')
			continue;
		if (p[kl] != '=')
			continue;
		const char *v = p + kl + 1;
		if (*v == '"') {
			const char *e = strchr(v + 1, '"');
			return e ? sifu_xstrndup(v + 1, (size_t)(e - v - 1)) : NULL;
		}
		return sifu_xstrndup(v, strcspn(v, ", "));
	}
	return NULL;
}

/* The registry's error JSON as one line, with a hint for the usual cases. */
static int http_error(struct reg *g, long status, const struct resp *r, const char *what,
                      struct sifu_err *err)
{
	char detail[512] = "";
	json_t *j = r->mem.len ? json_loadb(r->mem.p, r->mem.len, 0, NULL) : NULL;
	json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
	const char *code = json_string_value(json_object_get(e0, "code"));
	const char *msg = json_string_value(json_object_get(e0, "message"));
	if (code || msg)
		snprintf(detail, sizeof(detail), ": %s%s%s", code ? code : "",
		         code && msg ? ": " : "", msg ? msg : "");
	enum sifu_errcode ec = status == 404                      ? SIFU_E_NOTFOUND
	                       : (status == 401 || status == 403) ? SIFU_E_DENIED
	                                                          : SIFU_E_UNAVAILABLE;
	sifu_err_set(err, ec, 0, "%s: %s answered HTTP %ld%s", what, g->host, status, detail);
	if (status == 404 || status == 401 || status == 403)
		sifu_err_hint(err,
		              "the image does not exist or needs a login: check the name, or "
		              "set SIFU_DOCKER_USERNAME/SIFU_DOCKER_PASSWORD (or --docker-login)");
	else if (status == 429)
		sifu_err_hint(err, "rate limited%s%s; try again later or log in",
		              r->retry_after ? " for " : "", r->retry_after ? r->retry_after : "");
	json_decref(j);
	return -EIO;
}

static int fetch_token(struct reg *g, const char *challenge, struct sifu_err *err);

/* The one line for a body past its limit: which object, what was expected,
 * what came, and who is at fault. */
static int too_big_error(const struct resp *r, const char *what, struct sifu_err *err)
{
	unsigned long long at = (unsigned long long)r->too_big_at;
	if (r->limit_is_space) /* the outer context names the URL */
		return sifu_err_set(err, SIFU_E_RANGE, 0,
		                    "%s %llu bytes, more than %s; nothing was kept",
		                    r->announced ? "the server announces" : "the download passed",
		                    at, r->limit_what);
	if (r->announced)
		return sifu_err_set(err, SIFU_E_RANGE, 0,
		                    "%s: the registry announces %llu bytes (Content-Length), "
		                    "more than %s; the registry is misbehaving, nothing was kept",
		                    what, at, r->limit_what);
	return sifu_err_set(err, SIFU_E_RANGE, 0,
	                    "%s: the registry sent more than %s (%llu bytes received, "
	                    "transfer stopped); the registry is misbehaving, nothing was kept",
	                    what, r->limit_what, at);
}

/* The Authorization header for the credentials G holds now, or NULL. */
static char *auth_header(const struct reg *g)
{
	if (g->token && time(NULL) < g->token_expiry)
		return sifu_xasprintf("Authorization: Bearer %s", g->token);
	if (!g->use_basic || !g->user)
		return NULL;
	_cleanup_free_ char *up = sifu_xasprintf("%s:%s", g->user, g->pass ? g->pass : "");
	_cleanup_free_ char *enc = b64(up);
	return sifu_xasprintf("Authorization: Basic %s", enc);
}

/* Where a download into R->fd goes on: a Range header for what the file
 * already holds, appended to *H.  True when it holds all SIZE bytes. */
static bool resume_at(struct resp *r, uint64_t size, const char *what, struct curl_slist **h)
{
	r->range_from = 0;
	if (r->fd < 0)
		return false;
	struct stat st;
	r->range_from = fstat(r->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	r->written = r->range_from;
	if (size != UINT64_MAX && r->range_from >= size && r->range_from > 0)
		return true;
	if (r->range_from > 0) {
		char range[64];
		snprintf(range, sizeof(range), "Range: bytes=%llu-",
		         (unsigned long long)r->range_from);
		*h = curl_slist_append(*h, range);
		sifu_verbose("%s: resuming at byte %llu", what, (unsigned long long)r->range_from);
	}
	lseek(r->fd, 0, SEEK_END);
	return false;
}

/* The body of a PUT, read from the start again on every attempt. */
static size_t on_read(char *buf, size_t size, size_t nitems, void *ctx)
{
	struct fetch_send *s = ctx;
	size_t want = size * nitems;
	if (want > s->size - s->sent)
		want = (size_t)(s->size - s->sent);
	if (want == 0)
		return 0;
	if (s->mem) {
		memcpy(buf, s->mem + s->sent, want);
	} else {
		ssize_t n;
		do
			n = pread(s->fd, buf, want, (off_t)s->sent);
		while (n < 0 && errno == EINTR);
		if (n <= 0) /* a file that shrank: the registry's digest check fails */
			return CURL_READFUNC_ABORT;
		want = (size_t)n;
	}
	s->sent += want;
	if (s->progress)
		sifu_progress_update(s->progress, s->sent);
	return want;
}

/* The method and body of S (HEAD, POST with no body, PUT with one). */
static struct curl_slist *set_send(CURL *c, struct fetch_send *s, struct curl_slist *h)
{
	s->sent = 0;
	if (strcmp(s->method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(s->method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
	} else {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, s);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)s->size);
	}
	if (s->ctype) {
		_cleanup_free_ char *ct = sifu_xasprintf("Content-Type: %s", s->ctype);
		h = curl_slist_append(h, ct);
	}
	return h;
}

/* One request of URL into R (reset first): a GET, or what S says; ACCEPT,
 * the credentials G holds, a Range to resume a GET.  1 when R->fd already
 * holds all SIZE bytes (nothing is sent), else 0 with libcurl's result in
 * *CC and the HTTP status in *STATUS. */
static int get_once(struct reg *g, const char *url, const char *accept, struct fetch_send *s,
                    uint64_t size, struct resp *r, const char *what, CURLcode *cc, long *status)
{
	resp_clear(r); /* keeps fd and limit */
	r->curl = g->curl;
	struct curl_slist *h = accept ? curl_slist_append(NULL, accept) : NULL;
	_cleanup_free_ char *authz = auth_header(g);
	if (authz)
		h = curl_slist_append(h, authz);
	if (!s && resume_at(r, size, what, &h)) {
		curl_slist_free_all(h);
		return 1;
	}
	set_common(g, r, h);
	if (s) {
		h = set_send(g->curl, s, h);
		curl_easy_setopt(g->curl, CURLOPT_HTTPHEADER, h);
	}
	curl_easy_setopt(g->curl, CURLOPT_URL, url);
	*cc = curl_easy_perform(g->curl);
	curl_slist_free_all(h);
	*status = 0;
	curl_easy_getinfo(g->curl, CURLINFO_RESPONSE_CODE, status);
	return 0;
}

/* What the body callbacks stopped a transfer for (a write error, a body
 * past its limit, an error body too long to read), or 0. */
static int body_error(const struct resp *r, long status, const char *what, struct sifu_err *err)
{
	if (r->write_errno) {
		errno = r->write_errno;
		return sifu_err_sys(err, "%s: writing to the cache", what);
	}
	if (r->too_big)
		return too_big_error(r, what, err);
	if (r->overflow)
		return sifu_err_set(err, SIFU_E_RANGE, 0,
		                    "%s: an error response (HTTP %ld) over %u KiB; the "
		                    "registry is misbehaving",
		                    what, status, ERRBODY_MAX >> 10);
	return 0;
}

/* A transfer that failed below HTTP and is not retried (again): which
 * server, the cause in words, and what to do about it.  TRIES made in all. */
static int transfer_error(const struct reg *g, CURLcode cc, const char *what, int tries,
                          struct sifu_err *err)
{
	char gave_up[48] = "";
	if (tries > 1)
		snprintf(gave_up, sizeof(gave_up), " (gave up after %d tries)", tries);
	sifu_debug("%s: libcurl: %s", what, curl_easy_strerror(cc));
	sifu_err_set(err, SIFU_E_UNAVAILABLE, 0, "%s: cannot reach %s: %s%s", what, g->label,
	             cause_words(g->curl, cc), gave_up);
	long oserr = 0;
	curl_easy_getinfo(g->curl, CURLINFO_OS_ERRNO, &oserr);
	if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE)
		sifu_err_hint(err, "the registry's TLS certificate does not verify: give its CA "
		                   "with SIFU_CA_BUNDLE; --insecure skips the check, only for a "
		                   "registry you trust");
	else if (cc == CURLE_SSL_CONNECT_ERROR)
		sifu_err_hint(err, "a plain-HTTP registry needs --nohttps");
	else if (cc == CURLE_COULDNT_CONNECT && oserr == ECONNREFUSED)
		sifu_err_hint(err, "nothing listens there: check the host name and port, and "
		                   "that the registry is running");
	else if (cc == CURLE_COULDNT_RESOLVE_HOST)
		sifu_err_hint(err, "check the registry's name in the URI, and the network's DNS");
	else if (transient(cc))
		sifu_err_hint(err, "check the network or try again later; SIFU_PULL_RETRIES sets "
		                   "how often sifu tries");
	return -EIO;
}

/* A 401 with a challenge: a bearer token, or basic auth when G has a user;
 * 0 when the request may be sent again with them. */
static int answer_challenge(struct reg *g, long status, const struct resp *r, const char *what,
                            struct sifu_err *err)
{
	if (strncasecmp(r->www_auth, "Bearer", 6) == 0)
		return fetch_token(g, r->www_auth, err);
	if (strncasecmp(r->www_auth, "Basic", 5) == 0 && g->user) {
		g->use_basic = true;
		return 0;
	}
	return http_error(g, status, r, what, err);
}

/* The wait before the next attempt: the server's Retry-After (at most
 * 60 s) when it gives one, else *DELAY; then *DELAY doubles, up to 30 s.
 * Each wait is one warning line (the default level shows it): which
 * server, what failed (WHY), and when the next try is -- a retry must not
 * look like a hang. */
static void back_off(const struct reg *g, const struct resp *r, unsigned *delay, int attempt,
                     const char *what, const char *why)
{
	long ra = r && r->retry_after ? strtol(r->retry_after, NULL, 10) : 0;
	if (ra > 0)
		*delay = ra > 60 ? 60 : (unsigned)ra;
	sifu_log(SIFU_LOG_WARN, "%s: %s: %s; trying again in %u s (retry %d of %d)", what, g->label,
	         why, *delay, attempt + 1, g->retries);
	sleep(*delay);
	*delay = *delay * 2 > 30 ? 30 : *delay * 2;
}

/* GET URL (or send what S says); body into memory (fd < 0) or appended
 * to FD with Range resume.  LIMIT bounds a successful body (r->limit);
 * UINT64_MAX for none.  Answers one auth challenge; retries transient
 * failures, 429 and 5xx with backoff.  A GET succeeds with 200 or 206, a
 * request S sends with any 2xx (201 Created, 202 Accepted). */
static int reg_request(struct reg *g, const char *url, const char *accept, struct fetch_send *s,
                       int fd, uint64_t limit, struct resp *r, const char *what,
                       struct sifu_err *err)
{
	bool auth_tried = false;
	unsigned delay = 1;
	/* a descriptor's size also says when a resumed download is complete */
	uint64_t size = fd >= 0 && !r->limit_is_space ? limit : UINT64_MAX;
	r->fd = fd;
	r->limit = limit;
	for (int attempt = 0;; attempt++) {
		CURLcode cc;
		long status;
		if (get_once(g, url, accept, s, size, r, what, &cc, &status) == 1)
			return 0; /* already complete */
		int rc = body_error(r, status, what, err);
		if (rc < 0)
			return rc;
		if (cc != CURLE_OK) {
			if (!worth_retrying(g, cc) || attempt >= g->retries)
				return transfer_error(g, cc, what, attempt + 1, err);
			back_off(g, NULL, &delay, attempt, what, cause_words(g->curl, cc));
			continue;
		}
		g->reached = true;
		if (status == 401 && r->www_auth && !auth_tried) {
			auth_tried = true;
			if ((rc = answer_challenge(g, status, r, what, err)) < 0)
				return rc;
			attempt--; /* a challenge is not a failure */
		} else if (status == 429 || status >= 500) {
			if (attempt >= g->retries)
				return http_error(g, status, r, what, err);
			char why[32];
			snprintf(why, sizeof(why), "HTTP %ld", status);
			back_off(g, r, &delay, attempt, what, why);
		} else if (status == 200 || status == 206 || (s && status >= 200 && status < 300)) {
			return 0;
		} else {
			return http_error(g, status, r, what, err);
		}
	}
}

static int fetch_token(struct reg *g, const char *challenge, struct sifu_err *err)
{
	_cleanup_free_ char *realm = challenge_param(challenge, "realm");
	_cleanup_free_ char *service = challenge_param(challenge, "service");
	_cleanup_free_ char *scope = challenge_param(challenge, "scope");
	if (!realm || (strncmp(realm, "https://", 8) != 0 && strncmp(realm, "http://", 7) != 0))
		return sifu_err_set(err, SIFU_E_UNSUPPORTED, 0,
		                    "%s: token challenge without a usable realm", g->host);
	/* a login (no repository) asks for no scope, as docker login does; a
	 * push asks for pull and push at once, so that one token serves the
	 * HEAD, the uploads and the manifest (the registry's challenge names
	 * only what the one request it refused needed) */
	if (g->push && g->repo) {
		free(scope);
		scope = sifu_xasprintf("repository:%s:pull,push", g->repo);
	} else if (!scope && g->repo) {
		scope = sifu_xasprintf("repository:%s:pull", g->repo);
	}
	char *es = curl_easy_escape(g->curl, service ? service : "", 0);
	char *esc = scope ? curl_easy_escape(g->curl, scope, 0) : NULL;
	_cleanup_free_ char *url =
	    sifu_xasprintf("%s%sservice=%s%s%s", realm, strchr(realm, '?') ? "&" : "?", es,
	                   esc ? "&scope=" : "", esc ? esc : "");
	curl_free(es);
	curl_free(esc);
	struct resp r = {.fd = -1, .limit_what = "the 1 MiB limit for a token response"};
	/* credentials go to the token realm (basic), as docker does */
	bool saved_basic = g->use_basic;
	free(g->token);
	g->token = NULL;
	g->use_basic = g->user != NULL;
	int rc =
	    reg_request(g, url, NULL, NULL, -1, TOKEN_MAX, &r, "getting a registry token", err);
	g->use_basic = saved_basic;
	if (rc < 0) {
		resp_clear(&r);
		return rc;
	}
	json_t *j = json_loadb(r.mem.p ? r.mem.p : "", r.mem.len, 0, NULL);
	const char *tok = json_string_value(json_object_get(j, "token"));
	if (!tok)
		tok = json_string_value(json_object_get(j, "access_token"));
	json_t *exp = json_object_get(j, "expires_in");
	if (tok && *tok) {
		g->token = sifu_xstrdup(tok);
		long long secs = json_is_integer(exp) ? json_integer_value(exp) : 60;
		if (secs < 30)
			secs = 30;
		g->token_expiry = time(NULL) + secs - 10;
	}
	json_decref(j);
	resp_clear(&r);
	if (!g->token)
		return sifu_err_set(err, SIFU_E_DENIED, 0, "%s: the token service gave no token",
		                    g->host);
	return 0;
}

/* --------------------------------------------------------------- source */

static int reg_get_manifest(struct fetch_source *s, const char *digest, char **out, size_t *len,
                            struct sifu_err *err)
{
	struct reg *g = (struct reg *)s;
	const char *refname = digest ? digest : g->digest ? g->digest : g->tag;
	_cleanup_free_ char *url =
	    sifu_xasprintf("%s/v2/%s/manifests/%s", g->base_url, g->repo, refname);
	_cleanup_free_ char *what = sifu_xasprintf("manifest %s/%s%s%s", g->host, g->repo,
	                                           strchr(refname, ':') ? "@" : ":", refname);
	struct resp r = {.fd = -1, .limit_what = "the 4 MiB limit for a manifest"};
	int rc = reg_request(g, url, ACCEPT_MANIFESTS, NULL, -1, MANIFEST_MAX, &r, what, err);
	if (rc < 0) {
		resp_clear(&r);
		return rc;
	}
	char got[FETCH_HEX_LEN + 1], hex[FETCH_HEX_LEN + 1];
	fetch_sha256_buf(r.mem.p ? r.mem.p : "", r.mem.len, got);
	/* By digest, the content must have it.  By tag, the registry's
	 * Docker-Content-Digest header (when it names a sha256) must match
	 * what it sent: a mismatch is a broken or tampering registry or proxy. */
	const char *want = digest ? digest : g->digest ? g->digest : r.content_digest;
	if (want && strncmp(want, "sha256:", 7) == 0) {
		bool valid = fetch_digest_parse(want, hex, err) == 0;
		if (!valid || strcmp(hex, got) != 0) {
			/* the message is made before resp_clear frees the header */
			if (want == r.content_digest)
				sifu_err_set(err, SIFU_E_VERIFY, 0,
				             "%s: the registry's Docker-Content-Digest header says "
				             "%s%s but the manifest it sent has digest sha256:%s; "
				             "the registry is misbehaving, nothing was kept",
				             what, valid ? "sha256:" : "an invalid digest",
				             valid ? hex : "", got);
			else
				sifu_err_set(err, SIFU_E_VERIFY, 0,
				             "%s: the registry sent a manifest with digest "
				             "sha256:%s; the registry is misbehaving, nothing was "
				             "kept",
				             what, got);
			resp_clear(&r);
			return -EIO;
		}
	}
	*out = r.mem.p ? r.mem.p : sifu_xstrdup("");
	*len = r.mem.len;
	r.mem.p = NULL;
	resp_clear(&r);
	return 0;
}

static int download_blob(struct reg *g, const struct fetch_blob *b, const char *hex,
                         struct sifu_err *err)
{
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = fetch_cache_tmp(g->cache, &tmp, err);
	if (fd < 0)
		return fd;
	_cleanup_free_ char *url =
	    sifu_xasprintf("%s/v2/%s/blobs/%s", g->base_url, g->repo, b->digest);
	char label[64], what[FETCH_HEX_LEN + 16], limit[96];
	snprintf(label, sizeof(label), "download %.19s", b->digest);
	snprintf(what, sizeof(what), "blob %s", b->digest);
	snprintf(limit, sizeof(limit), "the %llu bytes its descriptor gives",
	         (unsigned long long)b->size);
	struct resp r = {.fd = fd, .limit_what = limit};
	r.progress = g->quiet ? NULL : sifu_progress_new(label, b->size);
	int rc = reg_request(g, url, NULL, NULL, fd, b->size, &r, what, err);
	if (r.progress)
		sifu_progress_done(r.progress);
	resp_clear(&r);
	if (rc < 0) {
		fetch_cache_discard(g->cache, tmp);
		return rc;
	}
	return fetch_cache_commit(g->cache, tmp, fd, hex, b->size, err);
}

static int reg_open_blob(struct fetch_source *s, const struct fetch_blob *b, struct sifu_err *err)
{
	struct reg *g = (struct reg *)s;
	char hex[FETCH_HEX_LEN + 1];
	int fd, r = fetch_cache_find(g->cache, b->digest, hex, &fd, err);
	if (r != 0)
		return r < 0 ? r : fd;
	/* one producer per blob across processes; the others wait, then reuse */
	_cleanup_close_ int lock = fetch_cache_lock(g->cache, hex, err);
	if (lock < 0)
		return lock;
	fd = fetch_cache_open_blob(g->cache, hex);
	if (fd >= 0)
		return fd;
	r = download_blob(g, b, hex, err);
	if (r < 0)
		return r;
	fd = fetch_cache_open_blob(g->cache, hex);
	return fd >= 0 ? fd : sifu_err_sys(err, "cache blob %s", hex);
}

static void reg_free(struct fetch_source *s)
{
	struct reg *g = (struct reg *)s;
	if (g->curl)
		curl_easy_cleanup(g->curl);
	SIFU_FREE_MANY(g->host, g->repo, g->tag, g->digest, g->base_url, g->token, g->user,
	               g->label);
	if (g->pass)
		explicit_bzero(g->pass, strlen(g->pass));
	free(g->pass);
	free(g);
}

/* ---------------------------------------------------------- credentials */

static char *b64_decode(const char *s)
{
	size_t n = strlen(s);
	unsigned char *out = sifu_xcalloc(1, n + 4);
	int len = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
	if (len < 0) {
		free(out);
		return NULL;
	}
	while (n > 0 && s[n - 1] == '=') /* DecodeBlock counts the padding */
		n--, len--;
	out[len > 0 ? len : 0] = 0;
	return (char *)out;
}

/* The helper's first line of output, printable ASCII only, for a message. */
static void helper_said(const char *buf, size_t len, char *out, size_t max)
{
	size_t k = 0;
	for (size_t i = 0; i < len && buf[i] != '\n' && k + 1 < max; i++)
		if (buf[i] >= 0x20 && buf[i] < 0x7f)
			out[k++] = buf[i];
	while (k > 0 && out[k - 1] == ' ')
		k--;
	out[k] = 0;
}

/* What a docker credential helper's exit says.  "credentials not found in
 * native keychain" (docker-credential-helpers' ErrCredentialsNotFound) means
 * no credentials for HOST: -ENOENT, and the caller goes on as Docker does
 * (other sources, then anonymous).  Anything else -- a helper that is
 * missing, fails or is killed -- is an error, as in Docker's client.Get and
 * containers/image: an anonymous pull in its place would give a confusing
 * 401 later, or quietly spend Docker Hub's anonymous rate limit. */
static int helper_status(const char *prog, const char *src, const struct sifu_exit *x,
                         const char *buf, size_t len, struct sifu_err *err)
{
	char said[200];
	helper_said(buf, len, said, sizeof(said));
	if (sifu_exit_ok(x))
		return 0;
	if (!x->signal && memmem(buf, len, "credentials not found", 21))
		return -ENOENT;
	if (x->signal)
		sifu_err_set(err, SIFU_E_DENIED, 0,
		             "docker credential helper %s (%s) was killed by signal %d", prog, src,
		             x->signal);
	else if (x->code == 127 && !said[0])
		sifu_err_set(err, SIFU_E_NOTFOUND, 0,
		             "docker credential helper %s (%s) could not be run: not found on "
		             "PATH",
		             prog, src);
	else
		sifu_err_set(err, SIFU_E_DENIED, 0,
		             "docker credential helper %s (%s) failed with exit status %d%s%s",
		             prog, src, x->code, said[0] ? ": " : "", said);
	sifu_err_hint(err,
	              "fix or install the helper, remove it from that file, or give credentials "
	              "with SIFU_DOCKER_USERNAME/SIFU_DOCKER_PASSWORD");
	return -EACCES;
}

/* Send all of S on the socket FD; a reader that is gone is no error here
 * (its output and exit status say why). */
static void send_all(int fd, const char *s)
{
	for (size_t off = 0, n = strlen(s); off < n;) {
		ssize_t w = send(fd, s + off, n - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return;
		off += (size_t)w;
	}
}

/* Run "PROG get" with HOST on its stdin: its output into *BUF (*LEN bytes),
 * how it ended into *X.  A program that is not on PATH ends as a shell
 * would say: status 127, no output. */
static int run_helper(const char *prog, const char *host, char **buf, size_t *len,
                      struct sifu_exit *x, struct sifu_err *err)
{
	/* Its stdin is a socket, not a pipe: a helper that exits without
	 * reading it (or is missing) makes send(MSG_NOSIGNAL) fail with EPIPE,
	 * where a write(2) to a pipe would kill sifu with SIGPIPE.  Nothing
	 * process-wide (the signal mask or disposition) has to change. */
	int in[2], out[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0)
		return sifu_err_sys(err, "docker credential helper %s", prog);
	if (pipe2(out, O_CLOEXEC) < 0) {
		int e = sifu_err_sys(err, "docker credential helper %s", prog);
		close(in[0]), close(in[1]);
		return e;
	}
	char *argv[] = {(char *)prog, "get", NULL};
	struct sifu_command s = {.argv = argv, .in = in[1], .out = out[1], .err = -1};
	pid_t pid;
	int r = sifu_spawn(&s, &pid, err);
	close(in[1]), close(out[1]);
	if (r < 0) {
		close(in[0]), close(out[0]);
		if (r != -ENOENT)
			return sifu_err_wrap(err, "starting docker credential helper %s", prog);
		sifu_err_clear(err);
		*x = (struct sifu_exit){.code = 127};
		*buf = sifu_xstrdup("");
		*len = 0;
		return 0;
	}
	send_all(in[0], host);
	close(in[0]);
	r = sifu_read_fd(out[0], prog, 1 << 20, buf, len, err);
	close(out[0]);
	int w = sifu_proc_wait(pid, x, NULL);
	if (r == 0 && w < 0) {
		free(TAKE_PTR(*buf));
		r = sifu_err_set(err, SIFU_E_SYS, -w, "waiting for docker credential helper %s",
		                 prog);
	}
	return r;
}

/* docker-credential-HELPER get: host on stdin, {"Username","Secret"} out.
 * SRC says where the helper was named, for messages.  0 with USER and PASS set,
 * -ENOENT when the helper has none for HOST, another < 0 with ERR set. */
static int cred_helper(const char *helper, const char *host, const char *src, char **user,
                       char **pass, struct sifu_err *err)
{
	_cleanup_free_ char *prog = sifu_xasprintf("docker-credential-%s", helper);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	struct sifu_exit x;
	int r = run_helper(prog, host, &buf, &len, &x, err);
	if (r < 0)
		return sifu_err_wrap(err, "docker credential helper %s (%s)", prog, src);
	if ((r = helper_status(prog, src, &x, buf, len, err)) < 0)
		return r;
	json_t *j = json_loadb(buf, len, 0, NULL);
	explicit_bzero(buf, len);
	const char *u = json_string_value(json_object_get(j, "Username"));
	const char *p = json_string_value(json_object_get(j, "Secret"));
	if (u && p) {
		*user = sifu_xstrdup(u);
		*pass = sifu_xstrdup(p);
	}
	json_decref(j);
	if (u && p)
		return 0;
	return sifu_err_set(err, SIFU_E_CORRUPT, 0,
	                    "docker credential helper %s (%s) answered without a Username "
	                    "and a Secret",
	                    prog, src);
}

/* 0 with credentials, -ENOENT with none in PATH, another < 0 (ERR set)
 * when a credential helper PATH names fails. */
static int creds_from_file(const char *path, const char *host, char **user, char **pass,
                           struct sifu_err *err)
{
	char *buf;
	size_t len;
	struct sifu_err e = {0};
	/* never through a symbolic link, and anything unreadable is no file */
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || sifu_read_fd(fd, path, 4 << 20, &buf, &len, &e) < 0)
		return -ENOENT;
	json_t *j = json_loadb(buf, len, 0, NULL);
	free(buf);
	if (!j)
		return -ENOENT;
	bool hub = strcmp(host, "registry-1.docker.io") == 0;
	const char *keys[] = {host,
	                      NULL,
	                      NULL,
	                      hub ? "https://index.docker.io/v1/" : NULL,
	                      hub ? "docker.io" : NULL,
	                      hub ? "index.docker.io" : NULL};
	_cleanup_free_ char *k1 = sifu_xasprintf("https://%s", host);
	_cleanup_free_ char *k2 = sifu_xasprintf("http://%s", host);
	_cleanup_free_ char *src1 = sifu_xasprintf("credHelpers in %s", path);
	_cleanup_free_ char *src2 = sifu_xasprintf("credsStore in %s", path);
	keys[1] = k1, keys[2] = k2;
	int r = -ENOENT;
	json_t *helpers = json_object_get(j, "credHelpers");
	for (size_t i = 0; i < ARRAY_SIZE(keys) && r == -ENOENT; i++) {
		const char *h =
		    keys[i] ? json_string_value(json_object_get(helpers, keys[i])) : NULL;
		if (h)
			r = cred_helper(h, host, src1, user, pass, err);
	}
	json_t *auths = json_object_get(j, "auths");
	for (size_t i = 0; i < ARRAY_SIZE(keys) && r == -ENOENT; i++) {
		const char *a = keys[i] ? json_string_value(json_object_get(
		                              json_object_get(auths, keys[i]), "auth"))
		                        : NULL;
		char *dec = a ? b64_decode(a) : NULL;
		char *colon = dec ? strchr(dec, ':') : NULL;
		if (colon) {
			*colon = 0;
			*user = sifu_xstrdup(dec);
			*pass = sifu_xstrdup(colon + 1);
			r = 0;
		}
		free(dec);
	}
	const char *store = json_string_value(json_object_get(j, "credsStore"));
	if (r == -ENOENT && store)
		r = cred_helper(store, host, src2, user, pass, err);
	json_decref(j);
	return r;
}

static int find_creds(struct reg *g, const struct fetch_pull_opts *o, struct sifu_err *err)
{
	if (o->username) {
		g->user = sifu_xstrdup(o->username);
		g->pass = sifu_xstrdup(o->password ? o->password : "");
		return 0;
	}
	const char *home = o->home, *dc = o->docker_config;
	_cleanup_free_ char *f1 =
	    o->configdir ? sifu_xasprintf("%s/docker-config.json", o->configdir) : NULL;
	_cleanup_free_ char *f2 = dc     ? sifu_xasprintf("%s/config.json", dc)
	                          : home ? sifu_xasprintf("%s/.docker/config.json", home)
	                                 : NULL;
	const char *files[] = {o->authfile, f1, f2};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		if (!files[i])
			continue;
		int r = creds_from_file(files[i], g->host, &g->user, &g->pass, err);
		if (r == 0)
			sifu_debug("registry credentials for %s from %s", g->host, files[i]);
		if (r != -ENOENT)
			return r;
	}
	return 0; /* anonymous */
}

/* A client for the registry HOST with O's transport options and
 * credentials; NULL with ERR set. */
static struct reg *reg_new(const char *host, const struct fetch_pull_opts *o, struct sifu_err *err)
{
	static bool curl_ready;
	if (!curl_ready) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		curl_ready = true;
	}
	struct reg *g = sifu_xcalloc(1, sizeof(*g));
	g->base.get_manifest = reg_get_manifest;
	g->base.open_blob = reg_open_blob;
	g->base.free = reg_free;
	g->host = sifu_xstrdup(host);
	g->label = sifu_xasprintf("registry %s", host);
	g->base_url = sifu_xasprintf("%s://%s", o->nohttps ? "http" : "https", host);
	g->insecure = o->insecure;
	g->quiet = o->quiet;
	g->retries = o->retries;
	g->ca_bundle = o->ca_bundle;
	g->curl = curl_easy_init();
	if (!g->curl) {
		reg_free(&g->base);
		sifu_err_set(err, SIFU_E_SYS, ENOMEM, "libcurl initialisation failed");
		return NULL;
	}
	if (find_creds(g, o, err) < 0) {
		reg_free(&g->base);
		return NULL;
	}
	return g;
}

int fetch_source_registry(const struct fetch_ref *ref, const struct fetch_pull_opts *o,
                          struct fetch_cache *cache, struct fetch_source **out,
                          struct sifu_err *err)
{
	struct reg *g = reg_new(ref->registry, o, err);
	if (!g)
		return -EIO;
	g->repo = sifu_xstrdup(ref->repository);
	g->tag = ref->tag ? sifu_xstrdup(ref->tag) : NULL;
	g->digest = ref->digest ? sifu_xstrdup(ref->digest) : NULL;
	g->cache = cache;
	*out = &g->base;
	return 0;
}

/* What docker login does: GET /v2/ with the credentials, answering the
 * registry's challenge (basic, or a bearer token from its realm, asked for
 * with no scope).  The registry's verdict is what counts: 200 accepts, a 401
 * from it or from its token service refuses. */
int fetch_registry_check_login(const char *host, const struct fetch_pull_opts *o,
                               struct sifu_err *err)
{
	struct reg *g = reg_new(host, o, err);
	if (!g)
		return -EIO;
	_cleanup_free_ char *url = sifu_xasprintf("%s/v2/", g->base_url);
	struct resp r = {.fd = -1, .limit_what = "64 KiB"};
	int rc = reg_request(g, url, NULL, NULL, -1, ERRBODY_MAX, &r, "checking the login", err);
	bool challenged = g->token || g->use_basic;
	resp_clear(&r);
	if (rc < 0 && err->code == SIFU_E_DENIED) {
		sifu_err_clear(err);
		sifu_err_set(err, SIFU_E_DENIED, 0,
		             "registry %s refused the user name or password of '%s'", host,
		             o->username ? o->username : "");
		sifu_err_hint(err, "check them, or give a token where the registry wants one; the "
		                   "stored credentials were not changed");
	}
	reg_free(&g->base);
	return rc < 0 ? rc : challenged ? 0 : 1;
}

int fetch_http_download(const char *url, const struct fetch_pull_opts *o, int fd,
                        struct sifu_err *err)
{
	struct reg g = {0};
	g.host = sifu_xstrndup(url, strcspn(url + 8, "/") + 8);
	g.label = sifu_xstrdup(g.host);
	g.insecure = o->insecure;
	g.retries = o->retries;
	g.ca_bundle = o->ca_bundle;
	g.curl = curl_easy_init();
	if (!g.curl) {
		free(g.host);
		free(g.label);
		return sifu_err_set(err, SIFU_E_SYS, ENOMEM, "libcurl initialisation failed");
	}
	/* A plain https:// file has no descriptor to promise a size.  Its
	 * Content-Length, when sent, bounds it (libcurl reads no further); the
	 * bound sifu adds is the space free where it is written: a length over
	 * it is refused before the body is read, and a body without one stops
	 * there, with a clear line instead of ENOSPC half-way.  No fixed cap:
	 * SIF images of tens of GiB are normal. */
	char space[96];
	struct resp r = {.fd = fd, .limit_what = space, .limit_is_space = true};
	uint64_t limit = UINT64_MAX;
	struct statvfs vfs;
	if (fstatvfs(fd, &vfs) == 0 && vfs.f_blocks > 0) {
		limit = (uint64_t)vfs.f_bavail * vfs.f_frsize;
		snprintf(space, sizeof(space), "the %llu bytes free where it is written",
		         (unsigned long long)limit);
	}
	r.progress = o->quiet ? NULL : sifu_progress_new("download", 0);
	int rc = reg_request(&g, url, NULL, NULL, fd, limit, &r, url, err);
	if (r.progress)
		sifu_progress_done(r.progress);
	resp_clear(&r);
	curl_easy_cleanup(g.curl);
	free(g.host);
	free(g.label);
	return rc;
}

/* ----------------------------------------------------------------- push */

struct reg *fetch_reg_open(const char *host, const char *repo, const struct fetch_pull_opts *o,
                           struct sifu_err *err)
{
	struct reg *g = reg_new(host, o, err);
	if (!g)
		return NULL;
	g->repo = sifu_xstrdup(repo);
	g->push = true;
	return g;
}

void fetch_reg_close(struct reg *g)
{
	if (g)
		reg_free(&g->base);
}

/* A Location the registry gave: a path on it, or a URL that stays on it.
 * Credentials go to no other host, so an upload elsewhere is refused. */
static char *reg_url(const struct reg *g, const char *where, const char *what, struct sifu_err *err)
{
	if (where[0] == '/')
		return sifu_xasprintf("%s%s", g->base_url, where);
	size_t n = strlen(g->base_url);
	if (strncmp(where, g->base_url, n) == 0 && where[n] == '/')
		return sifu_xstrdup(where);
	sifu_err_set(err, SIFU_E_UNSUPPORTED, 0, "%s: registry %s sends the upload to %s", what,
	             g->host, where);
	sifu_err_hint(err, "sifu uploads only to the registry itself (with --nohttps, over "
	                   "plain HTTP): check the registry's configuration");
	return NULL;
}

int fetch_reg_send(struct reg *g, const char *where, struct fetch_send *s, struct fetch_answer *a,
                   const char *what, struct sifu_err *err)
{
	_cleanup_free_ char *url = reg_url(g, where, what, err);
	if (!url)
		return -EINVAL;
	struct resp r = {.fd = -1, .limit_what = "64 KiB"};
	memset(a, 0, sizeof(*a));
	/* a HEAD's Content-Length is the blob's size, not a body to bound */
	uint64_t limit = strcmp(s->method, "HEAD") == 0 ? UINT64_MAX : ERRBODY_MAX;
	int rc = reg_request(g, url, NULL, s, -1, limit, &r, what, err);
	curl_easy_getinfo(g->curl, CURLINFO_RESPONSE_CODE, &a->status);
	a->location = TAKE_PTR(r.location);
	a->digest = TAKE_PTR(r.content_digest);
	resp_clear(&r);
	return rc;
}

void fetch_answer_free(struct fetch_answer *a)
{
	free(a->location);
	free(a->digest);
	memset(a, 0, sizeof(*a));
}
