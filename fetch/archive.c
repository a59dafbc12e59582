/* SPDX-License-Identifier: BSD-3-Clause */
/* Local sources: an OCI layout directory (oci:DIR[:tag]), and archives
 * (oci-archive:FILE, docker-archive:FILE).  Archives are read once, front to
 * back, and every file in them goes into the blob cache under its sha256
 * (verified against its name when it is named blobs/sha256/<hex>); after that
 * both kinds read like a directory of blobs.  Nothing but blobs touches the
 * disk. */
#include "fetch-private.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>

#define META_MAX (8u << 20)

struct named {
	char *name;
	char hex[FETCH_HEX_LEN + 1];
	uint64_t size;
};

struct local {
	struct fetch_source base;
	int blobdir; /* a directory holding <hex> files */
	char *what;  /* for messages: the path */
	char *tag;
	char *index; /* index.json */
	size_t index_len;
	char *manifest; /* docker-archive: a manifest made from manifest.json */
	size_t manifest_len;
	struct named *files; /* archive member -> blob */
	size_t nfiles;
};

static int read_blob(struct local *l, const char *digest, size_t max, char **out, size_t *len,
                     struct sifu_err *err)
{
	char hex[FETCH_HEX_LEN + 1], got[FETCH_HEX_LEN + 1];
	if (fetch_digest_parse(digest, hex, err) < 0)
		return -EINVAL;
	int r = fetch_read_file_at(l->blobdir, hex, max, out, len, err);
	if (r < 0) {
		if (err->errnum == ENOENT)
			sifu_err_hint(err, "%s lacks blob %s: the layout is incomplete", l->what,
			              digest);
		return r;
	}
	fetch_sha256_buf(*out, *len, got);
	if (strcmp(got, hex) != 0) {
		free(*out);
		*out = NULL;
		return sifu_err_set(err, SIFU_E_VERIFY, 0, "%s: blob %s has the digest sha256:%s",
		                    l->what, digest, got);
	}
	return 0;
}

static int pick_from_index(struct local *l, struct fetch_blob *out, struct sifu_err *err)
{
	json_t *j = fetch_json_parse(l->index, l->index_len, "index.json", err);
	if (!j)
		return -EINVAL;
	json_t *ms = json_object_get(j, "manifests");
	json_t *m, *pick = NULL;
	size_t i, n = json_array_size(ms);
	struct sifu_buf names = {0};
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
	free(names.p);
	json_decref(j);
	return r;
}

static int local_get_manifest(struct fetch_source *s, const char *digest, char **out, size_t *len,
                              struct sifu_err *err)
{
	struct local *l = (struct local *)s;
	if (!digest && l->manifest) {
		*out = sifu_xmalloc(l->manifest_len + 1);
		memcpy(*out, l->manifest, l->manifest_len + 1);
		*len = l->manifest_len;
		return 0;
	}
	struct fetch_blob b = {0};
	if (!digest) {
		int r = pick_from_index(l, &b, err);
		if (r < 0)
			return r;
		digest = b.digest;
	}
	return read_blob(l, digest, META_MAX, out, len, err);
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
	if (l->blobdir >= 0)
		close(l->blobdir);
	free(l->what);
	free(l->tag);
	free(l->index);
	free(l->manifest);
	for (size_t i = 0; i < l->nfiles; i++)
		free(l->files[i].name);
	free(l->files);
	free(l);
}

static struct local *local_new(const struct fetch_ref *ref)
{
	struct local *l = sifu_xcalloc(1, sizeof(*l));
	l->base.get_manifest = local_get_manifest;
	l->base.open_blob = local_open_blob;
	l->base.free = local_free;
	l->blobdir = -1;
	l->what = sifu_xstrdup(ref->path);
	l->tag = ref->tag ? sifu_xstrdup(ref->tag) : NULL;
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
		r = fetch_read_file_at(dfd, "index.json", META_MAX, &l->index, &l->index_len, err);
	if (r < 0) {
		local_free(&l->base);
		return r;
	}
	*out = &l->base;
	return 0;
}

/* ---------------------------------------------------------------- archives */

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

/* Copy the current member into the cache; HEX is its name-given digest or
 * "" (then it is computed). */
static int import_member(struct archive *a, struct fetch_cache *c, char hex[FETCH_HEX_LEN + 1],
                         int64_t size, struct sifu_err *err)
{
	if (hex[0]) {
		int fd = fetch_cache_open_blob(c, hex);
		if (fd >= 0) {
			close(fd);
			return 0; /* already verified and cached: the data is skipped */
		}
	}
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = fetch_cache_tmp(c, &tmp, err);
	if (fd < 0)
		return fd;
	struct fetch_sha256 h;
	fetch_sha256_init(&h);
	_cleanup_free_ char *buf = sifu_xmalloc(1 << 20);
	int r = 0;
	for (;;) {
		la_ssize_t n = archive_read_data(a, buf, 1 << 20);
		if (n < 0) {
			r = sifu_err_set(err, SIFU_E_CORRUPT, 0, "%s", archive_error_string(a));
			break;
		}
		if (n == 0)
			break;
		fetch_sha256_update(&h, buf, (size_t)n);
		for (la_ssize_t off = 0; off < n;) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				r = sifu_err_sys(err, "writing %s", tmp);
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
		unlink(tmp);
		return r;
	}
	if (!hex[0])
		memcpy(hex, got, sizeof(got));
	return fetch_cache_commit(c, tmp, fd, hex, (uint64_t)size, err);
}

static int import_archive(struct local *l, const char *path, struct fetch_cache *c,
                          struct sifu_err *err)
{
	struct archive *a = archive_read_new();
	archive_read_support_format_tar(a);
	archive_read_support_filter_all(a);
	int r = 0;
	if (archive_read_open_filename(a, path, 1 << 20) != ARCHIVE_OK) {
		r = sifu_err_set(err, SIFU_E_CORRUPT, errno, "%s: %s", path,
		                 archive_error_string(a));
		goto out;
	}
	struct archive_entry *ae;
	int ar;
	while ((ar = archive_read_next_header(a, &ae)) == ARCHIVE_OK || ar == ARCHIVE_WARN) {
		if (archive_entry_filetype(ae) != AE_IFREG || archive_entry_hardlink(ae))
			continue;
		const char *name = clean_name(archive_entry_pathname(ae) ?: "");
		int64_t size = archive_entry_size(ae);
		char hex[FETCH_HEX_LEN + 1] = "";
		bool named = blob_name(name, hex);
		if (strcmp(name, "index.json") == 0 && !l->index) {
			_cleanup_free_ char *tmp = NULL;
			size_t len = 0;
			struct sifu_buf b = {0};
			char buf[65536];
			la_ssize_t n;
			while ((n = archive_read_data(a, buf, sizeof(buf))) > 0 && b.len < META_MAX)
				sifu_buf_add(&b, buf, (size_t)n);
			(void)tmp, (void)len;
			l->index = b.p ? b.p : sifu_xstrdup("");
			l->index_len = b.len;
			continue;
		}
		if ((r = import_member(a, c, hex, size, err)) < 0) {
			sifu_err_wrap(err, "%s: %s", path, name);
			goto out;
		}
		if (!named || l->nfiles < 100000) {
			l->files = sifu_xrealloc(l->files, (l->nfiles + 1) * sizeof(*l->files));
			l->files[l->nfiles].name = sifu_xstrdup(name);
			memcpy(l->files[l->nfiles].hex, hex, sizeof(hex));
			l->files[l->nfiles].size = (uint64_t)size;
			l->nfiles++;
		}
	}
	if (ar != ARCHIVE_EOF)
		r = sifu_err_set(err, SIFU_E_CORRUPT, 0, "%s: %s", path, archive_error_string(a));
out:
	archive_read_free(a);
	return r;
}

static const struct named *find_file(struct local *l, const char *name)
{
	name = clean_name(name);
	for (size_t i = 0; i < l->nfiles; i++)
		if (strcmp(l->files[i].name, name) == 0)
			return &l->files[i];
	return NULL;
}

/* docker save's manifest.json -> a schema 2 manifest over the cached blobs. */
static int docker_manifest(struct local *l, struct sifu_err *err)
{
	const struct named *mf = find_file(l, "manifest.json");
	if (!mf)
		return sifu_err_set(err, SIFU_E_CORRUPT, 0,
		                    "%s: no manifest.json (is it a "
		                    "docker save archive?)",
		                    l->what);
	char *raw;
	size_t len;
	int r = fetch_read_file_at(l->blobdir, mf->hex, META_MAX, &raw, &len, err);
	if (r < 0)
		return r;
	json_t *j = fetch_json_parse(raw, len, "manifest.json", err);
	free(raw);
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
	struct sifu_buf b = {0};
	const struct named *cfg =
	    img ? find_file(l, json_string_value(json_object_get(img, "Config")) ?: "") : NULL;
	if (!img || !cfg) {
		r = sifu_err_set(err, SIFU_E_NOTFOUND, 0, "%s: %s", l->what,
		                 img ? "the image config is missing"
		                     : "several images and no (matching) NAME:TAG given");
		goto out;
	}
	sifu_buf_printf(&b,
	                "{\"schemaVersion\":2,\"mediaType\":"
	                "\"application/vnd.docker.distribution.manifest.v2+json\","
	                "\"config\":{\"mediaType\":\"application/vnd.docker.container.image."
	                "v1+json\",\"digest\":\"sha256:%s\",\"size\":%llu},\"layers\":[",
	                cfg->hex, (unsigned long long)cfg->size);
	json_t *layers = json_object_get(img, "Layers"), *lay;
	json_array_foreach(layers, i, lay)
	{
		const struct named *f = find_file(l, json_string_value(lay) ?: "");
		if (!f) {
			r = sifu_err_set(err, SIFU_E_CORRUPT, 0, "%s: layer %s is missing", l->what,
			                 json_string_value(lay) ?: "?");
			goto out;
		}
		sifu_buf_printf(&b,
		                "%s{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar\","
		                "\"digest\":\"sha256:%s\",\"size\":%llu}",
		                i ? "," : "", f->hex, (unsigned long long)f->size);
	}
	sifu_buf_printf(&b, "]}");
	l->manifest = b.p;
	l->manifest_len = b.len;
	b.p = NULL;
out:
	free(b.p);
	json_decref(j);
	return r;
}

int fetch_source_archive(const struct fetch_ref *ref, struct fetch_cache *cache,
                         struct fetch_source **out, struct sifu_err *err)
{
	struct local *l = local_new(ref);
	int r = import_archive(l, ref->path, cache, err);
	if (r == 0) {
		l->blobdir = openat(cache->dirfd, "blobs/sha256", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (l->blobdir < 0)
			r = sifu_err_sys(err, "%s/blobs/sha256", cache->dir);
	}
	if (r == 0 && ref->transport == FETCH_DOCKER_ARCHIVE)
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
