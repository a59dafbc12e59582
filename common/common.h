/* SPDX-License-Identifier: BSD-3-Clause */
/* common/: errors, cleanup helpers, logging, progress display, safe path helpers.
 * Small and boring on purpose; every other module builds on it. */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include <dirent.h>
#include <signal.h>

/* ---------------------------------------------------------------- errors --
 * Functions that can fail return an int < 0 and fill a struct sifu_err passed
 * last.  A callee sets the innermost message; callers may wrap it with more
 * context (sifu_err_wrap), building a chain that --debug prints in full and
 * that the CLI otherwise reduces to its outermost line. */

enum sifu_errcode {
	SIFU_E_OK = 0,
	SIFU_E_SYS,         /* a system call failed; errno is in .errnum */
	SIFU_E_CORRUPT,     /* input violates its format */
	SIFU_E_RANGE,       /* an offset or size points outside its container */
	SIFU_E_UNSUPPORTED, /* valid input we do not handle */
	SIFU_E_USAGE,       /* bad arguments from the user */
	SIFU_E_NOTFOUND,    /* a named thing does not exist */
	SIFU_E_DENIED,      /* the kernel or a policy said no */
	SIFU_E_UNAVAILABLE, /* feature not built yet */
	SIFU_E_VERIFY,      /* a digest or signature did not match */
};

#define SIFU_ERR_MSG_MAX   1024
#define SIFU_ERR_CHAIN_MAX 8

struct sifu_err {
	enum sifu_errcode code;
	int errnum;     /* errno, or 0 */
	unsigned depth; /* number of messages in chain */
	/* chain[0] is the innermost cause, chain[depth-1] the outermost context */
	char chain[SIFU_ERR_CHAIN_MAX][SIFU_ERR_MSG_MAX];
	char hint[SIFU_ERR_MSG_MAX]; /* what the user can do, or "" */
};

/* Set the innermost error. Returns -errnum if errnum, else -EINVAL-ish code,
 * so callers can write `return sifu_err_set(err, ...)`. err may be NULL. */
int sifu_err_set(struct sifu_err *err, enum sifu_errcode code, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Shorthand for a failed system call: captures errno. */
int sifu_err_sys(struct sifu_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Add an outer context line to an error already set. */
int sifu_err_wrap(struct sifu_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Attach a remedy line ("run … to …"). */
void sifu_err_hint(struct sifu_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sifu_err_clear(struct sifu_err *err);
/* The one line shown to users: outermost context joined with the innermost
 * cause (and strerror when a system call failed). */
void sifu_err_format(const struct sifu_err *err, char *buf, size_t len);
const char *sifu_errcode_name(enum sifu_errcode code);

#if defined(__clang_analyzer__) && !defined(SIFU_ERR_DEFINE)
/* The static analyser (scripts/analyze) sees one file at a time: it does not
 * know that these three always return a negative value, and then follows
 * paths where a call fails with r >= 0 and reads outputs it never wrote.
 * (A statement expression, not an inline function: the analyser stops
 * inlining a few calls deep.) */
#define SIFU_ERR_NEGATIVE_(call)                 \
	({                                       \
		int sifu_err_r_ = (call);        \
		if (sifu_err_r_ >= 0)            \
			__builtin_unreachable(); \
		sifu_err_r_;                     \
	})
#define sifu_err_set(...)  SIFU_ERR_NEGATIVE_(sifu_err_set(__VA_ARGS__))
#define sifu_err_sys(...)  SIFU_ERR_NEGATIVE_(sifu_err_sys(__VA_ARGS__))
#define sifu_err_wrap(...) SIFU_ERR_NEGATIVE_(sifu_err_wrap(__VA_ARGS__))
#endif

/* --------------------------------------------------------------- cleanup -- */

struct sifu_buf;
void sifu_buf_free(struct sifu_buf *b);

static inline void sifu_freep(void *p)
{
	free(*(void **)p);
}
static inline void sifu_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
static inline void sifu_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
static inline void sifu_closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

#define _cleanup_(f)       __attribute__((cleanup(f)))
#define _cleanup_free_     _cleanup_(sifu_freep)
#define _cleanup_close_    _cleanup_(sifu_closep)
#define _cleanup_fclose_   _cleanup_(sifu_fclosep)
#define _cleanup_closedir_ _cleanup_(sifu_closedirp)
#define _cleanup_buf_      _cleanup_(sifu_buf_free)

#define TAKE_PTR(p)                          \
	({                                   \
		__typeof__(p) _tp_tmp = (p); \
		(p) = NULL;                  \
		_tp_tmp;                     \
	})
#define TAKE_FD(fd)                 \
	({                          \
		int _tf_tmp = (fd); \
		(fd) = -1;          \
		_tf_tmp;            \
	})

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* free() each of N pointers: for destructors of structs with many owned
 * strings, e.g. SIFU_FREE_MANY(r->host, r->repo, r->tag). */
void sifu_free_many(void *const *ptrs, size_t n);
#define SIFU_FREE_MANY(...)                          \
	sifu_free_many((void *const[]){__VA_ARGS__}, \
	               sizeof((void *const[]){__VA_ARGS__}) / sizeof(void *))

/* ---------------------------------------------------------------- memory -- */
/* Allocation failure is not recoverable in a CLI tool; these abort. */
void *sifu_xmalloc(size_t n);
void *sifu_xcalloc(size_t n, size_t size);
void *sifu_xrealloc(void *p, size_t n);
char *sifu_xstrdup(const char *s);
/* At most N bytes of S, NUL-terminated. */
char *sifu_xstrndup(const char *s, size_t n);
char *sifu_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ------------------------------------------------------- growable string -- */

/* A growing NUL-terminated buffer; zero-initialised is empty.  Aborts on OOM
 * like the sifu_x* allocators. */
struct sifu_buf {
	char *p;
	size_t len, cap;
};
void sifu_buf_add(struct sifu_buf *b, const void *p, size_t n);
void sifu_buf_str(struct sifu_buf *b, const char *s);
void sifu_buf_printf(struct sifu_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The string (never NULL); the buffer is empty afterwards. */
char *sifu_buf_take(struct sifu_buf *b);
/* sifu_buf_free (declared above, for _cleanup_buf_) frees the contents and
 * leaves the buffer empty. */

/* --------------------------------------------------------------- logging -- */

/* Apptainer's levels (pkg/sylog): -s shows errors only (SIFU_LOG_QUIET), -q
 * errors and warnings (SIFU_LOG_WARN), the default adds INFO lines.  FATAL
 * and ERROR lines print at every level, as sylog's do. */
enum sifu_loglevel {
	SIFU_LOG_FATAL = -2, /* the error that ends the command (cli_report) */
	SIFU_LOG_ERROR = -1,
	SIFU_LOG_QUIET = 0, /* errors only: -s/--silent */
	SIFU_LOG_WARN = 1,  /* errors and warnings: -q/--quiet */
	SIFU_LOG_INFO = 2,  /* default */
	SIFU_LOG_VERBOSE = 3,
	SIFU_LOG_DEBUG = 4,
};

/* Modules never print; they may log at debug/verbose level through this
 * sink, which the CLI configures (stderr by default). */
void sifu_log_set_level(enum sifu_loglevel lvl);
enum sifu_loglevel sifu_log_get_level(void);
void sifu_log_set_color(bool on);
bool sifu_log_color(void);
/* One line with sylog's prefix: "INFO:    ", "WARNING: ", "FATAL:   "...
 * (the label and its colon padded to 8, then a space); at DEBUG level every
 * line carries sylog's debug form instead: label, [U=uid,P=pid], function.
 * FUNC is the caller's __func__ (sifu_log passes it). */
void sifu_log_at(enum sifu_loglevel lvl, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define sifu_log(lvl, ...) sifu_log_at(lvl, __func__, __VA_ARGS__)
#define sifu_info(...)     sifu_log(SIFU_LOG_INFO, __VA_ARGS__)
#define sifu_warning(...)  sifu_log(SIFU_LOG_WARN, __VA_ARGS__)
#define sifu_debug(...)    sifu_log(SIFU_LOG_DEBUG, __VA_ARGS__)
#define sifu_verbose(...)  sifu_log(SIFU_LOG_VERBOSE, __VA_ARGS__)
/* Monotonic time in nanoseconds, for --debug phase timings. */
uint64_t sifu_now_ns(void);

/* -------------------------------------------------------------- progress -- */
/* A bar with bytes, rate and ETA when stderr is a TTY; nothing otherwise (a
 * job log gets no progress lines, as with Apptainer), nor below
 * SIFU_LOG_INFO (-q, -s).  total may be 0 (unknown). */
struct sifu_progress;
struct sifu_progress *sifu_progress_new(const char *label, uint64_t total);
void sifu_progress_update(struct sifu_progress *p, uint64_t done);
void sifu_progress_done(struct sifu_progress *p);
/* pure helpers, unit-tested */
void sifu_fmt_bytes(uint64_t n, char *buf, size_t len);
void sifu_fmt_duration(uint64_t secs, char *buf, size_t len);

/* Open the directory NAME under DIRFD (".": DIRFD itself, which stays
 * open) for reading with readdir: O_DIRECTORY|O_CLOEXEC, and O_NOFOLLOW
 * unless NAME is ".".  NULL with errno set on failure. */
DIR *sifu_opendir_at(int dirfd, const char *name);

/* ------------------------------------------------------------ safe paths -- */
/* Resolve PATH (absolute or relative) beneath the directory ROOTFD as if ROOTFD
 * were "/": symlinks and ".." never leave it.  Uses openat2(RESOLVE_IN_ROOT |
 * RESOLVE_NO_MAGICLINKS) and, where the kernel lacks it, a component-by-component
 * walk with O_NOFOLLOW that expands symlinks itself.  Returns an fd opened with
 * FLAGS (O_CLOEXEC added) or -errno. */
int sifu_path_open_in_root(int rootfd, const char *path, int flags, mode_t mode);
/* Create every missing directory of PATH under ROOTFD (one component at a time
 * with mkdirat and O_PATH|O_NOFOLLOW) and return an O_PATH fd on the last one. */
int sifu_path_mkdir_in_root(int rootfd, const char *path, mode_t mode);
/* Find executable NAME in SEARCH (a $PATH-style list; /usr/bin:/bin when
 * NULL or empty), then /usr/sbin and /sbin (a user's PATH seldom has them):
 * the absolute path into OUT.  Relative entries are skipped. */
bool sifu_find_exe(const char *name, const char *search, char *out, size_t len);
/* Force the fallback walk (tests; cli/ sets it for SIFU_NO_OPENAT2=1). */
void sifu_path_force_fallback(bool on);
/* Lexically normalise PATH: collapse "//", ".", and ".." (never above "/" for
 * absolute paths; for relative paths a leading ".." is an error, -EINVAL).
 * Pure; writes to OUT (size LEN). */
int sifu_path_normalize(const char *path, char *out, size_t len);
/* "/proc/self/fd/N" for mounting onto an fd. */
void sifu_path_fd(int fd, char buf[static 32]);

/* ------------------------------------------------------ private directories --
 * Caches and scratch directories that sifu trusts what it finds in (see
 * common/privdir.c).  ALT, when not NULL, is a further remedy added to the
 * hint ("set SIFU_CACHEDIR to another directory"). */
/* Open the directory PATH (absolute, or relative to ATFD: AT_FDCWD or a
 * directory fd, named ATNAME in messages) one component at a time.  The last
 * NPRIVATE components (all of them with UINT_MAX) are opened with
 * O_NOFOLLOW|O_DIRECTORY, made 0700 when missing, and must be the caller's
 * and not writable by group or others; the leading ones are followed as they
 * are, except that one sifu has to make is checked like a private one.
 * Returns an O_RDONLY|O_DIRECTORY|O_CLOEXEC fd, or < 0 with ERR saying which
 * directory is wrong, why, and what to do. */
int sifu_privdir_open(int atfd, const char *atname, const char *path, unsigned nprivate,
                      const char *alt, struct sifu_err *err);
/* 0 if the open directory FD (named WHAT) is the caller's and not writable by
 * group or others; else < 0 with ERR set as above. */
int sifu_privdir_check(int fd, const char *what, const char *alt, struct sifu_err *err);

/* ------------------------------------------------------------- processes --
 * One way to start a program, wait for a child and say how it ended
 * (common/proc.c).  Children that run sifu's own code after fork() report
 * why they failed through a sifu_childerr pipe, never through exit codes. */

/* How a child ended, decoded from its wait status. */
struct sifu_exit {
	int code;   /* exit status, or 128 + signal number (the shell's convention) */
	int signal; /* the signal that killed it, or 0 */
};
/* "exited with status 3", "was killed by signal 9 (Killed)". */
void sifu_exit_describe(const struct sifu_exit *x, char *buf, size_t len);
/* True when the child exited with status 0. */
static inline bool sifu_exit_ok(const struct sifu_exit *x)
{
	return x->signal == 0 && x->code == 0;
}
/* Decode a raw waitpid() status. */
void sifu_exit_decode(int wstatus, struct sifu_exit *x);

/* Wait for PID, retrying on EINTR.  When FORWARD is not NULL and a signal
 * interrupts the wait while *FORWARD is non-zero (a handler stored the signal
 * there), that signal is sent to PID once.  X may be NULL.  0 or -errno. */
int sifu_proc_wait(pid_t pid, struct sifu_exit *x, volatile sig_atomic_t *forward);
/* SIGKILL PID (if > 0) and reap it; errno is preserved. */
void sifu_proc_kill(pid_t pid);

/* A program to start: standard fds are dup'ed from IN, OUT and ERR (-1
 * keeps sifu's own, SIFU_SPAWN_NULL opens /dev/null); every other fd sifu
 * holds is O_CLOEXEC already.  A NAME without '/' is searched in $PATH.  The
 * child starts with an empty signal mask and default dispositions. */
#define SIFU_SPAWN_NULL (-2)
struct sifu_command {
	char *const *argv; /* argv[0] is the program */
	char *const *envp; /* NULL: sifu's environment */
	int in, out, err;
};
/* Start S; 0 with *PID set, or < 0 with ERR naming the program (a missing
 * program is SIFU_E_NOTFOUND). */
int sifu_spawn(const struct sifu_command *s, pid_t *pid, struct sifu_err *err);
/* Start S and wait for it: 0 with *X filled (whatever the exit status), or
 * < 0 when it could not be started or waited for. */
int sifu_spawn_wait(const struct sifu_command *s, struct sifu_exit *x, struct sifu_err *err);
/* Start S with its standard output on a pipe, read at most MAX bytes of it
 * (more is an error) into *OUT (NUL-terminated, *LEN its length; LEN may be
 * NULL), and wait.  0 with *X filled, or < 0 with ERR set. */
int sifu_spawn_capture(const struct sifu_command *s, size_t max, char **out, size_t *len,
                       struct sifu_exit *x, struct sifu_err *err);

/* A child's report to its parent: the parent opens the channel (both ends
 * O_CLOEXEC) before fork; a child that fails sends its whole sifu_err and
 * exits, one that execs or succeeds closes the write end by exiting or
 * exec'ing.  The parent reads one report or EOF. */
struct sifu_childerr {
	int rd, wr;
};
int sifu_childerr_open(struct sifu_childerr *c, struct sifu_err *err);
/* In the child: close the read end. In the parent: close the write end. */
void sifu_childerr_in_child(struct sifu_childerr *c);
void sifu_childerr_in_parent(struct sifu_childerr *c);
/* In the child: send ERR (async-signal-safe: write(2) only).  Returns 0, or
 * -errno when the parent is gone. */
int sifu_childerr_send(struct sifu_childerr *c, const struct sifu_err *err);
/* In the child: send ERR and _exit(255). */
_Noreturn void sifu_childerr_exit(struct sifu_childerr *c, const struct sifu_err *err);
/* In the parent: 0 when the write end closed without a report; 1 with ERR
 * filled from the child's report; < 0 with ERR set when the pipe failed or
 * the report was cut short. */
int sifu_childerr_recv(struct sifu_childerr *c, struct sifu_err *err);
/* Close whatever ends are still open. */
void sifu_childerr_close(struct sifu_childerr *c);

/* ----------------------------------------------------------------- files --
 * Bounded whole-file reads and atomic replacement (common/file.c). */

/* Read FD to its end, at most MAX bytes (a longer file is SIFU_E_RANGE, not
 * a silent truncation), into a NUL-terminated *OUT; *LEN (may be NULL) is
 * the byte count.  WHAT names the file in messages. */
int sifu_read_fd(int fd, const char *what, size_t max, char **out, size_t *len,
                 struct sifu_err *err);
/* The same for PATH relative to DIRFD (AT_FDCWD or a directory fd); a
 * missing file is SIFU_E_NOTFOUND with errno ENOENT. */
int sifu_read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *len,
                      struct sifu_err *err);

/* Write a file under its final name only once it is whole: a temporary file
 * (".NAME.sifu-XXXXXX", mode 0600) is created beside it, written through
 * .fd, then fsync'ed, given its mode and renamed over the name; the
 * directory is fsync'ed after.  The temporary file never outlives
 * sifu_atomic_commit or sifu_atomic_abort, failure or not. */
struct sifu_atomic {
	int fd;     /* write here; -1 when not open */
	int dirfd;  /* the directory of the final name */
	char *name; /* the final name, relative to dirfd */
	char *tmp;  /* the temporary name, relative to dirfd */
	char *path; /* the final name as the caller gave it, for messages */
};
/* Open a temporary file for PATH (relative to ATFD). */
int sifu_atomic_open(struct sifu_atomic *a, int atfd, const char *path, struct sifu_err *err);
/* fsync, chmod to MODE, rename over the final name, fsync the directory.
 * The temporary file is gone afterwards whatever happens. */
int sifu_atomic_commit(struct sifu_atomic *a, mode_t mode, struct sifu_err *err);
/* Remove the temporary file and release A; safe after commit and twice. */
void sifu_atomic_abort(struct sifu_atomic *a);
#define _cleanup_atomic_ _cleanup_(sifu_atomic_abort)
/* The whole of DATA under PATH (relative to ATFD), atomically, with MODE. */
int sifu_atomic_write(int atfd, const char *path, const void *data, size_t len, mode_t mode,
                      struct sifu_err *err);
