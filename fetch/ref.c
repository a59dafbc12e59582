/* SPDX-License-Identifier: BSD-3-Clause */
/* Image references: Docker's name rules (distribution/reference) and the
 * containers/image transports sifu accepts. */
#include "fetch_priv.h"

#include <ctype.h>

static bool is_alnum_lower(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] |
 * "__" | "-"+ */
static bool valid_component(const char *s, size_t n)
{
	if (n == 0 || !is_alnum_lower(s[0]) || !is_alnum_lower(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (is_alnum_lower(s[i]))
			continue;
		if (s[i] == '.' || s[i] == '_') {
			if (s[i] == '_' && s[i + 1] == '_' && i + 2 < n &&
			    is_alnum_lower(s[i + 2])) {
				i++;
				continue;
			}
			if (!is_alnum_lower(s[i + 1]))
				return false;
			continue;
		}
		if (s[i] == '-') {
			while (s[i + 1] == '-')
				i++;
			if (!is_alnum_lower(s[i + 1]))
				return false;
			continue;
		}
		return false;
	}
	return true;
}

static bool valid_tag(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > 128 || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)t[i]) || t[i] == '_' || t[i] == '.' || t[i] == '-'))
			return false;
	return true;
}

static bool valid_host(const char *h, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)h[i]) || h[i] == '.' || h[i] == '-' || h[i] == ':' ||
		      h[i] == '[' || h[i] == ']'))
			return false;
	return true;
}

static int parse_docker(const char *s, struct fetch_ref *ref, struct sifu_err *err)
{
	_cleanup_free_ char *buf = sifu_xstrdup(s);
	char *at = strchr(buf, '@');
	if (at) {
		*at = 0;
		char hex[FETCH_HEX_LEN + 1];
		if (fetch_digest_parse(at + 1, hex, err) < 0)
			return -EINVAL;
		ref->digest = sifu_xstrdup(at + 1);
	}
	char *slash = strrchr(buf, '/');
	char *colon = strrchr(buf, ':');
	if (colon && (!slash || colon > slash)) {
		*colon = 0;
		if (!valid_tag(colon + 1))
			return sifu_err_set(err, SIFU_E_USAGE, 0, "\"%s\": invalid tag \"%s\"", s,
			                    colon + 1);
		ref->tag = sifu_xstrdup(colon + 1);
	}
	char *name = buf;
	char *first = strchr(name, '/');
	const char *host = "docker.io";
	size_t hostlen = strlen(host);
	if (first) {
		size_t n = (size_t)(first - name);
		bool is_host = memchr(name, '.', n) || memchr(name, ':', n) ||
		               (n == 9 && strncmp(name, "localhost", 9) == 0);
		for (size_t i = 0; i < n && !is_host; i++)
			if (isupper((unsigned char)name[i]))
				is_host = true;
		if (is_host) {
			if (!valid_host(name, n))
				return sifu_err_set(err, SIFU_E_USAGE, 0,
				                    "\"%s\": invalid registry name", s);
			host = name;
			hostlen = n;
			name = first + 1;
		}
	}
	if (!*name)
		return sifu_err_set(err, SIFU_E_USAGE, 0, "\"%s\": no image name", s);
	for (const char *c = name; *c;) {
		const char *e = strchr(c, '/');
		size_t n = e ? (size_t)(e - c) : strlen(c);
		if (!valid_component(c, n)) {
			sifu_err_set(err, SIFU_E_USAGE, 0, "\"%s\": invalid image name \"%s\"", s,
			             name);
			sifu_err_hint(err, "image names are lower case letters, digits and . _ - "
			                   "separated by /");
			return -EINVAL;
		}
		c += n + (e ? 1 : 0);
		if (e && !*c)
			return sifu_err_set(err, SIFU_E_USAGE, 0, "\"%s\": name ends with /", s);
	}
	bool hub = (hostlen == 9 && strncmp(host, "docker.io", 9) == 0) ||
	           (hostlen == 15 && strncmp(host, "index.docker.io", 15) == 0) ||
	           (hostlen == 20 && strncmp(host, "registry-1.docker.io", 20) == 0);
	ref->registry = hub ? sifu_xstrdup("registry-1.docker.io") : sifu_xstrndup(host, hostlen);
	ref->repository =
	    hub && !strchr(name, '/') ? sifu_xasprintf("library/%s", name) : sifu_xstrdup(name);
	if (strlen(ref->repository) > 255)
		return sifu_err_set(err, SIFU_E_USAGE, 0, "\"%s\": name longer than 255", s);
	if (!ref->tag && !ref->digest)
		ref->tag = sifu_xstrdup("latest");
	return 0;
}

/* "PATH[:tag]": a trailing ":x" with no '/' in x is a tag. */
static void split_path_tag(const char *s, struct fetch_ref *ref)
{
	const char *colon = strrchr(s, ':');
	if (colon && colon != s && !strchr(colon, '/') && colon[1] && valid_tag(colon + 1)) {
		ref->path = sifu_xstrndup(s, (size_t)(colon - s));
		ref->tag = sifu_xstrdup(colon + 1);
	} else {
		ref->path = sifu_xstrdup(s);
	}
}

int fetch_ref_parse(const char *uri, struct fetch_ref *ref, struct sifu_err *err)
{
	memset(ref, 0, sizeof(*ref));
	int r;
	if (strncmp(uri, "docker://", 9) == 0) {
		ref->transport = FETCH_DOCKER;
		r = parse_docker(uri + 9, ref, err);
	} else if (strncmp(uri, "https://", 8) == 0 || strncmp(uri, "http://", 7) == 0) {
		ref->transport = FETCH_HTTP;
		ref->path = sifu_xstrdup(uri);
		r = strchr(uri + 8, '/')
		        ? 0
		        : sifu_err_set(err, SIFU_E_USAGE, 0, "\"%s\": no file in the URL", uri);
	} else if (strncmp(uri, "oras://", 7) == 0) {
		ref->transport = FETCH_ORAS;
		r = parse_docker(uri + 7, ref, err);
	} else if (strncmp(uri, "oci-archive:", 12) == 0) {
		ref->transport = FETCH_OCI_ARCHIVE;
		split_path_tag(uri + 12, ref);
		r = 0;
	} else if (strncmp(uri, "oci:", 4) == 0) {
		ref->transport = FETCH_OCI_DIR;
		split_path_tag(uri + 4, ref);
		r = 0;
	} else if (strncmp(uri, "docker-archive:", 15) == 0) {
		ref->transport = FETCH_DOCKER_ARCHIVE;
		split_path_tag(uri + 15, ref);
		r = 0;
	} else {
		const char *c = strstr(uri, ":");
		sifu_err_set(err, SIFU_E_UNSUPPORTED, 0, "\"%s\": %s", uri,
		             c ? "unsupported transport" : "not an image URI");
		sifu_err_hint(err, "use docker://NAME[:TAG], oras://NAME[:TAG], oci:DIR, "
		                   "oci-archive:FILE or docker-archive:FILE");
		r = -EINVAL;
	}
	if (r == 0 && ref->path && !*ref->path)
		r = sifu_err_set(err, SIFU_E_USAGE, 0, "\"%s\": no path", uri);
	if (r < 0)
		fetch_ref_free(ref);
	return r;
}

void fetch_ref_free(struct fetch_ref *ref)
{
	SIFU_FREE_MANY(ref->registry, ref->repository, ref->tag, ref->digest, ref->path);
	memset(ref, 0, sizeof(*ref));
}

char *fetch_ref_default_name(const struct fetch_ref *ref)
{
	if (ref->transport == FETCH_DOCKER || ref->transport == FETCH_ORAS) {
		const char *base = strrchr(ref->repository, '/');
		base = base ? base + 1 : ref->repository;
		if (ref->tag)
			return sifu_xasprintf("%s_%s.sif", base, ref->tag);
		return sifu_xasprintf("%s_%.12s.sif", base, ref->digest + 7);
	}
	_cleanup_free_ char *p = sifu_xstrdup(ref->path);
	if (ref->transport == FETCH_HTTP) {
		p[strcspn(p, "?#")] = 0;
		const char *b = strrchr(p, '/');
		return sifu_xstrdup(b && b[1] ? b + 1 : "image.sif");
	}
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = 0;
	const char *base = strrchr(p, '/');
	base = base ? base + 1 : p;
	_cleanup_free_ char *b = sifu_xstrdup(base);
	char *dot = strchr(b, '.');
	if (dot && dot != b)
		*dot = 0;
	return sifu_xasprintf("%s_%s.sif", b, ref->tag ? ref->tag : "latest");
}
