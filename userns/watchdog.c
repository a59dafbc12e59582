/* SPDX-License-Identifier: BSD-3-Clause */
/* --runscript-timeout: a bound on how long the image's environment scripts
 * may run before the action starts.
 *
 * Apptainer interprets its action script (which sources /.singularity.d/env)
 * under one context deadline, a minute unless --runscript-timeout says
 * otherwise (runActionScript in its process_linux.go); a command still
 * running at the deadline is killed and the run fails with 255 (e2e
 * env.go "runscript timeout").  sifu's env scripts run in the image's own
 * /bin/sh, so the bound is kept from outside, by a thread of the
 * supervisor, through one pipe:
 *
 *   payload, before it execs /bin/sh: writes the digit of the fd (3-9) the
 *     shell gets the pipe's write end as; the clock starts
 *   the script, once the env scripts are sourced: writes 'x', closes the
 *     fd, execs the action
 *   the thread, if 'x' does not come in time: finds the shell (the topmost
 *     process of the payload's tree whose fd N is this pipe), SIGKILLs what
 *     the shell runs and sends it SIGUSR2, whose trap says why and exits 255
 *     (SIGKILL after a grace period if it does not).
 *
 * The watcher is a thread of the supervisor, not a process of the
 * container: it stays out of the container's PID namespace (where --no-init
 * would leave a process nobody reaps) and out of `ps`. */
#include "userns_priv.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define DEFAULT_TIMEOUT_MS 60000 /* Apptainer's: time.Minute */
#define GRACE_MS           1000  /* after SIGUSR2, before SIGKILL */

struct ns_envwatch {
	int rfd, wfd;     /* the pipe; the supervisor keeps only rfd */
	pid_t child;      /* the payload (host PID) */
	unsigned long ms; /* the limit */
};

int ns_watch_open(struct ns_run *l, struct sifu_err *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return sifu_err_sys(err, "--runscript-timeout: pipe");
	l->watch = sifu_xcalloc(1, sizeof(*l->watch));
	l->watch->rfd = p[0];
	l->watch->wfd = p[1];
	l->watch->ms = l->c->env_timeout_ms ? l->c->env_timeout_ms : DEFAULT_TIMEOUT_MS;
	return 0;
}

/* The lowest of fds 3-9 that is free: a shell redirection names one digit,
 * and an fd the caller passed must reach the payload untouched.  -1 when
 * the caller holds them all (the limit is then not kept). */
static int free_digit_fd(void)
{
	for (int fd = 3; fd <= 9; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
			return fd;
	return -1;
}

void ns_watch_payload(struct ns_run *l)
{
	struct ns_envwatch *w = l->watch;
	int fd = w ? free_digit_fd() : -1;
	if (fd < 0 || dup3(w->wfd, fd, 0) < 0) {
		sifu_verbose("--runscript-timeout: no fd among 3-9 to pass; not kept");
		return;
	}
	char digit = (char)('0' + fd);
	if (write(fd, &digit, 1) != 1) {
		close(fd);
		return;
	}
	char limit[32];
	if (w->ms % 1000 == 0)
		snprintf(limit, sizeof(limit), "%lus", w->ms / 1000);
	else
		snprintf(limit, sizeof(limit), "%lums", w->ms);
	l->env.script_head = sifu_xasprintf(
	    "trap 'echo \"FATAL:   the environment scripts of the image did not finish "
	    "within %s (--runscript-timeout)\" >&2; exit 255' USR2\n",
	    limit);
	l->env.script_tail =
	    sifu_xasprintf("trap - USR2\n{ printf x >&%d; } 2>/dev/null\nexec %d>&-\n", fd, fd);
}

/* Is fd FD of PID the pipe whose read end is RFD_INO? */
static bool holds_pipe(pid_t pid, int fd, ino_t ino)
{
	char path[64], link[64], want[64];
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = '\0';
	snprintf(want, sizeof(want), "pipe:[%lu]", (unsigned long)ino);
	return !strcmp(link, want);
}

/* The children of PID (single-threaded processes: the payload's chain and
 * the shell) from /proc, into OUT (room for MAX); how many. */
static size_t children(pid_t pid, pid_t *out, size_t max)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	size_t n = 0;
	for (int c; f && n < max && fscanf(f, "%d", &c) == 1;)
		out[n++] = c;
	return n;
}

/* SIGKILL every descendant of PID, the deepest first. */
static void kill_descendants(pid_t pid, int depth)
{
	pid_t kids[256];
	size_t n = depth < 32 ? children(pid, kids, ARRAY_SIZE(kids)) : 0;
	for (size_t i = 0; i < n; i++) {
		kill_descendants(kids[i], depth + 1);
		kill(kids[i], SIGKILL);
	}
}

/* The topmost process below (or at) PID that holds the pipe as fd FD:
 * the shell (its children hold it too, sifu's relay and init do not). */
static pid_t find_shell(pid_t pid, int fd, ino_t ino, int depth)
{
	if (holds_pipe(pid, fd, ino))
		return pid;
	pid_t kids[256];
	size_t n = depth < 8 ? children(pid, kids, ARRAY_SIZE(kids)) : 0;
	for (size_t i = 0; i < n; i++) {
		pid_t s = find_shell(kids[i], fd, ino, depth + 1);
		if (s > 0)
			return s;
	}
	return -1;
}

static void stop_shell(const struct ns_envwatch *w, int fd)
{
	struct stat st;
	if (fstat(w->rfd, &st) < 0)
		return;
	pid_t shell = find_shell(w->child, fd, st.st_ino, 0);
	if (shell <= 0)
		return;
	int pidfd = (int)syscall(SYS_pidfd_open, shell, 0);
	kill_descendants(shell, 0);
	kill(shell, SIGUSR2);
	struct pollfd p = {.fd = pidfd, .events = POLLIN};
	if (pidfd < 0 || poll(&p, 1, GRACE_MS) == 0)
		kill(shell, SIGKILL);
	if (pidfd >= 0)
		close(pidfd);
}

static void *watch(void *arg)
{
	struct ns_envwatch *w = arg;
	char c = 0;
	ssize_t n;
	while ((n = read(w->rfd, &c, 1)) < 0 && errno == EINTR)
		;
	if (n == 1 && c >= '3' && c <= '9') { /* the env scripts started */
		struct pollfd p = {.fd = w->rfd, .events = POLLIN};
		int r = poll(&p, 1, w->ms > INT_MAX ? INT_MAX : (int)w->ms);
		if (r == 0)
			stop_shell(w, c - '0');
	}
	close(w->rfd);
	free(w);
	return NULL;
}

int ns_watch_start(struct ns_run *l, pid_t child, struct sifu_err *err)
{
	struct ns_envwatch *w = TAKE_PTR(l->watch);
	if (!w)
		return 0;
	close(w->wfd);
	w->child = child;
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	int r = pthread_create(&t, &a, watch, w);
	pthread_attr_destroy(&a);
	if (r != 0) {
		close(w->rfd);
		free(w);
		errno = r;
		return sifu_err_sys(err, "--runscript-timeout: starting the watcher");
	}
	return 0;
}

void ns_watch_free(struct ns_run *l)
{
	if (!l->watch)
		return;
	close(l->watch->rfd);
	close(l->watch->wfd);
	free(TAKE_PTR(l->watch));
}
