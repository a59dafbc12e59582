/* SPDX-License-Identifier: BSD-3-Clause */
/* Fuzz the SquashFS side of fuse/: superblock checks, id/fragment/xattr
 * tables, inodes, directory listings, symlinks and data, through the same
 * calls the FUSE operations make (over the in-memory backend). */
#include "fuse_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_NODES 512

static void walk(struct sqf_image *img)
{
	uint64_t queue[MAX_NODES];
	size_t head = 0, tail = 0;
	queue[tail++] = sqf_root_ref(img);
	static uint8_t buf[70000];
	while (head < tail) {
		uint64_t ref = queue[head++];
		sqfs_inode_generic_t *ino;
		if (sqf_inode_read(img, ref, &ino) < 0)
			continue;
		struct stat st;
		sqf_inode_stat(img, ino, &st);
		char xl[1024];
		ssize_t n = sqf_listxattr(img, ino, xl, sizeof(xl));
		if (n > 0) {
			xl[n - 1] = 0;
			sqf_getxattr(img, ino, xl, buf, sizeof(buf));
		}
		char *target = NULL;
		if (sqf_readlink(ino, &target) == 0)
			free(target);
		if (S_ISREG(st.st_mode)) {
			sqf_read(img, ino, 0, buf, sizeof(buf));
			sqf_read(img, ino, (uint64_t)st.st_size / 2, buf, 4096);
			sqf_readahead(img, ino, 0, 1u << 20);
		}
		sqfs_free(ino);
		if (!S_ISDIR(st.st_mode))
			continue;
		struct sqf_dir *d;
		if (sqf_dir_get(img, ref, &d) < 0)
			continue;
		for (size_t k = 0; k < d->n && tail < MAX_NODES; k++) {
			queue[tail++] = d->ents[k].ref;
			uint64_t child;
			sqf_lookup(img, ref, d->ents[k].name, &child);
		}
		sqf_dir_put(img, d);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sqf_options o;
	sqf_options_default(&o);
	o.chunk_size = 4096;
	o.cache_size = 64 * 1024;
	o.readahead_max = 0;
	/* both paths: pinned metadata and metadata through the cache */
	o.prefetch = size && (data[size - 1] & 1) ? SQF_PREFETCH_META : SQF_PREFETCH_NONE;
	struct sqf_image *img;
	struct sifu_err err = {0};
	if (sqf_image_open_backend(sqf_backend_mem(data, size), &o, &img, &err) == 0) {
		walk(img);
		sqf_image_close(img);
	}
	return 0;
}
