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
struct path_walk {
	int rootfd;
	int *fds;
	size_t depth, cap;
	char *rest; /* what is left of the path */
	int links;  /* symlinks followed so far */
};

static int walk_cur(const struct path_walk *w)
{
	return w->depth ? w->fds[w->depth - 1] : w->rootfd;
}

static void walk_pop_all(struct path_walk *w)
{
	while (w->depth)
		close(w->fds[--w->depth]);
}

static void walk_push(struct path_walk *w, int fd)
{
	if (w->depth == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 16;
		w->fds = sifu_xrealloc(w->fds, w->cap * sizeof(int));
	}
	w->fds[w->depth++] = fd;
}

static int ret_fd(int fd)
{
	return fd < 0 ? -errno : fd;
}

/* Take the next component of w->rest into COMP; *LAST when nothing but
 * slashes follows it.  1 with a component, 0 at the end of the path, or
 * -ENAMETOOLONG. */
static int walk_next(struct path_walk *w, char comp[static NAME_MAX + 1], bool *last)
{
	char *p = w->rest;
	while (*p == '/')
		p++;
	if (!*p)
		return 0;
	size_t len = strcspn(p, "/");
	if (len > NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(comp, p, len);
	comp[len] = '\0';
	const char *next = p + len;
	while (*next == '/')
		next++;
	*last = *next == '\0';
	memmove(w->rest, next, strlen(next) + 1);
	return 1;
}

/* A symlink COMP in the current directory: its target replaces it at the
 * front of what is left; an absolute one starts again from the root. */
static int walk_follow(struct path_walk *w, const char *comp)
{
	if (++w->links > MAX_SYMLINKS)
		return -ELOOP;
	char target[PATH_MAX];
	ssize_t n = readlinkat(walk_cur(w), comp, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	if (target[0] == '/')
		walk_pop_all(w);
	char *joined = sifu_xasprintf("%s/%s", target, w->rest);
	free(w->rest);
	w->rest = joined;
	return 0;
}

/* The last component, FD its O_PATH handle: open it with the caller's
 * flags, never following it again. */
static int walk_open_last(struct path_walk *w, const char *comp, int fd, int flags, mode_t mode)
{
	int r;
	if (flags & O_PATH) { /* reopen with the caller's exact flags */
		r = ret_fd(openat(walk_cur(w), comp, flags | O_NOFOLLOW | O_CLOEXEC, mode));
	} else {
		char proc[32];
		sifu_path_fd(fd, proc);
		r = ret_fd(open(proc, (flags & ~(O_CREAT | O_EXCL)) | O_CLOEXEC, mode));
	}
	close(fd);
	return r;
}

/* One ordinary component.  Returns true when the walk is over, with the
 * result (an fd or -errno) in *RES; false to go on. */
static bool walk_step(struct path_walk *w, const char *comp, bool last, int flags, mode_t mode,
                      int *res)
{
	int cur = walk_cur(w);
	int fd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		bool create = errno == ENOENT && last && (flags & O_CREAT);
		*res = create ? ret_fd(openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode))
		              : -errno;
		return true;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		*res = -errno;
		close(fd);
		return true;
	}
	if (S_ISLNK(st.st_mode) && !(last && (flags & O_NOFOLLOW))) {
		close(fd);
		*res = walk_follow(w, comp);
		return *res < 0;
	}
	if (last) {
		*res = walk_open_last(w, comp, fd, flags, mode);
		return true;
	}
	if (!S_ISDIR(st.st_mode)) {
		close(fd);
		*res = -ENOTDIR;
		return true;
	}
	walk_push(w, fd);
	return false;
}

static int open_fallback(int rootfd, const char *path, int flags, mode_t mode)
{
	struct path_walk w = {.rootfd = rootfd, .rest = sifu_xstrdup(path)};
	int ret;
	for (;;) {
		char comp[NAME_MAX + 1];
		bool last = false;
		ret = walk_next(&w, comp, &last);
		if (ret <= 0) { /* an error, or the path ends at a directory */
			if (ret == 0)
				ret = ret_fd(openat(walk_cur(&w), ".", flags | O_CLOEXEC, mode));
			break;
		}
		bool dot = !strcmp(comp, "."), dotdot = !strcmp(comp, "..");
		if (dotdot && w.depth) /* never above the root */
			close(w.fds[--w.depth]);
		if ((dot || dotdot) && last) {
			ret = ret_fd(openat(walk_cur(&w), ".", flags | O_CLOEXEC, mode));
			break;
		}
		if (dot || dotdot)
			continue;
		if (walk_step(&w, comp, last, flags, mode, &ret))
			break;
	}
	walk_pop_all(&w);
	free(w.fds);
	free(w.rest);
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
