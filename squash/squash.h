/* SPDX-License-Identifier: BSD-3-Clause */
/* squash/: an in-memory file tree (from OCI layers with whiteouts, or added
 * entry by entry) written out once as SquashFS through libsquashfs.
 *
 * File data is never buffered: a regular file's bytes go straight from the
 * caller's stream into libsquashfs's multithreaded block processor, which
 * writes compressed blocks to the output as it goes.  Only the metadata (names,
 * modes, owners, xattrs, inode records) lives in memory; the inode, directory,
 * fragment, id and xattr tables are written at sq_image_finish.
 *
 * Layers are applied TOP-DOWN: the caller feeds the topmost layer first
 * (layer 0), then the one below it, and so on.  The first entry seen for a
 * path therefore is the final one, and the data of files that an upper layer
 * replaces or deletes is never read, let alone compressed.  Whiteouts
 * (".wh.NAME") and opaque markers (".wh..wh..opq") of layer L hide entries
 * of layers > L (OCI image spec, "Representing Changes").  Entries that
 * would leave the tree ("../x") are refused; absolute names are taken as
 * relative to the root; links are stored, never followed. */
#pragma once

#include "common.h"

struct sq_image;

/* Where the file system goes: FD at byte OFFSET (a SIF partition, or 0 for a
 * bare .sqfs).  Everything is written with pwrite. */
struct sq_opts {
	int compressor;      /* SQFS_COMPRESSOR id; 0 = gzip */
	int level;           /* 0 = the compressor's default */
	unsigned workers;    /* 0 = every online CPU */
	uint32_t block_size; /* 0 = 128 KiB */
	uint32_t mtime;      /* superblock time (reproducible builds pin it) */
	bool clamp_mtime;    /* and no inode is newer than it (SOURCE_DATE_EPOCH) */
};

/* Parse "gzip", "zstd:19", "xz", "lz4" into OPTS.  Pure. */
int sq_parse_compression(const char *spec, struct sq_opts *opts, struct sifu_err *err);

enum sq_type {
	SQ_REG = 1,
	SQ_DIR,
	SQ_SYMLINK,
	SQ_HARDLINK, /* target: another path of the same layer */
	SQ_CHR,
	SQ_BLK,
	SQ_FIFO,
	SQ_SOCK,
};

struct sq_xattr {
	const char *key;
	const void *value;
	size_t size;
};

struct sq_entry {
	const char *path; /* as in the archive: "./usr/bin", "usr/bin/", "/etc" */
	enum sq_type type;
	uint32_t mode; /* permission bits incl. setuid/setgid/sticky */
	uint32_t uid, gid;
	int64_t mtime;
	const char *target; /* SQ_SYMLINK / SQ_HARDLINK */
	uint32_t rdev_major, rdev_minor;
	uint64_t size; /* SQ_REG: bytes the reader will deliver */
	const struct sq_xattr *xattrs;
	size_t nxattrs;
};

/* Reads up to LEN bytes of the current file; returns the count (0 at end)
 * or < 0 with ERR set. */
typedef ssize_t (*sq_read_fn)(void *ctx, void *buf, size_t len, struct sifu_err *err);

int sq_image_create(int fd, uint64_t offset, const struct sq_opts *opts, struct sq_image **out,
                    struct sifu_err *err);
/* Start the next (lower) layer.  Entries added before the first call belong
 * to layer 0 and win over every layer (sifu's own /.singularity.d files). */
void sq_image_next_layer(struct sq_image *img);
/* Add one archive entry of the current layer.  Whiteouts are recognised by
 * name.  For a regular file that stays visible, READ is called until it
 * returns 0 and the bytes are compressed as they come; for a hidden one READ
 * is not called (the caller skips the data).  *USED (may be NULL) says which.
 * Returns 0, SQ_DEFERRED, or < 0 with ERR set. */
int sq_image_add(struct sq_image *img, const struct sq_entry *e, sq_read_fn read, void *ctx,
                 bool *used, struct sifu_err *err);
/* sq_image_add's answer for a hard link whose target an upper layer
 * replaced or deleted: the link itself is visible, but the data it shares
 * was skipped.  The image keeps the link; the caller reads the layer a second
 * time and passes every entry to sq_image_add_deferred, then calls
 * sq_image_links_done (fetch/layer.c).  Links to links (the target is itself
 * a hard link that is hidden or deferred) resolve to the first one's target. */
#define SQ_DEFERRED 1

/* How many deferred links of the current layer still wait for their data. */
size_t sq_image_deferred(const struct sq_image *img);
/* The second pass: if E (a file, symlink or device: anything a hard link
 * may name) is the target of deferred links (the first entry of the layer
 * with that path is), it is added under the first link's name, a regular
 * file's data read through READ, and the other links share that inode.  A link that a later entry of the layer replaced (the same name, or
 * a name above it) is dropped, as tar would.  Anything else: 0, READ is not
 * called.  O(1) per entry. */
int sq_image_add_deferred(struct sq_image *img, const struct sq_entry *e, sq_read_fn read,
                          void *ctx, struct sifu_err *err);
/* End of the layer's hard links: an error names a deferred link whose target
 * the layer does not have as a regular file.  Call it before
 * sq_image_next_layer (which otherwise marks the image failed when links are
 * left unserved). */
int sq_image_links_done(struct sq_image *img, struct sifu_err *err);

/* Add a regular file from memory (small generated files). */
int sq_image_add_buffer(struct sq_image *img, const char *path, uint32_t mode, const void *data,
                        size_t len, struct sifu_err *err);
/* Wait for the compressor threads and write the tables and the superblock.
 * *SIZE is the file system's length in bytes (padded to 4 KiB). */
int sq_image_finish(struct sq_image *img, uint64_t *size, struct sifu_err *err);
/* Counters for progress and tests. */
struct sq_stats {
	uint64_t entries, hidden, files, bytes_in;
	uint64_t link_probes; /* slots examined in the hard-link table (linear in entries) */
};
void sq_image_stats(const struct sq_image *img, struct sq_stats *st);
void sq_image_free(struct sq_image *img);
