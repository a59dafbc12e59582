/* SPDX-License-Identifier: BSD-3-Clause */
/* The worker threads that read requests from /dev/fuse and answer them.
 *
 * Our own loop instead of fuse_session_loop_mt, which cannot be stopped
 * while the mount exists.  Each worker blocks in read(2) on /dev/fuse: the
 * kernel hands each request to one sleeping reader (poll(2) would wake them
 * all for every request).  To stop, sqf_server_stop sets a flag and sends
 * SQF_SIG_WAKE to each worker until it has left: the signal (the only one the
 * workers take, with a handler that does nothing and no SA_RESTART) makes a
 * blocked read return EINTR. */
#define FUSE_USE_VERSION 314
#include "fuse_priv.h"
#include "session_priv.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <time.h>

static void *worker(void *arg);

/* One more worker: 0 or the error of pthread_create.  Lock held. */
static int start_worker(struct sqf_server *srv)
{
	int e = sqf_thread_create(&srv->threads[srv->nthreads], worker, srv);
	if (e == 0) {
		srv->nthreads++;
		srv->live++;
		srv->idle++;
	}
	return e;
}

/* Start one more worker if every running one is busy.  Lock held. */
void sqf_workers_grow(struct sqf_server *srv)
{
	if (srv->idle > 0 || srv->nthreads >= srv->maxthreads || srv->stopping)
		return;
	start_worker(srv);
}

static void *worker(void *arg)
{
	struct sqf_server *srv = arg;
	struct fuse_buf buf = {0};
	sqf_thread_accept_wake(true);
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
		sqf_workers_grow(srv);
		pthread_mutex_unlock(&srv->lock);
		if (!(buf.flags & FUSE_BUF_IS_FD) && buf.size >= 8) {
			uint32_t op;
			memcpy(&op, (const char *)buf.mem + 4, sizeof(op)); /* fuse_in_header */
			__atomic_add_fetch(&srv->ops[op < SQF_OP_SLOTS ? op : 0], 1,
			                   __ATOMIC_RELAXED);
		}
		fuse_session_process_buf(srv->se, &buf);
		pthread_mutex_lock(&srv->lock);
		srv->idle++;
		pthread_mutex_unlock(&srv->lock);
	}
	sqf_thread_accept_wake(false); /* a late one must not interrupt what follows */
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

int sqf_workers_start(struct sqf_server *srv, struct sifu_err *err)
{
	int r = sqf_session_prepare_threads(srv->se, err);
	if (r < 0)
		return r;
	/* Two to start (start-up time matters to `sifu exec`); more are
	 * started while all are busy, up to the bound. */
	srv->maxthreads = srv->img->opt.threads ? srv->img->opt.threads : 16;
	srv->threads = sifu_xcalloc(srv->maxthreads, sizeof(pthread_t));
	pthread_mutex_lock(&srv->lock);
	unsigned start = srv->maxthreads < 2 ? srv->maxthreads : 2;
	int e = 0;
	while (srv->nthreads < start && (e = start_worker(srv)) == 0)
		;
	pthread_mutex_unlock(&srv->lock);
	if (srv->nthreads == 0)
		return sifu_err_set(err, SIFU_E_SYS, e, "cannot start the FUSE threads");
	return 0;
}

void sqf_workers_stop(struct sqf_server *srv)
{
	pthread_mutex_lock(&srv->lock);
	__atomic_store_n(&srv->stopping, true, __ATOMIC_RELEASE);
	srv->maxthreads = 0; /* nthreads is final from here */
	unsigned n = srv->nthreads;
	/* A worker between its flag check and read(2) misses one signal:
	 * repeat until every worker has left. */
	while (srv->live > 0) {
		for (unsigned i = 0; i < n; i++)
			pthread_kill(srv->threads[i], SQF_SIG_WAKE);
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
}
