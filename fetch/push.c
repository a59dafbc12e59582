/* SPDX-License-Identifier: BSD-3-Clause */
/* `push`: a SIF file to an OCI registry as the ORAS artifact Apptainer
 * writes (internal/pkg/client/oras: oras.go UploadImage, image.go
 * NewImageFromSIF, config.go): an empty "{}" config of type
 * application/vnd.sylabs.sif.config.v1+json, the SIF as the one layer of
 * type application/vnd.sylabs.sif.layer.v1.sif titled with the file's
 * name, in an OCI image manifest.  The SIF goes up byte for byte, so its
 * signatures (objects inside it) travel with it.
 *
 * Uploads follow the distribution spec's monolithic push: HEAD the blob
 * (skipped when the repository has it), POST for an upload session, one PUT
 * of the whole blob with its digest, which the registry checks; the
 * Docker-Content-Digest it answers must name the same digest. */
#include "fetch_priv.h"
#include "sif.h"

#include <fcntl.h>
#include <libgen.h>
#include <time.h>

#define SIF_CONFIG_TYPE   "application/vnd.sylabs.sif.config.v1+json"
#define SIF_LAYER_TYPE    "application/vnd.sylabs.sif.layer.v1.sif"
#define OCI_MANIFEST_TYPE "application/vnd.oci.image.manifest.v1+json"
/* Apptainer's config is always the empty JSON object */
#define SIF_CONFIG "{}"

/* The digest a registry says it stored, when it says one, is what was sent. */
static int check_stored(const struct fetch_answer *a, const char *digest, const char *what,
                        struct sifu_err *err)
{
	if (!a->digest || strcmp(a->digest, digest) == 0)
		return 0;
	return sifu_err_set(err, SIFU_E_VERIFY, 0,
	                    "%s: the registry says it stored %s; the registry is misbehaving", what,
	                    a->digest);
}

/* Does the repository have DIGEST already?  1 yes, 0 no, < 0 error. */
static int have_blob(struct reg *g, const char *repo, const char *digest, const char *what,
                     struct sifu_err *err)
{
	_cleanup_free_ char *path = sifu_xasprintf("/v2/%s/blobs/%s", repo, digest);
	struct fetch_send head = {.method = "HEAD"};
	struct fetch_answer a;
	int r = fetch_reg_send(g, path, &head, &a, what, err);
	fetch_answer_free(&a);
	if (r == 0)
		return 1;
	if (err->code != SIFU_E_NOTFOUND)
		return r;
	sifu_err_clear(err);
	return 0;
}

/* Upload BODY as the blob DIGEST ("sha256:HEX") unless REPO has it; with
 * SHOW, its progress. */
static int push_blob(struct reg *g, const char *repo, struct fetch_send *body, const char *digest,
                     bool show, struct sifu_err *err)
{
	char what[FETCH_HEX_LEN + 16];
	snprintf(what, sizeof(what), "blob %s", digest);
	int r = have_blob(g, repo, digest, what, err);
	if (r != 0) {
		if (r > 0)
			sifu_verbose("%s: the registry has it already", what);
		return r < 0 ? r : 0;
	}
	_cleanup_free_ char *start = sifu_xasprintf("/v2/%s/blobs/uploads/", repo);
	struct fetch_send post = {.method = "POST"};
	struct fetch_answer a;
	r = fetch_reg_send(g, start, &post, &a, what, err);
	_cleanup_free_ char *loc = TAKE_PTR(a.location);
	long status = a.status;
	fetch_answer_free(&a);
	if (r < 0)
		return r;
	if (!loc)
		return sifu_err_set(err, SIFU_E_UNSUPPORTED, 0,
		                    "%s: the registry answered HTTP %ld with no upload location",
		                    what, status);
	/* the digest as a query value: its ':' escaped, as url.Values does */
	_cleanup_free_ char *put = sifu_xasprintf("%s%sdigest=sha256%%3A%s", loc,
	                                          strchr(loc, '?') ? "&" : "?", digest + 7);
	body->method = "PUT";
	body->ctype = "application/octet-stream";
	body->progress = show ? sifu_progress_new("upload", body->size) : NULL;
	r = fetch_reg_send(g, put, body, &a, what, err);
	if (body->progress)
		sifu_progress_done(body->progress);
	if (r == 0)
		r = check_stored(&a, digest, what, err);
	fetch_answer_free(&a);
	return r;
}

/* The manifest's annotations: the caller's KEY=VALUE ones (those without
 * '=' are skipped), then the SIF's creation time, which wins as in
 * Apptainer's NewImageFromSIF.  NULL when there are none. */
static json_t *annotations(char *const *kv, int64_t created)
{
	json_t *o = json_object();
	for (size_t i = 0; kv && kv[i]; i++) {
		const char *eq = strchr(kv[i], '=');
		if (!eq)
			continue;
		_cleanup_free_ char *key = sifu_xstrndup(kv[i], (size_t)(eq - kv[i]));
		json_object_set_new(o, key, json_string(eq + 1));
	}
	if (created > 0) {
		time_t t = (time_t)created;
		struct tm tm;
		char when[32];
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		json_object_set_new(o, "org.opencontainers.image.created", json_string(when));
	}
	if (json_object_size(o) == 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* The manifest Apptainer's NewImageFromSIF makes. */
static char *sif_manifest(const char *layer_digest, uint64_t size, const char *title, json_t *notes)
{
	char cfg_hex[FETCH_HEX_LEN + 1];
	fetch_sha256_buf(SIF_CONFIG, strlen(SIF_CONFIG), cfg_hex);
	_cleanup_free_ char *cfg_digest = sifu_xasprintf("sha256:%s", cfg_hex);
	json_t *m =
	    json_pack("{s:i, s:s, s:{s:s, s:s, s:i}, s:[{s:s, s:s, s:I, s:{s:s}}]}",
	              "schemaVersion", 2, "mediaType", OCI_MANIFEST_TYPE, "config", "mediaType",
	              SIF_CONFIG_TYPE, "digest", cfg_digest, "size", (int)strlen(SIF_CONFIG),
	              "layers", "mediaType", SIF_LAYER_TYPE, "digest", layer_digest, "size",
	              (json_int_t)size, "annotations", "org.opencontainers.image.title", title);
	if (notes)
		json_object_set_new(m, "annotations", notes);
	char *s = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	return s;
}

/* FILE opened and checked to be a SIF: its fd, size, digest and creation time. */
static int open_sif(const char *file, char digest[FETCH_HEX_LEN + 8], uint64_t *size,
                    int64_t *created, struct sifu_err *err)
{
	_cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sifu_err_sys(err, "%s", file);
	struct sif_image *img = NULL;
	if (sif_open_fd(fd, &img, err) < 0) {
		sifu_err_clear(err);
		sifu_err_set(err, SIFU_E_UNSUPPORTED, 0, "\"%s\" is not a SIF", file);
		sifu_err_hint(err, "push sends SIF files (sifu build or sifu pull make them)");
		return -EINVAL;
	}
	*created = img->h.ctime;
	sif_close(img);
	char hex[FETCH_HEX_LEN + 1];
	if (lseek(fd, 0, SEEK_SET) < 0 || fetch_sha256_fd(fd, hex, size) < 0)
		return sifu_err_sys(err, "reading %s", file);
	snprintf(digest, FETCH_HEX_LEN + 8, "sha256:%s", hex);
	return TAKE_FD(fd);
}

static int put_manifest(struct reg *g, const struct fetch_ref *ref, const char *json,
                        char digest[FETCH_HEX_LEN + 8], struct sifu_err *err)
{
	char hex[FETCH_HEX_LEN + 1];
	fetch_sha256_buf(json, strlen(json), hex);
	snprintf(digest, FETCH_HEX_LEN + 8, "sha256:%s", hex);
	_cleanup_free_ char *path =
	    sifu_xasprintf("/v2/%s/manifests/%s", ref->repository, ref->tag);
	_cleanup_free_ char *what =
	    sifu_xasprintf("manifest %s/%s:%s", ref->registry, ref->repository, ref->tag);
	struct fetch_send put = {
	    .method = "PUT", .ctype = OCI_MANIFEST_TYPE, .mem = json, .size = strlen(json)};
	struct fetch_answer a;
	int r = fetch_reg_send(g, path, &put, &a, what, err);
	if (r == 0)
		r = check_stored(&a, digest, what, err);
	fetch_answer_free(&a);
	return r;
}

static int push_to(struct reg *g, const char *file, const struct fetch_ref *ref, char *const *kv,
                   bool quiet, char digest[FETCH_HEX_LEN + 8], struct sifu_err *err)
{
	char layer[FETCH_HEX_LEN + 8];
	uint64_t size = 0;
	int64_t created = 0;
	_cleanup_close_ int fd = open_sif(file, layer, &size, &created, err);
	if (fd < 0)
		return fd;
	struct fetch_send sif = {.fd = fd, .size = size};
	int r = push_blob(g, ref->repository, &sif, layer, !quiet, err);
	if (r < 0)
		return r;
	char cfg_hex[FETCH_HEX_LEN + 1];
	fetch_sha256_buf(SIF_CONFIG, strlen(SIF_CONFIG), cfg_hex);
	_cleanup_free_ char *cfg_digest = sifu_xasprintf("sha256:%s", cfg_hex);
	struct fetch_send cfg = {.mem = SIF_CONFIG, .size = strlen(SIF_CONFIG)};
	if ((r = push_blob(g, ref->repository, &cfg, cfg_digest, false, err)) < 0)
		return r;
	_cleanup_free_ char *base = sifu_xstrdup(file);
	_cleanup_free_ char *json =
	    sif_manifest(layer, size, basename(base), annotations(kv, created));
	return put_manifest(g, ref, json, digest, err);
}

int fetch_push(const char *file, const char *uri, const struct fetch_pull_opts *o,
               char *const *annotations, char digest[FETCH_HEX_LEN + 8], struct sifu_err *err)
{
	struct fetch_ref ref;
	int r = fetch_ref_parse(uri, &ref, err);
	if (r < 0)
		return r;
	if (ref.transport != FETCH_ORAS || ref.digest) {
		sifu_err_set(err, SIFU_E_USAGE, 0,
		             "push sends a SIF to oras://HOST/REPO[:TAG], not %s%s", uri,
		             ref.digest ? " (a digest names what exists, a push needs a tag)" : "");
		sifu_err_hint(err,
		              "e.g. sifu push image.sif oras://registry.example.org/me/image:1");
		fetch_ref_free(&ref);
		return -EINVAL;
	}
	struct reg *g = fetch_reg_open(ref.registry, ref.repository, o, err);
	r = g ? push_to(g, file, &ref, annotations, o->quiet, digest, err) : -EIO;
	/* the registry's 401/403 means no (push) rights here, not a missing image */
	if (r < 0 && err->code == SIFU_E_DENIED)
		sifu_err_hint(err, "a push needs credentials with push rights: sifu registry "
		                   "login, or --docker-username and --docker-password");
	fetch_reg_close(g);
	fetch_ref_free(&ref);
	return r;
}
