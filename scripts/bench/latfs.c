/* SPDX-License-Identifier: BSD-3-Clause */
/* latfs: a read-only FUSE passthrough of one directory that sleeps a fixed
 * time before every read request and serves with direct I/O (no client page
 * cache) - a stand-in for a parallel file system seen by a cold client.
 *
 *   latfs SRC MNT [DELAY_US] [-- extra fuse options]   (default 2000 us)
 *
 * Multithreaded: concurrent requests wait concurrently, as on Lustre/GPFS
 * where latency, not bandwidth, is the cost.  Counts requests and bytes and
 * prints them to stderr at unmount. */
#define FUSE_USE_VERSION 31
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *src;
static long delay_us = 2000;
static unsigned long n_reads, n_bytes;

static void full(const char *path, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", src, path);
}

static void *lat_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	conn->max_read = 1 << 20; /* libfuse wants it here and in -o max_read */
	cfg->direct_io = 1;
	cfg->kernel_cache = 0;
	cfg->use_ino = 1;
	return NULL;
}

static int lat_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	char p[4096];
	full(path, p, sizeof(p));
	return lstat(p, st) < 0 ? -errno : 0;
}

static int lat_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                       struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	char p[4096];
	full(path, p, sizeof(p));
	DIR *d = opendir(p);
	if (!d)
		return -errno;
	for (struct dirent *e; (e = readdir(d));)
		fill(buf, e->d_name, NULL, 0, 0);
	closedir(d);
	return 0;
}

static int lat_open(const char *path, struct fuse_file_info *fi)
{
	char p[4096];
	full(path, p, sizeof(p));
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	fi->fh = (uint64_t)fd;
	fi->direct_io = 1;
	return 0;
}

static int lat_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct timespec ts = {delay_us / 1000000, (delay_us % 1000000) * 1000};
	nanosleep(&ts, NULL);
	ssize_t n = pread((int)fi->fh, buf, size, off);
	if (n < 0)
		return -errno;
	__atomic_add_fetch(&n_reads, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&n_bytes, (unsigned long)n, __ATOMIC_RELAXED);
	return (int)n;
}

static int lat_release(const char *path, struct fuse_file_info *fi)
{
	close((int)fi->fh);
	return 0;
}

static void lat_destroy(void *p)
{
	fprintf(stderr, "latfs: %lu read requests, %lu bytes\n", n_reads, n_bytes);
}

static const struct fuse_operations ops = {
    .init = lat_init,
    .getattr = lat_getattr,
    .readdir = lat_readdir,
    .open = lat_open,
    .read = lat_read,
    .release = lat_release,
    .destroy = lat_destroy,
};

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: latfs SRC MNT [DELAY_US] [-- fuse options]\n");
		return 2;
	}
	static char rsrc[4096];
	if (!realpath(argv[1], rsrc))
		return perror(argv[1]), 1;
	src = rsrc;
	int i = 3;
	if (argc > 3 && strcmp(argv[3], "--") != 0)
		delay_us = strtol(argv[i++], NULL, 10);
	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	char *fargv[64];
	int fargc = 0;
	fargv[fargc++] = argv[0];
	fargv[fargc++] = "-f";
	fargv[fargc++] = "-o";
	fargv[fargc++] = "ro,fsname=latfs,max_read=1048576";
	for (; i < argc && fargc < 62; i++)
		fargv[fargc++] = argv[i];
	fargv[fargc++] = argv[2];
	fargv[fargc] = NULL;
	return fuse_main(fargc, fargv, &ops, NULL);
}
