/* SPDX-License-Identifier: BSD-3-Clause */
/* recipe/: the build sequence, in Apptainer's order.
 *
 * Every stage gets its own directory in a private temporary directory (mode
 * 0700): bootstrap -> %setup on the host -> %files -> /.singularity.d ->
 * %post as uid 0 of a user namespace (the launcher's --fakeroot on the
 * writable directory, plus the seccomp fake root) -> %environment, labels ->
 * %test.  The last stage becomes the output: one SquashFS written into a new
 * SIF (sif_writer: a temporary name renamed on commit), or the directory
 * itself renamed into place with --sandbox.  Nothing appears under the final
 * name unless everything succeeded, and the temporary directory goes in every
 * case, also after SIGINT/SIGTERM/SIGHUP.
 *
 * The steps it calls live beside it: bootstrap.c (the base), layout.c
 * (/.singularity.d), fakeroot.c (a child under the seccomp fake root),
 * tree.c (copying and writing trees), interrupt.c (the signals). */
#include "recipe_priv.h"
#include "sif.h"
#include "userns.h"

#include <fcntl.h>
#include <glob.h>
#include <fnmatch.h>
#include <jansson.h>
#include <libgen.h>
#include <stdarg.h>
#include <limits.h>
#include <sys/stat.h>

/* ------------------------------------------------------------ sections -- */

struct build {
	const struct recipe *r;
	const struct recipe_build_opts *o;
	char *workdir; /* the private temporary directory */
	int workfd;
	char **roots; /* each stage's rootfs path */
	int *rootfds;
	size_t nstages;
	struct bld_owners owners; /* what %post's chowns asked for (last stage) */
	bool subid;               /* in a subordinate-id namespace (--userns-subid) */
};

/* The interpreter of a script section: "-c COMMAND [ARGS...]" (up to a
 * '#'), as Apptainer's getSectionScriptArgs takes every word after -c ("%post
 * -c /bin/busybox sh"), or /bin/sh.  A shell (the last word ends in "sh")
 * gets -e (stop at the first failure) and -x (show each command), as
 * Apptainer's "/bin/sh -ex". */
static void script_argv(const struct recipe_script *s, const char *path, struct ns_strv *argv)
{
	const char *a = s->args ? s->args : "";
	a += strspn(a, " \t");
	if (strncmp(a, "-c", 2) || (a[2] != ' ' && a[2] != '\t'))
		a = "";
	else
		a += 2;
	size_t end = strcspn(a, "#");
	const char *last = "/bin/sh";
	size_t lastn = strlen(last);
	for (size_t i = 0; i < end;) {
		i += strspn(a + i, " \t");
		size_t n = strcspn(a + i, " \t#");
		if (!n)
			break;
		_cleanup_free_ char *w = sifu_xstrndup(a + i, n);
		ns_strv_push(argv, w);
		last = a + i;
		lastn = n;
		i += n;
	}
	if (!argv->n)
		ns_strv_push(argv, last);
	if (lastn >= 2 && !strncmp(last + lastn - 2, "sh", 2))
		ns_strv_push(argv, "-ex");
	ns_strv_push(argv, path);
}

/* "FILE:LINE: %SECTION failed (exit status N)" */
static int section_failed(const struct build *b, const char *section, unsigned line, int status,
                          struct sifu_err *err)
{
	return sifu_err_set(err, SIFU_E_USAGE, 0, "%s:%u: %%%s failed (exit status %d)", b->r->name,
	                    line, section, status);
}

/* How a section run in the container went: R from bld_run_fakeroot, then
 * its exit STATUS. */
static int section_result(const struct build *b, const char *section, unsigned line, int r,
                          int status, struct sifu_err *err)
{
	if (r < 0)
		return sifu_err_wrap(err, "%s:%u: %%%s", b->r->name, line, section);
	return status ? section_failed(b, section, line, status, err) : 0;
}

/* Start ARGV with ENV and wait for it, passing a signal to sifu on: *X is
 * how it ended, 127 where it could not be started (as a shell says).  0, or
 * -errno when the wait failed. */
static int run_host(char *const *argv, char *const *env, struct sifu_exit *x)
{
	struct sifu_command sp = {.argv = argv, .envp = env, .in = -1, .out = -1, .err = -1};
	struct sifu_err serr = {0};
	pid_t pid;
	if (sifu_spawn(&sp, &pid, &serr) < 0) {
		sifu_debug("build: %s", serr.chain[0]);
		*x = (struct sifu_exit){127, 0};
		return 0;
	}
	return sifu_proc_wait(pid, x, &bld_forward);
}

/* %pre (before the bootstrap) and %setup (after it) on the host, with the
 * stage's root as $APPTAINER_ROOTFS, as Apptainer's runHostScript. */
static int run_host_script(struct build *b, size_t i, const char *name,
                           const struct recipe_script *sc, struct sifu_err *err)
{
	if (!sc->text || !bld_section_on(b->o, name))
		return 0;
	_cleanup_free_ char *script = sifu_xasprintf("%s/%s.sh", b->workdir, name);
	_cleanup_close_ int fd = open(script, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
	if (fd < 0 || write(fd, sc->text, strlen(sc->text)) < 0)
		return sifu_err_sys(err, "writing the %%%s script", name);
	close(TAKE_FD(fd));
	struct ns_strv argv = {0};
	script_argv(sc, script, &argv);
	struct ns_strv env = {0};
	for (char *const *e = b->o->host_env; e && *e; e++)
		ns_strv_push(&env, *e);
	ns_env_set(&env, "APPTAINER_ROOTFS", b->roots[i]);
	ns_env_set(&env, "SINGULARITY_ROOTFS", b->roots[i]);
	sifu_log(SIFU_LOG_INFO, "Running %s scriptlet", name);
	struct sifu_exit x = {0};
	int r = run_host(argv.v, env.v, &x);
	ns_strv_free(&argv);
	ns_strv_free(&env);
	if (r < 0)
		return sifu_err_set(err, SIFU_E_SYS, -r, "waiting for %%%s", name);
	unlink(script);
	if ((r = bld_check_interrupted(err)) < 0)
		return r;
	return x.code ? section_failed(b, name, sc->line, x.code, err) : 0;
}

static int run_files(struct build *b, size_t i, struct sifu_err *err)
{
	const struct recipe_stage *st = &b->r->stages[i];
	if (!bld_section_on(b->o, "files"))
		return 0;
	for (size_t g = 0; g < st->nfiles; g++) {
		const struct recipe_files *fg = &st->files[g];
		int srcroot = -1;
		if (fg->from_stage) {
			for (size_t k = 0; k < i; k++)
				if (b->r->stages[k].name &&
				    !strcmp(b->r->stages[k].name, fg->from_stage))
					srcroot = b->rootfds[k];
			if (srcroot < 0)
				return sifu_err_set(err, SIFU_E_USAGE, 0,
				                    "%s:%u: no earlier stage %s", b->r->name,
				                    fg->line, fg->from_stage);
		}
		for (size_t f = 0; f < fg->nfiles; f++) {
			const struct recipe_file *rf = &fg->files[f];
			const char *dst = rf->dst ? rf->dst : rf->src;
			sifu_verbose("build: %%files %s -> %s", rf->src, dst);
			int r;
			if (srcroot < 0 && strpbrk(rf->src, "*?[")) {
				/* a host pattern, as Apptainer: every match goes to DST */
				glob_t gl;
				if (glob(rf->src, 0, NULL, &gl) != 0 || gl.gl_pathc == 0) {
					globfree(&gl);
					return sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT,
					                    "%s:%u: %%files %s: no file matches",
					                    b->r->name, rf->line, rf->src);
				}
				r = 0;
				for (size_t k = 0; k < gl.gl_pathc && r == 0; k++)
					r = bld_copy_in(-1, gl.gl_pathv[k], b->rootfds[i],
					                rf->dst ? rf->dst : gl.gl_pathv[k], err);
				globfree(&gl);
			} else {
				r = bld_copy_in(srcroot, rf->src, b->rootfds[i], dst, err);
			}
			if (r < 0)
				return sifu_err_wrap(err, "%s:%u: %%files %s", b->r->name, rf->line,
				                     rf->src);
		}
	}
	return 0;
}

/* ----------------------------------------------------------- in the box -- */

static int launch_child(void *arg, struct sifu_err *err)
{
	/* the launcher passes the caller's umask on, as Apptainer does; a
	 * section runs under 022 whatever the builder's umask, so that an
	 * image's file modes do not depend on who built it */
	umask(022);
	int st = 0;
	int r = ns_launch(arg, &st, err);
	return r < 0 ? r : st;
}

/* Run ARGV in the stage's directory through the launcher, in a child that
 * first installs the seccomp fake root - the filter stays with %post. */
static int run_in(struct build *b, size_t i, enum ns_action action, char *const *argv, int argc,
                  bool writable, int *status, struct sifu_err *err)
{
	char *const env_opts[] = {"APPTAINER_ENVIRONMENT=/.singularity.d/env/91-environment.sh",
	                          "SINGULARITY_ENVIRONMENT=/.singularity.d/env/91-environment.sh",
	                          "APPTAINER_LABELS=/.build.labels",
	                          "SINGULARITY_LABELS=/.build.labels", NULL};
	struct ns_config c = {
	    .image = b->roots[i],
	    .action = action,
	    .args = argv,
	    .nargs = argc,
	    .contain = true,
	    .pid = true, /* when %post ends or is stopped, so is all it started */
	    .no_home = true,
	    .no_mount = NS_NOMOUNT_PASSWD, /* %post edits the image's own */
	    .cleanenv = true,
	    .env_opts = env_opts,
	    .pwd = "/",
	    .writable = writable,
	    .fakeroot = true,
	    .in_userns = b->subid,
	    .host_env = b->o->host_env,
	    .binds = b->o->binds,
	    .nbinds = b->o->nbinds,
	    .bind_list = b->o->bind_list,
	    /* --writable-tmpfs is for %test only (Apptainer's build flag) */
	    .writable_tmpfs = action == NS_TEST && b->o->writable_tmpfs,
	};
	sqf_options_default(&c.sqf);
	return bld_run_fakeroot(launch_child, &c, b->subid, &b->owners, status, err);
}

static int run_post(struct build *b, size_t i, struct sifu_err *err)
{
	const struct recipe_stage *st = &b->r->stages[i];
	if ((!st->post.text && !st->napps) || !bld_section_on(b->o, "post"))
		return 0;
	/* the apps' %appinstall sections run at the end of %post, as Apptainer */
	_cleanup_free_ char *text = bld_apps_post(st, st->post.text);
	int r = bld_write_file(b->rootfds[i], "/.post.script", 0755, text, err);
	if (r < 0)
		return r;
	bld_write_file(b->rootfds[i], "/.build.labels", 0644, "", err);
	/* apt drops to its _apt user for downloads and checks that the ids
	 * really changed; under the fake root they cannot.  As Charliecloud's
	 * seccomp builds do, apt runs its methods as root for %post (the file
	 * goes again afterwards).  With subordinate ids the switch is real. */
	static const char apt_conf[] = "/etc/apt/apt.conf.d/00sifu-build-no-sandbox";
	bool apt = !b->subid && bld_file_exists(b->rootfds[i], "/etc/apt/apt.conf.d") &&
	           !bld_file_exists(b->rootfds[i], apt_conf);
	if (apt && (r = bld_write_file(b->rootfds[i], apt_conf, 0644,
	                               "APT::Sandbox::User \"root\";\n", err)) < 0)
		return r;
	struct ns_strv argv = {0};
	script_argv(&st->post, "/.post.script", &argv);
	sifu_log(SIFU_LOG_INFO, "Running post scriptlet");
	int status = 0;
	r = run_in(b, i, NS_EXEC, argv.v, (int)argv.n, true, &status, err);
	ns_strv_free(&argv);
	unlinkat(b->rootfds[i], ".post.script", 0);
	if (apt) {
		_cleanup_close_ int d = sifu_path_open_in_root(b->rootfds[i], "/etc/apt/apt.conf.d",
		                                               O_RDONLY | O_DIRECTORY, 0);
		if (d >= 0)
			unlinkat(d, "00sifu-build-no-sandbox", 0);
	}
	unsigned line = st->post.text ? st->post.line : st->apps[0].line;
	return section_result(b, "post", line, r, status, err);
}

static int run_test(struct build *b, size_t i, struct sifu_err *err)
{
	const struct recipe_stage *st = &b->r->stages[i];
	if (!st->test.text || b->o->notest || !bld_section_on(b->o, "test"))
		return 0;
	sifu_log(SIFU_LOG_INFO, "Running testscript");
	int status = 0;
	int q = run_in(b, i, NS_TEST, NULL, 0, false, &status, err);
	int r = section_result(b, "test", st->test.line, q, status, err);
	if (q >= 0 && r < 0)
		sifu_err_hint(err, "fix the test, or build with --notest");
	return r;
}

/* A file's text as Apptainer's `inspect` holds it: without trailing
 * newlines (its setAttribute trims them). */
static json_t *inspect_text(char *t)
{
	size_t n = strlen(t);
	while (n && t[n - 1] == '\n')
		n--;
	return json_stringn(t, n);
}

/* The environment scripts Apptainer's inspect shows (its globs). */
static bool inspect_env_name(const char *name)
{
	return !fnmatch("10-docker*.sh", name, 0) || !fnmatch("9*-environment.sh", name, 0);
}

/* The environment scripts in DIR (inside ROOT) that inspect shows, into AT
 * as "environment": {path: text}. */
static void env_attrs(int root, const char *dir, json_t *at)
{
	json_t *env = json_object();
	_cleanup_close_ int efd = sifu_path_open_in_root(root, dir, O_RDONLY | O_DIRECTORY, 0);
	if (efd >= 0) {
		struct dirent **names = NULL;
		char fdp[32];
		sifu_path_fd(efd, fdp);
		int n = scandir(fdp, &names, NULL, alphasort);
		for (int k = 0; k < n; k++) {
			if (inspect_env_name(names[k]->d_name)) {
				_cleanup_free_ char *path =
				    sifu_xasprintf("%s/%s", dir, names[k]->d_name);
				_cleanup_free_ char *t = bld_read_file(root, path, 1 << 20);
				if (t)
					json_object_set_new(env, path, inspect_text(t));
			}
			free(names[k]);
		}
		free(names);
	}
	if (json_object_size(env))
		json_object_set(at, "environment", env);
	json_decref(env);
}

/* The attributes of the metadata directory META (/.singularity.d, or an
 * app's /scif/apps/NAME/scif): environment, labels and the scripts
 * (KEYS, in Apptainer's field order) that are there and not empty. */
static void dir_attrs(int root, const char *meta, const char *const *keys, json_t *at)
{
	_cleanup_free_ char *envdir = sifu_xasprintf("%s/env", meta);
	env_attrs(root, envdir, at);
	_cleanup_free_ char *lpath = sifu_xasprintf("%s/labels.json", meta);
	_cleanup_free_ char *labels = bld_read_file(root, lpath, 1 << 20);
	json_t *l = labels ? json_loads(labels, 0, NULL) : NULL;
	if (json_is_object(l) && json_object_size(l))
		json_object_set(at, "labels", l);
	json_decref(l);
	static const struct {
		const char *key, *file;
	} files[] = {{"runscript", "runscript"},
	             {"startscript", "startscript"},
	             {"test", "test"},
	             {"helpfile", "runscript.help"},
	             {"deffile", "Singularity"}};
	for (const char *const *key = keys; *key; key++)
		for (size_t k = 0; k < ARRAY_SIZE(files); k++) {
			if (strcmp(files[k].key, *key))
				continue;
			_cleanup_free_ char *p = sifu_xasprintf("%s/%s", meta, files[k].file);
			_cleanup_free_ char *t = bld_read_file(root, p, 1 << 20);
			json_t *v = t ? inspect_text(t) : NULL;
			if (v && json_string_length(v))
				json_object_set(at, files[k].key, v);
			json_decref(v);
		}
}

/* The SCIF apps (every /scif/apps/NAME with a scif directory, in name
 * order as Apptainer's glob lists them), or NULL when there are none. */
static json_t *apps_attrs(int root)
{
	static const char *const keys[] = {"runscript", "startscript", "test", "helpfile", NULL};
	_cleanup_close_ int afd =
	    sifu_path_open_in_root(root, "/scif/apps", O_RDONLY | O_DIRECTORY, 0);
	if (afd < 0)
		return NULL;
	json_t *apps = json_object();
	struct dirent **names = NULL;
	char fdp[32];
	sifu_path_fd(afd, fdp);
	int n = scandir(fdp, &names, NULL, alphasort);
	for (int k = 0; k < n; k++) {
		const char *name = names[k]->d_name;
		_cleanup_free_ char *meta = sifu_xasprintf("/scif/apps/%s/scif", name);
		_cleanup_close_ int mfd =
		    name[0] == '.' ? -1
		                   : sifu_path_open_in_root(root, meta, O_RDONLY | O_DIRECTORY, 0);
		if (mfd >= 0) {
			json_t *at = json_object();
			dir_attrs(root, meta, keys, at);
			json_object_set_new(apps, name, at);
		}
		free(names[k]);
	}
	free(names);
	if (!json_object_size(apps)) {
		json_decref(apps);
		return NULL;
	}
	return apps;
}

/* The attributes `sifu inspect` (and Apptainer's) read without mounting, in
 * Apptainer's layout: what `apptainer inspect --all` of the build's root
 * gives, re-encoded compactly ({"data":{"attributes":{…}},"type":
 * "container"}, the attributes in its field order, empty ones left out). */
static char *inspect_metadata(int root)
{
	static const char *const keys[] = {"runscript", "test",        "helpfile",
	                                   "deffile",   "startscript", NULL};
	json_t *at = json_object();
	json_t *apps = apps_attrs(root);
	if (apps)
		json_object_set_new(at, "apps", apps);
	dir_attrs(root, "/.singularity.d", keys, at);
	json_t *m = json_pack("{s:{s:o},s:s}", "data", "attributes", at, "type", "container");
	char *s = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	return s;
}

/* -------------------------------------------------------------- output -- */

static int write_sif(int root, const struct bld_owners *owners, const char *out,
                     const char *deffile, bool data, struct sq_opts *sq,
                     const struct sif_write_opts *wo, struct sifu_err *err)
{
	struct sif_writer *w = NULL;
	int r = sif_writer_create(out, wo, &w, err);
	if (r < 0)
		return r;
	if (deffile)
		r = sif_writer_add_data(w, SIF_DT_DEFFILE, deffile, strlen(deffile), 1, 0, NULL,
		                        err);
	_cleanup_free_ char *meta = NULL;
	_cleanup_free_ char *labels = bld_read_file(root, "/.singularity.d/labels.json", 1 << 20);
	if (r == 0 && deffile) {
		meta = inspect_metadata(root);
		r = sif_writer_add_data(w, SIF_DT_GENERIC_JSON, meta, strlen(meta), 1, 0,
		                        SIF_INSPECT_METADATA_NAME, err);
	}
	if (r == 0 && deffile && labels)
		r = sif_writer_add_data(w, SIF_DT_LABELS, labels, strlen(labels), 1, 0, NULL, err);
	int fd;
	uint64_t off, size = 0;
	struct sq_image *img = NULL;
	if (r == 0)
		r = sif_writer_begin_partition(w, &fd, &off, err);
	if (r == 0)
		r = sq_image_create(fd, off, sq, &img, err);
	if (r == 0)
		r = bld_squash_dir(root, owners, img, NULL, err);
	if (r == 0)
		r = sq_image_finish(img, &size, err);
	sq_image_free(img);
	if (r == 0)
		r = sif_writer_end_partition(w, size, SIF_FS_SQUASH,
		                             data ? SIF_PART_DATA : SIF_PART_PRIMSYS, NULL, !data,
		                             err);
	if (r == 0)
		r = bld_check_interrupted(err);
	if (r == 0)
		return sif_writer_commit(w, err);
	sif_writer_abort(w);
	return r;
}

/* --data from a SquashFS file: its bytes as the SIF's data partition, as
 * Apptainer's CopyPacker does (nothing unpacked, nothing re-encoded). */
static int write_sif_copy(int src, const char *out, const struct sif_write_opts *wo,
                          struct sifu_err *err)
{
	struct stat st;
	if (fstat(src, &st) < 0)
		return sifu_err_sys(err, "stat the SquashFS file");
	struct sif_writer *w = NULL;
	int r = sif_writer_create(out, wo, &w, err);
	int fd;
	uint64_t off;
	if (r == 0)
		r = sif_writer_begin_partition(w, &fd, &off, err);
	char buf[1 << 16];
	for (uint64_t done = 0; r == 0 && done < (uint64_t)st.st_size;) {
		ssize_t n = pread(src, buf, sizeof(buf), (off_t)done);
		if (n <= 0) {
			r = n < 0 ? sifu_err_sys(err, "reading the SquashFS file")
			          : sifu_err_set(err, SIFU_E_SYS, EIO, "the SquashFS file shrank");
			break;
		}
		if (pwrite(fd, buf, (size_t)n, (off_t)(off + done)) != n) {
			r = sifu_err_sys(err, "writing %s", out);
			break;
		}
		done += (uint64_t)n;
		r = bld_check_interrupted(err);
	}
	if (r == 0)
		r = sif_writer_end_partition(w, (uint64_t)st.st_size, SIF_FS_SQUASH, SIF_PART_DATA,
		                             NULL, false, err);
	if (r == 0)
		return sif_writer_commit(w, err);
	if (w)
		sif_writer_abort(w);
	return r;
}

static bool is_squashfs_file(const char *path, int *fd)
{
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	char m[4];
	if (*fd >= 0 && pread(*fd, m, 4, 0) == 4 && !memcmp(m, "hsqs", 4))
		return true;
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	return false;
}

/* Rename the finished directory into place (a forced replacement moves the
 * old one aside first and removes it after). */
static int place_sandbox(struct build *b, const char *from, struct sifu_err *err)
{
	const char *out = b->o->output;
	struct stat st;
	_cleanup_free_ char *aside = NULL;
	if (lstat(out, &st) == 0) {
		aside = sifu_xasprintf("%s/old", b->workdir);
		if (rename(out, aside) < 0)
			return sifu_err_sys(err, "moving the old %s aside", out);
	}
	if (rename(from, out) < 0) {
		int e = errno;
		if (aside)
			rename(aside, out);
		errno = e;
		return sifu_err_sys(err, "renaming the sandbox to %s", out);
	}
	return 0;
}

/* The build's directory could not be made: say what to change, the
 * variables that choose it, or the output's directory for a sandbox. */
__attribute__((format(printf, 3, 4))) static int
workdir_failed(struct build *b, struct sifu_err *err, const char *fmt, ...)
{
	int e = errno;
	char what[PATH_MAX + 64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	errno = e;
	sifu_err_sys(err, "%s", what);
	if (b->o->sandbox)
		sifu_err_hint(err, "a sandbox is built next to its output: give an output in a "
		                   "directory you can write");
	else
		sifu_err_hint(err, "point SIFU_TMPDIR, APPTAINER_TMPDIR, SINGULARITY_TMPDIR or "
		                   "TMPDIR (the first set wins) at a writable directory with room "
		                   "for the image, e.g. TMPDIR=$HOME/tmp");
	return -e;
}

static int make_workdir(struct build *b, struct sifu_err *err)
{
	_cleanup_free_ char *base = NULL;
	if (b->o->sandbox) {
		/* next to the output, so that the result is renamed, not copied */
		_cleanup_free_ char *copy = sifu_xstrdup(b->o->output);
		base = sifu_xstrdup(dirname(copy));
	} else {
		const char *t = b->o->tmpdir;
		base = sifu_xstrdup(t && *t ? t : "/tmp");
	}
	char abs[PATH_MAX];
	if (!realpath(base, abs))
		return workdir_failed(b, err, "temporary directory %s", base);
	b->workdir = sifu_xasprintf("%s/.sifu-build-XXXXXX", abs);
	if (!mkdtemp(b->workdir)) {
		int e = errno;
		free(b->workdir);
		b->workdir = NULL;
		errno = e;
		return workdir_failed(b, err, "creating a temporary directory in %s", abs);
	}
	b->workfd = open(b->workdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->workfd < 0)
		return sifu_err_sys(err, "%s", b->workdir);
	return 0;
}

/* FAILED: --no-cleanup keeps the temporary tree of a failed build for a
 * look inside (Apptainer's); a subordinate-id build's tree holds files of
 * ids the caller cannot remove, so it goes anyway. */
static void build_free(struct build *b, bool failed)
{
	const struct recipe_build_opts *o = b->o;
	if (failed && o->no_cleanup && b->workdir) {
		if (o->userns_subid) {
			sifu_log(SIFU_LOG_WARN, "--no-cleanup: a --userns-subid build's directory "
			                        "holds files you could not remove; removed");
		} else {
			sifu_log(SIFU_LOG_INFO, "the failed build's directory is kept: %s",
			         b->workdir);
			free(TAKE_PTR(b->workdir));
		}
	}
	for (size_t i = 0; i < b->nstages; i++) {
		if (b->rootfds && b->rootfds[i] >= 0)
			close(b->rootfds[i]);
		if (b->roots)
			free(b->roots[i]);
	}
	free(b->roots);
	free(b->rootfds);
	bld_owners_free(&b->owners);
	if (b->workdir) {
		char parent[PATH_MAX];
		snprintf(parent, sizeof(parent), "%s", b->workdir);
		char *slash = strrchr(parent, '/');
		*slash = 0;
		_cleanup_close_ int pfd =
		    open(parent[0] ? parent : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (pfd >= 0)
			bld_rm_tree(pfd, slash + 1);
	}
	if (b->workfd >= 0)
		close(b->workfd);
	free(b->workdir);
}

static int check_output(const struct recipe_build_opts *o, struct sifu_err *err)
{
	struct stat st;
	/* find out now, not after a long %post, that the result cannot go there */
	_cleanup_free_ char *copy = sifu_xstrdup(o->output);
	const char *dir = dirname(copy);
	const char *why = NULL;
	int e = 0;
	if (stat(dir, &st) < 0)
		e = errno, why = e == ENOENT ? "its directory does not exist" : strerror(e);
	else if (!S_ISDIR(st.st_mode))
		e = ENOTDIR, why = "its directory is not a directory";
	else if (access(dir, W_OK | X_OK) < 0)
		e = errno, why = "its directory is not writable";
	if (why) {
		sifu_err_set(err, SIFU_E_USAGE, e, "cannot write %s: %s", o->output, why);
		sifu_err_hint(err, "create %s, or give another output path", dir);
		return -EINVAL;
	}
	if (lstat(o->output, &st) < 0)
		return 0;
	if (o->update) {
		if (!o->sandbox || !S_ISDIR(st.st_mode))
			return sifu_err_set(err, SIFU_E_USAGE, 0,
			                    "--update works on a sandbox directory: %s is not one",
			                    o->output);
		return 0;
	}
	if (!o->force) {
		sifu_err_set(err, SIFU_E_USAGE, EEXIST, "%s already exists", o->output);
		sifu_err_hint(err, "use --force to overwrite it");
		return -EEXIST;
	}
	if (S_ISDIR(st.st_mode) && !o->sandbox) {
		sifu_err_set(err, SIFU_E_USAGE, EISDIR, "%s is a directory", o->output);
		sifu_err_hint(err, "remove it, or build with --sandbox");
		return -EISDIR;
	}
	/* another user's symlink (one planted in a sticky directory): refused
	 * now rather than after the build */
	return o->sandbox ? 0 : sif_output_check(o->output, err);
}

static int build_stage(struct build *b, size_t i, bool in_place, struct sifu_err *err)
{
	const struct recipe_stage *st = &b->r->stages[i];
	struct bld_stage_ctx c = {.st = st,
	                          .rootfd = b->rootfds[i],
	                          .rootpath = b->roots[i],
	                          .workdir = b->workdir,
	                          .o = b->o,
	                          .subid = b->subid,
	                          .owners = &b->owners};
	/* %pre: on the host before anything else of the stage, as Apptainer
	 * still runs it (build.go), though its docs no longer list it */
	int r = run_host_script(b, i, "pre", &st->pre, err);
	if (r == 0 && !in_place) {
		sifu_log(SIFU_LOG_INFO, "Starting build%s%s (Bootstrap: %s)",
		         st->name ? " of stage " : "", st->name ? st->name : "", st->bootstrap);
		r = bld_bootstrap(&c, err);
	}
	if (r == 0)
		r = bld_check_interrupted(err);
	if (r == 0)
		r = bld_apps_create(b->rootfds[i], st, err);
	if (r == 0)
		r = run_host_script(b, i, "setup", &st->setup, err);
	if (r == 0)
		r = run_files(b, i, err);
	if (r == 0)
		r = bld_write_layout(b->rootfds[i], st, b->o, err);
	if (r == 0)
		r = run_post(b, i, err);
	if (r == 0)
		r = bld_write_environment(b->rootfds[i], st, b->o, err);
	if (r == 0)
		r = bld_write_labels(b->rootfds[i], st, b->o, err);
	if (r == 0)
		r = run_test(b, i, err);
	return r;
}

static int build_run(struct build *b, const struct recipe_build_opts *o, struct sifu_err *err)
{
	int r = make_workdir(b, err);
	if (r < 0)
		return r;
	b->roots = sifu_xcalloc(b->nstages, sizeof(*b->roots));
	b->rootfds = sifu_xcalloc(b->nstages, sizeof(*b->rootfds));
	for (size_t i = 0; i < b->nstages; i++)
		b->rootfds[i] = -1;
	for (size_t i = 0; i < b->nstages; i++) {
		bool last = i + 1 == b->nstages;
		bool in_place = last && o->update && o->sandbox && access(o->output, F_OK) == 0;
		if (in_place) {
			char abs[PATH_MAX];
			if (!realpath(o->output, abs))
				return sifu_err_sys(err, "%s", o->output);
			b->roots[i] = sifu_xstrdup(abs);
		} else {
			b->roots[i] = sifu_xasprintf("%s/stage-%zu", b->workdir, i);
			if (mkdir(b->roots[i], 0755) < 0)
				return sifu_err_sys(err, "%s", b->roots[i]);
		}
		b->rootfds[i] = open(b->roots[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (b->rootfds[i] < 0)
			return sifu_err_sys(err, "%s", b->roots[i]);
		if ((r = build_stage(b, i, in_place, err)) < 0)
			return r;
		if (in_place)
			return 0;
	}
	size_t last = b->nstages - 1;
	if (o->fix_perms && (r = bld_fix_perms(b->rootfds[last], err)) < 0)
		return r;
	if (o->sandbox)
		return place_sandbox(b, b->roots[last], err);
	struct sq_opts sq = o->pull ? o->pull->squash : (struct sq_opts){0};
	sifu_log(SIFU_LOG_INFO, "Creating SIF file...");
	return write_sif(b->rootfds[last], &b->owners, o->output, o->source_text, false, &sq,
	                 o->sif_write, err);
}

/* --userns-subid: the whole build (bootstrap, %post, the SquashFS and the
 * clean-up) runs as root of a namespace mapping the caller's subordinate
 * ids, so that files chowned to those ids can be read and removed, and the
 * owners stored are the ones the tree has there. */
static int enter_subid(struct build *b, struct sifu_err *err)
{
	struct ns_subid u, g;
	if (ns_enter_subid(b->o->path, &u, &g, err) < 0) {
		sifu_err_wrap(err, "--userns-subid");
		if (!err->hint[0])
			sifu_err_hint(err, "build without --userns-subid (the seccomp fake root "
			                   "needs no subordinate ids)");
		return -EPERM;
	}
	sifu_verbose("build: subordinate ids: uids 1-%u are %u-%u, gids 1-%u are %u-%u", u.count,
	             u.start, u.start + u.count - 1, g.count, g.start, g.start + g.count - 1);
	b->subid = true;
	return 0;
}

int recipe_build(const struct recipe *r, const struct recipe_build_opts *o, struct sifu_err *err)
{
	int ret = check_output(o, err);
	if (ret < 0)
		return ret;
	/* a missing tool stops the build before a first stage runs for nothing */
	for (size_t i = 0; i < r->nstages && !o->update; i++)
		if (!strcmp(r->stages[i].bootstrap, "debootstrap") &&
		    (ret = bld_debootstrap_check(o, err)) < 0)
			return ret;
	struct build b = {.r = r, .o = o, .nstages = r->nstages, .workfd = -1};
	if (o->userns_subid && (ret = enter_subid(&b, err)) < 0)
		return ret;
	struct bld_signals sigs;
	bld_signals_catch(&sigs);
	ret = build_run(&b, o, err);
	build_free(&b, ret < 0);
	bld_signals_restore(&sigs);
	return ret;
}

int recipe_convert(const char *source, const struct recipe_build_opts *o, struct sifu_err *err)
{
	int ret = check_output(o, err);
	if (ret < 0)
		return ret;
	if (!o->sandbox && strstr(source, ":") && access(source, F_OK) != 0) {
		/* a URI straight to a SIF: that is a pull */
		if (!o->pull)
			return sifu_err_set(err, SIFU_E_USAGE, 0, "no pull options for %s", source);
		return fetch_pull(source, o->output, o->pull, err);
	}
	struct bld_signals sigs;
	bld_signals_catch(&sigs);
	_cleanup_close_ int sqfd = -1;
	if (o->data && is_squashfs_file(source, &sqfd)) {
		ret = write_sif_copy(sqfd, o->output, o->sif_write, err);
		bld_signals_restore(&sigs);
		return ret;
	}
	struct build b = {.o = o, .nstages = 1, .workfd = -1};
	ret = make_workdir(&b, err);
	b.roots = sifu_xcalloc(1, sizeof(*b.roots));
	b.rootfds = sifu_xcalloc(1, sizeof(*b.rootfds));
	b.rootfds[0] = -1;
	if (ret == 0) {
		b.roots[0] = sifu_xasprintf("%s/stage-0", b.workdir);
		if (mkdir(b.roots[0], 0755) < 0 ||
		    (b.rootfds[0] = open(b.roots[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
			ret = sifu_err_sys(err, "%s", b.roots[0]);
	}
	if (ret == 0) {
		if (access(source, F_OK) == 0) {
			ret = bld_unpack_local(source, b.rootfds[0], err);
		} else {
			struct recipe_stage st = {.bootstrap = "docker"};
			const char *colon = strchr(source, ':');
			char agent[32];
			snprintf(agent, sizeof(agent), "%.*s", (int)(colon - source), source);
			st.bootstrap = agent;
			st.from = colon + 1 + (!strncmp(colon, "://", 3) ? 2 : 0);
			struct bld_stage_ctx c = {.st = &st,
			                          .rootfd = b.rootfds[0],
			                          .rootpath = b.roots[0],
			                          .workdir = b.workdir,
			                          .o = o};
			ret = bld_bootstrap(&c, err);
		}
	}
	if (ret == 0 && o->fix_perms)
		ret = bld_fix_perms(b.rootfds[0], err);
	if (ret == 0) {
		if (o->sandbox) {
			ret = place_sandbox(&b, b.roots[0], err);
		} else {
			struct sq_opts sq = o->pull ? o->pull->squash : (struct sq_opts){0};
			ret = write_sif(b.rootfds[0], NULL, o->output, NULL, o->data, &sq,
			                o->sif_write, err);
		}
	}
	build_free(&b, ret < 0);
	bld_signals_restore(&sigs);
	return ret;
}
