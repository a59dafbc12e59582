/* SPDX-License-Identifier: BSD-3-Clause */
/* gzip images through libdeflate.  SquashFS "gzip" blocks are zlib streams
 * decompressed whole into a buffer of known size, which is the case
 * libdeflate is built for: it inflates them 2-2.5x faster than zlib's
 * streaming inflate (busybox: 3.9 ms against 9.0 ms on the development VM),
 * and decompression is most of what a cold container start and a cold
 * `import numpy` cost us.  Like lzo.c, a decompress-only object that
 * libsquashfs's readers call through do_block; one per reader context, so
 * one thread at a time. */
#include "sqf_priv.h"

#include <libdeflate.h>

struct sqf_deflate {
	sqfs_compressor_t base;
	struct libdeflate_decompressor *d;
};

static sqfs_s32 deflate_do_block(sqfs_compressor_t *cmp, const sqfs_u8 *in, sqfs_u32 size,
                                 sqfs_u8 *out, sqfs_u32 outsize)
{
	struct sqf_deflate *z = (struct sqf_deflate *)cmp;
	size_t got = 0;
	/* checks the zlib header and the Adler-32 trailer: input is untrusted */
	enum libdeflate_result r = libdeflate_zlib_decompress(z->d, in, size, out, outsize, &got);
	if (r != LIBDEFLATE_SUCCESS || got > outsize)
		return SQFS_ERROR_COMPRESSOR;
	return (sqfs_s32)got;
}

static void deflate_get_configuration(const sqfs_compressor_t *cmp, sqfs_compressor_config_t *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->id = SQFS_COMP_GZIP;
	cfg->flags = SQFS_COMP_FLAG_UNCOMPRESS;
}

static int deflate_write_options(sqfs_compressor_t *cmp, sqfs_file_t *file)
{
	return SQFS_ERROR_UNSUPPORTED;
}

/* gzip's options (level, window, strategies) only matter to the
 * compressor: any zlib stream decompresses with a 32 KiB window. */
static int deflate_read_options(sqfs_compressor_t *cmp, sqfs_file_t *file)
{
	return 0;
}

static void deflate_destroy(sqfs_object_t *o)
{
	struct sqf_deflate *z = (struct sqf_deflate *)o;
	libdeflate_free_decompressor(z->d);
	free(z);
}

int sqf_deflate_create(sqfs_compressor_t **out)
{
	struct sqf_deflate *z = sifu_xcalloc(1, sizeof(*z));
	z->d = libdeflate_alloc_decompressor();
	if (!z->d) {
		free(z);
		return SQFS_ERROR_ALLOC;
	}
	z->base.base.destroy = deflate_destroy;
	z->base.get_configuration = deflate_get_configuration;
	z->base.write_options = deflate_write_options;
	z->base.read_options = deflate_read_options;
	z->base.do_block = deflate_do_block;
	*out = &z->base;
	return 0;
}
