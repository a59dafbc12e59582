/* SPDX-License-Identifier: BSD-3-Clause */
/* File data: blocks and tail-end fragments, decompressed once into a cache
 * shared by all threads.
 *
 * Why not sqfs_data_reader_read: its one-block cache is per reader, and each
 * FUSE thread borrows a different reader, so concurrent kernel read-ahead
 * requests of one file (or small files sharing a fragment block) decompressed
 * the same block again in every thread - half the throughput of a
 * single-threaded server on a sequential read. */
#include "fuse_priv.h"

#include <sys/mman.h>

#define NO_FRAGMENT     0xFFFFFFFFu
#define BLOCK_RAW       (1u << 24)
#define BLOCK_SIZE_MASK (BLOCK_RAW - 1)
#define FRAG_KEY        (1ull << 63)

struct dblock {
	uint64_t key;
	struct dblock *hnext;
	struct sqf_lru_link lru;
	unsigned refs;
	bool cached;
	bool heap; /* malloc'd (the slab was full or unavailable) */
	size_t len;
	const uint8_t *data; /* buf, or a block in the block cache's mapping */
	uint8_t buf[];
};

/* Blocks live in a slab made once, with transparent huge pages where the
 * kernel allows them, and are recycled: a short-lived container start
 * decompresses a few dozen blocks, and a page fault for every 4 KiB of
 * fresh malloc'd memory cost more than the decompression on the VMs we
 * measured. */
struct sqf_decoded {
	pthread_mutex_t lock;
	struct dblock *buckets[257];
	struct sqf_lru lru;
	size_t n, max;
	uint8_t *slab;
	size_t slab_len, slot, nslots, used;
	struct dblock *free; /* recycled slots, linked through hnext */
};

#define SLAB_EXTRA 32 /* slots beyond max: blocks readers still hold */
#define HUGE_2M    (2u << 20)

/* A block of BS bytes: a recycled or fresh slab slot, else malloc. */
static struct dblock *decoded_alloc(struct sqf_decoded *d, size_t bs)
{
	size_t slot = (sizeof(struct dblock) + bs + 63) & ~(size_t)63;
	pthread_mutex_lock(&d->lock);
	if (!d->slab && d->slot == 0) {
		d->slot = slot;
		d->nslots = d->max + SLAB_EXTRA;
		size_t len = (d->nslots * slot + HUGE_2M - 1) & ~(size_t)(HUGE_2M - 1);
		/* over-allocate to align the slab on 2 MiB, for huge pages */
		uint8_t *p = mmap(NULL, len + HUGE_2M, PROT_READ | PROT_WRITE,
		                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p != MAP_FAILED) {
			uint8_t *a =
			    (uint8_t *)(((uintptr_t)p + HUGE_2M - 1) & ~(uintptr_t)(HUGE_2M - 1));
			if (a > p)
				munmap(p, (size_t)(a - p));
			munmap(a + len, (size_t)(p + HUGE_2M - a));
			madvise(a, len, MADV_HUGEPAGE);
			d->slab = a;
			d->slab_len = len;
		}
	}
	struct dblock *b = NULL;
	if (slot == d->slot && d->free) {
		b = d->free;
		d->free = b->hnext;
	} else if (slot == d->slot && d->slab && d->used < d->nslots) {
		b = (struct dblock *)(d->slab + d->used++ * slot);
	}
	pthread_mutex_unlock(&d->lock);
	if (b) {
		memset(b, 0, sizeof(*b));
		b->data = b->buf;
		return b;
	}
	b = malloc(sizeof(*b) + bs);
	if (b) {
		memset(b, 0, sizeof(*b));
		b->heap = true;
		b->data = b->buf;
	}
	return b;
}

/* Give B back (lock held by the caller when LOCKED). */
static void decoded_release_locked(struct sqf_decoded *d, struct dblock *b)
{
	if (b->heap) {
		free(b);
		return;
	}
	b->hnext = d->free;
	d->free = b;
}

static void decoded_release(struct sqf_decoded *d, struct dblock *b)
{
	if (b->heap) {
		free(b);
		return;
	}
	pthread_mutex_lock(&d->lock);
	decoded_release_locked(d, b);
	pthread_mutex_unlock(&d->lock);
}

struct sqf_decoded *sqf_decoded_new(size_t max)
{
	struct sqf_decoded *d = sifu_xcalloc(1, sizeof(*d));
	pthread_mutex_init(&d->lock, NULL);
	d->max = max < 4 ? 4 : max;
	return d;
}

void sqf_decoded_free(struct sqf_decoded *d)
{
	if (!d)
		return;
	for (struct sqf_lru_link *l = d->lru.head, *next; l; l = next) {
		next = l->next;
		struct dblock *b = sqf_lru_entry(l, struct dblock, lru);
		if (b->heap)
			free(b);
	}
	if (d->slab)
		munmap(d->slab, d->slab_len);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

static struct dblock **decoded_slot(struct sqf_decoded *d, uint64_t key)
{
	return &d->buckets[(key ^ (key >> 17)) % ARRAY_SIZE(d->buckets)];
}

static void decoded_put(struct sqf_decoded *d, struct dblock *b)
{
	pthread_mutex_lock(&d->lock);
	if (--b->refs == 0 && !b->cached)
		decoded_release_locked(d, b);
	pthread_mutex_unlock(&d->lock);
}

/* Insert B (refs 1 held by the caller) unless KEY is there already; returns
 * the entry to use, referenced. */
static struct dblock *decoded_insert(struct sqf_decoded *d, struct dblock *b)
{
	pthread_mutex_lock(&d->lock);
	for (struct dblock *e = *decoded_slot(d, b->key); e; e = e->hnext)
		if (e->key == b->key) {
			e->refs++;
			decoded_release_locked(d, b);
			pthread_mutex_unlock(&d->lock);
			return e;
		}
	b->hnext = *decoded_slot(d, b->key);
	*decoded_slot(d, b->key) = b;
	b->cached = true;
	sqf_lru_push(&d->lru, &b->lru);
	d->n++;
	for (struct sqf_lru_link *l = d->lru.tail, *prev; l && d->n > d->max; l = prev) {
		prev = l->prev;
		struct dblock *v = sqf_lru_entry(l, struct dblock, lru);
		for (struct dblock **pp = decoded_slot(d, v->key); *pp; pp = &(*pp)->hnext)
			if (*pp == v) {
				*pp = v->hnext;
				break;
			}
		sqf_lru_unlink(&d->lru, &v->lru);
		v->cached = false;
		d->n--;
		/* B itself is referenced by the caller (refs 1), whatever an
		 * eviction of it from the list does */
		if (v != b && v->refs == 0)
			decoded_release_locked(d, v);
	}
	pthread_mutex_unlock(&d->lock);
	return b;
}

static struct dblock *decoded_find(struct sqf_decoded *d, uint64_t key)
{
	pthread_mutex_lock(&d->lock);
	struct dblock *e = *decoded_slot(d, key);
	while (e && e->key != key)
		e = e->hnext;
	if (e) {
		e->refs++;
		sqf_lru_unlink(&d->lru, &e->lru);
		sqf_lru_push(&d->lru, &e->lru);
	}
	pthread_mutex_unlock(&d->lock);
	return e;
}

/* The decompressed block stored at DISK (SIZE bytes on disk, RAW if stored
 * uncompressed), expected to hold WANT bytes (at least WANT for fragment
 * blocks, MIN_ONLY); KEEP: one for the block cache.  Returns it referenced,
 * or NULL with *errp. */
static struct dblock *get_block(struct sqf_image *img, uint64_t key, uint64_t disk, uint32_t size,
                                bool raw, size_t want, bool min_only, bool keep, int *errp)
{
	struct dblock *b = decoded_find(img->decoded, key);
	/* a crafted image may point two files at one block with different
	 * sizes: a cached block is used only if it holds what this file needs
	 * (found by fuzz_squashfs: the copy read past the block) */
	if (b && (min_only ? b->len < want : b->len != want)) {
		decoded_put(img->decoded, b);
		*errp = -EIO;
		return NULL;
	}
	if (b)
		return b;
	size_t bs = img->super.block_size;
	if (size == 0 || size > bs || disk > img->be->size || size > img->be->size - disk) {
		*errp = -EIO;
		return NULL;
	}
	/* stored blocks are as cheap to read again as to copy */
	uint32_t csize = size | (raw ? BLOCK_RAW : 0);
	keep = keep && !raw && img->diskcache;
	size_t got = 0;
	const uint8_t *kept = keep ? sqf_diskcache_find(img->diskcache, key, csize, &got) : NULL;
	uint8_t *in = NULL;
	int r = 0;
	/* a compressed block's bytes are read in any case: a kept copy is used
	 * only if it was inflated from these very bytes (diskcache.c) */
	if (!raw && !(in = malloc(size))) {
		*errp = -ENOMEM;
		return NULL;
	}
	if (!raw && (r = sqf_chunkcache_read(img->chunks, in, size, disk)) < 0) {
		free(in);
		*errp = r;
		return NULL;
	}
	if (kept && !sqf_diskcache_same_source(img->diskcache, key, kept, in))
		kept = NULL;
	/* a kept block is used where it lies in the cache's mapping */
	b = kept ? sifu_xcalloc(1, sizeof(*b)) : decoded_alloc(img->decoded, bs);
	if (!b) {
		free(in);
		*errp = -ENOMEM;
		return NULL;
	}
	b->key = key;
	b->refs = 1;
	if (kept) {
		b->heap = true;
		b->data = kept;
		b->len = got;
		keep = false;
	} else if (raw) {
		if ((r = sqf_chunkcache_read(img->chunks, b->buf, size, disk)) == 0)
			b->len = size;
	} else {
		struct sqf_ctx *c;
		if ((r = sqf_ctx_get(img, &c)) == 0) {
			sqfs_s32 n = c->cmp->do_block(c->cmp, in, size, b->buf, (sqfs_u32)bs);
			sqf_ctx_put(img, c);
			if (n <= 0)
				r = -EIO;
			else
				b->len = (size_t)n;
		}
	}
	if (r == 0 && (min_only ? b->len < want : b->len != want))
		r = -EIO; /* a block that does not decompress to its size */
	if (r < 0) {
		free(in);
		decoded_release(img->decoded, b);
		*errp = r;
		return NULL;
	}
	if (keep)
		sqf_diskcache_put(img->diskcache, key, csize, in, b->data, b->len);
	free(in);
	return decoded_insert(img->decoded, b);
}

ssize_t sqf_read(struct sqf_image *img, const sqfs_inode_generic_t *ino, uint64_t off, void *buf,
                 size_t len)
{
	sqfs_u64 size = 0, start = 0;
	sqfs_u32 frag = NO_FRAGMENT, frag_off = 0;
	if (!sqf_inode_is_file(ino))
		return -EISDIR;
	sqfs_inode_get_file_size(ino, &size);
	sqfs_inode_get_file_block_start(ino, &start);
	sqfs_inode_get_frag_location(ino, &frag, &frag_off);
	if (off >= size || len == 0)
		return 0;
	if (len > size - off)
		len = (size_t)(size - off);
	const uint64_t bs = img->super.block_size;
	const size_t nblocks = ino->payload_bytes_used / sizeof(sqfs_u32);
	const bool has_tail = frag != NO_FRAGMENT && size % bs != 0;
	if (nblocks != size / bs + (!has_tail && size % bs != 0))
		return -EIO; /* the block list does not match the size */
	/* where block b0 is stored: the sum of the sizes before it */
	uint64_t b0 = off / bs, disk = start;
	for (uint64_t k = 0; k < b0 && k < nblocks; k++)
		disk += ino->extra[k] & BLOCK_SIZE_MASK;
	uint8_t *out = buf;
	size_t done = 0;
	for (uint64_t b = b0; done < len; b++) {
		uint64_t pos = off + done, bstart = b * bs;
		size_t ulen = (size_t)(size - bstart < bs ? size - bstart : bs);
		size_t from = (size_t)(pos - bstart), n = ulen - from;
		if (n > len - done)
			n = len - done;
		struct dblock *blk;
		int r = 0;
		if (b < nblocks) {
			uint32_t raw = ino->extra[b];
			uint32_t dsize = raw & BLOCK_SIZE_MASK;
			if (dsize == 0) {
				memset(out + done, 0, n); /* sparse */
				done += n;
				continue;
			}
			blk = get_block(img, disk, disk, dsize, raw & BLOCK_RAW, ulen, false,
			                size <= SQF_DISKCACHE_FILE_MAX, &r);
			disk += dsize;
		} else {
			sqfs_fragment_t fe;
			if (!img->frags || sqfs_frag_table_lookup(img->frags, frag, &fe) != 0)
				return -EIO;
			uint32_t fsize = fe.size & BLOCK_SIZE_MASK;
			blk =
			    get_block(img, fe.start_offset | FRAG_KEY, fe.start_offset, fsize,
			              fe.size & BLOCK_RAW, (size_t)frag_off + ulen, true, true, &r);
			from += frag_off;
		}
		if (!blk)
			return r;
		memcpy(out + done, blk->data + from, n);
		decoded_put(img->decoded, blk);
		done += n;
	}
	return (ssize_t)done;
}

ssize_t sqf_read_direct(struct sqf_image *img, const sqfs_inode_generic_t *ino, uint64_t off,
                        size_t len, const void **ptr, void **handle)
{
	sqfs_u64 size = 0, start = 0;
	sqfs_u32 frag = NO_FRAGMENT, frag_off = 0;
	if (!sqf_inode_is_file(ino))
		return 0;
	sqfs_inode_get_file_size(ino, &size);
	sqfs_inode_get_file_block_start(ino, &start);
	sqfs_inode_get_frag_location(ino, &frag, &frag_off);
	const uint64_t bs = img->super.block_size;
	const size_t nblocks = ino->payload_bytes_used / sizeof(sqfs_u32);
	const bool has_tail = frag != NO_FRAGMENT && size % bs != 0;
	if (off >= size || len == 0 || nblocks != size / bs + (!has_tail && size % bs != 0))
		return 0; /* EOF or odd: the copying path answers */
	if (len > size - off)
		len = (size_t)(size - off);
	uint64_t b = off / bs, bstart = b * bs;
	size_t ulen = (size_t)(size - bstart < bs ? size - bstart : bs);
	size_t from = (size_t)(off - bstart);
	if (b >= nblocks || from + len > ulen || (ino->extra[b] & BLOCK_SIZE_MASK) == 0)
		return 0; /* a tail, a hole, or more than one block */
	uint64_t disk = start;
	for (uint64_t k = 0; k < b; k++)
		disk += ino->extra[k] & BLOCK_SIZE_MASK;
	int r = 0;
	struct dblock *blk =
	    get_block(img, disk, disk, ino->extra[b] & BLOCK_SIZE_MASK, ino->extra[b] & BLOCK_RAW,
	              ulen, false, size <= SQF_DISKCACHE_FILE_MAX, &r);
	if (!blk)
		return r;
	*ptr = blk->data + from;
	*handle = blk;
	return (ssize_t)len;
}

void sqf_read_release(struct sqf_image *img, void *handle)
{
	decoded_put(img->decoded, handle);
}

/* Read-ahead: queue the stored blocks behind file bytes [off, off+len). */
void sqf_readahead(struct sqf_image *img, const sqfs_inode_generic_t *ino, uint64_t off,
                   uint64_t len)
{
	if (!sqf_inode_is_file(ino) || len == 0)
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
