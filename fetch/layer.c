/* SPDX-License-Identifier: BSD-3-Clause */
/* Layer streams: bytes of a blob -> (gzip | zstd | plain, sniffed) -> tar
 * entries -> squash/.  Both the compressed and the uncompressed bytes are
 * hashed on the way through, so the digest and the diff_id are checked
 * without a second pass and without storing the tar anywhere.
 *
 * Decompression is ours (zlib, libzstd) rather than libarchive's filters
 * because the diff_id is a digest of the uncompressed stream, which
 * libarchive does not expose. */
#include "fetch.h"
#include "fetch_priv.h"

#include <archive.h>
#include <archive_entry.h>
#include <zlib.h>
#include <zstd.h>

#define IN_SIZE  (1u << 20)
#define OUT_SIZE (1u << 20)

enum lkind { L_PLAIN, L_GZIP, L_ZSTD };

struct lstream {
	int fd;
	enum lkind kind;
	struct fetch_sha256 csum, usum;
	unsigned char *in, *out;
	size_t in_pos, in_len;
	bool in_eof, z_end;
	z_stream z;
	bool z_init;
	ZSTD_DCtx *zd;
	uint64_t cbytes, ubytes;
	fetch_progress_fn progress;
	void *pctx;
	struct sifu_err *err;
	bool failed;
};

static int ls_read_in(struct lstream *s)
{
	if (s->in_eof)
		return 0;
	ssize_t n;
	do
		n = read(s->fd, s->in, IN_SIZE);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return sifu_err_sys(s->err, "reading the layer");
	if (n == 0) {
		s->in_eof = true;
		return 0;
	}
	fetch_sha256_update(&s->csum, s->in, (size_t)n);
	s->cbytes += (uint64_t)n;
	s->in_pos = 0;
	s->in_len = (size_t)n;
	if (s->progress)
		s->progress(s->pctx, s->cbytes);
	return 1;
}

/* Next chunk of the uncompressed stream into s->out; returns its length, 0
 * at the end, < 0 on error. */
static ssize_t ls_next(struct lstream *s)
{
	for (;;) {
		if (s->in_pos == s->in_len) {
			int r = ls_read_in(s);
			if (r < 0)
				return r;
			if (r == 0) {
				if (s->kind == L_GZIP && !s->z_end && s->z_init)
					return sifu_err_set(s->err, SIFU_E_CORRUPT, 0,
					                    "layer: gzip stream ends early");
				return 0;
			}
		}
		size_t avail = s->in_len - s->in_pos;
		size_t produced;
		if (s->kind == L_PLAIN) {
			memcpy(s->out, s->in + s->in_pos, avail);
			s->in_pos = s->in_len;
			produced = avail;
		} else if (s->kind == L_GZIP) {
			if (s->z_end) {
				/* another gzip member follows (concatenated gzip is legal) */
				if (inflateReset(&s->z) != Z_OK)
					return sifu_err_set(s->err, SIFU_E_CORRUPT, 0,
					                    "layer: gzip");
				s->z_end = false;
			}
			s->z.next_in = s->in + s->in_pos;
			s->z.avail_in = (uInt)avail;
			s->z.next_out = s->out;
			s->z.avail_out = OUT_SIZE;
			int zr = inflate(&s->z, Z_NO_FLUSH);
			if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
				return sifu_err_set(s->err, SIFU_E_CORRUPT, 0,
				                    "layer: corrupt gzip data (%s)",
				                    s->z.msg ? s->z.msg : "inflate failed");
			if (zr == Z_STREAM_END)
				s->z_end = true;
			s->in_pos = s->in_len - s->z.avail_in;
			produced = OUT_SIZE - s->z.avail_out;
		} else {
			ZSTD_inBuffer ib = {s->in, s->in_len, s->in_pos};
			ZSTD_outBuffer ob = {s->out, OUT_SIZE, 0};
			size_t zr = ZSTD_decompressStream(s->zd, &ob, &ib);
			if (ZSTD_isError(zr))
				return sifu_err_set(s->err, SIFU_E_CORRUPT, 0,
				                    "layer: corrupt zstd data (%s)",
				                    ZSTD_getErrorName(zr));
			s->in_pos = ib.pos;
			produced = ob.pos;
		}
		if (produced) {
			fetch_sha256_update(&s->usum, s->out, produced);
			s->ubytes += produced;
			return (ssize_t)produced;
		}
	}
}

static la_ssize_t ls_archive_read(struct archive *a, void *ctx, const void **buf)
{
	struct lstream *s = ctx;
	ssize_t n = ls_next(s);
	if (n < 0) {
		s->failed = true;
		archive_set_error(a, EIO, "layer stream failed");
		return -1;
	}
	*buf = s->out;
	return n;
}

static int ls_open(struct lstream *s)
{
	int r = ls_read_in(s);
	if (r < 0)
		return r;
	const unsigned char *p = s->in;
	if (s->in_len >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
		s->kind = L_GZIP;
		if (inflateInit2(&s->z, 15 + 16) != Z_OK)
			return sifu_err_set(s->err, SIFU_E_SYS, ENOMEM, "layer: zlib init");
		s->z_init = true;
	} else if (s->in_len >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd) {
		s->kind = L_ZSTD;
		s->zd = ZSTD_createDCtx();
		if (!s->zd)
			return sifu_err_set(s->err, SIFU_E_SYS, ENOMEM, "layer: zstd init");
	} else if (s->in_len >= 3 && p[0] == 'B' && p[1] == 'Z' && p[2] == 'h') {
		return sifu_err_set(s->err, SIFU_E_UNSUPPORTED, 0,
		                    "layer is bzip2-compressed, which OCI images do not use");
	} else if (s->in_len >= 6 && memcmp(p,
	                                    "\xfd"
	                                    "7zXZ",
	                                    6) == 0) {
		return sifu_err_set(s->err, SIFU_E_UNSUPPORTED, 0,
		                    "layer is xz-compressed, which OCI images do not use");
	} else {
		s->kind = L_PLAIN;
	}
	return 0;
}

static void ls_close(struct lstream *s)
{
	if (s->z_init)
		inflateEnd(&s->z);
	ZSTD_freeDCtx(s->zd);
	free(s->in);
	free(s->out);
}

struct data_ctx {
	struct archive *a;
	const char *path;
};

static ssize_t entry_read(void *ctx, void *buf, size_t len, struct sifu_err *err)
{
	struct data_ctx *d = ctx;
	la_ssize_t n = archive_read_data(d->a, buf, len);
	if (n < 0)
		return sifu_err_set(err, SIFU_E_CORRUPT, 0, "layer: \"%s\": %s", d->path,
		                    archive_error_string(d->a) ? archive_error_string(d->a)
		                                               : "unreadable data");
	return n;
}

static int entry_type(struct archive_entry *ae, enum sq_type *t)
{
	if (archive_entry_hardlink(ae)) {
		*t = SQ_HARDLINK;
		return 0;
	}
	switch (archive_entry_filetype(ae)) {
	case AE_IFREG: *t = SQ_REG; return 0;
	case AE_IFDIR: *t = SQ_DIR; return 0;
	case AE_IFLNK: *t = SQ_SYMLINK; return 0;
	case AE_IFCHR: *t = SQ_CHR; return 0;
	case AE_IFBLK: *t = SQ_BLK; return 0;
	case AE_IFIFO: *t = SQ_FIFO; return 0;
	case AE_IFSOCK: *t = SQ_SOCK; return 0;
	default: return -1;
	}
}

/* Pass 2 reads the layer again for hard links whose target an upper layer
 * replaced (SQ_DEFERRED): squash/ keeps those links and matches each
 * regular file against them in O(1). */
struct pass_ctx {
	bool pass2;
};

/* One tar entry into the tree. */
static int apply_entry(struct archive *a, struct archive_entry *ae, struct sq_image *img,
                       struct pass_ctx *ctx, struct sifu_err *err)
{
	struct sq_entry e = {0};
	e.path = archive_entry_pathname(ae);
	if (!e.path)
		return sifu_err_set(err, SIFU_E_CORRUPT, 0, "layer: an entry without a name");
	if (entry_type(ae, &e.type) < 0)
		return sifu_err_set(err, SIFU_E_CORRUPT, 0, "layer: \"%s\": unknown file type",
		                    e.path);
	e.mode = archive_entry_perm(ae) | (archive_entry_mode(ae) & 07000);
	int64_t uid = archive_entry_uid(ae), gid = archive_entry_gid(ae);
	if (uid < 0 || uid > UINT32_MAX || gid < 0 || gid > UINT32_MAX)
		return sifu_err_set(err, SIFU_E_CORRUPT, 0, "layer: \"%s\": owner out of range",
		                    e.path);
	e.uid = (uint32_t)uid;
	e.gid = (uint32_t)gid;
	e.mtime = archive_entry_mtime(ae);
	e.target = e.type == SQ_HARDLINK ? archive_entry_hardlink(ae) : archive_entry_symlink(ae);
	e.rdev_major = (uint32_t)archive_entry_rdevmajor(ae);
	e.rdev_minor = (uint32_t)archive_entry_rdevminor(ae);
	int64_t size = archive_entry_size(ae);
	e.size = size > 0 && e.type == SQ_REG ? (uint64_t)size : 0;

	struct sq_xattr xa[64];
	const char *name;
	const void *val;
	size_t vs;
	archive_entry_xattr_reset(ae);
	while (archive_entry_xattr_next(ae, &name, &val, &vs) == ARCHIVE_OK) {
		if (e.nxattrs == ARRAY_SIZE(xa))
			return sifu_err_set(err, SIFU_E_UNSUPPORTED, 0,
			                    "layer: \"%s\" has more than %zu xattrs", e.path,
			                    ARRAY_SIZE(xa));
		xa[e.nxattrs++] = (struct sq_xattr){name, val, vs};
	}
	e.xattrs = xa;
	struct data_ctx d = {a, e.path};
	if (ctx->pass2)
		return sq_image_add_deferred(img, &e, entry_read, &d, err);
	int r = sq_image_add(img, &e, entry_read, &d, NULL, err);
	return r == SQ_DEFERRED ? 0 : r;
}

static int check_sum(struct fetch_sha256 *h, const char *want, const char *what,
                     struct sifu_err *err)
{
	char got[FETCH_HEX_LEN + 1], hex[FETCH_HEX_LEN + 1];
	fetch_sha256_final_hex(h, got);
	if (!want)
		return 0;
	if (fetch_digest_parse(want, hex, err) < 0)
		return -EINVAL;
	if (strcmp(got, hex) != 0) {
		sifu_err_set(err, SIFU_E_VERIFY, 0,
		             "digest mismatch: %s of the layer is sha256:%s, "
		             "not %s",
		             what, got, want);
		sifu_err_hint(err, "the blob is corrupt or was tampered with; "
		                   "`sifu cache clean` and pull again");
		return -EBADMSG;
	}
	return 0;
}

static int layer_pass(int fd, const char *digest, const char *diff_id, struct sq_image *img,
                      fetch_progress_fn progress, void *pctx, struct fetch_layer_stats *st,
                      struct pass_ctx *ctx, struct sifu_err *err)
{
	struct lstream s = {.fd = fd, .progress = progress, .pctx = pctx, .err = err};
	s.in = sifu_xmalloc(IN_SIZE);
	s.out = sifu_xmalloc(OUT_SIZE);
	fetch_sha256_init(&s.csum);
	fetch_sha256_init(&s.usum);
	struct archive *a = NULL;
	int r = ls_open(&s);
	if (r < 0)
		goto out;
	a = archive_read_new();
	archive_read_support_format_tar(a);
	archive_read_support_filter_none(a);
	if (archive_read_open(a, &s, NULL, ls_archive_read, NULL) != ARCHIVE_OK) {
		r = s.failed
		        ? -EIO
		        : sifu_err_set(err, SIFU_E_CORRUPT, 0, "layer is not a tar archive (%s)",
		                       archive_error_string(a));
		goto out;
	}
	uint64_t entries = 0;
	for (;;) {
		struct archive_entry *ae;
		int ar = archive_read_next_header(a, &ae);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN) {
			r = s.failed
			        ? -EIO
			        : sifu_err_set(err, SIFU_E_CORRUPT, 0, "layer: bad tar header (%s)",
			                       archive_error_string(a));
			goto out;
		}
		entries++;
		if ((r = apply_entry(a, ae, img, ctx, err)) < 0)
			goto out;
	}
	/* the rest of the stream (tar padding) still counts for both digests */
	ssize_t n;
	while ((n = ls_next(&s)) > 0)
		;
	if ((r = (int)n) < 0)
		goto out;
	if ((r = check_sum(&s.csum, digest, "the content", err)) < 0)
		goto out;
	if ((r = check_sum(&s.usum, diff_id, "the uncompressed tar (diff_id)", err)) < 0)
		goto out;
	if (st)
		*st = (struct fetch_layer_stats){s.cbytes, s.ubytes, entries};
out:
	if (r < 0 && digest && err->code != SIFU_E_VERIFY) {
		/* a damaged stream is most often a damaged blob: say so when the
		 * digest proves it, rather than blaming the tar format */
		while (ls_read_in(&s) > 0)
			;
		struct sifu_err derr = {0};
		if (check_sum(&s.csum, digest, "the content", &derr) == -EBADMSG)
			*err = derr;
	}
	if (a)
		archive_read_free(a);
	fetch_sha256_free(&s.csum);
	fetch_sha256_free(&s.usum);
	ls_close(&s);
	return r;
}

int fetch_layer_apply(int fd, const char *digest, const char *diff_id, struct sq_image *img,
                      fetch_progress_fn progress, void *pctx, struct fetch_layer_stats *st,
                      struct sifu_err *err)
{
	struct pass_ctx ctx = {0};
	int r = layer_pass(fd, digest, diff_id, img, progress, pctx, st, &ctx, err);
	size_t n = r == 0 ? sq_image_deferred(img) : 0;
	if (n) {
		sifu_debug("layer %s: %zu hard links to files an upper layer replaced; "
		           "reading the layer again for their content",
		           digest ? digest : "", n);
		ctx.pass2 = true;
		if (lseek(fd, 0, SEEK_SET) < 0)
			r = sifu_err_sys(err, "rewinding the layer");
		else
			r = layer_pass(fd, digest, diff_id, img, NULL, NULL, NULL, &ctx, err);
	}
	if (r == 0)
		r = sq_image_links_done(img, err);
	return r;
}
