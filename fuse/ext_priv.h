/* SPDX-License-Identifier: BSD-3-Clause */
/* fuse/ext*.c internals: the ext image served through libext2fs. */
#pragma once

#include "sqfuse.h"

#include <ext2fs/ext2fs.h>
#include <pthread.h>

/* An inode some FUSE file handle holds open: unlinked to zero links while
 * open, it is freed at the last release (as a kernel file system keeps an
 * orphan), not while a writer may still be filling its blocks. */
struct ext_open {
	ext2_ino_t ino;
	unsigned count;
};

struct sqf_ext {
	ext2_filsys fs;
	bool writable;
	bool was_valid; /* the image was clean when opened read-write */
	/* libext2fs is not thread safe; the server's one thread takes it for
	 * every request, so do stop and close */
	pthread_mutex_t lock;
	struct ext_open *opens;
	size_t nopens, capopens;
	char fsname[256];
};

struct sqf_ext_server {
	struct sqf_ext *x;
	struct fuse_session *se;
	pthread_t thread;
	bool running, mounted;
	bool stopping; /* atomic */
	bool left;     /* atomic: the thread has returned */
	int donefd;
};

extern const struct fuse_lowlevel_ops sqf_ext_ops;

/* libext2fs's error code as an errno for the kernel. */
int sqf_ext_errno(errcode_t e);

/* The server is gone: inodes unlinked while open lose their last
 * reference now (lock held). */
void sqf_ext_release_all(struct sqf_ext *x);
