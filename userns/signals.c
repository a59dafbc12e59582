/* SPDX-License-Identifier: BSD-3-Clause */
/* The signals a run forwards: which ones, how the payload gets them back at
 * their defaults, and the loop that the supervisor and --pid's relay and
 * init share to forward them and reap. */
#include "userns_priv.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

static const int fwd_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

void ns_signals_forwarded(sigset_t *set)
{
	sigemptyset(set);
	for (size_t i = 0; i < ARRAY_SIZE(fwd_signals); i++)
		sigaddset(set, fwd_signals[i]);
	sigaddset(set, SIGCHLD);
}

/* The payload starts with the forwarded signals unblocked and at their
 * default action: a launcher started in the background of a script has
 * SIGINT and SIGQUIT ignored, and a shell cannot trap what it inherits
 * ignored, so a forwarded signal would be lost. */
void ns_signals_default(void)
{
	sigset_t set;
	for (size_t i = 0; i < ARRAY_SIZE(fwd_signals); i++)
		signal(fwd_signals[i], SIG_DFL);
	ns_signals_forwarded(&set);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
}

/* Forward what another process sent to CHILD (a terminal's own signals,
 * SI_KERNEL, already reached it through the process group: forwarding them
 * too would deliver each twice).  The reaping is a WNOHANG loop on purpose:
 * as --pid's init this process reaps every orphan of the namespace, not
 * just CHILD. */
int ns_forward_and_wait(int sfd, pid_t child)
{
	for (;;) {
		struct signalfd_siginfo si;
		ssize_t n = read(sfd, &si, sizeof(si));
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(si))
			return n < 0 ? -errno : -EIO;
		if (si.ssi_signo != SIGCHLD) {
			if (si.ssi_code != SI_KERNEL)
				kill(child, (int)si.ssi_signo);
			continue;
		}
		int st;
		pid_t p;
		while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
			if (p == child) {
				struct sifu_exit x;
				sifu_exit_decode(st, &x);
				return x.code;
			}
		}
	}
}
