/* SPDX-License-Identifier: BSD-3-Clause */
/* recipe/: a child process under the seccomp fake root (seccomp.c).
 *
 * The child installs the filter and hands its user-notification listener
 * (where the kernel has one) back over a socket; the parent serves it on a
 * thread, recording the owners the child's chowns ask for, while it waits.
 * A signal to sifu reaches the child (interrupt.c), and a child that fails
 * reports its whole error through a sifu_childerr pipe. */
#include "recipe_priv.h"

#include <sys/socket.h>

/* ----------------------------------------------------- passing the fd -- */

static void send_fd(int sock, int fd)
{
	char dummy = fd >= 0 ? 'f' : 'n';
	struct iovec iov = {&dummy, 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		msg.msg_control = u.buf;
		msg.msg_controllen = sizeof(u.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

/* The listener fd the child sent, or -1 (none, or the child failed first). */
static int recv_fd(int sock)
{
	char dummy;
	struct iovec iov = {&dummy, 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {.msg_iov = &iov,
	                     .msg_iovlen = 1,
	                     .msg_control = u.buf,
	                     .msg_controllen = sizeof(u.buf)};
	ssize_t n;
	while ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (n <= 0)
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* ----------------------------------------------------------- the child -- */

/* Install the filter, send its listener (or "none") over SOCK, run FN:
 * exit with its status, or report its error and exit. */
_Noreturn static void child_main(bld_child_fn fn, void *arg, bool subid, int sock,
                                 struct sifu_childerr *ce)
{
	struct sifu_err e = {0};
	int notify = -1;
	int r = bld_seccomp_fakeroot(subid ? NULL : &notify, subid, &e);
	send_fd(sock, notify);
	if (notify >= 0)
		close(notify);
	close(sock);
	if (r == 0)
		r = fn(arg, &e);
	if (r < 0)
		sifu_childerr_exit(ce, &e);
	_exit(r > 255 ? 255 : r);
}

/* ---------------------------------------------------------- the parent -- */

/* Serve the child's listener (if it sent one) until the child is gone,
 * waiting for it meanwhile: *X is how it ended. */
static int serve_and_wait(pid_t pid, int sock, struct bld_owners *owners, struct sifu_exit *x,
                          struct sifu_err *err)
{
	int nfd = recv_fd(sock);
	struct bld_owner_server *srv = NULL;
	if (nfd >= 0 && bld_owners_serve(nfd, owners, &srv, err) < 0) {
		sifu_log(SIFU_LOG_WARN, "chowns are not recorded: %s", err->chain[0]);
		sifu_err_clear(err);
	}
	int q = sifu_proc_wait(pid, x, &bld_forward);
	bld_owners_stop(srv);
	return q;
}

int bld_run_fakeroot(bld_child_fn fn, void *arg, bool subid, struct bld_owners *owners, int *status,
                     struct sifu_err *err)
{
	fflush(stdout);
	fflush(stderr);
	struct sifu_childerr ce;
	if (sifu_childerr_open(&ce, err) < 0)
		return -EIO;
	int sk[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sk) < 0) {
		int r = sifu_err_sys(err, "socketpair");
		sifu_childerr_close(&ce);
		return r;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int r = sifu_err_sys(err, "fork");
		sifu_childerr_close(&ce);
		close(sk[0]);
		close(sk[1]);
		return r;
	}
	if (pid == 0) {
		sifu_childerr_in_child(&ce);
		close(sk[0]);
		child_main(fn, arg, subid, sk[1], &ce);
	}
	sifu_childerr_in_parent(&ce);
	close(sk[1]);
	struct sifu_exit x = {0};
	int q = serve_and_wait(pid, sk[0], owners, &x, err);
	close(sk[0]);
	int reported = sifu_childerr_recv(&ce, err);
	sifu_childerr_close(&ce);
	if (q < 0)
		return sifu_err_set(err, SIFU_E_SYS, -q, "waiting for the container");
	if (reported != 0)
		return reported < 0 ? reported : -EIO;
	*status = x.code;
	return bld_check_interrupted(err);
}
