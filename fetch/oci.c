/* SPDX-License-Identifier: BSD-3-Clause */
/* OCI image index / manifest / config JSON (image-spec v1.1) and Docker's
 * schema 2 equivalents, the platform choice, and the /.singularity.d files an
 * image config becomes. */
#include "fetch_priv.h"

#include <sys/utsname.h>

#define MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

void fetch_platform_host(struct fetch_platform *p)
{
	struct utsname u;
	memset(p, 0, sizeof(*p));
	snprintf(p->os, sizeof(p->os), "linux");
	const char *m = uname(&u) == 0 ? u.machine : "x86_64";
	static const struct {
		const char *machine, *arch, *variant;
	} map[] = {
	    {"x86_64", "amd64", ""},    {"aarch64", "arm64", "v8"}, {"armv7l", "arm", "v7"},
	    {"armv6l", "arm", "v6"},    {"i686", "386", ""},        {"i386", "386", ""},
	    {"ppc64le", "ppc64le", ""}, {"s390x", "s390x", ""},     {"riscv64", "riscv64", ""},
	};
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (strcmp(m, map[i].machine) == 0) {
			snprintf(p->arch, sizeof(p->arch), "%s", map[i].arch);
			snprintf(p->variant, sizeof(p->variant), "%s", map[i].variant);
			return;
		}
	snprintf(p->arch, sizeof(p->arch), "%.31s", m);
}

int fetch_platform_parse(const char *s, struct fetch_platform *p, struct sifu_err *err)
{
	memset(p, 0, sizeof(*p));
	char buf[100];
	if (strlen(s) >= sizeof(buf) || !*s)
		return sifu_err_set(err, SIFU_E_USAGE, 0, "bad platform \"%s\"", s);
	memcpy(buf, s, strlen(s) + 1);
	char *parts[4] = {0};
	size_t n = 0;
	for (char *save = NULL, *c = strtok_r(buf, "/", &save); c && n < 4;
	     c = strtok_r(NULL, "/", &save))
		parts[n++] = c;
	if (n == 1) { /* --arch */
		snprintf(p->os, sizeof(p->os), "linux");
		snprintf(p->arch, sizeof(p->arch), "%s", parts[0]);
	} else if (n == 2 || n == 3) {
		snprintf(p->os, sizeof(p->os), "%s", parts[0]);
		snprintf(p->arch, sizeof(p->arch), "%s", parts[1]);
		if (n == 3)
			snprintf(p->variant, sizeof(p->variant), "%s", parts[2]);
	} else {
		sifu_err_set(err, SIFU_E_USAGE, 0, "bad platform \"%s\"", s);
		sifu_err_hint(err, "write OS/ARCH[/VARIANT], e.g. linux/arm64/v8");
		return -EINVAL;
	}
	if (strcmp(p->arch, "aarch64") == 0)
		snprintf(p->arch, sizeof(p->arch), "arm64");
	else if (strcmp(p->arch, "x86_64") == 0)
		snprintf(p->arch, sizeof(p->arch), "amd64");
	return 0;
}

static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int fetch_manifest_kind(const char *json, size_t len, struct sifu_err *err)
{
	json_t *j = fetch_json_parse(json, len, "manifest", err);
	if (!j)
		return -EINVAL;
	int r;
	const char *mt = jstr(j, "mediaType");
	json_t *sv = json_object_get(j, "schemaVersion");
	if (json_is_integer(sv) && json_integer_value(sv) == 1) {
		sifu_err_set(err, SIFU_E_UNSUPPORTED, 0,
		             "the registry serves a Docker schema 1 manifest, which is obsolete");
		sifu_err_hint(err, "push the image again with a current Docker, Podman or skopeo");
		r = -ENOTSUP;
	} else if ((mt && (strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0)) ||
	           (!mt && json_is_array(json_object_get(j, "manifests")))) {
		r = 1;
	} else if ((mt &&
	            (strcmp(mt, MT_OCI_MANIFEST) == 0 || strcmp(mt, MT_DOCKER_MANIFEST) == 0)) ||
	           (!mt && json_is_array(json_object_get(j, "layers")))) {
		r = 0;
	} else {
		r = sifu_err_set(err, SIFU_E_UNSUPPORTED, 0, "unsupported manifest type \"%s\"",
		                 mt ? mt : "(none)");
	}
	json_decref(j);
	return r;
}

static int parse_descriptor(json_t *d, struct fetch_blob *b, const char *what, struct sifu_err *err)
{
	const char *dg = jstr(d, "digest");
	json_t *size = json_object_get(d, "size");
	char hex[FETCH_HEX_LEN + 1];
	if (!dg || !json_is_integer(size) || json_integer_value(size) < 0)
		return sifu_err_set(err, SIFU_E_CORRUPT, 0, "%s: descriptor without digest or size",
		                    what);
	if (fetch_digest_parse(dg, hex, err) < 0)
		return sifu_err_wrap(err, "%s", what);
	snprintf(b->digest, sizeof(b->digest), "%s", dg);
	b->size = (uint64_t)json_integer_value(size);
	const char *mt = jstr(d, "mediaType");
	b->media_type = mt ? sifu_xstrdup(mt) : NULL;
	return 0;
}

int fetch_index_select(const char *json, size_t len, const struct fetch_platform *plat,
                       struct fetch_blob *out, struct sifu_err *err)
{
	json_t *j = fetch_json_parse(json, len, "image index", err);
	if (!j)
		return -EINVAL;
	json_t *ms = json_object_get(j, "manifests");
	size_t i;
	json_t *m;
	_cleanup_buf_ struct sifu_buf seen = {0};
	int best = -1, best_score = -1;
	json_array_foreach(ms, i, m)
	{
		json_t *p = json_object_get(m, "platform");
		const char *os = jstr(p, "os"), *arch = jstr(p, "architecture");
		const char *variant = jstr(p, "variant");
		if (!os || !arch || strcmp(os, "unknown") == 0)
			continue; /* attestations and the like */
		sifu_buf_printf(&seen, "%s%s/%s%s%s", seen.len ? ", " : "", os, arch,
		                variant ? "/" : "", variant ? variant : "");
		if (strcmp(os, plat->os) != 0 || strcmp(arch, plat->arch) != 0)
			continue;
		int score = 1;
		if (plat->variant[0]) {
			if (variant && strcmp(variant, plat->variant) == 0)
				score = 2;
			else if (variant)
				continue;
		}
		if (score > best_score)
			best = (int)i, best_score = score;
	}
	int r;
	if (best < 0) {
		r = sifu_err_set(err, SIFU_E_NOTFOUND, 0, "no image for %s/%s%s%s in this index",
		                 plat->os, plat->arch, plat->variant[0] ? "/" : "", plat->variant);
		sifu_err_hint(err, "it has: %s; choose one with --platform or --arch",
		              seen.len ? seen.p : "no platforms");
	} else {
		r = parse_descriptor(json_array_get(ms, (size_t)best), out, "image index", err);
	}
	json_decref(j);
	return r;
}

static bool layer_type_ok(const char *mt)
{
	return !mt || strncmp(mt, "application/vnd.oci.image.layer.", 32) == 0 ||
	       strncmp(mt, "application/vnd.docker.image.rootfs.", 36) == 0;
}

int fetch_manifest_parse(const char *json, size_t len, struct fetch_manifest *m,
                         struct sifu_err *err)
{
	memset(m, 0, sizeof(*m));
	json_t *j = fetch_json_parse(json, len, "image manifest", err);
	if (!j)
		return -EINVAL;
	int r = parse_descriptor(json_object_get(j, "config"), &m->config, "manifest config", err);
	if (r == 0 && m->config.size > FETCH_CONFIG_MAX)
		r = sifu_err_set(err, SIFU_E_UNSUPPORTED, 0,
		                 "the manifest announces an image config of %llu bytes; sifu reads "
		                 "configs up to 16 MiB",
		                 (unsigned long long)m->config.size);
	json_t *layers = json_object_get(j, "layers");
	if (r == 0 && !json_is_array(layers))
		r = sifu_err_set(err, SIFU_E_CORRUPT, 0, "image manifest has no layer list");
	if (r == 0 && json_array_size(layers) > 1000)
		r = sifu_err_set(err, SIFU_E_UNSUPPORTED, 0, "image has more than 1000 layers");
	if (r == 0) {
		m->layers = sifu_xcalloc(json_array_size(layers) + 1, sizeof(*m->layers));
		size_t i;
		json_t *l;
		json_array_foreach(layers, i, l)
		{
			if ((r = parse_descriptor(l, &m->layers[i], "manifest layer", err)) < 0)
				break;
			m->nlayers++;
			if (!layer_type_ok(m->layers[i].media_type)) {
				sifu_err_set(err, SIFU_E_UNSUPPORTED, 0,
				             "not a container image: layer type \"%s\"",
				             m->layers[i].media_type);
				sifu_err_hint(err,
				              "an OCI artifact (a SIF, a chart…) needs its own "
				              "tool; oras:// pulls SIF artifacts");
				r = -ENOTSUP;
				break;
			}
		}
	}
	json_decref(j);
	if (r < 0)
		fetch_manifest_free(m);
	return r;
}

void fetch_manifest_free(struct fetch_manifest *m)
{
	free(m->config.media_type);
	for (size_t i = 0; i < m->nlayers; i++)
		free(m->layers[i].media_type);
	free(m->layers);
	memset(m, 0, sizeof(*m));
}

static char **str_array(json_t *a, size_t *n)
{
	if (!json_is_array(a))
		return NULL;
	char **v = sifu_xcalloc(json_array_size(a) + 1, sizeof(*v));
	size_t i, k = 0;
	json_t *s;
	json_array_foreach(a, i, s) if (json_is_string(s)) v[k++] =
	    sifu_xstrdup(json_string_value(s));
	if (n)
		*n = k;
	return v;
}

int fetch_config_parse(const char *json, size_t len, struct fetch_config *c, struct sifu_err *err)
{
	memset(c, 0, sizeof(*c));
	json_t *j = fetch_json_parse(json, len, "image config", err);
	if (!j)
		return -EINVAL;
	json_t *cfg = json_object_get(j, "config");
	c->env = str_array(json_object_get(cfg, "Env"), NULL);
	c->entrypoint = str_array(json_object_get(cfg, "Entrypoint"), NULL);
	c->cmd = str_array(json_object_get(cfg, "Cmd"), NULL);
	const char *wd = jstr(cfg, "WorkingDir");
	c->workdir = wd && *wd ? sifu_xstrdup(wd) : NULL;
	json_t *labels = json_object_get(cfg, "Labels");
	json_t *lo = json_is_object(labels) ? labels : NULL;
	c->labels_json = lo ? json_dumps(lo, JSON_INDENT(1) | JSON_SORT_KEYS) : sifu_xstrdup("{}");
	const char *arch = jstr(j, "architecture"), *os = jstr(j, "os");
	const char *variant = jstr(j, "variant");
	snprintf(c->arch, sizeof(c->arch), "%s", arch ? arch : "");
	snprintf(c->os, sizeof(c->os), "%s", os ? os : "");
	snprintf(c->variant, sizeof(c->variant), "%s", variant ? variant : "");
	json_t *rootfs = json_object_get(j, "rootfs");
	c->diff_ids = str_array(json_object_get(rootfs, "diff_ids"), &c->ndiff_ids);
	json_decref(j);
	if (!c->diff_ids) {
		fetch_config_free(c);
		return sifu_err_set(err, SIFU_E_CORRUPT, 0, "image config has no rootfs.diff_ids");
	}
	return 0;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

int fetch_config_check_platform(const struct fetch_config *c, const struct fetch_platform *want,
                                struct sifu_err *err)
{
	if (!c->os[0] && !c->arch[0])
		return 1;
	/* go-containerregistry's Platform.Satisfies: os and architecture
	 * equal, and the variant too when one is asked for */
	if (!strcmp(c->os, want->os) && !strcmp(c->arch, want->arch) &&
	    (!want->variant[0] || !strcmp(c->variant, want->variant)))
		return 0;
	sifu_err_set(err, SIFU_E_NOTFOUND, 0,
	             "image (%s/%s%s%s) does not satisfy required platform (%s/%s%s%s)", c->os,
	             c->arch, c->variant[0] ? "/" : "", c->variant, want->os, want->arch,
	             want->variant[0] ? "/" : "", want->variant);
	sifu_err_hint(err,
	              "this image is built for one platform only; pull it without --arch or "
	              "--platform, or pull an image that has %s/%s",
	              want->os, want->arch);
	return -ENOENT;
}

void fetch_config_free(struct fetch_config *c)
{
	char **const strvs[] = {c->env, c->entrypoint, c->cmd, c->diff_ids};
	for (size_t i = 0; i < ARRAY_SIZE(strvs); i++)
		free_strv(strvs[i]);
	SIFU_FREE_MANY(c->workdir, c->labels_json);
	memset(c, 0, sizeof(*c));
}

/* 'x' with every ' as '\'' : safe for any byte string in sh. */
static void sh_single(struct sifu_buf *b, const char *s)
{
	sifu_buf_add(b, "'", 1);
	for (; *s; s++) {
		if (*s == '\'')
			sifu_buf_add(b, "'\\''", 4);
		else
			sifu_buf_add(b, s, 1);
	}
	sifu_buf_add(b, "'", 1);
}

static void sh_words(struct sifu_buf *b, char **v)
{
	for (size_t i = 0; v && v[i]; i++) {
		sifu_buf_add(b, " ", 1);
		sh_single(b, v[i]);
	}
}

/* ENTRYPOINT runs with the arguments given to `run`, or with CMD when there
 * are none; without ENTRYPOINT, arguments replace CMD (docker run rules). */
char *fetch_runscript(const struct fetch_config *c)
{
	struct sifu_buf b = {0};
	bool ep = c->entrypoint && c->entrypoint[0], cmd = c->cmd && c->cmd[0];
	sifu_buf_printf(&b, "#!/bin/sh\n# Written by sifu from the image's ENTRYPOINT and CMD.\n");
	if (!ep && !cmd) {
		sifu_buf_printf(&b, "if [ $# -eq 0 ]; then set -- /bin/sh; fi\nexec \"$@\"\n");
		return b.p;
	}
	sifu_buf_printf(&b, "if [ $# -gt 0 ]; then\n\tset --");
	sh_words(&b, c->entrypoint);
	sifu_buf_printf(&b, " \"$@\"\nelse\n\tset --");
	sh_words(&b, c->entrypoint);
	sh_words(&b, c->cmd);
	sifu_buf_printf(&b, "\nfi\nexec \"$@\"\n");
	return b.p;
}

static bool env_name_ok(const char *s, size_t n)
{
	if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/* As Apptainer's 10-docker2singularity.sh: PATH is set outright, every other
 * variable only when the host environment does not already give it. */
char *fetch_env_script(const struct fetch_config *c)
{
	struct sifu_buf b = {0};
	sifu_buf_printf(&b, "#!/bin/sh\n# Written by sifu from the image's Env.\n");
	for (size_t i = 0; c->env && c->env[i]; i++) {
		const char *eq = strchr(c->env[i], '=');
		if (!eq || !env_name_ok(c->env[i], (size_t)(eq - c->env[i])))
			continue;
		int n = (int)(eq - c->env[i]);
		if (n == 4 && strncmp(c->env[i], "PATH", 4) == 0) {
			sifu_buf_printf(&b, "export PATH=");
			sh_single(&b, eq + 1);
		} else {
			sifu_buf_printf(&b, "if [ -z \"${%.*s+set}\" ]; then export %.*s=", n,
			                c->env[i], n, c->env[i]);
			sh_single(&b, eq + 1);
			sifu_buf_printf(&b, "; fi");
		}
		sifu_buf_add(&b, "\n", 1);
	}
	return b.p;
}
