/* SPDX-License-Identifier: BSD-3-Clause */
/* The server's life: the FUSE session over a /dev/fuse fd (sqf_server_start)
 * or a mount of its own with its watchdog (sqf_server_mount), the request
 * counts, and the stop.  The operations are in ops.c, the threads in
 * workers.c, the page-cache preload in preload.c. */
#define FUSE_USE_VERSION 314
#include "fuse_priv.h"
#include "session_priv.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/resource.h>

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
	srv->se = fuse_session_new(&args, &sqf_fuse_ops, sizeof(sqf_fuse_ops), srv);
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

static void watchdog_done(struct sqf_server *srv);

static void server_free(struct sqf_server *srv)
{
	watchdog_done(srv); /* unmounted by now, or never mounted */
	if (srv->se)
		fuse_session_destroy(srv->se);
	close(srv->donefd);
	sqf_fnodes_free(srv);
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
	if ((r = sqf_session_attach(srv->se, fuse_fd, err)) < 0 ||
	    (r = sqf_workers_start(srv, err)) < 0) {
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
	if (geteuid() != 0 && !sifu_find_exe("fusermount3", srv->img->opt.search_path, fusermount,
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
	sifu_proc_wait(srv->watch_pid, NULL, NULL);
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
	if ((r = sqf_session_mount_dir(srv->se, mountpoint, err)) < 0) {
		server_free(srv);
		return r;
	}
	srv->mounted = true;
	watchdog_start(srv, abs);
	if ((r = sqf_workers_start(srv, err)) < 0) {
		fuse_session_unmount(srv->se);
		server_free(srv);
		return r;
	}
	*out = srv;
	return 0;
}

/* FUSE opcodes by name, for the counters (see linux/fuse.h). */
static const char *const op_names[SQF_OP_SLOTS] = {
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
	for (unsigned i = 0; i < SQF_OP_SLOTS; i++) {
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
	/* preloads first, while the workers still answer the READs they may
	 * wait on */
	sqf_preload_stop(srv);
	sqf_workers_stop(srv);
	/* Unmount only once nobody serves: libfuse closes the fd first (a
	 * synchronous umount would otherwise wait on us), then detaches. */
	if (srv->mounted)
		fuse_session_unmount(srv->se);
	server_free(srv);
}
