/* SPDX-License-Identifier: BSD-3-Clause */
/* The launch: one process, two roles (docs/running.md, "What happens at
 * start-up"; the processes and what each owns: docs/design.md, "userns/").
 *
 *   parent: checks → user namespace + id maps → open host objects → staging
 *           tmpfs → FUSE mount(2) → clone the payload (it waits) → open the
 *           image and start the FUSE server on threads → "go" → supervise.
 *
 * The payload is cloned before any thread exists (the FUSE server's threads
 * start afterwards), so the child of a single-threaded process never inherits
 * a lock held by another thread.  The payload builds the tree, then moves
 * into namespaces of its own (nest.c): a child user namespace that locks the
 * tree's mounts, and the PID, IPC, network and UTS namespaces, owned by it. */
#include "userns_priv.h"
#include "sif.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* Ubuntu 23.10+: unshare() succeeds but the new namespace has no
 * capabilities, so the first privileged step fails instead. */
static bool apparmor_restricts(void)
{
	char c = '0';
	int fd =
	    open("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (read(fd, &c, 1) != 1)
		c = '0';
	close(fd);
	return c == '1';
}

static void hint_apparmor(struct sifu_err *err)
{
	sifu_err_hint(err, "an AppArmor policy restricts unprivileged user namespaces "
	                   "(Ubuntu 23.10+): ask the administrator for an AppArmor profile "
	                   "for sifu, or sysctl kernel.apparmor_restrict_unprivileged_userns=0");
}

static int userns_refused(int e, struct sifu_err *err)
{
	errno = e;
	sifu_err_sys(err, "the kernel refused to create a user namespace");
	if (e == ENOSPC) {
		sifu_err_hint(err, "user namespaces are disabled: ask the administrator to set "
		                   "sysctl user.max_user_namespaces to a positive number");
	} else if (apparmor_restricts()) {
		hint_apparmor(err);
	} else {
		sifu_err_hint(err, "ask the administrator to enable unprivileged user namespaces "
		                   "(sysctl kernel.unprivileged_userns_clone=1 where it exists, "
		                   "user.max_user_namespaces > 0)");
	}
	return -e;
}

static int write_file(const char *path, const char *s, struct sifu_err *err)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return sifu_err_sys(err, "open %s", path);
	size_t n = strlen(s);
	if (write(fd, s, n) != (ssize_t)n)
		return sifu_err_sys(err, "write %s", path);
	return 0;
}

/* order: uid_map, setgroups=deny, gid_map (user_namespaces(7)) */
static int write_maps(struct ns_run *l, struct sifu_err *err)
{
	char map[64];
	ns_idmap_format(map, sizeof(map), l->cuid, l->uid, 1);
	if (write_file("/proc/self/uid_map", map, err) < 0)
		return sifu_err_wrap(err, "mapping uid %u", l->uid);
	if (write_file("/proc/self/setgroups", "deny", err) < 0)
		return sifu_err_wrap(err, "denying setgroups");
	ns_idmap_format(map, sizeof(map), l->cgid, l->gid, 1);
	if (write_file("/proc/self/gid_map", map, err) < 0)
		return sifu_err_wrap(err, "mapping gid %u", l->gid);
	return 0;
}

static int enter_userns_maps(struct ns_run *l, struct sifu_err *err)
{
	if (l->c->in_userns) {
		/* root of its own namespace, its maps in place already */
		if (unshare(CLONE_NEWNS) < 0)
			return sifu_err_sys(err, "unsharing the mount namespace");
	} else {
		if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
			return userns_refused(errno, err);
		int r = write_maps(l, err);
		if (r < 0)
			return r;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return sifu_err_sys(err, "making the mount namespace private");
	return 0;
}

static int enter_userns(struct ns_run *l, struct sifu_err *err)
{
	int r = enter_userns_maps(l, err);
	if (r < 0 && err->code == SIFU_E_SYS && err->errnum == EPERM && apparmor_restricts())
		hint_apparmor(err);
	return r;
}

/* -------------------------------------------------- host objects (fds) -- */

static int open_host(const char *path, bool must, struct sifu_err *err)
{
	int fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0 && must) {
		sifu_err_sys(err, "bind source %s", path);
		sifu_err_hint(err, "the host path must exist");
		return -errno;
	}
	return fd < 0 ? -errno : fd;
}

static void add_hb(struct ns_run *l, int fd, const char *dst, bool ro, bool user)
{
	struct stat st;
	l->hb = sifu_xrealloc(l->hb, (l->nhb + 1) * sizeof(*l->hb));
	struct ns_hostbind *b = &l->hb[l->nhb++];
	b->fd = fd;
	b->dst = sifu_xstrdup(dst);
	b->ro = ro;
	b->dir = fd < 0 || (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode));
	b->user = user;
	b->scratch = false;
}

/* --scratch: Apptainer's addScratchMount, before the user's binds so that
 * one can land inside a scratch directory (e2e ScratchTmpfsBind). */
static void add_scratch(struct ns_run *l)
{
	for (char *const *s = l->c->scratch; s && *s; s++) {
		char dir[PATH_MAX];
		if (sifu_path_normalize(*s, dir, sizeof(dir)) < 0 || dir[0] != '/')
			snprintf(dir, sizeof(dir), "/%s", *s);
		add_hb(l, -1, dir, false, true);
		l->hb[l->nhb - 1].scratch = true;
	}
}

static void add_default(struct ns_run *l, unsigned bit, const char *src, const char *dst)
{
	if (l->c->no_mount & bit)
		return;
	int fd = open_host(src, false, NULL);
	if (fd >= 0)
		add_hb(l, fd, dst, false, false);
}

/* $HOME inside: DEST of -H SRC[:DEST], /root with --fakeroot, else the host's. */
static int home_dst_init(struct ns_run *l, struct sifu_err *err)
{
	const struct ns_config *c = l->c;
	const char *colon = c->home_spec ? strchr(c->home_spec, ':') : NULL;
	l->home_dst = sifu_xstrdup(c->home_spec  ? (colon ? colon + 1 : c->home_spec)
	                           : c->fakeroot ? "/root"
	                                         : l->host_home);
	if (l->home_dst[0] != '/') {
		sifu_err_set(err, SIFU_E_USAGE, EINVAL, "--home %s: '%s' is not absolute",
		             c->home_spec, l->home_dst);
		sifu_err_hint(err, "write --home SRC[:DEST] with absolute paths");
		return -EINVAL;
	}
	return 0;
}

/* $HOME: SRC of -H, the host home, an empty one with --contain (fd -1). */
static int add_home(struct ns_run *l, struct sifu_err *err)
{
	const struct ns_config *c = l->c;
	if (c->no_home || (c->no_mount & NS_NOMOUNT_HOME))
		return 0;
	if (c->contain && !c->home_spec) {
		add_hb(l, -1, l->home_dst, false, false); /* an empty home */
		return 0;
	}
	const char *spec = c->home_spec ? c->home_spec : l->host_home;
	const char *colon = c->home_spec ? strchr(spec, ':') : NULL;
	_cleanup_free_ char *src =
	    sifu_xasprintf("%.*s", (int)(colon ? (size_t)(colon - spec) : strlen(spec)), spec);
	int fd = open_host(src, c->home_spec != NULL, err);
	if (fd >= 0)
		add_hb(l, fd, l->home_dst, false, c->home_spec != NULL);
	return fd == -ENOENT && !c->home_spec ? 0 : fd < 0 ? fd : 0;
}

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0' || n == 1);
}

static int open_host_objects(struct ns_run *l, struct sifu_err *err)
{
	const struct ns_config *c = l->c;
	l->dev_fd = l->proc_fd = l->sys_fd = l->workdir_fd = -1;
	if (l->kind == NS_ROOT_DIR) {
		/* reopen: a bind source must be a mount of this namespace */
		int fd = open(l->image_abs, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return sifu_err_sys(err, "reopening the sandbox %s", c->image);
		close(l->image_fd);
		l->image_fd = fd;
	}
	if (!(c->no_mount & NS_NOMOUNT_PROC))
		l->proc_fd = open_host("/proc", false, NULL);
	if (!(c->no_mount & NS_NOMOUNT_SYS))
		l->sys_fd = open_host("/sys", false, NULL);
	if (!(c->no_mount & NS_NOMOUNT_DEV))
		l->dev_fd = open("/dev", O_PATH | O_DIRECTORY | O_CLOEXEC);
	int r = add_home(l, err);
	if (r < 0)
		return r;
	if (!c->contain) {
		add_default(l, NS_NOMOUNT_TMP, "/tmp", "/tmp");
		add_default(l, NS_NOMOUNT_TMP, "/var/tmp", "/var/tmp");
	} else if (!(c->no_mount & NS_NOMOUNT_TMP)) {
		add_hb(l, -1, "/tmp", false, false);
		add_hb(l, -1, "/var/tmp", false, false);
	}
	add_default(l, NS_NOMOUNT_LOCALTIME, "/etc/localtime", "/etc/localtime");
	add_default(l, NS_NOMOUNT_HOSTS, "/etc/hosts", "/etc/hosts");
	l->dns_hb = SIZE_MAX;
	if (c->dns && !(c->no_mount & NS_NOMOUNT_RESOLV)) {
		l->dns_hb = l->nhb;
		add_hb(l, -1, "/etc/resolv.conf", false, false);
	} else {
		add_default(l, NS_NOMOUNT_RESOLV, "/etc/resolv.conf", "/etc/resolv.conf");
	}
	bool tmp_bound = !c->contain && !(c->no_mount & NS_NOMOUNT_TMP);
	bool home_bound = !c->no_home && !c->contain && !(c->no_mount & NS_NOMOUNT_HOME);
	if (!c->contain && !(c->no_mount & NS_NOMOUNT_CWD) && !ns_cwd_is_skipped(l->cwd) &&
	    !(home_bound && under(l->cwd, l->home_dst) && !strcmp(l->home_dst, l->host_home)) &&
	    !(tmp_bound && (under(l->cwd, "/tmp") || under(l->cwd, "/var/tmp"))))
		add_default(l, NS_NOMOUNT_CWD, l->cwd, l->cwd);
	add_scratch(l);
	for (size_t i = 0; i < c->nbinds; i++) {
		if (c->binds[i].image_src)
			continue; /* an image bind: images.c */
		int fd = open_host(c->binds[i].src, true, err);
		if (fd < 0)
			return fd;
		add_hb(l, fd, c->binds[i].dst, c->binds[i].ro, true);
	}
	return 0;
}

static int open_dir_arg(const char *what, const char *path, int *out, struct sifu_err *err)
{
	*out = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*out < 0) {
		sifu_err_sys(err, "%s %s", what, path);
		sifu_err_hint(err, "give an existing directory");
		return -errno;
	}
	return 0;
}

static int open_overlay(struct ns_run *l, struct sifu_err *err)
{
	const struct ns_config *c = l->c;
	int r = 0;
	if (c->workdir)
		r = open_dir_arg("--workdir", c->workdir, &l->workdir_fd, err);
	if (r == 0)
		r = ns_images_open(l, err);
	if (r == 0 && c->writable && c->overlays && c->overlays[0]) {
		/* Apptainer's e2e overlay_find_with_writable_fail: 255 */
		sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		             "--writable and --overlay exclude each other");
		sifu_err_hint(err, "drop --writable: the writable overlay takes the writes");
		return -EINVAL;
	}
	if (r == 0 && c->writable && l->kind == NS_ROOT_FUSE && l->wlayer < 0 &&
	    sif_fd_is_sif(l->image_fd)) {
		/* Apptainer's words (prepare_linux.go) */
		sifu_err_set(err, SIFU_E_USAGE, EROFS,
		             "no SIF writable overlay partition found in %s", c->image);
		sifu_err_hint(err, "use --writable-tmpfs, or --overlay with a directory or an ext3 "
		                   "image for writes that persist");
		return -EROFS;
	}
	if (r == 0 && c->writable && l->kind != NS_ROOT_DIR && l->wlayer < 0) {
		sifu_err_set(err, SIFU_E_USAGE, EROFS, "--writable needs a sandbox directory");
		sifu_err_hint(err,
		              "use --writable-tmpfs, or --overlay DIR for writes that persist");
		return -EROFS;
	}
	return r;
}

/* --------------------------------------------------------- staging, FUSE -- */

/* The staging tmpfs becomes the launcher's root (pivot_root, the host's root
 * below /oldroot) so that it is no longer mounted on a host directory: a
 * recursive bind of that directory (/tmp) would otherwise carry it along.
 * The host objects were opened before, as fds. */
static int mount_stage(struct ns_run *l, struct sifu_err *err)
{
	static const char *const cands[] = {"/tmp", "/var/tmp", "/mnt", "/run", "/dev"};
	static const char *const dirs[] = {"img", "root", "upper",   "work",
	                                   "etc", "ov",   "oldroot", "proc"};
	for (size_t i = 0; i < ARRAY_SIZE(cands); i++) {
		if (mount("sifu", cands[i], "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
			continue;
		if (chdir(cands[i]) < 0)
			return sifu_err_sys(err, "staging: chdir %s", cands[i]);
		for (size_t j = 0; j < ARRAY_SIZE(dirs); j++)
			if (mkdir(dirs[j], 0755) < 0)
				return sifu_err_sys(err, "staging: mkdir %s", dirs[j]);
		if (syscall(SYS_pivot_root, ".", "oldroot") < 0 || chdir("/") < 0)
			return sifu_err_sys(err, "staging: pivot_root");
		l->stage[0] = '\0'; /* staging paths are now "/img", "/root", ... */
		/* /proc/self/fd/N names the fds that mounts are made through */
		if (mount("/oldroot/proc", "/proc", NULL, MS_BIND | MS_REC, NULL) < 0)
			return sifu_err_sys(err, "staging: /proc");
		return 0;
	}
	return sifu_err_sys(err, "cannot mount the staging tmpfs");
}

/* --dns: the container's /etc/resolv.conf, "nameserver IP" per server as
 * Apptainer's files.ResolvConf writes it, in the staging tmpfs (nothing is
 * left on the host), bound where the host's would have been. */
static int stage_dns(struct ns_run *l, struct sifu_err *err)
{
	if (l->dns_hb == SIZE_MAX)
		return 0;
	_cleanup_free_ char *text = sifu_xstrdup("");
	for (char *const *d = l->c->dns; *d; d++) {
		char *t = sifu_xasprintf("%snameserver %s\n", text, *d);
		free(text);
		text = t;
	}
	char p[NS_STAGE_MAX + 32];
	snprintf(p, sizeof(p), "%s/etc/resolv.conf", l->stage);
	_cleanup_close_ int fd = open(p, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
	size_t len = strlen(text);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len)
		return sifu_err_sys(err, "--dns: writing %s", p);
	struct ns_hostbind *b = &l->hb[l->dns_hb];
	b->fd = open(p, O_PATH | O_CLOEXEC);
	b->dir = false;
	return b->fd < 0 ? sifu_err_sys(err, "--dns: opening %s", p) : 0;
}

static bool fuse_wanted(struct ns_run *l)
{
	return l->kind == NS_ROOT_FUSE && !l->c->unsquash;
}

/* mount(2) "fuse" on a /dev/fuse fd; failure is not fatal (extraction). */
static int mount_fuse(struct ns_run *l, struct sifu_err *err)
{
	char tgt[NS_STAGE_MAX + 8];
	snprintf(tgt, sizeof(tgt), "%s/img", l->stage);
	return ns_fuse_mount(l, tgt, false, &l->fuse_fd, err);
}

/* ------------------------------------------------------- the supervisor -- */

static int supervise(pid_t child, int sfd, struct sifu_err *err)
{
	int r = ns_forward_and_wait(sfd, child);
	if (r < 0) {
		errno = -r;
		return sifu_err_sys(err, "signalfd");
	}
	return r;
}

/* ----------------------------------------------------------- the child -- */

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* What the payload child inherits besides the run: the end of the "go" pipe
 * it waits on, its error channel to the supervisor, and the fds that are
 * the supervisor's alone. */
struct child_ctx {
	struct ns_run *l;
	int go_fd;
	struct sifu_childerr *ce;
	pid_t parent;
	int parent_only[2]; /* the supervisor's end of the go pipe, its signalfd */
};

/* What the launcher opened on the host's side is closed once the tree is
 * built: no process of the container (--pid's relay and init do not exec)
 * keeps an fd that /proc/PID/fd would reopen writable (a read-only bind's
 * source, the block cache). */
static void close_host_fds(struct ns_run *l)
{
	if (l->c->sqf.block_cache_dir > STDERR_FILENO)
		close(l->c->sqf.block_cache_dir);
	for (size_t i = 0; i < l->nhb; i++)
		close_fd(&l->hb[i].fd);
	int *fds[] = {&l->image_fd, &l->dev_fd, &l->proc_fd, &l->sys_fd, &l->workdir_fd};
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		close_fd(fds[i]);
	ns_images_close_fds(l);
}

static int payload_setup(struct ns_run *l, struct sifu_err *err)
{
	/* the maps of the payload's namespace are written through this fd:
	 * the container may have no /proc */
	_cleanup_close_ int self = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (self < 0)
		return sifu_err_sys(err, "open /proc/self");
	int r = ns_tree_build(l, err);
	close_host_fds(l);
	if (r == 0)
		r = ns_nest(l, self, err);
	if (r == 0) {
		ns_phase(l, "payload namespaces");
		r = ns_setup_net_uts(l->c, err);
	}
	return r;
}

_Noreturn static void child_main(struct child_ctx *x)
{
	struct sifu_err err = {0};
	struct ns_run *l = x->l;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != x->parent)
		_exit(255);
	if (l->fuse_fd >= 0)
		close(l->fuse_fd);
	for (size_t i = 0; i < l->nimgs; i++)
		close_fd(&l->imgs[i].fuse_fd); /* the supervisor's */
	close(x->parent_only[0]);
	sifu_childerr_in_child(x->ce);
	close(x->parent_only[1]);
	char go = 0;
	while (read(x->go_fd, &go, 1) < 0 && errno == EINTR)
		;
	if (go != 'G')
		_exit(255);
	close(x->go_fd);
	ns_phase(l, "payload released");
	if (payload_setup(l, &err) < 0)
		sifu_childerr_exit(x->ce, &err);
	if (l->c->pid) {
		int r = ns_pid_run(l, x->ce, &err);
		if (r < 0)
			sifu_childerr_exit(x->ce, &err);
		_exit(r);
	}
	ns_signals_default();
	ns_payload_exec(l, &err);
	sifu_childerr_exit(x->ce, &err);
}

/* ------------------------------------------------------------ the image -- */

/* Overlayfs copies a file up only when the user namespace maps its owner
 * (ovl_copy_up_one: EOVERFLOW otherwise), so with only the caller mapped,
 * creating a file in an image directory owned by root fails even where the
 * mode allows it (Apptainer issue 5455: mkdir in a root-owned 0777
 * directory under --writable-tmpfs).  Apptainer's unprivileged squashfuse
 * runs with -o uid=,gid= of the caller (image/driver/imagedriver.go); the
 * FUSE server does the same whenever the overlay takes writes.  With
 * --fakeroot the image's root is the caller and keeps its name. */
static bool squash_owners(const struct ns_run *l)
{
	const struct ns_config *c = l->c;
	bool rw_overlay = c->writable_tmpfs || l->wlayer >= 0;
	return rw_overlay && !c->fakeroot && l->cuid != 0;
}

static int serve_image(struct ns_run *l, struct sqf_image **img, struct sqf_server **srv,
                       struct sifu_err *err)
{
	if (l->kind == NS_ROOT_DIR)
		return 0;
	struct sqf_options o = l->c->sqf;
	if (l->kind != NS_ROOT_FUSE)
		o.block_cache_dir = -1; /* extracting reads every file once */
	if (l->kind == NS_ROOT_FUSE && squash_owners(l)) {
		o.owner_self = true;
		o.uid = l->cuid;
		o.gid = l->cgid;
	}
	int r = sqf_image_open(l->image_fd, l->offset, l->size, &o, img, err);
	if (r < 0)
		return sifu_err_wrap(err, "image %s", l->c->image);
	ns_phase(l, "image opened");
	if (l->kind == NS_ROOT_FUSE) {
		r = sqf_server_start(*img, l->fuse_fd, srv, err);
		if (r < 0)
			return sifu_err_wrap(err, "starting the FUSE server");
		ns_phase(l, "FUSE server started");
		return 0;
	}
	char p[NS_STAGE_MAX + 8];
	snprintf(p, sizeof(p), "%s/img", l->stage);
	if (mount("sifu-extract", p, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
		return sifu_err_sys(err, "mounting a tmpfs for the extracted image");
	_cleanup_close_ int dfd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return sifu_err_sys(err, "open %s", p);
	r = sqf_extract(*img, dfd, err);
	if (r < 0)
		return sifu_err_wrap(err, "extracting image %s", l->c->image);
	ns_phase(l, "image extracted");
	return 0;
}

/* Wait for the payload to exec (EOF: every copy of the write end was
 * O_CLOEXEC or closed) or to report why it could not.  The caller kills and
 * reaps a payload that failed. */
static int await_exec(struct sifu_childerr *ce, struct sifu_err *err)
{
	int r = sifu_childerr_recv(ce, err);
	if (r == 0)
		return 0;
	if (r < 0)
		return sifu_err_set(err, SIFU_E_SYS, EIO, "the payload failed while starting");
	return err->errnum ? -err->errnum : -EINVAL;
}

struct parent_fds {
	int go[2], sfd;
	struct sifu_childerr ce;
};

/* The supervisor's side, once the payload is forked: serve the image,
 * release the payload, wait for its exec, supervise, stop serving. */
static int serve_and_supervise(struct ns_run *l, struct parent_fds *f, pid_t child, int *status,
                               struct sifu_err *err)
{
	struct sqf_image *img = NULL;
	struct sqf_server *srv = NULL;
	int r = serve_image(l, &img, &srv, err);
	if (r == 0)
		r = ns_images_serve(l, squash_owners(l), err);
	if (r == 0 && write(f->go[1], "G", 1) != 1)
		r = sifu_err_sys(err, "releasing the payload");
	close_fd(&f->go[1]);
	if (r == 0)
		r = await_exec(&f->ce, err);
	if (r == 0) {
		ns_phase(l, "payload exec'd");
		r = supervise(child, f->sfd, err);
		if (r >= 0)
			*status = r;
	} else {
		sifu_proc_kill(child);
	}
	if (r >= 0)
		ns_phase(l, "payload exited");
	if (srv) {
		sqf_server_debug_stats(srv);
		sqf_server_stop(srv);
	}
	if (img)
		sqf_image_close(img);
	ns_images_stop(l);
	if (r >= 0)
		ns_phase(l, "FUSE server stopped");
	return r < 0 ? r : 0;
}

static int run_child(struct ns_run *l, struct parent_fds *f, int *status, struct sifu_err *err)
{
	struct child_ctx x = {l, f->go[0], &f->ce, getpid(), {f->go[1], f->sfd}};
	int r = ns_watch_open(l, err);
	if (r < 0)
		return r;
	fflush(NULL); /* what stdio holds would be written twice */
	pid_t child = fork();
	if (child == 0)
		child_main(&x);
	if (child < 0)
		return sifu_err_sys(err, "fork");
	close_fd(&f->go[0]);
	sifu_childerr_in_parent(&f->ce);
	r = ns_watch_start(l, child, err);
	if (r < 0) {
		sifu_proc_kill(child);
		return r;
	}
	return serve_and_supervise(l, f, child, status, err);
}

/* ------------------------------------------------ the phases of a launch -- */

/* One step of a phase; a phase runs its steps in order until one fails. */
typedef int ns_step(struct ns_run *l, struct sifu_err *err);

static int run_phase(struct ns_run *l, ns_step *const steps[], const char *done,
                     struct sifu_err *err)
{
	for (size_t i = 0; steps[i]; i++) {
		int r = steps[i](l, err);
		if (r < 0)
			return r;
	}
	ns_phase(l, done);
	return 0;
}

static int refuse_privileged(struct ns_run *l, struct sifu_err *err)
{
	(void)l;
	return ns_refuse_privileged(err);
}

/* The contents of each --env-file path in PATHS (NULL: none), in order;
 * an empty or unreadable-past-open file reads as "". */
static int read_env_files(char *const *paths, struct ns_strv *out, struct sifu_err *err)
{
	for (; paths && *paths; paths++) {
		FILE *f = fopen(*paths, "re");
		if (!f) {
			int e = errno;
			sifu_err_sys(err, "--env-file %s", *paths);
			sifu_err_hint(err, "give a readable file of NAME=VALUE lines");
			return -e;
		}
		char *text = NULL;
		size_t len = 0;
		ssize_t n = getdelim(&text, &len, '\0', f);
		fclose(f);
		if (n < 0) {
			free(text);
			text = sifu_xstrdup("");
		}
		ns_strv_push_take(out, text);
	}
	return 0;
}

static int build_env(struct ns_run *l, struct sifu_err *err)
{
	const struct ns_config *c = l->c;
	struct ns_strv envfiles = {0};
	int r = read_env_files(c->env_files, &envfiles, err);
	if (r < 0) {
		ns_strv_free(&envfiles);
		return r;
	}
	const char *cmdname[] = {"exec", "run", "shell", "test"};
	const char *base = strrchr(l->image_abs, '/');
	struct ns_env_spec es = {
	    .host = c->host_env,
	    .cleanenv = c->cleanenv,
	    .env_files = envfiles.v,
	    .env_file_names = c->env_files,
	    .env_opts = c->env_opts,
	    .home = l->home_dst,
	    .container = l->image_abs,
	    .name = base ? base + 1 : l->image_abs,
	    .command = cmdname[c->action],
	    .bind = c->bind_list,
	    .no_eval = c->no_eval,
	    .app = c->app,
	    .no_env = c->no_env,
	};
	r = ns_env_build(&es, &l->env, err);
	ns_strv_free(&envfiles);
	return r;
}

static int prepare(struct ns_run *l, struct sifu_err *err)
{
	static ns_step *const identify[] = {refuse_privileged, home_dst_init, ns_open_image, NULL};
	int r = run_phase(l, identify, "image identified", err);
	return r < 0 ? r : build_env(l, err);
}

static void run_free(struct ns_run *l)
{
	ns_watch_free(l);
	for (size_t i = 0; i < l->nhb; i++) {
		if (l->hb[i].fd >= 0)
			close(l->hb[i].fd);
		free(l->hb[i].dst);
	}
	free(l->hb);
	int *fds[] = {&l->image_fd, &l->dev_fd,     &l->proc_fd,
	              &l->sys_fd,   &l->workdir_fd, &l->fuse_fd};
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		close_fd(fds[i]);
	ns_images_free(l);
	SIFU_FREE_MANY(l->user, l->group, l->gecos, l->shell, l->host_home, l->home_dst, l->cwd,
	               l->image_abs);
	ns_env_free(&l->env);
}

static int no_new_privs(struct ns_run *l, struct sifu_err *err)
{
	(void)l;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return sifu_err_sys(err, "prctl(PR_SET_NO_NEW_PRIVS)");
	return 0;
}

/* The image through FUSE, or, where FUSE is refused (or --unsquash), an
 * extracted copy: never fatal. */
static void choose_fuse(struct ns_run *l)
{
	if (!fuse_wanted(l)) {
		if (l->kind == NS_ROOT_FUSE)
			l->kind = NS_ROOT_EXTRACT; /* --unsquash */
		return;
	}
	struct sifu_err ferr = {0};
	if (mount_fuse(l, &ferr) == 0) {
		ns_phase(l, "FUSE mounted");
		return;
	}
	char line[2 * SIFU_ERR_MSG_MAX];
	sifu_err_format(&ferr, line, sizeof(line));
	sifu_log(SIFU_LOG_WARN,
	         "%s (%s); extracting the image to a private temporary directory instead", line,
	         ferr.hint);
	l->kind = NS_ROOT_EXTRACT;
}

static int setup_ns(struct ns_run *l, struct sifu_err *err)
{
	static ns_step *const userns[] = {no_new_privs, enter_userns, NULL};
	static ns_step *const host[] = {open_host_objects, open_overlay, mount_stage, stage_dns,
	                                NULL};
	int r = run_phase(l, userns, "user namespace", err);
	if (r == 0)
		r = run_phase(l, host, "host objects, staging", err);
	if (r == 0)
		choose_fuse(l);
	if (r == 0)
		r = ns_images_mount(l, err);
	return r;
}

/* The supervisor's fds: a signalfd for the forwarded signals (blocked while
 * the payload runs), the "go" pipe, the payload's error channel. */
static int open_parent_fds(struct parent_fds *f, const sigset_t *set, struct sifu_err *err)
{
	f->sfd = signalfd(-1, set, SFD_CLOEXEC);
	if (f->sfd < 0 || pipe2(f->go, O_CLOEXEC) < 0 || sifu_childerr_open(&f->ce, NULL) < 0)
		return sifu_err_sys(err, "signalfd/pipe");
	return 0;
}

int ns_launch(const struct ns_config *c, int *status, struct sifu_err *err)
{
	struct ns_run l = {.c = c,
	                   .image_fd = -1,
	                   .fuse_fd = -1,
	                   .dev_fd = -1,
	                   .proc_fd = -1,
	                   .sys_fd = -1,
	                   .wlayer = -1,
	                   .workdir_fd = -1};
	l.t0 = l.tlast = sifu_now_ns();
	ns_who(&l);
	struct parent_fds f = {{-1, -1}, -1, {-1, -1}};
	int r = prepare(&l, err);
	if (r == 0)
		r = setup_ns(&l, err);
	sigset_t set, old;
	ns_signals_forwarded(&set);
	if (r == 0) {
		sigprocmask(SIG_BLOCK, &set, &old);
		r = open_parent_fds(&f, &set, err);
		if (r == 0)
			r = run_child(&l, &f, status, err);
		sigprocmask(SIG_SETMASK, &old, NULL);
	}
	close_fd(&f.go[0]);
	close_fd(&f.go[1]);
	sifu_childerr_close(&f.ce);
	close_fd(&f.sfd);
	run_free(&l);
	return r;
}
