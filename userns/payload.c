/* SPDX-License-Identifier: BSD-3-Clause */
/* Inside the container, after pivot_root: the working directory, the action
 * (run/exec/shell/test as Apptainer dispatches them), the environment, exec;
 * and, with --pid, the small init that runs as PID 1. */
#include "userns_priv.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

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

static int enter_cwd(struct ns_run *l, struct sifu_err *err)
{
	const char *pwd = l->c->pwd;
	if (pwd) {
		if (chdir(pwd) < 0) {
			sifu_err_sys(err, "--pwd %s", pwd);
			sifu_err_hint(err, "the directory must exist inside the container");
			return -errno;
		}
	} else {
		/* with --contain the payload starts in its home, not in the
		 * caller's directory (Apptainer's launcher, setProcessCwd) */
		const char *first = l->c->contain ? l->home_dst : l->cwd;
		if (chdir(first) < 0 && chdir(l->home_dst) < 0 && chdir("/") < 0)
			return sifu_err_sys(err, "chdir");
	}
	char buf[4096];
	if (getcwd(buf, sizeof(buf)))
		ns_env_set(&l->env.base, "PWD", buf);
	return 0;
}

/* --app NAME: the app must be there; run and test start its own script
 * (Apptainer's action script: an app without one is an error, not the
 * container's).  0 with nothing pushed for exec and shell. */
static int app_argv(const struct ns_config *c, struct ns_strv *av, struct sifu_err *err)
{
	_cleanup_free_ char *root = sifu_xasprintf("/scif/apps/%s", c->app);
	if (!*c->app || strchr(c->app, '/') || !is_dir(root)) {
		sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT,
		             "could not locate the container application: %s", c->app);
		sifu_err_hint(err, "'sifu inspect --list-apps IMAGE' lists the image's apps");
		return -ENOENT;
	}
	if (c->action != NS_RUN && c->action != NS_TEST)
		return 0;
	bool run = c->action == NS_RUN;
	_cleanup_free_ char *script =
	    sifu_xasprintf("%s/scif/%s", root, run ? "runscript" : "test");
	if (access(script, X_OK) < 0) {
		sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT, "no %s for contained app: %s",
		             run ? "runscript" : "tests", c->app);
		return -ENOENT;
	}
	ns_strv_push(av, script);
	return 0;
}

/* The argv of the action, before the environment wrapper. */
static int action_argv(struct ns_run *l, struct ns_strv *av, struct sifu_err *err)
{
	const struct ns_config *c = l->c;
	if (c->app) {
		int r = app_argv(c, av, err);
		if (r < 0)
			return r;
	}
	switch (av->n ? NS_EXEC : c->action) {
	case NS_EXEC: break;
	case NS_RUN:
		/* Apptainer's action script tries /apptainer after the runscript,
		 * Singularity's /singularity */
		if (exists("/.singularity.d/runscript"))
			ns_strv_push(av, "/.singularity.d/runscript");
		else if (exists("/apptainer"))
			ns_strv_push(av, "/apptainer");
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
		/* the default shells export SHELL as Apptainer's action script
		 * does, so that the host's (often /bin/bash) does not name a
		 * shell the image may lack */
		if (c->shell) {
			ns_strv_push(av, c->shell);
		} else if (exists("/bin/bash")) {
			ns_env_set(&l->env.base, "SHELL", "/bin/bash");
			ns_strv_push(av, "/bin/bash");
			ns_strv_push(av, "--norc");
		} else if (exists("/bin/sh")) {
			ns_env_set(&l->env.base, "SHELL", "/bin/sh");
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

/* A shell costs an exec and its start-up (0.9 ms, 12% of a start: docs/
 * benchmarks.md): go through one only where something needs it.  Without it,
 * ns_env_apply sets what __sifu_base would (LD_LIBRARY_PATH) and expands
 * $NAME, ${NAME}, $UID, $GID and backslashes as the shell would. */
static bool needs_shell(const struct ns_env *e)
{
	if (is_dir("/.singularity.d/env") || ns_env_needs_shell(e))
		return true;
	if (!is_dir("/.singularity.d") && exists("/environment"))
		return true; /* a Singularity 2 image */
	/* --nv and the like: bound libraries make __sifu_ldp ask ldconfig */
	_cleanup_closedir_ DIR *d = opendir("/.singularity.d/libs");
	for (struct dirent *de; d && (de = readdir(d));)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			return true;
	return false;
}

/* --no-privs, --add-caps, --drop-caps: the capability sets Apptainer's
 * engine gives the payload (prepareRootCaps for uid 0: all, none with
 * --no-privs; prepareUserCaps for another uid: only --add-caps, which an
 * exec keeps as ambient capabilities), less --drop-caps, with the bounding
 * set made the same so that an exec of a root program cannot regain them.
 * They are the payload's own user namespace's: nothing outside.  Without
 * any of these flags the sets stay as they are (a bounding set emptied by
 * default would leave a nested --fakeroot run without capabilities). */
static int set_caps(const struct ns_config *c, struct sifu_err *err)
{
	if (!c->caps_set)
		return 0;
	uint64_t want = geteuid() == 0 && !c->no_privs ? ~UINT64_C(0) : 0;
	want = (want | c->add_caps) & ~c->drop_caps;
	/* the bounding set first: dropping from it needs CAP_SETPCAP */
	unsigned last = 0;
	for (unsigned i = 0; i < 64 && prctl(PR_CAPBSET_READ, i, 0, 0, 0) >= 0; i++) {
		last = i;
		if (!(want & (UINT64_C(1) << i)) && prctl(PR_CAPBSET_DROP, i, 0, 0, 0) < 0)
			return sifu_err_sys(err, "dropping capability %u from the bounding set", i);
	}
	want &= last == 63 ? ~UINT64_C(0) : (UINT64_C(1) << (last + 1)) - 1;
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2] = {0};
	for (int k = 0; k < 2; k++)
		d[k].effective = d[k].permitted = d[k].inheritable = (uint32_t)(want >> (32 * k));
	if (syscall(SYS_capset, &h, d) < 0) {
		sifu_err_sys(err, "setting the payload's capabilities");
		sifu_err_hint(err, "the payload's user namespace did not grant them");
		return -errno;
	}
	/* a uid other than 0 keeps them across exec only as ambient ones */
	for (unsigned i = 0; geteuid() != 0 && i <= last; i++)
		if ((want & (UINT64_C(1) << i)) &&
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, i, 0, 0) < 0)
			return sifu_err_sys(err, "raising ambient capability %u", i);
	return 0;
}

int ns_payload_exec(struct ns_run *l, struct sifu_err *err)
{
	int r = enter_cwd(l, err);
	if (r < 0)
		return r;
	/* the caller's umask reaches the payload by inheritance; --no-umask
	 * resets it, as Apptainer's launcher does (setUmask, umask 0022) */
	if (l->c->no_umask)
		umask(022);
	struct ns_strv av = {0};
	r = action_argv(l, &av, err);
	if (r < 0)
		return r;
	if ((r = set_caps(l->c, err)) < 0)
		return r;
	/* last: from here on the profile's rules hold, for the action script
	 * as for the action (Apptainer loads it in the container process) */
	if (l->c->seccomp_bpf) {
		struct sock_fprog prog = {
		    .len = (unsigned short)(l->c->seccomp_bpf_len / sizeof(struct sock_filter)),
		    .filter = (struct sock_filter *)l->c->seccomp_bpf};
		if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
			return sifu_err_sys(err, "--security seccomp: loading the filter");
	}
	ns_phase(l, "exec");
	l->env.uid = getuid();
	l->env.gid = getgid();
	/* the image's env scripts (or a legacy /environment), and values such as
	 * $(id -u), need a shell; an image without one still runs */
	if (needs_shell(&l->env) && exists("/bin/sh")) {
		ns_watch_payload(l);
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

/* What a relay forks: returns < 0 with ERR set when the action could not be
 * started.  ALIVE: the read end of a pipe only the relay writes to, or -1. */
typedef int relayed_fn(struct ns_run *l, struct sifu_childerr *ce, int alive, struct sifu_err *err);

/* Fork CHILD and relay to it: forward the forwarded signals (read from a
 * signalfd), reap, return its exit status.  This process's copy of the
 * error channel goes first, so that the supervisor sees EOF once the
 * payload execs.  With ALIVE, the child keeps only the pipe's read end.
 * WHO prefixes errors.  In the child, CHILD's result is returned. */
static int fork_relayed(const char *who, relayed_fn *child, int alive[2], struct ns_run *l,
                        struct sifu_childerr *ce, struct sifu_err *err)
{
	sigset_t set;
	ns_signals_forwarded(&set);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0)
		return sifu_err_sys(err, "%s: signalfd", who);
	pid_t pid = fork();
	if (pid < 0)
		return sifu_err_sys(err, "%s: fork", who);
	if (pid == 0) {
		close(sfd);
		if (alive)
			close(alive[1]);
		return child(l, ce, alive ? alive[0] : -1, err);
	}
	if (alive)
		close(alive[0]);
	sifu_childerr_close(ce);
	int r = ns_forward_and_wait(sfd, pid);
	return r < 0 ? 255 : r;
}

/* The action itself, with the forwarded signals back at their defaults. */
static int exec_action(struct ns_run *l, struct sifu_childerr *ce, int alive, struct sifu_err *err)
{
	(void)ce, (void)alive;
	ns_signals_default();
	ns_payload_exec(l, err);
	return -1; /* the caller reports err through CE */
}

/* The first process of the PID namespace ns_nest made: its own /proc over
 * the host's (mounted by the payload's user namespace, which owns the PID
 * namespace; where that fails the host's stays, as it would without
 * --pid), then the action itself (--no-init) or, as PID 1, an init that
 * forks the action, forwards what the supervisor sends, reaps every orphan
 * and exits with the action's status (the kernel then kills whatever is
 * left in the namespace). */
static int pid_first(struct ns_run *l, struct sifu_childerr *ce, int alive, struct sifu_err *err)
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
	if (l->c->no_init)
		return exec_action(l, ce, -1, err);
	return fork_relayed("init", exec_action, NULL, l, ce, err);
}

int ns_pid_run(struct ns_run *l, struct sifu_childerr *ce, struct sifu_err *err)
{
	int alive[2];
	if (pipe2(alive, O_CLOEXEC) < 0)
		return sifu_err_sys(err, "--pid: pipe");
	return fork_relayed("--pid", pid_first, alive, l, ce, err);
}
