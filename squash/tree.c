/* SPDX-License-Identifier: BSD-3-Clause */
/* squash/tree.c: what goes into the image - the in-memory tree, layers
 * applied top-down with their whiteouts and opaque markers, and hard links
 * across layers (see squash.h for the model).  File data and the final
 * tables go to writer.c. */
#include "squash_priv.h"

#include <sqfs/predef.h>

/* FNV-1a of S from the start value H, folded: both tables' hash. */
static uint64_t fnv(uint64_t h, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return h ^ (h >> 29);
}

static uint64_t hash_key(const struct sq_node *parent, const char *name)
{
	return fnv(1469598103934665603ull ^ (uint64_t)(uintptr_t)parent, name);
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
	if (sq_is_dir(n))
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
static int walk_to_parent(struct sq_image *img, const char *path, struct sq_node **parent,
                          char *last, struct sifu_err *err)
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

static void inode_meta(const struct sq_image *img, struct sq_inode *in, const struct sq_entry *e)
{
	in->mode = e->mode & 07777;
	in->uid = e->uid;
	in->gid = e->gid;
	in->mtime = clamp_time(e->mtime);
	/* SOURCE_DATE_EPOCH: nothing is newer than it, as mksquashfs clamps */
	if (img->opts.clamp_mtime && in->mtime > img->opts.mtime)
		in->mtime = img->opts.mtime;
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
	if (sq_is_dir(n) && n->opaque > L)
		n->opaque = L;
	return 0;
}

/* An entry of this layer lands on an existing node N.  Returns true if the
 * entry is to replace N (N is then killed), false to ignore the entry. */
static bool shadowed(struct sq_image *img, struct sq_node *n, const struct sq_entry *e)
{
	int L = img->layer;
	if (sq_is_dir(n) && e->type == SQ_DIR) {
		if (n->implicit || n->layer == L) {
			inode_meta(img, n->ino, e);
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
		if (!sq_is_dir(n) || L > n->opaque) {
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
	return fnv(1469598103934665603ull, s);
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
			SIFU_FREE_MANY(l->path, l);
		}
		SIFU_FREE_MANY(ln->path, ln);
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
		int r = walk_to_parent(img, l->path, &parent, last, err);
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

/* The root's own entry ("./"): the uppermost layer that has one wins. */
static int add_root(struct sq_image *img, const struct sq_entry *e)
{
	if (e->type == SQ_DIR && img->root->implicit) {
		inode_meta(img, img->root->ino, e);
		inode_xattrs(img->root->ino, e);
		img->root->implicit = false;
	}
	return 0;
}

/* E lands on N, a node of its name already there: 1 when E replaces it (N
 * is killed; what lower layers had below it stays hidden), else 0 (E is
 * hidden, or an existing directory took its metadata). */
static int land_on(struct sq_image *img, struct sq_node *n, const struct sq_entry *e,
                   const char *target)
{
	if (!n->ino) { /* a whiteout marker */
		if (img->layer > n->layer)
			return hidden(img, e, target);
	} else if (!shadowed(img, n, e)) {
		if (sq_is_dir(n) && e->type == SQ_DIR)
			return 0;
		return hidden(img, e, target);
	}
	/* replaced within one layer (or over this layer's own whiteout) */
	node_kill(n);
	return 1;
}

/* What a symlink or a device node keeps besides its metadata. */
static int inode_special(struct sq_inode *in, const struct sq_entry *e, struct sifu_err *err)
{
	switch (e->type) {
	case SQ_SYMLINK:
		if (!e->target || !*e->target || strlen(e->target) > SQ_LINK_MAX)
			return sifu_err_set(err, SIFU_E_CORRUPT, 0,
			                    "symbolic link \"%s\" has an empty or over-long target",
			                    e->path);
		in->target = sifu_xstrdup(e->target);
		return 0;
	case SQ_CHR:
	case SQ_BLK:
		/* the kernel's new_encode_dev, which squashfs stores */
		in->devno = (e->rdev_minor & 0xff) | ((e->rdev_major & 0xfff) << 8) |
		            ((e->rdev_minor & ~0xffu) << 12);
		return 0;
	case SQ_REG:
	case SQ_DIR:
	case SQ_FIFO:
	case SQ_SOCK: return 0;
	default:
		return sifu_err_set(err, SIFU_E_UNSUPPORTED, 0, "\"%s\": unknown entry type",
		                    e->path);
	}
}

/* A new node NAME below PARENT for E (REPLACED: it took the place of a node
 * of the same layer, so a directory hides what lower layers had there). */
static int add_node(struct sq_image *img, struct sq_node *parent, const char *name,
                    const struct sq_entry *e, bool replaced, sq_read_fn read, void *ctx, bool *used,
                    struct sifu_err *err)
{
	struct sq_inode *in = inode_new(img, e->type);
	inode_meta(img, in, e);
	inode_xattrs(in, e);
	struct sq_node *nn = node_new(img, parent, name, in);
	if (replaced && e->type == SQ_DIR)
		nn->opaque = img->layer;
	int r = inode_special(in, e, err);
	if (r < 0 || e->type != SQ_REG)
		return r;
	if (used)
		*used = true;
	return sq_writer_file(img, in, e, read, ctx, err);
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
	int r = e->type == SQ_HARDLINK ? link_target(img, e, target, &shown, err) : 0;
	if (r < 0)
		return r;
	if (img->naliases)
		link_forget(img, e->path);
	struct sq_node *parent;
	char last[SQ_NAME_MAX + 1];
	r = walk_to_parent(img, e->path, &parent, last, err);
	if (r < 0)
		return r;
	if (r == 2)
		return add_root(img, e);
	if (r == 0)
		return hidden(img, e, target);
	if (is_whiteout(last))
		return add_whiteout(img, parent, last);
	struct sq_node *n = lookup(img, parent, last);
	if (n && land_on(img, n, e, target) == 0)
		return 0;
	if (e->type == SQ_HARDLINK)
		return add_hardlink(img, parent, last, e, target, shown, err);
	return add_node(img, parent, last, e, n != NULL, read, ctx, used, err);
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

/* ------------------------------------------------------- the image object */

int sq_image_create(int fd, uint64_t offset, const struct sq_opts *opts, struct sq_image **out,
                    struct sifu_err *err)
{
	struct sq_image *img = sifu_xcalloc(1, sizeof(*img));
	img->root = node_new(img, NULL, "", inode_new(img, SQ_DIR));
	img->root->ino->mode = 0755;
	img->root->implicit = true;
	int r = sq_writer_open(img, fd, offset, opts, err);
	if (r < 0) {
		sq_image_free(img);
		return r;
	}
	*out = img;
	return 0;
}

void sq_image_free(struct sq_image *img)
{
	if (!img)
		return;
	sq_writer_close(img);
	for (size_t i = 0; i < img->ninodes; i++) {
		struct sq_inode *in = img->inodes[i];
		sqfs_free(in->file);
		SIFU_FREE_MANY(in->target, in->xattr_buf, in);
	}
	free(img->inodes);
	for (struct sq_node *n = img->all, *next; n; n = next) {
		next = n->all_next;
		SIFU_FREE_MANY(n->name, n);
	}
	free(img->hash);
	ltab_clear(img);
	free(img);
}
