/* SPDX-License-Identifier: BSD-3-Clause */
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
#define FUSE_USE_VERSION 314
#include "fuse_priv.h"

#include <fuse_lowlevel.h>

static bool push_begin(struct sqf_server *srv)
{
	pthread_mutex_lock(&srv->lock);
	if (srv->idle == 0)
		sqf_workers_grow(srv);
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

/* The slow part of sqf_preload_maybe (fuse_priv.h), which has seen a
 * first read of the file and a preload bound. */
void sqf_preload_file(struct sqf_server *srv, uint64_t id, struct fnode *f, uint64_t off,
                      size_t size)
{
	uint64_t max = srv->img->opt.preload_max;
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

void sqf_preload_stop(struct sqf_server *srv)
{
	pthread_mutex_lock(&srv->lock);
	__atomic_store_n(&srv->no_push, true, __ATOMIC_RELAXED);
	while (srv->pushing > 0)
		pthread_cond_wait(&srv->pushed, &srv->lock);
	pthread_mutex_unlock(&srv->lock);
}
