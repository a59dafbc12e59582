/* SPDX-License-Identifier: BSD-3-Clause */
/* Before any namespace: who runs sifu, what the image is, and the refusal to
 * run with privileges sifu must not have. */
#include "internal.h"
#include "sif.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/auxv.h>
#include <sys/stat.h>

/* ------------------------------------------------------------- who am I -- */

void ns_who(struct ns_launch *l)
{
	const struct ns_config *c = l->c;
	l->uid = getuid();
	l->gid = getgid();
	l->cuid = c->fakeroot ? 0 : l->uid;
	l->cgid = c->fakeroot ? 0 : l->gid;
	struct passwd *pw = getpwuid(l->uid);
	const char *h = getenv("HOME");
	l->user = sifu_xstrdup(pw ? pw->pw_name : getenv("USER") ? getenv("USER") : "sifu");
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
static int use_opened(struct ns_launch *l, struct sifu_err *err)
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

int ns_open_image(struct ns_launch *l, struct sifu_err *err)
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
		return 0;
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
