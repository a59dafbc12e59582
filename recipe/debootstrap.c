/* SPDX-License-Identifier: BSD-3-Clause */
/* recipe/: Bootstrap: debootstrap, unprivileged.
 *
 * The host's debootstrap (a shell script) runs with Apptainer's arguments
 *
 *   debootstrap --variant=minbase --exclude=openssl,udev,debconf-i18n,e2fsprogs
 *               --include=apt,INCLUDE --arch=ARCH OSVERSION ROOTFS MIRRORURL
 *
 * as uid 0 of a user namespace that maps only the caller (or, with
 * --userns-subid, the caller's subordinate range), under the same seccomp
 * fake root as %post.  What it needs of a root, and how it gets it:
 *  - `id -u` is 0: the namespace's root.
 *  - tar and dpkg chown what they unpack, maintainer scripts add users and
 *    groups: the fake root records the owners for the SquashFS, as in %post.
 *  - chroot: CAP_SYS_CHROOT in the namespace.
 *  - mknod of /dev nodes: its check that the target allows devices is
 *    answered with success by the filter; the nodes it would make (null,
 *    zero, full, random, urandom, tty, console, ptmx) exist already as the
 *    host's, bound onto empty files that are removed again afterwards
 *    (sifu's launcher gives every run its own /dev).
 *  - mount -t proc in the chroot: it runs in a new PID namespace, whose
 *    proc a namespace root may mount.  sysfs cannot be mounted (it belongs to
 *    the network namespace, shared with the host for the downloads);
 *    debootstrap goes on without it.
 * Everything debootstrap starts runs in that PID namespace and ends with it.
 *
 * Downloaded packages are kept in $SIFU_CACHEDIR/debootstrap (debootstrap's
 * --cache-dir; it checks each package against the signed Release file
 * before using it), unless --disable-cache. */
#include "recipe_priv.h"
#include "config.h"
#include "userns.h"

#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>

/* The nodes debootstrap makes (mknod_if_needed: only where none exists),
 * bound from the host where it has them. */
static const char *const devices[] = {"null",    "zero", "full",    "random",
                                      "urandom", "tty",  "console", "ptmx"};

/* o->debootstrap ($SIFU_DEBOOTSTRAP), else debootstrap in o->path ($PATH)
 * or the sbin directories (a user's PATH seldom has them). */
static int find_debootstrap(const struct recipe_build_opts *o, char *path, size_t len,
                            struct sifu_err *err)
{
	const char *env = o->debootstrap;
	const char *why = "this host has no debootstrap";
	if (env && *env) {
		if (access(env, X_OK) == 0) {
			snprintf(path, len, "%s", env);
			return 0;
		}
		why = "SIFU_DEBOOTSTRAP names no executable file";
	} else if (sifu_find_exe("debootstrap", o->path, path, len)) {
		return 0;
	}
	sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT, "Bootstrap: debootstrap: %s%s%s", why,
	             env && *env ? ": " : "", env && *env ? env : "");
	sifu_err_hint(err, "install debootstrap (apt-get install debootstrap), or make the "
	                   "base elsewhere and use Bootstrap: docker or localimage");
	return -ENOENT;
}

int bld_debootstrap_check(const struct recipe_build_opts *o, struct sifu_err *err)
{
	char exe[PATH_MAX];
	return find_debootstrap(o, exe, sizeof(exe), err);
}

/* Debian's name for this machine's architecture. */
static const char *deb_arch(void)
{
	static const struct {
		const char *uname, *deb;
	} m[] = {{"x86_64", "amd64"},   {"aarch64", "arm64"},   {"ppc64le", "ppc64el"},
	         {"s390x", "s390x"},    {"riscv64", "riscv64"}, {"i686", "i386"},
	         {"i586", "i386"},      {"i386", "i386"},       {"armv7l", "armhf"},
	         {"mips64", "mips64el"}};
	static struct utsname u;
	if (uname(&u) < 0)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(m); i++)
		if (!strcmp(u.machine, m[i].uname))
			return m[i].deb;
	return u.machine;
}

struct deb_run {
	char *const *argv;
	char *const *envp;
	const char *rootpath;
	bool subid;
};

static int write_proc(const char *path, const char *s, struct sifu_err *err)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	size_t n = strlen(s);
	if (fd < 0 || write(fd, s, n) != (ssize_t)n)
		return sifu_err_sys(err, "writing %s", path);
	return 0;
}

/* uid 0 -> the caller (as the launcher's --fakeroot), setgroups denied */
static int map_self(unsigned uid, unsigned gid, struct sifu_err *err)
{
	char map[64];
	ns_idmap_format(map, sizeof(map), 0, uid, 1);
	int r = write_proc("/proc/self/uid_map", map, err);
	if (r == 0)
		r = write_proc("/proc/self/setgroups", "deny", err);
	ns_idmap_format(map, sizeof(map), 0, gid, 1);
	if (r == 0)
		r = write_proc("/proc/self/gid_map", map, err);
	return r;
}

/* Bind the host's device nodes onto empty files in ROOT/dev. */
static int bind_devices(int rootfd, struct sifu_err *err)
{
	_cleanup_close_ int dev = sifu_path_mkdir_in_root(rootfd, "/dev", 0755);
	if (dev < 0)
		return sifu_err_set(err, SIFU_E_SYS, -dev, "creating /dev in the build");
	_cleanup_close_ int d = openat(dev, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d < 0)
		return sifu_err_sys(err, "opening /dev of the build");
	for (size_t i = 0; i < ARRAY_SIZE(devices); i++) {
		char host[32], src[64], dst[64];
		snprintf(host, sizeof(host), "/dev/%s", devices[i]);
		_cleanup_close_ int t = openat(
		    d, devices[i], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (t < 0)
			return sifu_err_sys(err, "creating /dev/%s in the build", devices[i]);
		_cleanup_close_ int hfd = open(host, O_PATH | O_CLOEXEC);
		struct stat st;
		if (hfd < 0 || fstat(hfd, &st) < 0 || !S_ISCHR(st.st_mode))
			continue; /* the empty file alone keeps debootstrap's mknod away */
		sifu_path_fd(hfd, src);
		sifu_path_fd(t, dst);
		if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
			return sifu_err_sys(err, "binding %s into the build", host);
	}
	return 0;
}

/* The empty files the devices were bound onto. */
static void unbind_devices(int rootfd)
{
	_cleanup_close_ int d = sifu_path_open_in_root(rootfd, "/dev", O_RDONLY | O_DIRECTORY, 0);
	for (size_t i = 0; d >= 0 && i < ARRAY_SIZE(devices); i++) {
		struct stat st;
		if (fstatat(d, devices[i], &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
		    st.st_size == 0)
			unlinkat(d, devices[i], 0);
	}
}

/* PID 1 of the new PID namespace: start debootstrap, reap everything, end
 * with its status (and so end whatever it left running). */
static void init_main(const struct deb_run *x)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* debootstrap starts in "/" (init's own cwd does not matter) */
	if (chdir("/") < 0)
		_exit(127);
	struct sifu_command sp = {.argv = x->argv, .envp = x->envp, .in = -1, .out = -1, .err = -1};
	pid_t p;
	if (sifu_spawn(&sp, &p, NULL) < 0)
		_exit(127);
	/* pid 1 reaps every orphan of the namespace, not only debootstrap */
	for (;;) {
		int st;
		pid_t q = waitpid(-1, &st, 0);
		if (q < 0 && errno == EINTR)
			continue;
		if (q < 0)
			_exit(255);
		if (q == p) {
			struct sifu_exit e;
			sifu_exit_decode(st, &e);
			_exit(e.code);
		}
	}
}

/* In the child of bld_run_fakeroot (the filter is in place). */
static int deb_child(void *arg, struct sifu_err *err)
{
	const struct deb_run *x = arg;
	/* sifu's build handlers came along with fork: a signal ends this child,
	 * and with it (PDEATHSIG) the PID namespace */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	unsigned uid = getuid(), gid = getgid();
	int flags = CLONE_NEWNS | CLONE_NEWPID | (x->subid ? 0 : CLONE_NEWUSER);
	if (unshare(flags) < 0) {
		sifu_err_sys(err, "the kernel refused to create a user namespace for debootstrap");
		sifu_err_hint(err, "ask the administrator to enable unprivileged user namespaces "
		                   "(user.max_user_namespaces > 0)");
		return -EPERM;
	}
	int r = x->subid ? 0 : map_self(uid, gid, err);
	if (r < 0)
		return r;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return sifu_err_sys(err, "making the mount namespace private");
	/* a mount target must be a mount of this namespace: open the root
	 * again (the build's private directory) */
	_cleanup_close_ int root = open(x->rootpath, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return sifu_err_sys(err, "%s", x->rootpath);
	if ((r = bind_devices(root, err)) < 0)
		return r;
	pid_t init = fork();
	if (init < 0)
		return sifu_err_sys(err, "fork");
	if (init == 0)
		init_main(x);
	struct sifu_exit e;
	if ((r = sifu_proc_wait(init, &e, NULL)) < 0)
		return sifu_err_set(err, SIFU_E_SYS, -r, "waiting for debootstrap");
	return e.code;
}

/* The end of debootstrap's log: where it says why (its own output only
 * says "see the log"), before the build's directory goes. */
static void show_log(int rootfd)
{
	_cleanup_free_ char *log = bld_read_file(rootfd, "/debootstrap/debootstrap.log", 1 << 24);
	if (!log)
		return;
	size_t n = strlen(log);
	while (n && log[n - 1] == '\n')
		log[--n] = 0;
	const char *p = log + n;
	for (int lines = 0; p > log && lines < 15; p--)
		if (p[-1] == '\n')
			lines++;
	sifu_log(SIFU_LOG_WARN, "the end of debootstrap's log:\n%s", p);
}

/* Include: and o->debootstrap_include ($INCLUDE, as Apptainer), words
 * separated by blanks or commas */
static char *include_list(const struct recipe_stage *st, const struct recipe_build_opts *o)
{
	const char *h = recipe_header_get(st, "include");
	const char *e = o->debootstrap_include;
	_cleanup_free_ char *all = sifu_xasprintf("apt %s %s", h ? h : "", e ? e : "");
	struct sifu_buf b;
	b = (struct sifu_buf){0};
	sifu_buf_str(&b, "--include=");
	char *save = NULL;
	bool first = true;
	for (char *w = strtok_r(all, " \t\n,", &save); w; w = strtok_r(NULL, " \t\n,", &save)) {
		if (!first)
			sifu_buf_str(&b, ",");
		sifu_buf_str(&b, w);
		first = false;
	}
	return sifu_buf_take(&b);
}

static char *cache_dir(const struct bld_stage_ctx *c)
{
	if (!c->o->pull || c->o->pull->disable_cache || !c->o->pull->cache.dir)
		return NULL;
	const struct fetch_cache_loc *loc = &c->o->pull->cache;
	/* the same checks as the blob cache: a directory of the caller's that
	 * nobody else can write (debootstrap trusts what it finds there only
	 * after checking it against the signed Release file, but it is still
	 * where its downloads go) */
	struct sifu_err err = {0};
	_cleanup_close_ int root = sifu_privdir_open(
	    AT_FDCWD, NULL, loc->dir, loc->nprivate ? loc->nprivate : 1, loc->fix, &err);
	int fd =
	    root < 0 ? root : sifu_privdir_open(root, loc->dir, "debootstrap", ~0u, loc->fix, &err);
	if (fd < 0) {
		char line[SIFU_ERR_MSG_MAX];
		sifu_err_format(&err, line, sizeof(line));
		sifu_log(SIFU_LOG_WARN, "debootstrap: no package cache (%s)", line);
		return NULL;
	}
	/* debootstrap takes only an absolute --cache-dir: the checked directory's */
	char proc[32], abs[PATH_MAX];
	sifu_path_fd(fd, proc);
	char *ret = realpath(proc, abs) ? sifu_xstrdup(abs) : NULL;
	close(fd);
	return ret;
}

int bld_debootstrap(const struct bld_stage_ctx *c, struct sifu_err *err)
{
	const char *suite = recipe_header_get(c->st, "osversion");
	const char *mirror = recipe_header_get(c->st, "mirrorurl");
	if (!suite || !*suite || !mirror || !*mirror) {
		sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		             "Bootstrap: debootstrap (line %u) needs OSVersion: and MirrorURL:",
		             c->st->line);
		sifu_err_hint(err, "e.g. OSVersion: bookworm and MirrorURL: "
		                   "http://deb.debian.org/debian");
		return -EINVAL;
	}
	if (suite[0] == '-' || mirror[0] == '-') {
		/* it would reach debootstrap as an option */
		sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		             "Bootstrap: debootstrap (line %u): OSVersion: and MirrorURL: may not "
		             "start with '-'",
		             c->st->line);
		sifu_err_hint(err, "give a suite name and an archive URL");
		return -EINVAL;
	}
	char exe[PATH_MAX];
	int r = find_debootstrap(c->o, exe, sizeof(exe), err);
	if (r < 0)
		return r;
	_cleanup_free_ char *include = include_list(c->st, c->o);
	_cleanup_free_ char *arch = sifu_xasprintf("--arch=%s", deb_arch());
	_cleanup_free_ char *cache = cache_dir(c);
	_cleanup_free_ char *cacheopt = cache ? sifu_xasprintf("--cache-dir=%s", cache) : NULL;
	struct ns_strv argv = {0};
	ns_strv_push(&argv, exe);
	ns_strv_push(&argv, "--variant=minbase");
	ns_strv_push(&argv, "--exclude=openssl,udev,debconf-i18n,e2fsprogs");
	ns_strv_push(&argv, include);
	ns_strv_push(&argv, arch);
	if (cacheopt)
		ns_strv_push(&argv, cacheopt);
	ns_strv_push(&argv, suite);
	ns_strv_push(&argv, c->rootpath);
	ns_strv_push(&argv, mirror);
	/* the host's environment (proxies), with what a root shell has */
	struct ns_strv env = {0};
	for (char *const *e = c->o->host_env; e && *e; e++)
		ns_strv_push(&env, *e);
	const char *path = ns_env_get(&env, "PATH");
	_cleanup_free_ char *newpath =
	    sifu_xasprintf("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin%s%s",
	                   path && *path ? ":" : "", path ? path : "");
	ns_env_set(&env, "PATH", newpath);
	ns_env_set(&env, "DEBIAN_FRONTEND", "noninteractive");
	ns_env_unset(&env, "INCLUDE");
	sifu_log(SIFU_LOG_INFO, "Running debootstrap %s %s %s", suite, mirror, include);
	sifu_verbose("build: debootstrap%s", cache ? " with a package cache" : "");
	struct deb_run x = {
	    .argv = argv.v, .envp = env.v, .rootpath = c->rootpath, .subid = c->subid};
	int status = 0;
	r = bld_run_fakeroot(deb_child, &x, c->subid, c->owners, &status, err);
	ns_strv_free(&argv);
	ns_strv_free(&env);
	unbind_devices(c->rootfd);
	if (r < 0)
		return sifu_err_wrap(err, "Bootstrap: debootstrap");
	if (status != 0) {
		show_log(c->rootfd);
		sifu_err_set(err, SIFU_E_SYS, 0,
		             "Bootstrap: debootstrap %s %s failed (exit status %d)", suite, mirror,
		             status);
		sifu_err_hint(err,
		              "its messages are above; MirrorURL: must be a Debian or Ubuntu "
		              "archive that has the suite OSVersion: names (bookworm, jammy ...)");
		return -EIO;
	}
	/* debootstrap's own leftovers, as an image should not carry them */
	bld_rm_tree(c->rootfd, "debootstrap");
	return 0;
}
