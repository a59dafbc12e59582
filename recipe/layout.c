/* SPDX-License-Identifier: BSD-3-Clause */
/* recipe/: the /.singularity.d layout of a stage's root - the directories,
 * action scripts and links Apptainer gives every image it builds, the
 * scripts and files of the definition, %environment and labels.json. */
#include "recipe_priv.h"
#include "config.h"

#include <ctype.h>
#include <jansson.h>
#include <sys/utsname.h>
#include <time.h>

/* sifu's own action scripts (the launcher does not need them; other
 * runtimes and tools that look for them do). */
static const char action_exec[] =
    "#!/bin/sh\n"
    "for f in /.singularity.d/env/*.sh; do [ -f \"$f\" ] && . \"$f\"; done\n"
    "exec \"$@\"\n";
static const char action_run[] =
    "#!/bin/sh\n"
    "for f in /.singularity.d/env/*.sh; do [ -f \"$f\" ] && . \"$f\"; done\n"
    "if [ -x /.singularity.d/runscript ]; then exec /.singularity.d/runscript \"$@\"; fi\n"
    "echo \"There is no runscript in this container\" >&2\nexit 1\n";
static const char action_shell[] =
    "#!/bin/sh\n"
    "for f in /.singularity.d/env/*.sh; do [ -f \"$f\" ] && . \"$f\"; done\n"
    "exec \"${SINGULARITY_SHELL:-/bin/sh}\" \"$@\"\n";
static const char action_test[] =
    "#!/bin/sh\n"
    "for f in /.singularity.d/env/*.sh; do [ -f \"$f\" ] && . \"$f\"; done\n"
    "if [ -x /.singularity.d/test ]; then exec /.singularity.d/test \"$@\"; fi\n"
    "echo \"No test script found in container, exiting\"\nexit 0\n";
static const char action_start[] =
    "#!/bin/sh\n"
    "for f in /.singularity.d/env/*.sh; do [ -f \"$f\" ] && . \"$f\"; done\n"
    "if [ -x /.singularity.d/startscript ]; then exec /.singularity.d/startscript \"$@\"; fi\n";
static const char env_base[] =
    "#!/bin/sh\n"
    "# the defaults every container starts with\n"
    "if [ -z \"${PATH:-}\" ]; then\n"
    "    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    "    export PATH\n"
    "fi\n";
/* The environment of the SCIF app a run names (--app sets
 * SINGULARITY_APPNAME), in Apptainer's order: the app's root, then its bin
 * before PATH and its lib before LD_LIBRARY_PATH, then its 01-base.sh and
 * %appenv.  Every image gets it, as every image Apptainer builds has it:
 * the launcher only names the app. */
static const char env_apps[] =
    "#!/bin/sh\n"
    "# SCIF apps: the environment of the app chosen with --app\n"
    "if [ -n \"${SINGULARITY_APPNAME:-}\" ]; then\n"
    "    export SINGULARITY_APPNAME\n"
    "    __scif_app=\"/scif/apps/$SINGULARITY_APPNAME\"\n"
    "    if [ ! -d \"$__scif_app/\" ]; then\n"
    "        echo \"Could not locate the container application: $SINGULARITY_APPNAME\"\n"
    "        exit 1\n"
    "    fi\n"
    "    SCIF_APPS=/scif/apps\n"
    "    SCIF_APPROOT=\"$__scif_app\"\n"
    "    export SCIF_APPROOT SCIF_APPS\n"
    "    PATH=\"$__scif_app:/scif/apps/singularity:$PATH\"\n"
    "    if [ -d \"$__scif_app/bin\" ]; then PATH=\"$__scif_app/bin:$PATH\"; fi\n"
    "    if [ -d \"$__scif_app/lib\" ]; then\n"
    "        LD_LIBRARY_PATH=\"$__scif_app/lib:${LD_LIBRARY_PATH:-}\"\n"
    "        export LD_LIBRARY_PATH\n"
    "    fi\n"
    "    for __scif_f in 01-base.sh 90-environment.sh; do\n"
    "        if [ -f \"$__scif_app/scif/env/$__scif_f\" ]; then . "
    "\"$__scif_app/scif/env/$__scif_f\"; fi\n"
    "    done\n"
    "    export PATH\n"
    "    unset __scif_app __scif_f\n"
    "fi\n";
/* How a fresh 90-environment.sh starts, as Singularity 3 and Apptainer
 * images have it (Apptainer's e2e inspect test expects this header). */
static const char env_header[] = "#!/bin/sh\n# Custom environment shell code should follow\n\n";
static const char no_runscript[] =
    "#!/bin/sh\n\necho \"There is no runscript defined for this container\"\n";

/* What every image gets, in this order: what exists already (a base
 * image's own) stays, except sifu's action scripts, which are replaced.
 * ALIAS, where set, is a symlink to PATH that older images had at the top
 * (a directory there is kept). */
enum kind {
	MKDIR,       /* a directory */
	SCRIPT,      /* a file with TEXT, mode 0755, always written */
	PLACEHOLDER, /* an empty file, mode 0644, where there is none */
	LATER,       /* a file a later step writes (or not): only its alias now */
};
static const struct layout_entry {
	enum kind kind;
	const char *path;
	const char *text;
	const char *alias;
} layout[] = {
    {MKDIR, "/.singularity.d/actions"},
    {MKDIR, "/.singularity.d/env"},
    {MKDIR, "/.singularity.d/libs"},
    {MKDIR, "/dev"},
    {MKDIR, "/proc"},
    {MKDIR, "/sys"},
    {MKDIR, "/root"},
    {MKDIR, "/tmp"},
    {MKDIR, "/var/tmp"},
    {MKDIR, "/home"},
    {MKDIR, "/etc"},
    {SCRIPT, "/.singularity.d/actions/exec", action_exec, "/.exec"},
    {SCRIPT, "/.singularity.d/actions/run", action_run, "/.run"},
    {SCRIPT, "/.singularity.d/actions/shell", action_shell, "/.shell"},
    {SCRIPT, "/.singularity.d/actions/test", action_test, "/.test"},
    {SCRIPT, "/.singularity.d/actions/start", action_start},
    {SCRIPT, "/.singularity.d/env/01-base.sh", env_base},
    {SCRIPT, "/.singularity.d/env/95-apps.sh", env_apps},
    {PLACEHOLDER, "/etc/hosts"},
    {PLACEHOLDER, "/etc/resolv.conf"},
    {PLACEHOLDER, "/.singularity.d/env/91-environment.sh"},
    {LATER, "/.singularity.d/runscript", NULL, "/singularity"},
    {LATER, "/.singularity.d/env/90-environment.sh", NULL, "/environment"},
};

static int make_entry(int root, const struct layout_entry *e, struct sifu_err *err)
{
	int r = 0;
	switch (e->kind) {
	case MKDIR:
		r = sifu_path_mkdir_in_root(root, e->path, 0755);
		if (r < 0)
			return sifu_err_set(err, SIFU_E_SYS, -r, "creating %s in the container",
			                    e->path);
		close(r);
		r = 0;
		break;
	case SCRIPT: r = bld_write_file(root, e->path, 0755, e->text, err); break;
	case PLACEHOLDER:
		if (!bld_file_exists(root, e->path))
			r = bld_write_file(root, e->path, 0644, "", err);
		break;
	case LATER: break;
	}
	/* relative (PATH without its '/'): right inside the container and out */
	if (r == 0 && e->alias)
		r = bld_symlink(root, e->path + 1, e->alias, err);
	return r;
}

/* The length of TEXT without its trailing blanks: Apptainer's parser trims
 * each section (strings.TrimSpace of the section token) and its writers add
 * exactly one newline, so what `inspect` shows has no blank tail. */
static int trimmed_len(const char *text)
{
	size_t n = strlen(text);
	while (n && isspace((unsigned char)text[n - 1]))
		n--;
	return (int)n;
}

/* A runscript, startscript or test from the definition, with its
 * interpreter line as Apptainer writes it: shebang, blank line, body, one
 * newline. */
static int write_script(int rootfd, const char *path, const struct recipe_script *s,
                        struct sifu_err *err)
{
	_cleanup_free_ char *shebang = NULL;
	_cleanup_free_ char *body = NULL;
	recipe_script_shebang(s, &shebang, &body);
	_cleanup_free_ char *text =
	    sifu_xasprintf("%s\n\n%.*s\n", shebang, trimmed_len(body), body);
	return bld_write_file(rootfd, path, 0755, text, err);
}

/* The definition's SECTION script S at PATH, else (unless the base image
 * has one) DEFAULT_TEXT, or nothing when DEFAULT_TEXT is NULL. */
static int write_section_script(int root, const struct recipe_build_opts *o, const char *section,
                                const struct recipe_script *s, const char *path,
                                const char *default_text, struct sifu_err *err)
{
	if (s->text && bld_section_on(o, section))
		return write_script(root, path, s, err);
	if (!default_text || bld_file_exists(root, path))
		return 0;
	return bld_write_file(root, path, 0755, default_text, err);
}

/* %help, and the definition itself as the image stores it. */
static int write_docs(int root, const struct recipe_stage *st, const struct recipe_build_opts *o,
                      struct sifu_err *err)
{
	int r = 0;
	if (st->help.text) {
		_cleanup_free_ char *help =
		    sifu_xasprintf("%.*s\n", trimmed_len(st->help.text), st->help.text);
		r = bld_write_file(root, "/.singularity.d/runscript.help", 0644, help, err);
	}
	if (r == 0 && o->source_text)
		r = bld_write_file(root, "/.singularity.d/Singularity", 0644, o->source_text, err);
	return r;
}

int bld_write_layout(int root, const struct recipe_stage *st, const struct recipe_build_opts *o,
                     struct sifu_err *err)
{
	int r = 0;
	for (size_t k = 0; k < ARRAY_SIZE(layout) && r == 0; k++)
		r = make_entry(root, &layout[k], err);
	if (r == 0)
		r = write_section_script(root, o, "runscript", &st->runscript,
		                         "/.singularity.d/runscript", no_runscript, err);
	if (r == 0)
		r = write_section_script(root, o, "startscript", &st->startscript,
		                         "/.singularity.d/startscript", "#!/bin/sh\n", err);
	if (r == 0)
		r = write_section_script(root, o, "test", &st->test, "/.singularity.d/test", NULL,
		                         err);
	if (r == 0)
		r = write_docs(root, st, o, err);
	return r;
}

int bld_write_environment(int root, const struct recipe_stage *st,
                          const struct recipe_build_opts *o, struct sifu_err *err)
{
	if (!st->environment.text || !bld_section_on(o, "environment"))
		return 0;
	/* As Apptainer: the section goes after what the file already holds (a
	 * base image's, or the header a fresh one starts with), between a
	 * newline and a newline. */
	static const char path[] = "/.singularity.d/env/90-environment.sh";
	_cleanup_free_ char *old = bld_read_file(root, path, 16u << 20);
	const char *env = st->environment.text;
	_cleanup_free_ char *text =
	    sifu_xasprintf("%s\n%.*s\n", old ? old : env_header, trimmed_len(env), env);
	return bld_write_file(root, path, 0755, text, err);
}

/* -------------------------------------------------------------- labels -- */

static const char *host_arch(void)
{
	struct utsname u;
	static char buf[sizeof(u.machine)];
	uname(&u);
	const char *m = u.machine;
	if (!strcmp(m, "x86_64"))
		m = "amd64";
	else if (!strcmp(m, "aarch64"))
		m = "arm64";
	snprintf(buf, sizeof(buf), "%s", m);
	return buf;
}

/* Apptainer's build labels. */
static void build_labels(json_t *l, const struct recipe_stage *st,
                         const struct recipe_build_opts *o)
{
	char date[64];
	time_t now = o->fixed_time ? (time_t)o->epoch : time(NULL);
	struct tm tm;
	/* a fixed time is shown in UTC, as Apptainer's SourceDateEpoch is
	 * (Go names the zone "UTC"), so that it does not depend on the
	 * builder's zone */
	if (o->fixed_time)
		strftime(date, sizeof(date), "%A_%-d_%B_%Y_%-H:%M:%S_UTC", gmtime_r(&now, &tm));
	else
		strftime(date, sizeof(date), "%A_%-d_%B_%Y_%-H:%M:%S_%Z", localtime_r(&now, &tm));
	json_object_set_new(l, "org.label-schema.schema-version", json_string("1.0"));
	json_object_set_new(l, "org.label-schema.build-arch", json_string(host_arch()));
	json_object_set_new(l, "org.label-schema.build-date", json_string(date));
	json_object_set_new(l, "org.label-schema.usage.singularity.deffile.bootstrap",
	                    json_string(st->bootstrap));
	if (st->from)
		json_object_set_new(l, "org.label-schema.usage.singularity.deffile.from",
		                    json_string(st->from));
	json_object_set_new(l, "org.label-schema.usage.sifu.version", json_string(SIFU_VERSION));
	if (st->help.text) {
		json_object_set_new(l, "org.label-schema.usage",
		                    json_string("/.singularity.d/runscript.help"));
		json_object_set_new(l, "org.label-schema.usage.apptainer.runscript.help",
		                    json_string("/.singularity.d/runscript.help"));
	}
}

/* What %post wrote to $APPTAINER_LABELS: "KEY VALUE" lines (the file goes). */
static void post_labels(json_t *l, int root)
{
	_cleanup_free_ char *extra = bld_read_file(root, "/.build.labels", 1 << 20);
	if (!extra)
		return;
	for (char *save = NULL, *line = strtok_r(extra, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		while (*line == ' ' || *line == '\t')
			line++;
		size_t kl = strcspn(line, " \t");
		if (!kl || line[0] == '#')
			continue;
		char *v = line + kl;
		if (*v)
			*v++ = 0;
		while (*v == ' ' || *v == '\t')
			v++;
		json_object_set_new(l, line, json_string(v));
	}
	unlinkat(root, ".build.labels", 0);
}

int bld_write_labels(int root, const struct recipe_stage *st, const struct recipe_build_opts *o,
                     struct sifu_err *err)
{
	_cleanup_free_ char *old = bld_read_file(root, "/.singularity.d/labels.json", 1 << 20);
	json_t *l = old ? json_loads(old, 0, NULL) : NULL;
	if (!json_is_object(l)) {
		json_decref(l);
		l = json_object();
	}
	build_labels(l, st, o);
	if (bld_section_on(o, "labels"))
		for (size_t k = 0; k < st->nlabels; k++)
			json_object_set_new(l, st->labels[k].key, json_string(st->labels[k].value));
	post_labels(l, root);
	char *text = json_dumps(l, JSON_INDENT(4) | JSON_SORT_KEYS);
	json_decref(l);
	_cleanup_free_ char *withnl = sifu_xasprintf("%s\n", text);
	free(text);
	return bld_write_file(root, "/.singularity.d/labels.json", 0644, withnl, err);
}
