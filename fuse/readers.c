/* SPDX-License-Identifier: BSD-3-Clause */
/* The pool of per-thread libsquashfs readers.  libsquashfs readers keep
 * state (the last metadata block, a compressor stream), so every caller
 * borrows a private set (struct sqf_ctx) for the length of a call and gives
 * it back; sets are made on demand and kept until the image closes. */
#include "fuse_priv.h"

#include <endian.h>

/* A table of COUNT entries of ESIZE bytes in 8 KiB metadata blocks, indexed
 * by a list of u64 block positions at START: the index must fit in the image.
 * Checked before libsquashfs sizes its buffers from COUNT (a corrupt count
 * would otherwise mean gigabytes of allocation and reads). */
bool sqf_table_fits(const struct sqf_image *img, uint64_t start, uint64_t count, uint64_t esize)
{
	uint64_t blocks = (count * esize + SQF_META_BLOCK - 1) / SQF_META_BLOCK;
	uint64_t end = img->super.bytes_used;
	/* and each block (>= 3 bytes) lies before its index */
	return start < end && blocks * 8 <= end - start && blocks * 3 <= start;
}

static bool xattr_header_ok(struct sqf_image *img)
{
	uint8_t hdr[16];
	if (img->super.xattr_id_table_start > img->be->size - sizeof(hdr) ||
	    sqf_chunkcache_read(img->chunks, hdr, sizeof(hdr), img->super.xattr_id_table_start) < 0)
		return false;
	uint64_t kv_start;
	uint32_t ids;
	memcpy(&kv_start, hdr, sizeof(kv_start));
	memcpy(&ids, hdr + 8, sizeof(ids));
	kv_start = le64toh(kv_start);
	ids = le32toh(ids);
	img->xattr_kv_start = kv_start;
	return kv_start < img->super.xattr_id_table_start &&
	       sqf_table_fits(img, img->super.xattr_id_table_start + sizeof(hdr), ids, 16);
}

static void ctx_free(struct sqf_ctx *c)
{
	if (!c)
		return;
	sqfs_destroy(c->xattr);
	sqfs_destroy(c->xkv);
	sqfs_destroy(c->dirs);
	sqfs_destroy(c->inodes);
	sqfs_destroy(c->cmp);
	free(c);
}

static int ctx_new(struct sqf_image *img, struct sqf_ctx **out)
{
	sqfs_compressor_config_t cfg;
	sqfs_file_t *file = &img->file.base;
	const sqfs_super_t *s = &img->super;
	struct sqf_ctx *c = sifu_xcalloc(1, sizeof(*c));
	int r;
	if (s->compression_id == SQFS_COMP_GZIP) {
		r = sqf_deflate_create(&c->cmp); /* faster than libsquashfs' zlib */
	} else {
		r = sqfs_compressor_config_init(&cfg, (SQFS_COMPRESSOR)s->compression_id,
		                                s->block_size, SQFS_COMP_FLAG_UNCOMPRESS);
		if (r == 0)
			r = sqfs_compressor_create(&cfg, &c->cmp);
	}
	if (r == SQFS_ERROR_UNSUPPORTED && s->compression_id == SQFS_COMP_LZO)
		r = sqf_lzo_create(&c->cmp);
	if (r == 0 && (s->flags & SQFS_FLAG_COMPRESSOR_OPTIONS))
		r = c->cmp->read_options(c->cmp, file);
	if (r != 0) {
		ctx_free(c);
		return r == SQFS_ERROR_UNSUPPORTED ? -EOPNOTSUPP : -EIO;
	}
	c->inodes =
	    sqfs_meta_reader_create(file, c->cmp, s->inode_table_start, s->directory_table_start);
	c->dirs = sqfs_meta_reader_create(file, c->cmp, s->directory_table_start, img->dir_limit);
	if (!c->inodes || !c->dirs) {
		ctx_free(c);
		return -ENOMEM;
	}
	/* A broken fragment or xattr table must not take down the whole
	 * image: files that need them answer EIO, the rest is served. */
	if (img->has_xattr && xattr_header_ok(img)) {
		c->xkv = sqfs_meta_reader_create(file, c->cmp, img->xattr_kv_start,
		                                 s->xattr_id_table_start);
		c->xattr = sqfs_xattr_reader_create(0);
		if (c->xattr && sqfs_xattr_reader_load(c->xattr, s, file, c->cmp) != 0) {
			sifu_debug("fuse: xattr table unreadable");
			sqfs_destroy(c->xattr);
			c->xattr = NULL;
		}
	}
	*out = c;
	return 0;
}

int sqf_ctx_get(struct sqf_image *img, struct sqf_ctx **out)
{
	pthread_mutex_lock(&img->ctx_lock);
	struct sqf_ctx *c = img->ctx_free;
	if (c)
		img->ctx_free = c->next;
	pthread_mutex_unlock(&img->ctx_lock);
	if (c) {
		*out = c;
		return 0;
	}
	return ctx_new(img, out);
}

void sqf_ctx_put(struct sqf_image *img, struct sqf_ctx *c)
{
	pthread_mutex_lock(&img->ctx_lock);
	c->next = img->ctx_free;
	img->ctx_free = c;
	pthread_mutex_unlock(&img->ctx_lock);
}

void sqf_readers_init(struct sqf_image *img)
{
	pthread_mutex_init(&img->ctx_lock, NULL);
}

void sqf_readers_free(struct sqf_image *img)
{
	for (struct sqf_ctx *c = img->ctx_free, *next; c; c = next) {
		next = c->next;
		ctx_free(c);
	}
	pthread_mutex_destroy(&img->ctx_lock);
}
