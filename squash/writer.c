/* SPDX-License-Identifier: BSD-3-Clause */
/* squash/writer.c: how the image is written - the output file libsquashfs
 * writes through, the compressor and the block processor that file data
 * streams into, and at the end the inode, directory, fragment, id and xattr
 * tables and the superblock, from the tree that tree.c built. */
#include "squash_priv.h"

#include <sqfs/block.h>
#include <sqfs/block_processor.h>
#include <sqfs/block_writer.h>
#include <sqfs/compressor.h>
#include <sqfs/dir_writer.h>
#include <sqfs/error.h>
#include <sqfs/frag_table.h>
#include <sqfs/id_table.h>
#include <sqfs/inode.h>
#include <sqfs/meta_writer.h>
#include <sqfs/xattr_writer.h>

/* ------------------------------------------------------------------ output */

static void out_destroy(sqfs_object_t *o)
{
	free(o);
}

/* All of LEN bytes at OFF, written (WR) or read; the first errno is kept
 * (ENOSPC for a write that wrote nothing, EIO for a read at the end). */
static int out_io(struct sq_out *o, bool wr, sqfs_u64 off, char *p, size_t len)
{
	while (len > 0) {
		off_t at = (off_t)(o->offset + off);
		ssize_t n = wr ? pwrite(o->fd, p, len, at) : pread(o->fd, p, len, at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!o->error)
				o->error = n < 0 ? errno : wr ? ENOSPC : EIO;
			return SQFS_ERROR_IO;
		}
		p += n, off += (uint64_t)n, len -= (size_t)n;
	}
	return 0;
}

static int out_write_at(sqfs_file_t *f, sqfs_u64 off, const void *buf, size_t len)
{
	struct sq_out *o = (struct sq_out *)f;
	uint64_t end = off + len;
	/* out_io only reads from P when writing */
	int r = out_io(o, true, off, (char *)buf, len);
	if (r == 0 && end > o->size)
		o->size = end;
	return r;
}

static int out_read_at(sqfs_file_t *f, sqfs_u64 off, void *buf, size_t len)
{
	struct sq_out *o = (struct sq_out *)f;
	if (off + len > o->size)
		return SQFS_ERROR_OUT_OF_BOUNDS;
	return out_io(o, false, off, buf, len);
}

static sqfs_u64 out_get_size(const sqfs_file_t *f)
{
	return ((const struct sq_out *)f)->size;
}

static int out_truncate(sqfs_file_t *f, sqfs_u64 size)
{
	struct sq_out *o = (struct sq_out *)f;
	if (ftruncate(o->fd, (off_t)(o->offset + size)) < 0) {
		if (!o->error)
			o->error = errno;
		return SQFS_ERROR_IO;
	}
	o->size = size;
	return 0;
}

static struct sq_out *out_new(int fd, uint64_t offset)
{
	struct sq_out *o = sifu_xcalloc(1, sizeof(*o));
	o->base.base.destroy = out_destroy;
	o->base.read_at = out_read_at;
	o->base.write_at = out_write_at;
	o->base.get_size = out_get_size;
	o->base.truncate = out_truncate;
	o->fd = fd;
	o->offset = offset;
	return o;
}

static int sqfs_fail(struct sq_image *img, int ret, struct sifu_err *err, const char *what)
{
	img->failed = true;
	if (img->out->error) {
		errno = img->out->error;
		return sifu_err_sys(err, "squashfs: %s", what);
	}
	return sifu_err_set(err, SIFU_E_SYS, ret == SQFS_ERROR_ALLOC ? ENOMEM : EIO,
	                    "squashfs: %s (libsquashfs error %d)", what, ret);
}

/* ----------------------------------------------------------------- options */

int sq_parse_compression(const char *spec, struct sq_opts *opts, struct sifu_err *err)
{
	static const struct {
		const char *name;
		int id, lo, hi;
	} algos[] = {
	    {"gzip", SQFS_COMP_GZIP, 1, 9},
	    {"zstd", SQFS_COMP_ZSTD, 1, 22},
	    {"xz", SQFS_COMP_XZ, 0, 0},
	    {"lz4", SQFS_COMP_LZ4, 0, 0},
	};
	const char *colon = strchr(spec, ':');
	size_t nlen = colon ? (size_t)(colon - spec) : strlen(spec);
	for (size_t i = 0; i < ARRAY_SIZE(algos); i++) {
		if (strlen(algos[i].name) != nlen || strncmp(spec, algos[i].name, nlen) != 0)
			continue;
		opts->compressor = algos[i].id;
		opts->level = 0;
		if (!colon)
			return 0;
		char *end;
		errno = 0;
		long lvl = strtol(colon + 1, &end, 10);
		if (!algos[i].hi || errno || *end || end == colon + 1 || lvl < algos[i].lo ||
		    lvl > algos[i].hi) {
			sifu_err_set(err, SIFU_E_USAGE, 0, "bad compression level in \"%s\"", spec);
			if (algos[i].hi)
				sifu_err_hint(err, "%s takes a level from %d to %d", algos[i].name,
				              algos[i].lo, algos[i].hi);
			else
				sifu_err_hint(err, "%s takes no level", algos[i].name);
			return -EINVAL;
		}
		opts->level = (int)lvl;
		return 0;
	}
	sifu_err_set(err, SIFU_E_USAGE, 0, "unknown compression \"%.*s\"", (int)nlen, spec);
	sifu_err_hint(err, "use gzip (the default, every runtime reads it), zstd, xz or lz4");
	return -EINVAL;
}

/* ------------------------------------------------------------------ create */

static void opts_default(struct sq_opts *o)
{
	if (!o->compressor)
		o->compressor = SQFS_COMP_GZIP;
	if (!o->block_size)
		o->block_size = SQFS_DEFAULT_BLOCK_SIZE;
	if (!o->workers) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		o->workers = n > 0 ? (unsigned)n : 1;
	}
}

static int compressor_new(struct sq_image *img, const struct sq_opts *asked, struct sifu_err *err)
{
	sqfs_compressor_config_t cfg;
	int r = sqfs_compressor_config_init(&cfg, (SQFS_COMPRESSOR)img->opts.compressor,
	                                    img->opts.block_size, 0);
	/* gzip: level 6 unless asked otherwise.  On a Debian+numpy image level 9
	 * (zlib's and mksquashfs's default) took several times longer for an
	 * image 0.5% smaller (docs/benchmarks.md). */
	if (r == 0 && !img->opts.level && img->opts.compressor == SQFS_COMP_GZIP)
		cfg.level = 6;
	if (r == 0 && img->opts.level)
		cfg.level = (sqfs_u32)img->opts.level;
	if (r == 0)
		r = sqfs_compressor_create(&cfg, &img->cmp);
	if (r)
		return sifu_err_set(
		    err, SIFU_E_UNSUPPORTED, 0,
		    "squashfs: this libsquashfs cannot compress with %s",
		    sqfs_compressor_name_from_id((SQFS_COMPRESSOR)asked->compressor));
	return 0;
}

/* The superblock (rewritten at the end) and the compressor's options. */
static int super_begin(struct sq_image *img, struct sifu_err *err)
{
	sqfs_super_init(&img->super, img->opts.block_size, img->opts.mtime,
	                (SQFS_COMPRESSOR)img->opts.compressor);
	sqfs_file_t *f = &img->out->base;
	int r = sqfs_super_write(&img->super, f);
	if (r == 0) {
		int w = img->cmp->write_options(img->cmp, f);
		if (w < 0)
			r = w;
		else if (w > 0)
			img->super.flags |= SQFS_FLAG_COMPRESSOR_OPTIONS;
	}
	return r ? sqfs_fail(img, r, err, "writing the superblock") : 0;
}

static int processor_new(struct sq_image *img, struct sifu_err *err)
{
	sqfs_file_t *f = &img->out->base;
	img->bwr = sqfs_block_writer_create(f, 4096, 0);
	img->frag = sqfs_frag_table_create(0);
	sqfs_block_processor_desc_t desc = {
	    .size = sizeof(desc),
	    .max_block_size = img->opts.block_size,
	    .num_workers = img->opts.workers,
	    .max_backlog = 10 * img->opts.workers,
	    .cmp = img->cmp,
	    .wr = img->bwr,
	    .tbl = img->frag,
	    .file = f,
	};
	int r = 0;
	if (!img->bwr || !img->frag || (r = sqfs_block_processor_create_ex(&desc, &img->proc)) != 0)
		return sqfs_fail(img, r ? r : SQFS_ERROR_ALLOC, err,
		                 "starting the block processor");
	return 0;
}

int sq_writer_open(struct sq_image *img, int fd, uint64_t offset, const struct sq_opts *asked,
                   struct sifu_err *err)
{
	img->opts = *asked;
	opts_default(&img->opts);
	img->out = out_new(fd, offset);
	int r = compressor_new(img, asked, err);
	if (r == 0)
		r = super_begin(img, err);
	if (r == 0)
		r = processor_new(img, err);
	return r;
}

/* ------------------------------------------------------------- file data */

int sq_writer_file(struct sq_image *img, struct sq_inode *in, const struct sq_entry *e,
                   sq_read_fn read, void *ctx, struct sifu_err *err)
{
	int r = sqfs_block_processor_begin_file(img->proc, &in->file, NULL, 0);
	if (r)
		return sqfs_fail(img, r, err, "starting a file");
	static __thread char buf[256 * 1024];
	uint64_t total = 0;
	for (;;) {
		ssize_t n = read ? read(ctx, buf, sizeof(buf), err) : 0;
		if (n < 0) {
			sqfs_block_processor_end_file(img->proc);
			img->failed = true;
			return (int)n;
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		r = sqfs_block_processor_append(img->proc, buf, (size_t)n);
		if (r)
			return sqfs_fail(img, r, err, "compressing file data");
	}
	r = sqfs_block_processor_end_file(img->proc);
	if (r)
		return sqfs_fail(img, r, err, "finishing a file");
	if (total != e->size) {
		img->failed = true;
		return sifu_err_set(
		    err, SIFU_E_CORRUPT, 0, "\"%s\": %llu bytes of data where the header says %llu",
		    e->path, (unsigned long long)total, (unsigned long long)e->size);
	}
	img->stats.files++;
	img->stats.bytes_in += total;
	return 0;
}

/* ------------------------------------------------------------------ finish */

/* sqfs_destroy each of N objects, in order (a NULL is skipped). */
static void destroy_many(void *const objs[], size_t n)
{
	for (size_t i = 0; i < n; i++)
		sqfs_destroy(objs[i]);
}
#define SQ_DESTROY_MANY(...)                       \
	destroy_many((void *const[]){__VA_ARGS__}, \
	             sizeof((void *const[]){__VA_ARGS__}) / sizeof(void *))

struct ser {
	struct sq_image *img;
	sqfs_meta_writer_t *im, *dm;
	sqfs_dir_writer_t *dw;
	sqfs_id_table_t *ids;
	sqfs_xattr_writer_t *xw;
	uint32_t next_ino;
};

static int cmp_names(const void *a, const void *b)
{
	return strcmp((*(struct sq_node *const *)a)->name, (*(struct sq_node *const *)b)->name);
}

/* Live children of DIR, sorted by name as squashfs requires. */
static struct sq_node **children(struct sq_node *dir, size_t *count)
{
	size_t n = 0;
	for (struct sq_node *c = dir->first; c; c = c->next)
		if (!c->dead && c->ino)
			n++;
	struct sq_node **v = sifu_xcalloc(n + 1, sizeof(*v));
	n = 0;
	for (struct sq_node *c = dir->first; c; c = c->next)
		if (!c->dead && c->ino)
			v[n++] = c;
	qsort(v, n, sizeof(*v), cmp_names);
	*count = n;
	return v;
}

/* Inode numbers in the order directories list them; a hard-linked inode gets
 * the number of its first appearance. */
static void number(struct ser *s, struct sq_node *dir)
{
	size_t n;
	_cleanup_free_ struct sq_node **v = children(dir, &n);
	for (size_t i = 0; i < n; i++)
		if (!v[i]->ino->ino)
			v[i]->ino->ino = s->next_ino++;
	for (size_t i = 0; i < n; i++)
		if (sq_is_dir(v[i]))
			number(s, v[i]);
}

static uint16_t type_bits(enum sq_type t)
{
	switch (t) {
	case SQ_DIR: return SQFS_INODE_MODE_DIR;
	case SQ_SYMLINK: return SQFS_INODE_MODE_LNK;
	case SQ_CHR: return SQFS_INODE_MODE_CHR;
	case SQ_BLK: return SQFS_INODE_MODE_BLK;
	case SQ_FIFO: return SQFS_INODE_MODE_FIFO;
	case SQ_SOCK: return SQFS_INODE_MODE_SOCK;
	default: return SQFS_INODE_MODE_REG;
	}
}

static int xattr_index(struct ser *s, struct sq_inode *in, uint32_t *idx)
{
	*idx = 0xFFFFFFFF;
	if (!in->nxattrs)
		return 0;
	int r = sqfs_xattr_writer_begin(s->xw, 0);
	const char *p = in->xattr_buf;
	for (size_t i = 0; r == 0 && i < in->nxattrs; i++) {
		const char *key = p;
		uint32_t vs;
		p += strlen(key) + 1;
		memcpy(&vs, p, sizeof(vs));
		p += sizeof(vs);
		int a = sqfs_xattr_writer_add(s->xw, key, p, vs);
		if (a == SQFS_ERROR_UNSUPPORTED)
			sifu_debug(
			    "squashfs: xattr \"%s\" has a prefix squashfs cannot store; dropped",
			    key);
		else
			r = a;
		p += vs;
	}
	if (r == 0)
		r = sqfs_xattr_writer_end(s->xw, idx);
	return r;
}

static int write_inode(struct ser *s, struct sq_inode *in, sqfs_inode_generic_t *gi,
                       uint32_t parent_ino)
{
	(void)parent_ino;
	sqfs_u16 uidx, gidx;
	uint32_t xidx;
	int r = sqfs_id_table_id_to_index(s->ids, in->uid, &uidx);
	if (!r)
		r = sqfs_id_table_id_to_index(s->ids, in->gid, &gidx);
	if (!r)
		r = xattr_index(s, in, &xidx);
	if (r)
		return r;
	gi->base.mode = (sqfs_u16)(type_bits(in->type) | (in->mode & 07777));
	gi->base.uid_idx = uidx;
	gi->base.gid_idx = gidx;
	gi->base.mod_time = in->mtime;
	gi->base.inode_number = in->ino;
	if (xidx != 0xFFFFFFFF && (r = sqfs_inode_set_xattr_index(gi, xidx)) != 0)
		return r;
	sqfs_u64 block;
	sqfs_u32 off;
	sqfs_meta_writer_get_position(s->im, &block, &off);
	in->ref = (block << 16) | off;
	in->written = true;
	return sqfs_meta_writer_write_inode(s->im, gi);
}

static sqfs_inode_generic_t *leaf_inode(struct sq_inode *in, int *err)
{
	size_t extra = in->type == SQ_SYMLINK ? strlen(in->target) : 0;
	sqfs_inode_generic_t *gi = sifu_xcalloc(1, sizeof(*gi) + extra);
	*err = 0;
	switch (in->type) {
	case SQ_SYMLINK:
		gi->base.type = SQFS_INODE_SLINK;
		gi->base.mode = SQFS_INODE_MODE_LNK;
		gi->data.slink.nlink = in->nlink;
		gi->data.slink.target_size = (sqfs_u32)extra;
		gi->payload_bytes_available = gi->payload_bytes_used = (sqfs_u32)extra;
		memcpy(gi->extra, in->target, extra);
		break;
	case SQ_CHR:
	case SQ_BLK:
		gi->base.type = in->type == SQ_CHR ? SQFS_INODE_CDEV : SQFS_INODE_BDEV;
		gi->data.dev.nlink = in->nlink;
		gi->data.dev.devno = in->devno;
		break;
	case SQ_FIFO:
	case SQ_SOCK:
		gi->base.type = in->type == SQ_FIFO ? SQFS_INODE_FIFO : SQFS_INODE_SOCKET;
		gi->data.ipc.nlink = in->nlink;
		break;
	default: *err = SQFS_ERROR_INTERNAL;
	}
	return gi;
}

static int write_non_dir(struct ser *s, struct sq_inode *in, uint32_t parent_ino)
{
	int r;
	if (in->type == SQ_REG) {
		sqfs_inode_generic_t *gi = in->file;
		if (in->nlink > 1 || in->nxattrs) {
			if ((r = sqfs_inode_make_extended(gi)) != 0)
				return r;
			gi->data.file_ext.nlink = in->nlink;
		}
		return write_inode(s, in, gi, parent_ino);
	}
	sqfs_inode_generic_t *gi = leaf_inode(in, &r);
	if (!r)
		r = write_inode(s, in, gi, parent_ino);
	free(gi);
	return r;
}

/* Post-order: children's inodes first, then this directory's listing, then
 * its inode (which must point at the listing). */
static int write_dir(struct ser *s, struct sq_node *dir, uint32_t parent_ino)
{
	size_t n;
	_cleanup_free_ struct sq_node **v = children(dir, &n);
	int r = 0;
	uint32_t subdirs = 0;
	for (size_t i = 0; i < n && !r; i++) {
		struct sq_inode *in = v[i]->ino;
		if (sq_is_dir(v[i])) {
			subdirs++;
			r = write_dir(s, v[i], dir->ino->ino);
		} else if (!in->written) {
			r = write_non_dir(s, in, dir->ino->ino);
		}
	}
	if (!r)
		r = sqfs_dir_writer_begin(s->dw, 0);
	for (size_t i = 0; i < n && !r; i++) {
		struct sq_inode *in = v[i]->ino;
		r = sqfs_dir_writer_add_entry(s->dw, v[i]->name, in->ino, in->ref,
		                              (sqfs_u16)(type_bits(in->type) | (in->mode & 07777)));
	}
	if (!r)
		r = sqfs_dir_writer_end(s->dw);
	if (r)
		return r;
	uint32_t xidx;
	if ((r = xattr_index(s, dir->ino, &xidx)) != 0)
		return r;
	sqfs_inode_generic_t *gi =
	    sqfs_dir_writer_create_inode(s->dw, subdirs + 2, xidx, parent_ino);
	if (!gi)
		return SQFS_ERROR_ALLOC;
	struct sq_inode tmp = *dir->ino;
	tmp.nxattrs = 0; /* already attached by create_inode */
	r = write_inode(s, &tmp, gi, parent_ino);
	dir->ino->ref = tmp.ref;
	dir->ino->written = true;
	sqfs_free(gi);
	return r;
}

static int write_tables(struct sq_image *img, struct ser *s)
{
	sqfs_file_t *f = &img->out->base;
	sqfs_super_t *sb = &img->super;
	int r;
	s->next_ino = 2; /* the root is 1 */
	img->root->ino->ino = 1;
	number(s, img->root);
	sb->inode_count = s->next_ino - 1;
	sb->inode_table_start = f->get_size(f);
	if ((r = write_dir(s, img->root, s->next_ino)) != 0)
		return r;
	sb->root_inode_ref = img->root->ino->ref;
	if ((r = sqfs_meta_writer_flush(s->im)) != 0 || (r = sqfs_meta_writer_flush(s->dm)) != 0)
		return r;
	sb->directory_table_start = f->get_size(f);
	if ((r = sqfs_meta_write_write_to_file(s->dm)) != 0)
		return r;
	if ((r = sqfs_frag_table_write(img->frag, f, sb, img->cmp)) != 0)
		return r;
	if ((r = sqfs_id_table_write(s->ids, f, sb, img->cmp)) != 0)
		return r;
	if ((r = sqfs_xattr_writer_flush(s->xw, f, sb, img->cmp)) != 0)
		return r;
	sb->bytes_used = f->get_size(f);
	/* pad to 4 KiB as mksquashfs does, so loop devices can map every byte */
	uint64_t padded = (sb->bytes_used + 4095) & ~4095ull;
	if (padded > sb->bytes_used) {
		char zero[4096] = {0};
		if ((r = f->write_at(f, sb->bytes_used, zero, padded - sb->bytes_used)) != 0)
			return r;
	}
	return sqfs_super_write(sb, f);
}

int sq_image_finish(struct sq_image *img, uint64_t *size, struct sifu_err *err)
{
	if (img->failed)
		return sifu_err_set(err, SIFU_E_SYS, EIO, "squashfs: the image already failed");
	if (img->ndeferred) /* a caller that never ran the second pass */
		return sifu_err_set(err, SIFU_E_SYS, EINVAL,
		                    "squashfs: %zu hard links were never given their data",
		                    img->ndeferred);
	int r = sqfs_block_processor_finish(img->proc);
	img->finished = true;
	if (r)
		return sqfs_fail(img, r, err, "writing file data");
	sqfs_file_t *f = &img->out->base;
	struct ser s = {.img = img};
	s.im = sqfs_meta_writer_create(f, img->cmp, 0);
	s.dm = sqfs_meta_writer_create(f, img->cmp, SQFS_META_WRITER_KEEP_IN_MEMORY);
	s.dw = s.dm ? sqfs_dir_writer_create(s.dm, 0) : NULL;
	s.ids = sqfs_id_table_create(0);
	s.xw = sqfs_xattr_writer_create(0);
	if (!s.im || !s.dm || !s.dw || !s.ids || !s.xw)
		r = SQFS_ERROR_ALLOC;
	else
		r = write_tables(img, &s);
	SQ_DESTROY_MANY(s.dw, s.dm, s.im, s.ids, s.xw);
	if (r)
		return sqfs_fail(img, r, err, "writing the inode and directory tables");
	*size = img->out->size;
	return 0;
}

void sq_writer_close(struct sq_image *img)
{
	/* libsquashfs 1.2 frees the pending fragment block only in finish, so an
	 * abandoned image is finished (into a file about to be deleted) first */
	if (img->proc && !img->finished)
		sqfs_block_processor_finish(img->proc);
	SQ_DESTROY_MANY(img->proc, img->bwr, img->frag, img->cmp);
	free(img->out);
	img->out = NULL;
}
