/* SPDX-License-Identifier: BSD-3-Clause */
/* The in-memory tree and the SquashFS writer.  See squash.h for the model. */
#include "squash.h"

#include <limits.h>
#include <sys/stat.h>

#include <sqfs/block.h>
#include <sqfs/block_processor.h>
#include <sqfs/block_writer.h>
#include <sqfs/compressor.h>
#include <sqfs/dir_writer.h>
#include <sqfs/error.h>
#include <sqfs/frag_table.h>
#include <sqfs/id_table.h>
#include <sqfs/inode.h>
#include <sqfs/io.h>
#include <sqfs/meta_writer.h>
#include <sqfs/super.h>
#include <sqfs/xattr_writer.h>

#define SQ_PATH_MAX 4096
#define SQ_NAME_MAX 255
#define SQ_LINK_MAX 4096
#define NO_LAYER    INT_MAX

/* ------------------------------------------------------------------ output */

/* The sqfs_file_t that libsquashfs writes through: FD at a fixed offset. */
struct sq_out {
	sqfs_file_t base;
	int fd;
	uint64_t offset, size;
	int error; /* first errno seen, so a full disk is reported as such */
};

static void out_destroy(sqfs_object_t *o)
{
	free(o);
}

static int out_write_at(sqfs_file_t *f, sqfs_u64 off, const void *buf, size_t len)
{
	struct sq_out *o = (struct sq_out *)f;
	const char *p = buf;
	uint64_t end = off + len;
	while (len > 0) {
		ssize_t n = pwrite(o->fd, p, len, (off_t)(o->offset + off));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!o->error)
				o->error = n < 0 ? errno : ENOSPC;
			return SQFS_ERROR_IO;
		}
		p += n, off += (uint64_t)n, len -= (size_t)n;
	}
	if (end > o->size)
		o->size = end;
	return 0;
}

static int out_read_at(sqfs_file_t *f, sqfs_u64 off, void *buf, size_t len)
{
	struct sq_out *o = (struct sq_out *)f;
	char *p = buf;
	if (off + len > o->size)
		return SQFS_ERROR_OUT_OF_BOUNDS;
	while (len > 0) {
		ssize_t n = pread(o->fd, p, len, (off_t)(o->offset + off));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!o->error)
				o->error = n < 0 ? errno : EIO;
			return SQFS_ERROR_IO;
		}
		p += n, off += (uint64_t)n, len -= (size_t)n;
	}
	return 0;
}

static sqfs_u64 out_get_size(const sqfs_file_t *f)
{
	return ((const struct sq_out *)f)->size;
}

static int out_truncate(sqfs_file_t *f, sqfs_u64 size)
{
	struct sq_out *o = (struct sq_out *)f;
	if (ftruncate(o->fd, (off_t)(o->offset + size)) < 0) {
		if (!o->error)
			o->error = errno;
		return SQFS_ERROR_IO;
	}
	o->size = size;
	return 0;
}

/* -------------------------------------------------------------------- tree */

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
 * "hard links across layers" below. */
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

static uint64_t hash_key(const struct sq_node *parent, const char *name)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)(uintptr_t)parent;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return h ^ (h >> 29);
}

static void hash_insert(struct sq_image *img, struct sq_node *n);

static void hash_grow(struct sq_image *img)
{
	struct sq_node **old = img->hash;
	size_t oldcap = img->hash_cap;
	img->hash_cap = oldcap ? oldcap * 2 : 4096;
	img->hash = sifu_xcalloc(img->hash_cap, sizeof(*img->hash));
	img->hash_used = 0;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i] && !old[i]->dead)
			hash_insert(img, old[i]);
	free(old);
}

static void hash_insert(struct sq_image *img, struct sq_node *n)
{
	if ((img->hash_used + 1) * 2 > img->hash_cap)
		hash_grow(img);
	size_t mask = img->hash_cap - 1;
	for (size_t i = hash_key(n->parent, n->name) & mask;; i = (i + 1) & mask) {
		if (!img->hash[i]) {
			img->hash[i] = n;
			img->hash_used++;
			return;
		}
	}
}

/* Live child NAME of PARENT, or NULL.  Dead nodes stay in the table until the
 * next growth; they are never freed before the image, so addresses are never
 * reused and stale keys cannot match. */
static struct sq_node *lookup(struct sq_image *img, struct sq_node *parent, const char *name)
{
	if (!img->hash_cap)
		return NULL;
	size_t mask = img->hash_cap - 1;
	for (size_t i = hash_key(parent, name) & mask; img->hash[i]; i = (i + 1) & mask) {
		struct sq_node *n = img->hash[i];
		if (!n->dead && n->parent == parent && strcmp(n->name, name) == 0)
			return n;
	}
	return NULL;
}

static struct sq_inode *inode_new(struct sq_image *img, enum sq_type type)
{
	struct sq_inode *in = sifu_xcalloc(1, sizeof(*in));
	in->type = type;
	if (img->ninodes == img->cap_inodes) {
		img->cap_inodes = img->cap_inodes ? img->cap_inodes * 2 : 1024;
		img->inodes = sifu_xrealloc(img->inodes, img->cap_inodes * sizeof(*img->inodes));
	}
	img->inodes[img->ninodes++] = in;
	return in;
}

static struct sq_node *node_new(struct sq_image *img, struct sq_node *parent, const char *name,
                                struct sq_inode *in)
{
	struct sq_node *n = sifu_xcalloc(1, sizeof(*n));
	n->parent = parent;
	n->name = sifu_xstrdup(name);
	n->ino = in;
	n->layer = img->layer;
	n->opaque = NO_LAYER;
	n->seq = ++img->seq;
	n->all_next = img->all;
	img->all = n;
	if (in)
		in->nlink++;
	if (parent) {
		n->next = parent->first;
		parent->first = n;
		hash_insert(img, n);
	}
	return n;
}

static void node_kill(struct sq_node *n)
{
	if (n->dead)
		return;
	n->dead = true;
	if (n->ino)
		n->ino->nlink--;
	for (struct sq_node *c = n->first; c; c = c->next)
		node_kill(c);
	struct sq_node **pp = &n->parent->first;
	while (*pp && *pp != n)
		pp = &(*pp)->next;
	if (*pp)
		*pp = n->next;
}

static struct sq_node *implicit_dir(struct sq_image *img, struct sq_node *parent, const char *name)
{
	struct sq_inode *in = inode_new(img, SQ_DIR);
	in->mode = 0755;
	struct sq_node *n = node_new(img, parent, name, in);
	n->implicit = true;
	return n;
}

static bool is_dir(const struct sq_node *n)
{
	return n->ino && n->ino->type == SQ_DIR;
}

/* Step into component NAME below DIR for an entry of the current layer,
 * making directories as needed.  Returns NULL when a layer above hides the
 * path (the entry is to be skipped). */
static struct sq_node *descend(struct sq_image *img, struct sq_node *dir, const char *name)
{
	int L = img->layer;
	if (L > dir->opaque)
		return NULL;
	struct sq_node *n = lookup(img, dir, name);
	if (!n)
		return implicit_dir(img, dir, name);
	if (is_dir(n))
		return n;
	/* a whiteout or a non-directory: hides everything of lower layers */
	if (L > n->layer)
		return NULL;
	/* the same layer puts something below its own file: the tar way is to
	 * replace it; what lower layers had there stays hidden */
	node_kill(n);
	struct sq_node *d = implicit_dir(img, dir, name);
	d->opaque = L;
	return d;
}

/* Split PATH into a parent directory node (created as needed) and a last
 * component.  Returns 1 and sets *PARENT / LAST, 0 for a hidden path, 2 for
 * the root itself, or < 0 for an entry that leaves the tree. */
static int walk(struct sq_image *img, const char *path, struct sq_node **parent, char *last,
                struct sifu_err *err)
{
	size_t plen = strlen(path);
	if (plen >= SQ_PATH_MAX)
		return sifu_err_set(err, SIFU_E_CORRUPT, 0, "entry name longer than %d bytes",
		                    SQ_PATH_MAX);
	char buf[SQ_PATH_MAX];
	memcpy(buf, path, plen + 1);
	const char *comps[SQ_PATH_MAX / 2 + 1];
	size_t nc = 0;
	for (char *save = NULL, *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (strcmp(c, ".") == 0)
			continue;
		if (strcmp(c, "..") == 0) {
			sifu_err_set(err, SIFU_E_CORRUPT, 0,
			             "entry \"%s\" climbs out of the root with \"..\"", path);
			sifu_err_hint(err,
			              "the layer is malformed or malicious; nothing was written");
			return -EINVAL;
		}
		if (strlen(c) > SQ_NAME_MAX)
			return sifu_err_set(err, SIFU_E_CORRUPT, 0,
			                    "entry \"%s\": a name longer than %d bytes", path,
			                    SQ_NAME_MAX);
		comps[nc++] = c;
	}
	*parent = NULL;
	if (nc == 0)
		return 2; /* the root itself */
	struct sq_node *d = img->root;
	for (size_t i = 0; i + 1 < nc; i++) {
		d = descend(img, d, comps[i]);
		if (!d)
			return 0;
	}
	if (img->layer > d->opaque)
		return 0;
	memcpy(last, comps[nc - 1], strlen(comps[nc - 1]) + 1);
	*parent = d;
	return 1;
}

static uint32_t clamp_time(int64_t t)
{
	return t < 0 ? 0 : t > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

static void inode_meta(struct sq_inode *in, const struct sq_entry *e)
{
	in->mode = e->mode & 07777;
	in->uid = e->uid;
	in->gid = e->gid;
	in->mtime = clamp_time(e->mtime);
}

static void inode_xattrs(struct sq_inode *in, const struct sq_entry *e)
{
	size_t len = 0;
	for (size_t i = 0; i < e->nxattrs; i++)
		len += strlen(e->xattrs[i].key) + 1 + sizeof(uint32_t) + e->xattrs[i].size;
	free(in->xattr_buf);
	in->xattr_buf = NULL;
	in->xattr_len = in->nxattrs = 0;
	if (!e->nxattrs)
		return;
	char *p = in->xattr_buf = sifu_xmalloc(len);
	for (size_t i = 0; i < e->nxattrs; i++) {
		size_t kl = strlen(e->xattrs[i].key) + 1;
		uint32_t vs = (uint32_t)e->xattrs[i].size;
		memcpy(p, e->xattrs[i].key, kl), p += kl;
		memcpy(p, &vs, sizeof(vs)), p += sizeof(vs);
		memcpy(p, e->xattrs[i].value, vs), p += vs;
	}
	in->xattr_len = len;
	in->nxattrs = e->nxattrs;
}

static int sqfs_fail(struct sq_image *img, int ret, struct sifu_err *err, const char *what)
{
	img->failed = true;
	if (img->out->error) {
		errno = img->out->error;
		return sifu_err_sys(err, "squashfs: %s", what);
	}
	return sifu_err_set(err, SIFU_E_SYS, ret == SQFS_ERROR_ALLOC ? ENOMEM : EIO,
	                    "squashfs: %s (libsquashfs error %d)", what, ret);
}

static int stream_data(struct sq_image *img, struct sq_inode *in, const struct sq_entry *e,
                       sq_read_fn read, void *ctx, struct sifu_err *err)
{
	int r = sqfs_block_processor_begin_file(img->proc, &in->file, NULL, 0);
	if (r)
		return sqfs_fail(img, r, err, "starting a file");
	static __thread char buf[256 * 1024];
	uint64_t total = 0;
	for (;;) {
		ssize_t n = read ? read(ctx, buf, sizeof(buf), err) : 0;
		if (n < 0) {
			sqfs_block_processor_end_file(img->proc);
			img->failed = true;
			return (int)n;
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		r = sqfs_block_processor_append(img->proc, buf, (size_t)n);
		if (r)
			return sqfs_fail(img, r, err, "compressing file data");
	}
	r = sqfs_block_processor_end_file(img->proc);
	if (r)
		return sqfs_fail(img, r, err, "finishing a file");
	if (total != e->size) {
		img->failed = true;
		return sifu_err_set(
		    err, SIFU_E_CORRUPT, 0, "\"%s\": %llu bytes of data where the header says %llu",
		    e->path, (unsigned long long)total, (unsigned long long)e->size);
	}
	img->stats.files++;
	img->stats.bytes_in += total;
	return 0;
}

static bool is_whiteout(const char *name)
{
	return strncmp(name, ".wh.", 4) == 0;
}

static int add_whiteout(struct sq_image *img, struct sq_node *dir, const char *name)
{
	int L = img->layer;
	if (strcmp(name, ".wh..wh..opq") == 0) {
		if (dir->opaque > L)
			dir->opaque = L;
		return 0;
	}
	const char *victim = name + 4;
	if (!*victim || strcmp(victim, ".") == 0 || strcmp(victim, "..") == 0)
		return 0;
	struct sq_node *n = lookup(img, dir, victim);
	if (!n) {
		node_new(img, dir, victim, NULL); /* marker: hides lower layers */
		return 0;
	}
	/* something above or in this layer already defines NAME: a whiteout only
	 * ever removes what lower layers have */
	if (is_dir(n) && n->opaque > L)
		n->opaque = L;
	return 0;
}

/* An entry of this layer lands on an existing node N.  Returns true if the
 * entry is to replace N (N is then killed), false to ignore the entry. */
static bool shadowed(struct sq_image *img, struct sq_node *n, const struct sq_entry *e)
{
	int L = img->layer;
	if (is_dir(n) && e->type == SQ_DIR) {
		if (n->implicit || n->layer == L) {
			inode_meta(n->ino, e);
			inode_xattrs(n->ino, e);
			n->implicit = false;
		}
		return false;
	}
	if (L > n->layer)
		return false; /* an upper layer decided this path */
	return true;          /* duplicate in the same layer: the later one wins */
}

/* Look PATH up without creating or changing anything (hard link targets).
 * *SHADOWED says an upper layer hides the path: its file in this layer was
 * skipped, so a link to it has to be served later (see sq_image_add). */
static struct sq_node *resolve(struct sq_image *img, const char *path, bool *shadowed)
{
	int L = img->layer;
	*shadowed = false;
	size_t plen = strlen(path);
	if (plen >= SQ_PATH_MAX)
		return NULL;
	char buf[SQ_PATH_MAX];
	memcpy(buf, path, plen + 1);
	struct sq_node *n = img->root;
	for (char *save = NULL, *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (strcmp(c, ".") == 0)
			continue;
		if (strcmp(c, "..") == 0)
			return NULL;
		if (!is_dir(n) || L > n->opaque) {
			*shadowed = n->layer < L || L > n->opaque;
			return NULL;
		}
		n = lookup(img, n, c);
		if (!n)
			return NULL;
	}
	if (n->layer < L && (!n->ino || n->ino->type != SQ_DIR))
		*shadowed = true;
	return n;
}

/* ------------------------------------------------ hard links across layers */
/* A hard link of layer L whose target an upper layer replaced or deleted
 * stays visible, but the target's data was skipped (a hidden file is never
 * read).  Such a link is DEFERRED: the caller reads the layer a second time
 * and hands each regular file to sq_image_add_deferred, which gives the
 * file's data to the first link that wants it and the same inode to the
 * others.  A link to a hidden or deferred link is resolved to that link's
 * own target when it is added (an ALIAS), so chains cost nothing later.
 * All of it is one hash table on the normalised path: O(1) per entry in both
 * passes (a60965e compared every file of the second pass with every deferred
 * link: 160k links took 81 s).  The table lives for one layer. */

/* "./a//b/" -> "a/b" into OUT (SQ_PATH_MAX bytes).  A ".." is refused: an
 * archive entry never leaves the tree, whatever lies above it. */
static int norm_path(const char *in, char *out)
{
	size_t o = 0;
	for (const char *p = in; *p;) {
		while (*p == '/')
			p++;
		const char *c = p;
		while (*p && *p != '/')
			p++;
		size_t len = (size_t)(p - c);
		if (len == 0 || (len == 1 && c[0] == '.'))
			continue;
		if (len == 2 && c[0] == '.' && c[1] == '.')
			return -EINVAL;
		if (o + !!o + len >= SQ_PATH_MAX)
			return -ENAMETOOLONG;
		if (o)
			out[o++] = '/';
		memcpy(out + o, c, len);
		o += len;
	}
	out[o] = 0;
	return 0;
}

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return h ^ (h >> 29);
}

static void ltab_place(struct sq_image *img, struct sq_lname *ln)
{
	size_t mask = img->ltab_cap - 1;
	size_t i = str_hash(ln->path) & mask;
	while (img->ltab[i])
		i = (i + 1) & mask;
	img->ltab[i] = ln;
}

/* The entry for normalised KEY; made when CREATE.  Each slot looked at counts
 * in stats.link_probes, which the tests use to prove the cost is linear. */
static struct sq_lname *ltab_find(struct sq_image *img, const char *key, bool create)
{
	if (img->ltab_cap) {
		size_t mask = img->ltab_cap - 1;
		for (size_t i = str_hash(key) & mask; img->ltab[i]; i = (i + 1) & mask) {
			img->stats.link_probes++;
			if (strcmp(img->ltab[i]->path, key) == 0)
				return img->ltab[i];
		}
	}
	if (!create)
		return NULL;
	if ((img->ltab_used + 1) * 2 > img->ltab_cap) {
		struct sq_lname **old = img->ltab;
		size_t oldcap = img->ltab_cap;
		img->ltab_cap = oldcap ? oldcap * 2 : 1024;
		img->ltab = sifu_xcalloc(img->ltab_cap, sizeof(*img->ltab));
		for (size_t i = 0; i < oldcap; i++)
			if (old[i])
				ltab_place(img, old[i]);
		free(old);
	}
	struct sq_lname *ln = sifu_xcalloc(1, sizeof(*ln));
	ln->path = sifu_xstrdup(key);
	ln->tail = &ln->first;
	ltab_place(img, ln);
	img->ltab_used++;
	return ln;
}

static void ltab_clear(struct sq_image *img)
{
	for (size_t i = 0; i < img->ltab_cap; i++) {
		struct sq_lname *ln = img->ltab[i];
		if (!ln)
			continue;
		for (struct sq_dlink *l = ln->first, *next; l; l = next) {
			next = l->next;
			free(l->path);
			free(l);
		}
		free(ln->path);
		free(ln);
	}
	free(img->ltab);
	img->ltab = NULL;
	img->ltab_cap = img->ltab_used = img->naliases = img->ndeferred = 0;
}

/* The link named NAME (normalised) that was not put in the tree now stands
 * for TARGET: a link to NAME later in the layer means TARGET. */
static void link_alias(struct sq_image *img, const char *name, const char *target)
{
	struct sq_lname *t = ltab_find(img, target, true);
	struct sq_lname *n = ltab_find(img, name, true);
	if (!n->alias)
		img->naliases++;
	n->alias = t;
}

/* An entry of this layer named PATH replaces whatever link had that name
 * before it (tar's rule: the last entry for a path wins). */
static void link_forget(struct sq_image *img, const char *path)
{
	char key[SQ_PATH_MAX];
	if (norm_path(path, key) < 0)
		return;
	struct sq_lname *n = ltab_find(img, key, false);
	if (n && n->alias) {
		n->alias = NULL;
		img->naliases--;
	}
}

static int link_defer(struct sq_image *img, const char *name, const char *target,
                      struct sifu_err *err)
{
	char key[SQ_PATH_MAX];
	int r = norm_path(name, key);
	if (r < 0)
		return sifu_err_set(err, SIFU_E_CORRUPT, -r, "hard link \"%s\": a bad name", name);
	struct sq_lname *t = ltab_find(img, target, true);
	struct sq_dlink *l = sifu_xcalloc(1, sizeof(*l));
	l->path = sifu_xstrdup(key);
	l->seq = img->seq;
	*t->tail = l;
	t->tail = &l->next;
	img->ndeferred++;
	link_alias(img, key, target);
	return SQ_DEFERRED;
}

/* A later entry of this layer at or above the deferred link's path replaced
 * it.  Nodes that were there before the link was deferred were killed by it
 * (sq_image_add), so a live node of this layer made after it, anywhere on
 * the way down, is such an entry. */
static bool link_overridden(struct sq_image *img, const struct sq_dlink *l)
{
	char buf[SQ_PATH_MAX];
	memcpy(buf, l->path, strlen(l->path) + 1);
	struct sq_node *n = img->root;
	for (char *save = NULL, *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		n = lookup(img, n, c);
		if (!n)
			return false;
		if (n->layer == img->layer && n->seq > l->seq)
			return true;
	}
	return false;
}

/* TARGET is normalised; SHOWN is what the archive said (for messages). */
static int add_hardlink(struct sq_image *img, struct sq_node *parent, const char *name,
                        const struct sq_entry *e, const char *target, const char *shown,
                        struct sifu_err *err)
{
	bool shadowed;
	struct sq_node *t = resolve(img, target, &shadowed);
	if (shadowed)
		return link_defer(img, e->path, target, err);
	if (!t || !t->ino || t->ino->type == SQ_DIR || t->layer != img->layer)
		return sifu_err_set(
		    err, SIFU_E_UNSUPPORTED, 0,
		    "hard link \"%s\" points to \"%s\", which is not a file earlier "
		    "in the same layer",
		    e->path, shown);
	node_new(img, parent, name, t->ino);
	return 0;
}

/* A hard link's target, normalised into OUT, through an alias when the
 * target is itself a link that is not in the tree.  *SHOWN: for messages. */
static int link_target(struct sq_image *img, const struct sq_entry *e, char *out,
                       const char **shown, struct sifu_err *err)
{
	const char *t = e->target ? e->target : "";
	*shown = t;
	int r = norm_path(t, out);
	if (r == -EINVAL) {
		sifu_err_set(err, SIFU_E_CORRUPT, 0,
		             "hard link \"%s\" points to \"%s\", which climbs out of the root "
		             "with \"..\"",
		             e->path, t);
		sifu_err_hint(err, "the layer is malformed or malicious; nothing was written");
		return -EINVAL;
	}
	if (r < 0 || !*out)
		return sifu_err_set(err, SIFU_E_CORRUPT, 0,
		                    "hard link \"%s\" has an empty or over-long target", e->path);
	if (img->naliases) {
		struct sq_lname *n = ltab_find(img, out, false);
		if (n && n->alias) {
			memcpy(out, n->alias->path, strlen(n->alias->path) + 1);
			*shown = n->alias->path;
		}
	}
	return 0;
}

int sq_image_add_deferred(struct sq_image *img, const struct sq_entry *e, sq_read_fn read,
                          void *ctx, struct sifu_err *err)
{
	char key[SQ_PATH_MAX];
	if (e->type == SQ_DIR || e->type == SQ_HARDLINK || !img->ndeferred ||
	    norm_path(e->path, key) < 0)
		return 0;
	struct sq_lname *t = ltab_find(img, key, false);
	if (!t || !t->first || t->served)
		return 0; /* the layer's first entry of that name serves them all */
	t->served = true;
	struct sq_inode *in = NULL;
	for (struct sq_dlink *l = t->first; l; l = l->next) {
		img->ndeferred--;
		if (link_overridden(img, l))
			continue;
		struct sq_node *parent;
		char last[SQ_NAME_MAX + 1];
		int r = walk(img, l->path, &parent, last, err);
		if (r < 0)
			return r;
		if (r != 1)
			continue; /* it was visible when deferred; nothing of this layer hides */
		if (in) {
			img->stats.entries++;
			node_new(img, parent, last, in);
			continue;
		}
		/* the first link is the file itself, under the link's name */
		struct sq_entry le = *e;
		le.path = l->path;
		if ((r = sq_image_add(img, &le, read, ctx, NULL, err)) < 0)
			return r;
		struct sq_node *n = lookup(img, parent, last);
		in = n ? n->ino : NULL;
	}
	return 0;
}

size_t sq_image_deferred(const struct sq_image *img)
{
	return img->ndeferred;
}

int sq_image_links_done(struct sq_image *img, struct sifu_err *err)
{
	int r = 0;
	for (size_t i = 0; i < img->ltab_cap && r == 0; i++) {
		struct sq_lname *t = img->ltab[i];
		if (!t || t->served)
			continue;
		for (struct sq_dlink *l = t->first; l && r == 0; l = l->next)
			if (!link_overridden(img, l))
				r = sifu_err_set(
				    err, SIFU_E_UNSUPPORTED, 0,
				    "hard link \"%s\" points to \"%s\", which is not a "
				    "file of the same layer",
				    l->path, t->path);
	}
	ltab_clear(img);
	return r;
}

/* E is hidden by an upper layer.  A hidden hard link still names an inode
 * that later links of the layer may point to through it. */
static int hidden(struct sq_image *img, const struct sq_entry *e, const char *target)
{
	img->stats.hidden++;
	char key[SQ_PATH_MAX];
	if (e->type == SQ_HARDLINK && norm_path(e->path, key) == 0)
		link_alias(img, key, target);
	return 0;
}

int sq_image_add(struct sq_image *img, const struct sq_entry *e, sq_read_fn read, void *ctx,
                 bool *used, struct sifu_err *err)
{
	if (used)
		*used = false;
	if (img->failed)
		return sifu_err_set(err, SIFU_E_SYS, EIO, "squashfs: the image already failed");
	img->stats.entries++;
	char target[SQ_PATH_MAX];
	const char *shown = NULL;
	if (e->type == SQ_HARDLINK) {
		int r = link_target(img, e, target, &shown, err);
		if (r < 0)
			return r;
	}
	if (img->naliases)
		link_forget(img, e->path);
	struct sq_node *parent;
	char last[SQ_NAME_MAX + 1];
	int r = walk(img, e->path, &parent, last, err);
	if (r < 0)
		return r;
	if (r == 2) {
		/* the root's own entry ("./"): the uppermost layer that has one wins */
		if (e->type == SQ_DIR && img->root->implicit) {
			inode_meta(img->root->ino, e);
			inode_xattrs(img->root->ino, e);
			img->root->implicit = false;
		}
		return 0;
	}
	if (r == 0)
		return hidden(img, e, target);
	if (is_whiteout(last))
		return add_whiteout(img, parent, last);

	struct sq_node *n = lookup(img, parent, last);
	if (n) {
		if (!n->ino) { /* a whiteout marker */
			if (img->layer > n->layer)
				return hidden(img, e, target);
		} else if (!shadowed(img, n, e)) {
			if (is_dir(n) && e->type == SQ_DIR)
				return 0;
			return hidden(img, e, target);
		}
		/* replaced within one layer (or over this layer's own whiteout): what
		 * lower layers had below it stays hidden */
		node_kill(n);
	}
	if (e->type == SQ_HARDLINK)
		return add_hardlink(img, parent, last, e, target, shown, err);

	struct sq_inode *in = inode_new(img, e->type);
	inode_meta(in, e);
	inode_xattrs(in, e);
	struct sq_node *nn = node_new(img, parent, last, in);
	if (n && e->type == SQ_DIR)
		nn->opaque = img->layer;
	switch (e->type) {
	case SQ_SYMLINK:
		if (!e->target || !*e->target || strlen(e->target) > SQ_LINK_MAX)
			return sifu_err_set(err, SIFU_E_CORRUPT, 0,
			                    "symbolic link \"%s\" has an empty or over-long target",
			                    e->path);
		in->target = sifu_xstrdup(e->target);
		break;
	case SQ_CHR:
	case SQ_BLK:
		/* the kernel's new_encode_dev, which squashfs stores */
		in->devno = (e->rdev_minor & 0xff) | ((e->rdev_major & 0xfff) << 8) |
		            ((e->rdev_minor & ~0xffu) << 12);
		break;
	case SQ_REG:
		if (used)
			*used = true;
		return stream_data(img, in, e, read, ctx, err);
	case SQ_DIR:
	case SQ_FIFO:
	case SQ_SOCK: break;
	default:
		return sifu_err_set(err, SIFU_E_UNSUPPORTED, 0, "\"%s\": unknown entry type",
		                    e->path);
	}
	return 0;
}

struct buf_reader {
	const char *p;
	size_t left;
};

static ssize_t buf_read(void *ctx, void *buf, size_t len, struct sifu_err *err)
{
	struct buf_reader *b = ctx;
	size_t n = len < b->left ? len : b->left;
	memcpy(buf, b->p, n);
	b->p += n, b->left -= n;
	return (ssize_t)n;
}

int sq_image_add_buffer(struct sq_image *img, const char *path, uint32_t mode, const void *data,
                        size_t len, struct sifu_err *err)
{
	struct sq_entry e = {
	    .path = path, .type = SQ_REG, .mode = mode, .size = len, .mtime = img->opts.mtime};
	struct buf_reader b = {data, len};
	return sq_image_add(img, &e, buf_read, &b, NULL, err);
}

void sq_image_next_layer(struct sq_image *img)
{
	/* deferred links the caller never served: the image would lack them */
	if (img->ndeferred)
		img->failed = true;
	ltab_clear(img);
	img->layer++;
}

void sq_image_stats(const struct sq_image *img, struct sq_stats *st)
{
	*st = img->stats;
}

/* ----------------------------------------------------------------- options */

int sq_parse_compression(const char *spec, struct sq_opts *opts, struct sifu_err *err)
{
	static const struct {
		const char *name;
		int id, lo, hi;
	} algos[] = {
	    {"gzip", SQFS_COMP_GZIP, 1, 9},
	    {"zstd", SQFS_COMP_ZSTD, 1, 22},
	    {"xz", SQFS_COMP_XZ, 0, 0},
	    {"lz4", SQFS_COMP_LZ4, 0, 0},
	};
	const char *colon = strchr(spec, ':');
	size_t nlen = colon ? (size_t)(colon - spec) : strlen(spec);
	for (size_t i = 0; i < ARRAY_SIZE(algos); i++) {
		if (strlen(algos[i].name) != nlen || strncmp(spec, algos[i].name, nlen) != 0)
			continue;
		opts->compressor = algos[i].id;
		opts->level = 0;
		if (!colon)
			return 0;
		char *end;
		errno = 0;
		long lvl = strtol(colon + 1, &end, 10);
		if (!algos[i].hi || errno || *end || end == colon + 1 || lvl < algos[i].lo ||
		    lvl > algos[i].hi) {
			sifu_err_set(err, SIFU_E_USAGE, 0, "bad compression level in \"%s\"", spec);
			if (algos[i].hi)
				sifu_err_hint(err, "%s takes a level from %d to %d", algos[i].name,
				              algos[i].lo, algos[i].hi);
			else
				sifu_err_hint(err, "%s takes no level", algos[i].name);
			return -EINVAL;
		}
		opts->level = (int)lvl;
		return 0;
	}
	sifu_err_set(err, SIFU_E_USAGE, 0, "unknown compression \"%.*s\"", (int)nlen, spec);
	sifu_err_hint(err, "use gzip (the default, every runtime reads it), zstd, xz or lz4");
	return -EINVAL;
}

/* ------------------------------------------------------------------ create */

int sq_image_create(int fd, uint64_t offset, const struct sq_opts *opts, struct sq_image **out,
                    struct sifu_err *err)
{
	struct sq_image *img = sifu_xcalloc(1, sizeof(*img));
	img->opts = *opts;
	if (!img->opts.compressor)
		img->opts.compressor = SQFS_COMP_GZIP;
	if (!img->opts.block_size)
		img->opts.block_size = SQFS_DEFAULT_BLOCK_SIZE;
	if (!img->opts.workers) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		img->opts.workers = n > 0 ? (unsigned)n : 1;
	}
	img->out = sifu_xcalloc(1, sizeof(*img->out));
	img->out->base.base.destroy = out_destroy;
	img->out->base.read_at = out_read_at;
	img->out->base.write_at = out_write_at;
	img->out->base.get_size = out_get_size;
	img->out->base.truncate = out_truncate;
	img->out->fd = fd;
	img->out->offset = offset;
	img->root = node_new(img, NULL, "", inode_new(img, SQ_DIR));
	img->root->ino->mode = 0755;
	img->root->implicit = true;

	sqfs_compressor_config_t cfg;
	int r = sqfs_compressor_config_init(&cfg, (SQFS_COMPRESSOR)img->opts.compressor,
	                                    img->opts.block_size, 0);
	/* gzip: level 6 unless asked otherwise.  On a Debian+numpy image level 9
	 * (zlib's and mksquashfs's default) took several times longer for an
	 * image 0.5% smaller (docs/benchmarks.md). */
	if (r == 0 && !img->opts.level && img->opts.compressor == SQFS_COMP_GZIP)
		cfg.level = 6;
	if (r == 0 && img->opts.level)
		cfg.level = (sqfs_u32)img->opts.level;
	if (r == 0)
		r = sqfs_compressor_create(&cfg, &img->cmp);
	if (r) {
		sq_image_free(img);
		return sifu_err_set(
		    err, SIFU_E_UNSUPPORTED, 0,
		    "squashfs: this libsquashfs cannot compress with %s",
		    sqfs_compressor_name_from_id((SQFS_COMPRESSOR)opts->compressor));
	}
	sqfs_super_init(&img->super, img->opts.block_size, img->opts.mtime,
	                (SQFS_COMPRESSOR)img->opts.compressor);
	sqfs_file_t *f = &img->out->base;
	r = sqfs_super_write(&img->super, f);
	if (r == 0) {
		int w = img->cmp->write_options(img->cmp, f);
		if (w < 0)
			r = w;
		else if (w > 0)
			img->super.flags |= SQFS_FLAG_COMPRESSOR_OPTIONS;
	}
	if (r) {
		int e = sqfs_fail(img, r, err, "writing the superblock");
		sq_image_free(img);
		return e;
	}
	img->bwr = sqfs_block_writer_create(f, 4096, 0);
	img->frag = sqfs_frag_table_create(0);
	sqfs_block_processor_desc_t desc = {
	    .size = sizeof(desc),
	    .max_block_size = img->opts.block_size,
	    .num_workers = img->opts.workers,
	    .max_backlog = 10 * img->opts.workers,
	    .cmp = img->cmp,
	    .wr = img->bwr,
	    .tbl = img->frag,
	    .file = f,
	};
	if (!img->bwr || !img->frag ||
	    (r = sqfs_block_processor_create_ex(&desc, &img->proc)) != 0) {
		int e =
		    sqfs_fail(img, r ? r : SQFS_ERROR_ALLOC, err, "starting the block processor");
		sq_image_free(img);
		return e;
	}
	*out = img;
	return 0;
}

/* ------------------------------------------------------------------ finish */

struct ser {
	struct sq_image *img;
	sqfs_meta_writer_t *im, *dm;
	sqfs_dir_writer_t *dw;
	sqfs_id_table_t *ids;
	sqfs_xattr_writer_t *xw;
	uint32_t next_ino;
};

static int cmp_names(const void *a, const void *b)
{
	return strcmp((*(struct sq_node *const *)a)->name, (*(struct sq_node *const *)b)->name);
}

/* Live children of DIR, sorted by name as squashfs requires. */
static struct sq_node **children(struct sq_node *dir, size_t *count)
{
	size_t n = 0;
	for (struct sq_node *c = dir->first; c; c = c->next)
		if (!c->dead && c->ino)
			n++;
	struct sq_node **v = sifu_xcalloc(n + 1, sizeof(*v));
	n = 0;
	for (struct sq_node *c = dir->first; c; c = c->next)
		if (!c->dead && c->ino)
			v[n++] = c;
	qsort(v, n, sizeof(*v), cmp_names);
	*count = n;
	return v;
}

/* Inode numbers in the order directories list them; a hard-linked inode gets
 * the number of its first appearance. */
static void number(struct ser *s, struct sq_node *dir)
{
	size_t n;
	_cleanup_free_ struct sq_node **v = children(dir, &n);
	for (size_t i = 0; i < n; i++)
		if (!v[i]->ino->ino)
			v[i]->ino->ino = s->next_ino++;
	for (size_t i = 0; i < n; i++)
		if (is_dir(v[i]))
			number(s, v[i]);
}

static uint16_t type_bits(enum sq_type t)
{
	switch (t) {
	case SQ_DIR: return SQFS_INODE_MODE_DIR;
	case SQ_SYMLINK: return SQFS_INODE_MODE_LNK;
	case SQ_CHR: return SQFS_INODE_MODE_CHR;
	case SQ_BLK: return SQFS_INODE_MODE_BLK;
	case SQ_FIFO: return SQFS_INODE_MODE_FIFO;
	case SQ_SOCK: return SQFS_INODE_MODE_SOCK;
	default: return SQFS_INODE_MODE_REG;
	}
}

static int xattr_index(struct ser *s, struct sq_inode *in, uint32_t *idx)
{
	*idx = 0xFFFFFFFF;
	if (!in->nxattrs)
		return 0;
	int r = sqfs_xattr_writer_begin(s->xw, 0);
	const char *p = in->xattr_buf;
	for (size_t i = 0; r == 0 && i < in->nxattrs; i++) {
		const char *key = p;
		uint32_t vs;
		p += strlen(key) + 1;
		memcpy(&vs, p, sizeof(vs));
		p += sizeof(vs);
		int a = sqfs_xattr_writer_add(s->xw, key, p, vs);
		if (a == SQFS_ERROR_UNSUPPORTED)
			sifu_debug(
			    "squashfs: xattr \"%s\" has a prefix squashfs cannot store; dropped",
			    key);
		else
			r = a;
		p += vs;
	}
	if (r == 0)
		r = sqfs_xattr_writer_end(s->xw, idx);
	return r;
}

static int write_inode(struct ser *s, struct sq_inode *in, sqfs_inode_generic_t *gi,
                       uint32_t parent_ino)
{
	(void)parent_ino;
	sqfs_u16 uidx, gidx;
	uint32_t xidx;
	int r = sqfs_id_table_id_to_index(s->ids, in->uid, &uidx);
	if (!r)
		r = sqfs_id_table_id_to_index(s->ids, in->gid, &gidx);
	if (!r)
		r = xattr_index(s, in, &xidx);
	if (r)
		return r;
	gi->base.mode = (sqfs_u16)(type_bits(in->type) | (in->mode & 07777));
	gi->base.uid_idx = uidx;
	gi->base.gid_idx = gidx;
	gi->base.mod_time = in->mtime;
	gi->base.inode_number = in->ino;
	if (xidx != 0xFFFFFFFF && (r = sqfs_inode_set_xattr_index(gi, xidx)) != 0)
		return r;
	sqfs_u64 block;
	sqfs_u32 off;
	sqfs_meta_writer_get_position(s->im, &block, &off);
	in->ref = (block << 16) | off;
	in->written = true;
	return sqfs_meta_writer_write_inode(s->im, gi);
}

static sqfs_inode_generic_t *leaf_inode(struct sq_inode *in, int *err)
{
	size_t extra = in->type == SQ_SYMLINK ? strlen(in->target) : 0;
	sqfs_inode_generic_t *gi = sifu_xcalloc(1, sizeof(*gi) + extra);
	*err = 0;
	switch (in->type) {
	case SQ_SYMLINK:
		gi->base.type = SQFS_INODE_SLINK;
		gi->base.mode = SQFS_INODE_MODE_LNK;
		gi->data.slink.nlink = in->nlink;
		gi->data.slink.target_size = (sqfs_u32)extra;
		gi->payload_bytes_available = gi->payload_bytes_used = (sqfs_u32)extra;
		memcpy(gi->extra, in->target, extra);
		break;
	case SQ_CHR:
	case SQ_BLK:
		gi->base.type = in->type == SQ_CHR ? SQFS_INODE_CDEV : SQFS_INODE_BDEV;
		gi->data.dev.nlink = in->nlink;
		gi->data.dev.devno = in->devno;
		break;
	case SQ_FIFO:
	case SQ_SOCK:
		gi->base.type = in->type == SQ_FIFO ? SQFS_INODE_FIFO : SQFS_INODE_SOCKET;
		gi->data.ipc.nlink = in->nlink;
		break;
	default: *err = SQFS_ERROR_INTERNAL;
	}
	return gi;
}

static int write_non_dir(struct ser *s, struct sq_inode *in, uint32_t parent_ino)
{
	int r;
	if (in->type == SQ_REG) {
		sqfs_inode_generic_t *gi = in->file;
		if (in->nlink > 1 || in->nxattrs) {
			if ((r = sqfs_inode_make_extended(gi)) != 0)
				return r;
			gi->data.file_ext.nlink = in->nlink;
		}
		return write_inode(s, in, gi, parent_ino);
	}
	sqfs_inode_generic_t *gi = leaf_inode(in, &r);
	if (!r)
		r = write_inode(s, in, gi, parent_ino);
	free(gi);
	return r;
}

/* Post-order: children's inodes first, then this directory's listing, then
 * its inode (which must point at the listing). */
static int write_dir(struct ser *s, struct sq_node *dir, uint32_t parent_ino)
{
	size_t n;
	_cleanup_free_ struct sq_node **v = children(dir, &n);
	int r = 0;
	uint32_t subdirs = 0;
	for (size_t i = 0; i < n && !r; i++) {
		struct sq_inode *in = v[i]->ino;
		if (is_dir(v[i])) {
			subdirs++;
			r = write_dir(s, v[i], dir->ino->ino);
		} else if (!in->written) {
			r = write_non_dir(s, in, dir->ino->ino);
		}
	}
	if (!r)
		r = sqfs_dir_writer_begin(s->dw, 0);
	for (size_t i = 0; i < n && !r; i++) {
		struct sq_inode *in = v[i]->ino;
		r = sqfs_dir_writer_add_entry(s->dw, v[i]->name, in->ino, in->ref,
		                              (sqfs_u16)(type_bits(in->type) | (in->mode & 07777)));
	}
	if (!r)
		r = sqfs_dir_writer_end(s->dw);
	if (r)
		return r;
	uint32_t xidx;
	if ((r = xattr_index(s, dir->ino, &xidx)) != 0)
		return r;
	sqfs_inode_generic_t *gi =
	    sqfs_dir_writer_create_inode(s->dw, subdirs + 2, xidx, parent_ino);
	if (!gi)
		return SQFS_ERROR_ALLOC;
	struct sq_inode tmp = *dir->ino;
	tmp.nxattrs = 0; /* already attached by create_inode */
	r = write_inode(s, &tmp, gi, parent_ino);
	dir->ino->ref = tmp.ref;
	dir->ino->written = true;
	sqfs_free(gi);
	return r;
}

static int write_tables(struct sq_image *img, struct ser *s)
{
	sqfs_file_t *f = &img->out->base;
	sqfs_super_t *sb = &img->super;
	int r;
	s->next_ino = 2; /* the root is 1 */
	img->root->ino->ino = 1;
	number(s, img->root);
	sb->inode_count = s->next_ino - 1;
	sb->inode_table_start = f->get_size(f);
	if ((r = write_dir(s, img->root, s->next_ino)) != 0)
		return r;
	sb->root_inode_ref = img->root->ino->ref;
	if ((r = sqfs_meta_writer_flush(s->im)) != 0 || (r = sqfs_meta_writer_flush(s->dm)) != 0)
		return r;
	sb->directory_table_start = f->get_size(f);
	if ((r = sqfs_meta_write_write_to_file(s->dm)) != 0)
		return r;
	if ((r = sqfs_frag_table_write(img->frag, f, sb, img->cmp)) != 0)
		return r;
	if ((r = sqfs_id_table_write(s->ids, f, sb, img->cmp)) != 0)
		return r;
	if ((r = sqfs_xattr_writer_flush(s->xw, f, sb, img->cmp)) != 0)
		return r;
	sb->bytes_used = f->get_size(f);
	/* pad to 4 KiB as mksquashfs does, so loop devices can map every byte */
	uint64_t padded = (sb->bytes_used + 4095) & ~4095ull;
	if (padded > sb->bytes_used) {
		char zero[4096] = {0};
		if ((r = f->write_at(f, sb->bytes_used, zero, padded - sb->bytes_used)) != 0)
			return r;
	}
	return sqfs_super_write(sb, f);
}

int sq_image_finish(struct sq_image *img, uint64_t *size, struct sifu_err *err)
{
	if (img->failed)
		return sifu_err_set(err, SIFU_E_SYS, EIO, "squashfs: the image already failed");
	if (img->ndeferred) /* a caller that never ran the second pass */
		return sifu_err_set(err, SIFU_E_SYS, EINVAL,
		                    "squashfs: %zu hard links were never given their data",
		                    img->ndeferred);
	int r = sqfs_block_processor_finish(img->proc);
	img->finished = true;
	if (r)
		return sqfs_fail(img, r, err, "writing file data");
	sqfs_file_t *f = &img->out->base;
	struct ser s = {.img = img};
	s.im = sqfs_meta_writer_create(f, img->cmp, 0);
	s.dm = sqfs_meta_writer_create(f, img->cmp, SQFS_META_WRITER_KEEP_IN_MEMORY);
	s.dw = s.dm ? sqfs_dir_writer_create(s.dm, 0) : NULL;
	s.ids = sqfs_id_table_create(0);
	s.xw = sqfs_xattr_writer_create(0);
	if (!s.im || !s.dm || !s.dw || !s.ids || !s.xw)
		r = SQFS_ERROR_ALLOC;
	else
		r = write_tables(img, &s);
	sqfs_destroy(s.dw);
	sqfs_destroy(s.dm);
	sqfs_destroy(s.im);
	sqfs_destroy(s.ids);
	sqfs_destroy(s.xw);
	if (r)
		return sqfs_fail(img, r, err, "writing the inode and directory tables");
	*size = img->out->size;
	return 0;
}

void sq_image_free(struct sq_image *img)
{
	if (!img)
		return;
	/* libsquashfs 1.2 frees the pending fragment block only in finish, so an
	 * abandoned image is finished (into a file about to be deleted) first */
	if (img->proc && !img->finished)
		sqfs_block_processor_finish(img->proc);
	sqfs_destroy(img->proc);
	sqfs_destroy(img->bwr);
	sqfs_destroy(img->frag);
	sqfs_destroy(img->cmp);
	for (size_t i = 0; i < img->ninodes; i++) {
		struct sq_inode *in = img->inodes[i];
		free(in->target);
		free(in->xattr_buf);
		sqfs_free(in->file);
		free(in);
	}
	free(img->inodes);
	for (struct sq_node *n = img->all, *next; n; n = next) {
		next = n->all_next;
		free(n->name);
		free(n);
	}
	free(img->hash);
	ltab_clear(img);
	free(img->out);
	free(img);
}
