/* SPDX-License-Identifier: BSD-3-Clause */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>

#include "common.h"

static void test_err_chain(void **state)
{
	struct sifu_err err = {0};
	errno = ENOENT;
	int r = sifu_err_sys(&err, "open %s", "/nope");
	assert_int_equal(r, -ENOENT);
	sifu_err_wrap(&err, "sif: reading image");
	char line[512];
	sifu_err_format(&err, line, sizeof(line));
	assert_string_equal(line, "sif: reading image: open /nope: No such file or directory");
	assert_int_equal(err.depth, 2);
	sifu_err_set(&err, SIFU_E_CORRUPT, 0, "descriptor 3: offset past end of file");
	sifu_err_format(&err, line, sizeof(line));
	assert_string_equal(line, "descriptor 3: offset past end of file");
	assert_int_equal(sifu_err_set(NULL, SIFU_E_CORRUPT, 0, "x"), -EINVAL);
}

static void test_err_chain_overflow(void **state)
{
	struct sifu_err err = {0};
	sifu_err_set(&err, SIFU_E_RANGE, ERANGE, "inner");
	for (int i = 0; i < 20; i++)
		sifu_err_wrap(&err, "ctx %d", i);
	assert_int_equal(err.depth, SIFU_ERR_CHAIN_MAX);
	assert_string_equal(err.chain[0], "inner");
	assert_string_equal(err.chain[SIFU_ERR_CHAIN_MAX - 1], "ctx 19");
}

static void test_normalize(void **state)
{
	char out[256];
	struct {
		const char *in, *want;
		int r;
	} cases[] = {
	    {"/", "/", 0},
	    {"//a//b/", "/a/b", 0},
	    {"/a/./b/../c", "/a/c", 0},
	    {"/../../etc", "/etc", 0},
	    {"a/b/..", "a", 0},
	    {"a/../..", NULL, -EINVAL},
	    {".", ".", 0},
	    {"", ".", 0},
	    {"/a/b/../../..", "/", 0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int r = sifu_path_normalize(cases[i].in, out, sizeof(out));
		assert_int_equal(r, cases[i].r);
		if (r == 0)
			assert_string_equal(out, cases[i].want);
	}
	assert_int_equal(sifu_path_normalize("/abcdefgh", out, 4), -ENAMETOOLONG);
}

static char tmpl[64];
static int rootfd = -1;

static int make_tree(void **state)
{
	snprintf(tmpl, sizeof(tmpl), "/tmp/sifu-test-XXXXXX");
	assert_non_null(mkdtemp(tmpl));
	rootfd = open(tmpl, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(rootfd >= 0);
	assert_int_equal(mkdirat(rootfd, "etc", 0755), 0);
	int fd = openat(rootfd, "etc/passwd", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "inside\n", 7), 7);
	close(fd);
	/* escape attempts */
	assert_int_equal(symlinkat("/etc", rootfd, "abs"), 0);
	assert_int_equal(symlinkat("../../../../etc", rootfd, "up"), 0);
	assert_int_equal(symlinkat("loop2", rootfd, "loop1"), 0);
	assert_int_equal(symlinkat("loop1", rootfd, "loop2"), 0);
	assert_int_equal(symlinkat("/proc/self/root/etc", rootfd, "magic"), 0);
	return 0;
}

static int drop_tree(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpl);
	assert_int_equal(system(cmd), 0);
	close(rootfd);
	return 0;
}

static void read_passwd(const char *path, const char *want_prefix)
{
	int fd = sifu_path_open_in_root(rootfd, path, O_RDONLY, 0);
	assert_true(fd >= 0);
	char buf[16] = "";
	assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
	assert_memory_equal(buf, want_prefix, strlen(want_prefix));
	close(fd);
}

static void check_in_root(bool fallback)
{
	sifu_path_force_fallback(fallback);
	/* every one of these must land inside the tree, never on the host */
	read_passwd("/etc/passwd", "inside");
	read_passwd("abs/passwd", "inside");
	read_passwd("up/passwd", "inside");
	read_passwd("../../../etc/passwd", "inside");
	assert_int_equal(sifu_path_open_in_root(rootfd, "loop1", O_RDONLY, 0), -ELOOP);
	int r = sifu_path_open_in_root(rootfd, "magic/passwd", O_RDONLY, 0);
	/* openat2 refuses magic links; the fallback resolves the text inside the root */
	assert_true(r == -ELOOP || r == -EXDEV || r == -ENOENT);
	assert_int_equal(sifu_path_open_in_root(rootfd, "nope/x", O_RDONLY, 0), -ENOENT);
	int d = sifu_path_mkdir_in_root(rootfd, "abs/new/deeper", 0755);
	assert_true(d >= 0);
	close(d);
	struct stat st;
	assert_int_equal(fstatat(rootfd, "etc/new/deeper", &st, 0), 0);
	assert_true(S_ISDIR(st.st_mode));
	d = sifu_path_mkdir_in_root(rootfd, "up/x", 0755);
	assert_true(d >= 0);
	close(d);
	assert_int_equal(fstatat(rootfd, "etc/x", &st, 0), 0);
	sifu_path_force_fallback(false);
}

static void test_in_root_openat2(void **state)
{
	check_in_root(false);
}
static void test_in_root_fallback(void **state)
{
	check_in_root(true);
}

static void test_fmt(void **state)
{
	char b[32];
	sifu_fmt_bytes(512, b, sizeof(b));
	assert_string_equal(b, "512 B");
	sifu_fmt_bytes(3u << 20, b, sizeof(b));
	assert_string_equal(b, "3.0 MiB");
	sifu_fmt_duration(59, b, sizeof(b));
	assert_string_equal(b, "59s");
	sifu_fmt_duration(3725, b, sizeof(b));
	assert_string_equal(b, "1h02m");
}

/* Feed a 4 MiB progress at LVL with stderr on FD. */
static void progress_into(int fd, enum sifu_loglevel lvl)
{
	int saved = fcntl(2, F_DUPFD_CLOEXEC, 3);
	assert_true(dup2(fd, 2) == 2);
	sifu_log_set_level(lvl);
	struct sifu_progress *p = sifu_progress_new("layer 1", 4u << 20);
	for (uint64_t d = 0; d <= (4u << 20); d += 64u << 10)
		sifu_progress_update(p, d);
	sifu_progress_done(p);
	sifu_log_set_level(SIFU_LOG_INFO);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
}

static void test_progress_only_on_tty(void **state)
{
	/* a file (a job log): nothing at all, as with Apptainer */
	char path[] = "/tmp/sifu-progress-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	progress_into(fd, SIFU_LOG_INFO);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 0);
	close(fd);
	unlink(path);

	/* a terminal: the bar, ending in its final line; nothing under -q */
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	assert_true(m >= 0);
	assert_int_equal(grantpt(m), 0);
	assert_int_equal(unlockpt(m), 0);
	int t = open(ptsname(m), O_RDWR | O_NOCTTY | O_CLOEXEC);
	assert_true(t >= 0);
	progress_into(t, SIFU_LOG_WARN);
	progress_into(t, SIFU_LOG_INFO);
	char buf[4096] = "";
	assert_true(read(m, buf, sizeof(buf) - 1) > 0);
	close(t);
	close(m);
	assert_non_null(strstr(buf, "layer 1"));
	assert_non_null(strstr(buf, "4.0 MiB/4.0 MiB"));
	/* one final line: the -q pass drew nothing */
	int lines = 0;
	for (char *c = buf; *c; c++)
		lines += *c == '\n';
	assert_int_equal(lines, 1);
}

/* The log lines, written with stderr on a file, read back. */
static void log_into(char *buf, size_t len, enum sifu_loglevel at, bool color)
{
	char path[] = "/tmp/sifu-log-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	fflush(stderr);
	int saved = fcntl(2, F_DUPFD_CLOEXEC, 3);
	assert_true(dup2(fd, 2) == 2);
	sifu_log_set_level(at);
	sifu_log_set_color(color);
	sifu_log(SIFU_LOG_FATAL, "f %d", 1);
	sifu_log(SIFU_LOG_ERROR, "e");
	sifu_log(SIFU_LOG_WARN, "w\n"); /* sylog trims the newline */
	sifu_log(SIFU_LOG_INFO, "i");
	sifu_log(SIFU_LOG_VERBOSE, "v");
	sifu_log(SIFU_LOG_DEBUG, "d");
	sifu_log_set_level(SIFU_LOG_INFO);
	sifu_log_set_color(false);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	ssize_t n = pread(fd, buf, len - 1, 0);
	assert_true(n >= 0);
	buf[n] = '\0';
	close(fd);
}

/* pkg/sylog/sylog.go prefix(): "%-8s " of "LABEL:", colour on the label
 * only; at DebugLevel "%-8s" label, "%-19s" [U=,P=], "%-30s" func(). */
static void test_log_prefixes(void **state)
{
	(void)state;
	char buf[2048];
	log_into(buf, sizeof(buf), SIFU_LOG_INFO, false);
	assert_string_equal(buf, "FATAL:   f 1\nERROR:   e\nWARNING: w\nINFO:    i\n");
	log_into(buf, sizeof(buf), SIFU_LOG_QUIET, false); /* -s */
	assert_string_equal(buf, "FATAL:   f 1\nERROR:   e\n");
	log_into(buf, sizeof(buf), SIFU_LOG_WARN, true); /* -q, on a terminal */
	assert_string_equal(buf, "\033[31mFATAL:  \033[0m f 1\n\033[31mERROR:  \033[0m e\n"
	                         "\033[33mWARNING:\033[0m w\n");
	log_into(buf, sizeof(buf), SIFU_LOG_DEBUG, false);
	char want[128];
	snprintf(want, sizeof(want), "VERBOSE [U=%u,P=%d]", (unsigned)geteuid(), (int)getpid());
	assert_non_null(strstr(buf, want));
	char *d = strstr(buf, "DEBUG   [U=");
	assert_non_null(d);
	char fn[64];
	snprintf(fn, sizeof(fn), "%-30sd\n", "log_into()");
	assert_string_equal(d + 8 + 19, fn);
}

/* sifu_privdir_open: made 0700 when missing; refused when open to others,
 * a symbolic link, or not a directory; leading components followed. */
static void test_privdir(void **state)
{
	char base[] = "/tmp/sifu-test-privdir-XXXXXX";
	assert_non_null(mkdtemp(base));
	char p[256], q[256];
	struct sifu_err err = {0};
	snprintf(p, sizeof(p), "%s/a/b", base);
	int fd = sifu_privdir_open(AT_FDCWD, NULL, p, 1, NULL, &err);
	assert_true(fd >= 0);
	close(fd);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	snprintf(q, sizeof(q), "%s/a", base); /* made by sifu: private as well */
	assert_int_equal(stat(q, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	/* open to others: refused, naming it */
	assert_int_equal(chmod(p, 0777), 0);
	assert_int_equal(sifu_privdir_open(AT_FDCWD, NULL, p, 1, "or else", &err), -EPERM);
	assert_non_null(strstr(err.chain[0], p));
	assert_non_null(strstr(err.chain[0], "writable by group and others"));
	assert_non_null(strstr(err.hint, "chmod go-w"));
	assert_non_null(strstr(err.hint, "or else"));
	assert_int_equal(chmod(p, 0755), 0);
	/* a symbolic link in a private component: refused; in a leading one:
	 * followed */
	snprintf(q, sizeof(q), "%s/link", base);
	assert_int_equal(symlink("a", q), 0);
	snprintf(q, sizeof(q), "%s/link/b", base);
	assert_int_equal(sifu_privdir_open(AT_FDCWD, NULL, q, 2, NULL, &err), -ELOOP);
	assert_non_null(strstr(err.chain[0], "symbolic link"));
	fd = sifu_privdir_open(AT_FDCWD, NULL, q, 1, NULL, &err);
	assert_true(fd >= 0);
	/* relative to a directory fd, every component private */
	int sub = sifu_privdir_open(fd, q, "x/y", ~0u, NULL, &err);
	assert_true(sub >= 0);
	close(sub);
	assert_int_equal(sifu_privdir_open(fd, q, "x/../y", ~0u, NULL, &err), -EINVAL);
	close(fd);
	/* a file where a directory should be */
	snprintf(q, sizeof(q), "%s/a/b/file", base);
	close(open(q, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	assert_true(sifu_privdir_open(AT_FDCWD, NULL, q, 1, NULL, &err) < 0);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
	assert_int_equal(system(cmd), 0);
}

/* ------------------------------------------------------- processes, files -- */

static void test_spawn_status(void **state)
{
	struct sifu_err err = {0};
	struct sifu_exit x;
	char *const ok[] = {"sh", "-c", "exit 3", NULL};
	struct sifu_command s = {ok, NULL, SIFU_SPAWN_NULL, SIFU_SPAWN_NULL, SIFU_SPAWN_NULL};
	assert_int_equal(sifu_spawn_wait(&s, &x, &err), 0);
	assert_int_equal(x.code, 3);
	assert_int_equal(x.signal, 0);
	assert_false(sifu_exit_ok(&x));
	char *const killed[] = {"sh", "-c", "kill -9 $$", NULL};
	s.argv = killed;
	assert_int_equal(sifu_spawn_wait(&s, &x, &err), 0);
	assert_int_equal(x.signal, 9);
	assert_int_equal(x.code, 137);
	char d[64];
	sifu_exit_describe(&x, d, sizeof(d));
	assert_non_null(strstr(d, "signal 9"));
	char *const missing[] = {"sifu-no-such-program", NULL};
	s.argv = missing;
	assert_true(sifu_spawn_wait(&s, &x, &err) < 0);
	assert_int_equal(err.code, SIFU_E_NOTFOUND);
}

static void test_spawn_capture(void **state)
{
	struct sifu_err err = {0};
	struct sifu_exit x;
	char *out = NULL;
	size_t len = 0;
	char *const argv[] = {"sh", "-c", "printf 'hello world'", NULL};
	struct sifu_command s = {argv, NULL, SIFU_SPAWN_NULL, -1, SIFU_SPAWN_NULL};
	assert_int_equal(sifu_spawn_capture(&s, 64, &out, &len, &x, &err), 0);
	assert_true(sifu_exit_ok(&x));
	assert_int_equal(len, 11);
	assert_string_equal(out, "hello world");
	free(out);
	out = NULL;
	/* more output than allowed is an error, not a silent truncation */
	assert_true(sifu_spawn_capture(&s, 5, &out, &len, &x, &err) < 0);
	assert_int_equal(err.code, SIFU_E_RANGE);
	assert_null(out);
}

static void test_childerr(void **state)
{
	struct sifu_err err = {0};
	struct sifu_childerr c;
	assert_int_equal(sifu_childerr_open(&c, &err), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		sifu_childerr_in_child(&c);
		struct sifu_err e = {0};
		errno = EACCES;
		sifu_err_sys(&e, "mounting %s", "/x");
		sifu_err_hint(&e, "try again");
		sifu_childerr_exit(&c, &e);
	}
	sifu_childerr_in_parent(&c);
	assert_int_equal(sifu_childerr_recv(&c, &err), 1);
	sifu_childerr_close(&c);
	struct sifu_exit x;
	assert_int_equal(sifu_proc_wait(pid, &x, NULL), 0);
	assert_int_equal(x.code, 255);
	char line[256];
	sifu_err_format(&err, line, sizeof(line));
	assert_string_equal(line, "mounting /x: Permission denied");
	assert_string_equal(err.hint, "try again");
	/* a child that exits (or execs) without a report: EOF, 0 */
	assert_int_equal(sifu_childerr_open(&c, &err), 0);
	pid = fork();
	if (pid == 0)
		_exit(0);
	sifu_childerr_in_parent(&c);
	assert_int_equal(sifu_childerr_recv(&c, &err), 0);
	sifu_childerr_close(&c);
	assert_int_equal(sifu_proc_wait(pid, &x, NULL), 0);
	assert_true(sifu_exit_ok(&x));
}

static void test_read_file(void **state)
{
	char dir[] = "/tmp/sifu-test-file-XXXXXX";
	assert_non_null(mkdtemp(dir));
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct sifu_err err = {0};
	assert_int_equal(sifu_atomic_write(dfd, "f", "0123456789", 10, 0640, &err), 0);
	char *buf = NULL;
	size_t len = 0;
	assert_int_equal(sifu_read_file_at(dfd, "f", 10, &buf, &len, &err), 0);
	assert_int_equal(len, 10);
	assert_string_equal(buf, "0123456789");
	free(buf);
	assert_true(sifu_read_file_at(dfd, "f", 9, &buf, &len, &err) < 0);
	assert_int_equal(err.code, SIFU_E_RANGE);
	assert_true(sifu_read_file_at(dfd, "missing", 9, &buf, &len, &err) < 0);
	assert_int_equal(err.code, SIFU_E_NOTFOUND);
	struct stat st;
	assert_int_equal(fstatat(dfd, "f", &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	/* an aborted write leaves the old file and no temporary file */
	struct sifu_atomic a;
	_cleanup_free_ char *path = sifu_xasprintf("%s/f", dir);
	assert_int_equal(sifu_atomic_open(&a, AT_FDCWD, path, &err), 0);
	assert_int_equal(write(a.fd, "x", 1), 1);
	sifu_atomic_abort(&a);
	sifu_atomic_abort(&a); /* twice is fine */
	DIR *d = opendir(dir);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.' || strncmp(e->d_name, ".f.", 3) == 0;
	closedir(d);
	assert_int_equal(n, 1);
	assert_int_equal(sifu_read_file_at(dfd, "f", 100, &buf, &len, &err), 0);
	assert_string_equal(buf, "0123456789");
	free(buf);
	/* a directory is not a file name */
	assert_true(sifu_atomic_write(AT_FDCWD, "/tmp/", "x", 1, 0644, &err) < 0);
	unlinkat(dfd, "f", 0);
	rmdir(dir);
}

static void test_buf_cleanup(void **state)
{
	_cleanup_buf_ struct sifu_buf b = {0};
	sifu_buf_printf(&b, "%d-%s", 7, "x");
	_cleanup_free_ char *s = sifu_xstrndup("abcdef", 3);
	assert_string_equal(s, "abc");
	assert_string_equal(b.p, "7-x");
	char *a = sifu_xstrdup("a"), *c = sifu_xstrdup("c");
	SIFU_FREE_MANY(a, NULL, c); /* ASan would see a leak or a double free */
}

static void test_opendir_at(void **state)
{
	DIR *d = sifu_opendir_at(AT_FDCWD, "/");
	assert_non_null(d);
	assert_true(fcntl(dirfd(d), F_GETFD) & FD_CLOEXEC);
	closedir(d);
	errno = 0;
	assert_null(sifu_opendir_at(AT_FDCWD, "/nonexistent-sifu"));
	assert_int_equal(errno, ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_err_chain),
	    cmocka_unit_test(test_err_chain_overflow),
	    cmocka_unit_test(test_normalize),
	    cmocka_unit_test_setup_teardown(test_in_root_openat2, make_tree, drop_tree),
	    cmocka_unit_test_setup_teardown(test_in_root_fallback, make_tree, drop_tree),
	    cmocka_unit_test(test_fmt),
	    cmocka_unit_test(test_progress_only_on_tty),
	    cmocka_unit_test(test_log_prefixes),
	    cmocka_unit_test(test_privdir),
	    cmocka_unit_test(test_spawn_status),
	    cmocka_unit_test(test_spawn_capture),
	    cmocka_unit_test(test_childerr),
	    cmocka_unit_test(test_read_file),
	    cmocka_unit_test(test_buf_cleanup),
	    cmocka_unit_test(test_opendir_at),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
