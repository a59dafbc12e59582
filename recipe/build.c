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
 * case, also after SIGINT/SIGTERM/SIGHUP. */
#include "build_int.h"
#include "config.h"
#include "sif.h"
#include "userns.h"

#include <fcntl.h>
#include <glob.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>

volatile sig_atomic_t bld_interrupted;

int bld_check_interrupted(struct sifu_err *err)
{
	if (!bld_interrupted)
		return 0;
	return sifu_err_set(err, SIFU_E_SYS, EINTR, "build interrupted by signal %d",
	                    (int)bld_interrupted);
}

static void on_signal(int sig)
{
	bld_interrupted = sig;
}

static const int caught[] = {SIGINT, SIGTERM, SIGHUP};

struct signals {
	struct sigaction old[3];
};

static void signals_catch(struct signals *s)
{
	bld_interrupted = 0;
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ARRAY_SIZE(caught); i++)
		sigaction(caught[i], &sa, &s->old[i]);
}

static void signals_restore(struct signals *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(caught); i++)
		sigaction(caught[i], &s->old[i], NULL);
}

/* Wait for PID; on a signal to us, pass it on (a terminal's ^C reached the
 * child's group already; a kill aimed at sifu alone did not). */
static int wait_child(pid_t pid, int *status)
{
	bool forwarded = false;
	for (;;) {
		int st;
		if (waitpid(pid, &st, 0) == pid) {
			*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			return 0;
		}
		if (errno != EINTR)
			return -errno;
		if (bld_interrupted && !forwarded) {
			kill(pid, bld_interrupted == SIGINT ? SIGINT : SIGTERM);
			forwarded = true;
		}
	}
}

static int bld_path_mkdir(int root, const char *path, struct sifu_err *err)
{
	int fd = sifu_path_mkdir_in_root(root, path, 0755);
	if (fd < 0)
		return sifu_err_set(err, SIFU_E_SYS, -fd, "creating %s in the container", path);
	close(fd);
	return 0;
}

static bool bld_read_file_exists(int root, const char *path)
{
	_cleanup_close_ int fd = sifu_path_open_in_root(root, path, O_PATH, 0);
	return fd >= 0;
}

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

static bool section_on(const struct recipe_build_opts *o, const char *name)
{
	if (!o->sections)
		return true;
	for (char *const *s = o->sections; *s; s++)
		if (!strcmp(*s, name) || !strcmp(*s, "all"))
			return true;
	return false;
}

/* The interpreter of a script section: "-c SHELL" or /bin/sh.  Shells get
 * -e (stop at the first failure) and -x (show each command), as Apptainer. */
static void script_argv(const struct recipe_script *s, const char *path, struct ns_strv *argv)
{
	_cleanup_free_ char *shell = NULL;
	if (s->args) {
		const char *a = s->args;
		while (*a == ' ' || *a == '\t')
			a++;
		if (!strncmp(a, "-c", 2) && (a[2] == ' ' || a[2] == '\t')) {
			a += 2;
			while (*a == ' ' || *a == '\t')
				a++;
			size_t n = strcspn(a, " \t#");
			if (n)
				shell = strndup(a, n);
		}
	}
	const char *sh = shell ? shell : "/bin/sh";
	ns_strv_push(argv, sh);
	const char *base = strrchr(sh, '/') ? strrchr(sh, '/') + 1 : sh;
	size_t bl = strlen(base);
	if (bl >= 2 && !strcmp(base + bl - 2, "sh"))
		ns_strv_push(argv, "-ex");
	ns_strv_push(argv, path);
}

static int run_setup(struct build *b, size_t i, struct sifu_err *err)
{
	const struct recipe_stage *st = &b->r->stages[i];
	if (!st->setup.text || !section_on(b->o, "setup"))
		return 0;
	_cleanup_free_ char *script = sifu_xasprintf("%s/setup.sh", b->workdir);
	_cleanup_close_ int fd = open(script, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
	if (fd < 0 || write(fd, st->setup.text, strlen(st->setup.text)) < 0)
		return sifu_err_sys(err, "writing the %%setup script");
	close(TAKE_FD(fd));
	struct ns_strv argv = {0};
	script_argv(&st->setup, script, &argv);
	struct ns_strv env = {0};
	for (char *const *e = b->o->host_env; e && *e; e++)
		ns_strv_push(&env, *e);
	ns_env_set(&env, "APPTAINER_ROOTFS", b->roots[i]);
	ns_env_set(&env, "SINGULARITY_ROOTFS", b->roots[i]);
	sifu_log(SIFU_LOG_INFO, "Running setup scriptlet");
	pid_t pid = fork();
	if (pid < 0)
		return sifu_err_sys(err, "fork");
	if (pid == 0) {
		execve(argv.v[0], argv.v, env.v);
		_exit(127);
	}
	ns_strv_free(&argv);
	ns_strv_free(&env);
	int status = -1; /* the analyser cannot know that wait_child fails with < 0 */
	if (wait_child(pid, &status) < 0)
		return sifu_err_sys(err, "waiting for %%setup");
	unlink(script);
	int r = bld_check_interrupted(err);
	if (r < 0)
		return r;
	if (status != 0)
		return sifu_err_set(err, SIFU_E_USAGE, 0, "%s:%u: %%setup failed (exit status %d)",
		                    b->r->name, st->setup.line, status);
	return 0;
}

static int run_files(struct build *b, size_t i, struct sifu_err *err)
{
	const struct recipe_stage *st = &b->r->stages[i];
	if (!section_on(b->o, "files"))
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

/* ----------------------------------------------------- /.singularity.d -- */

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

static int write_script(int rootfd, const char *path, const struct recipe_script *s,
                        struct sifu_err *err)
{
	_cleanup_free_ char *shebang = NULL;
	_cleanup_free_ char *body = NULL;
	recipe_script_shebang(s, &shebang, &body);
	_cleanup_free_ char *text = sifu_xasprintf("%s\n\n%s", shebang, body);
	return bld_write_file(rootfd, path, 0755, text, err);
}

/* The layout Apptainer gives every image it builds: what exists already
 * (a base image's own) stays unless the definition replaces it. */
static int write_layout(struct build *b, size_t i, struct sifu_err *err)
{
	int root = b->rootfds[i];
	const struct recipe_stage *st = &b->r->stages[i];
	static const char *const dirs[] = {"/.singularity.d/actions",
	                                   "/.singularity.d/env",
	                                   "/.singularity.d/libs",
	                                   "/dev",
	                                   "/proc",
	                                   "/sys",
	                                   "/root",
	                                   "/tmp",
	                                   "/var/tmp",
	                                   "/home",
	                                   "/etc"};
	for (size_t k = 0; k < ARRAY_SIZE(dirs); k++) {
		int fd = bld_path_mkdir(root, dirs[k], err);
		if (fd < 0)
			return fd;
	}
	static const struct {
		const char *path, *text;
	} files[] = {
	    {"/.singularity.d/actions/exec", action_exec},
	    {"/.singularity.d/actions/run", action_run},
	    {"/.singularity.d/actions/shell", action_shell},
	    {"/.singularity.d/actions/test", action_test},
	    {"/.singularity.d/actions/start", action_start},
	    {"/.singularity.d/env/01-base.sh", env_base},
	};
	int r;
	for (size_t k = 0; k < ARRAY_SIZE(files); k++)
		if ((r = bld_write_file(root, files[k].path, 0755, files[k].text, err)) < 0)
			return r;
	static const char *const empty[] = {"/etc/hosts", "/etc/resolv.conf",
	                                    "/.singularity.d/env/91-environment.sh"};
	for (size_t k = 0; k < ARRAY_SIZE(empty); k++) {
		_cleanup_free_ char *old = bld_read_file(root, empty[k], 1);
		if (!old && (r = bld_write_file(root, empty[k], 0644, "", err)) < 0)
			return r;
	}
	static const struct {
		const char *target, *path;
	} links[] = {
	    {".singularity.d/runscript", "/singularity"},
	    {".singularity.d/actions/run", "/.run"},
	    {".singularity.d/actions/exec", "/.exec"},
	    {".singularity.d/actions/shell", "/.shell"},
	    {".singularity.d/actions/test", "/.test"},
	    {".singularity.d/env/90-environment.sh", "/environment"},
	};
	for (size_t k = 0; k < ARRAY_SIZE(links); k++)
		if ((r = bld_symlink(root, links[k].target, links[k].path, err)) < 0)
			return r;
	/* the scripts */
	if (st->runscript.text && section_on(b->o, "runscript"))
		r = write_script(root, "/.singularity.d/runscript", &st->runscript, err);
	else {
		_cleanup_free_ char *old = bld_read_file(root, "/.singularity.d/runscript", 1);
		r = old ? 0
		        : bld_write_file(root, "/.singularity.d/runscript", 0755,
		                         "#!/bin/sh\n\necho \"There is no runscript defined for "
		                         "this container\"\n",
		                         err);
	}
	if (r < 0)
		return r;
	if (st->startscript.text && section_on(b->o, "startscript"))
		r = write_script(root, "/.singularity.d/startscript", &st->startscript, err);
	else if (!bld_read_file_exists(root, "/.singularity.d/startscript"))
		r = bld_write_file(root, "/.singularity.d/startscript", 0755, "#!/bin/sh\n", err);
	if (r < 0)
		return r;
	if (st->test.text && section_on(b->o, "test") &&
	    (r = write_script(root, "/.singularity.d/test", &st->test, err)) < 0)
		return r;
	if (st->help.text && (r = bld_write_file(root, "/.singularity.d/runscript.help", 0644,
	                                         st->help.text, err)) < 0)
		return r;
	if (b->o->source_text && (r = bld_write_file(root, "/.singularity.d/Singularity", 0644,
	                                             b->o->source_text, err)) < 0)
		return r;
	return 0;
}

static int write_environment(struct build *b, size_t i, struct sifu_err *err)
{
	const struct recipe_stage *st = &b->r->stages[i];
	if (!st->environment.text || !section_on(b->o, "environment"))
		return 0;
	_cleanup_free_ char *text = sifu_xasprintf("#!/bin/sh\n#Custom environment shell code "
	                                           "should follow\n\n%s",
	                                           st->environment.text);
	return bld_write_file(b->rootfds[i], "/.singularity.d/env/90-environment.sh", 0644, text,
	                      err);
}

/* ----------------------------------------------------------- in the box -- */

static void send_fd(int sock, int fd)
{
	char dummy = fd >= 0 ? 'f' : 'n';
	struct iovec iov = {&dummy, 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		msg.msg_control = u.buf;
		msg.msg_controllen = sizeof(u.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

/* The listener fd the child sent, or -1 (none, or the child failed first). */
static int recv_fd(int sock)
{
	char dummy;
	struct iovec iov = {&dummy, 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {.msg_iov = &iov,
	                     .msg_iovlen = 1,
	                     .msg_control = u.buf,
	                     .msg_controllen = sizeof(u.buf)};
	ssize_t n;
	while ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (n <= 0)
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

int bld_run_fakeroot(bld_child_fn fn, void *arg, bool subid, struct bld_owners *owners, int *status,
                     struct sifu_err *err)
{
	fflush(stdout);
	fflush(stderr);
	int p[2], sk[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return sifu_err_sys(err, "pipe");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sk) < 0) {
		close(p[0]);
		close(p[1]);
		return sifu_err_sys(err, "socketpair");
	}
	pid_t pid = fork();
	if (pid < 0) {
		int r = sifu_err_sys(err, "fork");
		close(p[0]);
		close(p[1]);
		close(sk[0]);
		close(sk[1]);
		return r;
	}
	if (pid == 0) {
		close(p[0]);
		close(sk[0]);
		struct sifu_err e = {0};
		int notify = -1;
		int r = bld_seccomp_fakeroot(subid ? NULL : &notify, subid, &e);
		send_fd(sk[1], notify);
		if (notify >= 0)
			close(notify);
		close(sk[1]);
		if (r == 0)
			r = fn(arg, &e);
		if (r < 0) {
			char line[SIFU_ERR_MSG_MAX];
			sifu_err_format(&e, line, sizeof(line));
			ssize_t w = write(p[1], line, strlen(line));
			(void)w;
			_exit(255);
		}
		_exit(r > 255 ? 255 : r);
	}
	close(p[1]);
	close(sk[1]);
	int nfd = recv_fd(sk[0]);
	close(sk[0]);
	struct bld_owner_server *srv = NULL;
	if (nfd >= 0 && bld_owners_serve(nfd, owners, &srv, err) < 0) {
		sifu_log(SIFU_LOG_WARN, "chowns are not recorded: %s", err->chain[0]);
		sifu_err_clear(err);
	}
	int q = wait_child(pid, status);
	bld_owners_stop(srv);
	char line[SIFU_ERR_MSG_MAX] = "";
	ssize_t n = read(p[0], line, sizeof(line) - 1);
	close(p[0]);
	if (q < 0)
		return sifu_err_set(err, SIFU_E_SYS, -q, "waiting for the container");
	if (n > 0) {
		line[n] = 0;
		return sifu_err_set(err, SIFU_E_SYS, 0, "%s", line);
	}
	return bld_check_interrupted(err);
}

static int launch_child(void *arg, struct sifu_err *err)
{
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
	};
	sqf_options_default(&c.sqf);
	return bld_run_fakeroot(launch_child, &c, b->subid, &b->owners, status, err);
}

static int run_post(struct build *b, size_t i, struct sifu_err *err)
{
	const struct recipe_stage *st = &b->r->stages[i];
	if (!st->post.text || !section_on(b->o, "post"))
		return 0;
	int r = bld_write_file(b->rootfds[i], "/.post.script", 0755, st->post.text, err);
	if (r < 0)
		return r;
	bld_write_file(b->rootfds[i], "/.build.labels", 0644, "", err);
	/* apt drops to its _apt user for downloads and checks that the ids
	 * really changed; under the fake root they cannot.  As Charliecloud's
	 * seccomp builds do, apt runs its methods as root for %post (the file
	 * goes again afterwards).  With subordinate ids the switch is real. */
	static const char apt_conf[] = "/etc/apt/apt.conf.d/00sifu-build-no-sandbox";
	bool apt = !b->subid && bld_read_file_exists(b->rootfds[i], "/etc/apt/apt.conf.d") &&
	           !bld_read_file_exists(b->rootfds[i], apt_conf);
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
	if (r < 0)
		return sifu_err_wrap(err, "%s:%u: %%post", b->r->name, st->post.line);
	if (status != 0)
		return sifu_err_set(err, SIFU_E_USAGE, 0, "%s:%u: %%post failed (exit status %d)",
		                    b->r->name, st->post.line, status);
	return 0;
}

static int run_test(struct build *b, size_t i, struct sifu_err *err)
{
	const struct recipe_stage *st = &b->r->stages[i];
	if (!st->test.text || b->o->notest || !section_on(b->o, "test"))
		return 0;
	sifu_log(SIFU_LOG_INFO, "Running testscript");
	int status = 0;
	int r = run_in(b, i, NS_TEST, NULL, 0, false, &status, err);
	if (r < 0)
		return sifu_err_wrap(err, "%s:%u: %%test", b->r->name, st->test.line);
	if (status != 0) {
		sifu_err_set(err, SIFU_E_USAGE, 0, "%s:%u: %%test failed (exit status %d)",
		             b->r->name, st->test.line, status);
		sifu_err_hint(err, "fix the test, or build with --notest");
		return -EINVAL;
	}
	return 0;
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

/* labels.json: the base image's labels, Apptainer's build labels, %labels,
 * then what %post wrote to $APPTAINER_LABELS ("KEY VALUE" lines). */
static int write_labels(struct build *b, size_t i, struct sifu_err *err)
{
	const struct recipe_stage *st = &b->r->stages[i];
	int root = b->rootfds[i];
	_cleanup_free_ char *old = bld_read_file(root, "/.singularity.d/labels.json", 1 << 20);
	json_t *l = old ? json_loads(old, 0, NULL) : NULL;
	if (!json_is_object(l)) {
		json_decref(l);
		l = json_object();
	}
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
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
	if (st->help.text)
		json_object_set_new(l, "org.label-schema.usage",
		                    json_string("/.singularity.d/runscript.help"));
	if (section_on(b->o, "labels"))
		for (size_t k = 0; k < st->nlabels; k++)
			json_object_set_new(l, st->labels[k].key, json_string(st->labels[k].value));
	_cleanup_free_ char *extra = bld_read_file(root, "/.build.labels", 1 << 20);
	if (extra) {
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
	char *text = json_dumps(l, JSON_INDENT(4) | JSON_SORT_KEYS);
	json_decref(l);
	_cleanup_free_ char *withnl = sifu_xasprintf("%s\n", text);
	free(text);
	return bld_write_file(root, "/.singularity.d/labels.json", 0644, withnl, err);
}

/* The attributes `sifu inspect` (and Apptainer's) read without mounting. */
static char *inspect_metadata(int root)
{
	json_t *at = json_object();
	static const struct {
		const char *key, *path;
	} files[] = {{"deffile", "/.singularity.d/Singularity"},
	             {"runscript", "/.singularity.d/runscript"},
	             {"startscript", "/.singularity.d/startscript"},
	             {"test", "/.singularity.d/test"},
	             {"helpfile", "/.singularity.d/runscript.help"}};
	for (size_t k = 0; k < ARRAY_SIZE(files); k++) {
		_cleanup_free_ char *t = bld_read_file(root, files[k].path, 1 << 20);
		if (t)
			json_object_set_new(at, files[k].key, json_string(t));
	}
	_cleanup_free_ char *labels = bld_read_file(root, "/.singularity.d/labels.json", 1 << 20);
	json_t *l = labels ? json_loads(labels, 0, NULL) : NULL;
	json_object_set_new(at, "labels", json_is_object(l) ? l : json_object());
	json_t *env = json_object();
	_cleanup_close_ int efd =
	    sifu_path_open_in_root(root, "/.singularity.d/env", O_RDONLY | O_DIRECTORY, 0);
	if (efd >= 0) {
		struct dirent **names = NULL;
		_cleanup_free_ char *p = NULL;
		char fdp[32];
		sifu_path_fd(efd, fdp);
		int n = scandir(fdp, &names, NULL, alphasort);
		for (int k = 0; k < n; k++) {
			if (names[k]->d_name[0] != '.') {
				_cleanup_free_ char *path =
				    sifu_xasprintf("/.singularity.d/env/%s", names[k]->d_name);
				_cleanup_free_ char *t = bld_read_file(root, path, 1 << 20);
				if (t && *t)
					json_object_set_new(env, path, json_string(t));
			}
			free(names[k]);
		}
		free(names);
	}
	json_object_set_new(at, "environment", env);
	json_t *m = json_object();
	json_object_set_new(m, "attributes", at);
	json_object_set_new(m, "type", json_string("container"));
	char *s = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(m);
	return s;
}

/* -------------------------------------------------------------- output -- */

static int write_sif(int root, const struct bld_owners *owners, const char *out,
                     const char *deffile, struct sq_opts *sq, const struct sif_write_opts *wo,
                     struct sifu_err *err)
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
		r = sif_writer_end_partition(w, size, SIF_FS_SQUASH, SIF_PART_PRIMSYS, NULL, true,
		                             err);
	if (r == 0)
		r = bld_check_interrupted(err);
	if (r == 0)
		return sif_writer_commit(w, err);
	sif_writer_abort(w);
	return r;
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

static int make_workdir(struct build *b, struct sifu_err *err)
{
	_cleanup_free_ char *base = NULL;
	if (b->o->sandbox) {
		/* next to the output, so that the result is renamed, not copied */
		_cleanup_free_ char *copy = sifu_xstrdup(b->o->output);
		base = sifu_xstrdup(dirname(copy));
	} else {
		const char *t = getenv("SIFU_TMPDIR");
		if (!t || !*t)
			t = getenv("APPTAINER_TMPDIR");
		if (!t || !*t)
			t = getenv("TMPDIR");
		base = sifu_xstrdup(t && *t ? t : "/tmp");
	}
	char abs[PATH_MAX];
	if (!realpath(base, abs))
		return sifu_err_sys(err, "temporary directory %s", base);
	b->workdir = sifu_xasprintf("%s/.sifu-build-XXXXXX", abs);
	if (!mkdtemp(b->workdir)) {
		int e = errno;
		free(b->workdir);
		b->workdir = NULL;
		errno = e;
		return sifu_err_sys(err, "creating a temporary directory in %s", abs);
	}
	b->workfd = open(b->workdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->workfd < 0)
		return sifu_err_sys(err, "%s", b->workdir);
	return 0;
}

static void build_free(struct build *b)
{
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
	int r = 0;
	if (!in_place) {
		sifu_log(SIFU_LOG_INFO, "Starting build%s%s (Bootstrap: %s)",
		         st->name ? " of stage " : "", st->name ? st->name : "", st->bootstrap);
		r = bld_bootstrap(&c, err);
	}
	if (r == 0)
		r = bld_check_interrupted(err);
	if (r == 0)
		r = run_setup(b, i, err);
	if (r == 0)
		r = run_files(b, i, err);
	if (r == 0)
		r = write_layout(b, i, err);
	if (r == 0)
		r = run_post(b, i, err);
	if (r == 0)
		r = write_environment(b, i, err);
	if (r == 0)
		r = write_labels(b, i, err);
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
	return write_sif(b->rootfds[last], &b->owners, o->output, o->source_text, &sq, o->sif_write,
	                 err);
}

/* --userns-subid: the whole build (bootstrap, %post, the SquashFS and the
 * clean-up) runs as root of a namespace mapping the caller's subordinate
 * ids, so that files chowned to those ids can be read and removed, and the
 * owners stored are the ones the tree has there. */
static int enter_subid(struct build *b, struct sifu_err *err)
{
	struct ns_subid u, g;
	if (ns_enter_subid(&u, &g, err) < 0) {
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
		    (ret = bld_debootstrap_check(err)) < 0)
			return ret;
	struct build b = {.r = r, .o = o, .nstages = r->nstages, .workfd = -1};
	if (o->userns_subid && (ret = enter_subid(&b, err)) < 0)
		return ret;
	struct signals sigs;
	signals_catch(&sigs);
	ret = build_run(&b, o, err);
	build_free(&b);
	signals_restore(&sigs);
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
	struct build b = {.o = o, .nstages = 1, .workfd = -1};
	struct signals sigs;
	signals_catch(&sigs);
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
			ret =
			    write_sif(b.rootfds[0], NULL, o->output, NULL, &sq, o->sif_write, err);
		}
	}
	build_free(&b);
	signals_restore(&sigs);
	return ret;
}
