/* SPDX-License-Identifier: BSD-3-Clause */
/* fuse/: the in-process, multithreaded, read-only SquashFS FUSE server.
 *
 * The image is a byte range (offset, size) of a file (a SIF partition, or a
 * whole .sqfs at offset 0) read through an I/O backend and a shared chunk
 * cache with metadata preload and per-file read-ahead.  The caller mounts a
 * /dev/fuse fd itself (mount(2) inside a user namespace: no fusermount3) and
 * hands the fd to sqf_server_start(); the server answers on threads of the
 * calling process until sqf_server_stop(). */
#pragma once

#include "common.h"

#include <sys/types.h>

enum sqf_prefetch { SQF_PREFETCH_NONE, SQF_PREFETCH_META, SQF_PREFETCH_ALL };

/* How the image file is read: AUTO picks PAGECACHE for a file on a local
 * disk file system (ext4, xfs, btrfs, tmpfs, ...) and CHUNKS for anything
 * else (NFS, Lustre, GPFS, FUSE, ...), where round trips cost. */
enum sqf_io { SQF_IO_AUTO, SQF_IO_PAGECACHE, SQF_IO_CHUNKS };

/* A partition verified before it is served (`exec --verify`): the SHA-256 of
 * every BLOCK_SIZE bytes of the image range as it was verified (the last
 * block may be shorter).  With it, sqf_image_open puts a checking layer over
 * the file: every read, in page-cache and in chunk mode, the metadata
 * preload included, fetches the whole blocks it touches and compares each
 * with its digest before any byte of it is used; a block that differs is
 * EIO (and one warning that the image changed after verification), never
 * served.  The block cache is not used.  HASH computes SHA-256 and comes
 * from the caller, so that fuse/ (and the launcher binary) does not link
 * libcrypto; it is called from many threads at once.  The struct and the
 * digests must outlive the image. */
struct sqf_verity {
	uint64_t block_size; /* a power of two */
	size_t nblocks;      /* ceil(size / block_size) */
	const uint8_t (*sha256)[32];
	void (*hash)(const void *data, size_t len, uint8_t out[32]);
};

struct sqf_options {
	uint64_t chunk_size;    /* aligned chunk, default 1 MiB */
	uint64_t cache_size;    /* LRU bound in bytes */
	uint64_t readahead_max; /* per-file window bound; 0 disables */
	enum sqf_prefetch prefetch;
	enum sqf_io io;
	bool owner_self; /* present every file as owned by uid/gid below */
	uid_t uid;
	gid_t gid;
	unsigned threads; /* FUSE worker threads; 0 = default */
	/* a file of at most this size is pushed whole into the kernel's page
	 * cache at its first read (0: never) */
	uint64_t preload_max;
	/* the block cache: a directory of the caller's own (an O_DIRECTORY fd
	 * the caller keeps open; -1: none) where decompressed blocks of files
	 * up to 16 MiB are kept for the next starts of the same image, and
	 * the bound on its size in bytes */
	int block_cache_dir;
	uint64_t block_cache_max;
	/* NULL, or serve only bytes that match these digests (see above) */
	const struct sqf_verity *verity;
	/* the caller's $PATH (NULL: none): sqf_server_mount's watchdog looks
	 * for fusermount3 there (fuse/ reads no environment) */
	const char *search_path;
};

/* Defaults that need no tuning. */
void sqf_options_default(struct sqf_options *o);

struct sqf_image;

/* Open the SquashFS at [offset, offset+size) of FD (dup'ed; the caller keeps
 * its own).  Validates the superblock; with SQF_PREFETCH_META or ALL preloads
 * the metadata tables. */
int sqf_image_open(int fd, uint64_t offset, uint64_t size, const struct sqf_options *o,
                   struct sqf_image **out, struct sifu_err *err);
void sqf_image_close(struct sqf_image *img);

struct sqf_stats {
	bool pagecache; /* read in page-cache mode (exact reads, no chunks) */
	uint64_t backend_bytes, backend_requests;
	uint64_t cache_hits, cache_misses, readahead_hits;
	/* the block cache (KEPT: in use): blocks found there, not found,
	 * bytes added */
	bool kept;
	uint64_t kept_hits, kept_misses, kept_added;
};
void sqf_image_stats(const struct sqf_image *img, struct sqf_stats *st);

struct sqf_server;

/* Serve IMG on FUSE_FD, an open /dev/fuse already mounted by the caller
 * (mount(2) of type "fuse.sifu" with "fd=N,rootmode=40000,user_id=U,
 * group_id=G" plus "default_permissions" for the kernel to check modes; do
 * not pass max_read: reads of up to 1 MiB are negotiated at INIT).  Returns
 * once the server threads run (2 to start, more while all are busy); the
 * caller keeps ownership of IMG.  The threads block every signal but
 * SIGRTMAX-1, which sqf_server_stop sends them to interrupt their read(2)
 * (the server installs a handler for it that does nothing). */
int sqf_server_start(struct sqf_image *img, int fuse_fd, struct sqf_server **out,
                     struct sifu_err *err);
/* `sifu mount`: mount IMG on MOUNTPOINT the ordinary libfuse way (mount(2)
 * as root, fusermount3 otherwise) and serve it; sqf_server_stop unmounts. */
int sqf_server_mount(struct sqf_image *img, const char *mountpoint, const char *fsname,
                     struct sqf_server **out, struct sifu_err *err);
/* An eventfd that becomes readable when the server ends on its own (the
 * file system was unmounted or the connection aborted): poll it. */
int sqf_server_done_fd(const struct sqf_server *srv);
/* The requests served so far by kind, as text ("lookup 12, read 40, ..."). */
void sqf_server_counts(const struct sqf_server *srv, char *buf, size_t len);
/* At --debug level: log the image's I/O counters and the request counts. */
void sqf_server_debug_stats(const struct sqf_server *srv);
/* Stop serving, join the threads, free the server (not the image).  With
 * sqf_server_start the /dev/fuse fd is the caller's: its file description is
 * made blocking, and the server works on a duplicate it closes. */
void sqf_server_stop(struct sqf_server *srv);

/* Extract the whole image below DIRFD (the no-FUSE fallback, --unsquash):
 * regular files, dirs, symlinks, hard links; device nodes are skipped. */
int sqf_extract(struct sqf_image *img, int dirfd, struct sifu_err *err);

/* Read the regular file at PATH (from the image's root; symlinks followed
 * inside the image) into a malloc'd, NUL-terminated buffer of at most MAX
 * bytes.  For metadata (inspect) without mounting. */
int sqf_read_path(struct sqf_image *img, const char *path, size_t max, char **data, size_t *len,
                  struct sifu_err *err);

/* The names in the directory at PATH (resolved as above), in the image's
 * order, as a NULL-terminated malloc'd array of *N malloc'd strings. */
int sqf_list_dir(struct sqf_image *img, const char *path, char ***names, size_t *n,
                 struct sifu_err *err);

/* ------------------------------------------------------------ ext2/3/4 --
 * An ext3 (or ext2/ext4) file system image served in process through
 * Debian's libext2fs (LGPL-2.0, linked dynamically; see docs/fuse.md), read
 * only or read-write: the writable layer of `--overlay IMG.ext3`, good
 * enough to be kernel overlayfs's upper directory (user.* xattrs, whiteouts
 * by RENAME_WHITEOUT or a 0:0 character device).  libext2fs is not thread
 * safe: one thread serves, one lock guards the file system.  Owners are
 * presented as stored. */
struct sqf_ext_options {
	/* shown as the source in the mount table by sqf_ext_server_mount;
	 * NULL: "sifu" */
	const char *fsname;
};
void sqf_ext_options_default(struct sqf_ext_options *o);

/* Does an ext2/3/4 superblock start at byte 1024 of [OFFSET, ...) of FD?
 * (Its magic, 0xEF53 at 56: a sniff, not a check.) */
bool sqf_ext_probe(int fd, uint64_t offset);

struct sqf_ext;

/* Open the file system at [offset, offset+size) of FD (a whole image at 0,
 * or a SIF partition).  WRITABLE opens it read-write (FD's file must be
 * writable by the caller: it is reopened through /proc/self/fd).  A journal
 * that needs recovery (the image was in use by a kernel that crashed) is
 * refused, not replayed: e2fsck replays it. */
int sqf_ext_open(int fd, uint64_t offset, uint64_t size, bool writable,
                 const struct sqf_ext_options *o, struct sqf_ext **out, struct sifu_err *err);
/* Write everything back (read-write) and close.  Call after the server
 * stopped.  An error means the image may need e2fsck. */
int sqf_ext_close(struct sqf_ext *fs, struct sifu_err *err);

/* Make an ext3 file system with Apptainer's overlay layout in FD, a new
 * regular file already of the wanted size (sparse or not: the caller's
 * choice), for `overlay create` (fuse/ext_mkfs.c): mke2fs, found in
 * SEARCH_PATH then /usr/sbin and /sbin, makes the file system; then /,
 * /upper, /work and DIRS[0..NDIRS) under /upper (`mkdir -p`, never
 * outside it) are made or set owned by UID:GID.  FD must be writable. */
struct sqf_ext_mkfs_options {
	const char *search_path;
	uint32_t uid, gid;
	char *const *dirs;
	size_t ndirs;
};
int sqf_ext_mkfs_overlay(int fd, const struct sqf_ext_mkfs_options *o, struct sifu_err *err);

struct sqf_ext_server;

/* As sqf_server_start, for an ext image on FUSE_FD (mounted by the caller
 * with "default_permissions"; without "ro" when the image is writable). */
int sqf_ext_server_start(struct sqf_ext *fs, int fuse_fd, struct sqf_ext_server **out,
                         struct sifu_err *err);
/* As sqf_server_mount (`sifu mount IMG.ext3 DIR`). */
int sqf_ext_server_mount(struct sqf_ext *fs, const char *mountpoint, struct sqf_ext_server **out,
                         struct sifu_err *err);
/* As sqf_server_done_fd. */
int sqf_ext_server_done_fd(const struct sqf_ext_server *srv);
/* Stop serving, unmount what sqf_ext_server_mount mounted, free the server
 * (not the file system), having flushed the file system to the image. */
void sqf_ext_server_stop(struct sqf_ext_server *srv);
