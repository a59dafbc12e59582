/* SPDX-License-Identifier: BSD-3-Clause */
/* Opening a SIF: every byte comes through sif_read_at(), which checks the range
 * against the file size first; sizes from the file are never trusted before
 * sif_check_header()/sif_check_descriptors() have bounded them. */
#include "sif.h"

#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

int sif_read_at(const struct sif_image *img, void *buf, size_t len, uint64_t off,
                struct sifu_err *err)
{
	if (off > img->file_size || len > img->file_size - off) {
		sifu_err_set(err, SIFU_E_RANGE, ERANGE,
		             "read of %zu bytes at offset %" PRIu64 " is past the end of the file "
		             "(%" PRIu64 " bytes)",
		             len, off, img->file_size);
		return -ERANGE;
	}
	if (img->mem) {
		memcpy(buf, img->mem + off, len);
		return 0;
	}
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(img->fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sifu_err_sys(err, "read at offset %" PRIu64, off + done);
		if (n == 0) {
			sifu_err_set(err, SIFU_E_RANGE, ERANGE,
			             "file shrank while reading: end of file at offset %" PRIu64,
			             off + done);
			return -ERANGE;
		}
		done += (size_t)n;
	}
	return 0;
}

static int load(struct sif_image *img, struct sifu_err *err)
{
	uint8_t hb[SIF_HDR_SIZE];
	if (img->file_size < SIF_HDR_SIZE) {
		/* tell a truncated SIF from something else entirely */
		static const char magic[] = "SIF_MAGIC";
		uint8_t head[SIF_HDR_MAGIC + 10] = {0};
		size_t n = img->file_size < sizeof(head) ? (size_t)img->file_size : sizeof(head);
		int r = sif_read_at(img, head, n, 0, err);
		if (r < 0)
			return r;
		if (n < sizeof(head) || memcmp(head + SIF_HDR_MAGIC, magic, 10)) {
			sifu_err_set(err, SIFU_E_UNSUPPORTED, EINVAL,
			             "not a SIF file: %" PRIu64 " bytes, no SIF_MAGIC at offset %d",
			             img->file_size, SIF_HDR_MAGIC);
			return -EINVAL;
		}
		sifu_err_set(err, SIFU_E_RANGE, ERANGE,
		             "global header (offset 0) truncated: the file is %" PRIu64
		             " bytes, the header needs %d",
		             img->file_size, SIF_HDR_SIZE);
		return -ERANGE;
	}
	int r = sif_read_at(img, hb, sizeof(hb), 0, err);
	if (r < 0)
		return r;
	sif_header_decode(hb, &img->h);
	r = sif_check_header(&img->h, img->file_size, err);
	if (r < 0)
		return r;

	size_t n = (size_t)img->h.dtotal;
	img->d = sifu_xcalloc(n ? n : 1, sizeof(*img->d));
	if (n) {
		_cleanup_free_ uint8_t *tb = sifu_xmalloc(n * SIF_DESCR_SIZE);
		r = sif_read_at(img, tb, n * SIF_DESCR_SIZE, (uint64_t)img->h.doff, err);
		if (r < 0)
			return r;
		for (size_t i = 0; i < n; i++)
			sif_descr_decode(tb + i * SIF_DESCR_SIZE, &img->d[i]);
	}
	return sif_check_descriptors(&img->h, img->d, img->file_size, err);
}

static int open_common(struct sif_image *img, struct sif_image **out, struct sifu_err *err)
{
	int r = load(img, err);
	if (r < 0) {
		sif_close(img);
		return r;
	}
	*out = img;
	return 0;
}

int sif_open_fd(int fd, struct sif_image **out, struct sifu_err *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sifu_err_sys(err, "stat");
	if (S_ISDIR(st.st_mode))
		return sifu_err_set(err, SIFU_E_UNSUPPORTED, EISDIR, "not a SIF file: a directory");
	off_t size = st.st_size;
	if (!S_ISREG(st.st_mode)) {
		size = lseek(fd, 0, SEEK_END);
		if (size < 0)
			return sifu_err_sys(err, "find the size");
	}
	struct sif_image *img = sifu_xcalloc(1, sizeof(*img));
	img->fd = fd;
	img->file_size = (uint64_t)size;
	return open_common(img, out, err);
}

int sif_open_path(const char *path, bool writable, struct sif_image **out, struct sifu_err *err)
{
	int fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return sifu_err_sys(err, "open %s", path);
	int r = sif_open_fd(fd, out, err);
	if (r < 0) {
		close(fd);
		return sifu_err_wrap(err, "%s", path);
	}
	(*out)->own_fd = true;
	return 0;
}

int sif_open_mem(const void *buf, size_t len, struct sif_image **out, struct sifu_err *err)
{
	struct sif_image *img = sifu_xcalloc(1, sizeof(*img));
	img->fd = -1;
	img->mem = buf;
	img->file_size = len;
	return open_common(img, out, err);
}

void sif_close(struct sif_image *img)
{
	if (!img)
		return;
	if (img->own_fd && img->fd >= 0)
		close(img->fd);
	free(img->d);
	free(img);
}

const struct sif_descr *sif_get(const struct sif_image *img, uint32_t id)
{
	for (int64_t i = 0; i < img->h.dtotal; i++)
		if (img->d[i].used && img->d[i].id == id)
			return &img->d[i];
	return NULL;
}

const struct sif_descr *sif_primary(const struct sif_image *img)
{
	for (int64_t i = 0; i < img->h.dtotal; i++) {
		const struct sif_descr *d = &img->d[i];
		if (!d->used || d->datatype != SIF_DT_PARTITION)
			continue;
		struct sif_partinfo p;
		sif_descr_partition(d, &p);
		if (p.parttype == SIF_PART_PRIMSYS)
			return d;
	}
	return NULL;
}

const struct sif_descr *sif_first_of(const struct sif_image *img, int32_t datatype)
{
	for (int64_t i = 0; i < img->h.dtotal; i++)
		if (img->d[i].used && img->d[i].datatype == datatype)
			return &img->d[i];
	return NULL;
}

int sif_read_object(const struct sif_image *img, const struct sif_descr *d, size_t max, char **out,
                    size_t *len, struct sifu_err *err)
{
	if ((uint64_t)d->size > max)
		return sifu_err_set(err, SIFU_E_UNSUPPORTED, EFBIG,
		                    "object %u is %" PRId64 " bytes, more than the %zu this reads",
		                    d->id, d->size, max);
	_cleanup_free_ char *buf = sifu_xmalloc((size_t)d->size + 1);
	int r = sif_read_at(img, buf, (size_t)d->size, (uint64_t)d->offset, err);
	if (r < 0)
		return r;
	buf[d->size] = '\0';
	*len = (size_t)d->size;
	*out = TAKE_PTR(buf);
	return 0;
}

bool sif_fd_is_sif(int fd)
{
	char buf[SIF_HDR_MAGIC + 10];
	if (pread(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf))
		return false;
	return !memcmp(buf + SIF_HDR_MAGIC, SIF_MAGIC, sizeof(SIF_MAGIC));
}

int sif_find_rootfs(int fd, struct sif_rootfs_loc *out, struct sifu_err *err)
{
	_cleanup_sif_ struct sif_image *img = NULL;
	int r = sif_open_fd(fd, &img, err);
	if (r < 0)
		return r;
	const struct sif_descr *d = sif_primary(img);
	if (!d) {
		sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT,
		             "the image has no primary system partition");
		sifu_err_hint(err, "'sifu sif list IMAGE' shows its objects; 'sifu sif setprim ID "
		                   "IMAGE' marks a partition as the primary one");
		return -ENOENT;
	}
	struct sif_partinfo p;
	sif_descr_partition(d, &p);
	out->offset = (uint64_t)d->offset;
	out->size = (uint64_t)d->size;
	out->fstype = (uint32_t)p.fstype;
	return 0;
}
