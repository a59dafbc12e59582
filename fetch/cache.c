/* SPDX-License-Identifier: BSD-3-Clause */
/* The content-addressed blob cache:
 *
 *   DIR/blobs/sha256/<hex>   verified blobs, read-only, never rewritten
 *   DIR/tmp/dl-XXXXXX        downloads in progress (renamed when verified)
 *   DIR/locks/<hex>.lock     fcntl lock held by whoever produces <hex>
 *   DIR/sif/<manifest>-….sif images built for `exec docker://…`
 *   DIR/sif/<manifest>-….rec what each was made from (see below)
 *
 * Every one of these directories is the caller's and writable by nobody
 * else (checked at open, through fds; see common/privdir.c): what is found
 * in them is used, and a SIF found there is executed.
 * A producer takes the lock, looks again (another process may have finished
 * meanwhile), downloads into tmp/, verifies size and sha256 and renames into
 * blobs/.  rename(2) is atomic on local filesystems and on NFS, and fcntl
 * locks reach across NFS clients through lockd, so many processes and many
 * nodes sharing one cache download each blob once and never see a partial
 * one under its final name. */
#include "fetch_priv.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>

#define ALL_PRIVATE (~0u)

static int rand_name(char *buf, size_t len, const char *prefix)
{
	uint64_t v;
	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		return -EIO;
	snprintf(buf, len, "%s%016llx", prefix, (unsigned long long)v);
	return 0;
}

/* --disable-cache: a fresh directory in LOC->tmpbase, removed on close. */
static int open_temporary(const struct fetch_cache_loc *loc, struct fetch_cache *c,
                          struct sifu_err *err)
{
	if (!loc->tmpbase)
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		                    "no directory for a temporary cache");
	c->parentfd = sifu_privdir_open(AT_FDCWD, NULL, loc->tmpbase, 1, loc->fix, err);
	if (c->parentfd < 0)
		return c->parentfd;
	for (int tries = 0; tries < 100; tries++) {
		if (rand_name(c->tmpname, sizeof(c->tmpname), "pull-") < 0)
			return sifu_err_set(err, SIFU_E_SYS, EIO, "getrandom");
		if (mkdirat(c->parentfd, c->tmpname, 0700) == 0) {
			c->temporary = true;
			c->dir = sifu_xasprintf("%s/%s", loc->tmpbase, c->tmpname);
			c->dirfd = sifu_privdir_open(c->parentfd, loc->tmpbase, c->tmpname,
			                             ALL_PRIVATE, loc->fix, err);
			return c->dirfd < 0 ? c->dirfd : 0;
		}
		if (errno != EEXIST)
			return sifu_err_sys(err, "creating a temporary blob directory in %s",
			                    loc->tmpbase);
	}
	return sifu_err_set(err, SIFU_E_SYS, EEXIST, "creating a temporary blob directory in %s",
	                    loc->tmpbase);
}

int fetch_cache_open(const struct fetch_cache_loc *loc, bool disable, struct fetch_cache *c,
                     struct sifu_err *err)
{
	memset(c, 0, sizeof(*c));
	c->dirfd = c->blobs = c->tmp = c->locks = c->sif = c->parentfd = -1;
	int r;
	if (disable) {
		r = open_temporary(loc, c, err);
	} else if (!loc->dir || !*loc->dir) {
		r = sifu_err_set(err, SIFU_E_USAGE, EINVAL, "no cache directory");
	} else {
		c->dir = sifu_xstrdup(loc->dir);
		c->dirfd = r = sifu_privdir_open(AT_FDCWD, NULL, loc->dir,
		                                 loc->nprivate ? loc->nprivate : 1, loc->fix, err);
	}
	/* each one checked too: the root being private says nothing about a
	 * subdirectory left group-writable or replaced by a link earlier */
	struct {
		int *fd;
		const char *name;
	} subs[] = {
	    {&c->blobs, "blobs/sha256"}, {&c->tmp, "tmp"}, {&c->locks, "locks"}, {&c->sif, "sif"}};
	for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(subs); i++)
		r = *subs[i].fd =
		    sifu_privdir_open(c->dirfd, c->dir, subs[i].name, ALL_PRIVATE, loc->fix, err);
	if (r < 0) {
		sifu_err_wrap(err, "cache");
		fetch_cache_close(c);
		return r;
	}
	return 0;
}

static void rm_all_in(int dirfd)
{
	_cleanup_closedir_ DIR *d = sifu_opendir_at(dirfd, ".");
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dirfd, de->d_name, 0);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void fetch_cache_close(struct fetch_cache *c)
{
	if (c->temporary && c->dirfd >= 0) {
		int *fds[] = {&c->blobs, &c->tmp, &c->locks, &c->sif};
		for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
			if (*fds[i] >= 0)
				rm_all_in(*fds[i]);
		static const char *const dirs[] = {"blobs/sha256", "blobs", "tmp", "locks", "sif"};
		for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
			unlinkat(c->dirfd, dirs[i], AT_REMOVEDIR);
	}
	if (c->temporary && c->parentfd >= 0)
		unlinkat(c->parentfd, c->tmpname, AT_REMOVEDIR);
	int *fds[] = {&c->dirfd, &c->blobs, &c->tmp, &c->locks, &c->sif, &c->parentfd};
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		close_fd(fds[i]);
	free(c->dir);
	memset(c, 0, sizeof(*c));
	c->dirfd = c->blobs = c->tmp = c->locks = c->sif = c->parentfd = -1;
}

/* A file sifu made in its private cache: regular, the caller's, not
 * writable by others. */
static bool ours(const struct stat *st)
{
	return S_ISREG(st->st_mode) && st->st_uid == geteuid() &&
	       !(st->st_mode & (S_IWGRP | S_IWOTH));
}

int fetch_cache_open_blob(struct fetch_cache *c, const char *hex)
{
	int fd = openat(c->blobs, hex, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || !ours(&st)) {
		/* a download replaces it (rename over it) */
		sifu_debug("cache: ignoring blob %s: not a file of yours", hex);
		close(fd);
		return -ENOENT;
	}
	return fd;
}

int fetch_cache_find(struct fetch_cache *c, const char *digest, char hex[FETCH_HEX_LEN + 1],
                     int *fd, struct sifu_err *err)
{
	if (fetch_digest_parse(digest, hex, err) < 0)
		return -EINVAL;
	*fd = fetch_cache_open_blob(c, hex);
	return *fd >= 0;
}

int fetch_cache_lock(struct fetch_cache *c, const char *hex, struct sifu_err *err)
{
	char p[160];
	snprintf(p, sizeof(p), "%s.lock", hex);
	int fd = openat(c->locks, p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return sifu_err_sys(err, "cache lock %s/locks/%s", c->dir, p);
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
		int e = sifu_err_sys(err, "locking %s/locks/%s", c->dir, p);
		close(fd);
		return e;
	}
	return fd;
}

/* A new file NAME (PREFIX + random) in DIRFD, opened O_RDWR. */
static int create_tmp(int dirfd, const char *prefix, char *name, size_t len)
{
	for (int tries = 0; tries < 100; tries++) {
		if (rand_name(name, len, prefix) < 0)
			return -EIO;
		int fd =
		    openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			return fd < 0 ? -errno : fd;
	}
	return -EEXIST;
}

int fetch_cache_tmp(struct fetch_cache *c, char **name, struct sifu_err *err)
{
	char n[64];
	int fd = create_tmp(c->tmp, "dl-", n, sizeof(n));
	if (fd < 0) {
		errno = -fd;
		return sifu_err_sys(err, "creating a file in %s/tmp", c->dir);
	}
	*name = sifu_xstrdup(n);
	return fd;
}

void fetch_cache_discard(struct fetch_cache *c, const char *name)
{
	unlinkat(c->tmp, name, 0);
}

int fetch_cache_commit(struct fetch_cache *c, const char *tmpname, int fd, const char *hex,
                       uint64_t size, struct sifu_err *err)
{
	char got[FETCH_HEX_LEN + 1];
	uint64_t got_size = 0;
	int r;
	if (lseek(fd, 0, SEEK_SET) < 0 || (r = fetch_sha256_fd(fd, got, &got_size)) < 0) {
		r = sifu_err_sys(err, "reading back %s/tmp/%s", c->dir, tmpname);
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
	/* Not sifu_atomic: the download was made in tmp/, apart from blobs/ (a
	 * partial one is resumed or cleaned there and never looks like a blob),
	 * and is renamed across only once its size and digest are checked. */
	if (fsync(fd) < 0 || fchmod(fd, 0444) < 0) {
		r = sifu_err_sys(err, "%s/tmp/%s", c->dir, tmpname);
		goto fail;
	}
	if (renameat(c->tmp, tmpname, c->blobs, hex) < 0) {
		r = sifu_err_sys(err, "renaming into %s/blobs/sha256/%s", c->dir, hex);
		goto fail;
	}
	return 0;
fail:
	fetch_cache_discard(c, tmpname);
	return r;
}

/* ------------------------------------------------------------ cached SIFs --
 * sif/NAME.sif is executed by `sifu exec docker://…`, so it must be the file
 * that this user's sifu made from the manifest it is named for.  The private
 * directory (checked at open) says that only the caller can have put it
 * there; the record sif/NAME.rec, written when the SIF is committed, says
 * which manifest it was made from and which bytes it holds (size, sha256),
 * and catches a file copied in, truncated, or planted while the directory
 * was open to others and fixed since.  Hashing a multi-GB SIF at every exec
 * would cost seconds, so the record also keeps the file's inode and ctime:
 * any change to the file (a write, a rename of another file over it, a
 * chmod, a touch) gives a new ctime, which nobody can set back, and only
 * then is the whole file hashed again. */

#define REC_MAX 1024

struct sif_rec {
	char manifest[FETCH_HEX_LEN + 1], sha[FETCH_HEX_LEN + 1];
	unsigned long long size, ino;
	long long ctime_s, ctime_ns;
};

static void rec_format(const struct sif_rec *r, char *buf, size_t len)
{
	snprintf(buf, len,
	         "sifu cached SIF 1\nmanifest sha256:%s\nsize %llu\nsha256 %s\ninode %llu\n"
	         "ctime %lld.%09lld\n",
	         r->manifest, r->size, r->sha, r->ino, r->ctime_s, r->ctime_ns);
}

static bool hex64(const char *s)
{
	size_t i = 0;
	while ((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))
		i++;
	return i == FETCH_HEX_LEN && s[i] == 0;
}

static bool rec_parse(const char *buf, struct sif_rec *r)
{
	char m[80], h[80];
	if (sscanf(buf,
	           "sifu cached SIF 1\nmanifest sha256:%79s\nsize %llu\nsha256 %79s\ninode "
	           "%llu\nctime %lld.%lld\n",
	           m, &r->size, h, &r->ino, &r->ctime_s, &r->ctime_ns) != 6 ||
	    !hex64(m) || !hex64(h))
		return false;
	memcpy(r->manifest, m, sizeof(r->manifest));
	memcpy(r->sha, h, sizeof(r->sha));
	return true;
}

static int rec_read(struct fetch_cache *c, const char *name, struct sif_rec *r)
{
	char rn[160], buf[REC_MAX];
	snprintf(rn, sizeof(rn), "%s.rec", name);
	_cleanup_close_ int fd = openat(c->sif, rn, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !ours(&st) || st.st_size >= REC_MAX)
		return -EPERM;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return rec_parse(buf, r) ? 0 : -EINVAL;
}

/* sif/NAME.rec, read-only, replaced whole (its temporary name starts with
 * a '.', which clean_dir passes over). */
static int rec_write(struct fetch_cache *c, const char *name, const struct sif_rec *r,
                     struct sifu_err *err)
{
	char rn[160], buf[REC_MAX];
	snprintf(rn, sizeof(rn), "%s.rec", name);
	rec_format(r, buf, sizeof(buf));
	return sifu_atomic_write(c->sif, rn, buf, strlen(buf), 0444, err);
}

static void stat_into(const struct stat *st, struct sif_rec *r)
{
	r->size = (unsigned long long)st->st_size;
	r->ino = (unsigned long long)st->st_ino;
	r->ctime_s = (long long)st->st_ctim.tv_sec;
	r->ctime_ns = (long long)st->st_ctim.tv_nsec;
}

/* 0 if FD (sif/NAME.sif) is what the record says, else why not. */
static const char *sif_check(struct fetch_cache *c, const char *name, int fd,
                             const char *manifest_hex)
{
	struct stat st;
	struct sif_rec r = {0}, now = {0};
	if (fstat(fd, &st) < 0 || !ours(&st) || st.st_nlink != 1)
		return "not a file of yours alone";
	if (rec_read(c, name, &r) < 0)
		return "no valid record";
	if (strcmp(r.manifest, manifest_hex) != 0)
		return "recorded for another manifest";
	if (r.size != (unsigned long long)st.st_size)
		return "its size differs from the record";
	stat_into(&st, &now);
	if (now.ino == r.ino && now.ctime_s == r.ctime_s && now.ctime_ns == r.ctime_ns)
		return NULL;
	/* changed since it was recorded (or copied, or restored): the bytes decide */
	sifu_verbose("cache: %s.sif changed since it was recorded; checking its sha256", name);
	char got[FETCH_HEX_LEN + 1];
	uint64_t size;
	if (lseek(fd, 0, SEEK_SET) < 0 || fetch_sha256_fd(fd, got, &size) < 0 ||
	    lseek(fd, 0, SEEK_SET) < 0)
		return "unreadable";
	if (size != r.size || strcmp(got, r.sha) != 0)
		return "its content differs from the record";
	memcpy(now.manifest, r.manifest, sizeof(now.manifest));
	memcpy(now.sha, r.sha, sizeof(now.sha));
	struct sifu_err e = {0};
	if (rec_write(c, name, &now, &e) < 0)
		sifu_debug("cache: could not update the record of %s.sif", name);
	return NULL;
}

int fetch_cache_sif_open(struct fetch_cache *c, const char *name, const char *manifest_hex,
                         bool repair, struct sifu_err *err)
{
	char fn[160];
	snprintf(fn, sizeof(fn), "%s.sif", name);
	int fd = openat(c->sif, fn, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT && errno != ELOOP)
		return sifu_err_sys(err, "%s/sif/%s", c->dir, fn);
	const char *why = fd < 0 ? (errno == ELOOP ? "a symbolic link" : NULL)
	                         : sif_check(c, name, fd, manifest_hex);
	if (fd >= 0 && !why)
		return fd;
	if (fd >= 0)
		close(fd);
	if (why) {
		sifu_log(repair ? SIFU_LOG_WARN : SIFU_LOG_DEBUG, "cache: %s/sif/%s is %s%s",
		         c->dir, fn, strncmp(why, "a ", 2) ? "not usable: " : "", why);
		if (repair) {
			char rn[160];
			snprintf(rn, sizeof(rn), "%s.rec", name);
			unlinkat(c->sif, fn, 0);
			unlinkat(c->sif, rn, 0);
		}
	}
	return -ENOENT;
}

int fetch_cache_sif_record(struct fetch_cache *c, const char *name, const char *manifest_hex,
                           struct sifu_err *err)
{
	char fn[160];
	snprintf(fn, sizeof(fn), "%s.sif", name);
	_cleanup_close_ int fd = openat(c->sif, fn, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct sif_rec r = {0};
	struct stat st;
	uint64_t size;
	if (fd < 0 || fetch_sha256_fd(fd, r.sha, &size) < 0 || fstat(fd, &st) < 0)
		return sifu_err_sys(err, "%s/sif/%s", c->dir, fn);
	snprintf(r.manifest, sizeof(r.manifest), "%s", manifest_hex);
	stat_into(&st, &r);
	/* the record's own message would name only its temporary file */
	struct sifu_err e = {0};
	if (rec_write(c, name, &r, &e) < 0)
		return sifu_err_set(err, SIFU_E_SYS, e.errnum, "recording %s/sif/%s", c->dir, fn);
	return 0;
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
	_cleanup_closedir_ DIR *d = sifu_opendir_at(sif ? c->sif : c->blobs, ".");
	if (!d)
		return sifu_err_sys(err, "%s/%s", c->dir, sub);
	int fd = dirfd(d);
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

/* Remove (or count) the plain files in the directory DIRFD last modified
 * before BEFORE (0: all); a record (NAME.rec) goes with its SIF and is not
 * counted apart (one left behind alone makes the SIF untrusted, so it is
 * made again). */
static void clean_dir(int fd, bool dry_run, int64_t before, size_t *n, uint64_t *bytes)
{
	_cleanup_closedir_ DIR *d = sifu_opendir_at(fd, ".");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		struct stat st;
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.' || fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    S_ISDIR(st.st_mode) || (before && st.st_mtime >= before))
			continue;
		bool rec = len > 4 && !strcmp(de->d_name + len - 4, ".rec");
		if ((dry_run || unlinkat(fd, de->d_name, 0) == 0) && !rec) {
			(*n)++;
			*bytes += (uint64_t)st.st_size;
		}
	}
}

int fetch_cache_clean(struct fetch_cache *c, const struct fetch_clean_opts *o, size_t *nremoved,
                      uint64_t *bytes, struct sifu_err *err)
{
	*nremoved = 0;
	*bytes = 0;
	if (o->blobs) {
		clean_dir(c->blobs, o->dry_run, o->before, nremoved, bytes);
		clean_dir(c->tmp, o->dry_run, o->before, nremoved, bytes);
	}
	if (o->sifs)
		clean_dir(c->sif, o->dry_run, o->before, nremoved, bytes);
	return 0;
}

void fetch_cache_sub(struct fetch_cache *c, const char *sub, bool remove, int64_t before, size_t *n,
                     uint64_t *bytes)
{
	*n = 0;
	*bytes = 0;
	_cleanup_close_ int fd =
	    openat(c->dirfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct sifu_err e = {0};
	if (fd < 0 || sifu_privdir_check(fd, sub, NULL, &e) < 0)
		return; /* nothing of ours there */
	clean_dir(fd, !remove, before, n, bytes);
}
