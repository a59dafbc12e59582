/* SPDX-License-Identifier: BSD-3-Clause */
/* sifu mount IMAGE DIR: serve an image on a directory in the foreground
 * (debugging, benchmarks), then print the server's I/O counters. */
#include "cli.h"
#include "sif.h"
#include "sqfuse.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>

int cmd_mount(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);

static int size_opt(struct cli_args *a, enum cli_opt_id id, uint64_t *out, bool zero_ok,
                    struct sifu_err *err)
{
	if (!a->set[id])
		return 0;
	uint64_t v;
	if (cli_parse_size(a->val[id], &v) < 0 || (!zero_ok && v == 0)) {
		sifu_err_set(err, SIFU_E_USAGE, EINVAL, "--%s: '%s' is not a size",
		             cli_opts[id].long_name, a->val[id]);
		sifu_err_hint(err, "give a number with an optional K, M or G suffix, e.g. 4M");
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* The index of option ID's value in NAMES (NULL-terminated), 0 when the
 * option is not given, or -1 with err set. */
static int mode_opt(struct cli_args *a, enum cli_opt_id id, const char *const *names,
                    struct sifu_err *err)
{
	if (!a->set[id])
		return 0;
	for (int i = 0; names[i]; i++)
		if (!strcmp(a->val[id], names[i]))
			return i;
	sifu_err_set(err, SIFU_E_USAGE, EINVAL, "--%s: unknown mode '%s'", cli_opts[id].long_name,
	             a->val[id]);
	sifu_err_hint(err, "use %s, %s or %s", names[0], names[1], names[2]);
	return -1;
}

const char *cli_block_cache_path(const char *v, char *buf, size_t len)
{
	if (v)
		return strcmp(v, "off") && strcmp(v, "none") && *v ? v : NULL;
	snprintf(buf, len, "%s/sifu-%u/blocks", cli_tmp_base(), (unsigned)getuid());
	return buf;
}

/* DIR as a parent the user chose (opened as it resolves) and the last
 * component, which sifu makes and checks; "." and ".." are resolved first. */
static int split_named(const char *dir, char *parent, char *base, size_t len)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", dir);
	for (size_t n = strlen(buf); n > 1 && buf[n - 1] == '/'; n--)
		buf[n - 1] = '\0';
	char *slash = strrchr(buf, '/');
	const char *b = slash ? slash + 1 : buf;
	if (!strcmp(b, ".") || !strcmp(b, "..")) {
		char *real = realpath(dir, NULL);
		if (!real)
			return -errno;
		snprintf(buf, sizeof(buf), "%s", real);
		free(real);
		slash = strrchr(buf, '/');
		b = slash + 1;
	}
	if (!*b)
		return -EISDIR; /* "/" */
	snprintf(base, len, "%s", b);
	if (!slash)
		snprintf(parent, len, ".");
	else if (slash == buf)
		snprintf(parent, len, "/");
	else
		snprintf(parent, len, "%.*s", (int)(slash - buf), buf);
	return 0;
}

int cli_block_cache_open(const char *dir, bool dflt, bool create, struct sifu_err *err)
{
	char parent[PATH_MAX], rel[PATH_MAX];
	int r = 0;
	if (dflt) {
		/* sifu-UID and blocks/ are both made and walked by sifu: both
		 * are checked ($TMPDIR itself is the user's choice) */
		snprintf(parent, sizeof(parent), "%s", cli_tmp_base());
		snprintf(rel, sizeof(rel), "sifu-%u/blocks", (unsigned)getuid());
	} else if ((r = split_named(dir, parent, rel, sizeof(rel))) < 0) {
		errno = -r;
		return sifu_err_sys(err, "block cache %s", dir);
	}
	const char *alt = dflt ? "set TMPDIR to a directory of yours, or use --block-cache DIR"
	                       : "name a directory of yours that nobody else may write, or use "
	                         "--block-cache off";
	_cleanup_close_ int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0) {
		r = sifu_err_sys(err, "block cache: cannot open %s", parent);
		sifu_err_hint(err, "%s", alt);
		return r;
	}
	/* clean and list look at what exists; only a run makes the directories */
	if (!create && faccessat(pfd, rel, F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
		return sifu_err_sys(err, "block cache %s/%s", parent, rel);
	struct sifu_err in = {0};
	int fd = sifu_privdir_open(pfd, strcmp(parent, "/") ? parent : "", rel, ~0u, alt, &in);
	if (fd >= 0)
		return fd;
	r = sifu_err_set(err, in.code, in.errnum, "block cache: %s", in.chain[0]);
	sifu_err_hint(err, "%s", in.hint);
	return r;
}

/* The block cache's directory, opened here on the host side (before any
 * namespace), each component sifu makes checked (cli_block_cache_open).  A
 * cache only saves work, so where it cannot be had, sifu runs without it:
 * saying so when something is wrong with a directory (another user's, a
 * symlink, open to others: someone may be trying to feed us blocks or make
 * us write elsewhere) or when the user named the directory. */
static int block_cache_dir(struct cli_args *a)
{
	const char *opt = a->set[O_BLOCK_CACHE] ? a->val[O_BLOCK_CACHE] : NULL;
	char def[PATH_MAX];
	const char *v = cli_block_cache_path(opt, def, sizeof(def));
	if (!v || (O_VERIFY < O_COUNT && a->set[O_VERIFY]) ||
	    (O_DISABLE_CACHE < O_COUNT && a->set[O_DISABLE_CACHE]))
		return -1; /* off; a verified image is read from the image only */
	struct sifu_err e = {0};
	int fd = cli_block_cache_open(v, v == def, true, &e);
	if (fd >= 0)
		return fd;
	char line[SIFU_ERR_MSG_MAX];
	sifu_err_format(&e, line, sizeof(line));
	if (opt || e.code == SIFU_E_DENIED)
		sifu_log(SIFU_LOG_WARN,
		         "%s; running without the block cache (it only saves time): %s", line,
		         e.hint);
	else
		sifu_debug("%s; running without the block cache", line);
	return -1;
}

int cli_fuse_options(struct cli_args *a, struct sqf_options *o, struct sifu_err *err)
{
	sqf_options_default(o);
	if (size_opt(a, O_CHUNK_SIZE, &o->chunk_size, false, err) < 0 ||
	    size_opt(a, O_CACHE_SIZE, &o->cache_size, false, err) < 0 ||
	    size_opt(a, O_READAHEAD, &o->readahead_max, true, err) < 0 ||
	    size_opt(a, O_PRELOAD, &o->preload_max, true, err) < 0)
		return -EINVAL;
	if (o->chunk_size < 4096 || o->chunk_size > (64u << 20) ||
	    (o->chunk_size & (o->chunk_size - 1)))
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		                    "--chunk-size must be a power of two between 4K and 64M"),
		       -EINVAL;
	static const char *const prefetch[] = {"none", "meta", "all", NULL};
	static const char *const io[] = {"auto", "pagecache", "chunks", NULL};
	int m;
	if ((m = mode_opt(a, O_PREFETCH, prefetch, err)) < 0)
		return -EINVAL;
	if (a->set[O_PREFETCH])
		o->prefetch = (enum sqf_prefetch)m; /* same order as the enum */
	if ((m = mode_opt(a, O_IMAGE_IO, io, err)) < 0)
		return -EINVAL;
	if (a->set[O_IMAGE_IO])
		o->io = (enum sqf_io)m;
	if (O_OWNER_SELF < O_COUNT && a->set[O_OWNER_SELF])
		o->owner_self = true;
	o->block_cache_dir = block_cache_dir(a);
	o->search_path = cli_env_get()->path;
	return 0;
}

/* Find the file system in IMAGE: a SIF's root file system (SquashFS or
 * ext3), or the whole file. */
static int locate(int fd, const char *path, uint64_t *off, uint64_t *size, bool *ext,
                  struct sifu_err *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sifu_err_sys(err, "cannot stat %s", path);
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "%s is not an image file", path);
	if (sif_fd_is_sif(fd)) {
		struct sif_rootfs_loc loc;
		int r = sif_find_rootfs(fd, &loc, err);
		if (r < 0)
			return sifu_err_wrap(err, "%s", path);
		*ext = loc.fstype == SIF_FS_EXT3;
		if (loc.fstype != SIF_FS_SQUASH && !*ext)
			return sifu_err_set(err, SIFU_E_UNSUPPORTED, EINVAL,
			                    "%s: the root file system is not SquashFS (fstype %u)",
			                    path, loc.fstype);
		*off = loc.offset;
		*size = loc.size;
		return 0;
	}
	*off = 0;
	*size = (uint64_t)st.st_size;
	*ext = sqf_ext_probe(fd, 0);
	return 0;
}

/* Block the signals that stop `sifu mount` (before the server's threads
 * start, so that they inherit the mask) and return a signalfd for them;
 * OLD gets the mask to restore. */
static int stop_signals(sigset_t *old, struct sifu_err *err)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, old);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	return sfd < 0 ? sifu_err_sys(err, "cannot create a signalfd") : sfd;
}

/* Wait for a stop signal on SFD (taken, so that it is not delivered once
 * the mask is restored) or for the server to end on its own (DONEFD). */
static void wait_stop(int sfd, int donefd)
{
	struct pollfd p[2] = {{.fd = sfd, .events = POLLIN}, {.fd = donefd, .events = POLLIN}};
	while (poll(p, 2, -1) < 0 && errno == EINTR)
		;
	if (p[0].revents) {
		struct signalfd_siginfo si;
		if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
			sifu_debug("fuse: signal %u, unmounting", si.ssi_signo);
	}
}

/* Serve the ext image at [off, off+size) of FD on DIR until a signal in
 * SFD or the unmount, then write it back. */
static int mount_ext(const char *image, const char *dir, int fd, uint64_t off, uint64_t size,
                     bool writable, int sfd, struct sifu_err *err)
{
	struct sqf_ext_options o;
	sqf_ext_options_default(&o);
	o.fsname = image;
	struct sqf_ext *x;
	int r = sqf_ext_open(fd, off, size, writable, &o, &x, err);
	if (r < 0)
		return sifu_err_wrap(err, "%s", image);
	struct sqf_ext_server *srv;
	if ((r = sqf_ext_server_mount(x, dir, &srv, err)) < 0) {
		sqf_ext_close(x, NULL);
		return r;
	}
	sifu_log(SIFU_LOG_INFO, "serving %s %s on %s; Ctrl-C or 'fusermount3 -u %s' to stop", image,
	         writable ? "read-write" : "read-only", dir, dir);
	wait_stop(sfd, sqf_ext_server_done_fd(srv));
	sqf_ext_server_stop(srv);
	if ((r = sqf_ext_close(x, err)) < 0)
		return sifu_err_wrap(err, "%s", image);
	return 0;
}

static void print_stats(const struct sqf_image *img, const char *ops, uint64_t ns)
{
	struct sqf_stats s;
	sqf_image_stats(img, &s);
	char b[32];
	sifu_fmt_bytes(s.backend_bytes, b, sizeof(b));
	sifu_info("read %s in %" PRIu64 " requests from the image; cache: %" PRIu64
	          " hits, %" PRIu64 " misses, %" PRIu64 " read-ahead hits (%s, served %.1f s)",
	          b, s.backend_requests, s.cache_hits, s.cache_misses, s.readahead_hits,
	          s.pagecache ? "page-cache mode" : "chunk mode", ns / 1e9);
	sifu_info("requests: %s", ops);
	if (!s.kept)
		return;
	sifu_fmt_bytes(s.kept_added, b, sizeof(b));
	sifu_info("block cache: %" PRIu64 " blocks found, %" PRIu64 " not found, %s added",
	          s.kept_hits, s.kept_misses, b);
}

int cmd_mount(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
{
	if (a->npos != 2) {
		sifu_err_set(err, SIFU_E_USAGE, EINVAL, "mount needs an image and a directory");
		sifu_err_hint(err, "usage: %s", v->usage);
		return -EINVAL;
	}
	const char *image = a->pos[0], *dir = a->pos[1];
	int r;
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		sifu_err_set(err, SIFU_E_USAGE, ENOTDIR, "%s is not a directory", dir);
		sifu_err_hint(err, "create it first: mkdir -p %s", dir);
		return -ENOTDIR;
	}
	_cleanup_close_ int fd = open(image, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		sifu_err_sys(err, "cannot open %s", image);
		return -ENOENT;
	}
	uint64_t off = 0, size = 0;
	bool ext = false, writable = a->set[O_WRITABLE];
	if ((r = locate(fd, image, &off, &size, &ext, err)) < 0)
		return r;
	if (writable && !ext) {
		sifu_err_set(err, SIFU_E_USAGE, EROFS, "%s: --writable needs an ext3 image", image);
		sifu_err_hint(err, "SquashFS is read-only; mount it without --writable");
		return -EROFS;
	}
	if (ext) {
		sigset_t old;
		_cleanup_close_ int sfd = stop_signals(&old, err);
		r = sfd < 0 ? sfd : mount_ext(image, dir, fd, off, size, writable, sfd, err);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return r;
	}
	struct sqf_options o;
	if ((r = cli_fuse_options(a, &o, err)) < 0)
		return r;
	struct sqf_image *img;
	uint64_t t0 = sifu_now_ns();
	if ((r = sqf_image_open(fd, off, size, &o, &img, err)) < 0)
		return sifu_err_wrap(err, "%s", image);
	sifu_debug("fuse: image opened in %.1f ms", (sifu_now_ns() - t0) / 1e6);

	sigset_t old;
	_cleanup_close_ int sfd = stop_signals(&old, err);
	struct sqf_server *srv = NULL;
	r = sfd < 0 ? sfd : sqf_server_mount(img, dir, image, &srv, err);
	if (r < 0) {
		sqf_image_close(img);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		return r;
	}
	sifu_log(SIFU_LOG_INFO, "serving %s on %s; Ctrl-C or 'fusermount3 -u %s' to stop", image,
	         dir, dir);
	wait_stop(sfd, sqf_server_done_fd(srv));
	char ops[512];
	sqf_server_counts(srv, ops, sizeof(ops));
	sqf_server_stop(srv);
	print_stats(img, ops, sifu_now_ns() - t0);
	sqf_image_close(img);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return 0;
}
