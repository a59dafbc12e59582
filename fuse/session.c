/* SPDX-License-Identifier: BSD-3-Clause */
/* Session plumbing shared by the SquashFS server (server.c, workers.c) and
 * the ext server (ext.c); see session_priv.h. */
#define FUSE_USE_VERSION 314
#include "session_priv.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <unistd.h>

int sqf_session_attach(struct fuse_session *se, int fuse_fd, struct sifu_err *err)
{
	int fd = fcntl(fuse_fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return sifu_err_sys(err, "cannot duplicate the /dev/fuse fd");
	/* libfuse takes an fd given as /dev/fd/N instead of mounting */
	char mnt[32];
	snprintf(mnt, sizeof(mnt), "/dev/fd/%d", fd);
	if (fuse_session_mount(se, mnt) != 0) {
		close(fd);
		return sifu_err_set(err, SIFU_E_SYS, EINVAL, "libfuse refused /dev/fuse fd %d",
		                    fuse_fd);
	}
	return 0;
}

int sqf_session_mount_dir(struct fuse_session *se, const char *mountpoint, struct sifu_err *err)
{
	if (fuse_session_mount(se, mountpoint) == 0)
		return 0;
	int r = sifu_err_set(err, SIFU_E_DENIED, EPERM, "cannot mount FUSE on %s", mountpoint);
	sifu_err_hint(err,
	              "check that %s is an empty directory you own, /dev/fuse is usable, "
	              "and fusermount3 is installed",
	              mountpoint);
	return r;
}

static void on_wake(int sig) {}

int sqf_session_prepare_threads(struct fuse_session *se, struct sifu_err *err)
{
	int fd = fuse_session_fd(se);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || ((fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0))
		return sifu_err_sys(err, "cannot make /dev/fuse blocking");
	struct sigaction sa = {.sa_handler = on_wake}; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SQF_SIG_WAKE, &sa, NULL) < 0)
		return sifu_err_sys(err, "cannot set up the FUSE threads' wake-up signal");
	return 0;
}

void sqf_thread_accept_wake(bool on)
{
	sigset_t wake;
	sigemptyset(&wake);
	sigaddset(&wake, SQF_SIG_WAKE);
	pthread_sigmask(on ? SIG_UNBLOCK : SIG_BLOCK, &wake, NULL);
}
