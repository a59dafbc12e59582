/* SPDX-License-Identifier: BSD-3-Clause */
/* Before any namespace: who runs sifu, what the image is, and the refusal to
 * run with privileges sifu must not have. */
#include "userns_priv.h"
#include "sif.h"

#include <fcntl.h>
#include <inttypes.h>
#include <grp.h>
#include <pwd.h>
#include <sys/auxv.h>
#include <sys/stat.h>

/* ------------------------------------------------------------- who am I -- */

void ns_who(struct ns_run *l)
{
	const struct ns_config *c = l->c;
	l->uid = getuid();
	l->gid = getgid();
	l->cuid = c->target_uid_set ? c->target_uid : c->fakeroot ? 0 : l->uid;
	l->cgid = c->target_gid_set ? c->target_gid : c->fakeroot ? 0 : l->gid;
	struct passwd *pw = getpwuid(l->uid);
	/* the passwd entry first; the environment only where there is none */
	const char *h = c->home;
	l->user = sifu_xstrdup(pw ? pw->pw_name : c->user ? c->user : "sifu");
	l->gecos = sifu_xstrdup(pw && pw->pw_gecos ? pw->pw_gecos : "");
	l->shell = sifu_xstrdup(pw && pw->pw_shell && *pw->pw_shell ? pw->pw_shell : "/bin/sh");
	l->host_home = sifu_xstrdup(pw && pw->pw_dir ? pw->pw_dir : h ? h : "/");
	struct group *gr = getgrgid(l->gid);
	l->group = sifu_xstrdup(gr ? gr->gr_name : l->user);
	char buf[4096];
	l->cwd = sifu_xstrdup(getcwd(buf, sizeof(buf)) ? buf : "/");
}

/* ------------------------------------------------------------ the image -- */

static bool is_squashfs(int fd)
{
	char m[4];
	return pread(fd, m, 4, 0) == 4 && !memcmp(m, "hsqs", 4);
}

static int check_squash(const char *p, uint32_t fstype, struct sifu_err *err)
{
	if (fstype == SIF_FS_SQUASH)
		return 0;
	sifu_err_set(err, SIFU_E_UNSUPPORTED, ENOTSUP,
	             "image %s: the root file system is not SquashFS (type %u)", p, fstype);
	sifu_err_hint(err, "sifu runs SquashFS SIF images; rebuild it with 'sifu build'");
	return -ENOTSUP;
}

/* The verified image: the caller's open file description, never the path
 * (which may name another file by now). */
static int use_opened(struct ns_run *l, struct sifu_err *err)
{
	const struct ns_image_fd *o = l->c->opened;
	l->image_fd = fcntl(o->fd, F_DUPFD_CLOEXEC, 3);
	if (l->image_fd < 0)
		return sifu_err_sys(err, "image %s", l->c->image);
	char rp[4096];
	l->image_abs = sifu_xstrdup(realpath(l->c->image, rp) ? rp : l->c->image);
	l->kind = NS_ROOT_FUSE;
	l->offset = o->offset;
	l->size = o->size;
	return check_squash(l->c->image, o->fstype, err);
}

/* A directory is a sandbox when it looks like a root file system: without
 * any of these, running in it fails later with a missing /bin/sh or command
 * that points away from the real mistake (a wrong path, a data directory). */
static int check_sandbox(int dirfd, const char *p, struct sifu_err *err)
{
	static const char *const marks[] = {".singularity.d", "bin", "usr", "sbin", "lib"};
	struct stat st;
	for (size_t i = 0; i < ARRAY_SIZE(marks); i++)
		if (fstatat(dirfd, marks[i], &st, AT_SYMLINK_NOFOLLOW) == 0)
			return 0;
	sifu_err_set(err, SIFU_E_UNSUPPORTED, ENOENT,
	             "%s is not a container image: a directory with no /.singularity.d, /bin or "
	             "/usr",
	             p);
	sifu_err_hint(
	    err, "give a sandbox directory made by 'sifu build --sandbox', a .sif or a .sqfs file");
	return -ENOENT;
}

int ns_open_image(struct ns_run *l, struct sifu_err *err)
{
	const char *p = l->c->image;
	if (l->c->opened)
		return use_opened(l, err);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == EISDIR)
		fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		sifu_err_sys(err, "cannot open image %s", p);
		if (errno == ENOENT)
			sifu_err_hint(err,
			              "check the path; 'sifu pull' makes a SIF from a registry");
		return -errno;
	}
	l->image_fd = fd;
	char rp[4096];
	l->image_abs = sifu_xstrdup(realpath(p, rp) ? rp : p);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sifu_err_sys(err, "stat %s", p);
	if (S_ISDIR(st.st_mode)) {
		l->kind = NS_ROOT_DIR;
		return check_sandbox(fd, p, err);
	}
	l->kind = NS_ROOT_FUSE;
	if (is_squashfs(fd)) {
		l->offset = 0;
		l->size = (uint64_t)st.st_size;
		return 0;
	}
	if (sif_fd_is_sif(fd)) {
		struct sif_rootfs_loc loc;
		if (sif_find_rootfs(fd, &loc, err) < 0)
			return sifu_err_wrap(err, "image %s", p);
		if (check_squash(p, loc.fstype, err) < 0)
			return -ENOTSUP;
		l->offset = loc.offset;
		l->size = loc.size;
		return 0;
	}
	sifu_err_set(err, SIFU_E_UNSUPPORTED, EINVAL,
	             "%s is not a SIF, a SquashFS image or a directory", p);
	sifu_err_hint(err, "give a .sif or .sqfs file, or a sandbox directory");
	return -EINVAL;
}

/* ------------------------------------------ small files of the image -- */

static const char *kind_name(mode_t m)
{
	return S_ISFIFO(m)   ? "a FIFO"
	       : S_ISDIR(m)  ? "a directory"
	       : S_ISCHR(m)  ? "a character device"
	       : S_ISBLK(m)  ? "a block device"
	       : S_ISSOCK(m) ? "a socket"
	                     : "of an unknown kind";
}

static int refuse(const char *path, const char *what, size_t max, struct sifu_err *err)
{
	sifu_err_set(err, SIFU_E_UNSUPPORTED, EINVAL, "the image's %s is %s", path, what);
	sifu_err_hint(err,
	              "make it a regular file of at most %zu KiB in the image, or run with "
	              "--no-mount passwd",
	              max >> 10);
	return -EINVAL;
}

/* Why so careful with two text files: the image is the user's input, often
 * someone else's.  Opening a FIFO blocks until a writer comes (never), a
 * device or /proc file streams without end, and a sparse 2 GiB file costs
 * gigabytes of memory before anything fails.  So: opened without blocking
 * and resolved inside the root (symlinks stay in the image), only a regular
 * file, only up to MAX bytes whatever its size claims. */
int ns_read_image_file(int rootfd, const char *path, size_t max, char **out, struct sifu_err *err)
{
	*out = NULL;
	_cleanup_close_ int fd =
	    sifu_path_open_in_root(rootfd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
	if (fd == -ENOENT || fd == -ENOTDIR || fd == -EACCES || fd == -EPERM) {
		/* none (or none for us): the generated file holds our entry */
		sifu_debug("image %s: %s; writing one of our own", path, strerror(-fd));
		return 0;
	}
	if (fd < 0)
		return refuse(path, strerror(-fd), max, err);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sifu_err_sys(err, "the image's %s", path);
	char what[64];
	if (!S_ISREG(st.st_mode)) {
		snprintf(what, sizeof(what), "%s, not a regular file", kind_name(st.st_mode));
		return refuse(path, what, max, err);
	}
	snprintf(what, sizeof(what), "larger than %zu KiB (%" PRIu64 " bytes)", max >> 10,
	         (uint64_t)st.st_size);
	if ((uint64_t)st.st_size > max)
		return refuse(path, what, max, err);
	size_t cap = (size_t)st.st_size + 1, len = 0;
	_cleanup_free_ char *buf = sifu_xmalloc(cap + 1);
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sifu_err_sys(err, "reading the image's %s", path);
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max)
			return refuse(path, "longer than its size says, and too long", max, err);
		if (len == cap) {
			/* grew while we read (or a size that lies): read on, bounded */
			cap = cap * 2 < max + 1 ? cap * 2 : max + 1;
			buf = sifu_xrealloc(buf, cap + 1);
		}
	}
	buf[len] = '\0';
	*out = TAKE_PTR(buf);
	return 0;
}

/* ------------------------------------------------ refusals and the kernel -- */

int ns_refuse_privileged(struct sifu_err *err)
{
	/* AT_SECURE: set-user-ID, set-group-ID or file capabilities */
	if (getauxval(AT_SECURE) || geteuid() != getuid() || getegid() != getgid()) {
		sifu_err_set(
		    err, SIFU_E_DENIED, EPERM,
		    "sifu refuses to run set-user-ID, set-group-ID or with file capabilities");
		sifu_err_hint(err, "install sifu as a plain executable (chmod u-s,g-s; setcap -r)");
		return -EPERM;
	}
	return 0;
}
