/* SPDX-License-Identifier: BSD-3-Clause */
/* The image: open (superblock checks, metadata preload, id and fragment
 * tables, the caches), close, and the sqfs_file_t through which every
 * libsquashfs reader reads the image via the chunk cache.  Everything
 * shared after open (superblock, id table, caches) is read-only or behind
 * its own lock. */
#include "fuse_priv.h"

/* ------------------------------------------------------- sqfs_file_t glue */

static int file_read_at(sqfs_file_t *f, sqfs_u64 off, void *buf, size_t len)
{
	struct sqf_image *img = ((struct sqf_file *)f)->img;
	if (off > img->be->size || len > img->be->size - off)
		return SQFS_ERROR_OUT_OF_BOUNDS;
	return sqf_chunkcache_read(img->chunks, buf, len, off) < 0 ? SQFS_ERROR_IO : 0;
}

static int file_write_at(sqfs_file_t *f, sqfs_u64 off, const void *buf, size_t len)
{
	return SQFS_ERROR_UNSUPPORTED;
}

static sqfs_u64 file_get_size(const sqfs_file_t *f)
{
	return ((const struct sqf_file *)f)->img->be->size;
}

static int file_truncate(sqfs_file_t *f, sqfs_u64 size)
{
	return SQFS_ERROR_UNSUPPORTED;
}

static void file_destroy(sqfs_object_t *o) {} /* embedded in the image */

/* ---------------------------------------------------------------- open */

void sqf_options_default(struct sqf_options *o)
{
	memset(o, 0, sizeof(*o));
	o->chunk_size = 1u << 20;
	o->cache_size = 64u << 20;
	o->readahead_max = 8u << 20;
	o->preload_max = 8u << 20;
	o->prefetch = SQF_PREFETCH_META;
	o->block_cache_dir = -1;
	o->block_cache_max = 1ull << 30;
	o->uid = getuid();
	o->gid = getgid();
}

static int check_super(const struct sqf_image *img, struct sifu_err *err)
{
	const sqfs_super_t *s = &img->super;
	uint64_t end = s->bytes_used;
	if (end > img->be->size)
		return sifu_err_set(err, SIFU_E_RANGE, EIO,
		                    "SquashFS claims %" PRIu64 " bytes but only %" PRIu64
		                    " are there (truncated image?)",
		                    end, img->be->size);
	if (!(s->inode_table_start < s->directory_table_start && s->directory_table_start < end &&
	      s->id_table_start < end && s->inode_table_start >= sizeof(sqfs_super_t)))
		return sifu_err_set(err, SIFU_E_CORRUPT, EIO,
		                    "SquashFS table offsets are inconsistent (corrupt image)");
	if ((s->root_inode_ref >> 16) >= s->directory_table_start - s->inode_table_start ||
	    (s->root_inode_ref & 0xffff) >= SQF_META_BLOCK)
		return sifu_err_set(
		    err, SIFU_E_CORRUPT, EIO,
		    "SquashFS root inode reference is out of range (corrupt image)");
	if (s->id_count == 0)
		return sifu_err_set(err, SIFU_E_CORRUPT, EIO,
		                    "SquashFS id table is empty (corrupt image)");
	return 0;
}

/* End of the directory table: the nearest table that starts after it. */
static uint64_t dir_limit(const sqfs_super_t *s)
{
	uint64_t lim = s->bytes_used;
	uint64_t cand[] = {s->fragment_table_start, s->export_table_start, s->id_table_start,
	                   s->xattr_id_table_start};
	for (size_t k = 0; k < ARRAY_SIZE(cand); k++)
		if (cand[k] > s->directory_table_start && cand[k] < lim)
			lim = cand[k];
	return lim;
}

static void *prefetch_all(void *arg)
{
	struct sqf_image *img = arg;
	uint64_t chunk = sqf_chunkcache_chunk_size(img->chunks);
	uint8_t *buf = sifu_xmalloc(chunk);
	for (uint64_t off = 0; off < img->super.inode_table_start && !img->closing; off += chunk) {
		uint64_t n = img->be->size - off < chunk ? img->be->size - off : chunk;
		sqf_chunkcache_read(img->chunks, buf, n, off);
	}
	free(buf);
	return NULL;
}

/* The image over BE with options O (defaults where NULL): its caches and
 * its sqfs_file_t, nothing read yet. */
static struct sqf_image *image_new(struct sqf_backend *be, const struct sqf_options *o)
{
	struct sqf_image *img = sifu_xcalloc(1, sizeof(*img));
	if (o)
		img->opt = *o;
	else
		sqf_options_default(&img->opt);
	img->be = be;
	img->decoded = sqf_decoded_new(32);
	uint64_t bound = img->opt.cache_size;
	if (img->opt.prefetch == SQF_PREFETCH_ALL && bound < be->size)
		bound = be->size; /* asked to hold the whole image */
	img->chunks = sqf_chunkcache_new(
	    be, img->opt.chunk_size, bound,
	    img->opt.readahead_max || img->opt.prefetch == SQF_PREFETCH_ALL ? 4 : 0);
	bool direct = img->opt.io == SQF_IO_PAGECACHE || (img->opt.io == SQF_IO_AUTO && be->local);
	if (direct) {
		sqf_chunkcache_set_direct(img->chunks);
		/* the kernel reads ahead for us now; let it (an fd inherited
		 * with POSIX_FADV_RANDOM would not) */
		if (be->advise && img->opt.prefetch == SQF_PREFETCH_ALL)
			be->advise(be, 0, be->size);
	}
	if (be->own_readahead)
		be->own_readahead(be, !direct);
	img->file.base.base.destroy = file_destroy;
	img->file.base.read_at = file_read_at;
	img->file.base.write_at = file_write_at;
	img->file.base.get_size = file_get_size;
	img->file.base.truncate = file_truncate;
	img->file.img = img;
	sqf_readers_init(img);
	sqf_listings_init(&img->listings);
	return img;
}

/* Read and check the superblock, and what follows from it. */
static int read_super(struct sqf_image *img, struct sifu_err *err)
{
	int r = sqfs_super_read(&img->super, &img->file.base);
	if (r != 0)
		return r == SQFS_ERROR_UNSUPPORTED
		           ? sifu_err_set(err, SIFU_E_UNSUPPORTED, EOPNOTSUPP,
		                          "unsupported SquashFS version or compressor")
		           : sifu_err_set(err, SIFU_E_CORRUPT, EIO,
		                          "not a SquashFS 4.0 image (bad superblock)");
	if ((r = check_super(img, err)) < 0)
		return r;
	img->dir_limit = dir_limit(&img->super);
	img->has_xattr = !(img->super.flags & SQFS_FLAG_NO_XATTRS) &&
	                 img->super.xattr_id_table_start < img->super.bytes_used;
	return 0;
}

/* Metadata preload: the inode table to the end of the image, read now in
 * a few large parallel reads and served from memory after. */
static int preload_metadata(struct sqf_image *img, struct sifu_err *err)
{
	if (img->opt.prefetch == SQF_PREFETCH_NONE)
		return 0;
	uint64_t from = img->super.inode_table_start, len = img->super.bytes_used - from;
	/* huge tables go through the cache instead of being pinned */
	int r;
	if (len <= (512u << 20) && (r = sqf_chunkcache_pin(img->chunks, from, len)) < 0)
		return sifu_err_set(err, SIFU_E_SYS, -r,
		                    "cannot read the SquashFS metadata tables");
	return 0;
}

/* The fragment table, if any: one that does not read leaves files with
 * tail ends failing (EIO), not the whole image. */
static void read_fragments(struct sqf_image *img, struct sqf_ctx *c)
{
	if ((img->super.flags & SQFS_FLAG_NO_FRAGMENTS) || img->super.fragment_entry_count == 0 ||
	    !sqf_table_fits(img, img->super.fragment_table_start, img->super.fragment_entry_count,
	                    16))
		return;
	img->frags = sqfs_frag_table_create(0);
	if (img->frags &&
	    sqfs_frag_table_read(img->frags, &img->file.base, &img->super, c->cmp) != 0) {
		sifu_debug("fuse: fragment table unreadable; files with tail ends will fail");
		sqfs_destroy(img->frags);
		img->frags = NULL;
	}
}

/* The first set of readers (which proves the compressor is supported), the
 * id table and the fragment table. */
static int read_tables(struct sqf_image *img, struct sifu_err *err)
{
	struct sqf_ctx *c;
	int r = sqf_ctx_get(img, &c);
	if (r < 0)
		return r == -EOPNOTSUPP
		           ? sifu_err_set(err, SIFU_E_UNSUPPORTED, EOPNOTSUPP,
		                          "SquashFS compressor '%s' (id %u) is not supported",
		                          sqfs_compressor_name_from_id(
		                              (SQFS_COMPRESSOR)img->super.compression_id)
		                              ?: "unknown",
		                          img->super.compression_id)
		           : sifu_err_set(err, SIFU_E_CORRUPT, -r,
		                          "cannot set up the SquashFS decompressor");
	img->ids = sqfs_id_table_create(0);
	r = img->ids ? sqfs_id_table_read(img->ids, &img->file.base, &img->super, c->cmp) : -1;
	if (r == 0)
		read_fragments(img, c);
	sqf_ctx_put(img, c);
	if (r != 0)
		return sifu_err_set(err, SIFU_E_CORRUPT, EIO,
		                    "SquashFS uid/gid table is unreadable (corrupt image)");
	return 0;
}

static int check_root(struct sqf_image *img, struct sifu_err *err)
{
	sqfs_inode_generic_t *root;
	int r = sqf_inode_read(img, img->super.root_inode_ref, &root);
	if (r < 0)
		return sifu_err_set(err, SIFU_E_CORRUPT, -r,
		                    "SquashFS root inode is unreadable (corrupt image)");
	bool ok = sqf_inode_is_dir(root);
	sqfs_free(root);
	if (!ok)
		return sifu_err_set(err, SIFU_E_CORRUPT, EIO,
		                    "SquashFS root inode is not a directory (corrupt image)");
	return 0;
}

int sqf_image_open_backend(struct sqf_backend *be, const struct sqf_options *o,
                           struct sqf_image **out, struct sifu_err *err)
{
	struct sqf_image *img = image_new(be, o);
	int r;
	if ((r = read_super(img, err)) < 0 || (r = preload_metadata(img, err)) < 0 ||
	    (r = read_tables(img, err)) < 0 || (r = check_root(img, err)) < 0) {
		sqf_image_close(img);
		return r;
	}
	if (img->opt.prefetch == SQF_PREFETCH_ALL &&
	    sqf_thread_create(&img->prefetch_thread, prefetch_all, img) == 0)
		img->prefetch_running = true;
	*out = img;
	return 0;
}

int sqf_image_open(int fd, uint64_t offset, uint64_t size, const struct sqf_options *o,
                   struct sqf_image **out, struct sifu_err *err)
{
	struct sqf_options vo;
	if (o && o->verity) {
		/* a verified image is served from its checked bytes only: the
		 * block cache's copies were never checked against them */
		vo = *o;
		vo.block_cache_dir = -1;
		o = &vo;
	}
	struct sqf_backend *be;
	int r = sqf_backend_fd(fd, offset, size, &be, err);
	if (r == 0 && o && o->verity)
		r = sqf_backend_verity(be, o->verity, &be, err);
	if (r < 0)
		return r;
	if ((r = sqf_image_open_backend(be, o, out, err)) < 0)
		return r;
	struct sqf_image *img = *out;
	if (img->opt.block_cache_dir >= 0)
		img->diskcache = sqf_diskcache_open(
		    img->opt.block_cache_dir, fd, offset, size, &img->super, sizeof(img->super),
		    img->super.block_size, img->opt.block_cache_max);
	return 0;
}

void sqf_image_close(struct sqf_image *img)
{
	if (!img)
		return;
	img->closing = true;
	if (img->prefetch_running)
		pthread_join(img->prefetch_thread, NULL);
	sqf_chunkcache_free(img->chunks);
	sqf_readers_free(img);
	sqf_listings_free(&img->listings);
	sqfs_destroy(img->ids);
	sqfs_destroy(img->frags);
	sqf_decoded_free(img->decoded);
	sqf_diskcache_close(img->diskcache);
	if (img->be)
		img->be->destroy(img->be);
	free(img);
}

void sqf_image_stats(const struct sqf_image *img, struct sqf_stats *st)
{
	sqf_chunkcache_stats(img->chunks, st);
	sqf_diskcache_stats(img->diskcache, st);
}
