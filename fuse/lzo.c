/* SPDX-License-Identifier: BSD-3-Clause */
/* LZO for images made by `mksquashfs -comp lzo`.  Debian's libsquashfs is
 * built without LZO (liblzo2 is GPL, libsquashfs LGPL), so we plug our own
 * decompressor object into its readers: they only ever call do_block.
 * Built only where liblzo2 is found (HAVE_LZO in config.h). */
#include "config.h"
#include "fuse_priv.h"

#if HAVE_LZO
#include <lzo/lzo1x.h>

static sqfs_s32 lzo_do_block(sqfs_compressor_t *cmp, const sqfs_u8 *in, sqfs_u32 size, sqfs_u8 *out,
                             sqfs_u32 outsize)
{
	lzo_uint len = outsize;
	/* the _safe variant checks both buffers: the input is untrusted */
	int r = lzo1x_decompress_safe(in, size, out, &len, NULL);
	if (r != LZO_E_OK || len > outsize)
		return SQFS_ERROR_COMPRESSOR;
	return (sqfs_s32)len;
}

static void lzo_destroy(sqfs_object_t *o)
{
	free(o);
}

int sqf_lzo_create(sqfs_compressor_t **out)
{
	static bool inited;
	if (!__atomic_load_n(&inited, __ATOMIC_ACQUIRE)) {
		if (lzo_init() != LZO_E_OK)
			return SQFS_ERROR_UNSUPPORTED;
		__atomic_store_n(&inited, true, __ATOMIC_RELEASE);
	}
	struct sqf_decomp *c = sifu_xcalloc(1, sizeof(*c));
	sqf_decomp_init(c, SQFS_COMP_LZO, lzo_do_block, lzo_destroy);
	*out = &c->base;
	return 0;
}
#else
int sqf_lzo_create(sqfs_compressor_t **out)
{
	return SQFS_ERROR_UNSUPPORTED;
}
#endif
