/* SPDX-License-Identifier: BSD-3-Clause */
/* Private directories (caches sifu keeps under $TMPDIR or a directory the
 * user names): walked one component at a time through fds, each one checked.
 *
 * Why: a path such as /tmp/sifu-1000/blocks lies in a directory every user
 * may write.  Another user can create /tmp/sifu-1000 before our first run,
 * as a symlink to a directory of ours (then `cache clean` removes our files
 * there) or as a directory of theirs (then they read or plant what we keep).
 * Checking only the last component, or checking a path and then using it
 * again, leaves both open; holding the fd of each checked component and
 * doing every later operation relative to it does not. */
#include "common.h"

#include <fcntl.h>
#include <sys/stat.h>

/* Why a directory with status ST cannot be trusted, or NULL when it can: ours,
 * a directory, and nobody else may add, remove or rename entries in it. */
static const char *privdir_problem(const struct stat *st)
{
	if (!S_ISDIR(st->st_mode))
		return "is not a directory";
	if (st->st_uid != geteuid())
		return "belongs to another user";
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return "is writable by other users";
	return NULL;
}

int sifu_privdir_open(int parentfd, const char *relpath, bool create, struct sifu_err *err)
{
	size_t len = strlen(relpath);
	if (len == 0 || relpath[0] == '/' || len >= 4096)
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "%s: not a relative path", relpath);
	char path[4096];
	memcpy(path, relpath, len + 1);
	int fd = -1, at = parentfd;
	for (char *comp = path, *next; comp; comp = next) {
		next = strchr(comp, '/');
		if (next)
			*next++ = '\0';
		/* empty (a//b, a/) and "." name nothing new; ".." would leave
		 * the directory just checked */
		if (!*comp || !strcmp(comp, "."))
			continue;
		/* the path up to here, for the message */
		const char *shown = relpath;
		int shown_len = (int)(comp - path + (ptrdiff_t)strlen(comp));
		if (!strcmp(comp, "..")) {
			if (fd >= 0)
				close(fd);
			return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "%.*s: '..' is not allowed",
			                    shown_len, shown);
		}
		if (create && mkdirat(at, comp, 0700) < 0 && errno != EEXIST) {
			int e = errno;
			if (fd >= 0)
				close(fd);
			errno = e;
			return sifu_err_sys(err, "%.*s: cannot create", shown_len, shown);
		}
		int nfd = openat(at, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		struct stat st;
		/* O_NOFOLLOW|O_DIRECTORY refuses a symlink with ELOOP or ENOTDIR:
		 * say which it is */
		bool link = nfd < 0 && (e == ELOOP || e == ENOTDIR) &&
		            fstatat(at, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
		if (fd >= 0)
			close(fd);
		fd = nfd;
		at = nfd;
		if (link)
			return sifu_err_set(err, SIFU_E_DENIED, ELOOP, "%.*s: is a symbolic link",
			                    shown_len, shown);
		if (fd < 0) {
			errno = e;
			if (e == ENOTDIR)
				return sifu_err_set(err, SIFU_E_DENIED, e,
				                    "%.*s: is not a directory", shown_len, shown);
			return sifu_err_sys(err, "%.*s: cannot open", shown_len, shown);
		}
		if (fstat(fd, &st) < 0) {
			close(fd);
			return sifu_err_sys(err, "%.*s: cannot examine", shown_len, shown);
		}
		const char *why = privdir_problem(&st);
		if (why) {
			close(fd);
			return sifu_err_set(err, SIFU_E_DENIED, EPERM,
			                    "%.*s: %s (owner uid %u, mode %04o)", shown_len, shown,
			                    why, (unsigned)st.st_uid,
			                    (unsigned)(st.st_mode & 07777));
		}
	}
	if (fd < 0) /* nothing but "." and "/" */
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "%s: names no directory", relpath);
	return fd;
}
