/* SPDX-License-Identifier: BSD-3-Clause */
/* fetch/: image references, OCI sources (registries, OCI layouts, OCI and
 * docker archives), registry auth, the content-addressed blob cache and the
 * layer streams that feed squash/. */
#pragma once

#include "common.h"
#include "squash.h"

/* True once this module is built; the CLI says "not available" until then. */
bool fetch_available(void);

/* ------------------------------------------------------------- digests -- */
#define FETCH_HEX_LEN 64
/* "sha256:<64 lowercase hex>" -> HEX.  Anything else (other algorithms,
 * upper case, wrong length) is an error: digests name files in the cache. */
int fetch_digest_parse(const char *digest, char hex[FETCH_HEX_LEN + 1], struct sifu_err *err);

/* --------------------------------------------------------------- layers -- */
/* Counts for one layer stream. */
struct fetch_layer_stats {
	uint64_t compressed, uncompressed, entries;
};
typedef void (*fetch_progress_fn)(void *ctx, uint64_t compressed_done);

/* Stream the layer in FD (gzip, zstd or plain tar: sniffed from the bytes,
 * never trusted from a media type) into IMG as its current layer.  DIGEST
 * (sha256 of the bytes in FD) and DIFF_ID (sha256 of the uncompressed tar)
 * are verified when not NULL; a mismatch is SIFU_E_VERIFY. */
int fetch_layer_apply(int fd, const char *digest, const char *diff_id, struct sq_image *img,
                      fetch_progress_fn progress, void *pctx, struct fetch_layer_stats *st,
                      struct sifu_err *err);

/* ---------------------------------------------------------- references -- */
enum fetch_transport {
	FETCH_DOCKER = 1,     /* docker://  */
	FETCH_OCI_DIR,        /* oci:DIR[:tag] */
	FETCH_OCI_ARCHIVE,    /* oci-archive:FILE[:tag] */
	FETCH_DOCKER_ARCHIVE, /* docker-archive:FILE */
	FETCH_ORAS,           /* oras://: a SIF stored as an OCI artifact (docker:// naming) */
	FETCH_HTTP,           /* https://…/x.sif (path: the URL) */
};

struct fetch_ref {
	enum fetch_transport transport;
	char *registry;   /* docker: "registry-1.docker.io", "127.0.0.1:5000" */
	char *repository; /* docker: "library/alpine" */
	char *tag;        /* may be NULL when a digest is given */
	char *digest;     /* "sha256:…" or NULL */
	char *path;       /* oci/oci-archive/docker-archive: the file or directory */
};

/* Parse a URI ("docker://alpine", "oci-archive:/x.tar", …).  Docker's rules:
 * a first component with a '.' or ':' or equal to "localhost" is a registry;
 * otherwise docker.io; a one-component name on docker.io gets "library/";
 * tag "latest" when neither tag nor digest is given.  Pure. */
int fetch_ref_parse(const char *uri, struct fetch_ref *ref, struct sifu_err *err);
void fetch_ref_free(struct fetch_ref *ref);
/* The file name Apptainer would choose: "alpine_latest.sif". Caller frees. */
char *fetch_ref_default_name(const struct fetch_ref *ref);

/* ------------------------------------------------------------- platform -- */
struct fetch_platform {
	char os[32], arch[32], variant[32];
};
/* This machine (linux/amd64, linux/arm64/v8, …). */
void fetch_platform_host(struct fetch_platform *p);
/* "linux/arm64/v8" or "arm64" (with --arch) into P.  Pure. */
int fetch_platform_parse(const char *s, struct fetch_platform *p, struct sifu_err *err);

/* ------------------------------------------------------------ OCI JSON -- */
struct fetch_blob {
	char digest[FETCH_HEX_LEN + 8];
	uint64_t size;
	char *media_type;
};

/* A resolved image: its manifest, config and layers (bottom first). */
struct fetch_manifest {
	struct fetch_blob config;
	struct fetch_blob *layers;
	size_t nlayers;
};

/* Is JSON an index / manifest list?  Then choose the manifest for PLATFORM:
 * returns its descriptor in OUT.  Errors say which platforms exist. */
int fetch_index_select(const char *json, size_t len, const struct fetch_platform *plat,
                       struct fetch_blob *out, struct sifu_err *err);
/* 1 if JSON is an index or manifest list, 0 if an image manifest, < 0 if
 * neither (schema 1 is refused here, with a clear line). */
int fetch_manifest_kind(const char *json, size_t len, struct sifu_err *err);
int fetch_manifest_parse(const char *json, size_t len, struct fetch_manifest *m,
                         struct sifu_err *err);
void fetch_manifest_free(struct fetch_manifest *m);

/* What sifu needs from an image config. */
struct fetch_config {
	char **env;        /* "K=V", NULL-terminated */
	char **entrypoint; /* NULL-terminated or NULL */
	char **cmd;
	char *workdir;
	char *labels_json; /* pretty JSON object, "{}" when none */
	char **diff_ids;   /* "sha256:…", NULL-terminated */
	size_t ndiff_ids;
	char arch[32];
	char os[32], variant[32]; /* "" when the config does not say */
};
int fetch_config_parse(const char *json, size_t len, struct fetch_config *c, struct sifu_err *err);
void fetch_config_free(struct fetch_config *c);
/* Does a single-platform image (its config C) satisfy WANT, as an index
 * entry must (Apptainer's ociplatform.CheckImagePlatform)?  0 when it does,
 * 1 when the config names no platform (the caller may warn), < 0 with ERR
 * naming both platforms when it does not.  Pure. */
int fetch_config_check_platform(const struct fetch_config *c, const struct fetch_platform *want,
                                struct sifu_err *err);
/* The generated /.singularity.d files, as Apptainer writes them for OCI images. */
char *fetch_runscript(const struct fetch_config *c);
char *fetch_env_script(const struct fetch_config *c);

/* ---------------------------------------------------------------- cache -- */
/* Where the cache is.  cli/ resolves it (from SIFU_CACHEDIR, XDG_CACHE_HOME,
 * the home directory or TMPDIR): this module reads no environment. */
struct fetch_cache_loc {
	const char *dir;     /* the cache root */
	unsigned nprivate;   /* how many trailing components of DIR must be private
	                        (the caller's, no group/other write, no symlink);
	                        0 means 1; DIR's other components are followed */
	const char *tmpbase; /* --disable-cache: a private directory (its last
	                        component checked) in which a temporary cache is made */
	const char *fix;     /* the remedy named when a directory is refused, or NULL */
};

/* Every directory of the cache is opened through fds, checked to be the
 * caller's and not writable by group or others (else the open fails with one
 * line naming the directory), and used only through its fd afterwards. */
struct fetch_cache {
	char *dir;                  /* the root, for messages */
	int dirfd;                  /* the root */
	int blobs, tmp, locks, sif; /* blobs/sha256, tmp, locks, sif */
	int parentfd;               /* temporary: the directory holding the root */
	char tmpname[32];           /* temporary: the root's name in it */
	bool temporary;             /* --disable-cache: removed on close */
};
int fetch_cache_open(const struct fetch_cache_loc *loc, bool disable, struct fetch_cache *c,
                     struct sifu_err *err);
void fetch_cache_close(struct fetch_cache *c);
/* Open the blob HEX for reading, or -ENOENT.  Only a regular file of the
 * caller's, not writable by others, is handed out; its name is no proof of
 * its content: every reader verifies the digest as it reads (layers,
 * configs, manifests and SIF artifacts all do). */
int fetch_cache_open_blob(struct fetch_cache *c, const char *hex);
/* Serialise producers of one blob across processes (and NFS clients: fcntl
 * locks).  Returns a lock fd to close. */
int fetch_cache_lock(struct fetch_cache *c, const char *hex, struct sifu_err *err);
/* A new temporary file in the cache's tmp/ (O_RDWR); *NAME is its name there,
 * for fetch_cache_commit or fetch_cache_discard. */
int fetch_cache_tmp(struct fetch_cache *c, char **name, struct sifu_err *err);
void fetch_cache_discard(struct fetch_cache *c, const char *name);
/* Verify the temporary file's sha256 (and SIZE unless UINT64_MAX) against
 * HEX and rename it into place; on any failure the temporary is removed. */
int fetch_cache_commit(struct fetch_cache *c, const char *tmpname, int fd, const char *hex,
                       uint64_t size, struct sifu_err *err);
/* The cached SIF sif/NAME.sif, if it is the file this cache recorded for the
 * manifest MANIFEST_HEX (fetch_cache_sif_record): an O_RDONLY fd, or -ENOENT
 * (absent, or not what was recorded: REPAIR (under the SIF's lock) then
 * removes it so that it is made again). */
int fetch_cache_sif_open(struct fetch_cache *c, const char *name, const char *manifest_hex,
                         bool repair, struct sifu_err *err);
/* Bind the SIF just committed as sif/NAME.sif to MANIFEST_HEX: its size,
 * sha256, inode and ctime go into sif/NAME.rec. */
int fetch_cache_sif_record(struct fetch_cache *c, const char *name, const char *manifest_hex,
                           struct sifu_err *err);
struct fetch_cache_entry {
	char name[128]; /* blob: its sha256 hex; sif: the file name */
	uint64_t size;
	int64_t mtime;
};
/* List blobs, or with SIF the cached images (sorted by name). */
int fetch_cache_list(struct fetch_cache *c, bool sif, struct fetch_cache_entry **out, size_t *n,
                     struct sifu_err *err);
/* What `cache clean` removes. */
struct fetch_clean_opts {
	bool dry_run;   /* only count */
	bool blobs;     /* blobs and stale temporary files */
	bool sifs;      /* images made for exec docker://... and their records */
	int64_t before; /* only files last modified before this time (0: all) */
};
/* Remove what O names; counts what went (or would go). */
int fetch_cache_clean(struct fetch_cache *c, const struct fetch_clean_opts *o, size_t *nremoved,
                      uint64_t *bytes, struct sifu_err *err);
/* Count the plain files in the cache's subdirectory SUB (e.g. "debootstrap",
 * build's package cache) last modified before BEFORE (0: all), or with
 * REMOVE unlink them. */
void fetch_cache_sub(struct fetch_cache *c, const char *sub, bool remove, int64_t before, size_t *n,
                     uint64_t *bytes);

/* ----------------------------------------------------------------- pull -- */
struct sif_write_opts;
struct fetch_pull_opts {
	struct fetch_cache_loc cache;
	bool disable_cache;
	struct fetch_platform platform;
	bool platform_given;  /* --arch/--platform: a single-platform image must match it */
	bool nohttps;         /* plain HTTP to the registry */
	bool insecure;        /* TLS without verification */
	const char *authfile; /* docker config.json to read credentials from */
	const char *username, *password; /* explicit credentials (env / prompt) */
	struct sq_opts squash;
	bool quiet;
	/* What the environment says, read by cli/ (cli_pull_opts, from
	 * cli_env_get()); this module reads none.  The strings are borrowed. */
	const char *ca_bundle;     /* CA certificates for TLS, or NULL: libcurl's own */
	const char *home;          /* ~/.docker/config.json */
	const char *configdir;     /* its docker-config.json ($APPTAINER_CONFIGDIR, ~/.apptainer) */
	const char *docker_config; /* $DOCKER_CONFIG: its config.json replaces ~/.docker's */
	int retries;               /* a transient failure is retried this often */
	const struct sif_write_opts *sif_write; /* SIF times (NULL: the clock) */
};
/* Check O's username and password against the registry HOST ("HOST[:PORT]")
 * as docker login does, with O's transport options (nohttps, insecure,
 * ca_bundle, retries).  0 when the registry accepted them, 1 when it asks for
 * no credentials at all (nothing could be checked), < 0 with ERR set:
 * SIFU_E_DENIED when it refused them, SIFU_E_UNAVAILABLE when it could not
 * be reached. */
int fetch_registry_check_login(const char *host, const struct fetch_pull_opts *o,
                               struct sifu_err *err);
/* retries when SIFU_PULL_RETRIES is not set */
#define FETCH_RETRIES_DEFAULT 5

/* Pull URI into a new SIF at OUT (temporary name, renamed on success). */
int fetch_pull(const char *uri, const char *out, const struct fetch_pull_opts *o,
               struct sifu_err *err);
/* For `sifu exec docker://…`: the SIF for URI from the cache
 * ($CACHE/sif/<manifest digest>-….sif, made on first use, under a lock so
 * concurrent runs build it once, and checked against its record on reuse).
 * *PATH (malloc'ed) names it; *FD is the file that was checked: run that,
 * not what the path names later. */
int fetch_pull_cached_fd(const char *uri, const struct fetch_pull_opts *o, char **path, int *fd,
                         struct sifu_err *err);
/* The same with the fd closed (tests, and callers that only want the path). */
int fetch_pull_cached(const char *uri, const struct fetch_pull_opts *o, char **path,
                      struct sifu_err *err);

/* ----------------------------------------------------------------- push -- */
/* Push the SIF FILE to URI (oras://HOST/REPO[:TAG]) as Apptainer's push
 * does (push.c says how), with O's transport options and credentials (found
 * as a pull finds them).  A file that is not a SIF is refused before
 * anything is sent.  ANNOTATIONS (KEY=VALUE, NULL-terminated, or NULL) go
 * into the manifest.  DIGEST gets the manifest's "sha256:…". */
int fetch_push(const char *file, const char *uri, const struct fetch_pull_opts *o,
               char *const *annotations, char digest[FETCH_HEX_LEN + 8], struct sifu_err *err);
