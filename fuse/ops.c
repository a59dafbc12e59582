/* SPDX-License-Identifier: BSD-3-Clause */
/* The FUSE low-level operations, and the table of files being read.
 *
 * Node ids are SquashFS inode references (+2, the root is FUSE_ROOT_ID): an
 * image never changes, so an id needs no table, forget is a no-op, and hard
 * links share one node.  Everything is cached by the kernel for as long as
 * the mount lives (timeouts of a year, keep_cache, cached symlinks and
 * readdir, negative entries). */
#define FUSE_USE_VERSION 314
#include "fuse_priv.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <sys/statvfs.h>

#define FOREVER (365.0 * 24 * 3600)

static inline struct sqf_server *server_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static inline struct sqf_image *image_of(fuse_req_t req)
{
	return server_of(req)->img;
}

static uint64_t to_ref(struct sqf_image *img, fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? sqf_root_ref(img) : (uint64_t)ino - 2;
}

static fuse_ino_t to_ino(struct sqf_image *img, uint64_t ref)
{
	return ref == sqf_root_ref(img) ? FUSE_ROOT_ID : (fuse_ino_t)(ref + 2);
}

static int get_inode(fuse_req_t req, fuse_ino_t ino, sqfs_inode_generic_t **out)
{
	return sqf_inode_read(image_of(req), to_ref(image_of(req), ino), out);
}

static int fill_entry(struct sqf_image *img, uint64_t ref, struct fuse_entry_param *e)
{
	sqfs_inode_generic_t *ino;
	memset(e, 0, sizeof(*e));
	int r = sqf_inode_read(img, ref, &ino);
	if (r < 0)
		return r;
	r = sqf_inode_stat(img, ino, &e->attr);
	sqfs_free(ino);
	if (r < 0)
		return r;
	e->ino = to_ino(img, ref);
	e->generation = 1;
	e->attr_timeout = FOREVER;
	e->entry_timeout = FOREVER;
	return 0;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct sqf_server *srv = userdata;
	/* Nothing to do at open on an immutable image: where the kernel can,
	 * it opens files and directories without asking us (and keeps their
	 * page cache), which saves two round trips per open. */
	srv->no_open = conn->capable & FUSE_CAP_NO_OPEN_SUPPORT;
	srv->no_opendir = conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT;
	/* An immutable image: cache everything, always readdirplus. */
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
	conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	conn->max_readahead = conn->max_readahead > (1u << 20) ? conn->max_readahead : (1u << 20);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct sqf_image *img = image_of(req);
	uint64_t ref;
	struct fuse_entry_param e;
	int r = sqf_lookup(img, to_ref(img, parent), name, &ref);
	if (r == -ENOENT) {
		/* a negative entry the kernel may keep: the image never changes */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = FOREVER;
		fuse_reply_entry(req, &e);
		return;
	}
	if (r == 0)
		r = fill_entry(img, ref, &e);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	sqfs_inode_generic_t *i;
	struct stat st;
	int r = get_inode(req, ino, &i);
	if (r == 0) {
		r = sqf_inode_stat(image_of(req), i, &st);
		sqfs_free(i);
	}
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, FOREVER);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	sqfs_inode_generic_t *i;
	char *target = NULL;
	int r = get_inode(req, ino, &i);
	if (r == 0) {
		r = sqf_readlink(i, &target);
		sqfs_free(i);
	}
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_readlink(req, target);
	free(target);
}

static void fnode_free(struct fnode *f)
{
	sqfs_free(f->ino);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static void fnode_put(struct sqf_server *srv, struct fnode *f)
{
	pthread_mutex_lock(&srv->flock);
	bool last = --f->refs == 0;
	pthread_mutex_unlock(&srv->flock);
	if (last)
		fnode_free(f);
}

/* The file node of ID, referenced; decoded and entered in the table on a
 * miss (a colliding entry is replaced: it only costs a decode later). */
static int fnode_get(struct sqf_server *srv, fuse_ino_t id, struct fnode **out)
{
	struct fnode **slot = &srv->fnodes[(id * 0x9E3779B97F4A7C15ull >> 32) % SQF_FNODE_SLOTS];
	pthread_mutex_lock(&srv->flock);
	struct fnode *f = *slot;
	if (f && f->id == id) {
		f->refs++;
		pthread_mutex_unlock(&srv->flock);
		*out = f;
		return 0;
	}
	pthread_mutex_unlock(&srv->flock);
	sqfs_inode_generic_t *i;
	int r = sqf_inode_read(srv->img, to_ref(srv->img, id), &i);
	if (r < 0)
		return r;
	if (!sqf_inode_is_file(i)) {
		sqfs_free(i);
		return -EISDIR;
	}
	f = sifu_xcalloc(1, sizeof(*f));
	f->id = id;
	f->ino = i;
	f->refs = 2; /* the caller's and the table's */
	pthread_mutex_init(&f->lock, NULL);
	struct fnode *old = NULL;
	pthread_mutex_lock(&srv->flock);
	if (*slot && (*slot)->id == id) {
		/* another thread entered it meanwhile: use that one */
		old = f;
		f = *slot;
		f->refs++;
		old->refs = 1;
	} else {
		old = *slot;
		*slot = f;
	}
	bool drop = old && --old->refs == 0;
	pthread_mutex_unlock(&srv->flock);
	if (drop)
		fnode_free(old);
	*out = f;
	return 0;
}
/* Answer an open with handle H: the kernel keeps the file's (or the
 * listing's) cache, a directory's listing included.  False when the kernel
 * did not take the reply (the caller drops H). */
static bool reply_open(fuse_req_t req, struct fuse_file_info *fi, void *h, bool dir)
{
	fi->fh = (uintptr_t)h;
	fi->keep_cache = 1;
	if (dir)
		fi->cache_readdir = 1;
	else
		fi->noflush = 1;
	return fuse_reply_open(req, fi) == 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sqf_server *srv = server_of(req);
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (srv->no_open) {
		fuse_reply_err(req, ENOSYS); /* "opened, never ask again" */
		return;
	}
	struct fnode *f;
	int r = fnode_get(srv, ino, &f);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (!reply_open(req, fi, f, false))
		fnode_put(srv, f);
}

/* Sequential detection with a growing window: a read that starts where the
 * last one ended doubles the window (up to readahead_max) and queues the
 * stored blocks behind it; anything else resets it.  The kernel's own
 * read-ahead stops at 128 KiB on unprivileged mounts, so this is where
 * streaming from slow storage gets its depth. */
static void file_readahead(struct sqf_image *img, struct fnode *of, uint64_t off, size_t size)
{
	uint64_t max = img->opt.readahead_max;
	if (max == 0)
		return;
	uint64_t chunk = sqf_chunkcache_chunk_size(img->chunks);
	uint64_t from = 0, len = 0;
	pthread_mutex_lock(&of->lock);
	uint64_t end = off + size;
	if (off == of->next || (off < of->next && end > of->next)) {
		of->window = of->window ? of->window * 2 : chunk;
		if (of->window > max)
			of->window = max;
		uint64_t target = end + of->window;
		from = of->ahead > end ? of->ahead : end;
		if (target > from) {
			len = target - from;
			of->ahead = target;
		}
	} else if (off != 0 || of->next != 0) {
		of->window = 0;
		of->ahead = end;
	}
	if (end > of->next)
		of->next = end;
	pthread_mutex_unlock(&of->lock);
	if (len)
		sqf_readahead(img, of->ino, from, len);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	struct sqf_server *srv = server_of(req);
	struct sqf_image *img = srv->img;
	struct fnode *of = (struct fnode *)(uintptr_t)fi->fh;
	bool borrowed = false;
	if (!of) {
		int r = fnode_get(srv, ino, &of);
		if (r < 0) {
			fuse_reply_err(req, -r);
			return;
		}
		borrowed = true;
	}
	file_readahead(img, of, (uint64_t)off, size);
	/* the common case, a read inside one block: reply from the shared
	 * decompressed copy, no copy of our own */
	const void *p;
	void *h;
	ssize_t n = sqf_read_direct(img, of->ino, (uint64_t)off, size, &p, &h);
	if (n > 0) {
		fuse_reply_buf(req, p, (size_t)n);
		sqf_read_release(img, h);
	} else if (n < 0) {
		fuse_reply_err(req, (int)-n);
	} else {
		void *buf = malloc(size ? size : 1);
		n = buf ? sqf_read(img, of->ino, (uint64_t)off, buf, size) : -ENOMEM;
		if (n < 0)
			fuse_reply_err(req, (int)-n);
		else
			fuse_reply_buf(req, buf, (size_t)n);
		free(buf);
	}
	if (n >= 0)
		sqf_preload_maybe(srv, ino, of, (uint64_t)off, size);
	if (borrowed)
		fnode_put(srv, of);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fnode *f = (struct fnode *)(uintptr_t)fi->fh;
	if (f)
		fnode_put(server_of(req), f);
	fuse_reply_err(req, 0);
}
static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (server_of(req)->no_opendir) {
		fuse_reply_err(req, ENOSYS); /* opened, listing cached by the kernel */
		return;
	}
	struct sqf_dir *d;
	int r = sqf_dir_get(image_of(req), to_ref(image_of(req), ino), &d);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (!reply_open(req, fi, d, true))
		sqf_dir_put(image_of(req), d);
}

static mode_t dirent_mode(uint16_t type)
{
	static const mode_t fmt[] = {0,       S_IFDIR, S_IFREG, S_IFLNK,
	                             S_IFBLK, S_IFCHR, S_IFIFO, S_IFSOCK};
	return type < 8 ? fmt[type] : 0;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi, bool plus)
{
	struct sqf_image *img = image_of(req);
	struct sqf_dir *d = (struct sqf_dir *)(uintptr_t)fi->fh;
	bool borrowed = !d;
	if (borrowed) {
		/* zero-message opendir: the listing comes from the dir cache */
		int r = sqf_dir_get(img, to_ref(img, ino), &d);
		if (r < 0) {
			fuse_reply_err(req, -r);
			return;
		}
	}
	char *buf = malloc(size);
	if (!buf) {
		if (borrowed)
			sqf_dir_put(img, d);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t used = 0;
	/* offsets: 0 ".", 1 "..", k+2 the k-th entry; the cookie of an entry
	 * is the offset of the next one */
	for (uint64_t pos = (uint64_t)off; pos < d->n + 2; pos++) {
		char name[260];
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		if (pos < 2) {
			memcpy(name, pos ? ".." : ".", pos ? 3 : 2);
			e.attr.st_mode = S_IFDIR;
			e.attr.st_ino = 1; /* 0 would hide it: readdir(3) skips d_ino 0 */
		} else {
			const struct sqf_dirent *de = &d->ents[pos - 2];
			memcpy(name, de->name, de->namelen + 1u);
			if (plus) {
				int r = fill_entry(img, de->ref, &e);
				if (r < 0) {
					/* a broken inode: list the name, let lookup fail */
					memset(&e, 0, sizeof(e));
					e.attr.st_mode = dirent_mode(de->type);
					e.attr.st_ino = de->inum;
				}
			} else {
				e.attr.st_mode = dirent_mode(de->type);
				e.attr.st_ino = de->inum;
			}
		}
		size_t n = plus ? fuse_add_direntry_plus(req, buf + used, size - used, name, &e,
		                                         (off_t)pos + 1)
		                : fuse_add_direntry(req, buf + used, size - used, name, &e.attr,
		                                    (off_t)pos + 1);
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
	if (borrowed)
		sqf_dir_put(img, d);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fi->fh)
		sqf_dir_put(image_of(req), (struct sqf_dir *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct sqf_image *img = image_of(req);
	struct statvfs sv;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = sv.f_frsize = img->super.block_size;
	sv.f_blocks = (img->super.bytes_used + img->super.block_size - 1) / img->super.block_size;
	sv.f_files = img->super.inode_count;
	sv.f_namemax = 256;
	sv.f_flag = ST_RDONLY;
	fuse_reply_statfs(req, &sv);
}

/* An image without extended attributes: ENOSYS tells the kernel never to
 * ask again (it asks for security.capability at every exec and write). */
static bool no_xattrs(fuse_req_t req)
{
	if (image_of(req)->has_xattr)
		return false;
	fuse_reply_err(req, ENOSYS);
	return true;
}

/* getxattr (NAME) or listxattr (NAME NULL); SIZE 0 asks for the size. */
static void xattr_op(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	if (no_xattrs(req))
		return;
	sqfs_inode_generic_t *i;
	int r = get_inode(req, ino, &i);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	char *buf = size ? malloc(size) : NULL;
	ssize_t n = size && !buf ? -ENOMEM
	            : name       ? sqf_getxattr(image_of(req), i, name, buf, size)
	                         : sqf_listxattr(image_of(req), i, buf, size);
	sqfs_free(i);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	xattr_op(req, ino, name, size);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	xattr_op(req, ino, NULL, size);
}

/* Nothing to flush on a read-only file system; ENOSYS: never ask again. */
static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, ENOSYS);
}

const struct fuse_lowlevel_ops sqf_fuse_ops = {
    .flush = op_flush,
    .init = op_init,
    .lookup = op_lookup,
    .getattr = op_getattr,
    .readlink = op_readlink,
    .open = op_open,
    .read = op_read,
    .release = op_release,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .statfs = op_statfs,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
};

/* At the end: no reader is left. */
void sqf_fnodes_free(struct sqf_server *srv)
{
	for (unsigned i = 0; i < SQF_FNODE_SLOTS; i++)
		if (srv->fnodes[i])
			fnode_free(srv->fnodes[i]);
}
