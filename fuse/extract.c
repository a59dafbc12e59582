/* SPDX-License-Identifier: BSD-3-Clause */
/* The no-FUSE fallback: extract the image under a directory fd.
 *
 * Safety: every entry is created relative to a directory fd that we created
 * ourselves and opened with O_NOFOLLOW; names are checked (no '/', '.' or
 * '..'); files are created O_EXCL|O_NOFOLLOW, so a symlink from the image
 * (created, never followed) cannot redirect a later write; hard links name
 * their first path through sifu_path_open_in_root.  A directory seen twice
 * (a loop or DAG in a corrupt image) is an error. */
#include "fuse_priv.h"

#include <fcntl.h>
#include <sys/stat.h>

struct xstate {
	struct sqf_image *img;
	int rootfd;
	/* directories already extracted, by inode reference */
	uint64_t *dirs;
	size_t ndirs, capdirs;
	/* hard links: inode number -> first path (relative to the root) */
	struct link {
		uint32_t inum;
		char *path;
	} * links;
	size_t nlinks, caplinks;
	uint8_t *buf;
	struct sifu_err *err;
};

static bool seen_dir(struct xstate *x, uint64_t ref)
{
	for (size_t k = 0; k < x->ndirs; k++) /* small; a set is not worth it here */
		if (x->dirs[k] == ref)
			return true;
	if (x->ndirs == x->capdirs) {
		x->capdirs = x->capdirs ? x->capdirs * 2 : 64;
		x->dirs = sifu_xrealloc(x->dirs, x->capdirs * sizeof(*x->dirs));
	}
	x->dirs[x->ndirs++] = ref;
	return false;
}

static const char *first_link(struct xstate *x, uint32_t inum)
{
	for (size_t k = 0; k < x->nlinks; k++)
		if (x->links[k].inum == inum)
			return x->links[k].path;
	return NULL;
}

static void add_link(struct xstate *x, uint32_t inum, const char *path)
{
	if (x->nlinks == x->caplinks) {
		x->caplinks = x->caplinks ? x->caplinks * 2 : 64;
		x->links = sifu_xrealloc(x->links, x->caplinks * sizeof(*x->links));
	}
	x->links[x->nlinks].inum = inum;
	x->links[x->nlinks].path = sifu_xstrdup(path);
	x->nlinks++;
}

static int set_times(int dirfd, const char *name, time_t t)
{
	struct timespec ts[2] = {{t, 0}, {t, 0}};
	return utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW);
}

static int write_file(struct xstate *x, int dirfd, const char *name, const char *path,
                      const sqfs_inode_generic_t *ino, const struct stat *st)
{
	_cleanup_close_ int fd =
	    openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return sifu_err_sys(x->err, "cannot create %s", path);
	uint64_t bs = x->img->super.block_size;
	for (uint64_t off = 0; off < (uint64_t)st->st_size; off += bs) {
		ssize_t n = sqf_read(x->img, ino, off, x->buf, bs);
		if (n <= 0)
			return sifu_err_set(x->err, SIFU_E_CORRUPT, n < 0 ? (int)-n : EIO,
			                    "cannot read %s from the image", path);
		bool zero = true; /* keep holes holes */
		for (ssize_t k = 0; k < n && zero; k++)
			zero = x->buf[k] == 0;
		if (zero)
			continue;
		for (ssize_t done = 0; done < n;) {
			ssize_t w =
			    pwrite(fd, x->buf + done, (size_t)(n - done), (off_t)off + done);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return sifu_err_sys(x->err, "cannot write %s", path);
			done += w;
		}
	}
	if (ftruncate(fd, st->st_size) < 0)
		return sifu_err_sys(x->err, "cannot write %s", path);
	/* no set-id bits for files the user now owns */
	if (fchmod(fd, (st->st_mode & 0777) | S_IRUSR | S_IWUSR) < 0)
		return sifu_err_sys(x->err, "cannot chmod %s", path);
	return 0;
}

static int extract_dir(struct xstate *x, uint64_t ref, int dirfd, const char *path, unsigned depth);

static int extract_entry(struct xstate *x, int dirfd, const char *path, const struct sqf_dirent *de,
                         unsigned depth)
{
	sqfs_inode_generic_t *ino;
	int r = sqf_inode_read(x->img, de->ref, &ino);
	if (r < 0)
		return sifu_err_set(x->err, SIFU_E_CORRUPT, -r, "cannot read the inode of %s",
		                    path);
	struct stat st;
	if ((r = sqf_inode_stat(x->img, ino, &st)) < 0) {
		sqfs_free(ino);
		return sifu_err_set(x->err, SIFU_E_CORRUPT, -r, "cannot read the inode of %s",
		                    path);
	}
	const char *name = de->name;
	switch (st.st_mode & S_IFMT) {
	case S_IFDIR: {
		if (mkdirat(dirfd, name, 0700) < 0) {
			r = sifu_err_sys(x->err, "cannot create %s", path);
			break;
		}
		_cleanup_close_ int sub =
		    openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0) {
			r = sifu_err_sys(x->err, "cannot open %s", path);
			break;
		}
		if ((r = extract_dir(x, de->ref, sub, path, depth + 1)) < 0)
			break;
		if (fchmod(sub, (st.st_mode & 01777) | S_IRWXU) < 0)
			r = sifu_err_sys(x->err, "cannot chmod %s", path);
		break;
	}
	case S_IFREG: {
		const char *first = st.st_nlink > 1 ? first_link(x, (uint32_t)st.st_ino) : NULL;
		if (first) {
			/* the first path's parent, resolved inside the root */
			_cleanup_free_ char *parent = sifu_xstrdup(first);
			char *slash = strrchr(parent, '/');
			const char *base = slash ? slash + 1 : parent;
			if (slash)
				*slash = 0;
			_cleanup_close_ int pfd = sifu_path_open_in_root(
			    x->rootfd, slash ? parent : ".", O_PATH | O_DIRECTORY, 0);
			if (pfd < 0 || linkat(pfd, base, dirfd, name, 0) < 0)
				r = sifu_err_sys(x->err, "cannot hard-link %s", path);
			break;
		}
		r = write_file(x, dirfd, name, path, ino, &st);
		if (r == 0 && st.st_nlink > 1)
			add_link(x, (uint32_t)st.st_ino, path);
		break;
	}
	case S_IFLNK: {
		_cleanup_free_ char *target = NULL;
		if ((r = sqf_readlink(ino, &target)) < 0)
			r = sifu_err_set(x->err, SIFU_E_CORRUPT, -r, "bad symlink %s", path);
		else if (symlinkat(target, dirfd, name) < 0)
			r = sifu_err_sys(x->err, "cannot create symlink %s", path);
		break;
	}
	case S_IFIFO:
		if (mkfifoat(dirfd, name, st.st_mode & 0777) < 0)
			r = sifu_err_sys(x->err, "cannot create fifo %s", path);
		break;
	default:
		/* device nodes and sockets need privileges we never have */
		sqfs_free(ino);
		return 0;
	}
	sqfs_free(ino);
	if (r == 0)
		set_times(dirfd, name, st.st_mtime);
	return r;
}

static int extract_dir(struct xstate *x, uint64_t ref, int dirfd, const char *path, unsigned depth)
{
	if (depth > 4096 || seen_dir(x, ref))
		return sifu_err_set(x->err, SIFU_E_CORRUPT, ELOOP,
		                    "directory loop at %s (corrupt image)", path[0] ? path : "/");
	struct sqf_dir *d;
	int r = sqf_dir_get(x->img, ref, &d);
	if (r < 0)
		return sifu_err_set(x->err, SIFU_E_CORRUPT, -r, "cannot list %s",
		                    path[0] ? path : "/");
	for (size_t k = 0; k < d->n && r == 0; k++) {
		const struct sqf_dirent *de = &d->ents[k];
		_cleanup_free_ char *sub =
		    path[0] ? sifu_xasprintf("%s/%s", path, de->name) : sifu_xstrdup(de->name);
		r = extract_entry(x, dirfd, sub, de, depth);
	}
	sqf_dir_put(x->img, d);
	return r;
}

int sqf_extract(struct sqf_image *img, int dirfd, struct sifu_err *err)
{
	struct xstate x = {.img = img, .rootfd = dirfd, .err = err};
	x.buf = sifu_xmalloc(img->super.block_size);
	int r = extract_dir(&x, sqf_root_ref(img), dirfd, "", 0);
	free(x.buf);
	free(x.dirs);
	for (size_t k = 0; k < x.nlinks; k++)
		free(x.links[k].path);
	free(x.links);
	if (r < 0)
		return r;
	sqfs_inode_generic_t *root;
	struct stat st;
	if (sqf_inode_read(img, sqf_root_ref(img), &root) == 0) {
		if (sqf_inode_stat(img, root, &st) == 0) {
			if (fchmod(dirfd, (st.st_mode & 01777) | S_IRWXU) < 0)
				sifu_debug("fuse: cannot chmod the extraction root: %s",
				           strerror(errno));
			struct timespec ts[2] = {{st.st_mtime, 0}, {st.st_mtime, 0}};
			futimens(dirfd, ts);
		}
		sqfs_free(root);
	}
	return 0;
}
