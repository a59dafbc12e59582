/* SPDX-License-Identifier: BSD-3-Clause */
/* The I/O layer under the decoder: backends and the shared chunk cache.
 *
 * Why chunks: on Lustre/GPFS a cold client pays a round trip per request, and
 * the decoder asks for small pieces (8 KiB metadata blocks, 4-128 KiB data
 * blocks).  Reading aligned 1 MiB chunks turns many small requests into few
 * large ones; the LRU keeps the working set; one read in flight per chunk
 * stops N threads from fetching the same bytes N times. */
#include "fuse_priv.h"

#include <fcntl.h>
#include <signal.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

/* Threads of the library never take signals: the caller (a supervisor with
 * a signalfd, `sifu mount`) decides who does. */
int sqf_thread_create(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int e = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return e;
}

/* ------------------------------------------------------------ fd backend */

struct fd_backend {
	struct sqf_backend b;
	int fd;
	uint64_t base;
};

static int fd_pread(struct sqf_backend *b, void *buf, size_t len, uint64_t off)
{
	struct fd_backend *f = (struct fd_backend *)b;
	uint8_t *p = buf;
	if (off > b->size || len > b->size - off)
		return -EIO;
	while (len > 0) {
		ssize_t n = pread(f->fd, p, len, (off_t)(f->base + off));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* file shrank under us */
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static void fd_advise(struct sqf_backend *b, uint64_t off, uint64_t len)
{
	struct fd_backend *f = (struct fd_backend *)b;
	posix_fadvise(f->fd, (off_t)(f->base + off), (off_t)len, POSIX_FADV_WILLNEED);
}

static void fd_own_readahead(struct sqf_backend *b, bool ours)
{
	struct fd_backend *f = (struct fd_backend *)b;
	posix_fadvise(f->fd, (off_t)f->base, (off_t)b->size,
	              ours ? POSIX_FADV_RANDOM : POSIX_FADV_NORMAL);
}

/* File systems on a local disk (or in memory), where the page cache serves
 * small reads in microseconds.  Everything else - NFS, Lustre, GPFS, CIFS,
 * CephFS, BeeGFS, FUSE, 9p (WSL2's Windows drives) - keeps the chunk cache,
 * which turns many small reads into few large ones.  overlayfs counts as
 * local: inside a container it almost always stacks local disks (an NFS
 * lower can ask for --image-io chunks). */
static bool fs_is_local(int fd)
{
	static const long local[] = {
	    EXT4_SUPER_MAGIC, /* also ext2/ext3 */
	    XFS_SUPER_MAGIC,       BTRFS_SUPER_MAGIC,       TMPFS_MAGIC,
	    F2FS_SUPER_MAGIC,      0x2fc12fc1 /* zfs */,    0x4244 /* hfs */,
	    0x5346544e /* ntfs */, 0x4d44 /* vfat */,       0x2011bab0 /* exfat */,
	    RAMFS_MAGIC,           0x58295829 /* zonefs */, 0x24051905 /* ubifs */,
	    OVERLAYFS_SUPER_MAGIC, SQUASHFS_MAGIC,          EROFS_SUPER_MAGIC_V1,
	};
	struct statfs sf;
	if (fstatfs(fd, &sf) < 0)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(local); i++)
		if ((long)sf.f_type == local[i])
			return true;
	return false;
}

static void fd_destroy(struct sqf_backend *b)
{
	struct fd_backend *f = (struct fd_backend *)b;
	close(f->fd);
	free(f);
}

int sqf_backend_fd(int fd, uint64_t offset, uint64_t size, struct sqf_backend **out,
                   struct sifu_err *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sifu_err_sys(err, "cannot stat the image");
	if (size == 0 && (uint64_t)st.st_size > offset)
		size = (uint64_t)st.st_size - offset;
	if (S_ISREG(st.st_mode) &&
	    (offset > (uint64_t)st.st_size || size > (uint64_t)st.st_size - offset))
		return sifu_err_set(err, SIFU_E_RANGE, EINVAL,
		                    "image range %" PRIu64 "+%" PRIu64
		                    " is past the end of the file (%" PRIu64 " bytes)",
		                    offset, size, (uint64_t)st.st_size);
	int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (nfd < 0)
		return sifu_err_sys(err, "cannot duplicate the image fd");
	struct fd_backend *f = sifu_xcalloc(1, sizeof(*f));
	f->b.pread = fd_pread;
	f->b.destroy = fd_destroy;
	f->b.advise = fd_advise;
	f->b.own_readahead = fd_own_readahead;
	f->b.size = size;
	f->b.local = S_ISREG(st.st_mode) && fs_is_local(nfd);
	f->fd = nfd;
	f->base = offset;
	*out = &f->b;
	return 0;
}

/* -------------------------------------------------------- memory backend */

struct mem_backend {
	struct sqf_backend b;
	const uint8_t *data;
};

static int mem_pread(struct sqf_backend *b, void *buf, size_t len, uint64_t off)
{
	struct mem_backend *m = (struct mem_backend *)b;
	if (off > b->size || len > b->size - off)
		return -EIO;
	memcpy(buf, m->data + off, len);
	return 0;
}

static void mem_destroy(struct sqf_backend *b)
{
	free(b);
}

struct sqf_backend *sqf_backend_mem(const void *data, size_t size)
{
	struct mem_backend *m = sifu_xcalloc(1, sizeof(*m));
	m->b.pread = mem_pread;
	m->b.destroy = mem_destroy;
	m->b.size = size;
	m->data = data;
	return &m->b;
}

/* ------------------------------------------------------ checking backend
 * `exec --verify` serves what it verified, or nothing (see struct
 * sqf_verity).  Why a layer here rather than a check at open: the server
 * reads the file lazily for as long as the container runs, and any process
 * of the caller's (or the file's owner) may write into it meanwhile; why
 * under the chunk cache: every path to the bytes - chunks, page-cache mode's
 * exact reads, the pinned metadata, read-ahead, extraction - goes through a
 * backend's pread, so nothing can bypass the check.  A block is checked
 * whole, so a read of part of one fetches all of it (64 KiB: a few tens of
 * microseconds of SHA-256); whole blocks in the middle of a read land in the
 * caller's buffer directly. */

struct verity_backend {
	struct sqf_backend b;
	struct sqf_backend *inner;
	const struct sqf_verity *v;
	int warned;
};

/* Is [p, p+len) block I as verified? */
static int verity_check(struct verity_backend *vb, uint64_t i, const uint8_t *p, size_t len)
{
	uint8_t got[32];
	vb->v->hash(p, len, got);
	if (!memcmp(got, vb->v->sha256[i], sizeof(got)))
		return 0;
	uint64_t bs = vb->v->block_size;
	if (!__atomic_exchange_n(&vb->warned, 1, __ATOMIC_RELAXED))
		sifu_log(SIFU_LOG_WARN,
		         "the image changed after verification: bytes %" PRIu64 "-%" PRIu64
		         " of its partition differ from the verified ones; they are not served "
		         "(reads of them fail with an I/O error)",
		         i * bs, i * bs + len - 1);
	else
		sifu_debug("fuse: block %" PRIu64 " differs from the verified image", i);
	return -EIO;
}

static int verity_pread(struct sqf_backend *b, void *buf, size_t len, uint64_t off)
{
	struct verity_backend *vb = (struct verity_backend *)b;
	const uint64_t bs = vb->v->block_size, size = b->size;
	if (off > size || len > size - off)
		return -EIO;
	uint8_t *p = buf, *tmp = NULL;
	const uint64_t end = off + len;
	int r = 0;
	while (r == 0 && off < end) {
		uint64_t i = off / bs, bstart = i * bs;
		uint64_t bend = size - bstart < bs ? size : bstart + bs;
		if (off == bstart && bend <= end) {
			/* a run of whole blocks: read in place, then check each */
			uint64_t last = end == size ? end : bstart + (end - bstart) / bs * bs;
			size_t n = (size_t)(last - off);
			r = vb->inner->pread(vb->inner, p, n, off);
			for (uint64_t at = 0; r == 0 && at < n; at += bs)
				r = verity_check(vb, i + at / bs, p + at,
				                 (size_t)(n - at < bs ? n - at : bs));
			p += n;
			off = last;
			continue;
		}
		/* the part of one block this read needs: check the block whole */
		if (!tmp && !(tmp = malloc((size_t)bs)))
			r = -ENOMEM;
		if (r == 0)
			r = vb->inner->pread(vb->inner, tmp, (size_t)(bend - bstart), bstart);
		if (r == 0)
			r = verity_check(vb, i, tmp, (size_t)(bend - bstart));
		uint64_t n = (bend < end ? bend : end) - off;
		if (r == 0)
			memcpy(p, tmp + (off - bstart), (size_t)n);
		p += n;
		off += n;
	}
	free(tmp);
	if (r < 0)
		memset(buf, 0, len); /* no unchecked byte is left for a careless caller */
	return r;
}

static void verity_advise(struct sqf_backend *b, uint64_t off, uint64_t len)
{
	struct verity_backend *vb = (struct verity_backend *)b;
	if (vb->inner->advise)
		vb->inner->advise(vb->inner, off, len);
}

static void verity_own_readahead(struct sqf_backend *b, bool ours)
{
	struct verity_backend *vb = (struct verity_backend *)b;
	if (vb->inner->own_readahead)
		vb->inner->own_readahead(vb->inner, ours);
}

static void verity_destroy(struct sqf_backend *b)
{
	struct verity_backend *vb = (struct verity_backend *)b;
	vb->inner->destroy(vb->inner);
	free(vb);
}

int sqf_backend_verity(struct sqf_backend *inner, const struct sqf_verity *v,
                       struct sqf_backend **out, struct sifu_err *err)
{
	uint64_t bs = v->block_size;
	if (!bs || (bs & (bs - 1)) || bs > (64u << 20) || !v->hash || !v->sha256 ||
	    v->nblocks != (inner->size + bs - 1) / bs) {
		inner->destroy(inner);
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		                    "the verified block digests do not fit the image range");
	}
	struct verity_backend *vb = sifu_xcalloc(1, sizeof(*vb));
	vb->b.pread = verity_pread;
	vb->b.destroy = verity_destroy;
	vb->b.advise = verity_advise;
	vb->b.own_readahead = verity_own_readahead;
	vb->b.size = inner->size;
	vb->b.local = inner->local;
	vb->inner = inner;
	vb->v = v;
	*out = &vb->b;
	return 0;
}

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
