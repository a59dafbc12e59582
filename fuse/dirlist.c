/* SPDX-License-Identifier: BSD-3-Clause */
/* Directory listings: a directory read whole into a sorted array (a lookup
 * is a binary search), kept in a cache of listings shared by all threads,
 * keyed by the directory's inode reference, bounded in bytes, LRU. */
#include "fuse_priv.h"

#define LISTINGS_BOUND (16u << 20)

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

/* A listing being read: its entries and their names, grown as they come.
 * Names are kept by offset until the end (the array moves as it grows). */
struct listing_buf {
	struct sqf_dirent *ents;
	size_t *offs;
	char *names;
	size_t n, cap, nlen, ncap;
};

static void listing_add(struct listing_buf *lb, const sqfs_dir_entry_t *ent, size_t len,
                        sqfs_u32 inum, sqfs_u64 iref)
{
	if (lb->n == lb->cap) {
		lb->cap *= 2;
		lb->ents = sifu_xrealloc(lb->ents, lb->cap * sizeof(*lb->ents));
		lb->offs = sifu_xrealloc(lb->offs, lb->cap * sizeof(*lb->offs));
	}
	while (lb->nlen + len + 1 > lb->ncap) {
		lb->ncap *= 2;
		lb->names = sifu_xrealloc(lb->names, lb->ncap);
	}
	memcpy(lb->names + lb->nlen, ent->name, len);
	lb->names[lb->nlen + len] = 0;
	lb->offs[lb->n] = lb->nlen;
	lb->ents[lb->n] = (struct sqf_dirent){
	    .ref = iref, .inum = inum, .type = ent->type, .namelen = (uint16_t)len};
	lb->nlen += len + 1;
	lb->n++;
}

/* Every entry of the directory S walks, into LB: 0 or -EIO. */
static int listing_read(sqfs_meta_reader_t *dirs, sqfs_readdir_state_t *s, struct listing_buf *lb)
{
	for (;;) {
		sqfs_dir_entry_t *ent = NULL;
		sqfs_u32 inum;
		sqfs_u64 iref;
		int r = sqfs_meta_reader_readdir(dirs, s, &ent, &inum, &iref);
		if (r > 0)
			return 0;
		if (r < 0)
			return -EIO;
		size_t len = (size_t)ent->size + 1;
		if (!sqf_name_ok((const char *)ent->name, len) || ent->type < SQFS_INODE_DIR ||
		    ent->type > SQFS_INODE_EXT_SOCKET) {
			sqfs_free(ent);
			return -EIO;
		}
		listing_add(lb, ent, len, inum, iref);
		sqfs_free(ent);
	}
}

/* The listing of directory REF from LB (taken). */
static struct sqf_dir *listing_finish(uint64_t ref, struct listing_buf *lb)
{
	struct sqf_dir *d = sifu_xcalloc(1, sizeof(*d));
	struct sqf_dirent *ents = lb->ents;
	d->ref = ref;
	d->n = lb->n;
	d->ents = ents;
	d->names = lb->names;
	d->sorted = true;
	for (size_t k = 0; k < lb->n; k++) {
		ents[k].name = lb->names + lb->offs[k];
		if (k > 0 && name_cmp(ents[k - 1].name, ents[k - 1].namelen, ents[k].name,
		                      ents[k].namelen) >= 0)
			d->sorted = false; /* corrupt or foreign writer: linear lookups */
	}
	free(lb->offs);
	d->bytes = sizeof(*d) + lb->cap * sizeof(*ents) + lb->ncap;
	return d;
}

static int dir_load(struct sqf_image *img, uint64_t ref, struct sqf_dir **out)
{
	sqfs_inode_generic_t *ino = NULL;
	int r = sqf_inode_read(img, ref, &ino);
	if (r < 0)
		return r;
	if (!sqf_inode_is_dir(ino)) {
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
	struct listing_buf lb = {.cap = 16, .ncap = 256};
	lb.ents = sifu_xmalloc(lb.cap * sizeof(*lb.ents));
	lb.names = sifu_xmalloc(lb.ncap);
	lb.offs = sifu_xmalloc(lb.cap * sizeof(*lb.offs));
	r = listing_read(c->dirs, &s, &lb);
	sqf_ctx_put(img, c);
	if (r < 0) {
		SIFU_FREE_MANY(lb.ents, lb.names, lb.offs);
		return r;
	}
	*out = listing_finish(ref, &lb);
	return 0;
}

static struct sqf_dir **listings_bucket(struct sqf_listings *lc, uint64_t ref)
{
	return &lc->buckets[(ref * 0x9E3779B97F4A7C15ull >> 17) % lc->nbuckets];
}

static void listings_remove(struct sqf_listings *lc, struct sqf_dir *d)
{
	for (struct sqf_dir **pp = listings_bucket(lc, d->ref); *pp; pp = &(*pp)->hnext)
		if (*pp == d) {
			*pp = d->hnext;
			break;
		}
	sqf_lru_unlink(&lc->lru, &d->lru);
	d->in_cache = false;
	lc->bytes -= d->bytes;
}

int sqf_dir_get(struct sqf_image *img, uint64_t ref, struct sqf_dir **out)
{
	struct sqf_listings *lc = &img->listings;
	pthread_mutex_lock(&lc->lock);
	for (struct sqf_dir *d = *listings_bucket(lc, ref); d; d = d->hnext)
		if (d->ref == ref) {
			d->refs++;
			sqf_lru_unlink(&lc->lru, &d->lru);
			sqf_lru_push(&lc->lru, &d->lru);
			pthread_mutex_unlock(&lc->lock);
			*out = d;
			return 0;
		}
	pthread_mutex_unlock(&lc->lock);

	/* Two threads may load the same directory at once; the loser's copy
	 * is simply not cached.  Cheaper than a wait protocol for a rare race. */
	struct sqf_dir *d;
	int r = dir_load(img, ref, &d);
	if (r < 0)
		return r;
	d->refs = 1;
	pthread_mutex_lock(&lc->lock);
	bool dup = false;
	for (struct sqf_dir *e = *listings_bucket(lc, ref); e; e = e->hnext)
		dup |= e->ref == ref;
	if (!dup && d->bytes <= lc->bound) {
		d->hnext = *listings_bucket(lc, ref);
		*listings_bucket(lc, ref) = d;
		d->in_cache = true;
		sqf_lru_push(&lc->lru, &d->lru);
		lc->bytes += d->bytes;
		for (struct sqf_lru_link *l = lc->lru.tail, *prev; l && lc->bytes > lc->bound;
		     l = prev) {
			prev = l->prev;
			struct sqf_dir *v = sqf_lru_entry(l, struct sqf_dir, lru);
			if (v->refs == 0) {
				listings_remove(lc, v);
				dir_free(v);
			}
		}
	}
	pthread_mutex_unlock(&lc->lock);
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

void sqf_listings_init(struct sqf_listings *lc)
{
	pthread_mutex_init(&lc->lock, NULL);
	lc->nbuckets = 1021;
	lc->buckets = sifu_xcalloc(lc->nbuckets, sizeof(*lc->buckets));
	lc->bound = LISTINGS_BOUND;
}

void sqf_listings_free(struct sqf_listings *lc)
{
	for (size_t b = 0; b < lc->nbuckets; b++)
		for (struct sqf_dir *d = lc->buckets[b], *next; d; d = next) {
			next = d->hnext;
			dir_free(d);
		}
	free(lc->buckets);
	pthread_mutex_destroy(&lc->lock);
}
