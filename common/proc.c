/* SPDX-License-Identifier: BSD-3-Clause */
/* common/proc.c: start programs, wait for children, and carry a child's
 * error to its parent.  Every fork site in sifu waits and decodes through
 * here, so a status is never read unchecked and EINTR is never forgotten. */
#include "common.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

void sifu_exit_decode(int wstatus, struct sifu_exit *x)
{
	if (WIFSIGNALED(wstatus))
		*x = (struct sifu_exit){128 + WTERMSIG(wstatus), WTERMSIG(wstatus)};
	else if (WIFEXITED(wstatus))
		*x = (struct sifu_exit){WEXITSTATUS(wstatus), 0};
	else
		*x = (struct sifu_exit){255, 0}; /* stopped/continued: not asked for */
}

void sifu_exit_describe(const struct sifu_exit *x, char *buf, size_t len)
{
	if (x->signal)
		snprintf(buf, len, "was killed by signal %d (%s)", x->signal, strsignal(x->signal));
	else
		snprintf(buf, len, "exited with status %d", x->code);
}

int sifu_proc_wait(pid_t pid, struct sifu_exit *x, volatile sig_atomic_t *forward)
{
	bool forwarded = false;
	int st;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -errno;
		if (forward && *forward && !forwarded) {
			kill(pid, (int)*forward);
			forwarded = true;
		}
	}
	if (x)
		sifu_exit_decode(st, x);
	return 0;
}

void sifu_proc_kill(pid_t pid)
{
	if (pid <= 0)
		return;
	int saved = errno;
	kill(pid, SIGKILL);
	(void)sifu_proc_wait(pid, NULL, NULL);
	errno = saved;
}

/* ---------------------------------------------------------------- spawn -- */

static int add_stdio(posix_spawn_file_actions_t *fa, int from, int to)
{
	if (from == -1 || from == to)
		return 0; /* 0-2 are sifu's own, inherited (never O_CLOEXEC) */
	if (from == SIFU_SPAWN_NULL)
		return posix_spawn_file_actions_addopen(fa, to, "/dev/null",
		                                        to ? O_WRONLY : O_RDONLY, 0);
	return posix_spawn_file_actions_adddup2(fa, from, to);
}

int sifu_spawn(const struct sifu_command *s, pid_t *pid, struct sifu_err *err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	int r = posix_spawn_file_actions_init(&fa);
	if (r)
		return sifu_err_set(err, SIFU_E_SYS, r, "starting %s", s->argv[0]);
	r = posix_spawnattr_init(&at);
	if (r) {
		posix_spawn_file_actions_destroy(&fa);
		return sifu_err_set(err, SIFU_E_SYS, r, "starting %s", s->argv[0]);
	}
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	/* A program started with sifu's blocked signals (the launcher reads
	 * them from a signalfd) would never see SIGTERM or SIGPIPE. */
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	int fds[3] = {s->in, s->out, s->err};
	for (int i = 0; i < 3 && r == 0; i++)
		r = add_stdio(&fa, fds[i], i);
	if (r == 0) {
		char *const *envp = s->envp ? s->envp : environ;
		r = strchr(s->argv[0], '/')
		        ? posix_spawn(pid, s->argv[0], &fa, &at, s->argv, envp)
		        : posix_spawnp(pid, s->argv[0], &fa, &at, s->argv, envp);
	}
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (r == ENOENT)
		return sifu_err_set(err, SIFU_E_NOTFOUND, r, "%s: program not found", s->argv[0]);
	if (r)
		return sifu_err_set(err, SIFU_E_SYS, r, "starting %s", s->argv[0]);
	return 0;
}

int sifu_spawn_wait(const struct sifu_command *s, struct sifu_exit *x, struct sifu_err *err)
{
	pid_t pid;
	int r = sifu_spawn(s, &pid, err);
	if (r < 0)
		return r;
	r = sifu_proc_wait(pid, x, NULL);
	if (r < 0)
		return sifu_err_set(err, SIFU_E_SYS, -r, "waiting for %s", s->argv[0]);
	return 0;
}

int sifu_spawn_capture(const struct sifu_command *s, size_t max, char **out, size_t *len,
                       struct sifu_exit *x, struct sifu_err *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return sifu_err_sys(err, "starting %s", s->argv[0]);
	struct sifu_command t = *s;
	t.out = p[1];
	pid_t pid;
	int r = sifu_spawn(&t, &pid, err);
	close(p[1]);
	if (r < 0) {
		close(p[0]);
		return r;
	}
	r = sifu_read_fd(p[0], s->argv[0], max, out, len, err);
	close(p[0]); /* a program still writing gets EPIPE/SIGPIPE, not a hang */
	int w = sifu_proc_wait(pid, x, NULL);
	if (r < 0)
		return sifu_err_wrap(err, "reading the output of %s", s->argv[0]);
	if (w < 0) {
		free(TAKE_PTR(*out));
		return sifu_err_set(err, SIFU_E_SYS, -w, "waiting for %s", s->argv[0]);
	}
	return 0;
}

/* ------------------------------------------------------ a child's error -- */

int sifu_childerr_open(struct sifu_childerr *c, struct sifu_err *err)
{
	int p[2];
	c->rd = c->wr = -1;
	if (pipe2(p, O_CLOEXEC) < 0)
		return sifu_err_sys(err, "creating a pipe for a child's errors");
	c->rd = p[0];
	c->wr = p[1];
	return 0;
}

static void close_end(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void sifu_childerr_in_child(struct sifu_childerr *c)
{
	close_end(&c->rd);
}

void sifu_childerr_in_parent(struct sifu_childerr *c)
{
	close_end(&c->wr);
}

void sifu_childerr_close(struct sifu_childerr *c)
{
	close_end(&c->rd);
	close_end(&c->wr);
}

int sifu_childerr_send(struct sifu_childerr *c, const struct sifu_err *err)
{
	const char *p = (const char *)err;
	size_t left = sizeof(*err);
	while (left) {
		ssize_t n = write(c->wr, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		p += n;
		left -= (size_t)n;
	}
	return 0;
}

_Noreturn void sifu_childerr_exit(struct sifu_childerr *c, const struct sifu_err *err)
{
	(void)sifu_childerr_send(c, err);
	_exit(255);
}

int sifu_childerr_recv(struct sifu_childerr *c, struct sifu_err *err)
{
	struct sifu_err ce;
	size_t got = 0;
	while (got < sizeof(ce)) {
		ssize_t n = read(c->rd, (char *)&ce + got, sizeof(ce) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return sifu_err_sys(err, "reading a child's error report");
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got == 0)
		return 0;
	if (got < sizeof(ce))
		return sifu_err_set(err, SIFU_E_SYS, EIO, "a child process failed while reporting");
	/* The bytes come from our own child, but a report is still input:
	 * bound what the formatter will read. */
	if (ce.depth > SIFU_ERR_CHAIN_MAX)
		ce.depth = SIFU_ERR_CHAIN_MAX;
	for (unsigned i = 0; i < SIFU_ERR_CHAIN_MAX; i++)
		ce.chain[i][SIFU_ERR_MSG_MAX - 1] = 0;
	ce.hint[SIFU_ERR_MSG_MAX - 1] = 0;
	if (ce.depth == 0)
		return sifu_err_set(err, SIFU_E_SYS, EIO,
		                    "a child process failed without a reason");
	if (err)
		*err = ce;
	return 1;
}
