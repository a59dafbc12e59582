/* SPDX-License-Identifier: BSD-3-Clause */
/* The container's mount tree, built by the payload child in the staging
 * tmpfs (<stage>):
 *
 *   <stage>/img    the image: the FUSE mount, an extracted copy, or the sandbox
 *   <stage>/root   overlayfs: lower = img, upper = a tmpfs (or --overlay DIR);
 *                  missing mount points are made in the upper layer, so the
 *                  image is never copied; then remounted read-only unless a
 *                  writable mode was asked for
 *   <stage>/etc    generated passwd and group
 *
 * Every bind goes from an O_PATH fd to an fd resolved inside the new root
 * (openat2 RESOLVE_IN_ROOT), never through a path string the container could
 * redirect with a symlink.  A read-only bind is read-only down to every
 * submount.  Once the tree is built, the payload's own user namespace locks
 * it (nest.c). */
#include "userns_priv.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <linux/openat2.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

struct tree {
	struct ns_run *l;
	int rootfd;
	bool root_writable; /* mount points can be created */
	size_t nbound;      /* the host binds (l->hb) mounted so far */
	char root[NS_STAGE_MAX + 8];
};

static void spath(const struct ns_run *l, const char *sub, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", l->stage, sub);
}

/* ------------------------------------------------------------ mounting -- */

/* The mount ID of the mount FD is on (fdinfo's mnt_id, Linux 3.15). */
static int fd_mnt_id(int fd)
{
	char p[64], buf[512];
	snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", fd);
	_cleanup_close_ int f = open(p, O_RDONLY | O_CLOEXEC);
	ssize_t n = f < 0 ? -1 : read(f, buf, sizeof(buf) - 1);
	if (n <= 0)
		return n < 0 ? -errno : -EIO;
	buf[n] = '\0';
	const char *m = strstr(buf, "mnt_id:");
	if (!m)
		return -EIO;
	char *e;
	long id = strtol(m + 7, &e, 10);
	return e == m + 7 || id < 0 || id > INT_MAX ? -EIO : (int)id;
}

static char *read_text(const char *path)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0;
	if (!f || getdelim(&buf, &len, '\0', f) < 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* A mount whose root another mount of the subtree covers (host /dev/shm
 * stacked on /dev/shm): no path reaches it, and in the payload's namespace
 * the mount above it is locked in place (ns_nest), so it stays hidden. */
static bool covered(const struct ns_mountinfo *m, const size_t *idx, size_t k, size_t i)
{
	for (size_t j = 0; j < k; j++)
		if (m[idx[j]].parent == m[idx[i]].id &&
		    !strcmp(m[idx[j]].mnt_point, m[idx[i]].mnt_point))
			return true;
	return false;
}

/* Remount one mount of the subtree read-only, reached by its path and
 * checked by its mount ID (a path alone could have been redirected).
 * MS_REMOUNT|MS_BIND sets every per-mount flag at once: the ones it has
 * are kept, since a user namespace may not drop a flag the kernel locked
 * (mount_namespaces(7), "locked mounts": EPERM). */
static int remount_one(const struct tree *t, const struct ns_mountinfo *e, int topfd,
                       struct sifu_err *err)
{
	const char *inside = e->mnt_point + strlen(t->root);
	_cleanup_close_ int fd = topfd >= 0 ? fcntl(topfd, F_DUPFD_CLOEXEC, 3)
	                                    : open(e->mnt_point, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return sifu_err_sys(err, "making %s read-only: open", *inside ? inside : "/");
	if (fd_mnt_id(fd) != e->id) {
		errno = EXDEV;
		return sifu_err_sys(err, "making %s read-only: the mount moved", inside);
	}
	const unsigned long keep = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME |
	                           MS_RELATIME | MS_STRICTATIME | NS_MS_NOSYMFOLLOW;
	char d[32];
	sifu_path_fd(fd, d);
	if (mount(NULL, d, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | (e->flags & keep), NULL) < 0)
		return sifu_err_sys(err, "making %s read-only", *inside ? inside : "/");
	return 0;
}

/* Without mount_setattr (Linux < 5.12) a remount changes one mount, so a
 * read-only bind of /dev would leave /dev/shm below it writable: every
 * mount at or below the bind (TOPFD) is found in mountinfo, by mount ID and
 * parent ID, and made read-only, as bubblewrap's bind_mount does. */
static int remount_ro_tree(const struct tree *t, const char *dst, int topfd, struct sifu_err *err)
{
	int top = fd_mnt_id(topfd);
	if (top < 0) {
		errno = -top;
		return sifu_err_sys(err, "reading the mount ID of a bind");
	}
	_cleanup_free_ char *text = read_text("/proc/self/mountinfo");
	if (!text)
		return sifu_err_sys(err, "reading /proc/self/mountinfo");
	struct ns_mountinfo *m = NULL;
	size_t n = 0;
	int r = ns_mountinfo_parse(text, &m, &n, err);
	if (r < 0)
		return r;
	_cleanup_free_ size_t *idx = sifu_xmalloc((n + 1) * sizeof(*idx));
	size_t k = ns_mountinfo_subtree(m, n, top, idx);
	if (k == 0)
		r = sifu_err_set(err, SIFU_E_SYS, ENOENT, "mount %d is not in mountinfo", top);
	sifu_debug("bind onto %s: no mount_setattr, remounting the %zu mounts at or below it "
	           "read-only one by one",
	           dst, k);
	for (size_t i = 0; r == 0 && i < k; i++)
		if (!covered(m, idx, k, i))
			r = remount_one(t, &m[idx[i]], i == 0 ? topfd : -1, err);
	ns_mountinfo_free(m, n);
	return r;
}

/* Classic binds (no open_tree, Linux < 5.2): mount(2) MS_BIND|MS_REC. */
/* The bind just attached at DST, reopened and made read-only mount by mount
 * (kernels without mount_setattr). */
static int remount_ro_at(const struct tree *t, const char *dst, struct sifu_err *err)
{
	_cleanup_close_ int top = sifu_path_open_in_root(t->rootfd, dst, O_PATH, 0);
	if (top < 0) {
		errno = -top;
		return sifu_err_sys(err, "reopening the bind");
	}
	return remount_ro_tree(t, dst, top, err);
}

static int bind_classic(int src, const struct tree *t, const char *dst, int dstfd, bool ro,
                        struct sifu_err *err)
{
	char s[32], d[32];
	sifu_path_fd(src, s);
	sifu_path_fd(dstfd, d);
	if (mount(s, d, NULL, MS_BIND | MS_REC, NULL) < 0)
		return sifu_err_sys(err, "bind mount");
	return ro ? remount_ro_at(t, dst, err) : 0;
}

static int bind_fd(int src, const struct tree *t, const char *dst, int dstfd, bool ro,
                   struct sifu_err *err)
{
	_cleanup_close_ int m =
	    open_tree(src, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
	if (m < 0 && errno == ENOSYS)
		return bind_classic(src, t, dst, dstfd, ro, err);
	if (m < 0)
		return sifu_err_sys(err, "open_tree");
	/* Linux 5.2-5.11: open_tree and move_mount, no mount_setattr */
	bool walk = false;
	if (ro) {
		struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY};
		if (mount_setattr(m, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof(a)) < 0) {
			if (errno != ENOSYS)
				return sifu_err_sys(err, "mount_setattr");
			walk = true;
		}
	}
	if (move_mount(m, "", dstfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return sifu_err_sys(err, "move_mount");
	return walk ? remount_ro_at(t, dst, err) : 0;
}

/* DST lies below a directory bound earlier (--bind, the home, /tmp,
 * /var/tmp, --scratch): a missing mount point is made there, in the bound
 * directory, even where the image itself takes none (--writable), as
 * Apptainer's session layout makes destinations below its overridden
 * directories (e2e CustomHomeBindWritableOK, WorkdirTmpBindWritable). */
static bool in_bound_dir(const struct tree *t, const char *dst)
{
	char d[PATH_MAX], b[PATH_MAX];
	if (sifu_path_normalize(dst, d, sizeof(d)) < 0)
		return false;
	for (size_t i = 0; i < t->nbound; i++) {
		const struct ns_hostbind *hb = &t->l->hb[i];
		if (!hb->dir || sifu_path_normalize(hb->dst, b, sizeof(b)) < 0)
			continue;
		size_t n = strlen(b);
		if (n > 1 && !strncmp(d, b, n) && d[n] == '/')
			return true;
	}
	return false;
}

/* An O_PATH fd on DST inside the root, created (as a directory or an empty
 * file) in the writable layer, or below a bound directory, when missing.
 * The walk stays inside the root whatever links the bound directory holds.
 * A symlink in the way of a file bind (/etc/resolv.conf -> ../run/…) is
 * replaced by a file. */
static int mount_point(const struct tree *t, const char *dst, bool dir)
{
	int fd = sifu_path_open_in_root(t->rootfd, dst, O_PATH, 0);
	struct stat st;
	if (fd >= 0) {
		if (fstat(fd, &st) < 0 || !!S_ISDIR(st.st_mode) != dir) {
			close(fd);
			return -ENOTDIR;
		}
		return fd;
	}
	if (fd != -ENOENT || !(t->root_writable || in_bound_dir(t, dst)))
		return fd;
	char parent[PATH_MAX];
	if (sifu_path_normalize(dst, parent, sizeof(parent)) < 0)
		return -EINVAL;
	char *slash = strrchr(parent, '/');
	const char *base = slash + 1;
	_cleanup_free_ char *b = sifu_xstrdup(base);
	slash[slash == parent ? 1 : 0] = '\0';
	_cleanup_close_ int pfd = sifu_path_mkdir_in_root(t->rootfd, parent, 0755);
	if (pfd < 0)
		return pfd;
	_cleanup_close_ int dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	int r;
	if (dir) {
		r = mkdirat(dfd, b, 0755);
	} else {
		r = openat(dfd, b, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (r < 0 && errno == EEXIST && unlinkat(dfd, b, 0) == 0)
			r = openat(dfd, b, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC,
			           0644);
		if (r >= 0)
			close(r);
	}
	if (r < 0 && errno != EEXIST)
		return -errno;
	return sifu_path_open_in_root(t->rootfd, dst, O_PATH, 0);
}

/* A bind that failed: an error for the user's own (--bind, --mount), a
 * note under --verbose for a default one.  ERR holds the cause when the
 * mount itself failed, nothing when R came from finding the mount point. */
static int mount_failed(const struct tree *t, bool user, const char *dst, int r,
                        struct sifu_err *err)
{
	(void)t;
	if (!user) {
		sifu_verbose("skipping the default mount %s: %s", dst, strerror(-r));
		sifu_err_clear(err);
		return 0;
	}
	if (err->depth) {
		sifu_err_wrap(err, "cannot bind onto %s in the container", dst);
	} else {
		errno = -r;
		sifu_err_sys(err, "cannot bind onto %s in the container", dst);
	}
	if (r == -ENOENT || r == -EROFS)
		sifu_err_hint(err, "create %s in the image (or drop --writable)", dst);
	else if (r == -ENOTDIR)
		sifu_err_hint(err, "a directory and a file cannot be bound onto each other");
	return r;
}

static int bind_host(const struct tree *t, const struct ns_hostbind *b, struct sifu_err *err)
{
	_cleanup_close_ int dfd = mount_point(t, b->dst, b->dir);
	if (dfd < 0)
		return mount_failed(t, b->user, b->dst, dfd, err);
	int r = bind_fd(b->fd, t, b->dst, dfd, b->ro, err);
	return r < 0 ? mount_failed(t, b->user, b->dst, r, err) : 0;
}

/* Mount a new file system of TYPE onto DST inside the root. */
static int mount_new(const struct tree *t, const char *dst, const char *type, unsigned long fl,
                     const char *opts)
{
	_cleanup_close_ int dfd = mount_point(t, dst, true);
	if (dfd < 0)
		return dfd;
	char d[32];
	sifu_path_fd(dfd, d);
	return mount(type, d, type, fl, opts) < 0 ? -errno : 0;
}

/* An empty directory for --contain's home, /tmp and /var/tmp, and for
 * --scratch: below --workdir when given, else a fresh tmpfs. */
static int mount_empty(const struct tree *t, const char *dst, const char *wsub,
                       struct sifu_err *err)
{
	const struct ns_run *l = t->l;
	int r;
	if (l->workdir_fd >= 0) {
		int wfd = sifu_path_mkdir_in_root(l->workdir_fd, wsub, 0700);
		if (wfd < 0)
			return mount_failed(t, true, dst, wfd, err);
		struct ns_hostbind b = {.fd = wfd, .dst = (char *)dst, .dir = true, .user = true};
		r = bind_host(t, &b, err);
		close(wfd);
		return r;
	}
	r = mount_new(t, dst, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	return r < 0 ? mount_failed(t, false, dst, r, err) : 0;
}

/* ---------------------------------------------------------- /proc /dev -- */

/* The host's /proc.  With --pid the payload's PID namespace does not exist
 * yet (ns_nest makes it, owned by the payload's user namespace): its first
 * process mounts the namespace's own /proc over this one. */
static int mount_proc(const struct tree *t, struct sifu_err *err)
{
	struct ns_run *l = t->l;
	if (l->proc_fd < 0)
		return 0;
	struct ns_hostbind b = {.fd = l->proc_fd, .dst = "/proc", .dir = true};
	_cleanup_close_ int dfd = mount_point(t, b.dst, true);
	int r = dfd < 0 ? dfd : bind_fd(b.fd, t, b.dst, dfd, false, err);
	if (r == 0)
		l->proc_bound = true;
	return r < 0 ? mount_failed(t, false, b.dst, r, err) : 0;
}

static int dev_node(const struct tree *t, int devfd, const char *name)
{
	char dst[64];
	snprintf(dst, sizeof(dst), "/dev/%s", name);
	_cleanup_close_ int src = openat(devfd, name, O_PATH | O_CLOEXEC);
	if (src < 0)
		return -errno;
	_cleanup_close_ int d = mount_point(t, dst, false);
	if (d < 0)
		return d;
	struct sifu_err err = {0};
	return bind_fd(src, t, dst, d, false, &err);
}

/* --contain: a minimal /dev (null zero full random urandom tty, a private
 * devpts, /dev/shm) instead of the host's. */
static int mount_dev_minimal(const struct tree *t, struct sifu_err *err)
{
	int r = mount_new(t, "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755");
	if (r < 0)
		return mount_failed(t, false, "/dev", r, err);
	static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
	/* The mount points go in the tmpfs just mounted, which is ours even
	 * where the root is not writable (-w keeps Apptainer's rule of no new
	 * mount points in the image itself). */
	_cleanup_close_ int dev =
	    sifu_path_open_in_root(t->rootfd, "/dev", O_RDONLY | O_DIRECTORY, 0);
	if (dev >= 0) {
		for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
			int f = openat(dev, nodes[i],
			               O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
			if (f >= 0)
				close(f);
		}
		mkdirat(dev, "pts", 0755);
		mkdirat(dev, "shm", 01777);
	}
	for (size_t i = 0; i < ARRAY_SIZE(nodes); i++)
		if ((r = dev_node(t, t->l->dev_fd, nodes[i])) < 0)
			sifu_verbose("no /dev/%s in the container: %s", nodes[i], strerror(-r));
	bool pts = !(t->l->c->no_mount & NS_NOMOUNT_DEVPTS);
	if (pts)
		mount_new(t, "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		          "newinstance,ptmxmode=0666,mode=0620");
	mount_new(t, "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	if (dev >= 0) {
		if (pts)
			symlinkat("pts/ptmx", dev, "ptmx");
		symlinkat("/proc/self/fd", dev, "fd");
		symlinkat("/proc/self/fd/0", dev, "stdin");
		symlinkat("/proc/self/fd/1", dev, "stdout");
		symlinkat("/proc/self/fd/2", dev, "stderr");
	}
	return 0;
}

static int mount_system(const struct tree *t, struct sifu_err *err)
{
	const struct ns_run *l = t->l;
	int r = mount_proc(t, err);
	if (r == 0 && l->sys_fd >= 0) {
		struct ns_hostbind b = {.fd = l->sys_fd, .dst = "/sys", .dir = true};
		r = bind_host(t, &b, err);
	}
	if (r == 0 && l->dev_fd >= 0) {
		if (l->c->contain) {
			r = mount_dev_minimal(t, err);
		} else {
			struct ns_hostbind b = {.fd = l->dev_fd, .dst = "/dev", .dir = true};
			r = bind_host(t, &b, err);
		}
	}
	return r;
}

/* ------------------------------------------------------- passwd, group -- */

static int write_stage_file(const struct ns_run *l, const char *name, const char *text, int *out,
                            struct sifu_err *err)
{
	char p[NS_STAGE_MAX + 32];
	spath(l, name, p, sizeof(p));
	int fd = open(p, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		return sifu_err_sys(err, "staging: create %s", p);
	size_t n = strlen(text);
	if (write(fd, text, n) != (ssize_t)n) {
		close(fd);
		return sifu_err_sys(err, "staging: write %s", p);
	}
	close(fd);
	*out = open(p, O_PATH | O_CLOEXEC);
	return *out < 0 ? sifu_err_sys(err, "staging: open %s", p) : 0;
}

/* Apptainer binds no passwd or group over a container that root (or
 * --fakeroot) may write (addIdentityMount: "container is writable running
 * as root"), so adduser and groupadd can replace them: over a bind, their
 * rename fails with EBUSY or EXDEV. */
static bool passwd_skipped(const struct ns_run *l)
{
	const struct ns_config *c = l->c;
	bool writable = c->writable || c->writable_tmpfs || l->wlayer >= 0;
	return (c->no_mount & NS_NOMOUNT_PASSWD) || (l->cuid == 0 && writable);
}

static int mount_passwd(const struct tree *t, struct sifu_err *err)
{
	const struct ns_run *l = t->l;
	if (passwd_skipped(l))
		return 0;
	_cleanup_free_ char *pw = NULL, *gr = NULL;
	int r = ns_read_image_file(t->rootfd, "/etc/passwd", NS_IMAGE_FILE_MAX, &pw, err);
	if (r < 0 ||
	    (r = ns_read_image_file(t->rootfd, "/etc/group", NS_IMAGE_FILE_MAX, &gr, err)) < 0)
		return r;
	_cleanup_free_ char *npw =
	    l->c->fakeroot
	        ? ns_passwd_edit(pw, "root", 0, 0, "root", l->home_dst, "/bin/sh")
	        : ns_passwd_edit(pw, l->user, l->cuid, l->cgid, l->gecos, l->home_dst, l->shell);
	_cleanup_free_ char *ngr = l->c->fakeroot ? ns_group_edit(gr, "root", 0, "root")
	                                          : ns_group_edit(gr, l->group, l->cgid, l->user);
	int fd = -1;
	r = write_stage_file(l, "etc/passwd", npw, &fd, err);
	if (r < 0)
		return r;
	struct ns_hostbind b = {.fd = fd, .dst = "/etc/passwd"};
	r = bind_host(t, &b, err);
	close(fd);
	if (r < 0 || (r = write_stage_file(l, "etc/group", ngr, &fd, err)) < 0)
		return r;
	b.fd = fd;
	b.dst = "/etc/group";
	r = bind_host(t, &b, err);
	close(fd);
	return r;
}

/* ------------------------------------------------------------ the root -- */

/* Mount points missing from the image are made in the overlay's upper
 * directory BEFORE overlayfs is mounted: through the overlay, a directory of
 * the image owned by an id outside the user namespace (root) refuses us.
 * The path is resolved in the image first, so a symlink in it (/var/run ->
 * /run) is followed as the container will follow it. */
static int upper_point(int lowerfd, const char *lowerpath, int upperfd, const char *dst, bool dir)
{
	_cleanup_close_ int e = sifu_path_open_in_root(lowerfd, dst, O_PATH, 0);
	if (e >= 0)
		return 0;
	char norm[PATH_MAX], prefix[PATH_MAX] = "/";
	if (sifu_path_normalize(dst, norm, sizeof(norm)) < 0)
		return -EINVAL;
	/* the longest prefix that exists in the image */
	const char *rest = norm + 1;
	for (;;) {
		const char *slash = strchr(rest, '/');
		if (!slash)
			break;
		char try[PATH_MAX];
		snprintf(try, sizeof(try), "%.*s", (int)(slash - norm), norm);
		_cleanup_close_ int pfd =
		    sifu_path_open_in_root(lowerfd, try, O_PATH | O_DIRECTORY, 0);
		if (pfd < 0)
			break;
		char link[32], real[PATH_MAX];
		sifu_path_fd(pfd, link);
		ssize_t n = readlink(link, real, sizeof(real) - 1);
		size_t ll = strlen(lowerpath);
		if (n < (ssize_t)ll || strncmp(real, lowerpath, ll) != 0)
			return -EXDEV;
		real[n] = '\0';
		snprintf(prefix, sizeof(prefix), "%s", real[ll] ? real + ll : "/");
		rest = slash + 1;
	}
	char full[PATH_MAX];
	snprintf(full, sizeof(full), "%s/%s", strcmp(prefix, "/") ? prefix : "", rest);
	char *base = strrchr(full, '/');
	*base++ = '\0';
	_cleanup_close_ int dfd = sifu_path_mkdir_in_root(upperfd, *full ? full : "/", 0755);
	if (dfd < 0)
		return dfd;
	_cleanup_close_ int d = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d < 0)
		return -errno;
	int r = dir ? mkdirat(d, base, 0755)
	            : openat(d, base, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (r < 0 && errno != EEXIST)
		return -errno;
	if (!dir && r >= 0)
		close(r);
	return 0;
}

static void upper_points(struct ns_run *l, const char *lower, const char *upper)
{
	_cleanup_close_ int lfd = open(lower, O_PATH | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int ufd = open(upper, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (lfd < 0 || ufd < 0)
		return;
	struct {
		const char *dst;
		bool dir, on;
	} sys[] = {{"/proc", true, l->proc_fd >= 0},
	           {"/sys", true, l->sys_fd >= 0},
	           {"/dev", true, l->dev_fd >= 0},
	           {"/etc/passwd", false, !passwd_skipped(l)},
	           {"/etc/group", false, !passwd_skipped(l)}};
	for (size_t i = 0; i < ARRAY_SIZE(sys); i++)
		if (sys[i].on && upper_point(lfd, lower, ufd, sys[i].dst, sys[i].dir) < 0)
			sifu_verbose("cannot make the mount point %s", sys[i].dst);
	for (size_t i = 0; i < l->nhb; i++)
		if (upper_point(lfd, lower, ufd, l->hb[i].dst, l->hb[i].dir) < 0)
			sifu_verbose("cannot make the mount point %s", l->hb[i].dst);
	for (size_t i = 0; i < l->nib; i++)
		if (upper_point(lfd, lower, ufd, l->ib[i].dst, true) < 0)
			sifu_verbose("cannot make the mount point %s", l->ib[i].dst);
}

/* A sandbox's directory owned by an id the user namespace does not map
 * (host root) cannot be copied up by overlayfs (ovl_copy_up_one refuses
 * with EOVERFLOW), so nothing can be created in it even where its mode lets
 * everyone write (Apptainer issue 5455: mkdir in a root-owned 0777
 * directory under --writable-tmpfs).  Such directories, and their parents,
 * are made in the upper layer before overlayfs is mounted, with the image's
 * modes: overlayfs then merges them and never copies them up.  The walk
 * stays on the sandbox's file system and follows no symlink. */
struct premerge {
	struct premerge *up;
	const char *name;
	mode_t mode;
	int ufd; /* the directory in the upper layer, -1 until made */
};

struct premerge_walk {
	uid_t ovuid;
	gid_t ovgid;
	dev_t dev;
};

static int premerge_upper(struct premerge *f)
{
	if (f->ufd >= 0)
		return f->ufd;
	int pfd = premerge_upper(f->up);
	if (pfd < 0)
		return pfd;
	bool made = mkdirat(pfd, f->name, 0700) == 0;
	if (!made && errno != EEXIST)
		return -errno;
	f->ufd = openat(pfd, f->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (f->ufd < 0)
		return -errno; /* a whiteout or a file of the overlay: leave it */
	if (made && fchmod(f->ufd, f->mode & 07777) < 0)
		return -errno;
	return f->ufd;
}

static unsigned read_overflow_id(const char *path)
{
	_cleanup_free_ char *t = read_text(path);
	char *e;
	unsigned long v = t ? strtoul(t, &e, 10) : 65534;
	return t && e != t ? (unsigned)v : 65534;
}

static void premerge_dir(const struct premerge_walk *w, struct premerge *f, int lfd, int depth)
{
	_cleanup_close_ int dup = fcntl(lfd, F_DUPFD_CLOEXEC, 3);
	DIR *d = dup < 0 ? NULL : fdopendir(dup);
	if (!d)
		return;
	TAKE_FD(dup);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN)
			continue;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		_cleanup_close_ int cfd =
		    openat(lfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		struct stat st;
		if (cfd < 0 || fstat(cfd, &st) < 0 || st.st_dev != w->dev)
			continue;
		struct premerge c = {.up = f, .name = e->d_name, .mode = st.st_mode, .ufd = -1};
		bool unmapped = st.st_uid == w->ovuid || st.st_gid == w->ovgid;
		if (unmapped && (st.st_mode & S_IWOTH) && premerge_upper(&c) < 0)
			sifu_verbose("cannot prepare %s for writes in the overlay", e->d_name);
		if (depth < 64)
			premerge_dir(w, &c, cfd, depth + 1);
		if (c.ufd >= 0)
			close(c.ufd);
	}
	closedir(d);
}

static void premerge_sandbox(const char *lower, const char *upper)
{
	_cleanup_close_ int lfd = open(lower, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int ufd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	if (lfd < 0 || ufd < 0 || fstat(lfd, &st) < 0)
		return;
	struct premerge_walk w = {.ovuid = read_overflow_id("/proc/sys/kernel/overflowuid"),
	                          .ovgid = read_overflow_id("/proc/sys/kernel/overflowgid"),
	                          .dev = st.st_dev};
	struct premerge root = {.name = "", .mode = st.st_mode, .ufd = ufd};
	premerge_dir(&w, &root, lfd, 0);
}

/* Layer I's directory in the staging tree: an image's FUSE mount, or the
 * directory bound at /l<I>. */
static int layer_dir(struct ns_run *l, size_t i, char *buf, size_t len, struct sifu_err *err)
{
	const struct ns_layer *ly = &l->layers[i];
	if (ly->img >= 0) {
		snprintf(buf, len, "%s%s", l->stage, l->imgs[ly->img].mnt);
		return 0;
	}
	snprintf(buf, len, "%s/l%zu", l->stage, i);
	char s[32];
	sifu_path_fd(ly->dir_fd, s);
	if ((mkdir(buf, 0755) < 0 && errno != EEXIST) ||
	    mount(s, buf, NULL, MS_BIND | MS_REC, NULL) < 0)
		return sifu_err_sys(err, "binding the overlay directory %s", ly->path);
	return 0;
}

/* The writable layer: --overlay DIR's DIR/upper and DIR/work, or a tmpfs of
 * the staging tree (the writes of --writable-tmpfs; the mount points a
 * read-only run needs). */
static int overlay_dirs(struct ns_run *l, char *upper, char *work, size_t len, struct sifu_err *err)
{
	if (l->wlayer < 0) {
		spath(l, "upper", upper, len);
		spath(l, "work", work, len);
		return 0;
	}
	char ov[NS_STAGE_MAX + 16];
	int r = layer_dir(l, (size_t)l->wlayer, ov, sizeof(ov), err);
	if (r < 0)
		return r;
	snprintf(upper, len, "%s/upper", ov);
	snprintf(work, len, "%s/work", ov);
	if ((mkdir(upper, 0755) < 0 && errno != EEXIST) ||
	    (mkdir(work, 0700) < 0 && errno != EEXIST))
		return sifu_err_sys(err, "--overlay: cannot create upper/ and work/ in %s",
		                    l->layers[l->wlayer].path);
	return 0;
}

/* lowerdir=, topmost first: the read-only layers, the last --overlay on
 * top (Apptainer's AddLowerDir prepends each in turn), then the image.  A
 * read-only directory or ext3 image is its upper/ when it has one (a former
 * writable overlay), else its root, as in Apptainer. */
static int lower_dirs(struct ns_run *l, const char *img, char **out, struct sifu_err *err)
{
	_cleanup_free_ char *low = sifu_xstrdup("");
	for (size_t i = l->nlayers; i-- > 0;) {
		if ((int)i == l->wlayer)
			continue;
		char d[NS_STAGE_MAX + 16], up[NS_STAGE_MAX + 32];
		int r = layer_dir(l, i, d, sizeof(d), err);
		if (r < 0)
			return r;
		struct stat st;
		snprintf(up, sizeof(up), "%s/upper", d);
		const struct ns_layer *ly = &l->layers[i];
		bool maybe_upper = ly->dir_fd >= 0 || l->imgs[ly->img].fs == NS_IMG_EXT3;
		bool has_upper = maybe_upper && stat(up, &st) == 0 && S_ISDIR(st.st_mode);
		char *n = sifu_xasprintf("%s%s:", low, has_upper ? up : d);
		free(low);
		low = n;
	}
	*out = sifu_xasprintf("%s%s", low, img);
	return 0;
}

static int mount_overlay(struct tree *t, struct sifu_err *err)
{
	struct ns_run *l = t->l;
	char img[NS_STAGE_MAX + 8], upper[NS_STAGE_MAX + 32], work[NS_STAGE_MAX + 32];
	spath(l, "img", img, sizeof(img));
	_cleanup_free_ char *lower = NULL;
	int r = overlay_dirs(l, upper, work, sizeof(upper), err);
	if (r == 0)
		r = lower_dirs(l, img, &lower, err);
	if (r < 0)
		return r;
	upper_points(l, img, upper);
	if (l->kind == NS_ROOT_DIR && (l->c->writable_tmpfs || l->wlayer >= 0))
		premerge_sandbox(img, upper);
	_cleanup_free_ char *opts =
	    sifu_xasprintf("lowerdir=%s,upperdir=%s,workdir=%s,userxattr", lower, upper, work);
	if (mount("overlay", t->root, "overlay", MS_NOSUID | MS_NODEV, opts) == 0)
		return 0;
	int e = errno;
	/* kernels without userxattr (< 5.11) also refuse overlayfs in a user
	 * namespace, so this is the last try */
	opts[strlen(opts) - strlen(",userxattr")] = '\0';
	if (mount("overlay", t->root, "overlay", MS_NOSUID | MS_NODEV, opts) == 0)
		return 0;
	errno = e;
	return -e;
}

static int mount_root(struct tree *t, struct sifu_err *err)
{
	struct ns_run *l = t->l;
	const struct ns_config *c = l->c;
	char img[NS_STAGE_MAX + 8], s[32];
	spath(l, "img", img, sizeof(img));
	spath(l, "root", t->root, sizeof(t->root));
	if (l->kind == NS_ROOT_DIR) {
		sifu_path_fd(l->image_fd, s);
		if (mount(s, img, NULL, MS_BIND | MS_REC, NULL) < 0)
			return sifu_err_sys(err, "binding the sandbox %s", c->image);
	}
	bool wants_rw = c->writable_tmpfs || l->wlayer >= 0;
	int r = -1;
	if (!c->writable || l->kind != NS_ROOT_DIR)
		r = mount_overlay(t, err);
	if (r == 0) {
		t->root_writable = true;
	} else if (r < 0 && (wants_rw || l->nlayers)) {
		errno = -r;
		sifu_err_sys(err,
		             "the kernel refused an overlay file system in the user namespace");
		sifu_err_hint(err,
		              "--writable-tmpfs and --overlay need Linux >= 5.11 with overlayfs");
		return -errno;
	} else {
		if (r < 0 && r != -1)
			sifu_verbose("no overlayfs (%s): mount points missing from the image are "
			             "skipped",
			             strerror(-r));
		if (mount(img, t->root, NULL, MS_BIND | MS_REC, NULL) < 0)
			return sifu_err_sys(err, "binding the image root");
		t->root_writable = false; /* as Apptainer: no new mount points in -w */
	}
	t->rootfd = open(t->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return t->rootfd < 0 ? sifu_err_sys(err, "open %s", t->root) : 0;
}

static int finish_root(struct tree *t, struct sifu_err *err)
{
	const struct ns_config *c = t->l->c;
	bool rw = c->writable || c->writable_tmpfs || t->l->wlayer >= 0;
	if (!rw && mount(NULL, t->root, NULL,
	                 MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
		return sifu_err_sys(err, "making the image read-only");
	if (chdir(t->root) < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
		return sifu_err_sys(err, "pivot_root into the container");
	if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		return sifu_err_sys(err, "detaching the host's root");
	return 0;
}

/* ------------------------------------------------------- uts, network -- */

int ns_setup_net_uts(const struct ns_config *c, struct sifu_err *err)
{
	if (c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0)
		return sifu_err_sys(err, "--hostname %s", c->hostname);
	if (!c->net)
		return 0;
	_cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return sifu_err_sys(err, "--net: loopback");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		return sifu_err_sys(err, "--net: bringing up loopback");
	return 0;
}

/* With --writable there is no layer to make mount points in (as in
 * Apptainer), so a home directory the image lacks is staged as Apptainer
 * stages it without a layer (addHomeNoLayer): a tmpfs over the home's top
 * directory (/home) holding only the home directory, which the home bind
 * then finds.  Done before any bind, so none ends up below the tmpfs. */
static int stage_home(const struct tree *t, struct sifu_err *err)
{
	const struct ns_run *l = t->l;
	const char *home = l->home_dst;
	char top[PATH_MAX];
	bool bound = false;
	for (size_t i = 0; i < l->nhb; i++)
		bound |= !strcmp(l->hb[i].dst, home);
	if (!bound || t->root_writable || sifu_path_normalize(home, top, sizeof(top)) < 0)
		return 0;
	_cleanup_close_ int have = sifu_path_open_in_root(t->rootfd, home, O_PATH, 0);
	char *slash = strchr(top + 1, '/');
	if (have >= 0 || have != -ENOENT || !slash)
		return 0;
	*slash = '\0';
	int r = mount_new(t, top, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	if (r < 0)
		return mount_failed(t, false, top, r, err);
	_cleanup_close_ int hfd = sifu_path_mkdir_in_root(t->rootfd, home, 0755);
	if (hfd < 0)
		return mount_failed(t, false, home, hfd, err);
	sifu_verbose("--writable: %s is missing from the image, staged in a tmpfs over %s", home,
	             top);
	return 0;
}

/* image-src inside the image's mount, never outside it: resolved beneath
 * its root, so "..", an absolute symlink or one that climbs out fails
 * (EXDEV) rather than being followed or silently clamped. */
static int open_image_src(const char *mnt, const char *src)
{
	_cleanup_close_ int root = open(mnt, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return -errno;
	while (*src == '/')
		src++;
	struct open_how how = {.flags = O_PATH | O_CLOEXEC,
	                       .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
	long fd = syscall(SYS_openat2, root, *src ? src : ".", &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS) {
		/* Linux < 5.6: a textual ".." refused, symlinks kept inside */
		char norm[PATH_MAX];
		if (strstr(src, "..") || sifu_path_normalize(src, norm, sizeof(norm)) < 0)
			return -EXDEV;
		return sifu_path_open_in_root(root, src, O_PATH, 0);
	}
	return fd < 0 ? -errno : (int)fd;
}

static int bind_image(const struct tree *t, const struct ns_imgbind *ib, struct sifu_err *err)
{
	const struct ns_img *im = &t->l->imgs[ib->img];
	_cleanup_close_ int fd = open_image_src(im->mnt, ib->src);
	if (fd == -ENOENT || fd == -ENOTDIR) {
		sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT, "%s doesn't exist in image %s", ib->src,
		             im->path);
		sifu_err_hint(err, "image-src= names a path inside the image");
		return -ENOENT;
	}
	if (fd == -EXDEV || fd == -ELOOP) {
		sifu_err_set(err, SIFU_E_DENIED, EXDEV, "image-src %s leads out of image %s",
		             ib->src, im->path);
		sifu_err_hint(err, "name a path inside the image, without '..' or a symlink that "
		                   "leaves it");
		return -EXDEV;
	}
	if (fd < 0) {
		errno = -fd;
		return sifu_err_sys(err, "image-src %s in %s", ib->src, im->path);
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sifu_err_sys(err, "image-src %s in %s", ib->src, im->path);
	struct ns_hostbind b = {.fd = fd,
	                        .dst = ib->dst,
	                        .ro = !im->writable,
	                        .dir = S_ISDIR(st.st_mode),
	                        .user = true};
	return bind_host(t, &b, err);
}

/* The image's /var/tmp leads to the same directory as its /tmp (a symlink
 * ../tmp): Apptainer binds /tmp only (addTmpMount, e2e issue1097), else the
 * host's /var/tmp would show over the container's /tmp.  Both resolved
 * inside the root, after /tmp is mounted. */
static bool var_tmp_is_tmp(const struct tree *t)
{
	_cleanup_close_ int a = sifu_path_open_in_root(t->rootfd, "/tmp", O_PATH, 0);
	_cleanup_close_ int b = sifu_path_open_in_root(t->rootfd, "/var/tmp", O_PATH, 0);
	struct stat sa, sb;
	return a >= 0 && b >= 0 && fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int mount_binds(struct tree *t, struct sifu_err *err)
{
	const struct ns_run *l = t->l;
	static const struct {
		const char *dst, *wsub;
	} empties[] = {{"/tmp", "tmp"}, {"/var/tmp", "var_tmp"}};
	int hr = stage_home(t, err);
	if (hr < 0)
		return hr;
	for (size_t i = 0; i < l->nhb; i++) {
		const struct ns_hostbind *b = &l->hb[i];
		int r = 0;
		t->nbound = i;
		if (!b->user && !strcmp(b->dst, "/var/tmp") && var_tmp_is_tmp(t)) {
			sifu_verbose("/var/tmp is /tmp in the image: not mounting /var/tmp");
		} else if (b->fd >= 0) {
			r = bind_host(t, b, err);
		} else {
			const char *wsub = "home";
			for (size_t j = 0; j < ARRAY_SIZE(empties); j++)
				if (!strcmp(b->dst, empties[j].dst))
					wsub = empties[j].wsub;
			/* Apptainer's layout: WORKDIR/scratch/DIR for --scratch DIR */
			_cleanup_free_ char *sub =
			    b->scratch ? sifu_xasprintf("scratch%s", b->dst) : NULL;
			r = mount_empty(t, b->dst, sub ? sub : wsub, err);
		}
		if (r < 0)
			return r;
	}
	t->nbound = l->nhb;
	/* after the directory binds, as Apptainer (its e2e
	 * SquashfsBeforeScratch): an image bound below a bound directory
	 * stays visible whatever the order given */
	for (size_t i = 0; i < l->nib; i++) {
		int r = bind_image(t, &l->ib[i], err);
		if (r < 0)
			return r;
	}
	return 0;
}

int ns_tree_build(struct ns_run *l, struct sifu_err *err)
{
	struct tree t = {.l = l, .rootfd = -1};
	int r = mount_root(&t, err);
	if (r == 0) {
		ns_phase(l, "root mounted");
		r = mount_system(&t, err);
	}
	if (r == 0)
		r = mount_passwd(&t, err);
	if (r == 0)
		r = mount_binds(&t, err);
	if (r == 0) {
		ns_phase(l, "binds");
		r = finish_root(&t, err);
	}
	if (t.rootfd >= 0)
		close(t.rootfd);
	if (r == 0)
		ns_phase(l, "pivot_root");
	return r;
}
