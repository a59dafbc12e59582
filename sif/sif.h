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
