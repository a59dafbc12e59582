/* SPDX-License-Identifier: BSD-3-Clause */
/* recipe/: directory trees of a build: copying into a container root
 * (always through descriptors of that root, so a symlink in the image never
 * leads a %files copy out of it), removing, and writing a tree as SquashFS. */
#include "recipe_priv.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

/* ------------------------------------------------------------ removing -- */

static int rm_children(DIR *d)
{
	int r = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		int q = bld_rm_tree(dirfd(d), e->d_name);
		if (q < 0 && r == 0)
			r = q;
	}
	return r;
}

int bld_rm_tree(int dirfd, const char *name)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISDIR(st.st_mode)) {
		/* a directory %post made read-only is still ours to empty */
		if ((st.st_mode & 0700) != 0700)
			fchmodat(dirfd, name, (st.st_mode & 07777) | 0700, 0);
		_cleanup_closedir_ DIR *d = sifu_opendir_at(dirfd, name);
		if (d)
			rm_children(d);
		if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0)
			return -errno;
		return 0;
	}
	if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* ------------------------------------------------------------- copying -- */

static int copy_data(int in, int out)
{
	char buf[65536];
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return 0;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			off += w;
		}
	}
}

static int copy_entry(int srcdir, const char *sname, int dstdir, const char *dname, bool follow,
                      struct sifu_err *err);

/* Copy what the directory D holds into DSTFD. */
static int copy_children(DIR *d, int dstfd, bool follow, struct sifu_err *err)
{
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		int r = copy_entry(dirfd(d), e->d_name, dstfd, e->d_name, follow, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Copy the object NAME of SRCDIR to NAME of DSTDIR.  FOLLOW: dereference
 * symlinks (host sources, `cp -L`). */
static int copy_entry(int srcdir, const char *sname, int dstdir, const char *dname, bool follow,
                      struct sifu_err *err)
{
	int r = bld_check_interrupted(err);
	if (r < 0)
		return r;
	struct stat st;
	if (fstatat(srcdir, sname, &st, follow ? 0 : AT_SYMLINK_NOFOLLOW) < 0)
		return sifu_err_sys(err, "%s", sname);
	struct stat dst;
	bool exists = fstatat(dstdir, dname, &dst, AT_SYMLINK_NOFOLLOW) == 0;
	if (exists && !(S_ISDIR(st.st_mode) && S_ISDIR(dst.st_mode))) {
		r = bld_rm_tree(dstdir, dname);
		if (r < 0)
			return sifu_err_set(err, SIFU_E_SYS, -r, "replacing %s", dname);
		exists = false;
	}
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlinkat(srcdir, sname, target, sizeof(target) - 1);
		if (n < 0)
			return sifu_err_sys(err, "reading link %s", sname);
		target[n] = 0;
		if (symlinkat(target, dstdir, dname) < 0)
			return sifu_err_sys(err, "creating link %s", dname);
		return 0;
	}
	if (S_ISDIR(st.st_mode)) {
		if (!exists && mkdirat(dstdir, dname, (st.st_mode & 07777) | 0700) < 0)
			return sifu_err_sys(err, "creating directory %s", dname);
		int sfd = openat(srcdir, sname,
		                 O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
		if (sfd < 0)
			return sifu_err_sys(err, "opening directory %s", sname);
		_cleanup_close_ int dfd =
		    openat(dstdir, dname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dfd < 0) {
			close(sfd);
			return sifu_err_sys(err, "opening directory %s", dname);
		}
		_cleanup_closedir_ DIR *d = fdopendir(sfd);
		if (!d) {
			close(sfd);
			return sifu_err_sys(err, "reading directory %s", sname);
		}
		if ((r = copy_children(d, dfd, follow, err)) < 0)
			return sifu_err_wrap(err, "%s", sname);
		fchmod(dfd, st.st_mode & 07777);
		return 0;
	}
	if (S_ISREG(st.st_mode)) {
		_cleanup_close_ int in = openat(
		    srcdir, sname, O_RDONLY | O_CLOEXEC | O_NOCTTY | (follow ? 0 : O_NOFOLLOW));
		if (in < 0)
			return sifu_err_sys(err, "opening %s", sname);
		_cleanup_close_ int out =
		    openat(dstdir, dname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		           (st.st_mode & 07777) | 0200);
		if (out < 0)
			return sifu_err_sys(err, "creating %s", dname);
		r = copy_data(in, out);
		if (r < 0)
			return sifu_err_set(err, SIFU_E_SYS, -r, "copying %s", sname);
		if (fchmod(out, st.st_mode & 07777) < 0)
			return sifu_err_sys(err, "%s", dname);
		return 0;
	}
	if (S_ISFIFO(st.st_mode)) {
		if (mkfifoat(dstdir, dname, st.st_mode & 07777) < 0)
			return sifu_err_sys(err, "creating fifo %s", dname);
		return 0;
	}
	sifu_debug("build: skipping %s (a device or socket cannot be copied unprivileged)", sname);
	return 0;
}

int bld_copy_dir(int srcfd, int dstfd, struct sifu_err *err)
{
	_cleanup_closedir_ DIR *d = sifu_opendir_at(srcfd, ".");
	if (!d)
		return sifu_err_sys(err, "opening the source directory");
	_cleanup_close_ int dfd = openat(dstfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return sifu_err_sys(err, "opening the target directory");
	return copy_children(d, dfd, false, err);
}

/* Split PATH into its parent and last component (normalised). */
static int split_path(const char *path, char *parent, size_t plen, char *base, size_t blen)
{
	char norm[PATH_MAX];
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "/%s", path);
	int r = sifu_path_normalize(tmp, norm, sizeof(norm));
	if (r < 0)
		return r;
	char *slash = strrchr(norm, '/');
	snprintf(base, blen, "%s", slash + 1);
	*slash = 0;
	snprintf(parent, plen, "%s", norm[0] ? norm : "/");
	return 0;
}

int bld_copy_in(int srcroot, const char *src, int rootfd, const char *dst, struct sifu_err *err)
{
	/* the source: its parent directory and name */
	char sparent[PATH_MAX], sbase[NAME_MAX + 1];
	_cleanup_close_ int sdir = -1;
	if (srcroot >= 0) {
		if (split_path(src, sparent, sizeof(sparent), sbase, sizeof(sbase)) < 0 ||
		    !sbase[0])
			return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "%s: not a path to copy",
			                    src);
		sdir = sifu_path_open_in_root(srcroot, sparent, O_RDONLY | O_DIRECTORY, 0);
		if (sdir < 0)
			return sifu_err_set(err, SIFU_E_NOTFOUND, -sdir, "%s", src);
	} else {
		_cleanup_free_ char *copy = sifu_xstrdup(src);
		size_t n = strlen(copy);
		while (n > 1 && copy[n - 1] == '/')
			copy[--n] = 0;
		char *slash = strrchr(copy, '/');
		const char *dirpart = ".";
		const char *name = copy;
		if (slash) {
			*slash = 0;
			dirpart = slash == copy ? "/" : copy;
			name = slash + 1;
		}
		if (!*name || !strcmp(name, ".") || !strcmp(name, ".."))
			name = ".";
		snprintf(sbase, sizeof(sbase), "%s", name);
		sdir = open(dirpart, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sdir < 0)
			return sifu_err_sys(err, "%s", src);
	}
	struct stat st;
	if (fstatat(sdir, sbase, &st, srcroot >= 0 ? AT_SYMLINK_NOFOLLOW : 0) < 0)
		return sifu_err_sys(err, "%s", src);

	/* the destination: into it when it is a directory already, or when
	 * it ends in '/' (then it is created) */
	size_t dl = strlen(dst);
	if (dl > 1 && dst[dl - 1] == '/') {
		int p = sifu_path_mkdir_in_root(rootfd, dst, 0755);
		if (p < 0)
			return sifu_err_set(err, SIFU_E_SYS, -p, "creating %s in the container",
			                    dst);
		close(p);
	}
	_cleanup_close_ int existing =
	    sifu_path_open_in_root(rootfd, dst, O_RDONLY | O_DIRECTORY, 0);
	char dparent[PATH_MAX], dbase[NAME_MAX + 1];
	_cleanup_close_ int ddir = -1;
	const char *dname;
	if (existing >= 0) {
		ddir = TAKE_FD(existing);
		dname = sbase;
		if (!strcmp(sbase, ".")) /* "dir/." : the contents */
			return bld_copy_dir(sdir, ddir, err);
	} else {
		if (split_path(dst, dparent, sizeof(dparent), dbase, sizeof(dbase)) < 0 ||
		    !dbase[0])
			return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "%s: not a destination",
			                    dst);
		int p = sifu_path_mkdir_in_root(rootfd, dparent, 0755);
		if (p < 0)
			return sifu_err_set(err, SIFU_E_SYS, -p, "creating %s in the container",
			                    dparent);
		close(p);
		ddir = sifu_path_open_in_root(rootfd, dparent, O_RDONLY | O_DIRECTORY, 0);
		if (ddir < 0)
			return sifu_err_set(err, SIFU_E_SYS, -ddir, "opening %s in the container",
			                    dparent);
		dname = dbase;
	}
	return copy_entry(sdir, sbase, ddir, dname, srcroot < 0, err);
}

/* ------------------------------------------------------- small helpers -- */

int bld_write_file(int rootfd, const char *path, mode_t mode, const char *data,
                   struct sifu_err *err)
{
	char parent[PATH_MAX], base[NAME_MAX + 1];
	if (split_path(path, parent, sizeof(parent), base, sizeof(base)) < 0 || !base[0])
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "%s: bad path", path);
	int p = sifu_path_mkdir_in_root(rootfd, parent, 0755);
	if (p < 0)
		return sifu_err_set(err, SIFU_E_SYS, -p, "creating %s in the container", parent);
	close(p);
	_cleanup_close_ int dfd = sifu_path_open_in_root(rootfd, parent, O_RDONLY | O_DIRECTORY, 0);
	if (dfd < 0)
		return sifu_err_set(err, SIFU_E_SYS, -dfd, "opening %s in the container", parent);
	struct stat st;
	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode))
		bld_rm_tree(dfd, base);
	_cleanup_close_ int fd =
	    openat(dfd, base, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return sifu_err_sys(err, "writing %s in the container", path);
	size_t len = strlen(data);
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return sifu_err_sys(err, "writing %s in the container", path);
		}
		off += (size_t)w;
	}
	if (fchmod(fd, mode) < 0)
		return sifu_err_sys(err, "%s", path);
	return 0;
}

char *bld_read_file(int rootfd, const char *path, size_t max)
{
	_cleanup_close_ int fd = sifu_path_open_in_root(rootfd, path, O_RDONLY, 0);
	if (fd < 0)
		return NULL;
	char *buf = NULL;
	struct sifu_err err = {0};
	if (sifu_read_fd(fd, path, max, &buf, NULL, &err) < 0)
		sifu_debug("build: %s: %s", path, err.chain[0]);
	return buf;
}

bool bld_file_exists(int rootfd, const char *path)
{
	_cleanup_close_ int fd = sifu_path_open_in_root(rootfd, path, O_PATH, 0);
	return fd >= 0;
}

int bld_symlink(int rootfd, const char *target, const char *path, struct sifu_err *err)
{
	char parent[PATH_MAX], base[NAME_MAX + 1];
	if (split_path(path, parent, sizeof(parent), base, sizeof(base)) < 0 || !base[0])
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "%s: bad path", path);
	_cleanup_close_ int dfd = sifu_path_open_in_root(rootfd, parent, O_RDONLY | O_DIRECTORY, 0);
	if (dfd < 0)
		return sifu_err_set(err, SIFU_E_SYS, -dfd, "opening %s in the container", parent);
	struct stat st;
	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode))
			return 0; /* the image has its own: keep it */
		unlinkat(dfd, base, 0);
	}
	if (symlinkat(target, dfd, base) < 0)
		return sifu_err_sys(err, "creating %s in the container", path);
	return 0;
}

/* ----------------------------------------------------------- fix-perms -- */

/* NAME below DFD ("." for DFD itself) and everything below it. */
static int fix_perms_dir(int dfd, const char *name, struct sifu_err *err)
{
	_cleanup_closedir_ DIR *d = sifu_opendir_at(dfd, name);
	if (!d && !strcmp(name, "."))
		return sifu_err_sys(err, "--fix-perms");
	if (!d)
		return sifu_err_sys(err, "--fix-perms: %s", name);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISLNK(st.st_mode))
			continue;
		mode_t want = st.st_mode & 07777;
		want |= S_ISDIR(st.st_mode) ? 0700 : (st.st_mode & 0111) ? 0700 : 0600;
		if (want != (st.st_mode & 07777) && fchmodat(dirfd(d), e->d_name, want, 0) < 0)
			return sifu_err_sys(err, "--fix-perms: %s", e->d_name);
		int r = S_ISDIR(st.st_mode) ? fix_perms_dir(dirfd(d), e->d_name, err) : 0;
		if (r < 0)
			return r;
	}
	return 0;
}

int bld_fix_perms(int dirfd, struct sifu_err *err)
{
	return fix_perms_dir(dirfd, ".", err);
}

/* ------------------------------------------------------------ squashfs -- */

/* The first path seen for each inode with more than one link: open
 * addressing on (dev, ino), so a tree of N linked files costs O(N) (a60965e
 * compared each with every one before it). */
struct hl {
	dev_t dev;
	ino_t ino;
	char *path; /* NULL: a free slot */
};

struct tree_walk {
	struct sq_image *img;
	const struct bld_owners *owners;
	uid_t uid;
	gid_t gid;
	struct hl *links;
	size_t nlinks, cap;
	uint64_t probes;
};

static size_t hl_slot(const struct tree_walk *w, dev_t dev, ino_t ino)
{
	uint64_t h =
	    ((uint64_t)dev * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)ino * 0xc2b2ae3d27d4eb4full);
	return (size_t)(h ^ (h >> 31)) & (w->cap - 1);
}

/* The slot of (DEV, INO): its first path, or a free slot to put it in. */
static struct hl *hl_find(struct tree_walk *w, dev_t dev, ino_t ino)
{
	for (size_t i = hl_slot(w, dev, ino);; i = (i + 1) & (w->cap - 1)) {
		w->probes++;
		struct hl *h = &w->links[i];
		if (!h->path || (h->dev == dev && h->ino == ino))
			return h;
	}
}

static void hl_add(struct tree_walk *w, dev_t dev, ino_t ino, const char *path)
{
	if ((w->nlinks + 1) * 2 > w->cap) {
		struct hl *old = w->links;
		size_t oldcap = w->cap;
		w->cap = oldcap ? oldcap * 2 : 256;
		w->links = sifu_xcalloc(w->cap, sizeof(*w->links));
		for (size_t i = 0; i < oldcap; i++)
			if (old[i].path)
				*hl_find(w, old[i].dev, old[i].ino) = old[i];
		free(old);
	}
	*hl_find(w, dev, ino) = (struct hl){dev, ino, sifu_xstrdup(path)};
	w->nlinks++;
}

static ssize_t read_fd(void *ctx, void *buf, size_t len, struct sifu_err *err)
{
	int fd = *(int *)ctx;
	for (;;) {
		ssize_t n = read(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sifu_err_sys(err, "reading a file of the build");
		return n;
	}
}

/* Owners as stored: the caller's ids (whom every file of an unprivileged
 * build belongs to on disk) become root; others stay (a root build). */
static void owner(const struct tree_walk *w, const struct stat *st, uint32_t *uid, uint32_t *gid)
{
	*uid = st->st_uid == w->uid ? 0 : st->st_uid;
	*gid = st->st_gid == w->gid ? 0 : st->st_gid;
	bld_owners_lookup(w->owners, st->st_dev, st->st_ino, uid, gid);
}

static int open_readable(int dfd, const char *name, const struct stat *st, int flags)
{
	int fd = openat(dfd, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd >= 0 || errno != EACCES)
		return fd < 0 ? -errno : fd;
	/* a mode %post chose (0000, 0111 ...): read it anyway; the image
	 * keeps the mode from st */
	mode_t extra = S_ISDIR(st->st_mode) ? 0500 : 0400;
	if (fchmodat(dfd, name, (st->st_mode & 07777) | extra, 0) < 0)
		return -EACCES;
	fd = openat(dfd, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	int e = errno;
	fchmodat(dfd, name, st->st_mode & 07777, 0);
	return fd < 0 ? -e : fd;
}

static int walk_dir(struct tree_walk *w, int dfd, const char *prefix, struct sifu_err *err)
{
	_cleanup_closedir_ DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return sifu_err_sys(err, "reading %s", prefix[0] ? prefix : "/");
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		int r = bld_check_interrupted(err);
		if (r < 0)
			return r;
		_cleanup_free_ char *path = sifu_xasprintf("%s/%s", prefix, e->d_name);
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return sifu_err_sys(err, "%s", path);
		struct sq_entry en = {
		    .path = path, .mode = st.st_mode & 07777, .mtime = st.st_mtim.tv_sec};
		owner(w, &st, &en.uid, &en.gid);
		char target[PATH_MAX];
		if (S_ISDIR(st.st_mode)) {
			en.type = SQ_DIR;
			if ((r = sq_image_add(w->img, &en, NULL, NULL, NULL, err)) < 0)
				return r;
			int sub = open_readable(dirfd(d), e->d_name, &st, O_RDONLY | O_DIRECTORY);
			if (sub < 0)
				return sifu_err_set(err, SIFU_E_SYS, -sub, "opening %s", path);
			if ((r = walk_dir(w, sub, path, err)) < 0)
				return r;
			continue;
		}
		if (S_ISLNK(st.st_mode)) {
			ssize_t n = readlinkat(dirfd(d), e->d_name, target, sizeof(target) - 1);
			if (n < 0)
				return sifu_err_sys(err, "%s", path);
			target[n] = 0;
			en.type = SQ_SYMLINK;
			en.target = target;
			en.mode = 0777;
		} else if (S_ISREG(st.st_mode)) {
			if (st.st_nlink > 1 && w->cap) {
				struct hl *h = hl_find(w, st.st_dev, st.st_ino);
				if (h->path) {
					en.type = SQ_HARDLINK;
					en.target = h->path;
				}
			}
			if (en.type != SQ_HARDLINK) {
				_cleanup_close_ int fd =
				    open_readable(dirfd(d), e->d_name, &st, O_RDONLY);
				if (fd < 0)
					return sifu_err_set(err, SIFU_E_SYS, -fd, "opening %s",
					                    path);
				en.type = SQ_REG;
				en.size = (uint64_t)st.st_size;
				if ((r = sq_image_add(w->img, &en, read_fd, &fd, NULL, err)) < 0)
					return sifu_err_wrap(err, "%s", path);
				if (st.st_nlink > 1)
					hl_add(w, st.st_dev, st.st_ino, path);
				continue;
			}
		} else if (S_ISFIFO(st.st_mode)) {
			en.type = SQ_FIFO;
		} else if (S_ISSOCK(st.st_mode)) {
			en.type = SQ_SOCK;
		} else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
			en.type = S_ISCHR(st.st_mode) ? SQ_CHR : SQ_BLK;
			en.rdev_major = major(st.st_rdev);
			en.rdev_minor = minor(st.st_rdev);
		} else {
			continue;
		}
		if ((r = sq_image_add(w->img, &en, NULL, NULL, NULL, err)) < 0)
			return sifu_err_wrap(err, "%s", path);
	}
	return 0;
}

int bld_squash_dir(int rootfd, const struct bld_owners *owners, struct sq_image *img,
                   uint64_t *link_probes, struct sifu_err *err)
{
	struct tree_walk w = {.img = img, .owners = owners, .uid = geteuid(), .gid = getegid()};
	int dfd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return sifu_err_sys(err, "opening the build's root");
	int r = walk_dir(&w, dfd, "", err);
	for (size_t i = 0; i < w.cap; i++)
		free(w.links[i].path);
	free(w.links);
	if (link_probes)
		*link_probes = w.probes;
	return r;
}
