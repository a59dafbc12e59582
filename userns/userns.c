/* SPDX-License-Identifier: BSD-3-Clause */
#include "userns.h"

#include <sched.h>

int ns_probe_userns(struct sifu_err *err)
{
	pid_t pid = fork();
	if (pid < 0)
		return sifu_err_sys(err, "fork");
	if (pid == 0)
		_exit(unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0 ? 1 : 0);
	struct sifu_exit x;
	int r = sifu_proc_wait(pid, &x, NULL);
	if (r < 0) {
		errno = -r;
		return sifu_err_sys(err, "waitpid");
	}
	if (sifu_exit_ok(&x))
		return 0;
	sifu_err_set(err, SIFU_E_DENIED, EPERM, "the kernel refused to create a user namespace");
	sifu_err_hint(err, "ask the administrator to set user.max_user_namespaces > 0 "
	                   "(and kernel.unprivileged_userns_clone=1 where it exists)");
	return -EPERM;
}
