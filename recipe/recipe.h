/* SPDX-License-Identifier: BSD-3-Clause */
/* recipe/: definition files — parse, bootstrap agents, %post as fake root in a
 * user namespace, sandbox dirs.
 *
 * This header holds the definition-file model: a pure parser (no system
 * calls but reading the file) that turns Apptainer's format into a
 * structured recipe, the {{ template }} expansion with build arguments, and
 * a serialiser back to definition-file text (stored in the image).
 *
 * The format, as Apptainer parses it (pkg/build/types/parser/deffile.go):
 *  - A file holds one or more stages; a new stage starts at every line that
 *    begins, in column 0 and in any case, with "bootstrap:" (the first one
 *    may also be an indented "Bootstrap :" line).  Only comments and blank
 *    lines may come before it.
 *  - Each stage is a header of "Key: value" lines (keys case-insensitive,
 *    '#' starts a comment, a value ending in '\' continues on the next
 *    line, a trailing literal "\n" before it becomes a newline), then
 *    sections.  A section starts at any line whose first word begins with
 *    '%'; its name (case-insensitive) is followed by optional arguments
 *    ("%post -c /bin/bash", "%files from build", "%apprun NAME").
 *  - Repeated sections are concatenated; %files sections group by their
 *    arguments ("%files" vs "%files from build").
 *  - {{ NAME }} is replaced, before parsing, by a --build-arg value or the
 *    stage's %arguments default; not after a '#' that starts a comment.
 *    An undefined NAME is an error, and so is any template left over.
 *  - Errors are "FILE:LINE: what is wrong" with a hint of what was expected;
 *    where Apptainer accepts something odd, a warning goes to ->warnings.
 * docs/build.md lists where sifu differs from Apptainer, and why.
 */
#pragma once

#include "common.h"

/* True once this module can build images; the CLI says "not available"
 * until then.  Parsing is available regardless. */
bool recipe_available(void);

/* A script section: its arguments ("-c /bin/bash") and its text, as the
 * lines that followed the section line, each ending in '\n'.  line is where
 * the (first) section line was, 0 if the section is absent. */
struct recipe_script {
	char *args; /* NULL when none */
	char *text; /* NULL when absent; may be "" */
	unsigned line;
};

struct recipe_kv {
	char *key;
	char *value;
	unsigned line;
};

/* One %files line: SRC [DST]; dst is NULL when omitted (same as src). */
struct recipe_file {
	char *src;
	char *dst;
	unsigned line;
};

/* All %files sections with the same arguments, in order. */
struct recipe_files {
	char *args;       /* NULL, or "from STAGE" as written */
	char *from_stage; /* STAGE of "from STAGE", else NULL */
	struct recipe_file *files;
	size_t nfiles;
	unsigned line;
};

/* A SCIF app: the %app* sections naming it. */
struct recipe_app {
	char *name;
	struct recipe_script install, run, env, help, test, start;
	struct recipe_kv *labels; /* %applabels */
	size_t nlabels;
	struct recipe_file *files; /* %appfiles */
	size_t nfiles;
	unsigned line; /* first section of this app */
};

/* Header keys, lower case, as Apptainer knows them.  OtherURL<N> is valid
 * for any number N. */
struct recipe_stage {
	unsigned line;            /* the Bootstrap line */
	struct recipe_kv *header; /* keys lower case, in file order, unique */
	size_t nheader;
	const char *bootstrap; /* lower case; points into header */
	const char *from;      /* NULL if absent */
	const char *name;      /* Stage:, NULL if absent */

	struct recipe_script help, setup, environment, pre, post, runscript, startscript, test,
	    arguments;
	struct recipe_kv *labels; /* %labels, later keys replace earlier values */
	size_t nlabels;
	struct recipe_files *files; /* one group per distinct %files arguments */
	size_t nfiles;
	struct recipe_app *apps; /* in order of first appearance */
	size_t napps;
};

struct recipe {
	char *name; /* the file name used in messages */
	/* the definition as written, build-argument templates replaced: what
	 * Apptainer stores in the image and its Def.FILE object (FullRaw) */
	char *raw;
	struct recipe_stage *stages;
	size_t nstages;
	char **warnings; /* things Apptainer accepts with a warning */
	size_t nwarnings;
	/* build arguments the file never uses: Apptainer refuses the build
	 * unless --warn-unused-build-args (cli/ decides) */
	char **unused;
	size_t nunused;
};

/* Build arguments: --build-arg-file lines, then --build-arg K=V (later
 * values replace earlier ones). */
struct recipe_buildargs {
	struct recipe_kv *v;
	size_t n;
	char **warnings;
	size_t nwarnings;
};

/* "KEY=VALUE" (key and value trimmed, as Apptainer). */
int recipe_buildargs_add(struct recipe_buildargs *ba, const char *kv, struct sifu_err *err);
/* The text of a --build-arg-file: K=V lines; blank lines and '#' lines are
 * skipped, other lines without '=' are skipped with a warning (as
 * Apptainer). NAME is used in messages. */
int recipe_buildargs_add_text(struct recipe_buildargs *ba, const char *name, const char *text,
                              size_t len, struct sifu_err *err);
int recipe_buildargs_load(struct recipe_buildargs *ba, const char *path, struct sifu_err *err);
void recipe_buildargs_free(struct recipe_buildargs *ba);

/* Parse the definition TEXT (LEN bytes, need not be NUL-terminated); NAME
 * is the file name for messages; BA may be NULL.  On failure err holds one
 * line "NAME:LINE: what is wrong" and a hint saying what was expected. */
int recipe_parse(const char *name, const char *text, size_t len, const struct recipe_buildargs *ba,
                 struct recipe **out, struct sifu_err *err);
/* Read PATH (at most 16 MiB) and parse it. */
int recipe_load(const char *path, const struct recipe_buildargs *ba, struct recipe **out,
                struct sifu_err *err);
void recipe_free(struct recipe *r);

/* The recipe as definition-file text (what the image stores): stages in
 * order, each header with Bootstrap first, then its sections.  Parsing the
 * result gives the same recipe.  Returns a malloc'd string. */
char *recipe_serialize(const struct recipe *r);

/* The value of header KEY (any case) in a stage, or NULL. */
const char *recipe_header_get(const struct recipe_stage *s, const char *key);
/* The stage named NAME, or NULL. */
const struct recipe_stage *recipe_find_stage(const struct recipe *r, const char *name);

/* The interpreter line and body of a runscript/startscript/test as
 * Apptainer writes them: "#!/bin/sh" unless the text starts with a "#!"
 * line, plus the section arguments (up to a '#').  Both malloc'd. */
void recipe_script_shebang(const struct recipe_script *s, char **shebang, char **body);

/* Bootstrap agents Apptainer knows, and whether sifu's builder does. */
bool recipe_agent_known(const char *agent);

/* ------------------------------------------------------------ building -- */
struct fetch_pull_opts;
struct sif_write_opts;
struct sif_keyring_opts;
struct ns_bind;

/* What `sifu build` was asked for. */
struct recipe_build_opts {
	const char *output; /* the SIF, or the directory with sandbox */
	bool sandbox;       /* write a directory instead of a SIF */
	bool force;         /* replace an existing output */
	bool update;        /* run the sections over an existing sandbox */
	bool notest;        /* skip %test */
	bool fix_perms;     /* owner rwX on everything in the result */
	bool data;          /* recipe_convert: a data partition, no container metadata (--data) */
	bool no_cleanup;    /* keep a failed build's temporary directory (--no-cleanup) */
	bool userns_subid;  /* map the caller's /etc/subuid range (newuidmap) */
	char *const *sections;              /* --section names (NULL-terminated) or NULL: all */
	const struct fetch_pull_opts *pull; /* how to reach docker:// etc. */
	char *const *host_env;              /* %setup's and debootstrap's environment */
	const char *source_text;            /* the definition file as stored in the image */
	/* from the environment (cli/ reads it; NULL or "" where unset) */
	const char *tmpdir;      /* where a SIF build's temporary directory goes; else /tmp */
	const char *busybox;     /* Bootstrap: busybox: this static busybox first */
	const char *debootstrap; /* Bootstrap: debootstrap: this executable... */
	const char *path; /* ...else debootstrap in this $PATH-style list; also newuidmap's */
	const char *debootstrap_include;        /* more packages for Include: (as $INCLUDE) */
	const struct sif_write_opts *sif_write; /* the SIF's times (NULL: the clock) */
	const struct sif_keyring_opts *keyring; /* Fingerprints: the OpenPGP keyring */
	/* --bind and --mount: given to %post and %test, as Apptainer's
	 * stage.go passes its -B list to both; bind_list is APPTAINER_BIND */
	struct ns_bind *binds;
	size_t nbinds;
	const char *bind_list;
	bool writable_tmpfs; /* %test on a throw-away writable layer */
	/* SOURCE_DATE_EPOCH or --reproducible: the build-date label says EPOCH
	 * (the SIF's times and the SquashFS's come through sif_write and
	 * pull->squash) */
	bool fixed_time;
	int64_t epoch;
};

/* Build R (already parsed and expanded) into o->output: each stage in a
 * private temporary directory, bootstrap, %setup on the host, %files,
 * /.singularity.d, %post as fake root in a user namespace, %test, then one
 * SquashFS into a new SIF (or the directory itself with o->sandbox).  The
 * output appears under its final name only when everything succeeded. */
int recipe_build(const struct recipe *r, const struct recipe_build_opts *o, struct sifu_err *err);
/* Convert SOURCE (a SIF, a bare SquashFS, a sandbox directory or a
 * docker://, oci: ... URI) into o->output, with no definition file. */
int recipe_convert(const char *source, const struct recipe_build_opts *o, struct sifu_err *err);
