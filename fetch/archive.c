/* SPDX-License-Identifier: BSD-3-Clause */
/* Local sources: an OCI layout directory (oci:DIR[:tag]), and archives
 * (oci-archive:FILE, docker-archive:FILE).  From an archive, the blobs the
 * chosen image references, and nothing else, go into the blob cache (see
 * "archives" below); the pull then reads them from there.  Nothing but those
 * blobs touches the disk. */
#include "fetch_priv.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>

#define META_MAX (8u << 20)

struct small { /* an archive member held in memory */
	char hex[FETCH_HEX_LEN + 1];
	char *data;
	size_t len;
};

struct wanted { /* a blob the chosen manifest references */
	char hex[FETCH_HEX_LEN + 1];
	uint64_t size;
	bool done;
};

struct local {
	struct fetch_source base;
	/* a manifest or index blob, read whole and verified: from the layout
	 * directory, or from the archive (see archive_read_manifest) */
	int (*read_manifest)(struct local *l, const char *digest, char **out, size_t *len,
	                     struct sifu_err *err);
	int blobdir; /* a directory holding <hex> files */
	char *what;  /* for messages: the path */
	char *tag;
	char *index; /* index.json (docker-archive: manifest.json) */
	size_t index_len;
	char *manifest; /* docker-archive: a manifest made from manifest.json */
	size_t manifest_len;
	/* archives */
	int afd; /* the archive, opened once and read in passes */
	struct fetch_cache *cache;
	struct small *small;
	size_t nsmall;
	uint64_t small_total;
	struct wanted *want;
	size_t nwant;
};

/* *OUT (LEN bytes, read as blob DIGEST, hex HEX) must have that digest;
 * otherwise it is freed and the error names both. */
static int check_read_blob(struct local *l, const char *digest, const char *hex, char **out,
                           size_t len, struct sifu_err *err)
{
	char got[FETCH_HEX_LEN + 1];
	fetch_sha256_buf(*out, len, got);
	if (strcmp(got, hex) == 0)
		return 0;
	free(*out);
	*out = NULL;
	return sifu_err_set(err, SIFU_E_VERIFY, 0, "%s: blob %s has the digest sha256:%s", l->what,
	                    digest, got);
}

/* NAME in the layout directory DIRFD, read whole (at most MAX bytes); like
 * the blobs handed out (local_open_blob), never through a symbolic link. */
static int read_layout_file(int dirfd, const char *name, size_t max, char **out, size_t *len,
                            struct sifu_err *err)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return sifu_err_sys(err, "%s", name);
	return sifu_read_fd(fd, name, max, out, len, err);
}

static int dir_read_manifest(struct local *l, const char *digest, char **out, size_t *len,
                             struct sifu_err *err)
{
	char hex[FETCH_HEX_LEN + 1];
	if (fetch_digest_parse(digest, hex, err) < 0)
		return -EINVAL;
	int r = read_layout_file(l->blobdir, hex, META_MAX, out, len, err);
	if (r < 0) {
		if (err->errnum == ENOENT)
			sifu_err_hint(err, "%s lacks blob %s: the layout is incomplete", l->what,
			              digest);
		return r;
	}
	return check_read_blob(l, digest, hex, out, *len, err);
}

static int pick_from_index(struct local *l, struct fetch_blob *out, struct sifu_err *err)
{
	json_t *j = fetch_json_parse(l->index, l->index_len, "index.json", err);
	if (!j)
		return -EINVAL;
	json_t *ms = json_object_get(j, "manifests");
	json_t *m, *pick = NULL;
	size_t i, n = json_array_size(ms);
	_cleanup_buf_ struct sifu_buf names = {0};
	json_array_foreach(ms, i, m)
	{
		const char *name = json_string_value(json_object_get(
		    json_object_get(m, "annotations"), "org.opencontainers.image.ref.name"));
		if (name)
			sifu_buf_printf(&names, "%s%s", names.len ? ", " : "", name);
		if (l->tag ? (name && strcmp(name, l->tag) == 0) : n == 1)
			pick = m;
	}
	int r;
	if (!pick) {
		r = sifu_err_set(err, SIFU_E_NOTFOUND, 0, "%s: %s%s%s", l->what,
		                 l->tag ? "no image tagged " : "",
		                 l->tag ? l->tag : "more than one image and no tag given", "");
		sifu_err_hint(err, "its tags: %s; name one as %s:TAG",
		              names.len ? names.p : "(none)", l->what);
	} else {
		const char *d = json_string_value(json_object_get(pick, "digest"));
		json_t *size = json_object_get(pick, "size");
		r = d && strlen(d) < sizeof(out->digest)
		        ? 0
		        : sifu_err_set(err, SIFU_E_CORRUPT, 0, "index.json: bad descriptor");
		if (!r) {
			snprintf(out->digest, sizeof(out->digest), "%s", d);
			out->size = json_is_integer(size) ? (uint64_t)json_integer_value(size) : 0;
		}
	}
	json_decref(j);
	return r;
}

/* The manifest a source was asked for: 1 when it is the one already in memory
 * (a docker-archive's), else 0 with *DIGEST the one to read (the index's
 * choice when none was asked for; B holds it). */
static int manifest_to_read(struct local *l, const char **digest, struct fetch_blob *b, char **out,
                            size_t *len, struct sifu_err *err)
{
	if (!*digest && l->manifest) {
		*out = sifu_xmalloc(l->manifest_len + 1);
		memcpy(*out, l->manifest, l->manifest_len + 1);
		*len = l->manifest_len;
		return 1;
	}
	if (*digest)
		return 0;
	int r = pick_from_index(l, b, err);
	if (r < 0)
		return r;
	*digest = b->digest;
	return 0;
}

static int local_get_manifest(struct fetch_source *s, const char *digest, char **out, size_t *len,
                              struct sifu_err *err)
{
	struct local *l = (struct local *)s;
	struct fetch_blob b = {0};
	int r = manifest_to_read(l, &digest, &b, out, len, err);
	if (r != 0)
		return r < 0 ? r : 0;
	return l->read_manifest(l, digest, out, len, err);
}

static int local_open_blob(struct fetch_source *s, const struct fetch_blob *b, struct sifu_err *err)
{
	struct local *l = (struct local *)s;
	char hex[FETCH_HEX_LEN + 1];
	if (fetch_digest_parse(b->digest, hex, err) < 0)
		return -EINVAL;
	int fd = openat(l->blobdir, hex, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return sifu_err_sys(err, "%s: blob %s", l->what, b->digest);
	return fd;
}

static void local_free(struct fetch_source *s)
{
	struct local *l = (struct local *)s;
	sifu_closep(&l->blobdir);
	sifu_closep(&l->afd);
	for (size_t i = 0; i < l->nsmall; i++)
		free(l->small[i].data);
	SIFU_FREE_MANY(l->what, l->tag, l->index, l->manifest, l->small, l->want, l);
}

static struct local *local_new(const struct fetch_ref *ref)
{
	struct local *l = sifu_xmalloc(sizeof(*l));
	*l = (struct local){
	    .base = {.get_manifest = local_get_manifest,
	             .open_blob = local_open_blob,
	             .free = local_free},
	    .read_manifest = dir_read_manifest,
	    .blobdir = -1,
	    .afd = -1,
	    .what = sifu_xstrdup(ref->path),
	    .tag = ref->tag ? sifu_xstrdup(ref->tag) : NULL,
	};
	return l;
}

int fetch_source_oci_dir(const struct fetch_ref *ref, struct fetch_source **out,
                         struct sifu_err *err)
{
	struct local *l = local_new(ref);
	_cleanup_close_ int dfd = open(ref->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int r = 0;
	if (dfd < 0)
		r = sifu_err_sys(err, "oci:%s", ref->path);
	else if ((l->blobdir = openat(dfd, "blobs/sha256", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		r = sifu_err_sys(err, "oci:%s: not an OCI layout (blobs/sha256)", ref->path);
	else
		r = read_layout_file(dfd, "index.json", META_MAX, &l->index, &l->index_len, err);
	if (r < 0) {
		local_free(&l->base);
		return r;
	}
	*out = &l->base;
	return 0;
}

/* ---------------------------------------------------------------- archives
 *
 * Only what the chosen image references reaches the cache: the archive is
 * read in passes over the one open file (an uncompressed tar skips the data
 * of other members by seeking, so a pass costs little more than its headers;
 * a compressed one is decompressed each time).  OCI: index.json, then the
 * manifest it names (an index's platform manifest), then the config and the
 * layers of that manifest, each verified against its digest and size as it
 * is committed.  docker-archive: manifest.json, then the members its Config
 * and Layers name, hashed as they are imported (a name that carries a
 * digest is checked against it; the layers' diff_ids in the config check
 * the rest as the layers are read). */

#define SMALL_MAX       (256u << 10) /* members kept in memory as they pass... */
#define SMALL_TOTAL_MAX (8u << 20)   /* ...up to this much in all */

static bool blob_name(const char *name, char hex[FETCH_HEX_LEN + 1])
{
	while (name[0] == '.' && name[1] == '/')
		name += 2;
	if (strncmp(name, "blobs/sha256/", 13) != 0)
		return false;
	struct sifu_err e = {0};
	char d[80];
	snprintf(d, sizeof(d), "sha256:%s", name + 13);
	return fetch_digest_parse(d, hex, &e) == 0;
}

static const char *clean_name(const char *n)
{
	while (n[0] == '.' && n[1] == '/')
		n += 2;
	while (n[0] == '/')
		n++;
	return n;
}

/* The current member's data into memory (at most MAX bytes). */
static int read_member(struct archive *a, size_t max, char **out, size_t *len, struct sifu_err *err)
{
	_cleanup_buf_ struct sifu_buf b = {0};
	char buf[65536];
	la_ssize_t n;
	while ((n = archive_read_data(a, buf, sizeof(buf))) > 0) {
		if (b.len + (size_t)n > max)
			return sifu_err_set(err, SIFU_E_RANGE, 0, "larger than %zu bytes", max);
		sifu_buf_add(&b, buf, (size_t)n);
	}
	if (n < 0)
		return sifu_err_set(err, SIFU_E_CORRUPT, 0, "%s", archive_error_string(a));
	*len = b.len;
	*out = sifu_buf_take(&b);
	return 0;
}

typedef int (*member_fn)(struct local *l, struct archive *a, struct archive_entry *ae,
                         const char *name, void *ctx, struct sifu_err *err);

/* One pass over the archive: FN sees every regular member (returns < 0 to
 * fail, 1 to stop early). */
static int scan(struct local *l, member_fn fn, void *ctx, struct sifu_err *err)
{
	if (lseek(l->afd, 0, SEEK_SET) < 0)
		return sifu_err_sys(err, "%s", l->what);
	struct archive *a = archive_read_new();
	archive_read_support_format_tar(a);
	archive_read_support_filter_all(a);
	int r = 0;
	if (archive_read_open_fd(a, l->afd, 1 << 20) != ARCHIVE_OK) {
		r = sifu_err_set(err, SIFU_E_CORRUPT, 0, "%s: %s", l->what,
		                 archive_error_string(a));
		goto out;
	}
	struct archive_entry *ae;
	int ar;
	while ((ar = archive_read_next_header(a, &ae)) == ARCHIVE_OK || ar == ARCHIVE_WARN) {
		if (archive_entry_filetype(ae) != AE_IFREG || archive_entry_hardlink(ae))
			continue;
		const char *name = clean_name(archive_entry_pathname(ae) ?: "");
		r = fn(l, a, ae, name, ctx, err);
		if (r < 0) {
			sifu_err_wrap(err, "%s: %s", l->what, name);
			goto out;
		}
		if (r == 1) {
			r = 0;
			goto out;
		}
	}
	if (ar != ARCHIVE_EOF)
		r = sifu_err_set(err, SIFU_E_CORRUPT, 0, "%s: %s", l->what,
		                 archive_error_string(a));
out:
	archive_read_free(a);
	return r;
}

static const struct small *find_small(struct local *l, const char *hex)
{
	for (size_t i = 0; i < l->nsmall; i++)
		if (!strcmp(l->small[i].hex, hex))
			return &l->small[i];
	return NULL;
}

static void keep_small(struct local *l, const char *hex, char *data, size_t len)
{
	l->small = sifu_xrealloc(l->small, (l->nsmall + 1) * sizeof(*l->small));
	struct small *m = &l->small[l->nsmall++];
	memcpy(m->hex, hex, sizeof(m->hex));
	m->data = data;
	m->len = len;
	l->small_total += len;
}

/* First pass: the top-level JSON (index.json or manifest.json) and, in
 * memory, the small blobs (manifests and configs, usually). */
static int first_member(struct local *l, struct archive *a, struct archive_entry *ae,
                        const char *name, void *ctx, struct sifu_err *err)
{
	const char *top = ctx;
	char hex[FETCH_HEX_LEN + 1];
	int64_t size = archive_entry_size(ae);
	if (!l->index && !strcmp(name, top))
		return read_member(a, META_MAX, &l->index, &l->index_len, err);
	if (!strcmp(top, "index.json") && blob_name(name, hex) && size >= 0 &&
	    (uint64_t)size <= SMALL_MAX && l->small_total + (uint64_t)size <= SMALL_TOTAL_MAX &&
	    !find_small(l, hex)) {
		char *data = NULL;
		size_t len = 0;
		int r = read_member(a, SMALL_MAX, &data, &len, err);
		if (r < 0)
			return r;
		keep_small(l, hex, data, len);
	}
	return 0;
}

struct want_one {
	const char *hex;
	char *data;
	size_t len;
};

static int one_member(struct local *l, struct archive *a, struct archive_entry *ae,
                      const char *name, void *ctx, struct sifu_err *err)
{
	struct want_one *w = ctx;
	char hex[FETCH_HEX_LEN + 1];
	if (!blob_name(name, hex) || strcmp(hex, w->hex) != 0)
		return 0;
	int r = read_member(a, META_MAX, &w->data, &w->len, err);
	return r < 0 ? r : 1;
}

/* A manifest or index blob of the archive, verified. */
static int archive_small_blob(struct local *l, const char *digest, char **out, size_t *len,
                              struct sifu_err *err)
{
	char hex[FETCH_HEX_LEN + 1];
	if (fetch_digest_parse(digest, hex, err) < 0)
		return -EINVAL;
	const struct small *m = find_small(l, hex);
	if (m) {
		*out = sifu_xmalloc(m->len + 1);
		memcpy(*out, m->data, m->len);
		(*out)[m->len] = 0;
		*len = m->len;
	} else {
		struct want_one w = {.hex = hex};
		int r = scan(l, one_member, &w, err);
		if (r < 0)
			return r;
		if (!w.data)
			return sifu_err_set(err, SIFU_E_CORRUPT, ENOENT, "%s lacks blob %s",
			                    l->what, digest);
		*out = w.data;
		*len = w.len;
	}
	return check_read_blob(l, digest, hex, out, *len, err);
}

/* Copy the current member (or, with A NULL, DATA) into the cache as HEX;
 * HEX "" means "whatever its sha256 is" (then filled in).  SIZE: what it
 * must be, or UINT64_MAX. */
static int import_member(struct archive *a, const char *data, size_t dlen, struct fetch_cache *c,
                         char hex[FETCH_HEX_LEN + 1], uint64_t size, struct sifu_err *err)
{
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = fetch_cache_tmp(c, &tmp, err);
	if (fd < 0)
		return fd;
	struct fetch_sha256 h;
	fetch_sha256_init(&h);
	_cleanup_free_ char *buf = a ? sifu_xmalloc(1 << 20) : NULL;
	uint64_t total = 0;
	int r = 0;
	for (bool once = false;;) {
		la_ssize_t n;
		const char *p = buf;
		if (a) {
			n = archive_read_data(a, buf, 1 << 20);
		} else {
			n = once ? 0 : (la_ssize_t)dlen;
			p = data;
			once = true;
		}
		if (n < 0) {
			r = sifu_err_set(err, SIFU_E_CORRUPT, 0, "%s", archive_error_string(a));
			break;
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		if (size != UINT64_MAX && total > size) {
			/* stop at the descriptor's size: a member larger than the
			 * manifest says is not written on */
			r = sifu_err_set(err, SIFU_E_VERIFY, 0,
			                 "larger than the %llu bytes the manifest gives",
			                 (unsigned long long)size);
			break;
		}
		fetch_sha256_update(&h, p, (size_t)n);
		for (la_ssize_t off = 0; off < n;) {
			ssize_t w = write(fd, p + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				r = sifu_err_sys(err, "writing to the cache");
				break;
			}
			off += w;
		}
		if (r)
			break;
	}
	char got[FETCH_HEX_LEN + 1];
	fetch_sha256_final_hex(&h, got);
	fetch_sha256_free(&h);
	if (r < 0) {
		fetch_cache_discard(c, tmp);
		return r;
	}
	if (!hex[0])
		memcpy(hex, got, sizeof(got));
	return fetch_cache_commit(c, tmp, fd, hex, size, err);
}

/* ------------------------------------------------------------ OCI archive */

static bool cached(struct local *l, const char *hex)
{
	int fd = fetch_cache_open_blob(l->cache, hex);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static int import_wanted(struct local *l, struct archive *a, struct archive_entry *ae,
                         const char *name, void *ctx, struct sifu_err *err)
{
	(void)ctx;
	(void)ae;
	char hex[FETCH_HEX_LEN + 1];
	if (!blob_name(name, hex))
		return 0;
	size_t left = 0;
	for (size_t i = 0; i < l->nwant; i++) {
		struct wanted *w = &l->want[i];
		if (!w->done && !strcmp(w->hex, hex)) {
			int r = import_member(a, NULL, 0, l->cache, hex, w->size, err);
			if (r < 0)
				return r;
			w->done = true;
		}
		left += !w->done;
	}
	return left ? 0 : 1;
}

/* Everything the chosen manifest references, into the cache. */
static int import_referenced(struct local *l, struct sifu_err *err)
{
	size_t left = 0;
	for (size_t i = 0; i < l->nwant; i++) {
		struct wanted *w = &l->want[i];
		const struct small *m = w->done ? NULL : find_small(l, w->hex);
		if (!w->done && cached(l, w->hex))
			w->done = true;
		else if (m) {
			char hex[FETCH_HEX_LEN + 1];
			memcpy(hex, w->hex, sizeof(hex));
			int r = import_member(NULL, m->data, m->len, l->cache, hex, w->size, err);
			if (r < 0)
				return sifu_err_wrap(err, "%s: blob sha256:%s", l->what, w->hex);
			w->done = true;
		}
		left += !w->done;
	}
	int r = left ? scan(l, import_wanted, NULL, err) : 0;
	for (size_t i = 0; r == 0 && i < l->nwant; i++)
		if (!l->want[i].done)
			r = sifu_err_set(err, SIFU_E_CORRUPT, ENOENT, "%s lacks blob sha256:%s",
			                 l->what, l->want[i].hex);
	return r;
}

static void want_add(struct local *l, const char *hex, uint64_t size)
{
	for (size_t i = 0; i < l->nwant; i++)
		if (!strcmp(l->want[i].hex, hex))
			return;
	l->want = sifu_xrealloc(l->want, (l->nwant + 1) * sizeof(*l->want));
	struct wanted *w = &l->want[l->nwant++];
	memcpy(w->hex, hex, sizeof(w->hex));
	w->size = size;
	w->done = false;
}

/* The image manifest the pull will use: what it references is what may be
 * imported. */
static int archive_note_manifest(struct local *l, const char *json, size_t len,
                                 struct sifu_err *err)
{
	struct sifu_err quiet = {0};
	if (fetch_manifest_kind(json, len, &quiet) != 0)
		return 0; /* an index: its platform's manifest comes next */
	struct fetch_manifest m = {0};
	int r = fetch_manifest_parse(json, len, &m, err);
	if (r < 0)
		return r;
	l->nwant = 0;
	char hex[FETCH_HEX_LEN + 1];
	if ((r = fetch_digest_parse(m.config.digest, hex, err)) == 0)
		want_add(l, hex, m.config.size);
	for (size_t i = 0; r == 0 && i < m.nlayers; i++)
		if ((r = fetch_digest_parse(m.layers[i].digest, hex, err)) == 0)
			want_add(l, hex, m.layers[i].size);
	fetch_manifest_free(&m);
	return r;
}

/* An archive's manifest: what it references is noted as what may be
 * imported. */
static int archive_read_manifest(struct local *l, const char *digest, char **out, size_t *len,
                                 struct sifu_err *err)
{
	int r = archive_small_blob(l, digest, out, len, err);
	if (r == 0 && (r = archive_note_manifest(l, *out, *len, err)) < 0) {
		free(*out);
		*out = NULL;
	}
	return r;
}

static int archive_open_blob(struct fetch_source *s, const struct fetch_blob *b,
                             struct sifu_err *err)
{
	struct local *l = (struct local *)s;
	char hex[FETCH_HEX_LEN + 1];
	int fd, r = fetch_cache_find(l->cache, b->digest, hex, &fd, err);
	if (r != 0)
		return r < 0 ? r : fd;
	bool known = false;
	for (size_t i = 0; i < l->nwant && !known; i++)
		known = !strcmp(l->want[i].hex, hex);
	if (!known) /* only what the manifest references is ever imported */
		return sifu_err_set(err, SIFU_E_CORRUPT, EINVAL,
		                    "%s: blob %s is not referenced by the image's manifest",
		                    l->what, b->digest);
	r = import_referenced(l, err);
	if (r < 0)
		return r;
	fd = fetch_cache_open_blob(l->cache, hex);
	return fd >= 0 ? fd : sifu_err_sys(err, "%s/blobs/sha256/%s", l->cache->dir, hex);
}

/* --------------------------------------------------------- docker-archive */

struct docker_member {
	const char *name; /* as manifest.json gives it, cleaned */
	bool config, done;
	char hex[FETCH_HEX_LEN + 1];
	uint64_t size;
};

struct docker_import {
	struct docker_member *m;
	size_t n;
};

/* The digest a docker-archive member's name carries: blobs/sha256/<hex>
 * (newer docker save) or, for the config, <hex>.json (the image id). */
static bool docker_name_digest(const struct docker_member *d, char hex[FETCH_HEX_LEN + 1])
{
	if (blob_name(d->name, hex))
		return true;
	size_t len = strlen(d->name);
	if (!d->config || len != FETCH_HEX_LEN + 5 || strcmp(d->name + FETCH_HEX_LEN, ".json"))
		return false;
	char dg[80];
	struct sifu_err e = {0};
	snprintf(dg, sizeof(dg), "sha256:%.64s", d->name);
	return fetch_digest_parse(dg, hex, &e) == 0;
}

static int docker_read_member(struct local *l, struct archive *a, struct archive_entry *ae,
                              const char *name, void *ctx, struct sifu_err *err)
{
	struct docker_import *di = ctx;
	size_t left = 0;
	for (size_t i = 0; i < di->n; i++) {
		struct docker_member *d = &di->m[i];
		if (!d->done && !strcmp(d->name, name)) {
			char hex[FETCH_HEX_LEN + 1] = "";
			int64_t size = archive_entry_size(ae);
			if (size < 0)
				return sifu_err_set(err, SIFU_E_CORRUPT, 0, "no size");
			/* a name that carries a digest is checked against it;
			 * any other gets the digest of what it holds */
			bool named = docker_name_digest(d, hex);
			if (!named || !cached(l, hex)) {
				if (!named)
					hex[0] = 0;
				int r =
				    import_member(a, NULL, 0, l->cache, hex, (uint64_t)size, err);
				if (r < 0)
					return r;
			}
			memcpy(d->hex, hex, sizeof(hex));
			d->size = (uint64_t)size;
			d->done = true;
			/* the same member named twice (a layer used twice) */
			for (size_t k = i + 1; k < di->n; k++)
				if (!di->m[k].done && !strcmp(di->m[k].name, name)) {
					memcpy(di->m[k].hex, hex, sizeof(hex));
					di->m[k].size = d->size;
					di->m[k].done = true;
				}
		}
		left += !d->done;
	}
	return left ? 0 : 1;
}

/* docker save's manifest.json -> a schema 2 manifest over the cached blobs,
 * importing the config and the layers it names (and nothing else). */
static int docker_manifest(struct local *l, struct sifu_err *err)
{
	if (!l->index)
		return sifu_err_set(err, SIFU_E_CORRUPT, 0,
		                    "%s: no manifest.json (is it a "
		                    "docker save archive?)",
		                    l->what);
	json_t *j = fetch_json_parse(l->index, l->index_len, "manifest.json", err);
	if (!j)
		return -EINVAL;
	json_t *img = NULL, *e;
	size_t i;
	json_array_foreach(j, i, e)
	{
		json_t *tags = json_object_get(e, "RepoTags"), *t;
		size_t k;
		if (!l->tag && json_array_size(j) == 1)
			img = e;
		json_array_foreach(tags, k, t)
		{
			const char *s = json_string_value(t);
			if (l->tag && s && strcmp(s, l->tag) == 0)
				img = e;
		}
	}
	_cleanup_buf_ struct sifu_buf b = {0};
	struct docker_import di = {0};
	int r = 0;
	const char *cfg = img ? json_string_value(json_object_get(img, "Config")) : NULL;
	if (!img || !cfg) {
		r = sifu_err_set(err, SIFU_E_NOTFOUND, 0, "%s: %s", l->what,
		                 img ? "the image config is missing"
		                     : "several images and no (matching) NAME:TAG given");
		goto out;
	}
	json_t *layers = json_object_get(img, "Layers"), *lay;
	di.m = sifu_xcalloc(json_array_size(layers) + 1, sizeof(*di.m));
	di.m[di.n++] = (struct docker_member){.name = clean_name(cfg), .config = true};
	json_array_foreach(layers, i, lay)
	{
		const char *n = json_string_value(lay);
		if (!n) {
			r = sifu_err_set(err, SIFU_E_CORRUPT, 0,
			                 "%s: manifest.json: a layer is not a name", l->what);
			goto out;
		}
		di.m[di.n++] = (struct docker_member){.name = clean_name(n)};
	}
	if ((r = scan(l, docker_read_member, &di, err)) < 0)
		goto out;
	for (i = 0; i < di.n; i++)
		if (!di.m[i].done) {
			r = sifu_err_set(err, SIFU_E_CORRUPT, 0, "%s: %s %s is missing", l->what,
			                 di.m[i].config ? "the config" : "layer", di.m[i].name);
			goto out;
		}
	sifu_buf_printf(&b,
	                "{\"schemaVersion\":2,\"mediaType\":"
	                "\"application/vnd.docker.distribution.manifest.v2+json\","
	                "\"config\":{\"mediaType\":\"application/vnd.docker.container.image."
	                "v1+json\",\"digest\":\"sha256:%s\",\"size\":%llu},\"layers\":[",
	                di.m[0].hex, (unsigned long long)di.m[0].size);
	for (i = 1; i < di.n; i++) {
		sifu_buf_printf(&b,
		                "%s{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar\","
		                "\"digest\":\"sha256:%s\",\"size\":%llu}",
		                i > 1 ? "," : "", di.m[i].hex, (unsigned long long)di.m[i].size);
		want_add(l, di.m[i].hex, di.m[i].size);
	}
	want_add(l, di.m[0].hex, di.m[0].size);
	sifu_buf_printf(&b, "]}");
	l->manifest_len = b.len;
	l->manifest = sifu_buf_take(&b);
out:
	free(di.m);
	json_decref(j);
	return r;
}

int fetch_source_archive(const struct fetch_ref *ref, struct fetch_cache *cache,
                         struct fetch_source **out, struct sifu_err *err)
{
	struct local *l = local_new(ref);
	l->read_manifest = archive_read_manifest;
	l->base.open_blob = archive_open_blob;
	l->cache = cache;
	bool docker = ref->transport == FETCH_DOCKER_ARCHIVE;
	struct stat st;
	int r = 0;
	l->afd = open(ref->path, O_RDONLY | O_CLOEXEC);
	if (l->afd < 0 || fstat(l->afd, &st) < 0)
		r = sifu_err_sys(err, "%s", ref->path);
	else if (!S_ISREG(st.st_mode))
		/* it is read more than once */
		r = sifu_err_set(err, SIFU_E_UNSUPPORTED, EINVAL, "%s is not a regular file",
		                 ref->path);
	if (r == 0)
		r = scan(l, first_member, (void *)(docker ? "manifest.json" : "index.json"), err);
	if (r == 0 && docker)
		r = docker_manifest(l, err);
	else if (r == 0 && !l->index)
		r = sifu_err_set(err, SIFU_E_CORRUPT, 0, "%s: no index.json: not an OCI archive",
		                 ref->path);
	if (r < 0) {
		local_free(&l->base);
		return r;
	}
	*out = &l->base;
	return 0;
}
