/* SPDX-License-Identifier: BSD-3-Clause */
/* recipe/: SCIF apps - the /scif tree the %app* sections make, as
 * Apptainer's build lays it out (internal/pkg/build/apps/apps.go):
 *
 *   /scif/apps/NAME/{bin,lib}          on the app's PATH / LD_LIBRARY_PATH
 *   /scif/apps/NAME/scif/env/01-base.sh      SCIF_APPNAME, SCIF_APPROOT ...
 *   /scif/apps/NAME/scif/env/90-environment.sh   %appenv
 *   /scif/apps/NAME/scif/{runscript,startscript,test,runscript.help,labels.json}
 *   /scif/data/NAME/{input,output}
 *   /.singularity.d/env/94-appsbase.sh  SCIF_APPROOT_NAME ... for every app
 *
 * The tree is made right after the bootstrap (before %setup and %files, as
 * Apptainer), and each %appinstall runs at the end of %post, in
 * /scif/apps/NAME with its 01-base.sh sourced.  The run-time half (which
 * app's environment a run gets) is the image's 95-apps.sh (layout.c). */
#include "recipe_priv.h"

#include <ctype.h>
#include <jansson.h>

/* A section's text as sifu writes the main scripts (layout.c): as written,
 * without its blank tail, ending in one newline. */
static char *body_of(const char *text)
{
	const char *s = text ? text : "";
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return sifu_xasprintf("%.*s\n", (int)n, s);
}

/* NAME as it may appear in a variable name: [^A-Za-z0-9_] become '_'. */
static char *var_name(const char *name)
{
	char *v = sifu_xstrdup(name);
	for (char *p = v; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_')
			*p = '_';
	return v;
}

/* A script of the app (runscript, startscript, test): "#!/bin/sh", a blank
 * line, the section (Apptainer's apps.go).  Absent sections write nothing. */
static int write_app_script(int root, const char *meta, const char *file,
                            const struct recipe_script *s, struct sifu_err *err)
{
	if (!s->text)
		return 0;
	_cleanup_free_ char *body = body_of(s->text);
	_cleanup_free_ char *text = sifu_xasprintf("#!/bin/sh\n\n%s", body);
	_cleanup_free_ char *path = sifu_xasprintf("%s/%s", meta, file);
	return bld_write_file(root, path, 0755, text, err);
}

static int make_dirs(int root, const char *name, struct sifu_err *err)
{
	static const char *const dirs[][2] = {{"apps", "bin"},
	                                      {"apps", "lib"},
	                                      {"apps", "scif/env"},
	                                      {"data", "input"},
	                                      {"data", "output"}};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		_cleanup_free_ char *p =
		    sifu_xasprintf("/scif/%s/%s/%s", dirs[i][0], name, dirs[i][1]);
		int fd = sifu_path_mkdir_in_root(root, p, 0755);
		if (fd < 0)
			return sifu_err_set(err, SIFU_E_SYS, -fd, "creating %s in the container",
			                    p);
		close(fd);
	}
	return 0;
}

/* 01-base.sh: what every process of the app sees (sourced by 95-apps.sh at
 * run time and before %appinstall at build time). */
static int write_base_env(int root, const char *name, const char *meta, struct sifu_err *err)
{
	_cleanup_free_ char *text = sifu_xasprintf(
	    "#!/bin/sh\n\n"
	    "SCIF_APPNAME=%1$s\n"
	    "SCIF_APPROOT=\"/scif/apps/%1$s\"\n"
	    "SCIF_APPMETA=\"/scif/apps/%1$s/scif\"\n"
	    "SCIF_DATA=\"/scif/data\"\n"
	    "SCIF_APPDATA=\"/scif/data/%1$s\"\n"
	    "SCIF_APPINPUT=\"/scif/data/%1$s/input\"\n"
	    "SCIF_APPOUTPUT=\"/scif/data/%1$s/output\"\n"
	    "export SCIF_APPDATA SCIF_APPNAME SCIF_APPROOT SCIF_APPMETA SCIF_APPINPUT "
	    "SCIF_APPOUTPUT SCIF_DATA\n",
	    name);
	_cleanup_free_ char *path = sifu_xasprintf("%s/env/01-base.sh", meta);
	return bld_write_file(root, path, 0755, text, err);
}

/* labels.json: SCIF_APP_NAME, then %applabels (sorted, as Go writes a map). */
static int write_app_labels(int root, const struct recipe_app *a, const char *meta,
                            struct sifu_err *err)
{
	json_t *l = json_object();
	json_object_set_new(l, "SCIF_APP_NAME", json_string(a->name));
	for (size_t k = 0; k < a->nlabels; k++)
		json_object_set_new(l, a->labels[k].key, json_string(a->labels[k].value));
	char *text = json_dumps(l, JSON_INDENT(4) | JSON_SORT_KEYS);
	json_decref(l);
	_cleanup_free_ char *path = sifu_xasprintf("%s/labels.json", meta);
	int r = bld_write_file(root, path, 0644, text, err);
	free(text);
	return r;
}

/* %appfiles: SRC [DST] from the host, DST relative to the app's root. */
static int copy_app_files(int root, const struct recipe_app *a, struct sifu_err *err)
{
	for (size_t f = 0; f < a->nfiles; f++) {
		const struct recipe_file *rf = &a->files[f];
		const char *dst = rf->dst ? rf->dst : rf->src;
		_cleanup_free_ char *in = sifu_xasprintf("/scif/apps/%s/%s", a->name, dst);
		sifu_verbose("build: %%appfiles %s: %s -> %s", a->name, rf->src, in);
		int r = bld_copy_in(-1, rf->src, root, in, err);
		if (r < 0)
			return sifu_err_wrap(err, "line %u: %%appfiles %s %s", rf->line, a->name,
			                     rf->src);
	}
	return 0;
}

/* This app's part of 94-appsbase.sh, appended to B: the paths of every app
 * under its name, and its env/labels/runscript/startscript where written.
 * As Apptainer's, the paths are spelt with the variable-safe name too (for
 * an app "a-b" they say /scif/apps/a_b): scripts compare them verbatim. */
static void global_env(int root, const char *name, const char *meta, struct sifu_buf *b)
{
	_cleanup_free_ char *v = var_name(name);
	sifu_buf_printf(b,
	                "## App Global Exports For: %1$s\n\n"
	                "SCIF_APPDATA_%1$s=/scif/data/%1$s\n"
	                "SCIF_APPMETA_%1$s=/scif/apps/%1$s/scif\n"
	                "SCIF_APPROOT_%1$s=/scif/apps/%1$s\n"
	                "SCIF_APPBIN_%1$s=/scif/apps/%1$s/bin\n"
	                "SCIF_APPLIB_%1$s=/scif/apps/%1$s/lib\n\n"
	                "export SCIF_APPDATA_%1$s SCIF_APPMETA_%1$s SCIF_APPROOT_%1$s "
	                "SCIF_APPBIN_%1$s SCIF_APPLIB_%1$s\n",
	                v);
	static const struct {
		const char *var, *file;
	} opt[] = {{"APPENV", "env/90-environment.sh"},
	           {"APPLABELS", "labels.json"},
	           {"APPRUN", "runscript"},
	           {"APPSTART", "startscript"}};
	for (size_t i = 0; i < ARRAY_SIZE(opt); i++) {
		_cleanup_free_ char *p = sifu_xasprintf("%s/%s", meta, opt[i].file);
		if (bld_file_exists(root, p))
			sifu_buf_printf(b, "export SCIF_%s_%s=\"/scif/apps/%s/scif/%s\"\n",
			                opt[i].var, v, v, opt[i].file);
	}
}

static int create_app(int root, const struct recipe_app *a, struct sifu_buf *global,
                      struct sifu_err *err)
{
	_cleanup_free_ char *meta = sifu_xasprintf("/scif/apps/%s/scif", a->name);
	int r = make_dirs(root, a->name, err);
	if (r == 0)
		r = write_base_env(root, a->name, meta, err);
	if (r == 0 && a->env.text) {
		_cleanup_free_ char *env = body_of(a->env.text);
		_cleanup_free_ char *p = sifu_xasprintf("%s/env/90-environment.sh", meta);
		r = bld_write_file(root, p, 0755, env, err);
	}
	if (r == 0)
		r = write_app_script(root, meta, "runscript", &a->run, err);
	if (r == 0)
		r = write_app_script(root, meta, "startscript", &a->start, err);
	if (r == 0)
		r = write_app_script(root, meta, "test", &a->test, err);
	if (r == 0 && a->help.text) {
		_cleanup_free_ char *help = body_of(a->help.text);
		_cleanup_free_ char *p = sifu_xasprintf("%s/runscript.help", meta);
		r = bld_write_file(root, p, 0644, help, err);
	}
	if (r == 0)
		r = copy_app_files(root, a, err);
	if (r == 0)
		r = write_app_labels(root, a, meta, err);
	if (r == 0)
		global_env(root, a->name, meta, global);
	return r;
}

int bld_apps_create(int root, const struct recipe_stage *st, struct sifu_err *err)
{
	if (!st->napps)
		return 0;
	_cleanup_buf_ struct sifu_buf global = {0};
	for (size_t i = 0; i < st->napps; i++) {
		const struct recipe_app *a = &st->apps[i];
		/* the name is a path component of /scif/apps and /scif/data */
		if (strchr(a->name, '/') || !strcmp(a->name, ".") || !strcmp(a->name, ".."))
			return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
			                    "line %u: '%s' cannot name an app (it must be one "
			                    "path component)",
			                    a->line, a->name);
		sifu_verbose("build: creating app %s", a->name);
		int r = create_app(root, a, &global, err);
		if (r < 0)
			return sifu_err_wrap(err, "app %s", a->name);
	}
	return bld_write_file(root, "/.singularity.d/env/94-appsbase.sh", 0755,
	                      global.p ? global.p : "", err);
}

char *bld_apps_post(const struct recipe_stage *st, const char *post)
{
	struct sifu_buf b = {0};
	sifu_buf_str(&b, post ? post : "");
	for (size_t i = 0; i < st->napps; i++) {
		const struct recipe_app *a = &st->apps[i];
		_cleanup_free_ char *install = body_of(a->install.text);
		sifu_buf_printf(&b,
		                "\ncd /\n. /scif/apps/%1$s/scif/env/01-base.sh\n\n"
		                "cd /scif/apps/%1$s\n%2$s\ncd /\n",
		                a->name, install);
	}
	return sifu_buf_take(&b);
}
