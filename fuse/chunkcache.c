/* SPDX-License-Identifier: BSD-3-Clause */
/* The chunk cache: aligned chunks of the image file, shared by every
 * thread, with its read-ahead pool and the pinned metadata region.
 *
 * Why chunks: on Lustre/GPFS a cold client pays a round trip per request, and
 * the decoder asks for small pieces (8 KiB metadata blocks, 4-128 KiB data
 * blocks).  Reading aligned 1 MiB chunks turns many small requests into few
 * large ones; the LRU keeps the working set; one read in flight per chunk
 * stops N threads from fetching the same bytes N times. */
#include "fuse_priv.h"

/* ---------------------------------------------------------- chunk cache */

enum chunk_state { CH_QUEUED, CH_LOADING, CH_READY, CH_FAILED };

struct chunk {
	uint64_t idx;
	struct chunk *hnext;
	struct sqf_lru_link lru; /* READY and in the table */
	struct chunk *qnext;     /* read-ahead queue */
	uint8_t *data;
	size_t len;
	enum chunk_state state;
	int err;
	unsigned refs;
	bool in_table, in_lru, by_readahead;
};

#define RA_QUEUE_MAX    64
#define IMAGE_RA_CHUNKS 4
/* counters are read without the lock (stats) and bumped on lock-free paths */
#define COUNT(x, n) __atomic_add_fetch(&(x), (n), __ATOMIC_RELAXED)

struct sqf_chunkcache {
	struct sqf_backend *be;
	uint64_t chunk, bound, nchunks;
	pthread_mutex_t lock;
	pthread_cond_t cond;  /* a chunk finished loading */
	pthread_cond_t qcond; /* work for the read-ahead pool */
	struct chunk **buckets;
	size_t nbuckets;
	struct sqf_lru lru;
	struct chunk *q_head, *q_tail;
	unsigned qlen;
	uint64_t bytes;
	uint64_t last_miss;
	bool stopping;
	bool direct; /* page-cache mode: see sqf_chunkcache_set_direct */
	pthread_t *workers;
	unsigned nworkers, maxworkers; /* started on first use: cheap start-up */
	/* pinned region */
	uint8_t *pin;
	uint64_t pin_off, pin_len;
	/* counters, under lock or atomic */
	uint64_t st_bytes, st_reqs, st_hits, st_misses, st_ra_hits;
};

static struct chunk **bucket(struct sqf_chunkcache *c, uint64_t idx)
{
	return &c->buckets[(idx * 0x9E3779B97F4A7C15ull >> 20) % c->nbuckets];
}

static struct chunk *table_find(struct sqf_chunkcache *c, uint64_t idx)
{
	for (struct chunk *ch = *bucket(c, idx); ch; ch = ch->hnext)
		if (ch->idx == idx)
			return ch;
	return NULL;
}

static void table_remove(struct sqf_chunkcache *c, struct chunk *ch)
{
	for (struct chunk **pp = bucket(c, ch->idx); *pp; pp = &(*pp)->hnext)
		if (*pp == ch) {
			*pp = ch->hnext;
			break;
		}
	ch->in_table = false;
}

static void lru_unlink(struct sqf_chunkcache *c, struct chunk *ch)
{
	if (!ch->in_lru)
		return;
	sqf_lru_unlink(&c->lru, &ch->lru);
	ch->in_lru = false;
}

static void lru_push(struct sqf_chunkcache *c, struct chunk *ch)
{
	sqf_lru_push(&c->lru, &ch->lru);
	ch->in_lru = true;
}

static void chunk_free(struct sqf_chunkcache *c, struct chunk *ch)
{
	c->bytes -= ch->len;
	free(ch->data);
	free(ch);
}

static void chunk_unref(struct sqf_chunkcache *c, struct chunk *ch)
{
	if (--ch->refs == 0 && !ch->in_table)
		chunk_free(c, ch);
}

/* Drop least recently used chunks nobody holds until under the bound. */
static void evict(struct sqf_chunkcache *c)
{
	struct sqf_lru_link *l = c->lru.tail;
	while (c->bytes > c->bound && l) {
		struct sqf_lru_link *prev = l->prev;
		struct chunk *ch = sqf_lru_entry(l, struct chunk, lru);
		if (ch->refs == 0) {
			lru_unlink(c, ch);
			table_remove(c, ch);
			chunk_free(c, ch);
		}
		l = prev;
	}
}

static struct chunk *chunk_new(struct sqf_chunkcache *c, uint64_t idx, enum chunk_state st)
{
	struct chunk *ch = sifu_xcalloc(1, sizeof(*ch));
	ch->idx = idx;
	ch->state = st;
	uint64_t start = idx * c->chunk;
	ch->len = (size_t)(c->be->size - start < c->chunk ? c->be->size - start : c->chunk);
	ch->hnext = *bucket(c, idx);
	*bucket(c, idx) = ch;
	ch->in_table = true;
	c->bytes += ch->len;
	return ch;
}

static void queue_locked(struct sqf_chunkcache *c, uint64_t first, uint64_t last);
static void *ra_worker(void *arg);

/* Called with the lock held and ch->state == CH_LOADING; returns locked. */
static void chunk_load(struct sqf_chunkcache *c, struct chunk *ch)
{
	pthread_mutex_unlock(&c->lock);
	uint8_t *data = malloc(ch->len);
	int r = data ? c->be->pread(c->be, data, ch->len, ch->idx * c->chunk) : -ENOMEM;
	pthread_mutex_lock(&c->lock);
	COUNT(c->st_reqs, 1);
	if (r == 0) {
		COUNT(c->st_bytes, ch->len);
		ch->data = data;
		ch->state = CH_READY;
		if (ch->in_table)
			lru_push(c, ch);
	} else {
		free(data);
		ch->err = r;
		ch->state = CH_FAILED;
		/* forget it, so the next reader tries again (a transient error
		 * on a network file system must not stick) */
		if (ch->in_table)
			table_remove(c, ch);
	}
	pthread_cond_broadcast(&c->cond);
	evict(c);
}

/* Get chunk IDX, loading it if needed; returns it referenced, or NULL with
 * *errp set.  Lock held on entry and exit. */
static struct chunk *chunk_get(struct sqf_chunkcache *c, uint64_t idx, int *errp)
{
	struct chunk *ch = table_find(c, idx);
	if (ch && ch->state == CH_READY) {
		COUNT(c->st_hits, 1);
		if (ch->by_readahead) {
			COUNT(c->st_ra_hits, 1);
			ch->by_readahead = false;
		}
		lru_unlink(c, ch);
		lru_push(c, ch);
		ch->refs++;
		return ch;
	}
	if (!ch) {
		COUNT(c->st_misses, 1);
		ch = chunk_new(c, idx, CH_LOADING);
		ch->refs++;
		/* Misses on consecutive chunks (many small files read in the
		 * order they were packed, e.g. a Python import): fetch the next
		 * few in the background, as one stream of large requests. */
		if (c->maxworkers && idx == c->last_miss + 1)
			queue_locked(c, idx + 1, idx + IMAGE_RA_CHUNKS);
		c->last_miss = idx;
		chunk_load(c, ch);
	} else if (ch->state == CH_QUEUED) {
		/* queued for read-ahead but not started: load it ourselves */
		COUNT(c->st_misses, 1);
		ch->state = CH_LOADING;
		ch->by_readahead = false;
		ch->refs++;
		chunk_load(c, ch);
	} else {
		/* in flight; wait for whoever loads it */
		if (ch->by_readahead) {
			COUNT(c->st_ra_hits, 1);
			ch->by_readahead = false;
		} else {
			COUNT(c->st_misses, 1);
		}
		ch->refs++;
		while (ch->state == CH_LOADING)
			pthread_cond_wait(&c->cond, &c->lock);
	}
	if (ch->state != CH_READY) {
		*errp = ch->err ? ch->err : -EIO;
		chunk_unref(c, ch);
		return NULL;
	}
	return ch;
}

int sqf_chunkcache_read(struct sqf_chunkcache *c, void *buf, size_t len, uint64_t off)
{
	if (off > c->be->size || len > c->be->size - off)
		return -EIO;
	if (len == 0)
		return 0;
	if (c->pin && off >= c->pin_off && off + len <= c->pin_off + c->pin_len) {
		memcpy(buf, c->pin + (off - c->pin_off), len);
		COUNT(c->st_hits, 1);
		return 0;
	}
	if (c->direct) {
		COUNT(c->st_reqs, 1);
		int r = c->be->pread(c->be, buf, len, off);
		if (r == 0)
			COUNT(c->st_bytes, len);
		return r;
	}
	uint64_t first = off / c->chunk, last = (off + len - 1) / c->chunk;
	/* a read spanning several chunks: let the pool fetch the later ones
	 * while we fetch the first */
	if (last > first)
		sqf_chunkcache_prefetch(c, (first + 1) * c->chunk, (last - first) * c->chunk);
	uint8_t *p = buf;
	pthread_mutex_lock(&c->lock);
	for (uint64_t i = first; i <= last; i++) {
		int r = 0;
		struct chunk *ch = chunk_get(c, i, &r);
		if (!ch) {
			pthread_mutex_unlock(&c->lock);
			return r;
		}
		uint64_t cstart = i * c->chunk;
		uint64_t from = off > cstart ? off - cstart : 0;
		uint64_t to = off + len - cstart < ch->len ? off + len - cstart : ch->len;
		pthread_mutex_unlock(&c->lock);
		memcpy(p, ch->data + from, (size_t)(to - from));
		p += to - from;
		pthread_mutex_lock(&c->lock);
		chunk_unref(c, ch);
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Queue chunks [first, last] for the read-ahead pool.  Lock held. */
static void queue_locked(struct sqf_chunkcache *c, uint64_t first, uint64_t last)
{
	/* never let read-ahead push out more than half the cache */
	uint64_t ra_max = c->bound / c->chunk / 2;
	if (ra_max > RA_QUEUE_MAX)
		ra_max = RA_QUEUE_MAX;
	if (last >= c->nchunks)
		last = c->nchunks - 1;
	while (c->nworkers < c->maxworkers && !c->stopping &&
	       sqf_thread_create(&c->workers[c->nworkers], ra_worker, c) == 0)
		c->nworkers++;
	if (c->nworkers == 0)
		return;
	for (uint64_t i = first; i <= last && c->qlen < ra_max && !c->stopping; i++) {
		if (c->pin && i * c->chunk >= c->pin_off &&
		    (i + 1) * c->chunk <= c->pin_off + c->pin_len)
			continue;
		if (table_find(c, i))
			continue;
		struct chunk *ch = chunk_new(c, i, CH_QUEUED);
		ch->by_readahead = true;
		ch->refs++; /* the queue's */
		if (c->q_tail)
			c->q_tail->qnext = ch;
		else
			c->q_head = ch;
		c->q_tail = ch;
		c->qlen++;
		pthread_cond_signal(&c->qcond);
	}
}

void sqf_chunkcache_prefetch(struct sqf_chunkcache *c, uint64_t off, uint64_t len)
{
	if (len == 0 || off >= c->be->size)
		return;
	if (len > c->be->size - off)
		len = c->be->size - off;
	if (c->direct) {
		if (c->be->advise)
			c->be->advise(c->be, off, len);
		return;
	}
	if (c->maxworkers == 0)
		return;
	pthread_mutex_lock(&c->lock);
	queue_locked(c, off / c->chunk, (off + len - 1) / c->chunk);
	pthread_mutex_unlock(&c->lock);
}

static void *ra_worker(void *arg)
{
	struct sqf_chunkcache *c = arg;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (!c->q_head && !c->stopping)
			pthread_cond_wait(&c->qcond, &c->lock);
		if (c->stopping)
			break;
		struct chunk *ch = c->q_head;
		c->q_head = ch->qnext;
		if (!c->q_head)
			c->q_tail = NULL;
		ch->qnext = NULL;
		c->qlen--;
		if (ch->state == CH_QUEUED) {
			ch->state = CH_LOADING;
			chunk_load(c, ch);
		}
		chunk_unref(c, ch);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

struct sqf_chunkcache *sqf_chunkcache_new(struct sqf_backend *be, uint64_t chunk_size,
                                          uint64_t bound, unsigned workers)
{
	struct sqf_chunkcache *c = sifu_xcalloc(1, sizeof(*c));
	c->be = be;
	c->chunk = chunk_size ? chunk_size : (1u << 20);
	c->bound = bound > c->chunk * 4 ? bound : c->chunk * 4;
	c->nchunks = (be->size + c->chunk - 1) / c->chunk;
	c->nbuckets = (size_t)(c->bound / c->chunk) * 2 + 61;
	c->buckets = sifu_xcalloc(c->nbuckets, sizeof(*c->buckets));
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	pthread_cond_init(&c->qcond, NULL);
	c->workers = sifu_xcalloc(workers ? workers : 1, sizeof(pthread_t));
	c->maxworkers = workers;
	return c;
}

void sqf_chunkcache_free(struct sqf_chunkcache *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_cond_broadcast(&c->qcond);
	pthread_mutex_unlock(&c->lock);
	for (unsigned i = 0; i < c->nworkers; i++)
		pthread_join(c->workers[i], NULL);
	/* queued chunks still hold the queue's reference */
	for (struct chunk *ch = c->q_head, *next; ch; ch = next) {
		next = ch->qnext;
		chunk_unref(c, ch);
	}
	for (size_t b = 0; b < c->nbuckets; b++)
		for (struct chunk *ch = c->buckets[b], *next; ch; ch = next) {
			next = ch->hnext;
			free(ch->data);
			free(ch);
		}
	free(c->buckets);
	free(c->workers);
	free(c->pin);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	pthread_cond_destroy(&c->qcond);
	free(c);
}

struct pin_part {
	struct sqf_chunkcache *c;
	uint64_t off, len;
	int r;
};

static void *pin_reader(void *arg)
{
	struct pin_part *p = arg;
	p->r =
	    p->c->be->pread(p->c->be, p->c->pin + (p->off - p->c->pin_off), (size_t)p->len, p->off);
	return NULL;
}

int sqf_chunkcache_pin(struct sqf_chunkcache *c, uint64_t off, uint64_t len)
{
	if (off > c->be->size || len > c->be->size - off || len == 0 || c->pin)
		return -EINVAL;
	uint8_t *buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	c->pin = buf;
	c->pin_off = off;
	c->pin_len = 0; /* not served until complete */
	/* A few large reads in parallel: on a parallel file system each goes
	 * to a different server.  From the page cache one read is quickest. */
	enum { NPARTS = 4 };
	if (c->direct) {
		int r = c->be->pread(c->be, buf, (size_t)len, off);
		COUNT(c->st_reqs, 1);
		if (r < 0) {
			free(buf);
			c->pin = NULL;
			return r;
		}
		COUNT(c->st_bytes, len);
		c->pin_len = len;
		return 0;
	}
	struct pin_part parts[NPARTS];
	pthread_t th[NPARTS];
	bool started[NPARTS] = {0};
	uint64_t per = (len + NPARTS - 1) / NPARTS;
	per = (per + c->chunk - 1) / c->chunk * c->chunk;
	int r = 0;
	for (unsigned i = 0; i < NPARTS; i++) {
		uint64_t s = off + per * i;
		parts[i] = (struct pin_part){c, s, 0, 0};
		if (per * i >= len)
			continue;
		parts[i].len = len - per * i < per ? len - per * i : per;
		if (i > 0 && sqf_thread_create(&th[i], pin_reader, &parts[i]) == 0)
			started[i] = true;
		else
			pin_reader(&parts[i]);
	}
	for (unsigned i = 0; i < NPARTS; i++) {
		if (started[i])
			pthread_join(th[i], NULL);
		if (parts[i].len) {
			COUNT(c->st_reqs, 1);
			if (parts[i].r == 0)
				COUNT(c->st_bytes, parts[i].len);
			else
				r = parts[i].r;
		}
	}
	if (r < 0) {
		free(buf);
		c->pin = NULL;
		return r;
	}
	c->pin_len = len;
	return 0;
}

void sqf_chunkcache_set_direct(struct sqf_chunkcache *c)
{
	c->direct = true;
	c->maxworkers = 0;
}

bool sqf_chunkcache_is_direct(const struct sqf_chunkcache *c)
{
	return c->direct;
}

void sqf_chunkcache_stats(struct sqf_chunkcache *c, struct sqf_stats *st)
{
	st->pagecache = c->direct;
	st->backend_bytes = __atomic_load_n(&c->st_bytes, __ATOMIC_RELAXED);
	st->backend_requests = __atomic_load_n(&c->st_reqs, __ATOMIC_RELAXED);
	st->cache_hits = __atomic_load_n(&c->st_hits, __ATOMIC_RELAXED);
	st->cache_misses = __atomic_load_n(&c->st_misses, __ATOMIC_RELAXED);
	st->readahead_hits = __atomic_load_n(&c->st_ra_hits, __ATOMIC_RELAXED);
}

uint64_t sqf_chunkcache_chunk_size(const struct sqf_chunkcache *c)
{
	return c->chunk;
}

uint64_t sqf_chunkcache_bytes(struct sqf_chunkcache *c)
{
	pthread_mutex_lock(&c->lock);
	uint64_t b = c->bytes;
	pthread_mutex_unlock(&c->lock);
	return b;
}
