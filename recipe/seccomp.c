/* SPDX-License-Identifier: BSD-3-Clause */
/* recipe/: the seccomp fake root for %post.
 *
 * %post runs as uid 0 of a user namespace that maps only the caller's own
 * id.  Package managers then fail on calls such a namespace cannot do:
 * chown to another id (EINVAL: unmapped), setgroups (EPERM: denied before
 * the gid map), setuid/setgid to an unmapped id, mknod of a device (EPERM).
 * The filter answers those with success and does nothing, the way
 * Charliecloud's seccomp mode does; the files stay owned by the build's root.
 * mknod of a FIFO or socket still reaches the kernel and works.
 *
 * Where the kernel has seccomp user notification (5.0+), the chown family
 * goes to a listener in the build process instead: it resolves the file the
 * call names the way the caller's kernel would (its root, cwd and fds under
 * /proc/PID), records the owner asked for by device and inode, and answers
 * success.  The SquashFS writer then stores those owners (`unsquashfs -lln`
 * shows them); inside the build the files stay the build root's.
 *
 * With subordinate ids (--userns-subid) the namespace maps a whole range:
 * chown, setuid and setgroups are real there, and only mknod of devices,
 * which no user namespace may make, is still answered with success. */
#include "recipe_priv.h"
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/uio.h>

#if HAVE_SECCOMP
#include <seccomp.h>

static const char *const chowns[] = {"chown",   "fchown",   "lchown",  "fchownat",
                                     "chown32", "fchown32", "lchown32"};
static const char *const faked[] = {
    "setuid",     "setgid",      "setreuid",    "setregid",   "setresuid",  "setresgid",
    "setfsuid",   "setfsgid",    "setgroups",   "setuid32",   "setgid32",   "setreuid32",
    "setregid32", "setresuid32", "setresgid32", "setfsuid32", "setfsgid32", "setgroups32",
};

static int add_all(scmp_filter_ctx ctx, const char *const *names, size_t n, uint32_t action)
{
	for (size_t i = 0; i < n; i++) {
		int nr = seccomp_syscall_resolve_name(names[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		int r = seccomp_rule_add(ctx, action, nr, 0);
		if (r < 0)
			return r;
	}
	return 0;
}

static int build_filter(scmp_filter_ctx ctx, bool notify, bool devices_only)
{
	int r = devices_only ? 0 : add_all(ctx, faked, ARRAY_SIZE(faked), SCMP_ACT_ERRNO(0));
	if (r == 0 && !devices_only)
		r = add_all(ctx, chowns, ARRAY_SIZE(chowns),
		            notify ? SCMP_ACT_NOTIFY : SCMP_ACT_ERRNO(0));
	/* mknod(path, mode, dev) / mknodat(dirfd, path, mode, dev): devices only */
	static const struct {
		const char *name;
		unsigned modearg;
	} mk[] = {{"mknod", 1}, {"mknodat", 2}};
	for (size_t i = 0; i < ARRAY_SIZE(mk) && r == 0; i++) {
		int nr = seccomp_syscall_resolve_name(mk[i].name);
		if (nr == __NR_SCMP_ERROR)
			continue;
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(0), nr, 1,
		                     SCMP_CMP(mk[i].modearg, SCMP_CMP_MASKED_EQ, S_IFMT, S_IFCHR));
		if (r == 0)
			r = seccomp_rule_add(
			    ctx, SCMP_ACT_ERRNO(0), nr, 1,
			    SCMP_CMP(mk[i].modearg, SCMP_CMP_MASKED_EQ, S_IFMT, S_IFBLK));
	}
	return r;
}

int bld_seccomp_fakeroot(int *notify, bool devices_only, struct sifu_err *err)
{
	if (notify)
		*notify = -1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return sifu_err_sys(err, "seccomp: PR_SET_NO_NEW_PRIVS");
	int r = -1;
	if (notify && !devices_only && seccomp_api_get() >= 5) {
		scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
		if (!ctx)
			return sifu_err_set(err, SIFU_E_SYS, ENOMEM,
			                    "seccomp: cannot start a filter");
		r = build_filter(ctx, true, false);
		if (r == 0)
			r = seccomp_load(ctx);
		if (r == 0) {
			int fd = seccomp_notify_fd(ctx);
			*notify = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : -1;
		}
		seccomp_release(ctx);
		if (r == 0)
			return 0;
		sifu_debug("seccomp: no user notification (%s); chowns are not recorded",
		           strerror(-r));
	}
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return sifu_err_set(err, SIFU_E_SYS, ENOMEM, "seccomp: cannot start a filter");
	r = build_filter(ctx, false, devices_only);
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	if (r < 0)
		return sifu_err_set(err, SIFU_E_SYS, -r,
		                    "seccomp: cannot install the fake-root filter");
	return 0;
}

/* ------------------------------------------------------ the listener -- */

struct bld_owner_server {
	int fd;
	int stop[2];
	struct bld_owners *o;
	pthread_t thread;
};

static void record(struct bld_owners *o, const struct stat *st, uint32_t uid, uint32_t gid)
{
	struct bld_owner *e = NULL;
	for (size_t i = 0; i < o->n; i++)
		if (o->v[i].dev == st->st_dev && o->v[i].ino == st->st_ino)
			e = &o->v[i];
	if (!e) {
		/* root is what an unrecorded file gets anyway: dpkg chowns every
		 * file it unpacks to 0:0, and those need no entry */
		if ((uid == 0 || uid == UINT32_MAX) && (gid == 0 || gid == UINT32_MAX))
			return;
		if (o->n == o->cap) {
			o->cap = o->cap ? 2 * o->cap : 64;
			o->v = sifu_xrealloc(o->v, o->cap * sizeof(*o->v));
		}
		e = &o->v[o->n++];
		*e = (struct bld_owner){st->st_dev, st->st_ino, UINT32_MAX, UINT32_MAX};
	}
	if (uid != UINT32_MAX)
		e->uid = uid;
	if (gid != UINT32_MAX)
		e->gid = gid;
}

/* The string at ADDR in process PID (at most PATH_MAX). */
static bool read_path(pid_t pid, uint64_t addr, char *buf, size_t len)
{
	struct iovec local = {buf, len - 1};
	struct iovec remote = {(void *)(uintptr_t)addr, len - 1};
	ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (n <= 0) {
		/* the string may end before a page it cannot read: go byte-wise
		 * through /proc/PID/mem */
		char mem[64];
		snprintf(mem, sizeof(mem), "/proc/%d/mem", (int)pid);
		_cleanup_close_ int fd = open(mem, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return false;
		n = pread(fd, buf, len - 1, (off_t)addr);
		if (n <= 0)
			return false;
	}
	buf[n] = 0;
	return memchr(buf, 0, (size_t)n + 1) != NULL;
}

/* Find the inode a chown-family call names, from the caller's view. */
static bool target_of(const struct seccomp_notif *req, struct stat *st)
{
	pid_t pid = (pid_t)req->pid;
	/* libseccomp returns a copy the caller frees */
	_cleanup_free_ char *name = seccomp_syscall_resolve_num_arch(req->data.arch, req->data.nr);
	if (!name)
		return false;
	char proc[96];
	if (!strncmp(name, "fchown", 6) && strcmp(name, "fchownat")) {
		snprintf(proc, sizeof(proc), "/proc/%d/fd/%d", (int)pid, (int)req->data.args[0]);
		return stat(proc, st) == 0;
	}
	bool at = !strcmp(name, "fchownat");
	uint64_t paddr = at ? req->data.args[1] : req->data.args[0];
	int flags = at ? (int)req->data.args[4] : 0;
	bool nofollow = !strncmp(name, "lchown", 6) || (flags & AT_SYMLINK_NOFOLLOW);
	char path[PATH_MAX];
	if (!read_path(pid, paddr, path, sizeof(path)))
		return false;
	if (at && !path[0] && (flags & AT_EMPTY_PATH)) {
		snprintf(proc, sizeof(proc), "/proc/%d/fd/%d", (int)pid, (int)req->data.args[0]);
		return stat(proc, st) == 0;
	}
	int oflags = O_PATH | (nofollow ? O_NOFOLLOW : 0);
	_cleanup_close_ int fd = -1;
	if (path[0] == '/') {
		snprintf(proc, sizeof(proc), "/proc/%d/root", (int)pid);
		_cleanup_close_ int root = open(proc, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (root < 0)
			return false;
		fd = sifu_path_open_in_root(root, path, oflags, 0);
	} else {
		int dirfd = at ? (int)req->data.args[0] : AT_FDCWD;
		if (dirfd == AT_FDCWD)
			snprintf(proc, sizeof(proc), "/proc/%d/cwd", (int)pid);
		else
			snprintf(proc, sizeof(proc), "/proc/%d/fd/%d", (int)pid, dirfd);
		_cleanup_close_ int dfd = open(proc, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return false;
		fd = openat(dfd, path, oflags | O_CLOEXEC);
	}
	if (fd < 0)
		return false;
	return fstat(fd, st) == 0;
}

static void handle(struct bld_owner_server *s, struct seccomp_notif *req,
                   struct seccomp_notif_resp *resp)
{
	_cleanup_free_ char *name = seccomp_syscall_resolve_num_arch(req->data.arch, req->data.nr);
	bool at = name && !strcmp(name, "fchownat");
	uint32_t uid = (uint32_t)(at ? req->data.args[2] : req->data.args[1]);
	uint32_t gid = (uint32_t)(at ? req->data.args[3] : req->data.args[2]);
	struct stat st;
	resp->id = req->id;
	resp->flags = 0;
	resp->val = 0;
	resp->error = 0;
	if (target_of(req, &st) && seccomp_notify_id_valid(s->fd, req->id) == 0)
		record(s->o, &st, uid, gid);
	else
		resp->error = -ENOENT; /* what chown says of a file that is not there */
	if (seccomp_notify_respond(s->fd, resp) < 0)
		sifu_debug("seccomp: a chown went away before its answer");
}

static void *serve(void *arg)
{
	struct bld_owner_server *s = arg;
	struct seccomp_notif *req = NULL;
	struct seccomp_notif_resp *resp = NULL;
	if (seccomp_notify_alloc(&req, &resp) < 0)
		return NULL;
	for (;;) {
		struct pollfd p[2] = {{s->fd, POLLIN, 0}, {s->stop[0], POLLIN, 0}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents & POLLIN) {
			memset(req, 0, sizeof(*req));
			if (seccomp_notify_receive(s->fd, req) == 0)
				handle(s, req, resp);
			continue;
		}
		if (p[1].revents || (p[0].revents & (POLLHUP | POLLERR)))
			break;
	}
	seccomp_notify_free(req, resp);
	return NULL;
}

int bld_owners_serve(int fd, struct bld_owners *o, struct bld_owner_server **out,
                     struct sifu_err *err)
{
	struct bld_owner_server *s = sifu_xcalloc(1, sizeof(*s));
	s->fd = fd;
	s->o = o;
	if (pipe2(s->stop, O_CLOEXEC) < 0) {
		free(s);
		close(fd);
		return sifu_err_sys(err, "pipe");
	}
	int r = pthread_create(&s->thread, NULL, serve, s);
	if (r != 0) {
		close(s->stop[0]);
		close(s->stop[1]);
		close(fd);
		free(s);
		return sifu_err_set(err, SIFU_E_SYS, r, "starting the seccomp listener");
	}
	*out = s;
	return 0;
}

void bld_owners_stop(struct bld_owner_server *s)
{
	if (!s)
		return;
	ssize_t w = write(s->stop[1], "x", 1);
	(void)w;
	pthread_join(s->thread, NULL);
	close(s->stop[0]);
	close(s->stop[1]);
	close(s->fd);
	free(s);
}
#else
struct bld_owner_server {
	int unused;
};
int bld_owners_serve(int fd, struct bld_owners *o, struct bld_owner_server **out,
                     struct sifu_err *err)
{
	(void)o;
	(void)err;
	close(fd);
	*out = NULL;
	return 0;
}
void bld_owners_stop(struct bld_owner_server *s)
{
	(void)s;
}
int bld_seccomp_fakeroot(int *notify, bool devices_only, struct sifu_err *err)
{
	(void)devices_only;
	if (notify)
		*notify = -1;
	sifu_log(SIFU_LOG_WARN, "this sifu was built without libseccomp: chown to other ids "
	                        "and setgroups fail in %%post");
	(void)err;
	return 0;
}
#endif

void bld_owners_lookup(const struct bld_owners *o, dev_t dev, ino_t ino, uint32_t *uid,
                       uint32_t *gid)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->n; i++)
		if (o->v[i].dev == dev && o->v[i].ino == ino) {
			if (o->v[i].uid != UINT32_MAX)
				*uid = o->v[i].uid;
			if (o->v[i].gid != UINT32_MAX)
				*gid = o->v[i].gid;
			return;
		}
}

void bld_owners_free(struct bld_owners *o)
{
	free(o->v);
	*o = (struct bld_owners){0};
}
