/* SPDX-License-Identifier: BSD-3-Clause */
/* The image: libsquashfs readers over our own sqfs_file_t, whose read_at goes
 * through the chunk cache.  libsquashfs readers keep state (the last
 * metadata block, the last data and fragment block, a compressor stream), so
 * every caller borrows a private set of readers (struct sqf_ctx) from a pool;
 * everything shared (superblock, id table, cache, directory listings) is
 * read-only or behind a lock. */
#include "fuse_priv.h"

#include <endian.h>
#include <fcntl.h>
#include <sys/sysmacros.h>

#define NO_XATTR       0xFFFFFFFFu
#define SQF_META_BLOCK 8192 /* uncompressed metadata block size (SquashFS 4.0) */
#define LISTINGS_BOUND (16u << 20)

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

/* ---------------------------------------------------------- reader pool */

/* A table of COUNT entries of ESIZE bytes in 8 KiB metadata blocks, indexed
 * by a list of u64 block positions at START: the index must fit in the image.
 * Checked before libsquashfs sizes its buffers from COUNT (a corrupt count
 * would otherwise mean gigabytes of allocation and reads). */
static bool table_fits(const struct sqf_image *img, uint64_t start, uint64_t count, uint64_t esize)
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
	       table_fits(img, img->super.xattr_id_table_start + sizeof(hdr), ids, 16);
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

/* --------------------------------------------------------------- inodes */

static bool is_dir(const sqfs_inode_generic_t *i)
{
	return i->base.type == SQFS_INODE_DIR || i->base.type == SQFS_INODE_EXT_DIR;
}

static bool is_file(const sqfs_inode_generic_t *i)
{
	return i->base.type == SQFS_INODE_FILE || i->base.type == SQFS_INODE_EXT_FILE;
}

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

/* ---------------------------------------------------------- directories */

bool sqf_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > 256 || memchr(name, '/', len) || memchr(name, 0, len))
		return false;
	return !(name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')));
}

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	return c ? c : (alen > blen) - (alen < blen);
}

static void dir_free(struct sqf_dir *d)
{
	free(d->ents);
	free(d->names);
	free(d);
}

static int dir_load(struct sqf_image *img, uint64_t ref, struct sqf_dir **out)
{
	sqfs_inode_generic_t *ino = NULL;
	int r = sqf_inode_read(img, ref, &ino);
	if (r < 0)
		return r;
	if (!is_dir(ino)) {
		sqfs_free(ino);
		return -ENOTDIR;
	}
	sqfs_readdir_state_t s;
	r = sqfs_readdir_state_init(&s, &img->super, ino);
	sqfs_free(ino);
	if (r != 0)
		return -EIO;
	struct sqf_ctx *c;
	if ((r = sqf_ctx_get(img, &c)) < 0)
		return r;
	size_t cap = 16, ncap = 256, nlen = 0, n = 0;
	struct sqf_dirent *ents = sifu_xmalloc(cap * sizeof(*ents));
	char *names = sifu_xmalloc(ncap);
	size_t *offs = sifu_xmalloc(cap * sizeof(*offs));
	for (;;) {
		sqfs_dir_entry_t *ent = NULL;
		sqfs_u32 inum;
		sqfs_u64 iref;
		r = sqfs_meta_reader_readdir(c->dirs, &s, &ent, &inum, &iref);
		if (r > 0) {
			r = 0;
			break;
		}
		if (r < 0) {
			r = -EIO;
			break;
		}
		size_t len = (size_t)ent->size + 1;
		if (!sqf_name_ok((const char *)ent->name, len) || ent->type < SQFS_INODE_DIR ||
		    ent->type > SQFS_INODE_EXT_SOCKET) {
			sqfs_free(ent);
			r = -EIO;
			break;
		}
		if (n == cap) {
			cap *= 2;
			ents = sifu_xrealloc(ents, cap * sizeof(*ents));
			offs = sifu_xrealloc(offs, cap * sizeof(*offs));
		}
		while (nlen + len + 1 > ncap) {
			ncap *= 2;
			names = sifu_xrealloc(names, ncap);
		}
		memcpy(names + nlen, ent->name, len);
		names[nlen + len] = 0;
		offs[n] = nlen;
		ents[n] = (struct sqf_dirent){
		    .ref = iref, .inum = inum, .type = ent->type, .namelen = (uint16_t)len};
		nlen += len + 1;
		n++;
		sqfs_free(ent);
	}
	sqf_ctx_put(img, c);
	if (r < 0) {
		free(ents);
		free(names);
		free(offs);
		return r;
	}
	struct sqf_dir *d = sifu_xcalloc(1, sizeof(*d));
	d->ref = ref;
	d->n = n;
	d->ents = ents;
	d->names = names;
	d->sorted = true;
	for (size_t k = 0; k < n; k++) {
		ents[k].name = names + offs[k];
		if (k > 0 && name_cmp(ents[k - 1].name, ents[k - 1].namelen, ents[k].name,
		                      ents[k].namelen) >= 0)
			d->sorted = false; /* corrupt or foreign writer: linear lookups */
	}
	free(offs);
	d->bytes = sizeof(*d) + cap * sizeof(*ents) + ncap;
	*out = d;
	return 0;
}

static struct sqf_dir **listings_bucket(struct sqf_listings *dc, uint64_t ref)
{
	return &dc->buckets[(ref * 0x9E3779B97F4A7C15ull >> 17) % dc->nbuckets];
}

static void listings_remove(struct sqf_listings *dc, struct sqf_dir *d)
{
	for (struct sqf_dir **pp = listings_bucket(dc, d->ref); *pp; pp = &(*pp)->hnext)
		if (*pp == d) {
			*pp = d->hnext;
			break;
		}
	sqf_lru_unlink(&dc->lru, &d->lru);
	d->in_cache = false;
	dc->bytes -= d->bytes;
}

int sqf_dir_get(struct sqf_image *img, uint64_t ref, struct sqf_dir **out)
{
	struct sqf_listings *dc = &img->listings;
	pthread_mutex_lock(&dc->lock);
	for (struct sqf_dir *d = *listings_bucket(dc, ref); d; d = d->hnext)
		if (d->ref == ref) {
			d->refs++;
			sqf_lru_unlink(&dc->lru, &d->lru);
			sqf_lru_push(&dc->lru, &d->lru);
			pthread_mutex_unlock(&dc->lock);
			*out = d;
			return 0;
		}
	pthread_mutex_unlock(&dc->lock);

	/* Two threads may load the same directory at once; the loser's copy
	 * is simply not cached.  Cheaper than a wait protocol for a rare race. */
	struct sqf_dir *d;
	int r = dir_load(img, ref, &d);
	if (r < 0)
		return r;
	d->refs = 1;
	pthread_mutex_lock(&dc->lock);
	bool dup = false;
	for (struct sqf_dir *e = *listings_bucket(dc, ref); e; e = e->hnext)
		dup |= e->ref == ref;
	if (!dup && d->bytes <= dc->bound) {
		d->hnext = *listings_bucket(dc, ref);
		*listings_bucket(dc, ref) = d;
		d->in_cache = true;
		sqf_lru_push(&dc->lru, &d->lru);
		dc->bytes += d->bytes;
		for (struct sqf_lru_link *l = dc->lru.tail, *prev; l && dc->bytes > dc->bound;
		     l = prev) {
			prev = l->prev;
			struct sqf_dir *v = sqf_lru_entry(l, struct sqf_dir, lru);
			if (v->refs == 0) {
				listings_remove(dc, v);
				dir_free(v);
			}
		}
	}
	pthread_mutex_unlock(&dc->lock);
	*out = d;
	return 0;
}

void sqf_dir_put(struct sqf_image *img, struct sqf_dir *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&img->listings.lock);
	bool drop = --d->refs == 0 && !d->in_cache;
	pthread_mutex_unlock(&img->listings.lock);
	if (drop)
		dir_free(d);
}

ssize_t sqf_dir_find(const struct sqf_dir *d, const char *name, size_t len)
{
	if (!d->sorted) {
		for (size_t k = 0; k < d->n; k++)
			if (name_cmp(d->ents[k].name, d->ents[k].namelen, name, len) == 0)
				return (ssize_t)k;
		return -1;
	}
	size_t lo = 0, hi = d->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = name_cmp(d->ents[mid].name, d->ents[mid].namelen, name, len);
		if (c == 0)
			return (ssize_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

int sqf_lookup(struct sqf_image *img, uint64_t dir_ref, const char *name, uint64_t *child)
{
	size_t len = strlen(name);
	if (!sqf_name_ok(name, len))
		return -ENOENT;
	struct sqf_dir *d;
	int r = sqf_dir_get(img, dir_ref, &d);
	if (r < 0)
		return r;
	ssize_t k = sqf_dir_find(d, name, len);
	if (k >= 0)
		*child = d->ents[k].ref;
	sqf_dir_put(img, d);
	return k >= 0 ? 0 : -ENOENT;
}

/* ------------------------------------------------------------ file data */

void sqf_readahead(struct sqf_image *img, const sqfs_inode_generic_t *ino, uint64_t off,
                   uint64_t len)
{
	if (!is_file(ino) || len == 0)
		return;
	sqfs_u64 start = 0, size = 0;
	sqfs_inode_get_file_block_start(ino, &start);
	sqfs_inode_get_file_size(ino, &size);
	uint64_t bs = img->super.block_size;
	size_t nblocks = ino->payload_bytes_used / sizeof(sqfs_u32);
	if (off >= size || nblocks == 0)
		return;
	uint64_t b0 = off / bs, b1 = (off + len - 1) / bs;
	if (b0 >= nblocks)
		return;
	if (b1 >= nblocks)
		b1 = nblocks - 1;
	uint64_t pos = start, from = 0;
	for (uint64_t b = 0; b <= b1; b++) {
		if (b == b0)
			from = pos;
		pos += ino->extra[b] & ((1u << 24) - 1);
	}
	if (pos > from)
		sqf_chunkcache_prefetch(img->chunks, from, pos - from);
}

/* -------------------------------------------------------------- xattrs */

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

int sqf_image_open_backend(struct sqf_backend *be, const struct sqf_options *o,
                           struct sqf_image **out, struct sifu_err *err)
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
	pthread_mutex_init(&img->ctx_lock, NULL);
	pthread_mutex_init(&img->listings.lock, NULL);
	img->listings.nbuckets = 1021;
	img->listings.buckets =
	    sifu_xcalloc(img->listings.nbuckets, sizeof(*img->listings.buckets));
	img->listings.bound = LISTINGS_BOUND;

	int r = sqfs_super_read(&img->super, &img->file.base);
	if (r != 0) {
		r = r == SQFS_ERROR_UNSUPPORTED
		        ? sifu_err_set(err, SIFU_E_UNSUPPORTED, EOPNOTSUPP,
		                       "unsupported SquashFS version or compressor")
		        : sifu_err_set(err, SIFU_E_CORRUPT, EIO,
		                       "not a SquashFS 4.0 image (bad superblock)");
		goto fail;
	}
	if ((r = check_super(img, err)) < 0)
		goto fail;
	img->dir_limit = dir_limit(&img->super);
	img->has_xattr = !(img->super.flags & SQFS_FLAG_NO_XATTRS) &&
	                 img->super.xattr_id_table_start < img->super.bytes_used;
	if (img->opt.prefetch != SQF_PREFETCH_NONE) {
		uint64_t from = img->super.inode_table_start, len = img->super.bytes_used - from;
		/* huge tables go through the cache instead of being pinned */
		if (len <= (512u << 20) && (r = sqf_chunkcache_pin(img->chunks, from, len)) < 0) {
			r = sifu_err_set(err, SIFU_E_SYS, -r,
			                 "cannot read the SquashFS metadata tables");
			goto fail;
		}
	}
	struct sqf_ctx *c;
	if ((r = sqf_ctx_get(img, &c)) < 0) {
		r = r == -EOPNOTSUPP
		        ? sifu_err_set(err, SIFU_E_UNSUPPORTED, EOPNOTSUPP,
		                       "SquashFS compressor '%s' (id %u) is not supported",
		                       sqfs_compressor_name_from_id(
		                           (SQFS_COMPRESSOR)img->super.compression_id)
		                           ?: "unknown",
		                       img->super.compression_id)
		        : sifu_err_set(err, SIFU_E_CORRUPT, -r,
		                       "cannot set up the SquashFS decompressor");
		goto fail;
	}
	img->ids = sqfs_id_table_create(0);
	r = img->ids ? sqfs_id_table_read(img->ids, &img->file.base, &img->super, c->cmp) : -1;
	if (r == 0 && !(img->super.flags & SQFS_FLAG_NO_FRAGMENTS) &&
	    img->super.fragment_entry_count > 0 &&
	    table_fits(img, img->super.fragment_table_start, img->super.fragment_entry_count, 16)) {
		img->frags = sqfs_frag_table_create(0);
		if (img->frags &&
		    sqfs_frag_table_read(img->frags, &img->file.base, &img->super, c->cmp) != 0) {
			sifu_debug(
			    "fuse: fragment table unreadable; files with tail ends will fail");
			sqfs_destroy(img->frags);
			img->frags = NULL;
		}
	}
	sqf_ctx_put(img, c);
	if (r != 0) {
		r = sifu_err_set(err, SIFU_E_CORRUPT, EIO,
		                 "SquashFS uid/gid table is unreadable (corrupt image)");
		goto fail;
	}
	sqfs_inode_generic_t *root;
	if ((r = sqf_inode_read(img, img->super.root_inode_ref, &root)) < 0) {
		r = sifu_err_set(err, SIFU_E_CORRUPT, -r,
		                 "SquashFS root inode is unreadable (corrupt image)");
		goto fail;
	}
	bool ok = is_dir(root);
	sqfs_free(root);
	if (!ok) {
		r = sifu_err_set(err, SIFU_E_CORRUPT, EIO,
		                 "SquashFS root inode is not a directory (corrupt image)");
		goto fail;
	}
	if (img->opt.prefetch == SQF_PREFETCH_ALL &&
	    sqf_thread_create(&img->prefetch_thread, prefetch_all, img) == 0)
		img->prefetch_running = true;
	*out = img;
	return 0;
fail:
	sqf_image_close(img);
	return r;
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
	for (struct sqf_ctx *c = img->ctx_free, *next; c; c = next) {
		next = c->next;
		ctx_free(c);
	}
	for (size_t b = 0; b < img->listings.nbuckets; b++)
		for (struct sqf_dir *d = img->listings.buckets[b], *next; d; d = next) {
			next = d->hnext;
			dir_free(d);
		}
	free(img->listings.buckets);
	sqfs_destroy(img->ids);
	sqfs_destroy(img->frags);
	sqf_decoded_free(img->decoded);
	sqf_diskcache_close(img->diskcache);
	if (img->be)
		img->be->destroy(img->be);
	pthread_mutex_destroy(&img->ctx_lock);
	pthread_mutex_destroy(&img->listings.lock);
	free(img);
}

void sqf_image_stats(const struct sqf_image *img, struct sqf_stats *st)
{
	sqf_chunkcache_stats(img->chunks, st);
	sqf_diskcache_stats(img->diskcache, st);
}
