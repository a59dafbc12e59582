/* SPDX-License-Identifier: BSD-3-Clause */
/* An ext2/3/4 image served in process: open and close through libext2fs,
 * the server's one thread and its stop.  The operations are in ext_ops.c.
 *
 * Why libext2fs in process and not fuse2fs: sifu mounts /dev/fuse itself
 * inside its user namespace and serves from its own threads (no helper
 * process, nothing left behind when the run ends), as it does for SquashFS.
 *
 * The image is read through libext2fs's own unix_io manager with its
 * "offset=" option, on /proc/self/fd/N of the caller's file: a partition in
 * a SIF is then just an offset, and unix_io brings its block cache and
 * write-back that a small io_manager of our own would have to redo.  The
 * file system's size is checked against the partition's, so nothing
 * beyond [offset, offset+size) is touched. */
#define FUSE_USE_VERSION 314
#include "ext_priv.h"
#include "session_priv.h"

#include <et/com_err.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <sys/eventfd.h>

void sqf_ext_options_default(struct sqf_ext_options *o)
{
	memset(o, 0, sizeof(*o));
}

bool sqf_ext_probe(int fd, uint64_t offset)
{
	uint8_t m[2];
	return pread(fd, m, 2, (off_t)(offset + 1024 + 56)) == 2 && m[0] == 0x53 && m[1] == 0xef;
}

/* libext2fs's messages ("Bad magic number in super-block") come from its
 * com_err table, which must be registered once. */
static void error_table(void)
{
	initialize_ext2_error_table();
}

int sqf_ext_open(int fd, uint64_t offset, uint64_t size, bool writable,
                 const struct sqf_ext_options *o, struct sqf_ext **out, struct sifu_err *err)
{
	char name[64], opts[64];
	snprintf(name, sizeof(name), "/proc/self/fd/%d", fd);
	snprintf(opts, sizeof(opts), "offset=%" PRIu64, offset);
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, error_table);
	ext2_filsys fs = NULL;
	/* no EXT2_FLAG_EXCLUSIVE: that is O_EXCL on a block device only */
	int flags = EXT2_FLAG_64BITS | (writable ? EXT2_FLAG_RW : 0);
	errcode_t e = ext2fs_open2(name, opts, flags, 0, 0, unix_io_manager, &fs);
	if (e) {
		int en = sqf_ext_errno(e);
		if (e > 0 && e < 256) {
			bool denied = en == EACCES || en == EROFS || en == EPERM;
			int r = sifu_err_set(err, denied ? SIFU_E_DENIED : SIFU_E_SYS, en,
			                     "cannot open the image%s: %s",
			                     writable ? " read-write" : "", strerror(en));
			if (denied && writable)
				sifu_err_hint(err, "serve it read-only, or make the file writable");
			return r;
		}
		return sifu_err_set(err,
		                    e == EXT2_ET_UNSUPP_FEATURE || e == EXT2_ET_RO_UNSUPP_FEATURE
		                        ? SIFU_E_UNSUPPORTED
		                        : SIFU_E_CORRUPT,
		                    en, "not a usable ext2/3/4 file system: %s", error_message(e));
	}
	int r = 0;
	uint64_t bytes = ext2fs_blocks_count(fs->super) * (uint64_t)fs->blocksize;
	if (bytes > size)
		r = sifu_err_set(err, SIFU_E_RANGE, EINVAL,
		                 "the ext file system (%" PRIu64 " bytes) is larger than its "
		                 "image (%" PRIu64 " bytes)",
		                 bytes, size);
	else if (ext2fs_has_feature_journal_needs_recovery(fs->super)) {
		/* replaying is e2fsck's job; writing past an unreplayed journal
		 * would corrupt the file system, and reading would show stale
		 * data */
		r = sifu_err_set(err, SIFU_E_CORRUPT, EUCLEAN,
		                 "the ext file system's journal needs recovery");
		sifu_err_hint(err, "replay it with: e2fsck -fy IMAGE");
	} else if (writable && (e = ext2fs_read_bitmaps(fs)) != 0)
		r = sifu_err_set(err, SIFU_E_CORRUPT, sqf_ext_errno(e),
		                 "cannot read the ext allocation bitmaps: %s", error_message(e));
	if (r < 0) {
		ext2fs_close_free(&fs);
		return r;
	}
	struct sqf_ext *x = sifu_xcalloc(1, sizeof(*x));
	x->fs = fs;
	x->writable = writable;
	if (writable) {
		/* in use: not "cleanly unmounted" until sqf_ext_close, as the
		 * kernel marks a mounted ext3, so that e2fsck checks an image
		 * whose server died before writing everything back */
		x->was_valid = fs->super->s_state & EXT2_VALID_FS;
		fs->super->s_state &= (__u16)~EXT2_VALID_FS;
		ext2fs_mark_super_dirty(fs);
		ext2fs_flush(fs);
	}
	pthread_mutex_init(&x->lock, NULL);
	snprintf(x->fsname, sizeof(x->fsname), "%s", o && o->fsname ? o->fsname : "sifu");
	*out = x;
	return 0;
}

int sqf_ext_close(struct sqf_ext *x, struct sifu_err *err)
{
	if (!x)
		return 0;
	int r = 0;
	pthread_mutex_lock(&x->lock);
	if (x->writable) {
		sqf_ext_release_all(x);
		if (x->was_valid) {
			x->fs->super->s_state |= EXT2_VALID_FS;
			ext2fs_mark_super_dirty(x->fs);
		}
	}
	errcode_t e = ext2fs_close_free(&x->fs);
	pthread_mutex_unlock(&x->lock);
	if (e)
		r = sifu_err_set(err, SIFU_E_SYS, sqf_ext_errno(e),
		                 "cannot write the ext file system back: %s", error_message(e));
	pthread_mutex_destroy(&x->lock);
	free(x->opens);
	free(x);
	return r;
}

/* The one serving thread: libext2fs is not thread safe, and ext images
 * are the writable layer, not the read path that needs parallelism. */
static void *serve(void *arg)
{
	struct sqf_ext_server *s = arg;
	struct fuse_buf buf = {0};
	sqf_thread_accept_wake(true);
	while (!__atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE) && !fuse_session_exited(s->se)) {
		int r = fuse_session_receive_buf(s->se, &buf);
		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r <= 0)
			break; /* unmounted, or the connection was aborted */
		fuse_session_process_buf(s->se, &buf);
	}
	sqf_thread_accept_wake(false); /* a late one must not interrupt what follows */
	free(buf.mem);
	__atomic_store_n(&s->left, true, __ATOMIC_RELEASE);
	uint64_t one = 1;
	if (write(s->donefd, &one, sizeof(one)) < 0) {
		/* an eventfd counter this small cannot overflow */
	}
	return NULL;
}

static int server_new(struct sqf_ext *x, struct sqf_ext_server **out, struct sifu_err *err)
{
	struct sqf_ext_server *s = sifu_xcalloc(1, sizeof(*s));
	s->x = x;
	s->donefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->donefd < 0) {
		int r = sifu_err_sys(err, "cannot create an eventfd");
		free(s);
		return r;
	}
	char safe[256], fsopt[512];
	size_t k = 0;
	/* the name goes into a comma-separated option string */
	for (const char *p = x->fsname; *p && k + 1 < sizeof(safe); p++)
		safe[k++] = (*p == ',' || *p == '\\' || *p == ' ') ? '_' : *p;
	safe[k] = 0;
	snprintf(fsopt, sizeof(fsopt), "-o%sdefault_permissions,subtype=sifu,fsname=%s",
	         x->writable ? "" : "ro,", safe);
	char *argv[] = {"sifu", fsopt, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(2, argv);
	s->se = fuse_session_new(&args, &sqf_ext_ops, sizeof(sqf_ext_ops), x);
	fuse_opt_free_args(&args);
	if (!s->se) {
		close(s->donefd);
		free(s);
		return sifu_err_set(err, SIFU_E_SYS, EINVAL, "cannot create the FUSE session");
	}
	*out = s;
	return 0;
}

static void server_free(struct sqf_ext_server *s)
{
	fuse_session_destroy(s->se);
	close(s->donefd);
	free(s);
}

static int run_thread(struct sqf_ext_server *s, struct sifu_err *err)
{
	int r = sqf_session_prepare_threads(s->se, err);
	if (r < 0)
		return r;
	/* the thread starts with every signal blocked; it unblocks SQF_SIG_WAKE */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int e = pthread_create(&s->thread, NULL, serve, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e)
		return sifu_err_set(err, SIFU_E_SYS, e, "cannot start the FUSE thread");
	s->running = true;
	return 0;
}

int sqf_ext_server_start(struct sqf_ext *x, int fuse_fd, struct sqf_ext_server **out,
                         struct sifu_err *err)
{
	struct sqf_ext_server *s;
	int r = server_new(x, &s, err);
	if (r < 0)
		return r;
	if ((r = sqf_session_attach(s->se, fuse_fd, err)) < 0 || (r = run_thread(s, err)) < 0) {
		server_free(s);
		return r;
	}
	*out = s;
	return 0;
}

int sqf_ext_server_mount(struct sqf_ext *x, const char *mountpoint, struct sqf_ext_server **out,
                         struct sifu_err *err)
{
	struct sqf_ext_server *s;
	int r = server_new(x, &s, err);
	if (r < 0)
		return r;
	if ((r = sqf_session_mount_dir(s->se, mountpoint, err)) < 0) {
		server_free(s);
		return r;
	}
	s->mounted = true;
	if ((r = run_thread(s, err)) < 0) {
		fuse_session_unmount(s->se);
		server_free(s);
		return r;
	}
	*out = s;
	return 0;
}

int sqf_ext_server_done_fd(const struct sqf_ext_server *s)
{
	return s->donefd;
}

void sqf_ext_server_stop(struct sqf_ext_server *s)
{
	if (!s)
		return;
	if (s->running) {
		__atomic_store_n(&s->stopping, true, __ATOMIC_RELEASE);
		/* the thread may be between its flag check and read(2) and miss
		 * one signal: repeat until it has left */
		while (!__atomic_load_n(&s->left, __ATOMIC_ACQUIRE)) {
			pthread_kill(s->thread, SQF_SIG_WAKE);
			struct timespec ts = {0, 2000000};
			nanosleep(&ts, NULL);
		}
		pthread_join(s->thread, NULL);
	}
	/* after the last request: what the kernel wrote is in libext2fs's
	 * cache until flushed */
	pthread_mutex_lock(&s->x->lock);
	if (s->x->writable && s->x->fs)
		ext2fs_flush(s->x->fs);
	pthread_mutex_unlock(&s->x->lock);
	if (s->mounted)
		fuse_session_unmount(s->se);
	server_free(s);
}
