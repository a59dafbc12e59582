/* SPDX-License-Identifier: BSD-3-Clause */
/* userns/'s private header: what the files of the launch share - launch.c
 * (the parent and supervisor), prep.c (who, which image), tree.c (the
 * payload's mount tree), nest.c (the payload's own namespaces), payload.c
 * (init, action dispatch, exec), signals.c (forwarding and reaping) and
 * phase.c (--debug timings).  Everything here is prefixed ns_, like the
 * public API: the module is one library with one prefix. */
#pragma once

#include "userns.h"

#define NS_STAGE_MAX 64

enum ns_root_kind { NS_ROOT_DIR, NS_ROOT_FUSE, NS_ROOT_EXTRACT };

/* A host object bound into the container: opened on the host side (after
 * the mount namespace is unshared, so the fd names a mount in it). */
struct ns_hostbind {
	int fd;    /* O_PATH */
	char *dst; /* container path */
	bool ro, dir;
	bool user;    /* --bind/--mount: failures are errors, not warnings */
	bool scratch; /* --scratch (fd -1): below WORKDIR/scratch, not WORKDIR */
};

/* The file system of an image served besides the run's own (an --overlay
 * file, an image bind): each kind has its own server (images.c's table). */
enum ns_img_fs { NS_IMG_SQUASH, NS_IMG_EXT3 };

/* An image served by this process on a FUSE mount of its own at MNT in the
 * staging tree; the supervisor starts its server and stops it at the end. */
struct ns_img {
	int fd; /* O_RDONLY on the image file (the ext3 server reopens it to write) */
	uint64_t offset, size;
	enum ns_img_fs fs;
	bool layer;    /* an overlay layer (else an image bind) */
	bool writable; /* served read-write: the writable ext3 overlay */
	char *path;    /* as given, for messages */
	int fuse_fd;   /* the mounted /dev/fuse, -1 before */
	char mnt[16];  /* "/i<N>" in the staging tree */
	/* the supervisor's */
	struct sqf_image *sqf;
	struct sqf_server *srv;
	struct sqf_ext *ext;
	struct sqf_ext_server *esrv;
};

/* One --overlay, in the order given: a directory (DIR_FD) or an image. */
struct ns_layer {
	int dir_fd; /* O_PATH, or -1 for an image */
	int img;    /* index in imgs, or -1 */
	bool ro;
	char *path;
};

/* -B IMAGE:DST:image-src=SRC[,id=N]: SRC of imgs[IMG] bound onto DST */
struct ns_imgbind {
	int img;
	char *src, *dst;
};

/* One run's state, from ns_launch() to its end: who runs it, the image, the
 * host objects opened as fds, the staging directory, the environment.  The
 * launcher fills it; the payload child inherits a copy across fork(). */
struct ns_run {
	const struct ns_config *c;
	uint64_t t0, tlast;
	/* who */
	unsigned uid, gid;   /* host */
	unsigned cuid, cgid; /* inside */
	char *user, *group, *gecos, *shell, *host_home;
	char *home_dst; /* $HOME inside */
	char *cwd;      /* host cwd */
	/* the image */
	int image_fd;
	enum ns_root_kind kind;
	uint64_t offset, size;
	char *image_abs;
	/* host side, opened in the new mount namespace */
	struct ns_hostbind *hb;
	size_t nhb;
	/* --dns: the index in hb of /etc/resolv.conf, kept in its place among
	 * the default binds and filled once the staging tmpfs can hold the
	 * file; or SIZE_MAX */
	size_t dns_hb;
	int dev_fd, proc_fd, sys_fd, workdir_fd;
	/* --overlay layers (WLAYER: the writable one, or -1), image binds, and
	 * the images they are served from */
	struct ns_layer *layers;
	size_t nlayers;
	int wlayer;
	struct ns_imgbind *ib;
	size_t nib;
	struct ns_img *imgs;
	size_t nimgs;
	bool proc_bound; /* the tree has /proc (the payload's, with --pid) */
	/* staging */
	char stage[NS_STAGE_MAX];
	int fuse_fd;
	struct ns_env env;
	struct ns_envwatch *watch; /* --runscript-timeout (watchdog.c), or NULL */
};

/* prep.c: the caller's ids, names and home; the image's kind and location;
 * the refusal to run set-user-ID or with file capabilities. */
void ns_who(struct ns_run *l);
int ns_open_image(struct ns_run *l, struct sifu_err *err);
int ns_refuse_privileged(struct sifu_err *err);
/* prep.c: the image's file PATH (/etc/passwd, /etc/group), resolved inside
 * ROOTFD: *OUT NULL when it is absent, else its text (NUL-terminated,
 * malloc'ed); refused (one line naming it and what to do) when it is not a
 * regular file or holds more than MAX bytes. */
#define NS_IMAGE_FILE_MAX (4u << 20)
int ns_read_image_file(int rootfd, const char *path, size_t max, char **out, struct sifu_err *err);
/* images.c: mount(2) a FUSE file system at TGT on a new /dev/fuse fd
 * (*OUT), for this process to serve. */
int ns_fuse_mount(const struct ns_run *l, const char *tgt, bool rw, int *out, struct sifu_err *err);
/* images.c: open the --overlay layers and the image binds' images (host
 * side, after the mount namespace is unshared); refuse what Apptainer
 * refuses (two writable layers, one with --writable-tmpfs). */
int ns_images_open(struct ns_run *l, struct sifu_err *err);
/* images.c: mount each image's FUSE file system in the staging tree. */
int ns_images_mount(struct ns_run *l, struct sifu_err *err);
/* images.c: (supervisor) open each image and start its server; OWNERS:
 * overlay layers show every file as the caller's (see launch.c). */
int ns_images_serve(struct ns_run *l, bool owners, struct sifu_err *err);
/* images.c: stop every server (supervisor); close every fd (any process). */
void ns_images_stop(struct ns_run *l);
void ns_images_close_fds(struct ns_run *l);
void ns_images_free(struct ns_run *l);
/* tree.c: build the container's mount tree under the staging dir and
 * pivot into it.  Runs in the payload child. */
int ns_tree_build(struct ns_run *l, struct sifu_err *err);
/* tree.c: --hostname and --net's loopback, in the payload's namespaces */
int ns_setup_net_uts(const struct ns_config *c, struct sifu_err *err);
/* nest.c: after pivot_root, move the payload into a user namespace of its
 * own (a child of the launcher's, every id mapped identically) and a mount
 * namespace owned by it, so that the tree's mounts are locked (read-only
 * stays read-only, nothing can be unmounted); with --pid, --ipc, --net,
 * --hostname also those namespaces, owned by it.  SELF: an fd on the
 * payload's /proc/PID directory, opened before pivot_root. */
int ns_nest(struct ns_run *l, int self, struct sifu_err *err);
/* payload.c: --pid: fork the new PID namespace's first process (which
 * mounts its /proc, then runs as init or, --no-init, execs the action) and
 * relay signals to it; returns its exit status in the caller, < 0 in the
 * child when the action could not be started (err set, for the caller to
 * send through CE, the payload's error channel to the supervisor). */
int ns_pid_run(struct ns_run *l, struct sifu_childerr *ce, struct sifu_err *err);
/* payload.c: pick and exec the action (never returns on success). */
int ns_payload_exec(struct ns_run *l, struct sifu_err *err);
/* signals.c: the signals the supervisor (and --pid's relay and init)
 * forward, plus SIGCHLD, into SET. */
void ns_signals_forwarded(sigset_t *set);
/* signals.c: forwarded signals back to default and unblocked (payload) */
void ns_signals_default(void);
/* signals.c: forward what arrives on the signalfd SFD to CHILD, reap every
 * child, return CHILD's exit status (128+N after signal N), or -errno when
 * SFD fails. */
int ns_forward_and_wait(int sfd, pid_t child);

/* watchdog.c: --runscript-timeout.  The supervisor opens the watch before
 * it forks the payload and starts it (a thread) after; the payload, about
 * to exec /bin/sh for the env scripts, passes the pipe on and puts the
 * script's trap and signal into L->env.  Free: what was never started. */
int ns_watch_open(struct ns_run *l, struct sifu_err *err);
int ns_watch_start(struct ns_run *l, pid_t child, struct sifu_err *err);
void ns_watch_payload(struct ns_run *l);
void ns_watch_free(struct ns_run *l);
/* phase.c: --debug phase timings */
void ns_phase(struct ns_run *l, const char *what);
