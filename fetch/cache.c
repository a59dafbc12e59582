/* SPDX-License-Identifier: BSD-3-Clause */
/* The content-addressed blob cache:
 *
 *   DIR/blobs/sha256/<hex>   verified blobs, read-only, never rewritten
 *   DIR/tmp/dl-XXXXXX        downloads in progress (renamed when verified)
 *   DIR/locks/<hex>.lock     fcntl lock held by whoever produces <hex>
 *   DIR/sif/<manifest>-….sif images built for `exec docker://…`
 *
 * A producer takes the lock, looks again (another process may have finished
 * meanwhile), downloads into tmp/, verifies size and sha256 and renames into
 * blobs/.  rename(2) is atomic on local filesystems and on NFS, and fcntl
 * locks reach across NFS clients through lockd, so many processes and many
 * nodes sharing one cache download each blob once and never see a partial
 * one under its final name. */
#include "fetch-private.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

char *fetch_cache_default_dir(void)
{
	const char *e = getenv("SIFU_CACHEDIR");
	if (e && *e)
		return sifu_xstrdup(e);
	e = getenv("XDG_CACHE_HOME");
	if (e && *e == '/')
		return sifu_xasprintf("%s/sifu", e);
	e = getenv("HOME");
	return sifu_xasprintf("%s/.cache/sifu", e && *e ? e : "/tmp");
}

static int mkdir_p(const char *path)
{
	_cleanup_free_ char *p = sifu_xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(p, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int fetch_cache_open(const char *dir, bool disable, struct fetch_cache *c, struct sifu_err *err)
{
	memset(c, 0, sizeof(*c));
	c->dirfd = -1;
	if (disable) {
		const char *t = getenv("TMPDIR");
		c->dir = sifu_xasprintf("%s/sifu-pull-XXXXXX", t && *t ? t : "/tmp");
		if (!mkdtemp(c->dir)) {
			int e = sifu_err_sys(err, "creating a temporary blob directory %s", c->dir);
			free(c->dir);
			c->dir = NULL;
			return e;
		}
		c->temporary = true;
	} else {
		c->dir = dir ? sifu_xstrdup(dir) : fetch_cache_default_dir();
	}
	static const char *const subs[] = {"blobs/sha256", "tmp", "locks"};
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
		_cleanup_free_ char *p = sifu_xasprintf("%s/%s", c->dir, subs[i]);
		int r = mkdir_p(p);
		if (r < 0) {
			errno = -r;
			sifu_err_sys(err, "cache directory %s", p);
			sifu_err_hint(err, "set SIFU_CACHEDIR to a writable directory, or use "
			                   "--disable-cache");
			fetch_cache_close(c);
			return r;
		}
	}
	c->dirfd = open(c->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (c->dirfd < 0) {
		int e = sifu_err_sys(err, "cache directory %s", c->dir);
		fetch_cache_close(c);
		return e;
	}
	return 0;
}

static void rm_all_in(int dirfd, const char *sub)
{
	int fd = openat(dirfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(fd, de->d_name, 0);
	closedir(d);
}

void fetch_cache_close(struct fetch_cache *c)
{
	if (c->temporary && c->dirfd >= 0) {
		rm_all_in(c->dirfd, "blobs/sha256");
		rm_all_in(c->dirfd, "tmp");
		rm_all_in(c->dirfd, "locks");
		unlinkat(c->dirfd, "blobs/sha256", AT_REMOVEDIR);
		unlinkat(c->dirfd, "blobs", AT_REMOVEDIR);
		unlinkat(c->dirfd, "tmp", AT_REMOVEDIR);
		unlinkat(c->dirfd, "locks", AT_REMOVEDIR);
		rmdir(c->dir);
	}
	if (c->dirfd >= 0)
		close(c->dirfd);
	free(c->dir);
	memset(c, 0, sizeof(*c));
	c->dirfd = -1;
}

int fetch_cache_open_blob(struct fetch_cache *c, const char *hex)
{
	char p[100];
	snprintf(p, sizeof(p), "blobs/sha256/%s", hex);
	int fd = openat(c->dirfd, p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? -errno : fd;
}

int fetch_cache_lock(struct fetch_cache *c, const char *hex, struct sifu_err *err)
{
	char p[100];
	snprintf(p, sizeof(p), "locks/%s.lock", hex);
	int fd = openat(c->dirfd, p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return sifu_err_sys(err, "cache lock %s/%s", c->dir, p);
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int r;
	do
		r = fcntl(fd, F_OFD_SETLKW, &fl);
	while (r < 0 && errno == EINTR);
	if (r < 0 && errno == EINVAL) /* no OFD locks: classic POSIX locks */
		do
			r = fcntl(fd, F_SETLKW, &fl);
		while (r < 0 && errno == EINTR);
	if (r < 0) {
		int e = sifu_err_sys(err, "locking %s/%s", c->dir, p);
		close(fd);
		return e;
	}
	return fd;
}

int fetch_cache_tmp(struct fetch_cache *c, char **name, struct sifu_err *err)
{
	char *path = sifu_xasprintf("%s/tmp/dl-XXXXXX", c->dir);
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0) {
		int e = sifu_err_sys(err, "creating a file in %s/tmp", c->dir);
		free(path);
		return e;
	}
	*name = path;
	return fd;
}

int fetch_cache_commit(struct fetch_cache *c, const char *tmpname, int fd, const char *hex,
                       uint64_t size, struct sifu_err *err)
{
	char got[FETCH_HEX_LEN + 1];
	uint64_t got_size = 0;
	_cleanup_free_ char *dst = sifu_xasprintf("%s/blobs/sha256/%s", c->dir, hex);
	int r;
	if (lseek(fd, 0, SEEK_SET) < 0 || (r = fetch_sha256_fd(fd, got, &got_size)) < 0) {
		r = sifu_err_sys(err, "reading back %s", tmpname);
		goto fail;
	}
	if (size != UINT64_MAX && got_size != size) {
		r = sifu_err_set(err, SIFU_E_VERIFY, 0,
		                 "blob sha256:%s: %llu bytes where %llu were announced", hex,
		                 (unsigned long long)got_size, (unsigned long long)size);
		goto fail;
	}
	if (strcmp(got, hex) != 0) {
		r = sifu_err_set(err, SIFU_E_VERIFY, 0, "blob sha256:%s has the digest sha256:%s",
		                 hex, got);
		sifu_err_hint(err, "the source sent corrupt or tampered data; nothing was kept");
		goto fail;
	}
	if (fsync(fd) < 0 || fchmod(fd, 0444) < 0) {
		r = sifu_err_sys(err, "%s", tmpname);
		goto fail;
	}
	if (rename(tmpname, dst) < 0) {
		r = sifu_err_sys(err, "renaming into %s", dst);
		goto fail;
	}
	return 0;
fail:
	unlink(tmpname);
	return r;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct fetch_cache_entry *)a)->name,
	              ((const struct fetch_cache_entry *)b)->name);
}

int fetch_cache_list(struct fetch_cache *c, bool sif, struct fetch_cache_entry **out, size_t *n,
                     struct sifu_err *err)
{
	const char *sub = sif ? "sif" : "blobs/sha256";
	*out = NULL;
	*n = 0;
	int fd = openat(c->dirfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && sif)
		return 0;
	if (fd < 0)
		return sifu_err_sys(err, "%s/%s", c->dir, sub);
	_cleanup_closedir_ DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return sifu_err_sys(err, "%s/%s", c->dir, sub);
	}
	struct fetch_cache_entry *v = NULL;
	size_t k = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat st;
		size_t len = strlen(de->d_name);
		if ((sif ? len < 5 || len >= sizeof(v->name) || strcmp(de->d_name + len - 4, ".sif")
		         : len != FETCH_HEX_LEN) ||
		    fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (k == cap) {
			cap = cap ? cap * 2 : 64;
			v = sifu_xrealloc(v, cap * sizeof(*v));
		}
		memcpy(v[k].name, de->d_name, len + 1);
		v[k].size = (uint64_t)st.st_size;
		v[k].mtime = st.st_mtime;
		k++;
	}
	if (k)
		qsort(v, k, sizeof(*v), cmp_entry);
	*out = v;
	*n = k;
	return 0;
}

static void clean_dir(int dirfd, const char *sub, bool dry_run, size_t *n, uint64_t *bytes)
{
	int fd = openat(dirfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat st;
		if (de->d_name[0] == '.' || fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    S_ISDIR(st.st_mode))
			continue;
		if (dry_run || unlinkat(fd, de->d_name, 0) == 0) {
			(*n)++;
			*bytes += (uint64_t)st.st_size;
		}
	}
	closedir(d);
}

int fetch_cache_clean(struct fetch_cache *c, bool dry_run, size_t *nremoved, uint64_t *bytes,
                      struct sifu_err *err)
{
	*nremoved = 0;
	*bytes = 0;
	clean_dir(c->dirfd, "blobs/sha256", dry_run, nremoved, bytes);
	clean_dir(c->dirfd, "tmp", dry_run, nremoved, bytes);
	clean_dir(c->dirfd, "sif", dry_run, nremoved, bytes);
	return 0;
}

void fetch_cache_sub(struct fetch_cache *c, const char *sub, bool remove, size_t *n,
                     uint64_t *bytes)
{
	*n = 0;
	*bytes = 0;
	clean_dir(c->dirfd, sub, !remove, n, bytes);
}
