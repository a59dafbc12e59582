/* SPDX-License-Identifier: BSD-3-Clause */
/* fuse/ internals shared by its files, the unit test and the fuzz target.
 * Not for other modules: they use sqfuse.h. */
#pragma once

#include "sqfuse.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sqfs/compressor.h>
#include <sqfs/data_reader.h>
#include <sqfs/dir.h>
#include <sqfs/error.h>
#include <sqfs/block.h>
#include <sqfs/frag_table.h>
#include <sqfs/id_table.h>
#include <sqfs/inode.h>
#include <sqfs/io.h>
#include <sqfs/meta_reader.h>
#include <sqfs/super.h>
#include <sqfs/xattr.h>
#include <sqfs/xattr_reader.h>
#include <sys/stat.h>

/* ----------------------------------------------------------- LRU lists --
 * The intrusive most-recent-first list on which the chunk cache, the
 * decoded-block cache and the listing cache each keep their entries (under
 * the cache's own lock).  Inline: every cache hit moves an entry to the
 * front. */
struct sqf_lru_link {
	struct sqf_lru_link *prev, *next;
};

struct sqf_lru {
	struct sqf_lru_link *head, *tail; /* most, least recently used */
};

/* Take N off L (a link on no list stays off it). */
static inline void sqf_lru_unlink(struct sqf_lru *l, struct sqf_lru_link *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else if (l->head == n)
		l->head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else if (l->tail == n)
		l->tail = n->prev;
	n->prev = n->next = NULL;
}

/* Put N at the front of L: the most recently used. */
static inline void sqf_lru_push(struct sqf_lru *l, struct sqf_lru_link *n)
{
	n->prev = NULL;
	n->next = l->head;
	if (l->head)
		l->head->prev = n;
	l->head = n;
	if (!l->tail)
		l->tail = n;
}

/* The entry of TYPE whose MEMBER is the link P (a macro: it names a type). */
#define sqf_lru_entry(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

/* ------------------------------------------------------------ backends --
 * A backend reads bytes [off, off+len) of the image (offset 0 = superblock).
 * It is called without locks from many threads and must be thread-safe.
 * An HTTP range backend only has to fill in this struct. */
struct sqf_backend {
	int (*pread)(struct sqf_backend *b, void *buf, size_t len, uint64_t off); /* 0 or -errno */
	void (*destroy)(struct sqf_backend *b);
	/* optional: start reading [off, off+len) in the background, no wait */
	void (*advise)(struct sqf_backend *b, uint64_t off, uint64_t len);
	/* optional: OURS true when sifu reads ahead itself (the chunk cache),
	 * so the kernel should not guess; false to leave it to the kernel */
	void (*own_readahead)(struct sqf_backend *b, bool ours);
	uint64_t size;
	/* a file on a local disk file system: the kernel's page cache is the
	 * cache, and exact reads are cheap */
	bool local;
};
int sqf_backend_fd(int fd, uint64_t offset, uint64_t size, struct sqf_backend **out,
                   struct sifu_err *err);
/* Borrows DATA (tests, the fuzz target). */
struct sqf_backend *sqf_backend_mem(const void *data, size_t size);
/* The checking layer of struct sqf_verity over INNER (taken, also on
 * failure); V must outlive it. */
int sqf_backend_verity(struct sqf_backend *inner, const struct sqf_verity *v,
                       struct sqf_backend **out, struct sifu_err *err);

/* --------------------------------------------------------- chunk cache --
 * Aligned chunks of chunk_size bytes, an LRU bounded in bytes, one backend
 * read in flight per chunk (others wait for it), a read-ahead worker pool,
 * and an optional pinned region (the metadata tables) read once at open in a
 * few large parallel reads. */
struct sqf_chunkcache;
struct sqf_chunkcache *sqf_chunkcache_new(struct sqf_backend *be, uint64_t chunk_size,
                                          uint64_t bound, unsigned workers);
void sqf_chunkcache_free(struct sqf_chunkcache *c);
/* Page-cache mode (local files): no chunks, no pool; reads go to the backend
 * at their exact range and read-ahead becomes a hint to the kernel.  Call
 * before first use. */
void sqf_chunkcache_set_direct(struct sqf_chunkcache *c);
bool sqf_chunkcache_is_direct(const struct sqf_chunkcache *c);
int sqf_chunkcache_read(struct sqf_chunkcache *c, void *buf, size_t len, uint64_t off);
/* Queue the chunks covering [off, off+len) for the read-ahead workers. */
void sqf_chunkcache_prefetch(struct sqf_chunkcache *c, uint64_t off, uint64_t len);
/* Read [off, off+len) into a private buffer now, served from memory after. */
int sqf_chunkcache_pin(struct sqf_chunkcache *c, uint64_t off, uint64_t len);
void sqf_chunkcache_stats(struct sqf_chunkcache *c, struct sqf_stats *st);
uint64_t sqf_chunkcache_chunk_size(const struct sqf_chunkcache *c);
/* Bytes of cached chunks now held (tests check the bound). */
uint64_t sqf_chunkcache_bytes(struct sqf_chunkcache *c);

/* --------------------------------------------------------------- image -- */

/* uncompressed metadata block size (SquashFS 4.0) */
#define SQF_META_BLOCK 8192

static inline bool sqf_inode_is_dir(const sqfs_inode_generic_t *i)
{
	return i->base.type == SQFS_INODE_DIR || i->base.type == SQFS_INODE_EXT_DIR;
}

static inline bool sqf_inode_is_file(const sqfs_inode_generic_t *i)
{
	return i->base.type == SQFS_INODE_FILE || i->base.type == SQFS_INODE_EXT_FILE;
}

/* Per-thread decoder state: libsquashfs readers keep state and buffers, so
 * each worker borrows a private set from a pool for the length of a call. */
struct sqf_ctx {
	struct sqf_ctx *next;
	sqfs_compressor_t *cmp;
	sqfs_meta_reader_t *inodes, *dirs;
	sqfs_xattr_reader_t *xattr; /* NULL when the image has no xattrs */
	sqfs_meta_reader_t *xkv;    /* the xattr key/value stream */
};

struct sqf_file {
	sqfs_file_t base; /* first: libsquashfs casts */
	struct sqf_image *img;
};

struct sqf_dirent {
	uint64_t ref;  /* inode reference: metadata block << 16 | offset */
	uint32_t inum; /* inode number */
	uint16_t type; /* SQFS_INODE_* (basic) */
	uint16_t namelen;
	const char *name; /* not NUL-terminated inside names[], but followed by one */
};

/* A whole directory listing, sorted by name as SquashFS stores it, so a
 * lookup is a binary search; shared and cached (LRU) across threads. */
struct sqf_dir {
	uint64_t ref;
	size_t n;
	struct sqf_dirent *ents;
	char *names;
	size_t bytes;
	bool sorted;
	unsigned refs;
	struct sqf_dir *hnext;
	struct sqf_lru_link lru;
	bool in_cache;
};

struct sqf_listings {
	pthread_mutex_t lock;
	struct sqf_dir **buckets;
	size_t nbuckets;
	struct sqf_lru lru;
	size_t bytes, bound;
};

/* Decompressed data and fragment blocks, shared by all threads (data.c). */
struct sqf_decoded;
struct sqf_decoded *sqf_decoded_new(size_t max_blocks);
void sqf_decoded_free(struct sqf_decoded *d);

/* The block cache (diskcache.c): decompressed blocks kept in a file per
 * image for the next starts.  Open returns NULL where there is none (no
 * directory, not ours, full disk): it only ever saves work. */
struct sqf_diskcache;
struct sqf_diskcache *sqf_diskcache_open(int dirfd, int imgfd, uint64_t offset, uint64_t size,
                                         const void *super, size_t super_len, uint32_t block_size,
                                         uint64_t max);
void sqf_diskcache_close(struct sqf_diskcache *c);
void sqf_diskcache_stats(struct sqf_diskcache *c, struct sqf_stats *st); /* C may be NULL */
/* The block KEY (CSIZE bytes on disk) where it lies in the cache's mapping
 * (valid until close) and its length in *LEN, or NULL when the cache has no
 * sound copy (its CRC is checked at first use).  Use it only once
 * sqf_diskcache_same_source has said yes. */
const void *sqf_diskcache_find(struct sqf_diskcache *c, uint64_t key, uint32_t csize, size_t *len);
/* Whether DATA (from sqf_diskcache_find for KEY) was inflated from SRC, the
 * block's bytes as the image holds them now; if not, the image was
 * rewritten: the block counts as not found and the file is dropped. */
bool sqf_diskcache_same_source(struct sqf_diskcache *c, uint64_t key, const void *data,
                               const void *src);
/* Keep DATA (LEN bytes), inflated from SRC (CSIZE bytes on disk). */
void sqf_diskcache_put(struct sqf_diskcache *c, uint64_t key, uint32_t csize, const void *src,
                       const void *data, size_t len);
/* files up to this size (and every fragment block) go to the block cache:
 * programs, libraries, scripts - not bulk data */
#define SQF_DISKCACHE_FILE_MAX (16u << 20)

struct sqf_image {
	struct sqf_options opt;
	struct sqf_decoded *decoded;     /* decompressed data and fragment blocks (data.c) */
	struct sqf_diskcache *diskcache; /* NULL: none */
	sqfs_frag_table_t *frags;        /* NULL: none, or unreadable (tails answer EIO) */
	struct sqf_backend *be;
	struct sqf_chunkcache *chunks;
	struct sqf_file file;
	sqfs_super_t super;
	sqfs_id_table_t *ids;
	uint64_t dir_limit; /* end bound of the directory table */
	uint64_t xattr_kv_start;
	bool has_xattr;
	pthread_mutex_t ctx_lock;
	struct sqf_ctx *ctx_free;
	struct sqf_listings listings;
	pthread_t prefetch_thread;
	bool prefetch_running;
	volatile bool closing;
};

/* The reader pool (readers.c). */
void sqf_readers_init(struct sqf_image *img);
void sqf_readers_free(struct sqf_image *img);
int sqf_ctx_get(struct sqf_image *img, struct sqf_ctx **out);
void sqf_ctx_put(struct sqf_image *img, struct sqf_ctx *ctx);
/* Whether a table of COUNT entries of ESIZE bytes, indexed at START, fits
 * in the image (checked before libsquashfs sizes buffers from COUNT). */
bool sqf_table_fits(const struct sqf_image *img, uint64_t start, uint64_t count, uint64_t esize);

/* The listing cache (dirlist.c). */
void sqf_listings_init(struct sqf_listings *lc);
void sqf_listings_free(struct sqf_listings *lc);

/* Open over an existing backend (takes ownership of BE, also on failure). */
int sqf_image_open_backend(struct sqf_backend *be, const struct sqf_options *o,
                           struct sqf_image **out, struct sifu_err *err);

/* All return 0 or -errno (EIO for anything corrupt). */
int sqf_inode_read(struct sqf_image *img, uint64_t ref, sqfs_inode_generic_t **out);
int sqf_inode_stat(struct sqf_image *img, const sqfs_inode_generic_t *ino, struct stat *st);
int sqf_dir_get(struct sqf_image *img, uint64_t ref, struct sqf_dir **out);
void sqf_dir_put(struct sqf_image *img, struct sqf_dir *d);
/* Index of NAME in D, or -1. */
ssize_t sqf_dir_find(const struct sqf_dir *d, const char *name, size_t namelen);
/* Lookup NAME in directory REF: fills *child_ref. -ENOENT when absent. */
int sqf_lookup(struct sqf_image *img, uint64_t dir_ref, const char *name, uint64_t *child_ref);
/* Symlink target into a malloc'd NUL-terminated string. */
int sqf_readlink(const sqfs_inode_generic_t *ino, char **out);
/* Read file data: returns bytes read (0 at/after EOF) or -errno. */
ssize_t sqf_read(struct sqf_image *img, const sqfs_inode_generic_t *ino, uint64_t off, void *buf,
                 size_t len);
/* Zero-copy variant for a read inside one stored block: points *PTR into the
 * shared decompressed block (release *HANDLE with sqf_read_release).
 * Returns the length, 0 when the copying sqf_read must answer, or -errno. */
ssize_t sqf_read_direct(struct sqf_image *img, const sqfs_inode_generic_t *ino, uint64_t off,
                        size_t len, const void **ptr, void **handle);
void sqf_read_release(struct sqf_image *img, void *handle);
/* Extended attributes: "prefix.key\0" list, or one value.  With size 0,
 * return the size needed; -ERANGE when SIZE is too small; -ENODATA. */
ssize_t sqf_listxattr(struct sqf_image *img, const sqfs_inode_generic_t *ino, char *buf,
                      size_t size);
ssize_t sqf_getxattr(struct sqf_image *img, const sqfs_inode_generic_t *ino, const char *name,
                     void *buf, size_t size);
/* Queue read-ahead for the stored blocks behind file bytes [off, off+len). */
void sqf_readahead(struct sqf_image *img, const sqfs_inode_generic_t *ino, uint64_t off,
                   uint64_t len);
uint64_t sqf_root_ref(const struct sqf_image *img);
bool sqf_name_ok(const char *name, size_t len);
/* -------------------------------------------------------------- server --
 * The FUSE server: server.c (session, mount, watchdog, stop), ops.c (the
 * FUSE operations and the open-file table), preload.c (pushing small files
 * into the kernel's page cache), workers.c (the threads that read
 * /dev/fuse).  No libfuse types here: fuse_ino_t is a uint64_t. */

#define SQF_FNODE_SLOTS 1024u
#define SQF_OP_SLOTS    64u

/* A regular file being read: its inode (decoded once) and the read-ahead
 * state.  With zero-message opens (the kernel sends no OPEN/RELEASE) reads
 * find it by node id in a small direct-mapped table; with classic opens the
 * file handle holds a reference. */
struct fnode {
	uint64_t id; /* fuse_ino_t */
	sqfs_inode_generic_t *ino;
	unsigned refs; /* under the server's flock */
	pthread_mutex_t lock;
	bool pushed;     /* preloaded into the page cache (or being) */
	uint64_t next;   /* where a sequential reader reads next */
	uint64_t window; /* current read-ahead window, 0 = not streaming */
	uint64_t ahead;  /* file offset up to which read-ahead was queued */
};

struct fuse_session;

struct sqf_server {
	struct sqf_image *img;
	pthread_mutex_t flock;
	struct fnode *fnodes[SQF_FNODE_SLOTS];
	bool no_open, no_opendir;   /* the kernel takes ENOSYS as "opened" */
	uint64_t ops[SQF_OP_SLOTS]; /* requests by opcode (atomic) */
	struct fuse_session *se;
	pthread_t *threads;
	unsigned nthreads, maxthreads, idle; /* grown on demand, under lock */
	bool stopping;                       /* workers leave (atomic) */
	pthread_cond_t left;                 /* a worker left (under lock) */
	int donefd;                          /* eventfd: a worker saw the kernel side go away */
	bool mounted;                        /* by sqf_server_mount: unmount on stop */
	int watch_fd;                        /* our end of the watchdog's pipe, or -1 */
	pid_t watch_pid;                     /* and its pid */
	unsigned live;                       /* workers still running */
	unsigned pushing;                    /* preloads running (under lock) */
	bool no_push;                        /* stopping: no preload starts */
	pthread_cond_t pushed;               /* a preload ended (under lock) */
	uint64_t pushed_bytes;               /* preloaded into the page cache (atomic) */
	pthread_mutex_t lock;
};

/* ops.c: the operations table for fuse_session_new (a struct
 * fuse_lowlevel_ops), and the open-file table's end. */
extern const struct fuse_lowlevel_ops sqf_fuse_ops;
void sqf_fnodes_free(struct sqf_server *srv);

/* preload.c: after a read of F at [off, off+size) was answered, push the
 * rest of a small file into the page cache (once per file). */
void sqf_preload_file(struct sqf_server *srv, uint64_t id, struct fnode *f, uint64_t off,
                      size_t size);
static inline void sqf_preload_maybe(struct sqf_server *srv, uint64_t id, struct fnode *f,
                                     uint64_t off, size_t size)
{
	if (srv->img->opt.preload_max == 0 || __atomic_load_n(&f->pushed, __ATOMIC_RELAXED))
		return; /* the common case: every read after the first */
	sqf_preload_file(srv, id, f, off, size);
}
/* No preload starts from now on; wait for those running to end. */
void sqf_preload_stop(struct sqf_server *srv);

/* workers.c: start the first workers; one more when all are busy (lock
 * held); make every worker leave and join them. */
int sqf_workers_start(struct sqf_server *srv, struct sifu_err *err);
void sqf_workers_grow(struct sqf_server *srv);
void sqf_workers_stop(struct sqf_server *srv);

/* A decompress-only compressor object for libsquashfs's readers (they only
 * call do_block); deflate.c has the shared parts. */
struct sqf_decomp {
	sqfs_compressor_t base;
	SQFS_COMPRESSOR id;
};
void sqf_decomp_init(struct sqf_decomp *d, SQFS_COMPRESSOR id,
                     sqfs_s32 (*do_block)(sqfs_compressor_t *, const sqfs_u8 *, sqfs_u32, sqfs_u8 *,
                                          sqfs_u32),
                     void (*destroy)(sqfs_object_t *));
/* An LZO decompressor object for libsquashfs readers (lzo.c). */
int sqf_lzo_create(sqfs_compressor_t **out);
/* A gzip decompressor object on libdeflate (deflate.c). */
int sqf_deflate_create(sqfs_compressor_t **out);
/* pthread_create with every signal blocked in the new thread: threads of
 * the library never take signals; the caller (a supervisor with a signalfd,
 * `sifu mount`) decides who does. */
static inline int sqf_thread_create(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int e = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return e;
}
