/* SPDX-License-Identifier: BSD-3-Clause */
/* What the SquashFS and the ext servers do alike with a libfuse session:
 * take over a /dev/fuse fd the launcher mounted, and wake a serving thread
 * out of its read(2) when the server stops. */
#pragma once

#include "common.h"

#include <signal.h>

struct fuse_session;

/* The signal that stop sends each serving thread until it has left (the
 * only one such a thread accepts). */
#define SQF_SIG_WAKE (SIGRTMAX - 1)

/* Serve SE on FUSE_FD, an open /dev/fuse already mounted by the caller,
 * who keeps FUSE_FD: the session closes the fd it is given when destroyed,
 * so it gets a duplicate of its own. */
int sqf_session_attach(struct fuse_session *se, int fuse_fd, struct sifu_err *err);

/* `sifu mount`: mount SE on MOUNTPOINT the ordinary libfuse way
 * (fusermount3 when unprivileged); one error naming what to check. */
int sqf_session_mount_dir(struct fuse_session *se, const char *mountpoint, struct sifu_err *err);

/* Before the serving threads start: /dev/fuse blocking (they sleep in
 * read(2)) and SQF_SIG_WAKE's handler installed without SA_RESTART, so
 * that the signal ends the read. */
int sqf_session_prepare_threads(struct fuse_session *se, struct sifu_err *err);

/* In a serving thread (started with every signal blocked): accept
 * SQF_SIG_WAKE (ON), so that stop can interrupt a blocked read, or block it
 * again once the thread leaves its loop. */
void sqf_thread_accept_wake(bool on);
