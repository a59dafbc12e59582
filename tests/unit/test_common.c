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

static void test_progress_plain_lines(void **state)
{
	/* not a TTY: sparse plain lines, a final "done" line; silent when quiet */
	char path[] = "/tmp/sifu-progress-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	int saved = fcntl(2, F_DUPFD_CLOEXEC, 3);
	assert_true(dup2(fd, 2) == 2);
	sifu_log_set_level(SIFU_LOG_INFO);
	struct sifu_progress *p = sifu_progress_new("layer 1", 4u << 20);
	for (uint64_t d = 0; d <= (4u << 20); d += 64u << 10)
		sifu_progress_update(p, d);
	sifu_progress_done(p);
	sifu_log_set_level(SIFU_LOG_QUIET);
	p = sifu_progress_new("quiet", 100);
	sifu_progress_update(p, 50);
	sifu_progress_done(p);
	sifu_log_set_level(SIFU_LOG_INFO);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	char buf[4096] = "";
	assert_true(pread(fd, buf, sizeof(buf) - 1, 0) > 0);
	close(fd);
	unlink(path);
	assert_non_null(strstr(buf, "layer 1: 4.0 MiB of 4.0 MiB"));
	assert_non_null(strstr(buf, " done\n"));
	assert_null(strstr(buf, "quiet"));
	/* sparse: one line per quarter plus the final one, not one per update */
	int lines = 0;
	for (char *c = buf; *c; c++)
		lines += *c == '\n';
	assert_true(lines >= 2 && lines <= 6);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_err_chain),
	    cmocka_unit_test(test_err_chain_overflow),
	    cmocka_unit_test(test_normalize),
	    cmocka_unit_test_setup_teardown(test_in_root_openat2, make_tree, drop_tree),
	    cmocka_unit_test_setup_teardown(test_in_root_fallback, make_tree, drop_tree),
	    cmocka_unit_test(test_fmt),
	    cmocka_unit_test(test_progress_plain_lines),
	    cmocka_unit_test(test_privdir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
