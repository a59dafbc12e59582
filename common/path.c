/* SPDX-License-Identifier: BSD-3-Clause */
#include "common.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

#define MAX_SYMLINKS 40

static bool force_fallback; /* cli/ sets it from SIFU_NO_OPENAT2 */

void sifu_path_force_fallback(bool on)
{
	force_fallback = on;
}

static bool use_fallback(void)
{
	return force_fallback;
}

void sifu_path_fd(int fd, char buf[static 32])
{
	snprintf(buf, 32, "/proc/self/fd/%d", fd);
}

int sifu_path_normalize(const char *path, char *out, size_t len)
{
	bool abs = path[0] == '/';
	size_t o = 0;
	if (len < 2)
		return -ENAMETOOLONG;
	if (abs)
		out[o++] = '/';
	size_t base = o; /* out[0..base) is never removed */
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 1 && p[0] == '.') {
			/* skip */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (o == base) {
				if (!abs)
					return -EINVAL; /* climbs out of a relative base */
			} else {
				while (o > base && out[o - 1] != '/')
					o--;
				if (o > base)
					o--; /* drop the separator too */
			}
		} else {
			if (o > base)
				out[o++] = '/';
			if (o + n + 1 >= len)
				return -ENAMETOOLONG;
			memcpy(out + o, p, n);
			o += n;
		}
		p += n;
	}
	if (o == 0)
		out[o++] = '.';
	out[o] = '\0';
	return 0;
}

static int open_openat2(int rootfd, const char *path, int flags, mode_t mode)
{
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_CLOEXEC),
	    .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	long r;
	do
		r = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	while (r < 0 && errno == EAGAIN);
	return r < 0 ? -errno : (int)r;
}

/* Component walk used where openat2 is missing (Linux < 5.6) or forced off.
 * Keeps a stack of directory fds so ".." never rises above the root, and
 * expands symlinks itself, absolute ones relative to the root. */
struct walk {
	int *fds;
	size_t depth, cap;
};

static int walk_cur(const struct walk *w, int rootfd)
{
	return w->depth ? w->fds[w->depth - 1] : rootfd;
}

static void walk_pop_all(struct walk *w)
{
	while (w->depth)
		close(w->fds[--w->depth]);
}

static void walk_push(struct walk *w, int fd)
{
	if (w->depth == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 16;
		w->fds = sifu_xrealloc(w->fds, w->cap * sizeof(int));
	}
	w->fds[w->depth++] = fd;
}

static int open_fallback(int rootfd, const char *path, int flags, mode_t mode)
{
	struct walk w = {0};
	_cleanup_free_ char *rest = sifu_xstrdup(path);
	int links = 0, ret = -ENOENT;

	for (;;) {
		char *p = rest;
		while (*p == '/')
			p++;
		if (!*p) { /* path ends at a directory */
			ret = openat(walk_cur(&w, rootfd), ".", flags | O_CLOEXEC, mode);
			ret = ret < 0 ? -errno : ret;
			break;
		}
		char *slash = strchr(p, '/');
		bool last = true;
		if (slash) {
			*slash = '\0';
			char *q = slash + 1;
			while (*q == '/')
				q++;
			last = *q == '\0';
		}
		char comp[NAME_MAX + 1];
		size_t len = strlen(p);
		if (len > NAME_MAX) {
			ret = -ENAMETOOLONG;
			break;
		}
		memcpy(comp, p, len + 1);
		char *next = slash ? slash + 1 : p + strlen(p);
		memmove(rest, next, strlen(next) + 1);

		if (!strcmp(comp, ".")) {
			if (last) {
				ret = openat(walk_cur(&w, rootfd), ".", flags | O_CLOEXEC, mode);
				ret = ret < 0 ? -errno : ret;
				break;
			}
			continue;
		}
		if (!strcmp(comp, "..")) {
			if (w.depth)
				close(w.fds[--w.depth]);
			if (last) {
				ret = openat(walk_cur(&w, rootfd), ".", flags | O_CLOEXEC, mode);
				ret = ret < 0 ? -errno : ret;
				break;
			}
			continue;
		}
		int cur = walk_cur(&w, rootfd);
		int fd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT && last && (flags & O_CREAT)) {
				ret = openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
				ret = ret < 0 ? -errno : ret;
			} else {
				ret = -errno;
			}
			break;
		}
		struct stat st;
		if (fstat(fd, &st) < 0) {
			ret = -errno;
			close(fd);
			break;
		}
		if (S_ISLNK(st.st_mode) && !(last && (flags & O_NOFOLLOW))) {
			close(fd);
			if (++links > MAX_SYMLINKS) {
				ret = -ELOOP;
				break;
			}
			char target[PATH_MAX];
			ssize_t n = readlinkat(cur, comp, target, sizeof(target) - 1);
			if (n < 0) {
				ret = -errno;
				break;
			}
			target[n] = '\0';
			if (target[0] == '/')
				walk_pop_all(&w);
			char *joined = sifu_xasprintf("%s/%s", target, rest);
			free(rest);
			rest = joined;
			continue;
		}
		if (last) {
			if (flags & O_PATH) {
				/* reopen with the caller's exact flags */
				ret = openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
				ret = ret < 0 ? -errno : ret;
				close(fd);
			} else {
				char proc[32];
				sifu_path_fd(fd, proc);
				ret = open(proc, (flags & ~(O_CREAT | O_EXCL)) | O_CLOEXEC, mode);
				ret = ret < 0 ? -errno : ret;
				close(fd);
			}
			break;
		}
		if (!S_ISDIR(st.st_mode)) {
			close(fd);
			ret = -ENOTDIR;
			break;
		}
		walk_push(&w, fd);
	}
	walk_pop_all(&w);
	free(w.fds);
	return ret;
}

int sifu_path_open_in_root(int rootfd, const char *path, int flags, mode_t mode)
{
	if (!use_fallback()) {
		int r = open_openat2(rootfd, path, flags, mode);
		if (r != -ENOSYS)
			return r;
	}
	return open_fallback(rootfd, path, flags, mode);
}

int sifu_path_mkdir_in_root(int rootfd, const char *path, mode_t mode)
{
	char norm[PATH_MAX];
	int r = sifu_path_normalize(path, norm, sizeof(norm));
	if (r < 0)
		return r;
	int cur = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
	if (cur < 0)
		return -errno;
	char *p = norm;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		char *slash = strchr(p, '/');
		if (slash)
			*slash = '\0';
		/* norm now ends at this component: resolve the whole prefix from
		 * the root, so an absolute symlink means the container's "/" */
		int nfd = sifu_path_open_in_root(rootfd, norm, O_PATH | O_DIRECTORY, 0);
		if (nfd == -ENOENT) {
			if (mkdirat(cur, p, mode) < 0 && errno != EEXIST) {
				r = -errno;
				close(cur);
				return r;
			}
			nfd = sifu_path_open_in_root(rootfd, norm, O_PATH | O_DIRECTORY, 0);
		}
		if (nfd < 0) {
			close(cur);
			return nfd;
		}
		close(cur);
		cur = nfd;
		if (!slash)
			break;
		*slash = '/';
		p = slash + 1;
	}
	return cur;
}

bool sifu_find_exe(const char *name, const char *search, char *out, size_t len)
{
	_cleanup_free_ char *dirs =
	    sifu_xasprintf("%s:/usr/sbin:/sbin", search && *search ? search : "/usr/bin:/bin");
	char *save = NULL;
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		if (d[0] != '/')
			continue;
		int n = snprintf(out, len, "%s/%s", d, name);
		if (n > 0 && (size_t)n < len && access(out, X_OK) == 0)
			return true;
	}
	return false;
}
