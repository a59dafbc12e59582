/* SPDX-License-Identifier: BSD-3-Clause */
/* userns/: the unprivileged launcher — namespaces, id maps, the mount tree,
 * passwd/group, environment, the supervisor, exec.
 *
 * One process per run (docs/running.md, "What happens at start-up"; who owns
 * which process and fd: docs/design.md, "userns/"): ns_launch() unshares a
 * user and a mount namespace, maps the caller's ids, mounts the image through
 * the in-process FUSE server, forks the payload and supervises it.  The pure
 * parts (bind specs, id maps, passwd/group editing, the environment) are
 * separate functions without system calls, unit-tested. */
#pragma once

#include "common.h"
#include "sqfuse.h"

/* Does this kernel let an unprivileged process create a user namespace?
 * Fills err with the cause and the remedy when it does not.  Probes by doing
 * it (in a short-lived child), never by reading version numbers. */
int ns_probe_userns(struct sifu_err *err);

/* Subordinate ids: a range of /etc/subuid or /etc/subgid. */
struct ns_subid {
	unsigned start, count;
};
/* The first range of USER (or of the numeric ID) in the text of
 * /etc/subuid or /etc/subgid ("name:start:count" lines); -ENOENT if none. */
int ns_subid_find(const char *text, const char *user, unsigned id, struct ns_subid *out);
/* Make the calling process (single-threaded) uid and gid 0 of a new user
 * namespace mapping 0 to the caller and 1..N to the caller's subordinate
 * ranges (returned), through the host's newuidmap and newgidmap, looked for
 * in SEARCH (the caller's $PATH, may be NULL; see sifu_find_exe).  Nothing
 * else is unshared.  Errors say what is missing: an /etc/subuid or
 * /etc/subgid entry, or newuidmap/newgidmap. */
int ns_enter_subid(const char *search, struct ns_subid *uids, struct ns_subid *gids,
                   struct sifu_err *err);

/* ------------------------------------------------------------ pure parts -- */

/* A string vector, NULL-terminated. */
struct ns_strv {
	char **v;
	size_t n, cap;
};
void ns_strv_push(struct ns_strv *s, const char *str); /* copies */
void ns_strv_push_take(struct ns_strv *s, char *str);  /* takes */
void ns_strv_free(struct ns_strv *s);
/* Environment-style access ("KEY=VALUE" entries). */
const char *ns_env_get(const struct ns_strv *env, const char *key);
void ns_env_set(struct ns_strv *env, const char *key, const char *value);
void ns_env_unset(struct ns_strv *env, const char *key);

struct ns_bind {
	char *src; /* host path */
	char *dst; /* container path (absolute) */
	bool ro;
	bool opts;     /* the spec had an options field (SRC:DST:OPTS) */
	bool nonested; /* --mount's nonested: kept out of APPTAINER_BIND */
	/* an image bind (image-src= or id= given): SRC is a SquashFS or ext3
	 * file or a SIF whose partition (ID, or its first data partition when
	 * 0) is mounted and its directory IMAGE_SRC bound onto DST; read-only,
	 * but for ext3 without RO in a file the caller may write */
	char *image_src;
	uint32_t id;
};
void ns_bind_free(struct ns_bind *b);
/* Apptainer's bind option words: ro, rw, image-src=PATH, id=N. */
bool ns_bind_is_option(const char *word);
/* Apply one option word to B (SPEC names the bind in messages).  The CLI
 * splits -B values at commas, so "SRC:DST:image-src=/d,id=2" arrives as
 * two words and the second is applied to the bind of the first. */
int ns_bind_option(struct ns_bind *b, const char *spec, const char *opt, struct sifu_err *err);
/* "src[:dst[:opts]]", opts words ro, rw, image-src=PATH, id=N separated by
 * commas (the CLI has split comma lists already: see ns_bind_option).  dst defaults to src; both must be absolute
 * a relative src is taken from CWD (when not NULL). */
int ns_bind_parse(const char *spec, const char *cwd, struct ns_bind *out, struct sifu_err *err);
/* "type=bind,src=…,dst=…[,ro|readonly][,image-src=…][,id=N]" (Docker/Apptainer
 * --mount form). */
int ns_mount_parse(const char *spec, const char *cwd, struct ns_bind *out, struct sifu_err *err);

/* One line of /proc/PID/uid_map or gid_map: "INSIDE OUTSIDE COUNT\n". */
int ns_idmap_format(char *buf, size_t len, unsigned inside, unsigned outside, unsigned count);

/* The image's /etc/passwd (may be NULL or "") with the entry for NAME or UID
 * replaced or added.  Returns a new string. */
char *ns_passwd_edit(const char *passwd, const char *name, unsigned uid, unsigned gid,
                     const char *gecos, const char *home, const char *shell);
/* The image's /etc/group with the group GID (named NAME) listing USER added
 * or replaced.  Returns a new string. */
char *ns_group_edit(const char *group, const char *name, unsigned gid, const char *user);

/* One line of /proc/PID/mountinfo: the mount's ID, its parent's, where it
 * is mounted (unescaped, as the reading process sees it) and its per-mount
 * flags as mount(2) takes them (MS_RDONLY MS_NOSUID MS_NODEV MS_NOEXEC, the
 * atime flags - MS_STRICTATIME when none is shown - and nosymfollow). */
#define NS_MS_NOSYMFOLLOW 256 /* MS_NOSYMFOLLOW, Linux 5.10 */
struct ns_mountinfo {
	int id, parent;
	char *mnt_point;
	unsigned long flags;
};
/* Parse the text of a mountinfo file; SIFU_E_CORRUPT names a bad line. */
int ns_mountinfo_parse(const char *text, struct ns_mountinfo **out, size_t *n,
                       struct sifu_err *err);
void ns_mountinfo_free(struct ns_mountinfo *m, size_t n);
/* The indices (into M) of the mount ROOT and of every mount below it,
 * parents before children, into IDX (room for N); returns how many (0 when
 * ROOT is not listed). */
size_t ns_mountinfo_subtree(const struct ns_mountinfo *m, size_t n, int root, size_t *idx);
/* The identity map ("ID ID COUNT" lines) of every range a uid_map or gid_map
 * text maps inside.  *single is the one id mapped when the map is a single
 * id, else UINT_MAX.  -EINVAL for a malformed or empty map, -ENOSPC. */
int ns_idmap_identity(const char *map, char *out, size_t len, unsigned *single);

/* Apptainer's rule: the current directory is not bound when it is "/" or a
 * system directory itself (/etc, /usr, /opt, …) or lies below /proc, /sys
 * or /dev. */
bool ns_cwd_is_skipped(const char *cwd);

/* The environment: what the payload starts with (base) and what is applied
 * after the image's /.singularity.d/env scripts (overrides, in order). */
/* NS_ENV_SET values are evaluated in the container as Apptainer evaluates
 * them (inside double quotes: $VAR, $(cmd), \$ for a literal $);
 * NS_ENV_LITERAL ones (sifu's own runtime variables) are not. */
enum ns_env_op { NS_ENV_SET, NS_ENV_LITERAL, NS_ENV_PREPEND_PATH, NS_ENV_APPEND_PATH };
struct ns_env_override {
	enum ns_env_op op;
	char *key, *value;
	/* --no-eval: a user value taken as it is, whatever its op (the path
	 * joins and the libraries after LD_LIBRARY_PATH still apply) */
	bool literal;
};
struct ns_env {
	struct ns_strv base;
	struct ns_env_override *ov;
	size_t nov;
	/* the payload's ids, for $UID and $GID where the shell has none (the
	 * payload fills them in just before it execs) */
	unsigned long uid, gid;
	/* shell text run first and right before the action's exec (the
	 * --runscript-timeout watchdog's trap and signal), owned, or NULL */
	char *script_head, *script_tail;
};
struct ns_env_spec {
	char *const *host; /* the host environment */
	bool cleanenv;
	/* the contents of each --env-file, in order (a later file's value
	 * beats an earlier one's, --env beats them all, as Apptainer merges
	 * them), NULL-terminated, or NULL; their names, for messages, or NULL */
	char *const *env_files;
	char *const *env_file_names;
	char *const *env_opts; /* --env K=V items, NULL-terminated, or NULL */
	const char *home;      /* $HOME inside */
	const char *container; /* APPTAINER_CONTAINER */
	const char *name;      /* APPTAINER_NAME */
	const char *command;   /* exec run shell test */
	const char *bind;      /* APPTAINER_BIND (comma list), or "" */
	bool no_eval;          /* --no-eval: the user's values are not evaluated */
	const char *app;       /* --app: APPTAINER_APPNAME, SINGULARITY_APPNAME; or NULL */
	char *const *no_env;   /* --no-env: host names not passed in, or NULL */
};
int ns_env_build(const struct ns_env_spec *s, struct ns_env *out, struct sifu_err *err);
void ns_env_free(struct ns_env *e);
/* Parse an env file (K=V lines, '#' comments, optional "export "): each
 * value is one shell word with its quotes and one level of backslashes
 * removed, $VAR left for the evaluation in the container (so
 * PATH="\$PATH:/" gives $PATH:/, as Apptainer's). */
int ns_env_file_parse(const char *text, struct ns_strv *out, struct sifu_err *err);
/* A /bin/sh script that does what Apptainer's action script does: source
 * the image's env scripts (or a legacy /environment), apply the overrides
 * right after 99-base.sh, build LD_LIBRARY_PATH, then run "$@". */
char *ns_env_script(const struct ns_env *e);
/* The final environment when there is no shell to source scripts with. */
/* Whether E's values need a shell to be evaluated as Apptainer evaluates
 * them (command substitution, ${...} forms, the ldconfig directories that a
 * PREPEND_/APPEND_LD_LIBRARY_PATH brings in).  Pure. */
bool ns_env_needs_shell(const struct ns_env *e);
void ns_env_apply(const struct ns_env *e, struct ns_strv *out);

/* -------------------------------------------------------------- the launch -- */

enum ns_action { NS_EXEC, NS_RUN, NS_SHELL, NS_TEST };

/* --no-mount names */
enum {
	NS_NOMOUNT_HOME = 1u << 0,
	NS_NOMOUNT_CWD = 1u << 1,
	NS_NOMOUNT_TMP = 1u << 2,
	NS_NOMOUNT_PROC = 1u << 3,
	NS_NOMOUNT_SYS = 1u << 4,
	NS_NOMOUNT_DEV = 1u << 5,
	NS_NOMOUNT_HOSTS = 1u << 6,
	NS_NOMOUNT_LOCALTIME = 1u << 7,
	NS_NOMOUNT_RESOLV = 1u << 8,
	NS_NOMOUNT_PASSWD = 1u << 9,
	NS_NOMOUNT_DEVPTS = 1u << 10,
};
/* Parse one --no-mount word into the mask, with Apptainer's names
 * (launcher_linux.go setNoMountFlags): proc, sys, dev, devpts, home, tmp,
 * hostfs, cwd; "bind-paths" for every default bind path (hosts, localtime,
 * resolv.conf); an absolute path for the default bind of that destination
 * (one sifu does not make is accepted and changes nothing); and sifu's own
 * short names hosts, localtime, resolv.conf, passwd, group.  An unknown
 * word is an error. */
int ns_nomount_parse(const char *word, unsigned *mask, struct sifu_err *err);

/* An image the caller opened and checked itself (`--verify`): the launcher
 * serves this open file at exactly this range and never opens the path
 * again, so what runs is what was verified (sqf.verity then holds the block
 * digests the FUSE server checks every read against). */
struct ns_image_fd {
	int fd; /* O_RDONLY; the caller keeps it, the launcher dups it */
	uint64_t offset, size;
	uint32_t fstype; /* enum sif_fstype */
};

struct ns_config {
	const char *image;                /* SIF, bare SquashFS or sandbox directory */
	const struct ns_image_fd *opened; /* NULL: open IMAGE */
	enum ns_action action;
	char *const *args; /* exec: COMMAND ARGS; others: ARGS */
	int nargs;
	struct ns_bind *binds; /* --bind and --mount, in order */
	size_t nbinds;
	const char *bind_list; /* APPTAINER_BIND inside: the destinations */
	const char *home_spec; /* -H src[:dst], or NULL */
	bool no_home;
	unsigned no_mount;
	bool contain, pid, ipc, net, no_init;
	const char *hostname;
	bool uts; /* --uts: a new UTS namespace (also made by --hostname) */
	/* --dns: the servers the container's /etc/resolv.conf names instead of
	 * the host's file (NULL-terminated, validated addresses), or NULL */
	char *const *dns;
	/* --no-privs, --add-caps, --drop-caps (caps_set: any of them): the
	 * payload's capabilities, within its user namespace, as Apptainer's
	 * engine sets them: uid 0 keeps all unless no_privs, another uid gets
	 * only add_caps (ambient); drop_caps leave every set, the bounding set
	 * included.  Bit N is capability N. */
	/* --security uid:N, gid:N (when *_set): the ids the payload has in the
	 * container, mapped to the caller's own as --fakeroot maps 0 */
	bool target_uid_set, target_gid_set;
	uint32_t target_uid, target_gid;
	bool caps_set, no_privs;
	uint64_t add_caps, drop_caps;
	/* --security seccomp:: a classic BPF program (struct sock_filter[]) the
	 * payload loads just before it execs the action, or NULL */
	const void *seccomp_bpf;
	size_t seccomp_bpf_len;
	bool cleanenv;
	char *const *env_opts;
	char *const *env_files; /* --env-file paths, NULL-terminated, or NULL */
	const char *pwd;
	bool no_umask; /* the payload gets 0022, not the caller's umask */
	bool no_eval;  /* --no-eval: --env, --env-file, APPTAINERENV_ values literal */
	const char *workdir;
	/* --scratch: empty writable directories, a tmpfs each, or
	 * WORKDIR/scratch/DIR with --workdir (NULL-terminated, or NULL) */
	char *const *scratch;
	/* --no-env: host variables not passed in (NULL-terminated, or NULL) */
	char *const *no_env;
	/* --runscript-timeout: how long the image's env scripts may run before
	 * the run fails, in ms; 0 for Apptainer's default of a minute */
	unsigned long env_timeout_ms;
	bool writable_tmpfs, writable, fakeroot, unsquash;
	/* the caller is root of a user namespace of its own already
	 * (ns_enter_subid): unshare no new one and write no maps */
	bool in_userns;
	char *const *overlays; /* NULL-terminated, or NULL */
	const char *shell;     /* --shell */
	/* --app: the SCIF app (/scif/apps/NAME) whose runscript or test
	 * runs and whose environment the image's 95-apps.sh sets; or NULL */
	const char *app;
	struct sqf_options sqf;
	char *const *host_env;
	/* the caller's $HOME and $USER, used only where the passwd database
	 * has no entry for the caller; NULL when unset (cli/: cli_env_get()) */
	const char *home, *user;
};

/* Run the action; on success *status is the payload's exit status (128+N
 * after signal N).  < 0 with err set for sifu's own failures. */
int ns_launch(const struct ns_config *c, int *status, struct sifu_err *err);
