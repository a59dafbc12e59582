/* SPDX-License-Identifier: BSD-3-Clause */
/* FUSE low-level operations and the worker threads.
 *
 * Node ids are SquashFS inode references (+2, the root is FUSE_ROOT_ID): an
 * image never changes, so an id needs no table, forget is a no-op, and hard
 * links share one node.  Everything is cached by the kernel for as long as
 * the mount lives (timeouts of a year, keep_cache, cached symlinks and
 * readdir, negative entries). */
#define FUSE_USE_VERSION 314
#include "fuse_priv.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <signal.h>
#include <time.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define FOREVER     (365.0 * 24 * 3600)

#define FNODE_SLOTS 1024u
#define OP_SLOTS    64u

/* A regular file being read: its inode (decoded once) and the read-ahead
 * state.  With zero-message opens (the kernel sends no OPEN/RELEASE) reads
 * find it by node id in a small direct-mapped table; with classic opens the
 * file handle holds a reference. */
struct fnode {
	fuse_ino_t id;
	sqfs_inode_generic_t *ino;
	unsigned refs; /* under the server's flock */
	pthread_mutex_t lock;
	bool pushed;     /* preloaded into the page cache (or being) */
	uint64_t next;   /* where a sequential reader reads next */
	uint64_t window; /* current read-ahead window, 0 = not streaming */
	uint64_t ahead;  /* file offset up to which read-ahead was queued */
};

struct sqf_server {
	struct sqf_image *img;
	pthread_mutex_t flock;
	struct fnode *fnodes[FNODE_SLOTS];
	bool no_open, no_opendir; /* the kernel takes ENOSYS as "opened" */
	uint64_t ops[OP_SLOTS];   /* requests by opcode (atomic) */
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

static struct sqf_server *SRV(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct sqf_image *IMG(fuse_req_t req)
{
	return SRV(req)->img;
}

static uint64_t to_ref(struct sqf_image *img, fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? sqf_root_ref(img) : (uint64_t)ino - 2;
}

static fuse_ino_t to_ino(struct sqf_image *img, uint64_t ref)
{
	return ref == sqf_root_ref(img) ? FUSE_ROOT_ID : (fuse_ino_t)(ref + 2);
}

static int get_inode(fuse_req_t req, fuse_ino_t ino, sqfs_inode_generic_t **out)
{
	return sqf_inode_read(IMG(req), to_ref(IMG(req), ino), out);
}

static int fill_entry(struct sqf_image *img, uint64_t ref, struct fuse_entry_param *e)
{
	sqfs_inode_generic_t *ino;
	memset(e, 0, sizeof(*e));
	int r = sqf_inode_read(img, ref, &ino);
	if (r < 0)
		return r;
	r = sqf_inode_stat(img, ino, &e->attr);
	sqfs_free(ino);
	if (r < 0)
		return r;
	e->ino = to_ino(img, ref);
	e->generation = 1;
	e->attr_timeout = FOREVER;
	e->entry_timeout = FOREVER;
	return 0;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct sqf_server *srv = userdata;
	/* Nothing to do at open on an immutable image: where the kernel can,
	 * it opens files and directories without asking us (and keeps their
	 * page cache), which saves two round trips per open. */
	srv->no_open = conn->capable & FUSE_CAP_NO_OPEN_SUPPORT;
	srv->no_opendir = conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT;
	/* An immutable image: cache everything, always readdirplus. */
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
	conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	conn->max_readahead = conn->max_readahead > (1u << 20) ? conn->max_readahead : (1u << 20);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct sqf_image *img = IMG(req);
	uint64_t ref;
	struct fuse_entry_param e;
	int r = sqf_lookup(img, to_ref(img, parent), name, &ref);
	if (r == -ENOENT) {
		/* a negative entry the kernel may keep: the image never changes */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = FOREVER;
		fuse_reply_entry(req, &e);
		return;
	}
	if (r == 0)
		r = fill_entry(img, ref, &e);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	sqfs_inode_generic_t *i;
	struct stat st;
	int r = get_inode(req, ino, &i);
	if (r == 0) {
		r = sqf_inode_stat(IMG(req), i, &st);
		sqfs_free(i);
	}
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, FOREVER);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	sqfs_inode_generic_t *i;
	char *target = NULL;
	int r = get_inode(req, ino, &i);
	if (r == 0) {
		r = sqf_readlink(i, &target);
		sqfs_free(i);
	}
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_readlink(req, target);
	free(target);
}

static void fnode_free(struct fnode *f)
{
	sqfs_free(f->ino);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static void fnode_put(struct sqf_server *srv, struct fnode *f)
{
	pthread_mutex_lock(&srv->flock);
	bool last = --f->refs == 0;
	pthread_mutex_unlock(&srv->flock);
	if (last)
		fnode_free(f);
}

/* The file node of ID, referenced; decoded and entered in the table on a
 * miss (a colliding entry is replaced: it only costs a decode later). */
static int fnode_get(struct sqf_server *srv, fuse_ino_t id, struct fnode **out)
{
	struct fnode **slot = &srv->fnodes[(id * 0x9E3779B97F4A7C15ull >> 32) % FNODE_SLOTS];
	pthread_mutex_lock(&srv->flock);
	struct fnode *f = *slot;
	if (f && f->id == id) {
		f->refs++;
		pthread_mutex_unlock(&srv->flock);
		*out = f;
		return 0;
	}
	pthread_mutex_unlock(&srv->flock);
	sqfs_inode_generic_t *i;
	int r = sqf_inode_read(srv->img, to_ref(srv->img, id), &i);
	if (r < 0)
		return r;
	if (!sqf_inode_is_file(i)) {
		sqfs_free(i);
		return -EISDIR;
	}
	f = sifu_xcalloc(1, sizeof(*f));
	f->id = id;
	f->ino = i;
	f->refs = 2; /* the caller's and the table's */
	pthread_mutex_init(&f->lock, NULL);
	struct fnode *old = NULL;
	pthread_mutex_lock(&srv->flock);
	if (*slot && (*slot)->id == id) {
		/* another thread entered it meanwhile: use that one */
		old = f;
		f = *slot;
		f->refs++;
		old->refs = 1;
	} else {
		old = *slot;
		*slot = f;
	}
	bool drop = old && --old->refs == 0;
	pthread_mutex_unlock(&srv->flock);
	if (drop)
		fnode_free(old);
	*out = f;
	return 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct sqf_server *srv = SRV(req);
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (srv->no_open) {
		fuse_reply_err(req, ENOSYS); /* "opened, never ask again" */
		return;
	}
	struct fnode *f;
	int r = fnode_get(srv, ino, &f);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uintptr_t)f;
	fi->keep_cache = 1;
	fi->noflush = 1;
	if (fuse_reply_open(req, fi) != 0)
		fnode_put(srv, f);
}

/* Sequential detection with a growing window: a read that starts where the
 * last one ended doubles the window (up to readahead_max) and queues the
 * stored blocks behind it; anything else resets it.  The kernel's own
 * read-ahead stops at 128 KiB on unprivileged mounts, so this is where
 * streaming from slow storage gets its depth. */
static void file_readahead(struct sqf_image *img, struct fnode *of, uint64_t off, size_t size)
{
	uint64_t max = img->opt.readahead_max;
	if (max == 0)
		return;
	uint64_t chunk = sqf_chunkcache_chunk_size(img->chunks);
	uint64_t from = 0, len = 0;
	pthread_mutex_lock(&of->lock);
	uint64_t end = off + size;
	if (off == of->next || (off < of->next && end > of->next)) {
		of->window = of->window ? of->window * 2 : chunk;
		if (of->window > max)
			of->window = max;
		uint64_t target = end + of->window;
		from = of->ahead > end ? of->ahead : end;
		if (target > from) {
			len = target - from;
			of->ahead = target;
		}
	} else if (off != 0 || of->next != 0) {
		of->window = 0;
		of->ahead = end;
	}
	if (end > of->next)
		of->next = end;
	pthread_mutex_unlock(&of->lock);
	if (len)
		sqf_readahead(img, of->ino, from, len);
}

/* Preload: push the rest of a small file into the kernel's page cache
 * (FUSE_NOTIFY_STORE) right after its first read is answered.  A program or
 * a library is read by page faults, each a synchronous READ round trip of at
 * most 128 KiB; busybox took 25 of them.  The worker that answered the first
 * read decompresses and stores the other blocks while the reader goes on.
 *
 * A store waits on pages locked by READs still in flight, which other workers
 * answer: a preload starts only when some worker is idle, at most half the
 * workers preload at once, and sqf_server_stop waits for preloads to end
 * before the workers leave. */
static void maybe_grow(struct sqf_server *srv);

static bool push_begin(struct sqf_server *srv)
{
	pthread_mutex_lock(&srv->lock);
	if (srv->idle == 0)
		maybe_grow(srv);
	bool ok = !srv->no_push && srv->idle > 0 && srv->pushing < srv->maxthreads / 2;
	if (ok)
		srv->pushing++;
	pthread_mutex_unlock(&srv->lock);
	return ok;
}

static void push_end(struct sqf_server *srv)
{
	pthread_mutex_lock(&srv->lock);
	srv->pushing--;
	pthread_cond_broadcast(&srv->pushed);
	pthread_mutex_unlock(&srv->lock);
}

/* Store block-sized pieces of F outside [from, to) (answered already),
 * after it first, then before it. */
static void push_file(struct sqf_server *srv, fuse_ino_t id, struct fnode *f, uint64_t from,
                      uint64_t to)
{
	struct sqf_image *img = srv->img;
	sqfs_u64 size = 0;
	sqfs_inode_get_file_size(f->ino, &size);
	uint64_t bs = img->super.block_size;
	uint64_t first = to / bs * bs;
	if (first < to)
		first += bs;
	uint8_t *buf = NULL;
	uint64_t nblocks = (size + bs - 1) / bs;
	for (uint64_t k = 0; k < nblocks; k++) {
		uint64_t off = (first + k * bs) % (nblocks * bs);
		if (off >= size || (off >= from / bs * bs && off < to) ||
		    __atomic_load_n(&srv->no_push, __ATOMIC_RELAXED))
			continue;
		size_t len = (size_t)(size - off < bs ? size - off : bs);
		const void *p;
		void *h = NULL;
		ssize_t n = sqf_read_direct(img, f->ino, off, len, &p, &h);
		if (n == 0) {
			if (!buf && !(buf = malloc(bs)))
				break;
			n = sqf_read(img, f->ino, off, buf, len);
			p = buf;
		}
		if (n <= 0)
			break; /* broken: its readers get EIO from op_read */
		struct fuse_bufvec bv = FUSE_BUFVEC_INIT((size_t)n);
		bv.buf[0].mem = (void *)p;
		int r = fuse_lowlevel_notify_store(srv->se, id, (off_t)off, &bv, 0);
		if (h)
			sqf_read_release(img, h);
		if (r < 0)
			break; /* unmounted, or the kernel forgot the inode */
		__atomic_add_fetch(&srv->pushed_bytes, (uint64_t)n, __ATOMIC_RELAXED);
	}
	free(buf);
}

static void maybe_push(struct sqf_server *srv, fuse_ino_t id, struct fnode *f, uint64_t off,
                       size_t size)
{
	uint64_t max = srv->img->opt.preload_max;
	if (max == 0 || __atomic_load_n(&f->pushed, __ATOMIC_RELAXED))
		return; /* the common case: every read after the first */
	sqfs_u64 fsize = 0;
	sqfs_inode_get_file_size(f->ino, &fsize);
	/* decided once per file: too big, read whole by this request, or
	 * preloaded now */
	bool first = !__atomic_exchange_n(&f->pushed, true, __ATOMIC_RELAXED);
	if (!first || fsize > max || (off == 0 && off + size >= fsize) || !push_begin(srv))
		return;
	push_file(srv, id, f, off, off + size);
	push_end(srv);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	struct sqf_server *srv = SRV(req);
	struct sqf_image *img = srv->img;
	struct fnode *of = (struct fnode *)(uintptr_t)fi->fh;
	bool borrowed = false;
	if (!of) {
		int r = fnode_get(srv, ino, &of);
		if (r < 0) {
			fuse_reply_err(req, -r);
			return;
		}
		borrowed = true;
	}
	file_readahead(img, of, (uint64_t)off, size);
	/* the common case, a read inside one block: reply from the shared
	 * decompressed copy, no copy of our own */
	const void *p;
	void *h;
	ssize_t n = sqf_read_direct(img, of->ino, (uint64_t)off, size, &p, &h);
	if (n > 0) {
		fuse_reply_buf(req, p, (size_t)n);
		sqf_read_release(img, h);
	} else if (n < 0) {
		fuse_reply_err(req, (int)-n);
	} else {
		void *buf = malloc(size ? size : 1);
		n = buf ? sqf_read(img, of->ino, (uint64_t)off, buf, size) : -ENOMEM;
		if (n < 0)
			fuse_reply_err(req, (int)-n);
		else
			fuse_reply_buf(req, buf, (size_t)n);
		free(buf);
	}
	if (n >= 0)
		maybe_push(srv, ino, of, (uint64_t)off, size);
	if (borrowed)
		fnode_put(srv, of);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fnode *f = (struct fnode *)(uintptr_t)fi->fh;
	if (f)
		fnode_put(SRV(req), f);
	fuse_reply_err(req, 0);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (SRV(req)->no_opendir) {
		fuse_reply_err(req, ENOSYS); /* opened, listing cached by the kernel */
		return;
	}
	struct sqf_dir *d;
	int r = sqf_dir_get(IMG(req), to_ref(IMG(req), ino), &d);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uintptr_t)d;
	fi->keep_cache = 1;
	fi->cache_readdir = 1;
	if (fuse_reply_open(req, fi) != 0)
		sqf_dir_put(IMG(req), d);
}

static mode_t dirent_mode(uint16_t type)
{
	static const mode_t fmt[] = {0,       S_IFDIR, S_IFREG, S_IFLNK,
	                             S_IFBLK, S_IFCHR, S_IFIFO, S_IFSOCK};
	return type < 8 ? fmt[type] : 0;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi, bool plus)
{
	struct sqf_image *img = IMG(req);
	struct sqf_dir *d = (struct sqf_dir *)(uintptr_t)fi->fh;
	bool borrowed = !d;
	if (borrowed) {
		/* zero-message opendir: the listing comes from the dir cache */
		int r = sqf_dir_get(img, to_ref(img, ino), &d);
		if (r < 0) {
			fuse_reply_err(req, -r);
			return;
		}
	}
	char *buf = malloc(size);
	if (!buf) {
		if (borrowed)
			sqf_dir_put(img, d);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t used = 0;
	/* offsets: 0 ".", 1 "..", k+2 the k-th entry; the cookie of an entry
	 * is the offset of the next one */
	for (uint64_t pos = (uint64_t)off; pos < d->n + 2; pos++) {
		char name[260];
		struct fuse_entry_param e;
		memset(&e, 0, sizeof(e));
		if (pos < 2) {
			memcpy(name, pos ? ".." : ".", pos ? 3 : 2);
			e.attr.st_mode = S_IFDIR;
			e.attr.st_ino = 1; /* 0 would hide it: readdir(3) skips d_ino 0 */
		} else {
			const struct sqf_dirent *de = &d->ents[pos - 2];
			memcpy(name, de->name, de->namelen + 1u);
			if (plus) {
				int r = fill_entry(img, de->ref, &e);
				if (r < 0) {
					/* a broken inode: list the name, let lookup fail */
					memset(&e, 0, sizeof(e));
					e.attr.st_mode = dirent_mode(de->type);
					e.attr.st_ino = de->inum;
				}
			} else {
				e.attr.st_mode = dirent_mode(de->type);
				e.attr.st_ino = de->inum;
			}
		}
		size_t n = plus ? fuse_add_direntry_plus(req, buf + used, size - used, name, &e,
		                                         (off_t)pos + 1)
		                : fuse_add_direntry(req, buf + used, size - used, name, &e.attr,
		                                    (off_t)pos + 1);
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
	if (borrowed)
		sqf_dir_put(img, d);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (fi->fh)
		sqf_dir_put(IMG(req), (struct sqf_dir *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct sqf_image *img = IMG(req);
	struct statvfs sv;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = sv.f_frsize = img->super.block_size;
	sv.f_blocks = (img->super.bytes_used + img->super.block_size - 1) / img->super.block_size;
	sv.f_files = img->super.inode_count;
	sv.f_namemax = 256;
	sv.f_flag = ST_RDONLY;
	fuse_reply_statfs(req, &sv);
}

/* An image without extended attributes: ENOSYS tells the kernel never to
 * ask again (it asks for security.capability at every exec and write). */
static bool no_xattrs(fuse_req_t req)
{
	if (IMG(req)->has_xattr)
		return false;
	fuse_reply_err(req, ENOSYS);
	return true;
}

/* getxattr (NAME) or listxattr (NAME NULL); SIZE 0 asks for the size. */
static void xattr_op(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	if (no_xattrs(req))
		return;
	sqfs_inode_generic_t *i;
	int r = get_inode(req, ino, &i);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	char *buf = size ? malloc(size) : NULL;
	ssize_t n = size && !buf ? -ENOMEM
	            : name       ? sqf_getxattr(IMG(req), i, name, buf, size)
	                         : sqf_listxattr(IMG(req), i, buf, size);
	sqfs_free(i);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	xattr_op(req, ino, name, size);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	xattr_op(req, ino, NULL, size);
}

/* Nothing to flush on a read-only file system; ENOSYS: never ask again. */
static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, ENOSYS);
}

static const struct fuse_lowlevel_ops sqf_ops = {
    .flush = op_flush,
    .init = op_init,
    .lookup = op_lookup,
    .getattr = op_getattr,
    .readlink = op_readlink,
    .open = op_open,
    .read = op_read,
    .release = op_release,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .statfs = op_statfs,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
};

/* ------------------------------------------------------------- workers
 * Our own loop instead of fuse_session_loop_mt, which cannot be stopped
 * while the mount exists.  Each worker blocks in read(2) on /dev/fuse: the
 * kernel hands each request to one sleeping reader (poll(2) would wake them
 * all for every request).  To stop, sqf_server_stop sets a flag and sends
 * SIG_WAKE to each worker until it has left: the signal (the only one the
 * workers take, with a handler that does nothing and no SA_RESTART) makes a
 * blocked read return EINTR. */

#define SIG_WAKE (SIGRTMAX - 1)

static void on_wake(int sig) {}

static void *worker(void *arg);

/* Start one more worker if every running one is busy.  Lock held. */
static void maybe_grow(struct sqf_server *srv)
{
	if (srv->idle > 0 || srv->nthreads >= srv->maxthreads || srv->stopping)
		return;
	if (sqf_thread_create(&srv->threads[srv->nthreads], worker, srv) == 0) {
		srv->nthreads++;
		srv->live++;
		srv->idle++;
	}
}

static void *worker(void *arg)
{
	struct sqf_server *srv = arg;
	struct fuse_buf buf = {0};
	sigset_t wake;
	sigemptyset(&wake);
	sigaddset(&wake, SIG_WAKE);
	pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
	bool gone = false;
	while (!__atomic_load_n(&srv->stopping, __ATOMIC_ACQUIRE) &&
	       !fuse_session_exited(srv->se)) {
		int r = fuse_session_receive_buf(srv->se, &buf);
		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r <= 0) {
			gone = true; /* ENODEV: unmounted, or the connection aborted */
			break;
		}
		pthread_mutex_lock(&srv->lock);
		srv->idle--;
		maybe_grow(srv);
		pthread_mutex_unlock(&srv->lock);
		if (!(buf.flags & FUSE_BUF_IS_FD) && buf.size >= 8) {
			uint32_t op;
			memcpy(&op, (const char *)buf.mem + 4, sizeof(op)); /* fuse_in_header */
			__atomic_add_fetch(&srv->ops[op < OP_SLOTS ? op : 0], 1, __ATOMIC_RELAXED);
		}
		fuse_session_process_buf(srv->se, &buf);
		pthread_mutex_lock(&srv->lock);
		srv->idle++;
		pthread_mutex_unlock(&srv->lock);
	}
	pthread_sigmask(SIG_BLOCK, &wake, NULL);
	free(buf.mem);
	pthread_mutex_lock(&srv->lock);
	bool last = --srv->live == 0;
	pthread_cond_broadcast(&srv->left);
	pthread_mutex_unlock(&srv->lock);
	if (gone || last) {
		uint64_t one = 1;
		if (write(srv->donefd, &one, sizeof(one)) < 0) {
			/* the counter cannot overflow here */
		}
	}
	return NULL;
}

static int server_new(struct sqf_image *img, const char *fsname, struct sqf_server **out,
                      struct sifu_err *err)
{
	struct sqf_server *srv = sifu_xcalloc(1, sizeof(*srv));
	srv->img = img;
	srv->watch_fd = -1;
	srv->donefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->left, NULL);
	pthread_cond_init(&srv->pushed, NULL);
	char fsopt[512];
	snprintf(fsopt, sizeof(fsopt), "-oro,default_permissions,subtype=sifu,fsname=%s", fsname);
	char *argv[] = {"sifu", fsopt, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(2, argv);
	if (srv->donefd < 0) {
		sifu_err_sys(err, "cannot create an eventfd");
		goto fail;
	}
	pthread_mutex_init(&srv->flock, NULL);
	srv->se = fuse_session_new(&args, &sqf_ops, sizeof(sqf_ops), srv);
	fuse_opt_free_args(&args); /* libfuse may have copied them */
	if (!srv->se) {
		sifu_err_set(err, SIFU_E_SYS, EINVAL, "cannot create the FUSE session");
		goto fail;
	}
	*out = srv;
	return 0;
fail:
	if (srv->donefd >= 0)
		close(srv->donefd);
	free(srv);
	return -EINVAL;
}

static int server_run(struct sqf_server *srv, struct sifu_err *err)
{
	int fd = fuse_session_fd(srv->se);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || ((fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0))
		return sifu_err_sys(err, "cannot make /dev/fuse blocking");
	struct sigaction sa = {.sa_handler = on_wake}; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIG_WAKE, &sa, NULL) < 0)
		return sifu_err_sys(err, "cannot set up the FUSE threads' wake-up signal");
	/* Two to start (start-up time matters to `sifu exec`); more are
	 * started while all are busy, up to the bound. */
	srv->maxthreads = srv->img->opt.threads ? srv->img->opt.threads : 16;
	srv->threads = sifu_xcalloc(srv->maxthreads, sizeof(pthread_t));
	pthread_mutex_lock(&srv->lock);
	unsigned start = srv->maxthreads < 2 ? srv->maxthreads : 2;
	int e = 0;
	while (srv->nthreads < start &&
	       (e = sqf_thread_create(&srv->threads[srv->nthreads], worker, srv)) == 0) {
		srv->nthreads++;
		srv->live++;
		srv->idle++;
	}
	pthread_mutex_unlock(&srv->lock);
	if (srv->nthreads == 0)
		return sifu_err_set(err, SIFU_E_SYS, e, "cannot start the FUSE threads");
	return 0;
}

static void watchdog_done(struct sqf_server *srv);

static void server_free(struct sqf_server *srv)
{
	watchdog_done(srv); /* unmounted by now, or never mounted */
	if (srv->se)
		fuse_session_destroy(srv->se);
	close(srv->donefd);
	for (unsigned i = 0; i < FNODE_SLOTS; i++)
		if (srv->fnodes[i])
			fnode_free(srv->fnodes[i]); /* no reader is left */
	pthread_mutex_destroy(&srv->flock);
	pthread_mutex_destroy(&srv->lock);
	pthread_cond_destroy(&srv->left);
	pthread_cond_destroy(&srv->pushed);
	free(srv->threads);
	free(srv);
}

int sqf_server_start(struct sqf_image *img, int fuse_fd, struct sqf_server **out,
                     struct sifu_err *err)
{
	struct sqf_server *srv;
	int r = server_new(img, "sifu", &srv, err);
	if (r < 0)
		return r;
	/* The session closes its fd on destroy; give it its own. */
	int fd = fcntl(fuse_fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0) {
		r = sifu_err_sys(err, "cannot duplicate the /dev/fuse fd");
		server_free(srv);
		return r;
	}
	char mnt[32];
	snprintf(mnt, sizeof(mnt), "/dev/fd/%d", fd);
	if (fuse_session_mount(srv->se, mnt) != 0) {
		close(fd);
		server_free(srv);
		return sifu_err_set(err, SIFU_E_SYS, EINVAL, "libfuse refused /dev/fuse fd %d",
		                    fuse_fd);
	}
	if ((r = server_run(srv, err)) < 0) {
		server_free(srv);
		return r;
	}
	*out = srv;
	return 0;
}

/* A mount on a host directory must not outlive its server: a `sifu mount`
 * killed with SIGKILL (or by the OOM killer) used to leave a dead mount
 * ("Transport endpoint is not connected") until someone unmounted it by
 * hand.  A watchdog process, forked once the mount exists, waits on a pipe
 * whose write end only this process holds: a byte means "unmounted
 * cleanly, nothing to do"; end-of-file without it means we died, and the
 * watchdog unmounts (lazily: a process still in the directory keeps the
 * file system until it leaves): umount2 as root, `fusermount3 -u -z` as
 * anyone else (the only way a user may unmount a FUSE mount).
 *
 * Why not libfuse's auto_unmount: fusermount3's watchdog unmounts only
 * when open(2) of the mount point fails with ENOTCONN, and our server
 * answers OPENDIR with ENOSYS (zero-message opendir, see op_opendir), so
 * the kernel opens the dead mount's root without asking anyone and
 * fusermount3 leaves the mount in place.  Giving up zero-message opendir
 * for `sifu mount` would change what the benchmarks measure. */
static void watchdog_run(int fd, int maxfd, const char *mnt, const char *fusermount)
{
	/* after fork in a threaded process: async-signal-safe calls only */
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL); /* Ctrl-C is for sifu, not for us */
	setsid();
	/* hold nothing of sifu's (/dev/fuse above all: while it is open, the
	 * connection of the dead server would stay up) */
	for (int i = 0; i <= maxfd; i++)
		if (i != fd && i > 2)
			close(i);
	char c;
	ssize_t n;
	while ((n = read(fd, &c, 1)) < 0 && errno == EINTR)
		;
	if (n == 1)
		_exit(0);
	if (geteuid() == 0 || !*fusermount) {
		umount2(mnt, MNT_DETACH);
		_exit(0);
	}
	char *const argv[] = {"fusermount3", "-u", "-z", "-q", "--", (char *)mnt, NULL};
	char *const envp[] = {NULL};
	execve(fusermount, argv, envp);
	_exit(127);
}

/* Start the watchdog for MNT (absolute, resolved before the mount: after
 * it, resolving would ask the server, which does not run yet). */
static void watchdog_start(struct sqf_server *srv, const char *mnt)
{
	char fusermount[PATH_MAX] = "";
	if (geteuid() != 0 &&
	    !sifu_find_exe("fusermount3", getenv("PATH") /* TODO(#15): from options */, fusermount,
	                   sizeof(fusermount)))
		sifu_debug("fuse: no fusermount3 to unmount %s should sifu be killed", mnt);
	struct rlimit rl;
	int maxfd =
	    getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur : 65536;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		sifu_debug("fuse: no watchdog for %s: %s", mnt, strerror(errno));
		return;
	}
	pid_t pid = fork();
	if (pid == 0)
		watchdog_run(p[0], maxfd, mnt, fusermount);
	close(p[0]);
	if (pid < 0) {
		sifu_debug("fuse: no watchdog for %s: %s", mnt, strerror(errno));
		close(p[1]);
		return;
	}
	srv->watch_fd = p[1];
	srv->watch_pid = pid;
}

/* Unmounted by us: tell the watchdog to leave the directory alone. */
static void watchdog_done(struct sqf_server *srv)
{
	if (srv->watch_fd < 0)
		return;
	if (write(srv->watch_fd, "u", 1) != 1) {
		/* it is gone already: nothing to tell */
	}
	close(srv->watch_fd);
	srv->watch_fd = -1;
	while (waitpid(srv->watch_pid, NULL, 0) < 0 && errno == EINTR)
		;
}

int sqf_server_mount(struct sqf_image *img, const char *mountpoint, const char *fsname,
                     struct sqf_server **out, struct sifu_err *err)
{
	struct sqf_server *srv;
	char safe[256];
	size_t k = 0;
	/* fsname goes into a comma-separated option string */
	for (const char *p = fsname; *p && k + 1 < sizeof(safe); p++)
		safe[k++] = (*p == ',' || *p == '\\' || *p == ' ') ? '_' : *p;
	safe[k] = 0;
	_cleanup_free_ char *abs = realpath(mountpoint, NULL);
	if (!abs)
		return sifu_err_sys(err, "cannot resolve %s", mountpoint);
	int r = server_new(img, safe, &srv, err);
	if (r < 0)
		return r;
	if (fuse_session_mount(srv->se, mountpoint) != 0) {
		server_free(srv);
		r = sifu_err_set(err, SIFU_E_DENIED, EPERM, "cannot mount FUSE on %s", mountpoint);
		sifu_err_hint(err,
		              "check that %s is an empty directory you own, /dev/fuse is usable, "
		              "and fusermount3 is installed",
		              mountpoint);
		return r;
	}
	srv->mounted = true;
	watchdog_start(srv, abs);
	if ((r = server_run(srv, err)) < 0) {
		fuse_session_unmount(srv->se);
		server_free(srv);
		return r;
	}
	*out = srv;
	return 0;
}

/* FUSE opcodes by name, for the counters (see linux/fuse.h). */
static const char *const op_names[OP_SLOTS] = {
    [1] = "lookup",     [3] = "getattr",       [5] = "readlink", [14] = "open",
    [15] = "read",      [17] = "statfs",       [18] = "release", [22] = "getxattr",
    [23] = "listxattr", [25] = "flush",        [26] = "init",    [27] = "opendir",
    [28] = "readdir",   [29] = "releasedir",   [34] = "access",  [44] = "readdirplus",
    [2] = "forget",     [42] = "batch_forget", [38] = "destroy", [36] = "interrupt",
    [39] = "ioctl",     [40] = "poll",         [46] = "lseek",   [52] = "statx",
};

void sqf_server_counts(const struct sqf_server *srv, char *buf, size_t len)
{
	size_t used = 0;
	uint64_t total = 0;
	buf[0] = 0;
	for (unsigned i = 0; i < OP_SLOTS; i++) {
		uint64_t n = __atomic_load_n(&srv->ops[i], __ATOMIC_RELAXED);
		if (!n)
			continue;
		total += n;
		char name[16];
		if (!op_names[i])
			snprintf(name, sizeof(name), "op%u", i);
		int k = snprintf(buf + used, len - used, "%s%s %" PRIu64, used ? ", " : "",
		                 op_names[i] ? op_names[i] : name, n);
		if (k < 0 || (size_t)k >= len - used)
			break;
		used += (size_t)k;
	}
	if (total == 0)
		snprintf(buf, len, "none");
	uint64_t pushed = __atomic_load_n(&srv->pushed_bytes, __ATOMIC_RELAXED);
	if (pushed && used < len) {
		char b[32];
		sifu_fmt_bytes(pushed, b, sizeof(b));
		snprintf(buf + used, len - used, "; preloaded %s into the page cache", b);
	}
}

void sqf_server_debug_stats(const struct sqf_server *srv)
{
	if (sifu_log_get_level() < SIFU_LOG_DEBUG)
		return;
	struct sqf_stats st;
	char ops[512], b[32];
	sqf_image_stats(srv->img, &st);
	sqf_server_counts(srv, ops, sizeof(ops));
	sifu_fmt_bytes(st.backend_bytes, b, sizeof(b));
	sifu_debug("fuse: read %s in %" PRIu64 " requests from the image (%s); cache %" PRIu64
	           " hits, %" PRIu64 " misses, %" PRIu64 " read-ahead hits",
	           b, st.backend_requests, st.pagecache ? "page-cache mode" : "chunk mode",
	           st.cache_hits, st.cache_misses, st.readahead_hits);
	sifu_debug("fuse: requests: %s", ops);
	char k[32];
	sifu_fmt_bytes(st.kept_added, k, sizeof(k));
	if (!st.kept)
		sifu_debug("fuse: block cache: off");
	else
		sifu_debug("fuse: block cache: %" PRIu64 " blocks found, %" PRIu64
		           " not found, %s added",
		           st.kept_hits, st.kept_misses, k);
}

int sqf_server_done_fd(const struct sqf_server *srv)
{
	return srv->donefd;
}

void sqf_server_stop(struct sqf_server *srv)
{
	if (!srv)
		return;
	pthread_mutex_lock(&srv->lock);
	/* preloads first, while the workers still answer the READs they may
	 * wait on */
	__atomic_store_n(&srv->no_push, true, __ATOMIC_RELAXED);
	while (srv->pushing > 0)
		pthread_cond_wait(&srv->pushed, &srv->lock);
	__atomic_store_n(&srv->stopping, true, __ATOMIC_RELEASE);
	srv->maxthreads = 0; /* nthreads is final from here */
	unsigned n = srv->nthreads;
	/* A worker between its flag check and read(2) misses one signal:
	 * repeat until every worker has left. */
	while (srv->live > 0) {
		for (unsigned i = 0; i < n; i++)
			pthread_kill(srv->threads[i], SIG_WAKE);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 2000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&srv->left, &srv->lock, &ts);
	}
	pthread_mutex_unlock(&srv->lock);
	for (unsigned i = 0; i < n; i++)
		pthread_join(srv->threads[i], NULL);
	/* Unmount only once nobody serves: libfuse closes the fd first (a
	 * synchronous umount would otherwise wait on us), then detaches. */
	if (srv->mounted)
		fuse_session_unmount(srv->se);
	server_free(srv);
}
