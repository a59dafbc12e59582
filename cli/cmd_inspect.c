/* SPDX-License-Identifier: BSD-3-Clause */
/* `sifu inspect`: Apptainer's inspect, of a SIF, a sandbox directory or a
 * bare SquashFS file.
 *
 * Where the metadata lives in a SIF built by Apptainer/Singularity:
 *   - a JSON.Generic object named "inspect-metadata.json": the whole answer,
 *     {"data": {"attributes": {labels, deffile, runscript, startscript, test,
 *     environment, helpfile, apps}}, "type": "container"} (Apptainer's
 *     pkg/inspect.Metadata), written at build; sifu before this release
 *     wrote {"attributes": {…}, "type": "container"}: both are read;
 *   - a Def.FILE object: the definition file;
 *   - a JSON.Labels object: the labels; an Env.Vars object: environment text;
 *   - everything else only inside the image's file system, under
 *     /.singularity.d (runscript, startscript, test, env scripts,
 *     labels.json, runscript.help, scif apps).  A sandbox or a bare SquashFS
 *     has only that.  struct source reads it without mounting. */
#include "cli.h"
#include "sif.h"
#include "sqfuse.h"
#include "userns.h"

#include <fcntl.h>
#include <dirent.h>
#include <fnmatch.h>
#include <jansson.h>
#include <sys/stat.h>

int cmd_inspect(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);
int cmd_run_help(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);

#define META_MAX (16u << 20)

/* Where the image's own file system is: a sandbox directory (DIRFD), or a
 * SquashFS at LOC in FD (a SIF's root partition or a bare SquashFS file,
 * found on first use). */
struct source {
	int dirfd;
	int fd;
	bool is_sif, have_loc;
	struct sif_rootfs_loc loc;
	struct sqf_image *sq;
};

static void source_close(struct source *s)
{
	if (s->sq)
		sqf_image_close(s->sq);
	if (s->dirfd >= 0)
		close(s->dirfd);
	if (s->fd >= 0 && !s->is_sif) /* a SIF's fd is the sif_image's */
		close(s->fd);
}

/* Read PATH (absolute, inside the container; a regular file, as
 * Apptainer's `[ -f ]`).  SIFU_E_NOTFOUND when it is not there. */
/* The image's SquashFS, opened at the first read: a SIF's root file system
 * partition, or a bare SquashFS file. */
static int source_squash(struct source *s, struct sifu_err *err)
{
	if (s->sq)
		return 0;
	int r;
	if (!s->have_loc) {
		if ((r = sif_find_rootfs(s->fd, &s->loc, err)) < 0)
			return r;
		s->have_loc = true;
	}
	if (s->loc.fstype != SIF_FS_SQUASH)
		return sifu_err_set(err, SIFU_E_UNSUPPORTED, ENOTSUP,
		                    "the image's root file system is not SquashFS");
	struct sqf_options o;
	sqf_options_default(&o);
	o.prefetch = SQF_PREFETCH_NONE; /* a few small reads */
	return sqf_image_open(s->fd, s->loc.offset, s->loc.size, &o, &s->sq, err);
}

static int source_read(struct source *s, const char *path, char **data, size_t *len,
                       struct sifu_err *err)
{
	if (s->dirfd >= 0) {
		_cleanup_close_ int fd =
		    sifu_path_open_in_root(s->dirfd, path, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
			return sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT, "%s: no such file", path);
		return sifu_read_fd(fd, path, META_MAX, data, len, err);
	}
	int r = source_squash(s, err);
	return r < 0 ? r : sqf_read_path(s->sq, path, META_MAX, data, len, err);
}

/* The names in the image's directory PATH (none when it is missing). */
static int source_list(struct source *s, const char *path, struct ns_strv *out,
                       struct sifu_err *err)
{
	if (s->dirfd >= 0) {
		int d = sifu_path_open_in_root(s->dirfd, path, O_RDONLY | O_DIRECTORY, 0);
		_cleanup_closedir_ DIR *dir = d >= 0 ? fdopendir(d) : NULL;
		if (d >= 0 && !dir)
			close(d);
		for (struct dirent *de; dir && (de = readdir(dir));)
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				ns_strv_push(out, de->d_name);
		return 0;
	}
	char **names = NULL;
	size_t n = 0;
	int r = source_squash(s, err);
	if (r == 0)
		r = sqf_list_dir(s->sq, path, &names, &n, err);
	if (r < 0 && err->code == SIFU_E_NOTFOUND) {
		sifu_err_clear(err);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		ns_strv_push_take(out, names[i]);
	free(names);
	return r;
}

/* The environment scripts Apptainer's inspect shows: its globs
 * 10-docker*.sh and 9*-environment.sh in /.singularity.d/env. */
static bool shown_env_script(const char *path)
{
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	return !fnmatch("10-docker*.sh", b, 0) || !fnmatch("9*-environment.sh", b, 0);
}

static const char *const env_scripts[] = {
    "10-docker.sh",
    "10-docker2singularity.sh",
    "90-environment.sh",
    "91-environment.sh",
};

/* An attribute read from the image itself: labels as JSON, environment as
 * {script path: text}, the rest as text.  *out is NULL when it is absent. */
static int image_attr(struct source *src, const char *key, const char *in_image, json_t **out,
                      struct sifu_err *err)
{
	*out = NULL;
	char *data = NULL;
	size_t len = 0;
	if (!strcmp(key, "environment")) {
		json_t *env = json_object();
		for (size_t i = 0; i < ARRAY_SIZE(env_scripts); i++) {
			char p[128];
			snprintf(p, sizeof(p), "%s/%s", in_image, env_scripts[i]);
			if (source_read(src, p, &data, &len, err) < 0) {
				if (err->code == SIFU_E_NOTFOUND) {
					sifu_err_clear(err);
					continue;
				}
				json_decref(env);
				return -EIO;
			}
			json_object_set_new(env, p, json_stringn_nocheck(data, len));
			free(data);
		}
		if (json_object_size(env))
			*out = env;
		else
			json_decref(env);
		return 0;
	}
	if (source_read(src, in_image, &data, &len, err) < 0) {
		if (err->code != SIFU_E_NOTFOUND)
			return -EIO;
		sifu_err_clear(err);
		return 0;
	}
	if (!strcmp(key, "labels")) {
		*out = json_loadb(data, len, 0, NULL);
		if (!*out)
			*out = json_object(); /* unreadable labels.json: show none */
	} else {
		*out = json_stringn_nocheck(data, len);
	}
	free(data);
	return 0;
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* *META: "/scif/apps/NAME/scif" when the image has that app (its
 * labels.json, which every app built by Apptainer or sifu has), else NULL. */
static int app_in_image(struct source *src, const char *name, char **meta, struct sifu_err *err)
{
	*meta = NULL;
	if (!*name || strchr(name, '/') || !strcmp(name, "..") || !strcmp(name, "."))
		return 0;
	_cleanup_free_ char *m = sifu_xasprintf("/scif/apps/%s/scif", name);
	_cleanup_free_ char *p = sifu_xasprintf("%s/labels.json", m);
	_cleanup_free_ char *data = NULL;
	size_t len;
	if (source_read(src, p, &data, &len, err) < 0) {
		if (err->code != SIFU_E_NOTFOUND)
			return -EIO;
		sifu_err_clear(err);
		return 0;
	}
	*meta = TAKE_PTR(m);
	return 0;
}

/* --list-apps: the metadata's apps, else each /scif/apps/NAME of the
 * image (a sandbox, a bare SquashFS, a SIF without them in its metadata)
 * that is an app; sorted, as Apptainer prints them. */
static int list_apps(struct source *src, json_t *apps, struct sifu_err *err)
{
	struct ns_strv names = {0}, found = {0};
	const char *k;
	json_t *x;
	int r = 0;
	if (json_is_object(apps))
		json_object_foreach(apps, k, x) ns_strv_push(&names, k);
	else
		r = source_list(src, "/scif/apps", &found, err);
	for (size_t i = 0; r == 0 && i < found.n; i++) {
		_cleanup_free_ char *meta = NULL;
		r = app_in_image(src, found.v[i], &meta, err);
		if (r == 0 && meta)
			ns_strv_push(&names, found.v[i]);
	}
	if (r == 0 && names.n)
		qsort(names.v, names.n, sizeof(char *), cmp_str);
	for (size_t i = 0; r == 0 && i < names.n; i++)
		printf("%s\n", names.v[i]);
	ns_strv_free(&names);
	ns_strv_free(&found);
	return r;
}

struct inspect_ctx {
	struct sif_image *img; /* NULL for a sandbox or a bare SquashFS */
	json_t *attrs;         /* borrowed from the metadata object, or built here */
	const char *path;
};

/* Object D as a JSON string (JE NULL), or parsed as JSON (*OUT NULL, with
 * JE saying why, when it is not JSON); < 0 when it cannot be read. */
static int load_object(struct inspect_ctx *c, const struct sif_descr *d, json_t **out,
                       json_error_t *je, struct sifu_err *err)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r = sif_read_object(c->img, d, META_MAX, &buf, &len, err);
	if (r < 0)
		return r;
	*out = je ? json_loadb(buf, len, 0, je) : json_stringn_nocheck(buf, len);
	return 0;
}

/* The attributes of an inspect-metadata.json object M: Apptainer's layout
 * ({"data": {"attributes": …}}) or sifu's older one ({"attributes": …}). */
static json_t *metadata_attrs(json_t *m)
{
	json_t *at = json_object_get(json_object_get(m, "data"), "attributes");
	if (json_is_object(at))
		return at;
	at = json_object_get(m, "attributes");
	return json_is_object(at) ? at : NULL;
}

static int load_attrs(struct inspect_ctx *c, struct sifu_err *err)
{
	int r;
	c->attrs = NULL;
	if (!c->img) {
		c->attrs = json_object();
		return 0;
	}
	/* 1. the metadata object Apptainer writes at build */
	for (int64_t i = 0; i < c->img->h.dtotal; i++) {
		const struct sif_descr *d = &c->img->d[i];
		if (!d->used || d->datatype != SIF_DT_GENERIC_JSON ||
		    strcmp(d->name, SIF_INSPECT_METADATA_NAME))
			continue;
		json_error_t je;
		json_t *m = NULL;
		if ((r = load_object(c, d, &m, &je, err)) < 0)
			return r;
		json_t *at = m ? metadata_attrs(m) : NULL;
		if (!at) {
			json_decref(m);
			return sifu_err_set(err, SIFU_E_CORRUPT, EINVAL,
			                    "%s: object %u (%s) is not inspect metadata: %s",
			                    c->path, d->id, SIF_INSPECT_METADATA_NAME,
			                    m ? "no data.attributes" : je.text);
		}
		c->attrs = json_incref(at);
		json_decref(m);
		break;
	}
	if (!c->attrs)
		c->attrs = json_object();
	/* 2. the plain descriptor objects fill what the metadata lacks */
	const struct sif_descr *d;
	json_t *s;
	if (!json_object_get(c->attrs, "deffile") && (d = sif_first_of(c->img, SIF_DT_DEFFILE))) {
		if ((r = load_object(c, d, &s, NULL, err)) < 0)
			return r;
		json_object_set_new(c->attrs, "deffile", s);
	}
	if (!json_object_get(c->attrs, "labels") && (d = sif_first_of(c->img, SIF_DT_LABELS))) {
		json_error_t je;
		json_t *l = NULL;
		if ((r = load_object(c, d, &l, &je, err)) < 0)
			return r;
		if (!json_is_object(l)) {
			json_decref(l);
			return sifu_err_set(err, SIFU_E_CORRUPT, EINVAL,
			                    "%s: labels object %u is not a JSON object (%s)",
			                    c->path, d->id, je.text);
		}
		json_object_set_new(c->attrs, "labels", l);
	}
	if (!json_object_get(c->attrs, "environment") &&
	    (d = sif_first_of(c->img, SIF_DT_ENVVAR))) {
		if ((r = load_object(c, d, &s, NULL, err)) < 0)
			return r;
		json_t *env = json_object();
		json_object_set_new(env, "Env.Vars object", s);
		json_object_set_new(c->attrs, "environment", env);
	}
	return 0;
}

struct kind {
	enum cli_opt_id opt;
	const char *key;      /* attribute name */
	const char *in_image; /* where it lives in the image */
};

/* In Apptainer's attribute order (its Attributes struct, which its JSON
 * keeps). */
static const struct kind kinds[] = {
    {O_ENVIRONMENT, "environment", "/.singularity.d/env"},
    {O_LABELS, "labels", "/.singularity.d/labels.json"},
    {O_RUNSCRIPT, "runscript", "/.singularity.d/runscript"},
    {O_TESTSCRIPT, "test", "/.singularity.d/test"},
    {O_HELPFILE, "helpfile", "/.singularity.d/runscript.help"},
    {O_DEFFILE, "deffile", "/.singularity.d/Singularity"},
    {O_STARTSCRIPT, "startscript", "/.singularity.d/startscript"},
};

/* --app NAME's scope: *SCOPE its attributes in the SIF's metadata (ATTRS),
 * else (a sandbox, a bare SquashFS, an app missing from the metadata) an
 * empty object *OWNED with *META the app's directory to read them from, as
 * Apptainer's inspect reads it; *SCOPE NULL when the image has no such app. */
static int find_app(struct source *src, json_t *attrs, const char *name, json_t **scope,
                    char **meta, json_t **owned, struct sifu_err *err)
{
	json_t *apps = json_object_get(attrs, "apps");
	*scope = apps ? json_object_get(apps, name) : NULL;
	if (json_is_object(*scope))
		return 0;
	*scope = NULL;
	int r = app_in_image(src, name, meta, err);
	if (r < 0 || !*meta)
		return r;
	*scope = *owned = json_object();
	return 0;
}

/* Attribute K of SCOPE (*VAL borrowed, NULL when the image has none): the
 * SIF's metadata, else read from the image itself (from the app directory
 * APP_META when given) and kept in SCOPE. */
static int find_attr(struct inspect_ctx *c, struct source *src, json_t *scope, const char *app_meta,
                     const struct kind *k, json_t **val, struct sifu_err *err)
{
	*val = json_object_get(scope, k->key);
	/* an app known only from the metadata has nothing more to read */
	if (*val || (scope != c->attrs && !app_meta))
		return 0;
	json_t *got = NULL;
	_cleanup_free_ char *where =
	    app_meta ? sifu_xasprintf("%s%s", app_meta, k->in_image + strlen("/.singularity.d"))
	             : sifu_xstrdup(k->in_image);
	if (image_attr(src, k->key, where, &got, err) < 0)
		return sifu_err_wrap(err, "%s: reading %s from the image", c->path, k->in_image);
	if (got) {
		json_object_set_new(scope, k->key, got);
		*val = got;
	}
	return 0;
}

/* The order Apptainer's text form prints them in, whatever the flags. */
static const char *const text_order[] = {"deffile",  "runscript",   "startscript", "test",
                                         "helpfile", "environment", "labels"};

/* A value as Apptainer holds it: text without trailing newlines (its
 * setAttribute trims them), environment limited to the scripts it shows.
 * NULL when Apptainer would leave it out (empty). */
static json_t *apptainer_value(const char *key, json_t *val)
{
	if (json_is_string(val)) {
		size_t n = json_string_length(val);
		const char *s = json_string_value(val);
		while (n && s[n - 1] == '\n')
			n--;
		return n ? json_stringn_nocheck(s, n) : NULL;
	}
	if (!json_is_object(val))
		return NULL;
	bool env = !strcmp(key, "environment");
	json_t *o = json_object();
	const char *k;
	json_t *x;
	json_object_foreach(val, k, x)
	{
		if (env && strcmp(k, "Env.Vars object") && !shown_env_script(k))
			continue;
		json_t *t = env ? apptainer_value("", x) : json_incref(x);
		json_object_set_new(o, k, t ? t : json_string(""));
	}
	if (!json_object_size(o)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Apptainer's text form: scripts and files followed by a newline, labels
 * "key: value" sorted, environment files as "=== name ===" blocks. */
static void print_text(const char *key, json_t *val)
{
	if (json_is_string(val)) {
		fwrite(json_string_value(val), 1, json_string_length(val), stdout);
		putchar('\n');
		return;
	}
	size_t n = json_object_size(val), i = 0;
	const char **keys = sifu_xcalloc(n + 1, sizeof(char *));
	const char *k;
	json_t *x;
	json_object_foreach(val, k, x) keys[i++] = k;
	qsort(keys, n, sizeof(char *), cmp_str);
	bool env = !strcmp(key, "environment");
	for (i = 0; i < n; i++) {
		json_t *e = json_object_get(val, keys[i]);
		const char *s = json_is_string(e) ? json_string_value(e) : "";
		if (env)
			printf("=== %s ===\n%s\n\n", keys[i], s);
		else
			printf("%s: %s\n", keys[i], s);
	}
	free(keys);
}

/* DOC as Apptainer's json.MarshalIndent(…, "", "\t") writes it: tabs for
 * indentation, and <, > and & escaped as \u003c, \u003e, \u0026 (Go's
 * HTML-safe encoding; outside strings JSON has none of them). */
static void print_json(json_t *doc)
{
	char *s = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	if (!s)
		return;
	bool bol = true;
	for (const char *p = s; *p; p++) {
		if (bol && *p == ' ') {
			putchar('\t');
			continue;
		}
		bol = *p == '\n';
		if (*p == '<')
			fputs("\\u003c", stdout);
		else if (*p == '>')
			fputs("\\u003e", stdout);
		else if (*p == '&')
			fputs("\\u0026", stdout);
		else
			putchar(*p);
	}
	putchar('\n');
	free(s);
}

/* Open what PATH is, once: a sandbox directory, a bare SquashFS, else a
 * SIF (O_NONBLOCK: a FIFO given by mistake is refused, not waited on). */
static int open_source(struct inspect_ctx *c, struct source *src, struct sif_image **img,
                       struct sifu_err *err)
{
	int fd = open(c->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		sifu_err_set(err, SIFU_E_SYS, e, "cannot open %s", c->path);
		sifu_err_hint(err,
		              "give the path of a SIF image, a sandbox directory or a SquashFS "
		              "file");
		return -e;
	}
	if (S_ISDIR(st.st_mode)) {
		src->dirfd = fd;
		return 0;
	}
	char magic[4];
	if (pread(fd, magic, sizeof(magic), 0) == 4 && !memcmp(magic, "hsqs", 4)) {
		src->fd = fd;
		src->loc = (struct sif_rootfs_loc){
		    .offset = 0, .size = (uint64_t)st.st_size, .fstype = SIF_FS_SQUASH};
		src->have_loc = true;
		return 0;
	}
	int r = sif_open_fd(fd, img, err);
	if (r < 0) {
		close(fd);
		sifu_err_wrap(err, "%s", c->path);
		if (err->code == SIFU_E_UNSUPPORTED)
			sifu_err_hint(err, "inspect reads SIF images, sandbox directories and "
			                   "SquashFS files");
		return r;
	}
	(*img)->own_fd = true;
	src->fd = fd;
	src->is_sif = true;
	c->img = *img;
	return 0;
}

int cmd_inspect(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
{
	if (a->npos != 1) {
		sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		             "inspect: takes one IMAGE, got %d arguments", a->npos);
		sifu_err_hint(err, "usage: %s", v->usage);
		return -EINVAL;
	}
	struct inspect_ctx c = {.path = a->pos[0]};
	_cleanup_sif_ struct sif_image *img = NULL;
	struct source src = {.dirfd = -1, .fd = -1};
	int r = open_source(&c, &src, &img, err);
	if (r < 0)
		return r;
	if ((r = load_attrs(&c, err)) < 0) {
		source_close(&src);
		return r;
	}
	json_t *attrs = c.attrs;
	json_t *out = json_object();
	bool json = a->set[O_JSON] || a->set[O_ALL];
	json_t *scope = attrs;
	/* an app missing from the metadata (a sandbox, a bare SquashFS) is
	 * read from its directory, as Apptainer's inspect reads it */
	_cleanup_free_ char *app_meta = NULL;
	json_t *app_scope = NULL;
	if (a->set[O_APP]) {
		if ((r = find_app(&src, attrs, a->val[O_APP], &scope, &app_meta, &app_scope, err)) <
		    0)
			goto out;
		if (!scope) {
			r = sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT,
			                 "inspect: %s has no app '%s'", c.path, a->val[O_APP]);
			sifu_err_hint(err, "'sifu inspect --list-apps %s' lists its apps", c.path);
			goto out;
		}
	}
	if (a->set[O_LIST_APPS]) {
		r = list_apps(&src, json_object_get(attrs, "apps"), err);
		goto out;
	}
	/* --all shows the apps too, first, as Apptainer's metadata has them */
	json_t *apps = a->set[O_ALL] ? json_object_get(attrs, "apps") : NULL;
	if (json_is_object(apps) && json_object_size(apps))
		json_object_set(out, "apps", apps);
	bool any = false;
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		any |= a->set[kinds[i].opt];
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		const struct kind *k = &kinds[i];
		bool want = a->set[O_ALL] || a->set[k->opt] || (!any && k->opt == O_LABELS);
		if (!want)
			continue;
		json_t *val;
		if ((r = find_attr(&c, &src, scope, app_meta, k, &val, err)) < 0)
			goto out;
		json_t *shown = val ? apptainer_value(k->key, val) : NULL;
		if (!val) {
			if (a->set[O_ALL])
				continue; /* --all shows what there is */
			r = sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT,
			                 "inspect %s: the image has no %s", c.path, k->key);
			sifu_err_hint(err, "neither its SIF metadata nor %s holds one",
			              k->in_image);
			goto out;
		}
		if (shown)
			json_object_set_new(out, k->key, shown);
	}
	if (json) {
		/* an app's attributes go where Apptainer puts them: apps.NAME */
		json_t *shown = a->set[O_APP] ? json_pack("{s:{s:O}}", "apps", a->val[O_APP], out)
		                              : json_incref(out);
		json_t *doc =
		    json_pack("{s:{s:o},s:s}", "data", "attributes", shown, "type", "container");
		print_json(doc);
		json_decref(doc);
	} else {
		for (size_t i = 0; i < ARRAY_SIZE(text_order); i++) {
			json_t *val = json_object_get(out, text_order[i]);
			if (val)
				print_text(text_order[i], val);
		}
	}
	r = 0;
out:
	json_decref(app_scope);
	json_decref(out);
	json_decref(attrs);
	source_close(&src);
	return r;
}

/* `run-help`: Apptainer runs `inspect --helpfile [--app NAME] IMAGE` and
 * prints its words, or its default line when there are none (no %help, or
 * no such app: e2e/runhelp's AppFakeHelp exits 0 with that line). */
int cmd_run_help(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
{
	const char *path = cli_one_image(a, "run-help", err);
	if (!path)
		return -EINVAL;
	struct inspect_ctx c = {.path = path};
	_cleanup_sif_ struct sif_image *img = NULL;
	struct source src = {.dirfd = -1, .fd = -1};
	int r = open_source(&c, &src, &img, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *app_meta = NULL;
	json_t *app_scope = NULL, *scope = NULL, *val = NULL;
	if ((r = load_attrs(&c, err)) < 0)
		goto out;
	scope = c.attrs;
	if (a->set[O_APP] &&
	    (r = find_app(&src, c.attrs, a->val[O_APP], &scope, &app_meta, &app_scope, err)) < 0)
		goto out;
	const struct kind *help = kinds;
	while (help->opt != O_HELPFILE)
		help++;
	if (scope && (r = find_attr(&c, &src, scope, app_meta, help, &val, err)) < 0)
		goto out;
	json_t *shown = val ? apptainer_value(help->key, val) : NULL;
	if (shown)
		print_text(help->key, shown);
	else
		puts("No help sections were defined for this image");
	json_decref(shown);
	r = 0;
out:
	json_decref(app_scope);
	json_decref(c.attrs);
	source_close(&src);
	return r;
}
