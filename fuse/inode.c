/* SPDX-License-Identifier: BSD-3-Clause */
/* Inodes: read one (its size fields checked before libsquashfs trusts
 * them), and what stat(2) and readlink(2) say about it. */
#include "fuse_priv.h"

#include <endian.h>
#include <sys/sysmacros.h>

/* The fixed part of a file or symlink inode, read before libsquashfs reads
 * the whole inode: libsquashfs 1.2 sizes its allocation from fields the image
 * controls (a file's block count from its size, a symlink's target length),
 * so a crafted inode asked it for hundreds of GiB (found by fuzz_squashfs).
 * A block list lives in the inode table, whose uncompressed size is at most
 * 8 KiB for every 3 compressed bytes: a file claiming more blocks than that
 * can hold is corrupt.  Symlink targets longer than PATH_MAX are refused as
 * the kernel's squashfs refuses them. */
static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

/* An extended directory's index entries each carry a name whose length
 * libsquashfs grows its allocation by: a name is at most 256 bytes (stored
 * as length - 1), as in the kernel's squashfs (found by fuzz_squashfs: a
 * crafted length asked for 2 GiB). */
static bool dir_index_sane(sqfs_meta_reader_t *m)
{
	uint8_t d[24], e[12], name[256];
	if (sqfs_meta_reader_read(m, d, sizeof(d)) != 0)
		return false;
	unsigned count = (unsigned)(d[16] | d[17] << 8);
	for (unsigned i = 0; i < count; i++) {
		if (sqfs_meta_reader_read(m, e, sizeof(e)) != 0)
			return false;
		uint32_t len = get_le32(e + 8);
		if (len >= sizeof(name) || sqfs_meta_reader_read(m, name, len + 1) != 0)
			return false;
	}
	return true;
}

static bool inode_sizes_sane(const struct sqf_image *img, sqfs_meta_reader_t *m, uint64_t block,
                             size_t offset)
{
	const sqfs_super_t *s = &img->super;
	uint8_t h[16 + 40];
	if (sqfs_meta_reader_seek(m, s->inode_table_start + block, offset) != 0 ||
	    sqfs_meta_reader_read(m, h, 16) != 0)
		return false;
	uint16_t type = (uint16_t)(h[0] | h[1] << 8);
	uint64_t size, frag;
	switch (type) {
	case SQFS_INODE_FILE:
		if (sqfs_meta_reader_read(m, h + 16, 16) != 0)
			return false;
		frag = get_le32(h + 20);
		size = get_le32(h + 28);
		break;
	case SQFS_INODE_EXT_FILE:
		if (sqfs_meta_reader_read(m, h + 16, 40) != 0)
			return false;
		size = get_le32(h + 24) | (uint64_t)get_le32(h + 28) << 32;
		frag = get_le32(h + 44);
		break;
	case SQFS_INODE_SLINK:
	case SQFS_INODE_EXT_SLINK:
		if (sqfs_meta_reader_read(m, h + 16, 8) != 0)
			return false;
		return get_le32(h + 20) <= PATH_MAX;
	case SQFS_INODE_EXT_DIR: return dir_index_sane(m);
	default: return true;
	}
	uint64_t table = s->directory_table_start - s->inode_table_start;
	uint64_t room = (table / 3 + 1) * SQF_META_BLOCK;
	uint64_t blocks = size / s->block_size + (size % s->block_size && frag == 0xFFFFFFFFu);
	return blocks <= room / sizeof(uint32_t);
}

int sqf_inode_read(struct sqf_image *img, uint64_t ref, sqfs_inode_generic_t **out)
{
	uint64_t block = ref >> 16;
	size_t offset = ref & 0xffff;
	if (offset >= SQF_META_BLOCK ||
	    block >= img->super.directory_table_start - img->super.inode_table_start)
		return -EIO;
	struct sqf_ctx *c;
	int r = sqf_ctx_get(img, &c);
	if (r < 0)
		return r;
	if (!inode_sizes_sane(img, c->inodes, block, offset)) {
		sqf_ctx_put(img, c);
		sifu_debug("fuse: inode %" PRIx64 ": size fields past what the image can hold",
		           ref);
		return -EIO;
	}
	/* libsquashfs 1.2 takes the block relative to the inode table here */
	r = sqfs_meta_reader_read_inode(c->inodes, &img->super, block, offset, out);
	sqf_ctx_put(img, c);
	if (r != 0)
		sifu_debug("fuse: inode %" PRIx64 ": libsquashfs error %d", ref, r);
	if (r != 0)
		return r == SQFS_ERROR_ALLOC ? -ENOMEM : -EIO;
	if ((*out)->base.type < SQFS_INODE_DIR || (*out)->base.type > SQFS_INODE_EXT_SOCKET) {
		sqfs_free(*out);
		*out = NULL;
		return -EIO;
	}
	return 0;
}

static uint32_t inode_nlink(const sqfs_inode_generic_t *i)
{
	switch (i->base.type) {
	case SQFS_INODE_DIR: return i->data.dir.nlink;
	case SQFS_INODE_EXT_DIR: return i->data.dir_ext.nlink;
	case SQFS_INODE_FILE: return 1;
	case SQFS_INODE_EXT_FILE: return i->data.file_ext.nlink;
	case SQFS_INODE_SLINK: return i->data.slink.nlink;
	case SQFS_INODE_EXT_SLINK: return i->data.slink_ext.nlink;
	case SQFS_INODE_BDEV:
	case SQFS_INODE_CDEV: return i->data.dev.nlink;
	case SQFS_INODE_EXT_BDEV:
	case SQFS_INODE_EXT_CDEV: return i->data.dev_ext.nlink;
	case SQFS_INODE_FIFO:
	case SQFS_INODE_SOCKET: return i->data.ipc.nlink;
	default: return i->data.ipc_ext.nlink;
	}
}

static mode_t inode_fmt(const sqfs_inode_generic_t *i)
{
	static const mode_t fmt[] = {0,       S_IFDIR, S_IFREG, S_IFLNK,
	                             S_IFBLK, S_IFCHR, S_IFIFO, S_IFSOCK};
	unsigned t = i->base.type;
	if (t > 7)
		t -= 7;
	return t >= 1 && t <= 7 ? fmt[t] : 0;
}

int sqf_inode_stat(struct sqf_image *img, const sqfs_inode_generic_t *i, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = inode_fmt(i) | (i->base.mode & 07777);
	st->st_ino = i->base.inode_number;
	st->st_nlink = inode_nlink(i);
	if (img->opt.owner_self) {
		st->st_uid = img->opt.uid;
		st->st_gid = img->opt.gid;
	} else {
		sqfs_u32 uid, gid;
		if (sqfs_id_table_index_to_id(img->ids, i->base.uid_idx, &uid) != 0 ||
		    sqfs_id_table_index_to_id(img->ids, i->base.gid_idx, &gid) != 0)
			return -EIO;
		st->st_uid = uid;
		st->st_gid = gid;
	}
	switch (i->base.type) {
	case SQFS_INODE_FILE:
	case SQFS_INODE_EXT_FILE: {
		sqfs_u64 size = 0;
		sqfs_inode_get_file_size(i, &size);
		st->st_size = (off_t)size;
		break;
	}
	case SQFS_INODE_DIR: st->st_size = i->data.dir.size; break;
	case SQFS_INODE_EXT_DIR: st->st_size = i->data.dir_ext.size; break;
	case SQFS_INODE_SLINK:
	case SQFS_INODE_EXT_SLINK:
		st->st_size = i->data.slink.target_size; /* same offset in ext */
		break;
	case SQFS_INODE_BDEV:
	case SQFS_INODE_CDEV:
	case SQFS_INODE_EXT_BDEV:
	case SQFS_INODE_EXT_CDEV: {
		/* the kernel's new_encode_dev() layout */
		uint32_t d = i->data.dev.devno;
		st->st_rdev = makedev((d & 0xfff00) >> 8, (d & 0xff) | ((d >> 12) & 0xfff00));
		break;
	}
	}
	st->st_blksize = img->super.block_size;
	st->st_blocks = (st->st_size + 511) / 512;
	st->st_mtim.tv_sec = i->base.mod_time;
	st->st_atim = st->st_ctim = st->st_mtim;
	return 0;
}

int sqf_readlink(const sqfs_inode_generic_t *i, char **out)
{
	if (i->base.type != SQFS_INODE_SLINK && i->base.type != SQFS_INODE_EXT_SLINK)
		return -EINVAL;
	uint32_t n = i->data.slink.target_size;
	if (n == 0 || n >= 4096 || n > i->payload_bytes_used)
		return -EIO;
	const char *t = (const char *)i->extra;
	if (memchr(t, 0, n))
		return -EIO;
	char *s = sifu_xmalloc(n + 1);
	memcpy(s, t, n);
	s[n] = 0;
	*out = s;
	return 0;
}

uint64_t sqf_root_ref(const struct sqf_image *img)
{
	return img->super.root_inode_ref;
}
