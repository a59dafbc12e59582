/* SPDX-License-Identifier: BSD-3-Clause */
/* `sifu inspect`: Apptainer's inspect, from what the SIF descriptors hold.
 *
 * Where the metadata lives in a SIF built by Apptainer/Singularity:
 *   - a JSON.Generic object named "inspect-metadata.json": the whole answer
 *     ({"attributes": {labels, deffile, runscript, startscript, test,
 *     environment, helpfile, apps}, "type": "container"}), written at build;
 *   - a Def.FILE object: the definition file;
 *   - a JSON.Labels object: the labels; an Env.Vars object: environment text;
 *   - everything else only inside the image's SquashFS, under /.singularity.d
 *     (runscript, startscript, test, env scripts, labels.json, runscript.help,
 *     scif apps).  Reading those needs a SquashFS reader: read_image_file()
 *     below is the one hook for it. */
#include "cli.h"
#include "sif.h"
#include "sqfuse.h"

#include <jansson.h>

int cmd_inspect(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);

#define META_MAX (16u << 20)

/* Read PATH (absolute, inside the container) from the root file system at
 * LOC in the image file FD, through the fuse/ module's SquashFS reader (no
 * mount needed). */
static int read_image_file(int fd, const struct sif_rootfs_loc *loc, const char *path, char **data,
                           size_t *len, struct sifu_err *err)
{
	if (loc->fstype != SIF_FS_SQUASH)
		return sifu_err_set(err, SIFU_E_UNSUPPORTED, ENOTSUP,
		                    "the image's root file system is not SquashFS");
	struct sqf_options o;
	sqf_options_default(&o);
	o.prefetch = SQF_PREFETCH_NONE; /* a few small reads */
	struct sqf_image *sq = NULL;
	int r = sqf_image_open(fd, loc->offset, loc->size, &o, &sq, err);
	if (r < 0)
		return r;
	r = sqf_read_path(sq, path, META_MAX, data, len, err);
	sqf_image_close(sq);
	return r;
}

struct kind_loc {
	const char *key, *in_image;
	const struct sif_rootfs_loc *loc;
};

/* The environment scripts Apptainer's inspect shows, by name. */
static const char *const env_scripts[] = {
    "10-docker2singularity.sh", "90-environment.sh", "91-environment.sh",
    "94-appsbase.sh",           "95-apps.sh",
};

/* An attribute read from the image itself: labels as JSON, environment as
 * {script path: text}, the rest as text.  *out is NULL when it is absent. */
static int image_attr(int fd, const struct kind_loc *kl, json_t **out, struct sifu_err *err)
{
	*out = NULL;
	char *data = NULL;
	size_t len = 0;
	if (!strcmp(kl->key, "environment")) {
		json_t *env = json_object();
		for (size_t i = 0; i < ARRAY_SIZE(env_scripts); i++) {
			char p[128];
			snprintf(p, sizeof(p), "%s/%s", kl->in_image, env_scripts[i]);
			if (read_image_file(fd, kl->loc, p, &data, &len, err) < 0) {
				if (err->code == SIFU_E_NOTFOUND)
					continue;
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
	if (read_image_file(fd, kl->loc, kl->in_image, &data, &len, err) < 0)
		return err->code == SIFU_E_NOTFOUND ? 0 : -EIO;
	if (!strcmp(kl->key, "labels")) {
		*out = json_loadb(data, len, 0, NULL);
		if (!*out)
			*out = json_object(); /* unreadable labels.json: show none */
	} else {
		*out = json_stringn_nocheck(data, len);
	}
	free(data);
	return 0;
}

struct inspect_ctx {
	struct sif_image *img;
	json_t *attrs; /* borrowed from the metadata object, or built here */
	const char *path;
};

static int load_object_string(struct inspect_ctx *c, const struct sif_descr *d, json_t **out,
                              struct sifu_err *err)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r = sif_read_object(c->img, d, META_MAX, &buf, &len, err);
	if (r < 0)
		return r;
	*out = json_stringn_nocheck(buf, len);
	return 0;
}

static int load_attrs(struct inspect_ctx *c, struct sifu_err *err)
{
	int r;
	/* 1. the metadata object Apptainer writes at build */
	for (int64_t i = 0; i < c->img->h.dtotal; i++) {
		const struct sif_descr *d = &c->img->d[i];
		if (!d->used || d->datatype != SIF_DT_GENERIC_JSON ||
		    strcmp(d->name, SIF_INSPECT_METADATA_NAME))
			continue;
		_cleanup_free_ char *buf = NULL;
		size_t len;
		if ((r = sif_read_object(c->img, d, META_MAX, &buf, &len, err)) < 0)
			return r;
		json_error_t je;
		json_t *m = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
		json_t *at = m ? json_object_get(m, "attributes") : NULL;
		if (!json_is_object(at)) {
			json_decref(m);
			return sifu_err_set(err, SIFU_E_CORRUPT, EINVAL,
			                    "%s: object %u (%s) is not inspect metadata: %s",
			                    c->path, d->id, SIF_INSPECT_METADATA_NAME,
			                    m ? "no attributes" : je.text);
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
		if ((r = load_object_string(c, d, &s, err)) < 0)
			return r;
		json_object_set_new(c->attrs, "deffile", s);
	}
	if (!json_object_get(c->attrs, "labels") && (d = sif_first_of(c->img, SIF_DT_LABELS))) {
		_cleanup_free_ char *buf = NULL;
		size_t len;
		if ((r = sif_read_object(c->img, d, META_MAX, &buf, &len, err)) < 0)
			return r;
		json_error_t je;
		json_t *l = json_loadb(buf, len, 0, &je);
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
		if ((r = load_object_string(c, d, &s, err)) < 0)
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
	const char *in_image; /* where it lives in the image, for the hook */
};

static const struct kind kinds[] = {
    {O_LABELS, "labels", "/.singularity.d/labels.json"},
    {O_DEFFILE, "deffile", "/.singularity.d/Singularity"},
    {O_RUNSCRIPT, "runscript", "/.singularity.d/runscript"},
    {O_STARTSCRIPT, "startscript", "/.singularity.d/startscript"},
    {O_TESTSCRIPT, "test", "/.singularity.d/test"},
    {O_ENVIRONMENT, "environment", "/.singularity.d/env"},
    {O_HELPFILE, "helpfile", "/.singularity.d/runscript.help"},
};

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Apptainer's text form: labels "key: value" sorted, environment files as
 * "=== name ===" blocks, scripts as they are. */
static void print_text(const char *key, json_t *val)
{
	if (json_is_string(val)) {
		fwrite(json_string_value(val), 1, json_string_length(val), stdout);
		size_t n = json_string_length(val);
		if (n && json_string_value(val)[n - 1] != '\n')
			putchar('\n');
		return;
	}
	if (!json_is_object(val))
		return;
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
			printf("=== %s ===\n%s\n", keys[i], s);
		else
			printf("%s: %s\n", keys[i], s);
	}
	free(keys);
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
	int r = sif_open_path(c.path, false, &img, err);
	if (r < 0) {
		if (err->code == SIFU_E_UNSUPPORTED)
			sifu_err_hint(err, "inspect reads SIF images; a sandbox directory or bare "
			                   "SquashFS keeps its metadata in /.singularity.d");
		return r;
	}
	c.img = img;
	if ((r = load_attrs(&c, err)) < 0)
		return r;
	json_t *attrs = c.attrs;
	json_t *out = json_object();
	bool json = a->set[O_JSON] || a->set[O_ALL];
	json_t *scope = attrs;
	if (a->set[O_APP]) {
		json_t *apps = json_object_get(attrs, "apps");
		scope = apps ? json_object_get(apps, a->val[O_APP]) : NULL;
		if (!json_is_object(scope)) {
			r = sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT,
			                 "inspect: %s has no app '%s' in "
			                 "its metadata",
			                 c.path, a->val[O_APP]);
			goto out;
		}
	}
	if (a->set[O_LIST_APPS]) {
		json_t *apps = json_object_get(attrs, "apps");
		const char *k;
		json_t *x;
		if (apps)
			json_object_foreach(apps, k, x) printf("%s\n", k);
		r = 0;
		goto out;
	}
	bool any = false;
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		any |= a->set[kinds[i].opt];
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		const struct kind *k = &kinds[i];
		bool want = a->set[O_ALL] || a->set[k->opt] || (!any && k->opt == O_LABELS);
		if (!want)
			continue;
		json_t *val = json_object_get(scope, k->key);
		if (!val && !a->set[O_APP]) {
			/* not in the SIF's metadata objects: read it from the image */
			struct sif_rootfs_loc loc;
			json_t *got = NULL;
			struct kind_loc kl = {k->key, k->in_image, &loc};
			if ((r = sif_find_rootfs(img->fd, &loc, err)) < 0 ||
			    (r = image_attr(img->fd, &kl, &got, err)) < 0) {
				sifu_err_wrap(err, "inspect %s: reading %s from the image", c.path,
				              k->in_image);
				goto out;
			}
			if (got) {
				json_object_set_new(scope, k->key, got);
				val = got;
			}
		}
		if (!val) {
			if (a->set[O_ALL])
				continue; /* --all shows what there is */
			r = sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT,
			                 "inspect %s: the image has no %s", c.path, k->key);
			sifu_err_hint(err, "neither its SIF metadata nor %s holds one",
			              k->in_image);
			goto out;
		}
		json_object_set(out, k->key, val);
		if (!json)
			print_text(k->key, val);
	}
	if (json) {
		json_t *doc =
		    json_pack("{s:{s:O,s:s}}", "data", "attributes", out, "type", "container");
		json_dumpf(doc, stdout, JSON_INDENT(4));
		putchar('\n');
		json_decref(doc);
	}
	r = 0;
out:
	json_decref(out);
	json_decref(attrs);
	return r;
}
