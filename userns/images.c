/* SPDX-License-Identifier: BSD-3-Clause */
/* Images served besides the run's own: --overlay files and image binds
 * (docs/running.md, "Overlays" and "Image binds").
 *
 * Each image gets its own /dev/fuse mount in the staging tree (/i<N>),
 * mounted by the launcher before the payload is cloned and served by
 * threads of the supervisor, like the run's image: no helper process, no
 * fusermount3, nothing left behind.  Which server serves it depends on its
 * file system (FS_OPS below): SquashFS, or ext2/3/4 through fuse/'s
 * libext2fs server (read-write for the one writable overlay layer). */
#include "userns_priv.h"
#include "sif.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>

/* ----------------------------------------------- the servers, by kind -- */

static int squash_start(struct ns_img *im, const struct sqf_options *o, struct sifu_err *err)
{
	int r = sqf_image_open(im->fd, im->offset, im->size, o, &im->sqf, err);
	if (r == 0)
		r = sqf_server_start(im->sqf, im->fuse_fd, &im->srv, err);
	return r;
}

static void squash_stop(struct ns_img *im)
{
	if (im->srv)
		sqf_server_stop(im->srv);
	if (im->sqf)
		sqf_image_close(im->sqf);
	im->srv = NULL;
	im->sqf = NULL;
}

/* The chunk cache, read-ahead and owner options are SquashFS's: an ext3
 * layer is there to take writes, and it shows its owners as stored (they
 * were written inside the user namespace). */
static int ext3_start(struct ns_img *im, const struct sqf_options *o, struct sifu_err *err)
{
	(void)o;
	struct sqf_ext_options eo;
	sqf_ext_options_default(&eo);
	int r = sqf_ext_open(im->fd, im->offset, im->size, im->writable, &eo, &im->ext, err);
	if (r == 0)
		r = sqf_ext_server_start(im->ext, im->fuse_fd, &im->esrv, err);
	return r;
}

/* After the payload: the run's result stands, so a failed write-back can
 * only be reported, with what to do about it. */
static void ext3_stop(struct ns_img *im)
{
	if (im->esrv)
		sqf_ext_server_stop(im->esrv);
	if (im->ext) {
		struct sifu_err e = {0};
		if (sqf_ext_close(im->ext, &e) < 0)
			sifu_log(
			    SIFU_LOG_WARN,
			    "overlay %s was not written back cleanly (%s): check it with e2fsck -f",
			    im->path, e.depth ? e.chain[e.depth - 1] : "unknown error");
	}
	im->esrv = NULL;
	im->ext = NULL;
}

static const struct {
	const char *name;
	int (*start)(struct ns_img *im, const struct sqf_options *o, struct sifu_err *err);
	void (*stop)(struct ns_img *im);
} fs_ops[] = {
    [NS_IMG_SQUASH] = {"SquashFS", squash_start, squash_stop},
    [NS_IMG_EXT3] = {"ext3", ext3_start, ext3_stop},
};

/* ------------------------------------------------------------- probing -- */

/* One file system inside an image file. */
struct section {
	uint64_t offset, size;
	enum ns_img_fs fs;
};

/* the callers name the image (sifu_err_wrap) */
static int unsupported_fs(const char *what, struct sifu_err *err)
{
	sifu_err_set(err, SIFU_E_UNSUPPORTED, ENOTSUP, "%s", what);
	sifu_err_hint(err, "give a SquashFS or ext3 image file, or a SIF with such a partition");
	return -ENOTSUP;
}

/* A bare file system: SquashFS ("hsqs" at 0) or ext2/3/4 (the superblock at
 * 1024, its magic 0xEF53 at offset 56 of it, little-endian). */
static int probe_bare(int fd, const char *path, struct section *s, struct sifu_err *err)
{
	struct stat st;
	unsigned char m[4], e[2];
	if (fstat(fd, &st) < 0)
		return sifu_err_sys(err, "stat %s", path);
	s->offset = 0;
	s->size = (uint64_t)st.st_size;
	if (pread(fd, m, 4, 0) == 4 && !memcmp(m, "hsqs", 4)) {
		s->fs = NS_IMG_SQUASH;
		return 0;
	}
	if (pread(fd, e, 2, 1024 + 56) == 2 && e[0] == 0x53 && e[1] == 0xEF) {
		s->fs = NS_IMG_EXT3;
		return 0;
	}
	return unsupported_fs("not a SquashFS, ext3 or SIF image", err);
}

static int part_section(const struct sif_descr *d, struct section *s, struct sifu_err *err)
{
	struct sif_partinfo pi;
	sif_descr_partition(d, &pi);
	s->offset = (uint64_t)d->offset;
	s->size = (uint64_t)d->size;
	if (pi.fstype == SIF_FS_SQUASH)
		s->fs = NS_IMG_SQUASH;
	else if (pi.fstype == SIF_FS_EXT3)
		s->fs = NS_IMG_EXT3;
	else
		return unsupported_fs("the partition's file system is not supported", err);
	return 0;
}

/* A SIF: for an overlay every overlay partition (Apptainer's
 * GetOverlayPartitions; none is no layer), for a bind the partition ID (any
 * kind, as Apptainer's GetAllPartitions) or else the first data one. */
static int probe_sif(int fd, const char *path, bool layer, uint32_t id, struct section **out,
                     size_t *n, struct sifu_err *err)
{
	_cleanup_sif_ struct sif_image *sif = NULL;
	int r = sif_open_fd(fd, &sif, err);
	if (r < 0)
		return sifu_err_wrap(err, "%s", path);
	for (int64_t i = 0; i < sif->h.dtotal; i++) {
		const struct sif_descr *d = &sif->d[i];
		struct sif_partinfo pi;
		if (!d->used || d->datatype != SIF_DT_PARTITION)
			continue;
		sif_descr_partition(d, &pi);
		bool want = layer ? pi.parttype == SIF_PART_OVERLAY
		                  : (id ? d->id == id : pi.parttype == SIF_PART_DATA);
		if (!want)
			continue;
		*out = sifu_xrealloc(*out, (*n + 1) * sizeof(**out));
		if ((r = part_section(d, &(*out)[*n], err)) < 0)
			return r;
		(*n)++;
		if (!layer)
			return 0;
	}
	if (layer)
		return 0;
	sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT, "no data partition%s found in %s",
	             id ? " with that id" : "", path);
	sifu_err_hint(err, "'sifu sif list %s' shows its partitions and their ids", path);
	return -ENOENT;
}

static int probe(int fd, const char *path, bool layer, uint32_t id, struct section **out, size_t *n,
                 struct sifu_err *err)
{
	*out = NULL;
	*n = 0;
	if (sif_fd_is_sif(fd))
		return probe_sif(fd, path, layer, id, out, n, err);
	*out = sifu_xmalloc(sizeof(**out));
	int r = probe_bare(fd, path, *out, err);
	if (r == 0)
		*n = 1;
	return r;
}

/* Every section of the image file FD as an image to serve; *FIRST: the
 * index of the first one. */
static int add_images(struct ns_run *l, int fd, const char *path, bool layer, uint32_t id,
                      size_t *first, size_t *count, struct sifu_err *err)
{
	_cleanup_free_ struct section *s = NULL;
	size_t n = 0;
	int r = probe(fd, path, layer, id, &s, &n, err);
	if (r < 0)
		return r;
	*first = l->nimgs;
	*count = n;
	for (size_t i = 0; i < n; i++) {
		int dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (dup < 0)
			return sifu_err_sys(err, "%s", path);
		l->imgs = sifu_xrealloc(l->imgs, (l->nimgs + 1) * sizeof(*l->imgs));
		struct ns_img *im = &l->imgs[l->nimgs];
		*im = (struct ns_img){.fd = dup,
		                      .offset = s[i].offset,
		                      .size = s[i].size,
		                      .fs = s[i].fs,
		                      .layer = layer,
		                      .path = sifu_xstrdup(path),
		                      .fuse_fd = -1};
		snprintf(im->mnt, sizeof(im->mnt), "/i%zu", l->nimgs);
		l->nimgs++;
	}
	return 0;
}

/* ------------------------------------------------------------ overlays -- */

static void add_layer(struct ns_run *l, int dir_fd, int img, bool ro, const char *path)
{
	l->layers = sifu_xrealloc(l->layers, (l->nlayers + 1) * sizeof(*l->layers));
	l->layers[l->nlayers++] = (struct ns_layer){dir_fd, img, ro, sifu_xstrdup(path)};
}

/* Apptainer's loadOverlayImages: one writable layer, and none beside
 * --writable-tmpfs (both exit 255 there). */
static int claim_writable(struct ns_run *l, const char *path, struct sifu_err *err)
{
	_cleanup_free_ char *abs = realpath(path, NULL);
	if (l->wlayer >= 0) {
		sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		             "you can't specify more than one writable overlay, %s contains a "
		             "writable overlay, requires to use '--overlay %s:ro'",
		             l->layers[l->wlayer].path, path);
		sifu_err_hint(err, "add every overlay but one with :ro");
		return -EINVAL;
	}
	if (l->c->writable_tmpfs) {
		sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		             "you can't specify --writable-tmpfs with another writable overlay "
		             "image (%s)",
		             abs ? abs : path);
		sifu_err_hint(err, "use --overlay %s:ro to add it read-only", path);
		return -EINVAL;
	}
	l->wlayer = (int)l->nlayers;
	return 0;
}

/* The overlay layers of image file FD, in the order of its sections.  An
 * ext3 section is the writable layer when WANT_RW asks for one and the
 * caller may write the file (else, with Apptainer's warning, read-only; or
 * an error when STRICT: --writable on the run's own SIF); SquashFS is
 * read-only whatever was asked, as in Apptainer. */
static int add_image_layers(struct ns_run *l, int fd, const char *path, bool want_rw, bool strict,
                            struct sifu_err *err)
{
	size_t first, count;
	int r = add_images(l, fd, path, true, 0, &first, &count, err);
	for (size_t i = 0; r == 0 && i < count; i++) {
		struct ns_img *im = &l->imgs[first + i];
		bool rw = want_rw && im->fs == NS_IMG_EXT3;
		if (rw && access(path, W_OK) < 0) {
			if (strict) {
				sifu_err_sys(err, "--writable: cannot write %s", path);
				sifu_err_hint(err, "its overlay partition takes the writes: run "
				                   "without --writable, or on a copy you own");
				return -EACCES;
			}
			sifu_log(SIFU_LOG_WARN,
			         "overlay %s is not writable, proceeding with read-only", path);
			rw = false;
		}
		if (rw)
			r = claim_writable(l, path, err);
		im->writable = rw;
		add_layer(l, -1, (int)(first + i), !rw, path);
	}
	return r;
}

static int open_layer(struct ns_run *l, const char *spec, struct sifu_err *err)
{
	_cleanup_free_ char *p = sifu_xstrdup(spec);
	size_t n = strlen(p);
	bool ro = n > 3 && !strcmp(p + n - 3, ":ro");
	if (ro)
		p[n - 3] = '\0';
	_cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == EISDIR)
		fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		sifu_err_sys(err, "--overlay %s", p);
		sifu_err_hint(err, "give an existing directory, or a SquashFS, ext3 or SIF file");
		return -errno;
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sifu_err_sys(err, "--overlay %s", p);
	if (!S_ISDIR(st.st_mode)) {
		int r = add_image_layers(l, fd, p, !ro, false, err);
		return r < 0 ? sifu_err_wrap(err, "--overlay %s", p) : 0;
	}
	if (!ro && access(p, W_OK) < 0) {
		sifu_log(SIFU_LOG_WARN, "overlay %s is not writable, proceeding with read-only", p);
		ro = true;
	}
	if (!ro) {
		int r = claim_writable(l, p, err);
		if (r < 0)
			return r;
	}
	add_layer(l, TAKE_FD(fd), -1, ro, p);
	return 0;
}

/* ---------------------------------------------------------- image binds -- */

static int open_imgbind(struct ns_run *l, const struct ns_bind *b, struct sifu_err *err)
{
	_cleanup_close_ int fd = open(b->src, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		/* Apptainer's e2e SandboxKO: 255 */
		sifu_err_set(err, SIFU_E_USAGE, EISDIR,
		             "bind %s: image-src and id need an image file, not a directory",
		             b->src);
		sifu_err_hint(err, "bind a directory without image-src= or id=");
		return -EISDIR;
	}
	if (fd < 0) {
		sifu_err_sys(err, "bind source %s", b->src);
		sifu_err_hint(err, "the image file must exist");
		return -errno;
	}
	size_t first, count;
	int r = add_images(l, fd, b->src, false, b->id, &first, &count, err);
	if (r < 0)
		return sifu_err_wrap(err, "bind %s", b->src);
	/* Apptainer's e2e bindImage Ext3Write / Ext3WriteKO: an ext3 image
	 * takes writes unless bound ro; SquashFS never does */
	struct ns_img *im = &l->imgs[first];
	im->writable = im->fs == NS_IMG_EXT3 && !b->ro && access(b->src, W_OK) == 0;
	l->ib = sifu_xrealloc(l->ib, (l->nib + 1) * sizeof(*l->ib));
	l->ib[l->nib++] =
	    (struct ns_imgbind){(int)first, sifu_xstrdup(b->image_src), sifu_xstrdup(b->dst)};
	return 0;
}

int ns_images_open(struct ns_run *l, struct sifu_err *err)
{
	const struct ns_config *c = l->c;
	l->wlayer = -1;
	/* the run's SIF's own ext3 overlay partitions (Apptainer uses only
	 * those): the lowest layers, read-write with --writable */
	if (l->kind == NS_ROOT_FUSE && sif_fd_is_sif(l->image_fd)) {
		int r = add_image_layers(l, l->image_fd, c->image, c->writable, true, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; c->overlays && c->overlays[i]; i++) {
		int r = open_layer(l, c->overlays[i], err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < c->nbinds; i++) {
		if (!c->binds[i].image_src)
			continue;
		int r = open_imgbind(l, &c->binds[i], err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ------------------------------------------------------ mounting, serving -- */

int ns_fuse_mount(const struct ns_run *l, const char *tgt, bool rw, int *out, struct sifu_err *err)
{
	int fd = open("/oldroot/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		sifu_err_sys(err, "cannot open /dev/fuse");
		sifu_err_hint(err, errno == ENOENT
		                       ? "load the fuse module (modprobe fuse)"
		                       : "ask the administrator to make /dev/fuse mode 0666");
		return -errno;
	}
	char opts[256];
	snprintf(opts, sizeof(opts),
	         "fd=%d,rootmode=40000,user_id=%u,group_id=%u,default_permissions", fd, l->cuid,
	         l->cgid);
	unsigned long fl = MS_NOSUID | MS_NODEV | (rw ? 0 : MS_RDONLY);
	if (mount("sifu", tgt, "fuse.sifu", fl, opts) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		sifu_err_sys(err, "the kernel refused a FUSE mount in the user namespace");
		sifu_err_hint(err,
		              "FUSE in user namespaces needs Linux >= 4.18 and the fuse module");
		return -e;
	}
	*out = fd;
	return 0;
}

int ns_images_mount(struct ns_run *l, struct sifu_err *err)
{
	for (size_t i = 0; i < l->nimgs; i++) {
		struct ns_img *im = &l->imgs[i];
		char tgt[NS_STAGE_MAX + sizeof(im->mnt)];
		snprintf(tgt, sizeof(tgt), "%s%s", l->stage, im->mnt);
		if (mkdir(tgt, 0755) < 0)
			return sifu_err_sys(err, "staging: mkdir %s", tgt);
		int r = ns_fuse_mount(l, tgt, im->writable, &im->fuse_fd, err);
		if (r < 0)
			return sifu_err_wrap(err, "mounting %s", im->path);
	}
	return 0;
}

int ns_images_serve(struct ns_run *l, bool owners, struct sifu_err *err)
{
	for (size_t i = 0; i < l->nimgs; i++) {
		struct ns_img *im = &l->imgs[i];
		struct sqf_options o = l->c->sqf;
		o.block_cache_dir = -1; /* the cache is the run image's */
		o.verity = NULL;        /* --verify checked the run image only */
		if (im->layer && owners) {
			o.owner_self = true;
			o.uid = l->cuid;
			o.gid = l->cgid;
		}
		int r = fs_ops[im->fs].start(im, &o, err);
		if (r < 0)
			return sifu_err_wrap(err, "serving %s", im->path);
	}
	return 0;
}

void ns_images_stop(struct ns_run *l)
{
	for (size_t i = 0; i < l->nimgs; i++)
		if (fs_ops[l->imgs[i].fs].stop)
			fs_ops[l->imgs[i].fs].stop(&l->imgs[i]);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void ns_images_close_fds(struct ns_run *l)
{
	for (size_t i = 0; i < l->nlayers; i++)
		close_fd(&l->layers[i].dir_fd);
	for (size_t i = 0; i < l->nimgs; i++) {
		close_fd(&l->imgs[i].fd);
		close_fd(&l->imgs[i].fuse_fd);
	}
}

void ns_images_free(struct ns_run *l)
{
	ns_images_close_fds(l);
	for (size_t i = 0; i < l->nlayers; i++)
		free(l->layers[i].path);
	for (size_t i = 0; i < l->nimgs; i++)
		free(l->imgs[i].path);
	for (size_t i = 0; i < l->nib; i++)
		SIFU_FREE_MANY(l->ib[i].src, l->ib[i].dst);
	SIFU_FREE_MANY(l->layers, l->imgs, l->ib);
}
