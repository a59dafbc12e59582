/* SPDX-License-Identifier: BSD-3-Clause */
/* The block cache: decompressed blocks of an image's programs, libraries
 * and small files, kept in a file per image so that the next start of the
 * same image copies them instead of inflating them again.
 *
 * Why: a FUSE mount's page cache dies with the mount, so every `sifu exec`
 * used to inflate the same executable and libraries again (busybox alone is
 * 4.8 ms of libdeflate on the machines we measured, most of a start).  A
 * kernel squashfs mount keeps them in the page cache across runs; this file
 * does the same for sifu, and for every process of a job on a node.
 *
 * One file per image identity (device, inode, size, mtime, partition and
 * superblock) in a directory of the caller's own (mode 0700).  After a
 * fixed header, records are appended whole with one O_APPEND write each, so
 * concurrent starts of one image may append side by side; a reader maps the
 * file as it is at open and indexes the records it finds.  Each record
 * carries a CRC-32 of its header and of its data, checked before a block is
 * used: a torn or damaged record is a miss, never wrong data.  Files are only
 * ever appended to or unlinked (never truncated), so a mapping stays valid.
 *
 * The identity does not prove the content: an image rewritten in place at
 * the same size with its mtime put back (touch -r, a tool that keeps times)
 * has the same one.  So each record also keeps the compressed bytes it was
 * inflated from, and a block is used only where the image still holds those
 * very bytes (sqf_diskcache_same_source says why that is enough).  That costs a read
 * of the compressed block per use (from the page cache, locally) but no
 * inflate, which is what the cache saves. */
#include "fuse_priv.h"

#include <dirent.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <sys/mman.h>
#include <sys/uio.h>

#define DISK_MAGIC     "SIFUBLK2"  /* 2: records carry their source bytes */
#define DISK_REC_MAGIC 0x31524253u /* "SBR1" */
#define DISK_MAPS      16          /* windows mapped as the file grows (see disk_refresh) */

struct disk_header {
	char magic[8];
	uint32_t version, block_size;
	uint64_t offset, size;           /* the SquashFS inside the image file */
	uint64_t dev, ino, fsize, mtime; /* the image file */
	uint64_t super_hash;
	uint8_t pad[128 - 72];
};

/* A record: this header, the decompressed data (LEN bytes) and the bytes
 * it was decompressed from (src_len(CSIZE) bytes, as stored in the image),
 * each padded to 8 bytes. */
struct disk_rec {
	uint32_t magic, len; /* decompressed length */
	uint64_t key;        /* the block's key (data.c) */
	uint32_t csize;      /* its size on disk, with the uncompressed flag */
	uint32_t crc;        /* of the data (the source is checked against the image) */
	uint32_t hcrc;       /* of the 24 bytes above */
	uint32_t zero;
};

#define DISK_SRC_MASK ((1u << 24) - 1) /* csize without the uncompressed flag */

static uint64_t pad8(uint64_t n)
{
	return (n + 7) & ~7ull;
}

static uint64_t rec_bytes(uint32_t len, uint32_t csize)
{
	return sizeof(struct disk_rec) + pad8(len) + pad8(csize & DISK_SRC_MASK);
}

struct disk_ent {
	uint64_t key;
	const struct disk_rec *rec; /* in a mapping, or NULL: appended by us, not mapped */
	uint32_t csize;
	uint8_t state; /* 0 unchecked, 1 good, 2 bad */
};

struct sqf_diskcache {
	pthread_mutex_t lock;
	int fd, dirfd; /* dirfd: the caller's */
	char name[32];
	struct {
		void *p;
		size_t len;
	} maps[DISK_MAPS];
	unsigned nmaps;
	uint64_t scanned; /* records indexed up to here */
	uint64_t seen;    /* the file's size at the last look, plus our appends */
	uint32_t block_size;
	struct disk_ent *tab; /* open addressing; UINT64_MAX marks a free slot */
	size_t cap, n;
	uint64_t file_size, max;
	bool full;    /* at the bound, or a write failed: append no more */
	bool damaged; /* a record failed its CRC, or the image changed: file dropped */
	uint64_t hits, misses, appended;
};

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static uint32_t rec_hcrc(const struct disk_rec *r)
{
	return (uint32_t)libdeflate_crc32(0, r, offsetof(struct disk_rec, hcrc));
}

/* keys are disk offsets (never UINT64_MAX); slot of KEY */
static struct disk_ent *disk_slot(struct sqf_diskcache *c, uint64_t key)
{
	size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & (c->cap - 1);
	while (c->tab[i].key != UINT64_MAX && c->tab[i].key != key)
		i = (i + 1) & (c->cap - 1);
	return &c->tab[i];
}

static void disk_grow(struct sqf_diskcache *c)
{
	struct disk_ent *old = c->tab;
	size_t ocap = c->cap;
	c->cap = ocap ? ocap * 2 : 256;
	c->tab = sifu_xcalloc(c->cap, sizeof(*c->tab));
	for (size_t i = 0; i < c->cap; i++)
		c->tab[i].key = UINT64_MAX;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].key != UINT64_MAX)
			*disk_slot(c, old[i].key) = old[i];
	free(old);
}

/* Add KEY unless known (a record found for a key we appended ourselves
 * fills in where it lies); false when it was there. */
static bool disk_add(struct sqf_diskcache *c, uint64_t key, const struct disk_rec *rec,
                     uint32_t csize)
{
	if ((c->n + 1) * 2 > c->cap)
		disk_grow(c);
	struct disk_ent *e = disk_slot(c, key);
	if (e->key == key) {
		if (!e->rec && rec && e->csize == csize)
			e->rec = rec;
		return false;
	}
	*e = (struct disk_ent){key, rec, csize, 0};
	c->n++;
	return true;
}

/* Map what the file has grown by since the last look (other starts of the
 * image append too: their blocks need not be inflated here) and index its
 * whole records; the end of the last whole record is where the next look
 * starts.  Lock held.  Old windows stay mapped until close: blocks in them
 * are in use. */
static void disk_refresh(struct sqf_diskcache *c)
{
	struct stat st;
	if (c->nmaps == DISK_MAPS || fstat(c->fd, &st) < 0 || (uint64_t)st.st_size <= c->seen)
		return; /* nobody else added anything */
	uint64_t size = (uint64_t)st.st_size;
	c->seen = size;
	if (size > c->file_size)
		c->file_size = size; /* the bound counts what others added */
	uint64_t from = c->scanned & ~(uint64_t)4095;
	void *m = mmap(NULL, (size_t)(size - from), PROT_READ, MAP_SHARED, c->fd, (off_t)from);
	if (m == MAP_FAILED)
		return;
	c->maps[c->nmaps].p = m;
	c->maps[c->nmaps++].len = (size_t)(size - from);
	const uint8_t *win = m;
	uint64_t pos = c->scanned;
	while (pos + sizeof(struct disk_rec) <= size) {
		const struct disk_rec *r = (const void *)(win + (pos - from));
		uint32_t slen = r->csize & DISK_SRC_MASK;
		if (r->magic != DISK_REC_MAGIC || r->hcrc != rec_hcrc(r) || r->len == 0 ||
		    r->len > c->block_size || slen == 0 || slen > c->block_size)
			break;
		uint64_t end = pos + rec_bytes(r->len, r->csize);
		if (end > size)
			break;
		disk_add(c, r->key, r, r->csize);
		pos = end;
	}
	c->scanned = pos;
}

/* Keep the directory under MAX: remove the least recently used files (the
 * mtime, which every open refreshes) down to half of it.  Unlink only: a
 * file still mapped by a running container stays valid for it. */
static void disk_prune(int dirfd, uint64_t max)
{
	DIR *d = sifu_opendir_at(dirfd, ".");
	if (!d)
		return;
	struct old {
		char name[32];
		int64_t mtime;
		uint64_t size;
	} *v = NULL;
	size_t n = 0, cap = 0;
	uint64_t total = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		struct stat st;
		if (len < 5 || len >= sizeof(v->name) || strcmp(de->d_name + len - 4, ".blk") ||
		    fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			v = sifu_xrealloc(v, cap * sizeof(*v));
		}
		snprintf(v[n].name, sizeof(v[n].name), "%s", de->d_name);
		v[n].mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		v[n].size = (uint64_t)st.st_blocks * 512;
		total += v[n++].size;
	}
	closedir(d);
	if (total <= max - max / 4)
		n = 0; /* room enough */
	while (total > max / 2) {
		size_t oldest = n;
		for (size_t i = 0; i < n; i++)
			if (v[i].size && (oldest == n || v[i].mtime < v[oldest].mtime))
				oldest = i;
		if (oldest == n)
			break;
		unlinkat(dirfd, v[oldest].name, 0);
		total -= v[oldest].size;
		v[oldest].size = 0;
	}
	free(v);
}

/* Open NAME, or make it with header H (written whole before the file gets
 * its name, so no reader ever sees half a header).  Not sifu_atomic: that
 * renames over the target, and here the first start to publish must win
 * (linkat fails with EEXIST where another start made the file meanwhile,
 * and we use theirs, which others may be appending to already); nor is
 * the fsync worth it for a cache whose records check their own CRCs. */
static int disk_open_file(int dirfd, const char *name, const struct disk_header *h, uint64_t max)
{
	int fd = openat(dirfd, name, O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	disk_prune(dirfd, max);
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", name, (int)getpid());
	fd =
	    openat(dirfd, tmp, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	bool ok = write(fd, h, sizeof(*h)) == (ssize_t)sizeof(*h);
	if (ok && linkat(dirfd, tmp, dirfd, name, 0) < 0) {
		ok = false;
		if (errno == EEXIST) { /* another start made it first: use that */
			close(fd);
			unlinkat(dirfd, tmp, 0);
			return openat(dirfd, name, O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
		}
	}
	unlinkat(dirfd, tmp, 0);
	if (!ok) {
		close(fd);
		return -1;
	}
	return fd;
}

struct sqf_diskcache *sqf_diskcache_open(int dirfd, int imgfd, uint64_t offset, uint64_t size,
                                         const void *super, size_t super_len, uint32_t block_size,
                                         uint64_t max)
{
	struct stat st;
	if (dirfd < 0 || fstat(imgfd, &st) < 0)
		return NULL;
	struct disk_header h;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, DISK_MAGIC, sizeof(h.magic));
	h.version = 2;
	h.block_size = block_size;
	h.offset = offset;
	h.size = size;
	h.dev = (uint64_t)st.st_dev;
	h.ino = (uint64_t)st.st_ino;
	h.fsize = (uint64_t)st.st_size;
	h.mtime = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
	h.super_hash = fnv1a(0xcbf29ce484222325ull, super, super_len);
	char name[32];
	snprintf(name, sizeof(name), "%016" PRIx64 ".blk",
	         fnv1a(0xcbf29ce484222325ull, &h, sizeof(h)));
	int fd = disk_open_file(dirfd, name, &h, max);
	if (fd < 0) {
		sifu_debug("fuse: block cache %s: %s; going on without it", name, strerror(errno));
		return NULL;
	}
	struct stat fst;
	struct disk_header got;
	if (fstat(fd, &fst) < 0 || !S_ISREG(fst.st_mode) || fst.st_uid != geteuid() ||
	    (fst.st_mode & 022) || (uint64_t)fst.st_size < sizeof(got) ||
	    pread(fd, &got, sizeof(got), 0) != (ssize_t)sizeof(got) ||
	    memcmp(&got, &h, sizeof(h))) {
		sifu_debug("fuse: block cache %s is not ours or not this image's; going on "
		           "without it",
		           name);
		close(fd);
		return NULL;
	}
	futimens(fd, NULL); /* recently used: the last to be pruned */
	struct sqf_diskcache *c = sifu_xcalloc(1, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	c->fd = fd;
	c->dirfd = dirfd;
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->max = max;
	c->file_size = (uint64_t)fst.st_size;
	c->block_size = block_size;
	c->scanned = sizeof(struct disk_header);
	c->seen = c->scanned;
	disk_grow(c);
	disk_refresh(c);
	return c;
}

void sqf_diskcache_stats(struct sqf_diskcache *c, struct sqf_stats *st)
{
	st->kept = c != NULL;
	st->kept_hits = c ? __atomic_load_n(&c->hits, __ATOMIC_RELAXED) : 0;
	st->kept_misses = c ? __atomic_load_n(&c->misses, __ATOMIC_RELAXED) : 0;
	st->kept_added = c ? __atomic_load_n(&c->appended, __ATOMIC_RELAXED) : 0;
}

void sqf_diskcache_close(struct sqf_diskcache *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->nmaps; i++)
		munmap(c->maps[i].p, c->maps[i].len);
	close(c->fd);
	free(c->tab);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* A file with a damaged record is not trusted further: unlink it (if the
 * name is still this file) so that the next start makes a new one; this run
 * keeps using its mapping, record by record, each checked. */
static void disk_discard(struct sqf_diskcache *c)
{
	struct stat a, b;
	if (fstat(c->fd, &a) == 0 && fstatat(c->dirfd, c->name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		unlinkat(c->dirfd, c->name, 0);
}

/* Stop using C's file for new blocks and unlink it (see disk_discard);
 * true the first time. */
static bool disk_drop(struct sqf_diskcache *c)
{
	pthread_mutex_lock(&c->lock);
	bool first = !c->damaged;
	c->damaged = c->full = true;
	pthread_mutex_unlock(&c->lock);
	if (first)
		disk_discard(c);
	return first;
}

const void *sqf_diskcache_find(struct sqf_diskcache *c, uint64_t key, uint32_t csize, size_t *len)
{
	pthread_mutex_lock(&c->lock);
	struct disk_ent *e = disk_slot(c, key);
	if (!(e->key == key && e->rec)) {
		disk_refresh(c); /* another start may have added it */
		e = disk_slot(c, key);
	}
	bool have = e->key == key && e->rec && e->csize == csize && e->state != 2;
	const struct disk_rec *r = have ? e->rec : NULL;
	uint8_t state = have ? e->state : 2;
	pthread_mutex_unlock(&c->lock);
	if (!have) {
		__atomic_add_fetch(&c->misses, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	const uint8_t *data = (const uint8_t *)(r + 1);
	if (state == 0) {
		bool good = (uint32_t)libdeflate_crc32(0, data, r->len) == r->crc;
		pthread_mutex_lock(&c->lock);
		disk_slot(c, key)->state = good ? 1 : 2;
		pthread_mutex_unlock(&c->lock);
		if (!good) {
			disk_drop(c);
			sifu_debug("fuse: block cache: a damaged record (block at %" PRIu64
			           "); inflating it from the image",
			           key);
			__atomic_add_fetch(&c->misses, 1, __ATOMIC_RELAXED);
			return NULL;
		}
	}
	__atomic_add_fetch(&c->hits, 1, __ATOMIC_RELAXED);
	*len = r->len;
	return data;
}

/* Why comparing the source bytes is enough (and a hash of them would not
 * be): the kept data was decompressed from exactly the bytes stored with it
 * (one record, one write; the data's CRC checked by sqf_diskcache_find; a
 * damaged copy of the source can only differ, never match), decompression is a
 * function of those bytes and the compressor (which the superblock in the
 * file's header fixes), and the image holds the same bytes now: so the kept
 * data is what decompressing the image's block gives, whatever was
 * rewritten and whatever the image file's times say.  A hash would leave
 * collisions; the bytes are at hand anyway, since the caller has read them
 * (to inflate them, should they differ). */
bool sqf_diskcache_same_source(struct sqf_diskcache *c, uint64_t key, const void *data,
                               const void *src)
{
	const struct disk_rec *r = (const struct disk_rec *)data - 1;
	if (memcmp((const uint8_t *)data + pad8(r->len), src, r->csize & DISK_SRC_MASK) == 0)
		return true;
	/* the image was rewritten in place: this file was made for other
	 * bytes; the next start makes a new one */
	pthread_mutex_lock(&c->lock);
	disk_slot(c, key)->state = 2;
	pthread_mutex_unlock(&c->lock);
	__atomic_sub_fetch(&c->hits, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&c->misses, 1, __ATOMIC_RELAXED);
	if (disk_drop(c))
		sifu_debug("fuse: block cache: the image changed since its blocks were kept "
		           "(block at %" PRIu64 "); dropping %s",
		           key, c->name);
	return false;
}

void sqf_diskcache_put(struct sqf_diskcache *c, uint64_t key, uint32_t csize, const void *src,
                       const void *data, size_t len)
{
	uint32_t slen = csize & DISK_SRC_MASK;
	uint64_t bytes = rec_bytes((uint32_t)len, csize);
	if (len == 0 || len > c->block_size || slen == 0 || slen > c->block_size)
		return; /* a record the reader would refuse */
	pthread_mutex_lock(&c->lock);
	bool add = !c->full && c->file_size + bytes <= c->max && disk_add(c, key, NULL, csize);
	if (add)
		c->file_size += bytes;
	pthread_mutex_unlock(&c->lock);
	if (!add)
		return;
	struct disk_rec r = {DISK_REC_MAGIC, (uint32_t)len, key, csize, 0, 0, 0};
	r.crc = (uint32_t)libdeflate_crc32(0, data, len);
	r.hcrc = rec_hcrc(&r);
	static const uint8_t zeros[8];
	struct iovec iov[5] = {{&r, sizeof(r)},
	                       {(void *)data, len},
	                       {(void *)zeros, pad8(len) - len},
	                       {(void *)src, slen},
	                       {(void *)zeros, pad8(slen) - slen}};
	ssize_t n = writev(c->fd, iov, 5);
	if (n != (ssize_t)bytes) {
		/* full disk or a short write: what is there is torn and the
		 * CRCs catch it; stop adding */
		pthread_mutex_lock(&c->lock);
		c->full = true;
		pthread_mutex_unlock(&c->lock);
		return;
	}
	__atomic_add_fetch(&c->appended, (uint64_t)n, __ATOMIC_RELAXED);
	pthread_mutex_lock(&c->lock);
	c->seen += (uint64_t)n;
	pthread_mutex_unlock(&c->lock);
}
