/* SPDX-License-Identifier: BSD-3-Clause */
/* common/file.c: bounded whole-file reads and atomic file replacement. */
#include "common.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>

int sifu_read_fd(int fd, const char *what, size_t max, char **out, size_t *len,
                 struct sifu_err *err)
{
	size_t cap = 4096, n = 0;
	char *buf = sifu_xmalloc(cap);
	for (;;) {
		if (n == cap - 1) {
			if (cap - 1 > max) /* one byte past MAX was read */
				break;
			cap = cap * 2 > max + 2 ? max + 2 : cap * 2;
			buf = sifu_xrealloc(buf, cap);
		}
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = sifu_err_sys(err, "reading %s", what);
			free(buf);
			return e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max) {
		free(buf);
		return sifu_err_set(err, SIFU_E_RANGE, EFBIG, "%s is larger than %zu bytes", what,
		                    max);
	}
	buf[n] = 0;
	*out = buf;
	if (len)
		*len = n;
	return 0;
}

int sifu_read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *len,
                      struct sifu_err *err)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 && errno == ENOENT)
		return sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT, "%s: no such file", path);
	if (fd < 0)
		return sifu_err_sys(err, "opening %s", path);
	return sifu_read_fd(fd, path, max, out, len, err);
}

DIR *sifu_opendir_at(int dirfd, const char *name)
{
	int nofollow = strcmp(name, ".") ? O_NOFOLLOW : 0;
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | nofollow);
	if (fd < 0)
		return NULL;
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		errno = e;
	}
	return d;
}

/* ---------------------------------------------------------------- atomic -- */

static int open_parent(int atfd, const char *path, char **base)
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		*base = sifu_xstrdup(path);
		return openat(atfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	*base = sifu_xstrdup(slash + 1);
	_cleanup_free_ char *dir =
	    slash == path ? sifu_xstrdup("/") : sifu_xstrndup(path, (size_t)(slash - path));
	return openat(atfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int sifu_atomic_open(struct sifu_atomic *a, int atfd, const char *path, struct sifu_err *err)
{
	*a = (struct sifu_atomic){.fd = -1, .dirfd = -1, .path = sifu_xstrdup(path)};
	a->dirfd = open_parent(atfd, path, &a->name);
	if (a->dirfd < 0) {
		int e = sifu_err_sys(err, "opening the directory of %s", path);
		sifu_atomic_abort(a);
		return e;
	}
	if (!a->name[0] || !strcmp(a->name, ".") || !strcmp(a->name, "..")) {
		sifu_atomic_abort(a);
		return sifu_err_set(err, SIFU_E_USAGE, EISDIR, "%s names a directory, not a file",
		                    path);
	}
	for (int tries = 0; tries < 16; tries++) {
		uint32_t rnd = 0;
		if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) < 0)
			rnd = (uint32_t)sifu_now_ns() ^ (uint32_t)getpid();
		free(a->tmp);
		a->tmp = sifu_xasprintf(".%s.sifu-%08x", a->name, rnd);
		a->fd = openat(a->dirfd, a->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		               0600);
		if (a->fd >= 0 || errno != EEXIST)
			break;
	}
	if (a->fd < 0) {
		int e = sifu_err_sys(err, "creating a temporary file beside %s", path);
		free(TAKE_PTR(a->tmp));
		sifu_atomic_abort(a);
		return e;
	}
	return 0;
}

int sifu_atomic_commit(struct sifu_atomic *a, mode_t mode, struct sifu_err *err)
{
	int r = 0;
	if (fsync(a->fd) < 0)
		r = sifu_err_sys(err, "writing %s", a->path);
	else if (fchmod(a->fd, mode) < 0)
		r = sifu_err_sys(err, "setting the mode of %s", a->path);
	else if (renameat(a->dirfd, a->tmp, a->dirfd, a->name) < 0)
		r = sifu_err_sys(err, "renaming the temporary file to %s", a->path);
	else {
		free(TAKE_PTR(a->tmp)); /* renamed: nothing left to remove */
		(void)fsync(a->dirfd);  /* best effort: the data itself is synced */
	}
	sifu_atomic_abort(a);
	return r;
}

void sifu_atomic_abort(struct sifu_atomic *a)
{
	int saved = errno;
	if (a->tmp && a->dirfd >= 0)
		unlinkat(a->dirfd, a->tmp, 0);
	sifu_closep(&a->fd);
	sifu_closep(&a->dirfd);
	SIFU_FREE_MANY(a->tmp, a->name, a->path);
	*a = (struct sifu_atomic){.fd = -1, .dirfd = -1};
	errno = saved;
}

int sifu_atomic_write(int atfd, const char *path, const void *data, size_t len, mode_t mode,
                      struct sifu_err *err)
{
	_cleanup_atomic_ struct sifu_atomic a = {.fd = -1, .dirfd = -1};
	int r = sifu_atomic_open(&a, atfd, path, err);
	if (r < 0)
		return r;
	for (const char *p = data; len;) {
		ssize_t n = write(a.fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sifu_err_sys(err, "writing %s", path);
		p += n;
		len -= (size_t)n;
	}
	return sifu_atomic_commit(&a, mode, err);
}
