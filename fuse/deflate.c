/* SPDX-License-Identifier: BSD-3-Clause */
/* Decompress-only compressor objects for libsquashfs's readers, which only
 * ever call do_block: the base shared with lzo.c, and gzip through
 * libdeflate.
 *
 * SquashFS "gzip" blocks are zlib streams decompressed whole into a buffer
 * of known size, the case libdeflate is built for: it inflates them 2-2.5x
 * faster than zlib's streaming inflate (busybox: 3.9 ms against 9.0 ms on
 * the development VM), and decompression is most of what a cold container
 * start and a cold `import numpy` cost us.  One object per reader context,
 * so one thread at a time. */
#include "fuse_priv.h"

#include <libdeflate.h>

static void decomp_get_configuration(const sqfs_compressor_t *cmp, sqfs_compressor_config_t *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->id = ((const struct sqf_decomp *)cmp)->id;
	cfg->flags = SQFS_COMP_FLAG_UNCOMPRESS;
}

static int decomp_write_options(sqfs_compressor_t *cmp, sqfs_file_t *file)
{
	return SQFS_ERROR_UNSUPPORTED;
}

/* The options (level, window, algorithm) only matter to a compressor: the
 * stored streams decompress without them.  Nothing to read. */
static int decomp_read_options(sqfs_compressor_t *cmp, sqfs_file_t *file)
{
	return 0;
}

void sqf_decomp_init(struct sqf_decomp *d, SQFS_COMPRESSOR id,
                     sqfs_s32 (*do_block)(sqfs_compressor_t *, const sqfs_u8 *, sqfs_u32, sqfs_u8 *,
                                          sqfs_u32),
                     void (*destroy)(sqfs_object_t *))
{
	d->id = id;
	d->base.base.destroy = destroy;
	d->base.get_configuration = decomp_get_configuration;
	d->base.write_options = decomp_write_options;
	d->base.read_options = decomp_read_options;
	d->base.do_block = do_block;
}

/* ------------------------------------------------------------------ gzip */

struct sqf_deflate {
	struct sqf_decomp d;
	struct libdeflate_decompressor *z;
};

static sqfs_s32 deflate_do_block(sqfs_compressor_t *cmp, const sqfs_u8 *in, sqfs_u32 size,
                                 sqfs_u8 *out, sqfs_u32 outsize)
{
	struct sqf_deflate *z = (struct sqf_deflate *)cmp;
	size_t got = 0;
	/* checks the zlib header and the Adler-32 trailer: input is untrusted */
	enum libdeflate_result r = libdeflate_zlib_decompress(z->z, in, size, out, outsize, &got);
	if (r != LIBDEFLATE_SUCCESS || got > outsize)
		return SQFS_ERROR_COMPRESSOR;
	return (sqfs_s32)got;
}

static void deflate_destroy(sqfs_object_t *o)
{
	struct sqf_deflate *z = (struct sqf_deflate *)o;
	libdeflate_free_decompressor(z->z);
	free(z);
}

int sqf_deflate_create(sqfs_compressor_t **out)
{
	struct sqf_deflate *z = sifu_xcalloc(1, sizeof(*z));
	z->z = libdeflate_alloc_decompressor();
	if (!z->z) {
		free(z);
		return SQFS_ERROR_ALLOC;
	}
	sqf_decomp_init(&z->d, SQFS_COMP_GZIP, deflate_do_block, deflate_destroy);
	*out = &z->d.base;
	return 0;
}
