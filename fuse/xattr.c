/* SPDX-License-Identifier: BSD-3-Clause */
/* Extended attributes: an inode's key/value pairs walked by our own code
 * (bounded: see XATTR_VALUE_MAX) for listxattr and getxattr. */
#include "fuse_priv.h"

#include <endian.h>

#define NO_XATTR 0xFFFFFFFFu

typedef int (*xattr_fn)(const char *name, const void *val, size_t vlen, void *arg);

/* Our own walk over an inode's key/value pairs: libsquashfs's
 * sqfs_xattr_reader_read_value allocates whatever size the image claims
 * (gigabytes for a corrupt one); Linux caps a value at 64 KiB, so do we. */
#define XATTR_VALUE_MAX 65536u

static int kv_read(sqfs_meta_reader_t *m, void *p, size_t n)
{
	return sqfs_meta_reader_read(m, p, n) == 0 ? 0 : -EIO;
}

static int kv_value(struct sqf_image *img, sqfs_meta_reader_t *m, uint16_t type, uint8_t *val,
                    uint32_t *vlen)
{
	uint32_t n;
	if (kv_read(m, &n, sizeof(n)) < 0)
		return -EIO;
	n = le32toh(n);
	if (!(type & SQFS_XATTR_FLAG_OOL)) {
		if (n > XATTR_VALUE_MAX)
			return -EIO;
		*vlen = n;
		return kv_read(m, val, n);
	}
	/* out of line: an 8-byte reference to where the value is stored */
	uint64_t ref;
	if (n != sizeof(ref) || kv_read(m, &ref, sizeof(ref)) < 0)
		return -EIO;
	ref = le64toh(ref);
	sqfs_u64 blk;
	size_t off;
	sqfs_meta_reader_get_position(m, &blk, &off);
	if (sqfs_meta_reader_seek(m, img->xattr_kv_start + (ref >> 16), ref & 0xffff) != 0 ||
	    kv_read(m, &n, sizeof(n)) < 0)
		return -EIO;
	n = le32toh(n);
	if (n > XATTR_VALUE_MAX || kv_read(m, val, n) < 0)
		return -EIO;
	*vlen = n;
	return sqfs_meta_reader_seek(m, blk, off) == 0 ? 0 : -EIO;
}

static int xattr_each(struct sqf_image *img, const sqfs_inode_generic_t *ino, xattr_fn fn,
                      void *arg)
{
	sqfs_u32 idx = NO_XATTR;
	if (sqfs_inode_get_xattr_index(ino, &idx) != 0 || idx == NO_XATTR || !img->has_xattr)
		return 0;
	struct sqf_ctx *c;
	int r = sqf_ctx_get(img, &c);
	if (r < 0)
		return r;
	sqfs_xattr_id_t desc;
	/* Linux caps a file's list of names at 64 KiB: far beyond is corrupt */
	if (!c->xattr || !c->xkv || sqfs_xattr_reader_get_desc(c->xattr, idx, &desc) != 0 ||
	    desc.count > 65536 || desc.size > (16u << 20) ||
	    sqfs_meta_reader_seek(c->xkv, img->xattr_kv_start + (desc.xattr >> 16),
	                          desc.xattr & 0xffff) != 0) {
		sqf_ctx_put(img, c);
		return -EIO;
	}
	uint8_t *val = sifu_xmalloc(XATTR_VALUE_MAX);
	for (uint32_t k = 0; k < desc.count && r == 0; k++) {
		uint16_t kh[2];
		char key[256];
		uint32_t vlen = 0;
		if (kv_read(c->xkv, kh, sizeof(kh)) < 0) {
			r = -EIO;
			break;
		}
		uint16_t type = le16toh(kh[0]), size = le16toh(kh[1]);
		const char *prefix = sqfs_get_xattr_prefix(type & SQFS_XATTR_PREFIX_MASK);
		if (!prefix || size == 0 || size >= sizeof(key) || kv_read(c->xkv, key, size) < 0 ||
		    memchr(key, 0, size) || kv_value(img, c->xkv, type, val, &vlen) < 0) {
			r = -EIO;
			break;
		}
		key[size] = 0;
		char name[300];
		snprintf(name, sizeof(name), "%s%s", prefix, key);
		r = fn(name, val, vlen, arg);
	}
	free(val);
	sqf_ctx_put(img, c);
	return r < 0 ? r : 0;
}

struct xlist {
	char *buf;
	size_t size, used;
};

static int xlist_add(const char *name, const void *val, size_t vlen, void *arg)
{
	struct xlist *l = arg;
	size_t n = strlen(name) + 1;
	if (l->size && l->used + n <= l->size)
		memcpy(l->buf + l->used, name, n);
	l->used += n;
	return 0;
}

ssize_t sqf_listxattr(struct sqf_image *img, const sqfs_inode_generic_t *ino, char *buf,
                      size_t size)
{
	struct xlist l = {buf, size, 0};
	int r = xattr_each(img, ino, xlist_add, &l);
	if (r < 0)
		return r;
	if (size && l.used > size)
		return -ERANGE;
	return (ssize_t)l.used;
}

struct xget {
	const char *name;
	void *buf;
	size_t size;
	ssize_t res;
};

static int xget_match(const char *name, const void *val, size_t vlen, void *arg)
{
	struct xget *g = arg;
	if (g->res != -ENODATA || strcmp(name, g->name) != 0)
		return 0;
	if (g->size == 0)
		g->res = (ssize_t)vlen;
	else if (vlen > g->size)
		g->res = -ERANGE;
	else {
		memcpy(g->buf, val, vlen);
		g->res = (ssize_t)vlen;
	}
	return 0;
}

ssize_t sqf_getxattr(struct sqf_image *img, const sqfs_inode_generic_t *ino, const char *name,
                     void *buf, size_t size)
{
	struct xget g = {name, buf, size, -ENODATA};
	int r = xattr_each(img, ino, xget_match, &g);
	return r < 0 ? r : g.res;
}
