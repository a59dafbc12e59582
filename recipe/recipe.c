/* SPDX-License-Identifier: BSD-3-Clause */
/* Reading definition files and build-argument files, and the small helpers
 * the builder needs from a parsed recipe. */
#include "recipe_priv.h"

#include <fcntl.h>
#include <sys/stat.h>

#define RECIPE_MAX_SIZE (16u << 20)

bool recipe_available(void)
{
	return true;
}

/* Read a whole regular file of at most RECIPE_MAX_SIZE bytes. */
static int read_small_file(const char *path, const char *what, char **out, size_t *outlen,
                           struct sifu_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return sifu_err_sys(err, "%s %s", what, path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sifu_err_sys(err, "%s %s", what, path);
	if (S_ISDIR(st.st_mode))
		return sifu_err_set(err, SIFU_E_USAGE, EISDIR, "%s %s is a directory", what, path);
	_cleanup_free_ char *name = sifu_xasprintf("%s %s", what, path);
	int r = sifu_read_fd(fd, name, RECIPE_MAX_SIZE, out, outlen, err);
	if (r < 0 && err && err->code == SIFU_E_RANGE)
		return sifu_err_set(err, SIFU_E_RANGE, EFBIG, "%s is larger than %u MiB", name,
		                    RECIPE_MAX_SIZE >> 20);
	return r;
}

int recipe_load(const char *path, const struct recipe_buildargs *ba, struct recipe **out,
                struct sifu_err *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = read_small_file(path, "definition file", &text, &len, err);
	if (r < 0)
		return r;
	return recipe_parse(path, text, len, ba, out, err);
}

/* ------------------------------------------------------ build arguments -- */

static void ba_set(struct recipe_buildargs *ba, const char *k, size_t kn, const char *v, size_t vn,
                   unsigned line)
{
	ba->v = sifu_xrealloc(ba->v, (ba->n + 1) * sizeof(*ba->v));
	ba->v[ba->n++] = (struct recipe_kv){sifu_xstrndup(k, kn), sifu_xstrndup(v, vn), line};
}

/* Apptainer's getKeyVal: split at the first '=', trim both sides, the key
 * must not be empty.  Returns false when S is not such a pair. */
static bool split_kv(const char *s, size_t n, const char **k, size_t *kn, const char **v,
                     size_t *vn)
{
	const char *eq = memchr(s, '=', n);
	if (!eq)
		return false;
	*k = s, *kn = (size_t)(eq - s);
	*v = eq + 1, *vn = n - *kn - 1;
	bld_trim(k, kn);
	bld_trim(v, vn);
	return *kn > 0;
}

int recipe_buildargs_add(struct recipe_buildargs *ba, const char *kv, struct sifu_err *err)
{
	const char *k, *v;
	size_t kn, vn;
	if (!split_kv(kv, strlen(kv), &k, &kn, &v, &vn)) {
		sifu_err_set(err, SIFU_E_USAGE, 0, "--build-arg '%s' is not KEY=VALUE", kv);
		sifu_err_hint(err, "write e.g. --build-arg VERSION=1.2");
		return -EINVAL;
	}
	ba_set(ba, k, kn, v, vn, 0);
	return 0;
}

int recipe_buildargs_add_text(struct recipe_buildargs *ba, const char *name, const char *text,
                              size_t len, struct sifu_err *err)
{
	unsigned no = 0;
	for (size_t i = 0; i < len;) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (text + i)) : len - i;
		const char *s = text + i;
		i += n + 1;
		no++;
		if (memchr(s, '\0', n))
			return sifu_err_set(err, SIFU_E_CORRUPT, 0,
			                    "%s:%u: NUL byte in a build-arg file", name, no);
		size_t tn = n;
		const char *t = s;
		bld_trim(&t, &tn);
		if (tn == 0 || *t == '#')
			continue;
		const char *k, *v;
		size_t kn, vn;
		if (!split_kv(t, tn, &k, &kn, &v, &vn)) {
			ba->warnings =
			    sifu_xrealloc(ba->warnings, (ba->nwarnings + 1) * sizeof(char *));
			ba->warnings[ba->nwarnings++] =
			    sifu_xasprintf("%s:%u: skipping '%.*s': not KEY=VALUE", name, no,
			                   (int)(tn > 60 ? 60 : tn), t);
			continue;
		}
		ba_set(ba, k, kn, v, vn, no);
	}
	return 0;
}

int recipe_buildargs_load(struct recipe_buildargs *ba, const char *path, struct sifu_err *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = read_small_file(path, "build-arg file", &text, &len, err);
	if (r < 0)
		return r;
	return recipe_buildargs_add_text(ba, path, text, len, err);
}

void recipe_buildargs_free(struct recipe_buildargs *ba)
{
	for (size_t i = 0; i < ba->n; i++)
		free(ba->v[i].key), free(ba->v[i].value);
	free(ba->v);
	for (size_t i = 0; i < ba->nwarnings; i++)
		free(ba->warnings[i]);
	free(ba->warnings);
	memset(ba, 0, sizeof(*ba));
}

/* ------------------------------------------------------------ sections -- */

bool bld_section_on(const struct recipe_build_opts *o, const char *name)
{
	if (!o->sections)
		return true;
	for (char *const *s = o->sections; *s; s++)
		if (!strcmp(*s, name) || !strcmp(*s, "all"))
			return true;
	return false;
}

/* ------------------------------------------------------------ scripts -- */

void recipe_script_shebang(const struct recipe_script *s, char **shebang, char **body)
{
	const char *text = s->text ? s->text : "";
	const char *t = text;
	while (*t == ' ' || *t == '\t' || *t == '\n' || *t == '\r')
		t++;
	struct sifu_buf sb;
	sb = (struct sifu_buf){0};
	if (!strncmp(t, "#!", 2)) {
		/* the first non-blank line, trimmed, is the interpreter line; Apptainer
		 * takes the very first line even when it is blank, which leaves a
		 * script with no "#!" */
		const char *nl = strchr(t, '\n');
		size_t n = nl ? (size_t)(nl - t) : strlen(t);
		while (n && (t[n - 1] == ' ' || t[n - 1] == '\t' || t[n - 1] == '\r'))
			n--;
		sifu_buf_add(&sb, t, n);
		*body = sifu_xstrdup(nl ? nl + 1 : "");
	} else {
		sifu_buf_str(&sb, "#!/bin/sh");
		*body = sifu_xstrdup(text);
	}
	if (s->args && *s->args) {
		const char *hash = strchr(s->args, '#');
		size_t n = hash ? (size_t)(hash - s->args) : strlen(s->args);
		sifu_buf_str(&sb, " ");
		sifu_buf_add(&sb, s->args, n);
	}
	*shebang = sifu_buf_take(&sb);
}
