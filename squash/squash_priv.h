/* SPDX-License-Identifier: BSD-3-Clause */
/* squash/'s private header: the image object that tree.c (the in-memory
 * tree, layers, whiteouts and hard links: what goes into the image) and
 * writer.c (libsquashfs: the output file, compression, the tables: how it
 * is written) share.  tree.c calls writer.c, never the other way: the
 * writer only reads the finished tree. */
#pragma once

#include "squash.h"

#include <limits.h>

#include <sqfs/predef.h>
#include <sqfs/io.h>
#include <sqfs/super.h>

#define SQ_PATH_MAX 4096
#define SQ_NAME_MAX 255
#define SQ_LINK_MAX 4096
#define NO_LAYER    INT_MAX

/* The sqfs_file_t that libsquashfs writes through: FD at a fixed offset. */
struct sq_out {
	sqfs_file_t base;
	int fd;
	uint64_t offset, size;
	int error; /* first errno seen, so a full disk is reported as such */
};

struct sq_inode {
	enum sq_type type;
	uint32_t mode, uid, gid, mtime;
	uint32_t nlink; /* directory entries that point here */
	uint32_t ino;   /* squashfs inode number, assigned at finish */
	bool written;
	uint64_t ref; /* inode reference once written */
	char *target; /* symlink */
	uint32_t devno;
	sqfs_inode_generic_t *file; /* owned by us; updated by the block processor */
	char *xattr_buf;            /* packed key\0 u32 size value ... */
	size_t xattr_len;
	size_t nxattrs;
};

struct sq_node {
	struct sq_node *parent;
	struct sq_node *first, *next; /* children list, sibling list */
	struct sq_node *all_next;     /* every node ever made, for freeing */
	char *name;
	struct sq_inode *ino; /* NULL for a whiteout marker */
	int layer;            /* layer that made this node */
	int opaque;           /* entries of layers > opaque are hidden below */
	uint64_t seq;         /* creation order, for a deferred link's "later entry wins" */
	bool implicit;        /* a directory nobody described yet */
	bool dead;
};

/* Hard links of the current layer that are not in the tree (yet): see
 * "hard links across layers" in tree.c. */
struct sq_dlink {
	struct sq_dlink *next;
	char *path;   /* normalised */
	uint64_t seq; /* img->seq when it was deferred */
};

struct sq_lname {
	char *path;                     /* normalised: "a/b", "" for the root */
	struct sq_lname *alias;         /* a hidden or deferred link is named PATH: its target */
	struct sq_dlink *first, **tail; /* deferred links that want PATH's data, in order */
	bool served;
};

struct sq_image {
	struct sq_opts opts;
	struct sq_out *out;
	sqfs_compressor_t *cmp;
	sqfs_block_writer_t *bwr;
	sqfs_frag_table_t *frag;
	sqfs_block_processor_t *proc;
	sqfs_super_t super;
	struct sq_node *root;
	struct sq_node *all;
	struct sq_inode **inodes; /* every inode, for freeing and file fix-ups */
	size_t ninodes, cap_inodes;
	struct sq_node **hash; /* open addressing on (parent, name) */
	size_t hash_cap, hash_used;
	struct sq_lname **ltab; /* open addressing on the normalised path */
	size_t ltab_cap, ltab_used;
	size_t naliases, ndeferred; /* live aliases, deferred links not yet served */
	uint64_t seq;
	int layer;
	bool failed, finished;
	struct sq_stats stats;
};

static inline bool sq_is_dir(const struct sq_node *n)
{
	return n->ino && n->ino->type == SQ_DIR;
}

/* writer.c: complete IMG->opts with the defaults (from ASKED), open the
 * output (FD at OFFSET), the compressor, the superblock and the block
 * processor.  On failure the caller frees IMG (sq_writer_close). */
int sq_writer_open(struct sq_image *img, int fd, uint64_t offset, const struct sq_opts *asked,
                   struct sifu_err *err);
/* writer.c: the data of the regular file IN (entry E) from READ, through the
 * block processor; E's size must match what READ delivers. */
int sq_writer_file(struct sq_image *img, struct sq_inode *in, const struct sq_entry *e,
                   sq_read_fn read, void *ctx, struct sifu_err *err);
/* writer.c: release what sq_writer_open made (finishing an abandoned image
 * first); safe on a partly opened one. */
void sq_writer_close(struct sq_image *img);
