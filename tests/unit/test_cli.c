/* SPDX-License-Identifier: BSD-3-Clause */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cli.h"

static const char *fake_env[16][2];

static const char *fake_getenv(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(fake_env) && fake_env[i][0]; i++)
		if (!strcmp(fake_env[i][0], name))
			return fake_env[i][1];
	return NULL;
}

static int parse(const char *verb, char **argv, int argc, struct cli_args *a, struct sifu_err *err)
{
	const struct cli_verb *v = cli_find_verb(verb);
	assert_non_null(v);
	memset(a, 0, sizeof(*a));
	unsetenv("SIFU_BIND");
	unsetenv("APPTAINER_BIND");
	return cli_parse(v, argc, argv, a, err);
}

static void test_exec_stops_at_image(void **state)
{
	char *argv[] = {"-B", "/a:/b:ro,/c", "--bind=/d", "-ce", "img.sif", "ls", "-B", "x"};
	struct cli_args a;
	struct sifu_err err = {0};
	assert_int_equal(parse("exec", argv, 8, &a, &err), 0);
	assert_int_equal(a.nlist[O_BIND], 3);
	assert_string_equal(a.list[O_BIND][0], "/a:/b:ro");
	assert_string_equal(a.list[O_BIND][1], "/c");
	assert_string_equal(a.list[O_BIND][2], "/d");
	assert_true(a.set[O_CONTAIN]);
	assert_true(a.set[O_CLEANENV]);
	assert_int_equal(a.npos, 4);
	assert_string_equal(a.pos[0], "img.sif");
	assert_string_equal(a.pos[2], "-B"); /* belongs to the command */
	cli_args_free(&a);
}

/* a bind path's "\," does not split the list (Apptainer's ParseBindPath);
 * --scratch is split at every comma */
static void test_bind_escaped_comma(void **state)
{
	char *argv[] = {"-B", "/a\\,b:/c,/d", "-S", "/s,/t", "img.sif"};
	struct cli_args a;
	struct sifu_err err = {0};
	assert_int_equal(parse("run", argv, 5, &a, &err), 0);
	assert_int_equal(a.nlist[O_BIND], 2);
	assert_string_equal(a.list[O_BIND][0], "/a\\,b:/c");
	assert_string_equal(a.list[O_BIND][1], "/d");
	assert_int_equal(a.nlist[O_SCRATCH], 2);
	cli_args_free(&a);
}

static void test_unknown_flag_suggests(void **state)
{
	char *argv[] = {"--bnid", "/x", "img"};
	struct cli_args a;
	struct sifu_err err = {0};
	assert_true(parse("exec", argv, 3, &a, &err) < 0);
	assert_string_equal(err.chain[0], "exec: unknown flag --bnid");
	assert_non_null(strstr(err.hint, "--bind"));
	cli_args_free(&a);
}

static void test_missing_value(void **state)
{
	char *argv[] = {"--pwd"};
	struct cli_args a;
	struct sifu_err err = {0};
	assert_true(parse("exec", argv, 1, &a, &err) < 0);
	assert_non_null(strstr(err.chain[0], "needs a value"));
	cli_args_free(&a);
}

static void test_env_precedence(void **state)
{
	const struct cli_verb *v = cli_find_verb("exec");
	struct cli_args a;
	struct sifu_err err = {0};
	memset(fake_env, 0, sizeof(fake_env));
	fake_env[0][0] = "APPTAINER_BIND", fake_env[0][1] = "/from-apptainer";
	fake_env[1][0] = "SINGULARITY_BIND", fake_env[1][1] = "/from-singularity";
	fake_env[2][0] = "SINGULARITY_CONTAINALL", fake_env[2][1] = "true";
	fake_env[3][0] = "SIFU_CLEANENV", fake_env[3][1] = "0";
	fake_env[4][0] = "SINGULARITY_BINDPATH", fake_env[4][1] = "/legacy";
	fake_env[5][0] = "SIFU_PWD", fake_env[5][1] = "/work";
	memset(&a, 0, sizeof(a));
	assert_int_equal(cli_apply_env(v, &a, fake_getenv, &err), 0);
	/* BIND and BINDPATH both apply, as in Apptainer; SINGULARITY_BIND
	 * only where APPTAINER_BIND is unset */
	assert_int_equal(a.nlist[O_BIND], 2);
	assert_string_equal(a.list[O_BIND][0], "/from-apptainer");
	assert_string_equal(a.list[O_BIND][1], "/legacy");
	assert_string_equal(a.source[O_BIND], "APPTAINER_BIND");
	assert_true(a.set[O_CONTAINALL]);
	assert_false(a.set[O_CLEANENV]);
	assert_string_equal(a.val[O_PWD], "/work");
	cli_args_free(&a);

	/* the command line beats the environment */
	char *argv[] = {"--pwd", "/cmdline", "img"};
	assert_int_equal(cli_parse(v, 3, argv, &a, &err), 0);
	assert_int_equal(cli_apply_env(v, &a, fake_getenv, &err), 0);
	assert_string_equal(a.val[O_PWD], "/cmdline");
	cli_args_free(&a);

	/* --bind and its variables add up: the command line's first */
	char *bargv[] = {"-B", "/cmdline", "img"};
	assert_int_equal(cli_parse(v, 3, bargv, &a, &err), 0);
	assert_int_equal(a.nlist[O_BIND], 1);
	assert_int_equal(cli_apply_env(v, &a, fake_getenv, &err), 0);
	assert_int_equal(a.nlist[O_BIND], 3);
	assert_string_equal(a.list[O_BIND][0], "/cmdline");
	assert_string_equal(a.list[O_BIND][1], "/from-apptainer");
	assert_string_equal(a.source[O_BIND], "command line");
	cli_args_free(&a);

	fake_env[0][0] = "SIFU_NO_HOME", fake_env[0][1] = "maybe";
	memset(&a, 0, sizeof(a));
	assert_true(cli_apply_env(v, &a, fake_getenv, &err) < 0);
	assert_non_null(strstr(err.chain[0], "SIFU_NO_HOME=maybe"));
	cli_args_free(&a);
}

/* Apptainer names one flag differently per verb (EnvKeys in its
 * cmd/internal/cli: sign.go SIGN_KEY, verify.go VERIFY_KEY, pull.go
 * PULL_ARCH): each verb takes only its own name. */
static void test_env_per_verb(void **state)
{
	struct cli_args a;
	struct sifu_err err = {0};
	memset(fake_env, 0, sizeof(fake_env));
	fake_env[0][0] = "APPTAINER_SIGN_KEY", fake_env[0][1] = "/private.pem";
	fake_env[1][0] = "SINGULARITY_PULL_ARCH", fake_env[1][1] = "arm64";
	memset(&a, 0, sizeof(a));
	assert_int_equal(cli_apply_env(cli_find_verb("sign"), &a, fake_getenv, &err), 0);
	assert_int_equal(a.nlist[O_KEY], 1);
	assert_string_equal(a.list[O_KEY][0], "/private.pem");
	assert_string_equal(a.source[O_KEY], "APPTAINER_SIGN_KEY");
	cli_args_free(&a);
	assert_int_equal(cli_apply_env(cli_find_verb("verify"), &a, fake_getenv, &err), 0);
	assert_int_equal(a.nlist[O_KEY], 0);
	cli_args_free(&a);
	assert_int_equal(cli_apply_env(cli_find_verb("pull"), &a, fake_getenv, &err), 0);
	assert_string_equal(a.val[O_ARCH], "arm64");
	cli_args_free(&a);
	assert_int_equal(cli_apply_env(cli_find_verb("build"), &a, fake_getenv, &err), 0);
	assert_null(a.val[O_ARCH]);
	cli_args_free(&a);
}

static void test_suggest(void **state)
{
	const char *verbs[] = {"exec", "run", "shell", "pull", "inspect", NULL};
	assert_string_equal(cli_suggest("exce", verbs), "exec");
	assert_string_equal(cli_suggest("shel", verbs), "shell");
	assert_null(cli_suggest("frobnicate", verbs));
	assert_int_equal(cli_edit_distance("kitten", "sitting"), 3);
}

static void test_sizes(void **state)
{
	uint64_t v;
	assert_int_equal(cli_parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(cli_parse_size("1M", &v), 0);
	assert_int_equal(v, 1u << 20);
	assert_int_equal(cli_parse_size("2GiB", &v), 0);
	assert_int_equal(v, 2ull << 30);
	assert_int_equal(cli_parse_size("512k", &v), 0);
	assert_int_equal(v, 512u << 10);
	assert_true(cli_parse_size("-1", &v) < 0);
	assert_true(cli_parse_size("1X", &v) < 0);
	assert_true(cli_parse_size("", &v) < 0);
	assert_true(cli_parse_size("99999999999999T", &v) < 0);
}

static void test_every_env_option_documented(void **state)
{
	/* --help for each verb names every env var of its options */
	for (size_t i = 0; i < cli_nverbs; i++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		cli_print_verb_markdown(f, &cli_verbs[i]);
		fclose(f);
		for (size_t o = 0; o < O_COUNT; o++) {
			if (!(cli_opts[o].verbs & cli_verbs[i].bit))
				continue;
			char needle[128];
			snprintf(needle, sizeof(needle), "\\-\\-%s", cli_opts[o].long_name);
			/* '-' is not escaped; look for the plain flag */
			snprintf(needle, sizeof(needle), "--%s", cli_opts[o].long_name);
			assert_non_null(strstr(buf, needle));
			if (cli_opts[o].env) {
				snprintf(needle, sizeof(needle), "APPTAINER\\_%s", cli_opts[o].env);
				char *p = strstr(buf, needle);
				if (!p) { /* underscores escaped one by one */
					char esc[160];
					size_t k = 0;
					for (const char *c = "APPTAINER_"; *c; c++)
						esc[k++] = *c == '_' ? '\\' : *c,
						*c == '_' ? esc[k++] = '_' : 0;
					esc[k] = 0;
					p = strstr(buf, esc);
				}
				assert_non_null(p);
			}
		}
		free(buf);
	}
}

/* The environment is read in one place: precedence among alternatives, an
 * empty value counts as unset, except where empty means something. */
static void test_env_fill(void **state)
{
	memset(fake_env, 0, sizeof(fake_env));
	fake_env[0][0] = "APPTAINER_TMPDIR", fake_env[0][1] = "/a";
	fake_env[1][0] = "TMPDIR", fake_env[1][1] = "/t";
	fake_env[2][0] = "SIFU_CA_BUNDLE", fake_env[2][1] = "";
	fake_env[3][0] = "SSL_CERT_FILE", fake_env[3][1] = "/ca.pem";
	fake_env[4][0] = "SIFU_PASSPHRASE", fake_env[4][1] = "";
	fake_env[5][0] = "HOME", fake_env[5][1] = "";
	struct cli_env e;
	cli_env_fill(&e, fake_getenv);
	assert_string_equal(e.build_tmpdir, "/a");
	assert_string_equal(e.tmpdir, "/t");
	assert_string_equal(e.ca_bundle, "/ca.pem");
	assert_string_equal(e.passphrase, "");
	assert_null(e.home);
	assert_null(e.block_cache);
	fake_env[6][0] = "SIFU_TMPDIR", fake_env[6][1] = "/s";
	cli_env_fill(&e, fake_getenv);
	assert_string_equal(e.build_tmpdir, "/s");
	/* Apptainer's NOCOLOR is a switch (apptainer.go --nocolor): false keeps
	 * colour; NO_COLOR set at all turns it off */
	assert_null(e.no_color);
	fake_env[7][0] = "APPTAINER_NOCOLOR", fake_env[7][1] = "false";
	cli_env_fill(&e, fake_getenv);
	assert_null(e.no_color);
	fake_env[7][1] = "true";
	cli_env_fill(&e, fake_getenv);
	assert_non_null(e.no_color);
	memset(fake_env, 0, sizeof(fake_env));
	fake_env[0][0] = "SINGULARITY_TMPDIR", fake_env[0][1] = "/legacy";
	fake_env[1][0] = "TMPDIR", fake_env[1][1] = "/t";
	cli_env_fill(&e, fake_getenv);
	assert_string_equal(e.build_tmpdir, "/legacy");
	memset(fake_env, 0, sizeof(fake_env));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exec_stops_at_image),
	    cmocka_unit_test(test_bind_escaped_comma),
	    cmocka_unit_test(test_unknown_flag_suggests),
	    cmocka_unit_test(test_missing_value),
	    cmocka_unit_test(test_env_precedence),
	    cmocka_unit_test(test_env_per_verb),
	    cmocka_unit_test(test_suggest),
	    cmocka_unit_test(test_sizes),
	    cmocka_unit_test(test_every_env_option_documented),
	    cmocka_unit_test(test_env_fill),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
