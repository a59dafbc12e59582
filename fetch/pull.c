/* SPDX-License-Identifier: BSD-3-Clause */
/* `sifu pull`: a source's manifest and blobs -> one SquashFS written straight
 * into the SIF's partition.  Layers are applied top-down (see squash.h), so
 * nothing an upper layer deletes is ever compressed. */
#include "fetch_priv.h"
#include "sif.h"

#include <fcntl.h>

#define CONFIG_MAX FETCH_CONFIG_MAX

struct image {
	char manifest_hex[FETCH_HEX_LEN + 1]; /* of the platform's manifest */
	struct fetch_manifest m;
	struct fetch_config cfg;
	char *config_json;
	size_t config_len;
};

static int resolve(struct fetch_source *src, const struct fetch_pull_opts *o, struct image *im,
                   struct sifu_err *err)
{
	_cleanup_free_ char *man = NULL;
	size_t len = 0;
	int r = src->get_manifest(src, NULL, &man, &len, err);
	if (r < 0)
		return r;
	int kind = fetch_manifest_kind(man, len, err);
	if (kind < 0)
		return kind;
	bool single = kind == 0; /* no index to choose the platform from */
	if (kind == 1) {
		struct fetch_blob pick = {0};
		if ((r = fetch_index_select(man, len, &o->platform, &pick, err)) < 0)
			return r;
		free(pick.media_type);
		free(man);
		man = NULL;
		if ((r = src->get_manifest(src, pick.digest, &man, &len, err)) < 0)
			return r;
		if ((kind = fetch_manifest_kind(man, len, err)) != 0)
			return kind < 0 ? kind
			                : sifu_err_set(err, SIFU_E_CORRUPT, 0,
			                               "an index inside an index is not supported");
	}
	fetch_sha256_buf(man, len, im->manifest_hex);
	if ((r = fetch_manifest_parse(man, len, &im->m, err)) < 0)
		return r;
	/* the config: small, read whole, verified */
	_cleanup_close_ int fd = src->open_blob(src, &im->m.config, err);
	if (fd < 0)
		return fd;
	if ((r = sifu_read_fd(fd, "image config", CONFIG_MAX, &im->config_json, &im->config_len,
	                      err)) < 0)
		return r;
	char hex[FETCH_HEX_LEN + 1], got[FETCH_HEX_LEN + 1];
	if (fetch_digest_parse(im->m.config.digest, hex, err) < 0)
		return -EINVAL;
	fetch_sha256_buf(im->config_json, im->config_len, got);
	if (strcmp(hex, got) != 0)
		return sifu_err_set(err, SIFU_E_VERIFY, 0,
		                    "image config %s has the digest sha256:%s", im->m.config.digest,
		                    got);
	if ((r = fetch_config_parse(im->config_json, im->config_len, &im->cfg, err)) < 0)
		return r;
	/* --arch arm64 on an amd64-only image: refuse rather than write an
	 * amd64 SIF the user did not ask for */
	if (single && o->platform_given &&
	    (r = fetch_config_check_platform(&im->cfg, &o->platform, err)) < 0)
		return r;
	if (r == 1)
		sifu_log(
		    SIFU_LOG_WARN,
		    "OCI image doesn't declare a platform. It may not be compatible with %s/%s.",
		    o->platform.os, o->platform.arch);
	if (im->cfg.ndiff_ids != im->m.nlayers)
		return sifu_err_set(err, SIFU_E_CORRUPT, 0,
		                    "the manifest has %zu layers but the config %zu diff_ids",
		                    im->m.nlayers, im->cfg.ndiff_ids);
	return 0;
}

static int add_dir(struct sq_image *img, const char *path, struct sifu_err *err)
{
	struct sq_entry e = {.path = path, .type = SQ_DIR, .mode = 0755};
	return sq_image_add(img, &e, NULL, NULL, NULL, err);
}

/* /.singularity.d as Apptainer lays it out for an OCI image; added first, so
 * it wins over anything the layers have there. */
static int add_singularity_d(struct sq_image *img, const struct fetch_config *c,
                             struct sifu_err *err)
{
	_cleanup_free_ char *run = fetch_runscript(c);
	_cleanup_free_ char *env = fetch_env_script(c);
	struct sq_entry link = {.path = "singularity",
	                        .type = SQ_SYMLINK,
	                        .mode = 0777,
	                        .target = ".singularity.d/runscript"};
	int r;
	if ((r = add_dir(img, ".singularity.d", err)) < 0 ||
	    (r = add_dir(img, ".singularity.d/env", err)) < 0 ||
	    (r = add_dir(img, ".singularity.d/actions", err)) < 0 ||
	    (r = add_dir(img, ".singularity.d/libs", err)) < 0 ||
	    (r = sq_image_add_buffer(img, ".singularity.d/runscript", 0755, run, strlen(run),
	                             err)) < 0 ||
	    (r = sq_image_add_buffer(img, ".singularity.d/env/10-docker2singularity.sh", 0755, env,
	                             strlen(env), err)) < 0 ||
	    (r = sq_image_add_buffer(img, ".singularity.d/labels.json", 0644, c->labels_json,
	                             strlen(c->labels_json), err)) < 0 ||
	    (r = sq_image_add(img, &link, NULL, NULL, NULL, err)) < 0)
		return r;
	return 0;
}

struct lprog {
	struct sifu_progress *p;
};

static void on_progress(void *ctx, uint64_t done)
{
	struct lprog *lp = ctx;
	if (lp->p)
		sifu_progress_update(lp->p, done);
}

static int write_layers(struct fetch_source *src, struct image *im, struct sq_image *img,
                        const struct fetch_pull_opts *o, struct sifu_err *err)
{
	int r = add_singularity_d(img, &im->cfg, err);
	if (r < 0)
		return r;
	for (size_t k = im->m.nlayers; k-- > 0;) {
		const struct fetch_blob *b = &im->m.layers[k];
		sq_image_next_layer(img);
		_cleanup_close_ int fd = src->open_blob(src, b, err);
		if (fd < 0)
			return fd;
		char label[64];
		snprintf(label, sizeof(label), "layer %zu/%zu %.19s", k + 1, im->m.nlayers,
		         b->digest);
		struct lprog lp = {o->quiet ? NULL : sifu_progress_new(label, b->size)};
		struct fetch_layer_stats st;
		r = fetch_layer_apply(fd, b->digest, im->cfg.diff_ids[k], img, on_progress, &lp,
		                      &st, err);
		if (lp.p)
			sifu_progress_done(lp.p);
		if (r < 0)
			return sifu_err_wrap(err, "layer %zu (%s)", k + 1, b->digest);
		sifu_verbose("layer %zu: %llu bytes, %llu uncompressed, %llu entries", k + 1,
		             (unsigned long long)st.compressed, (unsigned long long)st.uncompressed,
		             (unsigned long long)st.entries);
	}
	return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* A bare SquashFS (OUT ends in .sqfs/.squashfs), under its name once whole. */
static int write_bare(struct fetch_source *src, struct image *im, const char *out,
                      const struct fetch_pull_opts *o, struct sifu_err *err)
{
	_cleanup_atomic_ struct sifu_atomic a = {.fd = -1, .dirfd = -1};
	int r = sifu_atomic_open(&a, AT_FDCWD, out, err);
	if (r < 0)
		return r;
	struct sq_image *img = NULL;
	uint64_t size;
	r = sq_image_create(a.fd, 0, &o->squash, &img, err);
	if (r == 0)
		r = write_layers(src, im, img, o, err);
	if (r == 0)
		r = sq_image_finish(img, &size, err);
	sq_image_free(img);
	return r < 0 ? r : sifu_atomic_commit(&a, 0644, err);
}

static int write_sif(struct fetch_source *src, struct image *im, const char *out,
                     const struct fetch_pull_opts *o, struct sifu_err *err)
{
	struct sif_writer *w = NULL;
	int r = sif_writer_create(out, o->sif_write, &w, err);
	if (r < 0)
		return r;
	int fd;
	uint64_t off, size = 0;
	struct sq_image *img = NULL;
	r = sif_writer_begin_partition(w, &fd, &off, err);
	if (r == 0)
		r = sq_image_create(fd, off, &o->squash, &img, err);
	if (r == 0)
		r = write_layers(src, im, img, o, err);
	if (r == 0)
		r = sq_image_finish(img, &size, err);
	sq_image_free(img);
	const char *arch = im->cfg.arch[0] ? im->cfg.arch : NULL;
	if (r == 0)
		r = sif_writer_end_partition(w, size, SIF_FS_SQUASH, SIF_PART_PRIMSYS, arch, true,
		                             err);
	if (r == 0)
		r = sif_writer_add_data(w, SIF_DT_GENERIC_JSON, im->config_json, im->config_len, 1,
		                        0, "oci-config.json", err);
	if (r == 0)
		r = sif_writer_commit(w, err);
	else
		sif_writer_abort(w);
	return r;
}

static int cached_sif(struct fetch_cache *c, struct fetch_source *src, struct image *im,
                      const struct fetch_pull_opts *o, char **path, int *sif_fd,
                      struct sifu_err *err)
{
	if (c->temporary)
		return sifu_err_set(err, SIFU_E_USAGE, 0,
		                    "running a docker:// image needs the cache");
	char name[FETCH_HEX_LEN + 32];
	snprintf(name, sizeof(name), "%s-c%d-%d", im->manifest_hex, o->squash.compressor,
	         o->squash.level);
	int fd = fetch_cache_sif_open(c, name, im->manifest_hex, false, err);
	if (fd == -ENOENT) {
		_cleanup_close_ int lock = fetch_cache_lock(c, name, err);
		if (lock < 0)
			return lock;
		/* someone else may have made it while we waited; anything else
		 * there is removed */
		fd = fetch_cache_sif_open(c, name, im->manifest_hex, true, err);
		if (fd == -ENOENT) {
			/* written through the checked directory's fd, not its path */
			char dir[32];
			sifu_path_fd(c->sif, dir);
			_cleanup_free_ char *p = sifu_xasprintf("%s/%s.sif", dir, name);
			int r = write_sif(src, im, p, o, err);
			if (r == 0)
				r = fetch_cache_sif_record(c, name, im->manifest_hex, err);
			if (r < 0)
				return r;
			fd = fetch_cache_sif_open(c, name, im->manifest_hex, false, err);
			if (fd == -ENOENT)
				return sifu_err_set(err, SIFU_E_SYS, EIO,
				                    "%s/sif/%s.sif: gone right after it was made",
				                    c->dir, name);
		}
	}
	if (fd < 0)
		return fd;
	*path = sifu_xasprintf("%s/sif/%s.sif", c->dir, name);
	*sif_fd = fd;
	return 0;
}

#define MT_SIF_LAYER "application/vnd.sylabs.sif.layer.v1.sif"

/* The descriptor of an artifact manifest's SIF layer into B. */
static int oras_sif_layer(struct fetch_source *src, struct fetch_blob *b, struct sifu_err *err)
{
	_cleanup_free_ char *man = NULL;
	size_t len;
	int r = src->get_manifest(src, NULL, &man, &len, err);
	if (r < 0)
		return r;
	json_t *j = fetch_json_parse(man, len, "artifact manifest", err);
	if (!j)
		return -EINVAL;
	json_t *l;
	size_t i;
	r = -ENOENT;
	json_array_foreach(json_object_get(j, "layers"), i, l)
	{
		const char *mt = json_string_value(json_object_get(l, "mediaType"));
		const char *dg = json_string_value(json_object_get(l, "digest"));
		json_t *size = json_object_get(l, "size");
		if (mt && dg && !strcmp(mt, MT_SIF_LAYER) && strlen(dg) < sizeof(b->digest) &&
		    json_is_integer(size)) {
			snprintf(b->digest, sizeof(b->digest), "%s", dg);
			b->size = (uint64_t)json_integer_value(size);
			r = 0;
			break;
		}
	}
	json_decref(j);
	if (r < 0) {
		sifu_err_set(err, SIFU_E_UNSUPPORTED, 0, "the artifact holds no SIF layer (%s)",
		             MT_SIF_LAYER);
		sifu_err_hint(err, "for a container image use docker:// instead of oras://");
	}
	return r;
}

/* Copy IN, from its start, to OUT: GOT is the sha256 of what was copied,
 * *TOTAL its size.  0 or -errno. */
static int copy_hashed(int in, int out, char got[FETCH_HEX_LEN + 1], uint64_t *total)
{
	int r = lseek(in, 0, SEEK_SET) < 0 ? -errno : 0;
	struct fetch_sha256 h;
	fetch_sha256_init(&h);
	*total = 0;
	char buf[1 << 16];
	ssize_t n;
	while (r == 0 && (n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0 || write(out, buf, (size_t)n) != n)
			r = -EIO;
		else
			fetch_sha256_update(&h, buf, (size_t)n);
		*total += n > 0 ? (uint64_t)n : 0;
	}
	fetch_sha256_final_hex(&h, got);
	fetch_sha256_free(&h);
	return r;
}

/* oras://: the artifact's one SIF layer, through the blob cache (verified
 * there), copied to OUT, under its name once whole and verified. */
static int pull_oras(struct fetch_source *src, const char *out, struct sifu_err *err)
{
	struct fetch_blob b = {0};
	int r = oras_sif_layer(src, &b, err);
	if (r < 0)
		return r;
	_cleanup_close_ int in = src->open_blob(src, &b, err);
	if (in < 0)
		return in;
	if (!sif_fd_is_sif(in))
		return sifu_err_set(err, SIFU_E_CORRUPT, 0, "the artifact's layer is not a SIF");
	char want[FETCH_HEX_LEN + 1], got[FETCH_HEX_LEN + 1];
	if (fetch_digest_parse(b.digest, want, err) < 0)
		return -EINVAL;
	_cleanup_atomic_ struct sifu_atomic a = {.fd = -1, .dirfd = -1};
	if ((r = sifu_atomic_open(&a, AT_FDCWD, out, err)) < 0)
		return r;
	/* the blob's name in the cache is not proof of its content: hash what
	 * is copied, and keep it only if it is the digest the manifest names */
	uint64_t total;
	if ((r = copy_hashed(in, a.fd, got, &total)) < 0) {
		errno = -r;
		return sifu_err_sys(err, "writing %s", out);
	}
	if (strcmp(got, want) != 0 || total != b.size) {
		sifu_err_set(err, SIFU_E_VERIFY, 0, "the SIF layer %s has the digest sha256:%s",
		             b.digest, got);
		sifu_err_hint(err, "the registry or the cache holds corrupt or tampered data; "
		                   "nothing was written");
		return -EBADMSG;
	}
	return sifu_atomic_commit(&a, 0755, err);
}

/* https://…/x.sif: the file, which must be a SIF, under its name once whole. */
static int pull_http(const char *url, const char *out, const struct fetch_pull_opts *o,
                     struct sifu_err *err)
{
	_cleanup_atomic_ struct sifu_atomic a = {.fd = -1, .dirfd = -1};
	int r = sifu_atomic_open(&a, AT_FDCWD, out, err);
	if (r < 0)
		return r;
	if ((r = fetch_http_download(url, o, a.fd, err)) < 0)
		return r;
	if (!sif_fd_is_sif(a.fd)) {
		sifu_err_set(err, SIFU_E_UNSUPPORTED, 0, "%s is not a SIF file", url);
		sifu_err_hint(err, "https:// pulls SIF files; use docker:// for container images");
		return -EINVAL;
	}
	return sifu_atomic_commit(&a, 0755, err);
}

/* OUT NULL: the image goes to the cache as sif/<manifest>-<compression>.sif,
 * made once under a lock, and *CACHED gets its path. */
static int pull(const char *uri, const char *out, const struct fetch_pull_opts *o, char **cached,
                int *cached_fd, struct sifu_err *err)
{
	struct fetch_ref ref;
	int r = fetch_ref_parse(uri, &ref, err);
	if (r < 0)
		return r;
	if (ref.transport == FETCH_HTTP) {
		r = out ? pull_http(uri, out, o, err)
		        : sifu_err_set(err, SIFU_E_UNSUPPORTED, 0,
		                       "https:// images need sifu pull first");
		fetch_ref_free(&ref);
		return r < 0 ? sifu_err_wrap(err, "pulling %s", uri) : 0;
	}
	struct fetch_cache cache = {.dirfd = -1};
	struct fetch_source *src = NULL;
	struct image im = {0};
	bool need_cache = ref.transport != FETCH_OCI_DIR || !out;
	if (need_cache && (r = fetch_cache_open(&o->cache, o->disable_cache, &cache, err)) < 0)
		goto out;
	switch (ref.transport) {
	case FETCH_DOCKER:
	case FETCH_ORAS: r = fetch_source_registry(&ref, o, &cache, &src, err); break;
	case FETCH_OCI_DIR: r = fetch_source_oci_dir(&ref, &src, err); break;
	default: r = fetch_source_archive(&ref, &cache, &src, err);
	}
	if (r < 0)
		goto out;
	if (ref.transport == FETCH_ORAS) {
		r = out ? pull_oras(src, out, err)
		        : sifu_err_set(err, SIFU_E_UNSUPPORTED, 0,
		                       "oras:// images need sifu pull first");
		goto out;
	}
	if ((r = resolve(src, o, &im, err)) < 0)
		goto out;
	if (!out) {
		r = cached_sif(&cache, src, &im, o, cached, cached_fd, err);
		goto out;
	}
	if (ends_with(out, ".sqfs") || ends_with(out, ".squashfs"))
		r = write_bare(src, &im, out, o, err);
	else
		r = write_sif(src, &im, out, o, err);
out:
	if (r < 0)
		sifu_err_wrap(err, "pulling %s", uri);
	fetch_manifest_free(&im.m);
	fetch_config_free(&im.cfg);
	free(im.config_json);
	if (src)
		src->free(src);
	if (need_cache)
		fetch_cache_close(&cache);
	fetch_ref_free(&ref);
	return r;
}

int fetch_pull(const char *uri, const char *out, const struct fetch_pull_opts *o,
               struct sifu_err *err)
{
	if (!out) /* a pull into the cache is fetch_pull_cached_fd */
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "pull: no output file");
	return pull(uri, out, o, NULL, NULL, err);
}

int fetch_pull_cached_fd(const char *uri, const struct fetch_pull_opts *o, char **path, int *fd,
                         struct sifu_err *err)
{
	*fd = -1;
	return pull(uri, NULL, o, path, fd, err);
}

int fetch_pull_cached(const char *uri, const struct fetch_pull_opts *o, char **path,
                      struct sifu_err *err)
{
	int fd;
	int r = fetch_pull_cached_fd(uri, o, path, &fd, err);
	if (r == 0)
		close(fd);
	return r;
}
