/* SPDX-License-Identifier: BSD-3-Clause */
/* sif/: the Singularity Image Format — read, validate, create, modify,
 * locate the primary partition; later sign and verify.  Binary compatible
 * with the reference Go implementation (sylabs/sif 2.x, `siftool`). */
#pragma once

#include "common.h"

#define SIF_MAGIC "SIF_MAGIC"
#define SIF_LAUNCH "#!/usr/bin/env run-singularity\n"

/* Partition filesystem types (sylabs/sif FsType) */
enum sif_fstype {
	SIF_FS_SQUASH = 1,
	SIF_FS_EXT3 = 2,
	SIF_FS_IMMOBJECTS = 3,
	SIF_FS_RAW = 4,
	SIF_FS_ENCRYPTED_SQUASH = 5,
};

/* Where a runtime finds its root file system inside an image file. */
struct sif_rootfs_loc {
	uint64_t offset;   /* byte offset of the file system in the file */
	uint64_t size;     /* its length */
	uint32_t fstype;   /* enum sif_fstype */
};

/* Quick sniff: does the file behind FD start like a SIF? (reads 128 bytes) */
bool sif_fd_is_sif(int fd);

/* Open FD as a SIF (validated) and return the primary system partition.
 * A file that is not a SIF is an SIFU_E_UNSUPPORTED error. */
int sif_find_rootfs(int fd, struct sif_rootfs_loc *out, struct sifu_err *err);

/* ---- writing (contract used by pull/build; implemented by the sif work) ----
 * A writer builds a new SIF under a temporary name in the target's directory
 * and renames it into place on commit (mode 0755), so an interrupted write
 * never leaves a broken image under the final name. */
struct sif_writer;

/* Start a new image that will become PATH. */
int sif_writer_create(const char *path, struct sif_writer **out, struct sifu_err *err);
/* Add a data object from memory (deffile, labels, generic JSON, …).
 * datatype is the sylabs/sif DataType (0x4001 deffile, 0x4002 env vars,
 * 0x4003 labels, 0x4004 partition, …); groupid is the plain group number
 * (1 for the primary group), link 0 for none. */
int sif_writer_add_data(struct sif_writer *w, uint32_t datatype, const void *data,
			size_t len, uint32_t groupid, uint32_t link, const char *name,
			struct sifu_err *err);
/* Reserve the next partition: returns the file descriptor of the temporary
 * file and the (4096-aligned) absolute offset the caller writes the file
 * system at, with pwrite.  Ended by sif_writer_end_partition with its size. */
int sif_writer_begin_partition(struct sif_writer *w, int *fd, uint64_t *offset,
			       struct sifu_err *err);
int sif_writer_end_partition(struct sif_writer *w, uint64_t size, uint32_t fstype,
			     uint32_t parttype, const char *arch, bool primary,
			     struct sifu_err *err);
/* fsync, chmod 0755, rename into place. */
int sif_writer_commit(struct sif_writer *w, struct sifu_err *err);
/* Remove the temporary file, free the writer (after a failure, or instead of commit). */
void sif_writer_abort(struct sif_writer *w);
