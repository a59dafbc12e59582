/* SPDX-License-Identifier: BSD-3-Clause */
/* The FUSE low-level operations of an ext image, on libext2fs.
 *
 * Node ids are ext inode numbers (the root, inode 2, is FUSE_ROOT_ID): an
 * inode number is stable for the life of the mount, so forget needs no
 * table.  Every request runs under the file system's one lock.  File data
 * goes through an ext2_file_t opened for the one request and closed before
 * the reply: a handle kept open across requests holds its own copy of the
 * inode and would write it back over a chmod or a truncate made meanwhile.
 * The kernel checks permissions (default_permissions); what a request may
 * do here is what the file system allows. */
#define FUSE_USE_VERSION 314
#include "ext_priv.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>

/* Only we change the file system, through the kernel, which updates its
 * caches as it goes: a short timeout is only a safety margin. */
#define TIMEOUT 1.0

typedef struct ext2_inode_large inode_t;

int sqf_ext_errno(errcode_t e)
{
	if (!e)
		return 0;
	if (e > 0 && e < 256)
		return (int)e; /* unix_io passes errno through */
	switch (e) {
	case EXT2_ET_NO_MEMORY: return ENOMEM;
	case EXT2_ET_BLOCK_ALLOC_FAIL:
	case EXT2_ET_INODE_ALLOC_FAIL:
	case EXT2_ET_DIR_NO_SPACE:
	case EXT2_ET_EA_NO_SPACE:
	case EXT2_ET_TOOSMALL: return ENOSPC;
	case EXT2_ET_EA_KEY_NOT_FOUND: return ENODATA;
	case EXT2_ET_RO_FILSYS: return EROFS;
	case EXT2_ET_FILE_NOT_FOUND: return ENOENT;
	case EXT2_ET_DIR_EXISTS: return EEXIST;
	case EXT2_ET_NO_DIRECTORY: return ENOTDIR;
	case EXT2_ET_FILE_TOO_BIG: return EFBIG;
	case EXT2_ET_DIR_NO_SPACE_FOR_CSUM: return ENOSPC;
	case EXT2_ET_EA_BAD_NAME_LEN:
	case EXT2_ET_EA_BAD_VALUE_SIZE: return ERANGE;
	default: return EIO;
	}
}

static inline struct sqf_ext *ext_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static ext2_ino_t to_ext(fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? EXT2_ROOT_INO : (ext2_ino_t)ino;
}

static fuse_ino_t to_fuse(ext2_ino_t ino)
{
	return ino == EXT2_ROOT_INO ? FUSE_ROOT_ID : (fuse_ino_t)ino;
}

static int read_inode(struct sqf_ext *x, ext2_ino_t ino, inode_t *in)
{
	memset(in, 0, sizeof(*in));
	errcode_t e = ext2fs_read_inode_full(x->fs, ino, (struct ext2_inode *)in, sizeof(*in));
	return e ? -sqf_ext_errno(e) : 0;
}

static int write_inode(struct sqf_ext *x, ext2_ino_t ino, inode_t *in)
{
	errcode_t e = ext2fs_write_inode_full(x->fs, ino, (struct ext2_inode *)in, sizeof(*in));
	return e ? -sqf_ext_errno(e) : 0;
}

/* Whether the large inode's extra area holds FIELD. */
#define HAS_EXTRA(x, in, field)                                        \
	(EXT2_INODE_SIZE((x)->fs->super) > EXT2_GOOD_OLD_INODE_SIZE && \
	 (size_t)(EXT2_GOOD_OLD_INODE_SIZE + (in)->i_extra_isize) >=   \
	     offsetof(inode_t, field) + sizeof((in)->field))

/* Seconds in the base field; nanoseconds and the epoch bits (0: the
 * seconds fit 32 bits until 2106 as unsigned) in the extra one. */
#define SET_TIME(x, in, base, extra, ts)                                                        \
	do {                                                                                    \
		(in)->base = (__u32)(ts).tv_sec;                                                \
		if (HAS_EXTRA(x, in, extra))                                                    \
			(in)->extra =                                                           \
			    ((__u32)(ts).tv_nsec << 2) |                                        \
			    (__u32)((((uint64_t)(ts).tv_sec - (int32_t)(in)->base) >> 32) & 3); \
	} while (0)

#define GET_TIME(x, in, base, extra, out)                                 \
	do {                                                              \
		(out).tv_sec = (int32_t)(in)->base;                       \
		(out).tv_nsec = 0;                                        \
		if (HAS_EXTRA(x, in, extra)) {                            \
			(out).tv_sec += (int64_t)((in)->extra & 3) << 32; \
			(out).tv_nsec = (in)->extra >> 2;                 \
		}                                                         \
	} while (0)

static struct timespec now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts;
}

static void touch(struct sqf_ext *x, inode_t *in, bool mtime)
{
	struct timespec t = now();
	SET_TIME(x, in, i_ctime, i_ctime_extra, t);
	if (mtime)
		SET_TIME(x, in, i_mtime, i_mtime_extra, t);
}

static dev_t get_rdev(const inode_t *in)
{
	/* old encoding in i_block[0] (8-bit major and minor), new in [1] */
	if (in->i_block[0])
		return makedev((in->i_block[0] >> 8) & 255, in->i_block[0] & 255);
	__u32 v = in->i_block[1];
	return makedev((v & 0xfff00) >> 8, (v & 0xff) | ((v >> 12) & 0xfff00));
}

static void set_rdev(struct ext2_inode *in, dev_t d)
{
	unsigned ma = major(d), mi = minor(d);
	in->i_block[0] = in->i_block[1] = 0;
	if (ma < 256 && mi < 256)
		in->i_block[0] = ma << 8 | mi;
	else
		in->i_block[1] = (mi & 0xff) | (ma << 8) | ((mi & ~0xffu) << 12);
}

static void to_stat(struct sqf_ext *x, ext2_ino_t ino, const inode_t *in, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = in->i_mode;
	st->st_nlink = in->i_links_count;
	st->st_uid = inode_uid(*in);
	st->st_gid = inode_gid(*in);
	st->st_size = (off_t)EXT2_I_SIZE(in);
	st->st_blksize = x->fs->blocksize;
	st->st_blocks = (blkcnt_t)ext2fs_get_stat_i_blocks(x->fs, (struct ext2_inode *)in);
	if (S_ISCHR(in->i_mode) || S_ISBLK(in->i_mode))
		st->st_rdev = get_rdev(in);
	GET_TIME(x, in, i_atime, i_atime_extra, st->st_atim);
	GET_TIME(x, in, i_mtime, i_mtime_extra, st->st_mtim);
	GET_TIME(x, in, i_ctime, i_ctime_extra, st->st_ctim);
}

static int fill_entry(struct sqf_ext *x, ext2_ino_t ino, struct fuse_entry_param *e)
{
	inode_t in;
	memset(e, 0, sizeof(*e));
	int r = read_inode(x, ino, &in);
	if (r < 0)
		return r;
	to_stat(x, ino, &in, &e->attr);
	e->ino = to_fuse(ino);
	e->generation = in.i_generation;
	e->attr_timeout = TIMEOUT;
	e->entry_timeout = TIMEOUT;
	return 0;
}

static int lookup_name(struct sqf_ext *x, ext2_ino_t dir, const char *name, ext2_ino_t *ino)
{
	size_t n = strlen(name);
	if (n > EXT2_NAME_LEN)
		return -ENAMETOOLONG;
	errcode_t e = ext2fs_lookup(x->fs, dir, name, (int)n, NULL, ino);
	if (e == EXT2_ET_FILE_NOT_FOUND)
		return -ENOENT;
	return e ? -sqf_ext_errno(e) : 0;
}

/* ------------------------------------------------- open inodes (orphans) -- */

static struct ext_open *open_find(struct sqf_ext *x, ext2_ino_t ino)
{
	for (size_t i = 0; i < x->nopens; i++)
		if (x->opens[i].ino == ino)
			return &x->opens[i];
	return NULL;
}

static void open_get(struct sqf_ext *x, ext2_ino_t ino)
{
	struct ext_open *o = open_find(x, ino);
	if (!o) {
		if (x->nopens == x->capopens) {
			x->capopens = x->capopens ? 2 * x->capopens : 16;
			x->opens = sifu_xrealloc(x->opens, x->capopens * sizeof(*x->opens));
		}
		o = &x->opens[x->nopens++];
		*o = (struct ext_open){.ino = ino};
	}
	o->count++;
}

/* Free INO's blocks, xattrs and the inode itself (it has no links). */
static int free_inode(struct sqf_ext *x, ext2_ino_t ino, inode_t *in)
{
	errcode_t e = 0;
	if (ext2fs_inode_has_valid_blocks2(x->fs, (struct ext2_inode *)in))
		e = ext2fs_punch(x->fs, ino, (struct ext2_inode *)in, NULL, 0, ~0ULL);
	if (!e)
		e = ext2fs_free_ext_attr(x->fs, ino, in);
	if (e)
		return -sqf_ext_errno(e);
	struct timespec t = now();
	in->i_dtime = (__u32)t.tv_sec;
	in->i_links_count = 0;
	int r = write_inode(x, ino, in);
	if (r < 0)
		return r;
	ext2fs_inode_alloc_stats2(x->fs, ino, -1, LINUX_S_ISDIR(in->i_mode));
	return 0;
}

static void open_put(struct sqf_ext *x, ext2_ino_t ino)
{
	struct ext_open *o = open_find(x, ino);
	if (!o || --o->count)
		return;
	*o = x->opens[--x->nopens];
	inode_t in;
	if (read_inode(x, ino, &in) == 0 && in.i_links_count == 0 && !in.i_dtime)
		free_inode(x, ino, &in);
}

void sqf_ext_release_all(struct sqf_ext *x)
{
	while (x->nopens) {
		x->opens[0].count = 1;
		open_put(x, x->opens[0].ino);
	}
}

/* One link of INO fewer (a directory entry naming it was removed); with
 * none left it is freed now, or at its last release when open. */
static int drop_link(struct sqf_ext *x, ext2_ino_t ino, bool dir)
{
	inode_t in;
	int r = read_inode(x, ino, &in);
	if (r < 0)
		return r;
	/* a directory's own "." is its second link, gone with it */
	if (dir || in.i_links_count <= 1)
		in.i_links_count = 0;
	else
		in.i_links_count--;
	touch(x, &in, false);
	if (in.i_links_count || open_find(x, ino))
		return write_inode(x, ino, &in);
	return free_inode(x, ino, &in);
}

/* Add N (+1 or -1) to directory DIR's link count (a subdirectory's ".."). */
static int dir_links(struct sqf_ext *x, ext2_ino_t dir, int n)
{
	inode_t in;
	int r = read_inode(x, dir, &in);
	if (r < 0)
		return r;
	/* a count of 1 means "too many to count" (dir_nlink): leave it */
	if (in.i_links_count != 1 || n > 0)
		in.i_links_count = (__u16)(in.i_links_count + n);
	touch(x, &in, true);
	return write_inode(x, dir, &in);
}

static int ftype_of(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return EXT2_FT_REG_FILE;
	case S_IFDIR: return EXT2_FT_DIR;
	case S_IFLNK: return EXT2_FT_SYMLINK;
	case S_IFCHR: return EXT2_FT_CHRDEV;
	case S_IFBLK: return EXT2_FT_BLKDEV;
	case S_IFIFO: return EXT2_FT_FIFO;
	case S_IFSOCK: return EXT2_FT_SOCK;
	default: return EXT2_FT_UNKNOWN;
	}
}

/* Name INO as NAME in DIR, growing the directory when it is full. */
static int add_link(struct sqf_ext *x, ext2_ino_t dir, const char *name, ext2_ino_t ino,
                    mode_t mode)
{
	if (strlen(name) > EXT2_NAME_LEN)
		return -ENAMETOOLONG;
	errcode_t e = ext2fs_link(x->fs, dir, name, ino, ftype_of(mode));
	if (e == EXT2_ET_DIR_NO_SPACE) {
		e = ext2fs_expand_dir(x->fs, dir);
		if (!e)
			e = ext2fs_link(x->fs, dir, name, ino, ftype_of(mode));
	}
	return e ? -sqf_ext_errno(e) : 0;
}

/* Owner of a new inode: the caller, the group of a setgid directory. */
static void new_owner(fuse_req_t req, const inode_t *parent, struct ext2_inode *in)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	uid_t uid = c->uid;
	gid_t gid = c->gid;
	if (parent->i_mode & S_ISGID) {
		gid = inode_gid(*parent);
		if (S_ISDIR(in->i_mode))
			in->i_mode |= S_ISGID;
	}
	in->i_uid = (__u16)uid;
	ext2fs_set_i_uid_high(*in, uid >> 16);
	in->i_gid = (__u16)gid;
	ext2fs_set_i_gid_high(*in, gid >> 16);
}

/* A new inode of MODE (not a directory) named NAME in DIR. */
static int make_node(fuse_req_t req, ext2_ino_t dir, const char *name, mode_t mode, dev_t rdev,
                     ext2_ino_t *out)
{
	struct sqf_ext *x = ext_of(req);
	inode_t parent;
	int r = read_inode(x, dir, &parent);
	if (r < 0)
		return r;
	ext2_ino_t ino;
	errcode_t e = ext2fs_new_inode(x->fs, dir, (int)mode, NULL, &ino);
	if (e)
		return -sqf_ext_errno(e);
	struct ext2_inode in = {0};
	in.i_mode = (__u16)mode;
	in.i_links_count = 1;
	new_owner(req, &parent, &in);
	struct timespec t = now();
	in.i_atime = in.i_mtime = in.i_ctime = (__u32)t.tv_sec;
	if (S_ISCHR(mode) || S_ISBLK(mode))
		set_rdev(&in, rdev);
	else if (S_ISREG(mode) && ext2fs_has_feature_extents(x->fs->super)) {
		in.i_flags |= EXT4_EXTENTS_FL;
		ext2_extent_handle_t h;
		/* writes the empty extent tree header into i_block */
		if (!ext2fs_extent_open2(x->fs, ino, &in, &h))
			ext2fs_extent_free(h);
	}
	/* the small struct: libext2fs fills the extra area of a large inode
	 * (i_extra_isize, creation time) as it writes a new one */
	if ((e = ext2fs_write_new_inode(x->fs, ino, &in)))
		return -sqf_ext_errno(e);
	if ((r = add_link(x, dir, name, ino, mode)) < 0)
		return r;
	ext2fs_inode_alloc_stats2(x->fs, ino, +1, 0);
	if ((r = dir_links(x, dir, 0)) < 0) /* the parent's mtime */
		return r;
	*out = ino;
	return 0;
}

/* ---------------------------------------------------------- operations -- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	/* no writeback cache: every write reaches the image in order */
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_EXPORT_SUPPORT)
		conn->want |= FUSE_CAP_EXPORT_SUPPORT;
}

#define LOCKED(req, x)                   \
	struct sqf_ext *x = ext_of(req); \
	pthread_mutex_lock(&x->lock)
#define UNLOCK(x) pthread_mutex_unlock(&(x)->lock)

/* Refuse a change of a read-only image. */
#define WRITABLE(req, x)                            \
	do {                                        \
		if (!(x)->writable) {               \
			UNLOCK(x);                  \
			fuse_reply_err(req, EROFS); \
			return;                     \
		}                                   \
	} while (0)

static void reply_entry(fuse_req_t req, struct sqf_ext *x, ext2_ino_t ino, int r)
{
	struct fuse_entry_param e;
	if (r == 0)
		r = fill_entry(x, ino, &e);
	UNLOCK(x);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, &e);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	LOCKED(req, x);
	ext2_ino_t ino = 0;
	int r = lookup_name(x, to_ext(parent), name, &ino);
	reply_entry(req, x, ino, r);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	LOCKED(req, x);
	inode_t in;
	struct stat st;
	int r = read_inode(x, to_ext(ino), &in);
	if (r == 0)
		to_stat(x, to_ext(ino), &in, &st);
	UNLOCK(x);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, TIMEOUT);
}

static int set_size(struct sqf_ext *x, ext2_ino_t ino, uint64_t size)
{
	ext2_file_t f;
	errcode_t e = ext2fs_file_open(x->fs, ino, EXT2_FILE_WRITE, &f);
	if (e)
		return -sqf_ext_errno(e);
	e = ext2fs_file_set_size2(f, size);
	errcode_t c = ext2fs_file_close(f);
	return e || c ? -sqf_ext_errno(e ? e : c) : 0;
}

static void op_setattr(fuse_req_t req, fuse_ino_t fino, struct stat *a, int to_set,
                       struct fuse_file_info *fi)
{
	LOCKED(req, x);
	WRITABLE(req, x);
	ext2_ino_t ino = to_ext(fino);
	inode_t in;
	int r = 0;
	if (to_set & FUSE_SET_ATTR_SIZE) {
		r = read_inode(x, ino, &in);
		if (r == 0 && S_ISDIR(in.i_mode))
			r = -EISDIR;
		if (r == 0)
			r = set_size(x, ino, (uint64_t)a->st_size);
	}
	if (r == 0)
		r = read_inode(x, ino, &in);
	if (r == 0) {
		if (to_set & FUSE_SET_ATTR_MODE)
			in.i_mode = (__u16)((in.i_mode & S_IFMT) | (a->st_mode & 07777));
		if (to_set & FUSE_SET_ATTR_UID) {
			in.i_uid = (__u16)a->st_uid;
			ext2fs_set_i_uid_high(in, a->st_uid >> 16);
		}
		if (to_set & FUSE_SET_ATTR_GID) {
			in.i_gid = (__u16)a->st_gid;
			ext2fs_set_i_gid_high(in, a->st_gid >> 16);
		}
		struct timespec t = now();
		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			SET_TIME(x, &in, i_atime, i_atime_extra, t);
		else if (to_set & FUSE_SET_ATTR_ATIME)
			SET_TIME(x, &in, i_atime, i_atime_extra, a->st_atim);
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			SET_TIME(x, &in, i_mtime, i_mtime_extra, t);
		else if (to_set & FUSE_SET_ATTR_MTIME)
			SET_TIME(x, &in, i_mtime, i_mtime_extra, a->st_mtim);
		if (to_set & FUSE_SET_ATTR_CTIME)
			SET_TIME(x, &in, i_ctime, i_ctime_extra, a->st_ctim);
		else
			SET_TIME(x, &in, i_ctime, i_ctime_extra, t);
		if (to_set & FUSE_SET_ATTR_SIZE)
			SET_TIME(x, &in, i_mtime, i_mtime_extra, t);
		r = write_inode(x, ino, &in);
	}
	struct stat st;
	if (r == 0)
		to_stat(x, ino, &in, &st);
	UNLOCK(x);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, TIMEOUT);
}

static void op_readlink(fuse_req_t req, fuse_ino_t fino)
{
	LOCKED(req, x);
	ext2_ino_t ino = to_ext(fino);
	inode_t in;
	char buf[PATH_MAX + 1];
	int r = read_inode(x, ino, &in);
	uint64_t size = EXT2_I_SIZE(&in);
	if (r == 0 && (!S_ISLNK(in.i_mode) || size > PATH_MAX))
		r = -EINVAL;
	if (r == 0 && ext2fs_is_fast_symlink((struct ext2_inode *)&in)) {
		memcpy(buf, in.i_block, size);
	} else if (r == 0) {
		/* a slow (or inline-data) symlink: its target is file data */
		ext2_file_t f;
		unsigned got = 0;
		errcode_t e = ext2fs_file_open(x->fs, ino, 0, &f);
		if (!e) {
			e = ext2fs_file_read(f, buf, (unsigned)size, &got);
			ext2fs_file_close(f);
		}
		if (e)
			r = -sqf_ext_errno(e);
		size = got;
	}
	UNLOCK(x);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	buf[size] = 0;
	fuse_reply_readlink(req, buf);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	LOCKED(req, x);
	WRITABLE(req, x);
	ext2_ino_t ino = 0;
	int r = make_node(req, to_ext(parent), name, mode, rdev, &ino);
	reply_entry(req, x, ino, r);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t fparent, const char *name, mode_t mode)
{
	LOCKED(req, x);
	WRITABLE(req, x);
	ext2_ino_t parent = to_ext(fparent), ino = 0;
	inode_t pin, in;
	int r = read_inode(x, parent, &pin);
	errcode_t e = 0;
	if (r == 0 && strlen(name) > EXT2_NAME_LEN)
		r = -ENAMETOOLONG;
	if (r == 0) {
		/* ext2fs_mkdir makes "." and "..", links the name and counts
		 * the parent's new link */
		e = ext2fs_mkdir(x->fs, parent, 0, name);
		if (e == EXT2_ET_DIR_NO_SPACE && !(e = ext2fs_expand_dir(x->fs, parent)))
			e = ext2fs_mkdir(x->fs, parent, 0, name);
		if (e)
			r = -sqf_ext_errno(e);
	}
	if (r == 0)
		r = lookup_name(x, parent, name, &ino);
	if (r == 0)
		r = read_inode(x, ino, &in);
	if (r == 0) {
		in.i_mode = (__u16)(S_IFDIR | (mode & 07777));
		new_owner(req, &pin, (struct ext2_inode *)&in);
		touch(x, &in, true);
		r = write_inode(x, ino, &in);
	}
	reply_entry(req, x, ino, r);
}

struct dir_scan {
	/* empty check */
	bool nonempty;
	/* readdir listing */
	char *buf;
	size_t len, cap;
};

static int scan_empty(ext2_ino_t dir, int entry, struct ext2_dir_entry *d, int off, int bs,
                      char *buf, void *priv)
{
	struct dir_scan *s = priv;
	int n = ext2fs_dirent_name_len(d);
	if (d->inode && !(n == 1 && d->name[0] == '.') &&
	    !(n == 2 && d->name[0] == '.' && d->name[1] == '.')) {
		s->nonempty = true;
		return DIRENT_ABORT;
	}
	return 0;
}

static int dir_empty(struct sqf_ext *x, ext2_ino_t dir)
{
	struct dir_scan s = {0};
	errcode_t e = ext2fs_dir_iterate2(x->fs, dir, 0, NULL, scan_empty, &s);
	if (e)
		return -sqf_ext_errno(e);
	return s.nonempty ? -ENOTEMPTY : 0;
}

/* Remove NAME (INO) from DIR; a directory must be empty. */
static int remove_entry(struct sqf_ext *x, ext2_ino_t dir, const char *name, ext2_ino_t ino,
                        bool isdir)
{
	int r = isdir ? dir_empty(x, ino) : 0;
	if (r < 0)
		return r;
	errcode_t e = ext2fs_unlink(x->fs, dir, name, ino, 0);
	if (e)
		return -sqf_ext_errno(e);
	if ((r = drop_link(x, ino, isdir)) < 0)
		return r;
	return dir_links(x, dir, isdir ? -1 : 0);
}

static void remove_op(fuse_req_t req, fuse_ino_t fparent, const char *name, bool isdir)
{
	LOCKED(req, x);
	WRITABLE(req, x);
	ext2_ino_t ino;
	inode_t in;
	int r = lookup_name(x, to_ext(fparent), name, &ino);
	if (r == 0)
		r = read_inode(x, ino, &in);
	if (r == 0 && isdir != S_ISDIR(in.i_mode))
		r = isdir ? -ENOTDIR : -EISDIR;
	if (r == 0)
		r = remove_entry(x, to_ext(fparent), name, ino, isdir);
	UNLOCK(x);
	fuse_reply_err(req, -r);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_op(req, parent, name, false);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_op(req, parent, name, true);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t fparent, const char *name)
{
	LOCKED(req, x);
	WRITABLE(req, x);
	ext2_ino_t parent = to_ext(fparent), ino = 0;
	inode_t pin, in;
	int r = read_inode(x, parent, &pin);
	if (r == 0 && strlen(name) > EXT2_NAME_LEN)
		r = -ENAMETOOLONG;
	if (r == 0) {
		errcode_t e = ext2fs_symlink(x->fs, parent, 0, name, target);
		if (e == EXT2_ET_DIR_NO_SPACE && !(e = ext2fs_expand_dir(x->fs, parent)))
			e = ext2fs_symlink(x->fs, parent, 0, name, target);
		if (e)
			r = -sqf_ext_errno(e);
	}
	if (r == 0)
		r = lookup_name(x, parent, name, &ino);
	if (r == 0)
		r = read_inode(x, ino, &in);
	if (r == 0) {
		new_owner(req, &pin, (struct ext2_inode *)&in);
		r = write_inode(x, ino, &in);
	}
	reply_entry(req, x, ino, r);
}

/* Point the entry NAME of a directory at another inode (rename's exchange,
 * a moved directory's ".."). */
struct repoint {
	const char *name;
	ext2_ino_t ino;
	int ftype;
	bool done;
};

static int set_entry(ext2_ino_t dir, int entry, struct ext2_dir_entry *d, int off, int bs,
                     char *buf, void *priv)
{
	struct repoint *p = priv;
	size_t n = (size_t)ext2fs_dirent_name_len(d);
	if (!d->inode || n != strlen(p->name) || memcmp(d->name, p->name, n))
		return 0;
	d->inode = p->ino;
	ext2fs_dirent_set_file_type(d, p->ftype);
	p->done = true;
	return DIRENT_CHANGED | DIRENT_ABORT;
}

static int repoint(struct sqf_ext *x, ext2_ino_t dir, const char *name, ext2_ino_t ino, mode_t mode)
{
	struct repoint p = {.name = name, .ino = ino, .ftype = ftype_of(mode)};
	errcode_t e = ext2fs_dir_iterate2(x->fs, dir, 0, NULL, set_entry, &p);
	if (e)
		return -sqf_ext_errno(e);
	return p.done ? 0 : -ENOENT;
}

/* Directory INO (of mode MODE) now lives in NDIR instead of ODIR. */
static int reparent(struct sqf_ext *x, ext2_ino_t ino, mode_t mode, ext2_ino_t odir,
                    ext2_ino_t ndir)
{
	int r;
	if (!S_ISDIR(mode) || odir == ndir)
		return 0;
	if ((r = repoint(x, ino, "..", ndir, S_IFDIR)) < 0 || (r = dir_links(x, odir, -1)) < 0)
		return r;
	return dir_links(x, ndir, +1);
}

/* RENAME_EXCHANGE (overlayfs removes a merged directory with it): the two
 * entries swap inodes. */
static int exchange(struct sqf_ext *x, ext2_ino_t odir, const char *oname, ext2_ino_t src,
                    mode_t smode, ext2_ino_t ndir, const char *nname, ext2_ino_t dst, mode_t dmode)
{
	int r;
	if ((r = repoint(x, odir, oname, dst, dmode)) < 0 ||
	    (r = repoint(x, ndir, nname, src, smode)) < 0 ||
	    (r = reparent(x, src, smode, odir, ndir)) < 0 ||
	    (r = reparent(x, dst, dmode, ndir, odir)) < 0 || (r = dir_links(x, odir, 0)) < 0)
		return r;
	return dir_links(x, ndir, 0);
}

static int do_rename(fuse_req_t req, struct sqf_ext *x, ext2_ino_t odir, const char *oname,
                     ext2_ino_t ndir, const char *nname, unsigned flags)
{
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_WHITEOUT | RENAME_EXCHANGE))
		return -EINVAL;
	ext2_ino_t src, dst = 0;
	inode_t sin, din;
	int r = lookup_name(x, odir, oname, &src);
	if (r < 0 || (r = read_inode(x, src, &sin)) < 0)
		return r;
	bool isdir = S_ISDIR(sin.i_mode);
	r = lookup_name(x, ndir, nname, &dst);
	if (r < 0 && (r != -ENOENT || (flags & RENAME_EXCHANGE)))
		return r;
	if (r == 0 && (flags & RENAME_EXCHANGE)) {
		if (dst == src || (r = read_inode(x, dst, &din)) < 0)
			return r;
		return exchange(x, odir, oname, src, sin.i_mode, ndir, nname, dst, din.i_mode);
	}
	if (r == 0) {
		if (flags & RENAME_NOREPLACE)
			return -EEXIST;
		if (dst == src)
			return 0; /* two names of one inode: nothing to do */
		if ((r = read_inode(x, dst, &din)) < 0)
			return r;
		if (isdir && !S_ISDIR(din.i_mode))
			return -ENOTDIR;
		if (!isdir && S_ISDIR(din.i_mode))
			return -EISDIR;
		if ((r = remove_entry(x, ndir, nname, dst, isdir)) < 0)
			return r;
	}
	if ((r = add_link(x, ndir, nname, src, sin.i_mode)) < 0)
		return r;
	errcode_t e = ext2fs_unlink(x->fs, odir, oname, src, 0);
	if (e)
		return -sqf_ext_errno(e);
	if ((r = reparent(x, src, sin.i_mode, odir, ndir)) < 0 || (r = dir_links(x, odir, 0)) < 0 ||
	    (r = dir_links(x, ndir, 0)) < 0)
		return r;
	if ((r = read_inode(x, src, &sin)) < 0)
		return r;
	touch(x, &sin, false);
	if ((r = write_inode(x, src, &sin)) < 0)
		return r;
	if (flags & RENAME_WHITEOUT) {
		/* overlayfs's whiteout: a 0:0 character device in the old place */
		ext2_ino_t wh;
		return make_node(req, odir, oname, S_IFCHR, makedev(0, 0), &wh);
	}
	return 0;
}

static void op_rename(fuse_req_t req, fuse_ino_t odir, const char *oname, fuse_ino_t ndir,
                      const char *nname, unsigned int flags)
{
	LOCKED(req, x);
	WRITABLE(req, x);
	int r = do_rename(req, x, to_ext(odir), oname, to_ext(ndir), nname, flags);
	UNLOCK(x);
	fuse_reply_err(req, -r);
}

static void op_link(fuse_req_t req, fuse_ino_t fino, fuse_ino_t fparent, const char *name)
{
	LOCKED(req, x);
	WRITABLE(req, x);
	ext2_ino_t ino = to_ext(fino);
	inode_t in;
	int r = read_inode(x, ino, &in);
	if (r == 0 && S_ISDIR(in.i_mode))
		r = -EPERM;
	if (r == 0 && in.i_links_count >= EXT2_LINK_MAX)
		r = -EMLINK;
	if (r == 0)
		r = add_link(x, to_ext(fparent), name, ino, in.i_mode);
	if (r == 0) {
		in.i_links_count++;
		touch(x, &in, false);
		r = write_inode(x, ino, &in);
	}
	if (r == 0)
		r = dir_links(x, to_ext(fparent), 0);
	reply_entry(req, x, ino, r);
}

static void op_open(fuse_req_t req, fuse_ino_t fino, struct fuse_file_info *fi)
{
	LOCKED(req, x);
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		WRITABLE(req, x);
	ext2_ino_t ino = to_ext(fino);
	int r = 0;
	if (fi->flags & O_TRUNC)
		r = set_size(x, ino, 0);
	if (r == 0)
		open_get(x, ino);
	UNLOCK(x);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_open(req, fi);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
	LOCKED(req, x);
	WRITABLE(req, x);
	ext2_ino_t ino = 0;
	int r = make_node(req, to_ext(parent), name, (mode & 07777) | S_IFREG, 0, &ino);
	struct fuse_entry_param e;
	if (r == 0)
		r = fill_entry(x, ino, &e);
	if (r == 0)
		open_get(x, ino);
	UNLOCK(x);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_create(req, &e, fi);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	LOCKED(req, x);
	open_put(x, to_ext(ino));
	UNLOCK(x);
	fuse_reply_err(req, 0);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	LOCKED(req, x);
	char *buf = sifu_xmalloc(size ? size : 1);
	size_t done = 0;
	ext2_file_t f;
	errcode_t e = ext2fs_file_open(x->fs, to_ext(ino), 0, &f);
	if (!e) {
		e = ext2fs_file_llseek(f, (__u64)off, EXT2_SEEK_SET, NULL);
		while (!e && done < size) {
			unsigned got = 0;
			e = ext2fs_file_read(f, buf + done, (unsigned)(size - done), &got);
			if (!got)
				break;
			done += got;
		}
		ext2fs_file_close(f);
	}
	UNLOCK(x);
	if (e)
		fuse_reply_err(req, sqf_ext_errno(e));
	else
		fuse_reply_buf(req, buf, done);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t fino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
	LOCKED(req, x);
	WRITABLE(req, x);
	ext2_ino_t ino = to_ext(fino);
	size_t done = 0;
	ext2_file_t f;
	errcode_t e = ext2fs_file_open(x->fs, ino, EXT2_FILE_WRITE, &f);
	if (!e) {
		e = ext2fs_file_llseek(f, (__u64)off, EXT2_SEEK_SET, NULL);
		while (!e && done < size) {
			unsigned n = 0;
			e = ext2fs_file_write(f, buf + done, (unsigned)(size - done), &n);
			if (!n)
				break;
			done += n;
		}
		errcode_t c = ext2fs_file_close(f); /* writes the data and the inode */
		if (!e)
			e = c;
	}
	inode_t in;
	int r = -sqf_ext_errno(e);
	if (!e && (r = read_inode(x, ino, &in)) == 0) {
		/* (the kernel drops setuid bits itself, by a setattr) */
		touch(x, &in, true);
		r = write_inode(x, ino, &in);
	}
	UNLOCK(x);
	if (r < 0 && !done)
		fuse_reply_err(req, -r);
	else
		fuse_reply_write(req, done);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0); /* every write is in libext2fs's cache already */
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	LOCKED(req, x);
	errcode_t e = x->writable ? ext2fs_flush(x->fs) : 0;
	UNLOCK(x);
	fuse_reply_err(req, e ? sqf_ext_errno(e) : 0);
}

/* The whole directory is read at opendir (one listing per open: offsets
 * stay valid while entries come and go). */
struct listing {
	char *buf;
	size_t len;
};

static int scan_list(ext2_ino_t dir, int entry, struct ext2_dir_entry *d, int off, int bs, char *b,
                     void *priv)
{
	struct dir_scan *s = priv;
	int n = ext2fs_dirent_name_len(d);
	if (!d->inode)
		return 0;
	/* inode number, file type, name length, name */
	size_t need = sizeof(__u32) + 2 + (size_t)n;
	if (s->len + need > s->cap) {
		s->cap = (s->cap + need) * 2;
		s->buf = sifu_xrealloc(s->buf, s->cap);
	}
	char *p = s->buf + s->len;
	memcpy(p, &d->inode, sizeof(__u32));
	p[4] = (char)ext2fs_dirent_file_type(d);
	p[5] = (char)n;
	memcpy(p + 6, d->name, (size_t)n);
	s->len += need;
	return 0;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	LOCKED(req, x);
	struct dir_scan s = {0};
	errcode_t e = ext2fs_dir_iterate2(x->fs, to_ext(ino), 0, NULL, scan_list, &s);
	UNLOCK(x);
	if (e) {
		free(s.buf);
		fuse_reply_err(req, sqf_ext_errno(e));
		return;
	}
	struct listing *l = sifu_xcalloc(1, sizeof(*l));
	l->buf = s.buf;
	l->len = s.len;
	fi->fh = (uintptr_t)l;
	fuse_reply_open(req, fi);
}

static const mode_t ftype_mode[] = {
    [EXT2_FT_REG_FILE] = S_IFREG, [EXT2_FT_DIR] = S_IFDIR,  [EXT2_FT_CHRDEV] = S_IFCHR,
    [EXT2_FT_BLKDEV] = S_IFBLK,   [EXT2_FT_FIFO] = S_IFIFO, [EXT2_FT_SOCK] = S_IFSOCK,
    [EXT2_FT_SYMLINK] = S_IFLNK,
};

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	struct listing *l = (struct listing *)(uintptr_t)fi->fh;
	char *out = sifu_xmalloc(size);
	size_t used = 0;
	/* OFF is the byte position of the next entry in the listing */
	for (size_t pos = (size_t)off; pos < l->len;) {
		const char *p = l->buf + pos;
		__u32 eino;
		memcpy(&eino, p, sizeof(eino));
		unsigned ft = (unsigned char)p[4], n = (unsigned char)p[5];
		char name[EXT2_NAME_LEN + 1];
		memcpy(name, p + 6, n);
		name[n] = 0;
		size_t next = pos + 6 + n;
		struct stat st = {
		    .st_ino = eino,
		    .st_mode = ft < sizeof(ftype_mode) / sizeof(*ftype_mode) ? ftype_mode[ft] : 0};
		size_t k = fuse_add_direntry(req, out + used, size - used, name, &st, (off_t)next);
		if (k > size - used)
			break;
		used += k;
		pos = next;
	}
	fuse_reply_buf(req, out, used);
	free(out);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct listing *l = (struct listing *)(uintptr_t)fi->fh;
	free(l->buf);
	free(l);
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	LOCKED(req, x);
	struct ext2_super_block *sb = x->fs->super;
	uint64_t fr = ext2fs_free_blocks_count(sb), res = ext2fs_r_blocks_count(sb);
	struct statvfs st = {
	    .f_bsize = x->fs->blocksize,
	    .f_frsize = x->fs->blocksize,
	    .f_blocks = ext2fs_blocks_count(sb),
	    .f_bfree = fr,
	    .f_bavail = fr > res ? fr - res : 0,
	    .f_files = sb->s_inodes_count,
	    .f_ffree = sb->s_free_inodes_count,
	    .f_favail = sb->s_free_inodes_count,
	    .f_namemax = EXT2_NAME_LEN,
	    .f_flag = x->writable ? 0 : ST_RDONLY,
	};
	UNLOCK(x);
	fuse_reply_statfs(req, &st);
}

/* -------------------------------------------------------------- xattrs -- */

static errcode_t xattrs_open(struct sqf_ext *x, fuse_ino_t ino, struct ext2_xattr_handle **h)
{
	errcode_t e = ext2fs_xattrs_open(x->fs, to_ext(ino), h);
	if (e)
		return e;
	if ((e = ext2fs_xattrs_read(*h)))
		ext2fs_xattrs_close(h);
	return e;
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	LOCKED(req, x);
	struct ext2_xattr_handle *h;
	void *val = NULL;
	size_t len = 0;
	errcode_t e = xattrs_open(x, ino, &h);
	if (!e) {
		e = ext2fs_xattr_get(h, name, &val, &len);
		ext2fs_xattrs_close(&h);
	}
	UNLOCK(x);
	if (e)
		fuse_reply_err(req, sqf_ext_errno(e));
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, val, len);
	if (val)
		ext2fs_free_mem(&val);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
	LOCKED(req, x);
	WRITABLE(req, x);
	struct ext2_xattr_handle *h;
	int r = 0;
	errcode_t e = xattrs_open(x, ino, &h);
	if (!e) {
		void *old = NULL;
		size_t oldlen;
		errcode_t g = ext2fs_xattr_get(h, name, &old, &oldlen);
		if (old)
			ext2fs_free_mem(&old);
		if ((flags & XATTR_CREATE) && !g)
			r = -EEXIST;
		else if ((flags & XATTR_REPLACE) && g == EXT2_ET_EA_KEY_NOT_FOUND)
			r = -ENODATA;
		else
			e = ext2fs_xattr_set(h, name, value, size);
		errcode_t c = ext2fs_xattrs_close(&h);
		if (!e)
			e = c;
	}
	if (r == 0 && e)
		r = -sqf_ext_errno(e);
	if (r == 0) {
		inode_t in;
		if ((r = read_inode(x, to_ext(ino), &in)) == 0) {
			touch(x, &in, false);
			r = write_inode(x, to_ext(ino), &in);
		}
	}
	UNLOCK(x);
	fuse_reply_err(req, -r);
}

struct xlist {
	char *buf;
	size_t len, cap;
};

static int list_one(char *name, char *value, size_t value_len, void *data)
{
	struct xlist *l = data;
	size_t n = strlen(name) + 1;
	if (l->len + n > l->cap) {
		l->cap = (l->cap + n) * 2;
		l->buf = sifu_xrealloc(l->buf, l->cap);
	}
	memcpy(l->buf + l->len, name, n);
	l->len += n;
	return 0;
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	LOCKED(req, x);
	struct ext2_xattr_handle *h;
	struct xlist l = {0};
	errcode_t e = xattrs_open(x, ino, &h);
	if (!e) {
		e = ext2fs_xattrs_iterate(h, list_one, &l);
		ext2fs_xattrs_close(&h);
	}
	UNLOCK(x);
	if (e)
		fuse_reply_err(req, sqf_ext_errno(e));
	else if (size == 0)
		fuse_reply_xattr(req, l.len);
	else if (l.len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, l.buf, l.len);
	free(l.buf);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	LOCKED(req, x);
	WRITABLE(req, x);
	struct ext2_xattr_handle *h;
	errcode_t e = xattrs_open(x, ino, &h);
	if (!e) {
		void *old = NULL;
		size_t oldlen;
		/* removing a missing name succeeds in libext2fs; not here */
		e = ext2fs_xattr_get(h, name, &old, &oldlen);
		if (old)
			ext2fs_free_mem(&old);
		if (!e)
			e = ext2fs_xattr_remove(h, name);
		errcode_t c = ext2fs_xattrs_close(&h);
		if (!e)
			e = c;
	}
	UNLOCK(x);
	fuse_reply_err(req, e ? sqf_ext_errno(e) : 0);
}

const struct fuse_lowlevel_ops sqf_ext_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .release = op_release,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .fsyncdir = op_fsync,
    .statfs = op_statfs,
    .setxattr = op_setxattr,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .removexattr = op_removexattr,
    .create = op_create,
};
