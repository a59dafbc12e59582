/* SPDX-License-Identifier: BSD-3-Clause */
/* Private directories: the caches and scratch directories sifu keeps for a
 * user.  Whatever sifu later finds in such a directory it uses (a cached
 * SIF is executed, a blob is imported), so the directory must be one that
 * only the user can write to: a real directory (not a symbolic link another
 * user could point elsewhere), owned by the caller, with no group or other
 * write bit.  It is opened one component at a time through fds, so nothing
 * can be swapped between the check and the use, and callers go on through
 * the fd (openat, renameat, unlinkat), never through the path again.
 *
 * The leading components of a path (a home directory, $TMPDIR, a scratch
 * file system reached through a link) are where the user chose to keep
 * things; they are followed as they are.  Only the trailing components the
 * caller names private, and every component sifu itself creates, are
 * checked. */
#include "common.h"

#include <fcntl.h>
#include <sys/stat.h>

/* Why FD (named WHAT) is not a private directory; 0 when it is one. */
int sifu_privdir_check(int fd, const char *what, const char *alt, struct sifu_err *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sifu_err_sys(err, "%s", what);
	if (!S_ISDIR(st.st_mode)) {
		sifu_err_set(err, SIFU_E_DENIED, ENOTDIR, "%s is not a directory", what);
		sifu_err_hint(err, "remove it%s%s", alt ? ", or " : "", alt ? alt : "");
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid()) {
		sifu_err_set(err, SIFU_E_DENIED, EPERM,
		             "%s belongs to uid %u, not to you (uid %u): refusing to use it", what,
		             (unsigned)st.st_uid, (unsigned)geteuid());
		sifu_err_hint(err, "chown it to yourself or remove it%s%s", alt ? ", or " : "",
		              alt ? alt : "");
		return -EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		sifu_err_set(err, SIFU_E_DENIED, EPERM,
		             "%s is writable by %s (mode %04o): refusing to use it", what,
		             (st.st_mode & S_IWGRP) && (st.st_mode & S_IWOTH) ? "group and others"
		             : (st.st_mode & S_IWGRP)                         ? "its group"
		                                                              : "others",
		             (unsigned)(st.st_mode & 07777));
		sifu_err_hint(err, "run chmod go-w %s%s%s", what, alt ? ", or " : "",
		              alt ? alt : "");
		return -EPERM;
	}
	return 0;
}

/* Open the private component NAME under PARENT (made 0700 if missing); WHAT
 * is its whole name for messages. */
static int open_private(int parent, const char *name, const char *what, const char *alt,
                        struct sifu_err *err)
{
	/* O_PATH first: the checks must speak even of a directory the caller
	 * cannot read (another user's) */
	int fd = openat(parent, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		if (mkdirat(parent, name, 0700) < 0 && errno != EEXIST)
			return sifu_err_sys(err, "creating %s", what);
		fd = openat(parent, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0) {
		struct stat st;
		int e = errno;
		if ((e == ELOOP || e == ENOTDIR) &&
		    fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
			sifu_err_set(err, SIFU_E_DENIED, ELOOP,
			             "%s is a symbolic link: refusing to use it", what);
			sifu_err_hint(err,
			              "name the real directory instead, or remove the link%s%s",
			              alt ? ", or " : "", alt ? alt : "");
			return -ELOOP;
		}
		errno = e;
		return sifu_err_sys(err, "%s", what);
	}
	int r = sifu_privdir_check(fd, what, alt, err);
	if (r == 0 && (r = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		r = sifu_err_sys(err, "%s", what);
	close(fd);
	return r;
}

/* A leading component: followed if it is a link; one that sifu has to make
 * is its own, so it is checked like a private one. */
static int open_leading(int parent, const char *name, const char *what, const char *alt,
                        struct sifu_err *err)
{
	int fd = openat(parent, name, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	if (errno != ENOENT)
		return sifu_err_sys(err, "%s", what);
	return open_private(parent, name, what, alt, err);
}

int sifu_privdir_open(int atfd, const char *atname, const char *path, unsigned nprivate,
                      const char *alt, struct sifu_err *err)
{
	_cleanup_free_ char *copy = sifu_xstrdup(path);
	char *comp[256];
	size_t n = 0;
	char *save = NULL;
	for (char *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (!strcmp(t, "."))
			continue;
		if (n == ARRAY_SIZE(comp))
			return sifu_err_set(err, SIFU_E_USAGE, ENAMETOOLONG, "%s: too deep", path);
		comp[n++] = t;
	}
	if (n == 0)
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "%s: not a directory sifu can keep",
		                    path);
	size_t first_private = nprivate >= n ? 0 : n - nprivate;
	for (size_t i = first_private; i < n; i++)
		if (!strcmp(comp[i], ".."))
			return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
			                    "%s: \"..\" in a private directory's name", path);
	int cur;
	if (path[0] == '/')
		cur = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	else if (atfd == AT_FDCWD)
		cur = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	else
		cur = fcntl(atfd, F_DUPFD_CLOEXEC, 3);
	if (cur < 0)
		return sifu_err_sys(err, "%s", path[0] == '/' || !atname ? "/" : atname);
	_cleanup_buf_ struct sifu_buf what = {0};
	if (path[0] != '/' && atname)
		sifu_buf_str(&what, atname);
	int r = 0;
	for (size_t i = 0; i < n; i++) {
		sifu_buf_printf(&what, "%s%s", what.len || path[0] == '/' ? "/" : "", comp[i]);
		int next = i < first_private ? open_leading(cur, comp[i], what.p, alt, err)
		                             : open_private(cur, comp[i], what.p, alt, err);
		close(cur);
		if (next < 0) {
			r = next;
			break;
		}
		cur = next;
	}
	if (r < 0)
		return r;
	if (first_private == n) {
		/* nothing private was asked for: hand out a readable fd all the same */
		int fd = openat(cur, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int e = fd < 0 ? sifu_err_sys(err, "%s", path) : fd;
		close(cur);
		return e;
	}
	return cur;
}
