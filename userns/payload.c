/* SPDX-License-Identifier: BSD-3-Clause */
/* Inside the container, after pivot_root: the working directory, the action
 * (run/exec/shell/test as Apptainer dispatches them), the environment, exec;
 * and, with --pid, the small init that runs as PID 1. */
#include "internal.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>

static bool exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

static bool is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int enter_cwd(struct ns_launch *l, struct sifu_err *err)
{
	const char *pwd = l->c->pwd;
	if (pwd) {
		if (chdir(pwd) < 0) {
			sifu_err_sys(err, "--pwd %s", pwd);
			sifu_err_hint(err, "the directory must exist inside the container");
			return -errno;
		}
	} else if (chdir(l->cwd) < 0 && chdir(l->home_dst) < 0 && chdir("/") < 0) {
		return sifu_err_sys(err, "chdir");
	}
	char buf[4096];
	if (getcwd(buf, sizeof(buf)))
		ns_env_set(&l->env.base, "PWD", buf);
	return 0;
}

/* The argv of the action, before the environment wrapper. */
static int action_argv(struct ns_launch *l, struct ns_strv *av, struct sifu_err *err)
{
	const struct ns_config *c = l->c;
	switch (c->action) {
	case NS_EXEC: break;
	case NS_RUN:
		if (exists("/.singularity.d/runscript"))
			ns_strv_push(av, "/.singularity.d/runscript");
		else if (exists("/singularity"))
			ns_strv_push(av, "/singularity");
		else if (exists("/bin/sh")) {
			sifu_log(SIFU_LOG_WARN, "the image has no runscript; running /bin/sh");
			ns_strv_push(av, "/bin/sh");
		} else {
			sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT,
			             "the image has no runscript (/.singularity.d/runscript) and "
			             "no /bin/sh");
			sifu_err_hint(err, "use 'sifu exec IMAGE COMMAND'");
			return -ENOENT;
		}
		break;
	case NS_SHELL:
		if (c->shell) {
			ns_strv_push(av, c->shell);
		} else if (exists("/bin/bash")) {
			ns_strv_push(av, "/bin/bash");
			ns_strv_push(av, "--norc");
		} else if (exists("/bin/sh")) {
			ns_strv_push(av, "/bin/sh");
		} else {
			sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT,
			             "the image has no /bin/bash or /bin/sh");
			sifu_err_hint(err, "choose a shell with --shell PATH, or use 'sifu exec'");
			return -ENOENT;
		}
		break;
	case NS_TEST:
		if (!exists("/.singularity.d/test")) {
			sifu_log(SIFU_LOG_INFO, "no test script in the container, exiting");
			_exit(0);
		}
		ns_strv_push(av, "/.singularity.d/test");
		break;
	}
	for (int i = 0; i < c->nargs; i++)
		ns_strv_push(av, c->args[i]);
	if (av->n == 0) {
		sifu_err_set(err, SIFU_E_USAGE, EINVAL, "no command to run");
		return -EINVAL;
	}
	return 0;
}

/* execve with a PATH search in the payload's own environment (execvpe would
 * search the launcher's PATH). */
static int exec_path(char **argv, char **envp, struct sifu_err *err)
{
	const char *cmd = argv[0];
	if (strchr(cmd, '/')) {
		execve(cmd, argv, envp);
	} else {
		const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
		for (char **e = envp; *e; e++)
			if (!strncmp(*e, "PATH=", 5))
				path = *e + 5;
		int saved = ENOENT;
		for (const char *p = path; *p;) {
			size_t n = strcspn(p, ":");
			char full[4096];
			snprintf(full, sizeof(full), "%.*s%s%s", (int)n, n ? p : ".", "/", cmd);
			execve(full, argv, envp);
			if (errno != ENOENT && errno != ENOTDIR)
				saved = errno;
			p += n;
			if (*p)
				p++;
		}
		errno = saved;
	}
	sifu_err_sys(err, "cannot run '%s' in the container", cmd);
	if (errno == ENOENT)
		sifu_err_hint(err, "'%s' is not in the image (or not on the container's PATH)",
		              cmd);
	return -errno;
}

int ns_payload_exec(struct ns_launch *l, struct sifu_err *err)
{
	int r = enter_cwd(l, err);
	if (r < 0)
		return r;
	if (l->c->fakeroot)
		umask(022);
	struct ns_strv av = {0};
	r = action_argv(l, &av, err);
	if (r < 0)
		return r;
	ns_phase(l, "exec");
	/* the image's env scripts need a shell; an image without one still runs */
	if (is_dir("/.singularity.d/env") && exists("/bin/sh")) {
		struct ns_strv sv = {0};
		ns_strv_push(&sv, "/bin/sh");
		ns_strv_push(&sv, "-c");
		ns_strv_push_take(&sv, ns_env_script(&l->env));
		ns_strv_push(&sv, av.v[0]);
		for (size_t i = 0; i < av.n; i++)
			ns_strv_push(&sv, av.v[i]);
		execve("/bin/sh", sv.v, l->env.base.v);
		return sifu_err_sys(err, "cannot run /bin/sh in the container");
	}
	struct ns_strv envp = {0};
	ns_env_apply(&l->env, &envp);
	return exec_path(av.v, envp.v, err);
}

int ns_exit_status(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 255;
}

/* Shared by the supervisor and --pid's init: forward what another process
 * sent to CHILD (a terminal's own signals, SI_KERNEL, already reached it
 * through the process group: forwarding them too would deliver each twice),
 * reap every child, return CHILD's exit status, or -errno if SFD fails. */
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
		while ((p = waitpid(-1, &st, WNOHANG)) > 0)
			if (p == child)
				return ns_exit_status(st);
	}
}

/* PID 1 of the new PID namespace: fork the payload, forward what the
 * supervisor sends, reap every orphan, exit with the payload's status (the
 * kernel then kills whatever is left in the namespace). */
int ns_init_run(struct ns_launch *l, int errfd, struct sifu_err *err)
{
	sigset_t set;
	sigemptyset(&set);
	int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD};
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaddset(&set, sigs[i]);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0)
		return sifu_err_sys(err, "init: signalfd");
	pid_t pid = fork();
	if (pid < 0)
		return sifu_err_sys(err, "init: fork");
	if (pid == 0) {
		close(sfd);
		ns_signals_default();
		ns_payload_exec(l, err);
		return -1; /* the caller reports err on errfd */
	}
	close(errfd);
	int r = ns_forward_and_wait(sfd, pid);
	return r < 0 ? 255 : r;
}

/* The first process of the PID namespace ns_nest made: its own /proc over
 * the host's (mounted by the payload's user namespace, which owns the PID
 * namespace; where that fails the host's stays, as it would without
 * --pid), then init or the action itself. */
static int pid_first(struct ns_launch *l, int errfd, int alive, struct sifu_err *err)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* the relay may have died before PDEATHSIG was set */
	struct pollfd p = {.fd = alive, .events = POLLIN};
	if (poll(&p, 1, 0) != 0)
		_exit(255);
	close(alive);
	if (l->proc_bound &&
	    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		sifu_verbose("--pid: cannot mount /proc for the new PID namespace (%s); the "
		             "host's stays",
		             strerror(errno));
	if (l->c->no_init) {
		ns_signals_default();
		ns_payload_exec(l, err);
		return -1;
	}
	return ns_init_run(l, errfd, err);
}

int ns_pid_run(struct ns_launch *l, int errfd, struct sifu_err *err)
{
	sigset_t set;
	sigemptyset(&set);
	int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD};
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaddset(&set, sigs[i]);
	int alive[2];
	if (pipe2(alive, O_CLOEXEC) < 0)
		return sifu_err_sys(err, "--pid: pipe");
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0)
		return sifu_err_sys(err, "--pid: signalfd");
	pid_t pid = fork();
	if (pid < 0)
		return sifu_err_sys(err, "--pid: fork");
	if (pid == 0) {
		close(sfd);
		close(alive[1]);
		return pid_first(l, errfd, alive[0], err);
	}
	close(alive[0]);
	close(errfd);
	int r = ns_forward_and_wait(sfd, pid);
	return r < 0 ? 255 : r;
}
