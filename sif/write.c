/* SPDX-License-Identifier: BSD-3-Clause */
/* Writing SIF files: the streaming writer (new images, built under a
 * temporary name and renamed into place) and in-place modification of an
 * existing image (add, delete, set primary), laid out as sylabs/sif's
 * create.go does: objects appended at DataOffset+DataSize, partitions
 * aligned to 4096, SizeWithPadding counting the alignment gap, descriptor
 * index i holding object id i+1. */
#include "sif.h"

#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off, struct sifu_err *err)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sifu_err_sys(err, "write at offset %" PRIu64, off + done);
		done += (size_t)n;
	}
	return 0;
}

static int64_t align_up(int64_t off, int64_t a)
{
	if (a <= 0 || off % a == 0)
		return off;
	return off - off % a + a;
}

/* WO's $SOURCE_DATE_EPOCH when it is a whole number: true and *T. */
static bool epoch_time(const struct sif_write_opts *wo, int64_t *t)
{
	const char *s = wo ? wo->source_date_epoch : NULL;
	if (!s || !*s)
		return false;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end)
		return false;
	*t = v;
	return true;
}

/* "Now": WO's $SOURCE_DATE_EPOCH, else the clock. */
static int64_t default_time(const struct sif_write_opts *wo)
{
	int64_t t;
	return epoch_time(wo, &t) ? t : (int64_t)time(NULL);
}

static void random_uuid(uint8_t id[16])
{
	size_t got = 0;
	while (got < 16) {
		ssize_t n = getrandom(id + got, 16 - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			abort(); /* no entropy source at all: nothing sane to do */
		got += (size_t)n;
	}
	id[6] = (uint8_t)((id[6] & 0x0f) | 0x40); /* version 4 */
	id[8] = (uint8_t)((id[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

/* With $SOURCE_DATE_EPOCH the id is the nil UUID, as Apptainer's SIF
 * assembler (OptCreateDeterministic) makes it for a reproducible build: a
 * random one would differ between two builds of the same input. */
static void header_init(struct sif_header *h, const struct sif_write_opts *wo)
{
	int64_t t;
	bool fixed = epoch_time(wo, &t);
	if (!fixed)
		t = (int64_t)time(NULL);
	memset(h, 0, sizeof(*h));
	memcpy(h->launch, SIF_LAUNCH, strlen(SIF_LAUNCH));
	memcpy(h->magic, "SIF_MAGIC", 10);
	memcpy(h->version, "01", 3);
	memcpy(h->arch, "00", 3);
	if (!fixed)
		random_uuid(h->id);
	h->ctime = h->mtime = t;
	h->dfree = h->dtotal = SIF_DESCR_COUNT_DEFAULT;
	h->doff = SIF_DESCR_OFFSET_DEFAULT;
	h->dsize = SIF_DESCR_COUNT_DEFAULT * SIF_DESCR_SIZE;
	h->dataoff = h->doff + h->dsize;
	h->datasize = 0;
}

static int set_name(struct sif_descr *d, const char *name, struct sifu_err *err)
{
	if (!name)
		return 0;
	if (strlen(name) > SIF_NAME_LEN)
		return sifu_err_set(err, SIFU_E_USAGE, ENAMETOOLONG,
		                    "object name '%s' is longer than %d bytes", name, SIF_NAME_LEN);
	memset(d->name, 0, sizeof(d->name));
	memcpy(d->name, name, strlen(name));
	return 0;
}

static void put_partition(struct sif_descr *d, int32_t fs, int32_t pt, const char *code)
{
	int32_t v[2] = {(int32_t)htole32((uint32_t)fs), (int32_t)htole32((uint32_t)pt)};
	memset(d->extra, 0, sizeof(d->extra));
	memcpy(d->extra, v, 8);
	memcpy(d->extra + 8, code, 2);
}

static void put_i32(uint8_t *p, int32_t v)
{
	uint32_t u = htole32((uint32_t)v);
	memcpy(p, &u, 4);
}

/* -------------------------------------------------------------- the writer */

struct sif_writer {
	char *path;
	struct sifu_atomic out; /* the temporary file, renamed to path on commit */
	struct sif_header h;
	struct sif_descr d[SIF_DESCR_COUNT_DEFAULT];
	size_t n;
	bool in_partition;
	int64_t part_off;
};

int sif_output_check(const char *path, struct sifu_err *err)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : sifu_err_sys(err, "cannot write %s", path);
	if (S_ISDIR(st.st_mode)) {
		sifu_err_set(err, SIFU_E_USAGE, EISDIR, "cannot write %s: it is a directory", path);
		sifu_err_hint(err, "give the image a file name");
		return -EISDIR;
	}
	if (S_ISLNK(st.st_mode) && st.st_uid != geteuid()) {
		sifu_err_set(err, SIFU_E_USAGE, EPERM,
		             "cannot write %s: it is a symbolic link owned by uid %u, not by you",
		             path, (unsigned)st.st_uid);
		sifu_err_hint(err, "sifu neither writes through nor replaces another user's link; "
		                   "choose another name");
		return -EPERM;
	}
	return 0;
}

int sif_writer_create(const char *path, const struct sif_write_opts *wo, struct sif_writer **out,
                      struct sifu_err *err)
{
	int r = sif_output_check(path, err);
	if (r < 0)
		return r;
	struct sif_writer *w = sifu_xcalloc(1, sizeof(*w));
	struct sifu_err e = {0};
	if (sifu_atomic_open(&w->out, AT_FDCWD, path, &e) < 0) {
		/* the directory is what the user can do something about */
		_cleanup_free_ char *c = sifu_xstrdup(path);
		free(w);
		return sifu_err_set(err, SIFU_E_SYS, e.errnum, "create a temporary file in %s",
		                    dirname(c));
	}
	w->path = sifu_xstrdup(path);
	header_init(&w->h, wo);
	*out = w;
	return 0;
}

void sif_writer_set_time(struct sif_writer *w, int64_t t)
{
	w->h.ctime = w->h.mtime = t;
	for (size_t i = 0; i < w->n; i++)
		w->d[i].ctime = w->d[i].mtime = t;
}

void sif_writer_set_id(struct sif_writer *w, const uint8_t id[16])
{
	memcpy(w->h.id, id, 16);
}

int sif_writer_set_launch(struct sif_writer *w, const char *launch, struct sifu_err *err)
{
	if (strlen(launch) >= SIF_LAUNCH_LEN)
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		                    "launch line is longer than %d bytes", SIF_LAUNCH_LEN - 1);
	memset(w->h.launch, 0, sizeof(w->h.launch));
	memcpy(w->h.launch, launch, strlen(launch));
	return 0;
}

static int writer_slot(struct sif_writer *w, struct sifu_err *err)
{
	if (w->in_partition)
		return sifu_err_set(err, SIFU_E_USAGE, EBUSY, "sif writer: a partition is open");
	if (w->n >= SIF_DESCR_COUNT_DEFAULT)
		return sifu_err_set(err, SIFU_E_USAGE, ENOSPC,
		                    "sif writer: all %d descriptors used", SIF_DESCR_COUNT_DEFAULT);
	return 0;
}

static void writer_fill(struct sif_writer *w, struct sif_descr *d, int32_t dt, uint32_t group,
                        uint32_t link)
{
	d->datatype = dt;
	d->used = 1;
	d->id = (uint32_t)w->n + 1;
	d->groupid = SIF_GROUP_MASK | group;
	d->link = link;
	d->ctime = d->mtime = w->h.ctime;
}

int sif_writer_add_data(struct sif_writer *w, uint32_t datatype, const void *data, size_t len,
                        uint32_t groupid, uint32_t link, const char *name, struct sifu_err *err)
{
	int r = writer_slot(w, err);
	if (r < 0)
		return r;
	if (datatype == SIF_DT_PARTITION)
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		                    "sif writer: partitions go through begin/end_partition");
	struct sif_descr *d = &w->d[w->n];
	memset(d, 0, sizeof(*d));
	r = set_name(d, name, err);
	if (r < 0)
		return r;
	int64_t off = w->h.dataoff + w->h.datasize;
	r = pwrite_all(w->out.fd, data, len, (uint64_t)off, err);
	if (r < 0)
		return sifu_err_wrap(err, "sif: write object to %s", w->out.tmp);
	writer_fill(w, d, (int32_t)datatype, groupid, link);
	d->offset = off;
	d->size = d->padded = (int64_t)len;
	w->h.datasize += d->padded;
	w->h.dfree--;
	w->n++;
	return 0;
}

int sif_writer_begin_partition(struct sif_writer *w, int *fd, uint64_t *offset,
                               struct sifu_err *err)
{
	int r = writer_slot(w, err);
	if (r < 0)
		return r;
	w->part_off = align_up(w->h.dataoff + w->h.datasize, SIF_PART_ALIGN);
	w->in_partition = true;
	*fd = w->out.fd;
	*offset = (uint64_t)w->part_off;
	return 0;
}

int sif_writer_end_partition(struct sif_writer *w, uint64_t size, uint32_t fstype,
                             uint32_t parttype, const char *arch, bool primary,
                             struct sifu_err *err)
{
	if (!w->in_partition)
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "sif writer: no partition open");
	w->in_partition = false;
	if (!arch)
		arch = sif_host_goarch();
	if (parttype == SIF_PART_PRIMSYS)
		primary = true; /* the header's architecture must follow it */
	const char *code = sif_arch_code(arch);
	if (!code)
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "unknown architecture '%s'", arch);
	if (primary) {
		for (size_t i = 0; i < w->n; i++) {
			struct sif_partinfo p;
			sif_descr_partition(&w->d[i], &p);
			if (w->d[i].datatype == SIF_DT_PARTITION && p.parttype == SIF_PART_PRIMSYS)
				return sifu_err_set(
				    err, SIFU_E_USAGE, EEXIST,
				    "sif writer: the image already has a primary partition");
		}
		parttype = SIF_PART_PRIMSYS;
		memcpy(w->h.arch, code, 3);
	}
	struct stat st;
	if (fstat(w->out.fd, &st) < 0)
		return sifu_err_sys(err, "stat %s", w->out.tmp);
	if (size > INT64_MAX - (uint64_t)w->part_off ||
	    (uint64_t)st.st_size < (uint64_t)w->part_off + size)
		return sifu_err_set(err, SIFU_E_RANGE, ERANGE,
		                    "sif writer: partition of %" PRIu64 " bytes at %" PRId64
		                    " but the file is only %jd bytes",
		                    size, w->part_off, (intmax_t)st.st_size);
	struct sif_descr *d = &w->d[w->n];
	memset(d, 0, sizeof(*d));
	writer_fill(w, d, SIF_DT_PARTITION, 1, 0);
	int64_t unaligned = w->h.dataoff + w->h.datasize;
	d->offset = w->part_off;
	d->size = (int64_t)size;
	d->padded = w->part_off - unaligned + (int64_t)size;
	put_partition(d, (int32_t)fstype, (int32_t)parttype, code);
	w->h.datasize += d->padded;
	w->h.dfree--;
	w->n++;
	return 0;
}

static int write_table(int fd, const struct sif_header *h, const struct sif_descr *d, size_t n,
                       struct sifu_err *err)
{
	size_t total = (size_t)h->dtotal;
	_cleanup_free_ uint8_t *tb = sifu_xcalloc(total ? total : 1, SIF_DESCR_SIZE);
	for (size_t i = 0; i < n && i < total; i++)
		if (d[i].used)
			sif_descr_encode(&d[i], tb + i * SIF_DESCR_SIZE);
	int r = pwrite_all(fd, tb, total * SIF_DESCR_SIZE, (uint64_t)h->doff, err);
	if (r < 0)
		return r;
	uint8_t hb[SIF_HDR_SIZE];
	sif_header_encode(h, hb);
	return pwrite_all(fd, hb, sizeof(hb), 0, err);
}

static int commit(struct sif_writer *w, struct sifu_err *err)
{
	int r;
	if (w->in_partition)
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		                    "sif writer: a partition is still open");
	if ((r = write_table(w->out.fd, &w->h, w->d, w->n, err)) < 0)
		return sifu_err_wrap(err, "sif: write %s", w->out.tmp);
	/* the image ends where its data does: drop anything a caller wrote past it */
	if (ftruncate(w->out.fd, w->h.dataoff + w->h.datasize) < 0)
		return sifu_err_sys(err, "sif: truncate %s", w->out.tmp);
	/* the data reaches the disk before the name does (sifu_atomic_commit
	 * syncs first): a crash after the rename never leaves a SIF of holes
	 * under the final name */
	struct sifu_err e = {0};
	if (sifu_atomic_commit(&w->out, 0755, &e) < 0)
		return sifu_err_set(err, SIFU_E_SYS, e.errnum, "cannot write %s", w->path);
	return 0;
}

int sif_writer_commit(struct sif_writer *w, struct sifu_err *err)
{
	int r = commit(w, err);
	sif_writer_abort(w); /* removes the temporary file if it is still there */
	return r;
}

void sif_writer_abort(struct sif_writer *w)
{
	if (!w)
		return;
	sifu_atomic_abort(&w->out); /* removes the temporary file unless renamed */
	free(w->path);
	free(w);
}

int sif_create_empty(const char *path, const char *launch, const struct sif_write_opts *wo,
                     struct sifu_err *err)
{
	struct sif_writer *w;
	int r = sif_writer_create(path, wo, &w, err);
	if (r < 0)
		return r;
	if (launch && (r = sif_writer_set_launch(w, launch, err)) < 0) {
		sif_writer_abort(w);
		return r;
	}
	return sif_writer_commit(w, err);
}

/* ------------------------------------------------- modifying in place */

void sif_add_opts_init(struct sif_add_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->alignment = -1;
	o->time = INT64_MIN;
}

static bool deterministic(const struct sif_header *h)
{
	return sif_uuid_is_nil(h->id) && h->ctime == SIF_TIME_ZERO && h->mtime == SIF_TIME_ZERO;
}

static int64_t mod_time(const struct sif_header *h, const struct sif_write_opts *wo)
{
	return deterministic(h) ? SIF_TIME_ZERO : default_time(wo);
}

/* Open PATH read-write under an exclusive lock (two concurrent siftool-style
 * edits would otherwise both take the same free descriptor). */
static int open_locked(const char *path, struct sif_image **img, struct sifu_err *err)
{
	int r = sif_open_path(path, true, img, err);
	if (r < 0)
		return r;
	if (flock((*img)->fd, LOCK_EX) < 0) {
		r = sifu_err_sys(err, "lock %s", path);
		sif_close(*img);
		*img = NULL;
		return r;
	}
	/* re-read under the lock: another writer may have finished meanwhile */
	struct sif_image *fresh;
	r = sif_open_fd((*img)->fd, &fresh, err);
	if (r < 0) {
		sif_close(*img);
		*img = NULL;
		return sifu_err_wrap(err, "%s", path);
	}
	fresh->own_fd = true;
	(*img)->own_fd = false;
	sif_close(*img);
	*img = fresh;
	return 0;
}

/* Write one descriptor and the header, after checking that the result is a
 * valid image: a modification never produces a file sifu would refuse. */
static int commit_change(const char *path, struct sif_image *img, size_t idx, uint64_t file_size,
                         struct sifu_err *err)
{
	int r = sif_check_descriptors(&img->h, img->d, file_size, err);
	if (r < 0)
		return r;
	uint8_t db[SIF_DESCR_SIZE] = {0};
	if (img->d[idx].used)
		sif_descr_encode(&img->d[idx], db);
	r = pwrite_all(img->fd, db, sizeof(db),
	               (uint64_t)(img->h.doff + (int64_t)idx * SIF_DESCR_SIZE), err);
	if (r < 0)
		return sifu_err_wrap(err, "%s", path);
	uint8_t hb[SIF_HDR_SIZE];
	sif_header_encode(&img->h, hb);
	if ((r = pwrite_all(img->fd, hb, sizeof(hb), 0, err)) < 0)
		return sifu_err_wrap(err, "%s", path);
	if (fsync(img->fd) < 0)
		return sifu_err_sys(err, "sync %s", path);
	return 0;
}

static int copy_in(int dst, uint64_t off, int src, bool digest, char dig[72], int64_t *copied,
                   struct sifu_err *err)
{
	_cleanup_free_ char *buf = sifu_xmalloc(1 << 20);
	EVP_MD_CTX *md = NULL;
	if (digest) {
		md = EVP_MD_CTX_new();
		if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
			abort();
	}
	int64_t n = 0;
	int r = 0;
	for (;;) {
		ssize_t got = read(src, buf, 1 << 20);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = sifu_err_sys(err, "read the object");
			break;
		}
		if (got == 0)
			break;
		if (md)
			EVP_DigestUpdate(md, buf, (size_t)got);
		if ((r = pwrite_all(dst, buf, (size_t)got, off + (uint64_t)n, err)) < 0)
			break;
		n += got;
	}
	if (md) {
		unsigned char h[32];
		unsigned hl = 0;
		EVP_DigestFinal_ex(md, h, &hl);
		EVP_MD_CTX_free(md);
		int o = snprintf(dig, 72, "sha256:");
		for (unsigned i = 0; i < hl; i++)
			o += snprintf(dig + o, 72 - (size_t)o, "%02x", h[i]);
	}
	*copied = n;
	return r;
}

static int fill_extra(struct sif_descr *d, const struct sif_add_opts *o, const char *dig,
                      struct sif_header *h, struct sifu_err *err)
{
	memset(d->extra, 0, sizeof(d->extra));
	switch (o->datatype) {
	case SIF_DT_PARTITION: {
		const char *code = sif_arch_code(o->arch ? o->arch : "");
		if (!code)
			return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "unknown architecture '%s'",
			                    o->arch ? o->arch : "");
		put_partition(d, o->fstype, o->parttype, code);
		if (o->parttype == SIF_PART_PRIMSYS)
			memcpy(h->arch, code, 3);
		break;
	}
	case SIF_DT_SIGNATURE:
		put_i32(d->extra, o->hashtype);
		memcpy(d->extra + 4, o->entity, 20);
		break;
	case SIF_DT_CRYPTO_MESSAGE:
		put_i32(d->extra, o->format);
		put_i32(d->extra + 4, o->message);
		break;
	case SIF_DT_SBOM: put_i32(d->extra, o->sbom); break;
	case SIF_DT_OCI_BLOB:
	case SIF_DT_OCI_ROOT_INDEX: memcpy(d->extra, dig, strlen(dig)); break;
	}
	return 0;
}

static bool group_in(const struct sif_image *img, uint32_t raw)
{
	for (int64_t i = 0; i < img->h.dtotal; i++)
		if (img->d[i].used && img->d[i].groupid == raw)
			return true;
	return false;
}

/* The first free descriptor of IMG, and the id its object gets. */
static int free_slot(const char *path, const struct sif_image *img, size_t *idx, uint32_t *id,
                     struct sifu_err *err)
{
	size_t i = 0;
	while (i < (size_t)img->h.dtotal && img->d[i].used)
		i++;
	if (i >= (size_t)img->h.dtotal) {
		sifu_err_set(err, SIFU_E_UNSUPPORTED, ENOSPC,
		             "%s: all %" PRId64 " descriptors are in use", path, img->h.dtotal);
		sifu_err_hint(err, "delete an object first, or build the image anew");
		return -ENOSPC;
	}
	uint32_t newid = (uint32_t)i + 1;
	if (sif_get(img, newid)) /* ids out of table order: take one past the largest */
		for (int64_t k = 0; k < img->h.dtotal; k++)
			if (img->d[k].used && img->d[k].id >= newid)
				newid = img->d[k].id + 1;
	*idx = i;
	*id = newid;
	return 0;
}

/* The new object's link must name an object, or a group that exists or
 * that the object itself joins. */
static int check_link(const struct sif_image *img, const struct sif_descr *nd, struct sifu_err *err)
{
	uint32_t link = nd->link;
	bool group = (link & SIF_GROUP_MASK) == SIF_GROUP_MASK;
	if (!link || (group ? group_in(img, link) || nd->groupid == link : !!sif_get(img, link)))
		return 0;
	return sifu_err_set(err, SIFU_E_USAGE, ENOENT,
	                    "object %u field LinkedID: links to %s %u, which does not exist",
	                    nd->id, group ? "group" : "object", link & ~SIF_GROUP_MASK);
}

/* The descriptor of the object O describes, id ID, and the header NH it
 * changes; links and extra fields are checked before a byte is written. */
static int new_descr(const struct sif_image *img, const struct sif_add_opts *o, uint32_t id,
                     struct sif_descr *nd, struct sif_header *nh, struct sifu_err *err)
{
	int r = set_name(nd, o->name, err);
	if (r < 0)
		return r;
	nd->datatype = o->datatype;
	nd->used = 1;
	nd->id = id;
	nd->groupid = SIF_GROUP_MASK | o->groupid;
	nd->link = o->link;
	nd->ctime = nd->mtime = o->time != INT64_MIN ? o->time : mod_time(&img->h, o->write);
	*nh = img->h;
	if ((r = fill_extra(nd, o, "", nh, err)) < 0)
		return r;
	return check_link(img, nd, err);
}

/* Leave the file as it was: drop what a failed add appended. */
static void cut_back(const struct sif_image *img, const char *path)
{
	if (ftruncate(img->fd, (off_t)img->file_size) < 0)
		sifu_debug("sif: could not truncate %s back after a failed add", path);
}

int sif_add_object(const char *path, int srcfd, const struct sif_add_opts *o, uint32_t *id,
                   struct sifu_err *err)
{
	_cleanup_sif_ struct sif_image *img = NULL;
	int r = open_locked(path, &img, err);
	if (r < 0)
		return r;
	if (o->datatype == SIF_DT_PARTITION && o->parttype == SIF_PART_PRIMSYS && sif_primary(img))
		return sifu_err_set(err, SIFU_E_USAGE, EEXIST,
		                    "%s already has a primary partition (object %u)", path,
		                    sif_primary(img)->id);
	size_t idx;
	uint32_t newid;
	struct sif_descr nd = {0};
	struct sif_header nh;
	if ((r = free_slot(path, img, &idx, &newid, err)) < 0 ||
	    (r = new_descr(img, o, newid, &nd, &nh, err)) < 0)
		return r;

	int64_t align = o->alignment >= 0 ? o->alignment
	                                  : (o->datatype == SIF_DT_PARTITION ? SIF_PART_ALIGN : 0);
	int64_t unaligned = img->h.dataoff + img->h.datasize;
	int64_t off = align_up(unaligned, align);
	char dig[72] = "";
	int64_t n = 0;
	bool oci = o->datatype == SIF_DT_OCI_BLOB || o->datatype == SIF_DT_OCI_ROOT_INDEX;
	if ((r = copy_in(img->fd, (uint64_t)off, srcfd, oci, dig, &n, err)) < 0 ||
	    (fdatasync(img->fd) < 0 && (r = sifu_err_sys(err, "sync %s", path)) < 0)) {
		cut_back(img, path);
		return sifu_err_wrap(err, "add to %s", path);
	}
	if (oci)
		memcpy(nd.extra, dig, strlen(dig));
	nd.offset = off;
	nd.size = n;
	nd.padded = off - unaligned + n;
	img->h = nh;
	img->d[idx] = nd;
	img->h.dfree--;
	img->h.datasize += nd.padded;
	img->h.mtime = nd.mtime;
	struct stat st;
	if (fstat(img->fd, &st) < 0)
		return sifu_err_sys(err, "stat %s", path);
	if ((r = commit_change(path, img, idx, (uint64_t)st.st_size, err)) < 0) {
		cut_back(img, path);
		return r;
	}
	*id = newid;
	return 0;
}

static size_t index_of(const struct sif_image *img, const struct sif_descr *d)
{
	return (size_t)(d - img->d);
}

/* Open PATH as open_locked does, and find its object ID. */
static int open_object(const char *path, uint32_t id, struct sif_image **img,
                       const struct sif_descr **d, struct sifu_err *err)
{
	int r = open_locked(path, img, err);
	if (r < 0)
		return r;
	*d = sif_get(*img, id);
	if (!*d)
		return sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT, "%s has no object %u", path, id);
	return 0;
}

int sif_delete_object(const char *path, uint32_t id, bool zero, bool compact,
                      const struct sif_write_opts *wo, struct sifu_err *err)
{
	_cleanup_sif_ struct sif_image *img = NULL;
	const struct sif_descr *d;
	int r = open_object(path, id, &img, &d, err);
	if (r < 0)
		return r;
	size_t idx = index_of(img, d);
	struct sif_descr old = *d;
	int64_t end = old.offset + old.size;
	if (compact)
		for (int64_t i = 0; i < img->h.dtotal; i++)
			if (img->d[i].used && img->d[i].offset + img->d[i].size > end)
				return sifu_err_set(
				    err, SIFU_E_UNSUPPORTED, ENOTSUP,
				    "--compact only works on the last object; object %u "
				    "lies after object %u",
				    img->d[i].id, id);
	struct sif_partinfo p;
	sif_descr_partition(&old, &p);
	if (old.datatype == SIF_DT_PARTITION && p.parttype == SIF_PART_PRIMSYS)
		memcpy(img->h.arch, "00", 3);
	memset(&img->d[idx], 0, sizeof(img->d[idx]));
	img->h.dfree++;
	img->h.mtime = mod_time(&img->h, wo);
	uint64_t file_size = (uint64_t)img->file_size;
	if (compact) {
		img->h.datasize -= old.padded;
		file_size = (uint64_t)(old.offset + old.size - old.padded);
	}
	/* check before touching any byte: a link left dangling is refused */
	r = sif_check_descriptors(&img->h, img->d, file_size, err);
	if (r < 0) {
		sifu_err_wrap(err, "cannot delete object %u from %s", id, path);
		sifu_err_hint(err, "delete the objects that link to it first");
		return r;
	}
	if (zero) {
		static const uint8_t zeros[65536];
		for (int64_t o = 0; o < old.size; o += (int64_t)sizeof(zeros)) {
			size_t n = (size_t)(old.size - o < (int64_t)sizeof(zeros)
			                        ? old.size - o
			                        : (int64_t)sizeof(zeros));
			if ((r = pwrite_all(img->fd, zeros, n, (uint64_t)(old.offset + o), err)) <
			    0)
				return r;
		}
	}
	if ((r = commit_change(path, img, idx, file_size, err)) < 0)
		return r;
	if (compact && ftruncate(img->fd, (off_t)file_size) < 0)
		return sifu_err_sys(err, "truncate %s", path);
	return 0;
}

int sif_set_primary(const char *path, uint32_t id, const struct sif_write_opts *wo,
                    struct sifu_err *err)
{
	_cleanup_sif_ struct sif_image *img = NULL;
	const struct sif_descr *d;
	int r = open_object(path, id, &img, &d, err);
	if (r < 0)
		return r;
	if (d->datatype != SIF_DT_PARTITION)
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "object %u is not a partition (%s)",
		                    id, sif_datatype_name(d->datatype));
	struct sif_partinfo p;
	sif_descr_partition(d, &p);
	if (p.parttype == SIF_PART_PRIMSYS)
		return 0;
	if (p.parttype != SIF_PART_SYSTEM)
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		                    "object %u is not a system partition (%s)", id,
		                    sif_parttype_name(p.parttype));
	int64_t t = mod_time(&img->h, wo);
	const struct sif_descr *old = sif_primary(img);
	if (old) {
		size_t oi = index_of(img, old);
		struct sif_partinfo op;
		sif_descr_partition(old, &op);
		put_partition(&img->d[oi], op.fstype, SIF_PART_SYSTEM, op.arch);
		img->d[oi].mtime = t;
		/* two descriptors change: write the old primary's first */
		if ((r = commit_change(path, img, oi, img->file_size, err)) < 0)
			return r;
	}
	size_t idx = index_of(img, d);
	put_partition(&img->d[idx], p.fstype, SIF_PART_PRIMSYS, p.arch);
	img->d[idx].mtime = t;
	memcpy(img->h.arch, p.arch, 3);
	img->h.mtime = t;
	return commit_change(path, img, idx, img->file_size, err);
}
