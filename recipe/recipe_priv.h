/* SPDX-License-Identifier: BSD-3-Clause */
/* recipe/: what the module's files share - not its API (that is recipe.h).
 *
 * Two prefixes, so that a name says who may call it: recipe_ is the API in
 * recipe.h, which cli/ calls; bld_ is what one file of this module offers the
 * others here (and the unit tests), never cli/.
 *
 * One job per file, and calls go down this list only (scripts/check-calls):
 *   build.c        the build sequence: recipe_build, recipe_convert
 *   bootstrap.c    bootstrap agents: the base root file system of a stage
 *   debootstrap.c  Bootstrap: debootstrap as fake root
 *   layout.c       /.singularity.d: actions, scripts, environment, labels
 *   fakeroot.c     a child process under the seccomp fake root
 *   tree.c         directory trees: copy in, remove, write as SquashFS
 *   seccomp.c      the seccomp filter and the owners its chowns record
 *   interrupt.c    the build's signals: caught, checked, passed on
 *   recipe.c       reading definition and build-argument files
 *   serialize.c    the recipe back to definition-file text
 *   deffile.c      the definition-file parser (pure) */
#pragma once

#include "recipe.h"
#include "fetch.h"
#include "squash.h"

#include <signal.h>

/* deffile.c */
/* The spelling the serialiser writes for a lower-case header KEY. */
void bld_header_display(const char *key, char *buf, size_t len);
/* Trim blanks (space, tab, \r, \v, \f) off both ends of [*S, *S + *N). */
void bld_trim(const char **s, size_t *n);

/* recipe.c */
/* Is the section NAME one the build runs (--section)? */
bool bld_section_on(const struct recipe_build_opts *o, const char *name);

/* interrupt.c */
/* < 0 with ERR set once SIGINT, SIGTERM or SIGHUP came during the build. */
int bld_check_interrupted(struct sifu_err *err);
/* The signal to pass on to a child being waited for (sifu_proc_wait's
 * FORWARD): SIGINT for SIGINT, else SIGTERM; 0 before any came. */
extern volatile sig_atomic_t bld_forward;
/* Catch those three signals for the length of a build (restore after). */
struct bld_signals {
	struct sigaction old[3];
};
void bld_signals_catch(struct bld_signals *s);
void bld_signals_restore(struct bld_signals *s);

/* tree.c */
/* Remove NAME below DIRFD recursively (making read-only directories
 * writable on the way); missing is fine. */
int bld_rm_tree(int dirfd, const char *name);
/* Copy the host path SRC (symlinks followed, as `cp -L`) or, with SRCROOT
 * >= 0, the path SRC resolved inside SRCROOT (symlinks copied as they are)
 * to DST inside ROOTFD, as Apptainer's %files: into DST when it is an
 * existing directory, else as DST (parents created). */
int bld_copy_in(int srcroot, const char *src, int rootfd, const char *dst, struct sifu_err *err);
/* Copy the whole directory SRCFD into DSTFD (symlinks as they are). */
int bld_copy_dir(int srcfd, int dstfd, struct sifu_err *err);
/* Give the owner rwX on everything below DIRFD (--fix-perms). */
int bld_fix_perms(int dirfd, struct sifu_err *err);
/* Write the tree below ROOTFD into IMG (owner: the caller's ids become 0,
 * unless OWNERS (may be NULL) recorded another for the inode).  Files with
 * several links become hard links to the first path seen; *LINK_PROBES (may
 * be NULL) counts the lookups that took, for the tests (linear). */
struct bld_owners;
int bld_squash_dir(int rootfd, const struct bld_owners *owners, struct sq_image *img,
                   uint64_t *link_probes, struct sifu_err *err);
/* Create or replace the file PATH inside ROOTFD with DATA. */
int bld_write_file(int rootfd, const char *path, mode_t mode, const char *data,
                   struct sifu_err *err);
/* Read the file PATH inside ROOTFD, malloc'ed: NULL if missing, unreadable
 * or longer than MAX bytes. */
char *bld_read_file(int rootfd, const char *path, size_t max);
/* Is there anything at PATH inside ROOTFD (symlinks followed in the root)? */
bool bld_file_exists(int rootfd, const char *path);
/* A symlink PATH -> TARGET inside ROOTFD (replacing a file or link there). */
int bld_symlink(int rootfd, const char *target, const char *path, struct sifu_err *err);

/* bootstrap.c */
struct bld_stage_ctx {
	const struct recipe_stage *st;
	int rootfd;           /* O_PATH|O_DIRECTORY of the stage's rootfs */
	const char *rootpath; /* absolute path of the rootfs */
	const char *workdir;  /* the build's private temporary directory */
	const struct recipe_build_opts *o;
	bool subid;                /* root of a subordinate-id namespace already */
	struct bld_owners *owners; /* where the fake root records chowns */
};
int bld_bootstrap(const struct bld_stage_ctx *c, struct sifu_err *err);
/* Extract or copy a local image (SIF, SquashFS, directory) into ROOTFD. */
int bld_unpack_local(const char *path, int rootfd, struct sifu_err *err);

/* layout.c */
/* The /.singularity.d layout (and the directories every image has) in
 * ROOTFD: what a base image has stays unless the stage ST replaces it. */
int bld_write_layout(int rootfd, const struct recipe_stage *st, const struct recipe_build_opts *o,
                     struct sifu_err *err);
/* %environment as /.singularity.d/env/90-environment.sh. */
int bld_write_environment(int rootfd, const struct recipe_stage *st,
                          const struct recipe_build_opts *o, struct sifu_err *err);
/* labels.json: the base image's labels, Apptainer's build labels, %labels,
 * then what %post wrote to $APPTAINER_LABELS ("KEY VALUE" lines). */
int bld_write_labels(int rootfd, const struct recipe_stage *st, const struct recipe_build_opts *o,
                     struct sifu_err *err);

/* apps.c */
/* The /scif tree of the stage's %app* sections and 94-appsbase.sh, as
 * Apptainer's build makes them (nothing without apps). */
int bld_apps_create(int rootfd, const struct recipe_stage *st, struct sifu_err *err);
/* POST (may be NULL) followed by each app's %appinstall, run in its
 * /scif/apps/NAME with its 01-base.sh sourced: the script %post runs. */
char *bld_apps_post(const struct recipe_stage *st, const char *post);

/* fakeroot.c */
/* What runs in the child of bld_run_fakeroot: < 0 with err set, else the
 * exit status. */
typedef int (*bld_child_fn)(void *arg, struct sifu_err *err);
/* Run FN(ARG) in a child process under the seccomp fake root (bld_seccomp_
 * fakeroot; SUBID: devices only), recording the chowns it asks for in
 * OWNERS; a signal to sifu reaches the child.  *STATUS: its exit status. */
int bld_run_fakeroot(bld_child_fn fn, void *arg, bool subid, struct bld_owners *owners, int *status,
                     struct sifu_err *err);

/* debootstrap.c */
/* Bootstrap: debootstrap - the host's debootstrap as fake root. */
int bld_debootstrap(const struct bld_stage_ctx *c, struct sifu_err *err);
/* Is there a debootstrap to run?  (Checked before a build starts.) */
int bld_debootstrap_check(const struct recipe_build_opts *o, struct sifu_err *err);

/* seccomp.c */
/* In the calling process: make chown to any id, setuid/setgid/setgroups
 * families and mknod of devices report success without effect.  With
 * NOTIFY not NULL the chown family goes to a seccomp user-notification
 * listener instead, returned in *NOTIFY (-1 where the kernel has none): its
 * server (bld_owners_serve) records the owners asked for and answers
 * success.  DEVICES_ONLY (subordinate ids: the rest is real) fakes mknod of
 * devices and nothing else. */
int bld_seccomp_fakeroot(int *notify, bool devices_only, struct sifu_err *err);

/* What the faked chowns asked for, by inode. */
struct bld_owner {
	dev_t dev;
	ino_t ino;
	uint32_t uid, gid; /* (uint32_t)-1: not changed */
};
struct bld_owners {
	struct bld_owner *v;
	size_t n, cap;
};
/* Serve the listener FD until STOPFD becomes readable or no process is
 * left under the filter (a thread; FD is closed at the end). */
struct bld_owner_server;
int bld_owners_serve(int fd, struct bld_owners *o, struct bld_owner_server **out,
                     struct sifu_err *err);
void bld_owners_stop(struct bld_owner_server *s);
/* The recorded owner of DEV/INO: *UID and *GID changed only where a chown
 * asked for them. */
void bld_owners_lookup(const struct bld_owners *o, dev_t dev, ino_t ino, uint32_t *uid,
                       uint32_t *gid);
void bld_owners_free(struct bld_owners *o);
