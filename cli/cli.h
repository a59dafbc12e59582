/* SPDX-License-Identifier: BSD-3-Clause */
/* cli/: the only module that talks to the user. */
#pragma once

#include "common.h"
#include "config.h"

enum cli_verb_bit {
	V_EXEC = 1u << 0,
	V_RUN = 1u << 1,
	V_SHELL = 1u << 2,
	V_TEST = 1u << 3,
	V_INSTANCE = 1u << 4,
	V_PULL = 1u << 5,
	V_BUILD = 1u << 6,
	V_INSPECT = 1u << 7,
	V_SIGN = 1u << 8,
	V_VERIFY = 1u << 9,
	V_KEY = 1u << 10,
	V_CACHE = 1u << 11,
	V_SIF = 1u << 12,
	V_VERSION = 1u << 13,
	V_HELP = 1u << 14,
	V_MOUNT = 1u << 15,
	V_REGISTRY = 1u << 16,
	V_RUN_HELP = 1u << 17,
	V_OVERLAY = 1u << 18,
	V_PUSH = 1u << 19,
	V_ACTIONS = V_EXEC | V_RUN | V_SHELL | V_TEST | V_INSTANCE,
};

enum cli_arg { A_NONE, A_REQ, A_LIST, A_OPT };

enum cli_opt_id {
#define OPT(id, s, l, a, m, env, extra, verbs, help) id,
#include "options.def"
#undef OPT
	O_COUNT
};

struct cli_opt {
	enum cli_opt_id id;
	char short_name;
	const char *long_name;
	enum cli_arg arg;
	const char *metavar;
	const char *env;
	const char *extra_env;
	unsigned verbs;
	const char *help;
};

extern const struct cli_opt cli_opts[O_COUNT];

struct cli_args {
	bool set[O_COUNT];
	char *val[O_COUNT];   /* A_REQ/A_OPT: the value (NULL for a bare A_OPT) */
	char **list[O_COUNT]; /* A_LIST: NULL-terminated, comma lists split */
	size_t nlist[O_COUNT];
	const char *source[O_COUNT]; /* "command line" or the env var's name */
	char **pos;                  /* positional arguments (not owned) */
	int npos;
};

struct cli_verb {
	const char *name;
	unsigned bit;
	int (*run)(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);
	bool interspersed; /* false: options end at the first positional (exec IMAGE cmd -x) */
	const char *usage;
	const char *summary;
	const char *description;
	const char *examples;
};

/* Parse argv (starting after the verb) for verb V, then fill what the command
 * line left unset from the environment.  Returns 0, or < 0 with err set and a
 * one-line message (unknown flag with a suggestion, missing value). */
int cli_parse(const struct cli_verb *v, int argc, char **argv, struct cli_args *a,
              struct sifu_err *err);
/* Pure: read an option's value from environment-like lookup (tests pass their own). */
typedef const char *(*cli_getenv_fn)(const char *name);
int cli_apply_env(const struct cli_verb *v, struct cli_args *a, cli_getenv_fn get,
                  struct sifu_err *err);
void cli_args_free(struct cli_args *a);
/* The variable name (without SIFU_/APPTAINER_/SINGULARITY_) that sets
 * option ID for the verb with bit VERB_BIT only, or NULL. */
const char *cli_opt_verb_env(unsigned verb_bit, enum cli_opt_id id);

/* The environment that is not an option (cli/env.c): NULL when unset or
 * empty, except where noted.  Only cli/ reads the environment; modules get
 * these values through their option structs. */
struct cli_env {
	const char *home, *user, *path, *tmpdir;
	const char *build_tmpdir; /* SIFU_, APPTAINER_, SINGULARITY_TMPDIR, TMPDIR */
	const char *xdg_config_home, *xdg_cache_home;
	const char *cachedir;    /* SIFU_, APPTAINER_, SINGULARITY_CACHEDIR */
	const char *block_cache; /* SIFU_BLOCK_CACHE ("" turns it off) */
	const char *docker_config;
	const char *ca_bundle;    /* SIFU_CA_BUNDLE, CURL_CA_BUNDLE, SSL_CERT_FILE */
	const char *pull_retries; /* SIFU_PULL_RETRIES */
	const char *source_date_epoch;
	const char *busybox;             /* SIFU_BUSYBOX */
	const char *debootstrap;         /* SIFU_DEBOOTSTRAP */
	const char *debootstrap_include; /* INCLUDE (as Apptainer) */
	const char *keysdir;             /* SIFU_KEYSDIR */
	const char *passphrase;          /* SIFU_PASSPHRASE ("" is one) */
	const char *key_algo;            /* SIFU_KEY_ALGO */
	/* Apptainer's per-user directory: $APPTAINER_CONFIGDIR (then
	 * SINGULARITY_CONFIGDIR), else HOME/.apptainer; NULL without either */
	const char *configdir;
	const char *no_color; /* NO_COLOR (set at all), or a true *_NOCOLOR: no colour */
	/* Apptainer's global flags as variables (APPTAINER_DEBUG, then
	 * SINGULARITY_DEBUG, …): true/false words as Go's ParseBool reads them */
	const char *debug, *verbose, *quiet, *silent, *nocolor;
	const char *messagelevel; /* APPTAINER_MESSAGELEVEL: sylog's number */
	const char *columns;      /* COLUMNS (help's width) */
	const char *no_openat2;   /* SIFU_NO_OPENAT2 (tests) */
};
/* Pure: fill E through GET (tests pass their own). */
void cli_env_fill(struct cli_env *e, cli_getenv_fn get);
/* The process's environment, read once. */
const struct cli_env *cli_env_get(void);
/* $TMPDIR when it is an absolute path, else /tmp. */
const char *cli_tmp_base(void);
/* Levenshtein distance, for "did you mean". Pure. */
size_t cli_edit_distance(const char *a, const char *b);
/* The closest of CANDIDATES (NULL-terminated) to WORD, or NULL if none is near. */
const char *cli_suggest(const char *word, const char *const *candidates);
/* caps.c: capability NAME's number (any case, CAP_ optional), or -1; and
 * every capability sifu knows, as a mask (bit N: capability N).  Pure. */
int cli_cap_bit(const char *name);
uint64_t cli_caps_all(void);
/* Parse "1M", "512k", "2G", "4096" into bytes. Pure. */
int cli_parse_size(const char *s, uint64_t *out);
struct sqf_options;
/* --chunk-size, --cache-size, --readahead, --prefetch, --image-io,
 * --owner-self → O (defaults first); cmd_mount.c. */
int cli_fuse_options(struct cli_args *a, struct sqf_options *o, struct sifu_err *err);
/* The block cache's directory for --block-cache V (NULL: the default,
 * $TMPDIR/sifu-UID/blocks, written into BUF), or NULL when V turns it off. */
const char *cli_block_cache_path(const char *v, char *buf, size_t len);
/* Open that directory DIR (DFLT: the default, whose sifu-UID/ and blocks/ are
 * both checked; else DIR's last component) through fds, made mode 0700 when
 * CREATE and missing: a dirfd, or -errno with err saying which directory,
 * what is wrong and (hint) what to do; -ENOENT when !CREATE and missing. */
int cli_block_cache_open(const char *dir, bool dflt, bool create, struct sifu_err *err);
bool cli_parse_bool(const char *s, bool *out);
/* The one positional argument of VERB, an image; NULL with ERR set ("VERB
 * takes one image (sifu VERB [options] IMAGE)") when there is not one. */
const char *cli_one_image(const struct cli_args *a, const char *verb, struct sifu_err *err);

void cli_print_verb_help(FILE *f, const struct cli_verb *v);
void cli_print_verb_markdown(FILE *f, const struct cli_verb *v);
/* The overview of sifu and its NVERBS VERBS (cli_verbs: the table lives in
 * verbs.c, which calls these formatters, never the other way round). */
void cli_print_main_help(FILE *f, const struct cli_verb *verbs, size_t nverbs);
void cli_print_main_markdown(FILE *f, const struct cli_verb *verbs, size_t nverbs);

const struct cli_verb *cli_find_verb(const char *name);
/* completion.c: the bash completion script for the NVERBS VERBS and their
 * flags. */
void cli_print_bash_completion(FILE *f, const struct cli_verb *verbs, size_t nverbs);
extern const struct cli_verb cli_verbs[];
extern const size_t cli_nverbs;

/* The error that ends the command: "FATAL:   <message>", the hint indented
 * on the next line; with --debug the chain. */
void cli_report(const char *verb, const struct sifu_err *err);
/* verbs.c: print sifu's version; once main has seen sifu called as
 * apptainer or singularity (argv[0], e.g. a symlink), Apptainer's
 * (SIFU_APPTAINER_VERSION) as Apptainer prints it: FLAG (--version) as
 * "apptainer version X", even called as singularity, as Apptainer does and
 * cwltool and Snakemake expect; the verb as the bare number.  With --debug
 * a line on stderr says it is sifu. */
void cli_set_as_apptainer(bool yes);
void cli_print_version(bool flag);

/* cmd_cache.c: where the blob and image cache is (SIFU_CACHEDIR, then
 * APPTAINER_CACHEDIR, then SINGULARITY_CACHEDIR, then
 * $XDG_CACHE_HOME/sifu, then ~/.cache/sifu of a usable home, then a private
 * $TMPDIR/sifu-UID/cache), and where --disable-cache makes a temporary one.
 * The strings live as long as the process. */
struct fetch_cache_loc;
void cli_cache_loc(struct fetch_cache_loc *loc);

/* cmd_key.c: where the OpenPGP keyring is and how it gets a passphrase, from
 * the environment ($SIFU_KEYSDIR, $XDG_CONFIG_HOME, $HOME, $SIFU_PASSPHRASE,
 * $SIFU_KEY_ALGO); it lives as long as the process. */
struct sif_keyring_opts;
const struct sif_keyring_opts *cli_keyring(void);
/* cmd_key.c: load the PEM keys at PATHS[0..N) (private ones for signing)
 * into *KEYS (N entries, malloc'ed); free them with cli_pemkeys_free. */
struct sif_pemkey;
int cli_pemkeys_load(char *const *paths, size_t n, bool private_key, struct sif_pemkey ***keys,
                     struct sifu_err *err);
void cli_pemkeys_free(struct sif_pemkey **keys, size_t n);
/* cmd_sif.c: how SIF images are stamped ($SOURCE_DATE_EPOCH); lives as long
 * as the process. */
struct sif_write_opts;
const struct sif_write_opts *cli_sif_write(void);

/* cmd_pull.c: the registry/source options of pull, shared with the actions
 * (sifu exec docker://…).  *user and *pass are malloc'ed (or NULL). */
struct fetch_pull_opts;
int cli_pull_opts(struct cli_args *a, struct fetch_pull_opts *o, char **user, char **pass,
                  struct sifu_err *err);
/* The launcher binary (`sifu`) carries what `exec`/`run`/… need; the rest
 * (pull, build, sign, verify, key, cache, registry; --verify and URI images
 * on the actions) lives in `sifu-all`, which it executes with the same
 * arguments.  Does not return on success; in sifu-all itself it fails. */
int cli_delegate_full(struct sifu_err *err);
/* Verbs defined in their own files. */
int cli_not_built(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);
int cmd_version(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);
int cmd_help(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);
