/* SPDX-License-Identifier: BSD-3-Clause */
/* The definition-file parser, templates and serialiser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>

#include "recipe_priv.h"
#include "recipe.h"

#define FIXTURES SIFU_SOURCE_ROOT "/tests/fixtures/deffiles"

static struct recipe *load_ok(const char *file, const char *const *args)
{
	struct sifu_err err = {0};
	struct recipe_buildargs ba = {0};
	for (size_t i = 0; args && args[i]; i++)
		assert_int_equal(recipe_buildargs_add(&ba, args[i], &err), 0);
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", FIXTURES, file);
	struct recipe *r = NULL;
	int ret = recipe_load(path, &ba, &r, &err);
	if (ret < 0) {
		char line[2 * SIFU_ERR_MSG_MAX];
		sifu_err_format(&err, line, sizeof(line));
		fail_msg("%s: %s", file, line);
	}
	recipe_buildargs_free(&ba);
	return r;
}

static struct recipe *parse_ok(const char *text)
{
	struct sifu_err err = {0};
	struct recipe *r = NULL;
	if (recipe_parse("t.def", text, strlen(text), NULL, &r, &err) < 0) {
		char line[2 * SIFU_ERR_MSG_MAX];
		sifu_err_format(&err, line, sizeof(line));
		fail_msg("%s", line);
	}
	return r;
}

/* Parse TEXT expecting failure; returns the message and the hint. */
static void parse_bad(const char *text, const struct recipe_buildargs *ba, char *msg, size_t len)
{
	struct sifu_err err = {0};
	struct recipe *r = NULL;
	assert_true(recipe_parse("t.def", text, strlen(text), ba, &r, &err) < 0);
	assert_null(r);
	sifu_err_format(&err, msg, len);
	size_t n = strlen(msg);
	snprintf(msg + n, len - n, " | %s", err.hint);
}

static void test_all_sections(void **state)
{
	struct recipe *r = load_ok("good/all-sections.def", NULL);
	assert_int_equal(r->nstages, 1);
	const struct recipe_stage *s = &r->stages[0];
	assert_int_equal(s->line, 2);
	assert_string_equal(s->bootstrap, "docker");
	assert_string_equal(s->from, "ubuntu:24.04"); /* the comment is cut */
	assert_string_equal(s->name, "final");
	/* a continued value is joined */
	assert_string_equal(recipe_header_get(s, "FINGERPRINTS"),
	                    "12045C8C0B1004D058DE4BEDA20C27EE7FF7BA84,"
	                    "22045C8C0B1004D058DE4BEDA20C27EE7FF7BA84");
	assert_int_equal(s->nheader, 4);

	assert_non_null(strstr(s->arguments.text, "GREETING=hello"));
	assert_string_equal(s->setup.text, "    touch ${APPTAINER_ROOTFS}/file2\n\n");
	assert_int_equal(s->setup.line, 12);

	assert_int_equal(s->nfiles, 1);
	assert_null(s->files[0].from_stage);
	assert_int_equal(s->files[0].nfiles, 3);
	assert_string_equal(s->files[0].files[0].src, "/etc/hostname");
	assert_null(s->files[0].files[0].dst);
	assert_string_equal(s->files[0].files[1].src, "/etc/hosts");
	assert_string_equal(s->files[0].files[1].dst, "/opt/hosts");
	assert_string_equal(s->files[0].files[2].src, "/tmp/a file");
	assert_string_equal(s->files[0].files[2].dst, "/opt/b file");
	assert_int_equal(s->files[0].files[2].line, 18);

	assert_non_null(strstr(s->environment.text, "export LISTEN_PORT=12345\n"));
	assert_string_equal(s->pre.text, "    echo pre\n\n");
	/* %post: arguments, the template expanded, the second %post appended */
	assert_string_equal(s->post.args, "-c /bin/bash");
	assert_non_null(strstr(s->post.text, "echo \"hello\" > /greeting"));
	const char *second = strstr(s->post.text, "a second %post is appended");
	assert_non_null(second);
	assert_true(second > strstr(s->post.text, "NOW=`date`"));

	char *sb, *body;
	recipe_script_shebang(&s->runscript, &sb, &body);
	assert_string_equal(sb, "#!/bin/bash");
	assert_true(!strncmp(body, "    echo \"Container was created $NOW\"\n", 38));
	free(sb), free(body);
	recipe_script_shebang(&s->startscript, &sb, &body);
	assert_string_equal(sb, "#!/bin/sh");
	assert_string_equal(body, "    nc -lp $LISTEN_PORT\n\n");
	free(sb), free(body);
	assert_non_null(strstr(s->test.text, "grep -q NAME"));

	assert_int_equal(s->nlabels, 3);
	assert_string_equal(s->labels[0].key, "Author");
	assert_string_equal(s->labels[0].value, "alice");
	assert_string_equal(s->labels[2].key, "MyLabel");
	assert_string_equal(s->labels[2].value, "Hello World");
	assert_true(!strncmp(s->help.text, "    This is a demo container", 28));

	/* SCIF apps, in order of first appearance */
	assert_int_equal(s->napps, 2);
	const struct recipe_app *foo = &s->apps[0], *bar = &s->apps[1];
	assert_string_equal(foo->name, "foo");
	assert_string_equal(bar->name, "bar");
	assert_non_null(strstr(foo->run.text, "RUNNING FOO"));
	assert_non_null(strstr(foo->install.text, "touch foo.exec"));
	assert_non_null(strstr(foo->env.text, "SOFTWARE=foo"));
	assert_non_null(strstr(foo->help.text, "help for foo"));
	assert_non_null(strstr(foo->test.text, "test -e foo.exec"));
	assert_non_null(strstr(foo->start.text, "foo-server"));
	assert_int_equal(foo->nlabels, 1);
	assert_string_equal(foo->labels[0].key, "BESTAPP");
	assert_string_equal(foo->labels[0].value, "FOO");
	assert_int_equal(foo->nfiles, 1);
	assert_string_equal(foo->files[0].src, "foo.txt");
	assert_non_null(strstr(bar->install.text, "touch bar.exec"));
	assert_null(bar->run.text);
	assert_int_equal(r->nwarnings, 0);
	recipe_free(r);
}

static void test_two_stages(void **state)
{
	struct recipe *r = load_ok("good/two-stage.def", NULL);
	assert_int_equal(r->nstages, 2);
	const struct recipe_stage *devel = &r->stages[0], *final = &r->stages[1];
	assert_string_equal(devel->name, "devel");
	assert_string_equal(devel->from, "golang:1.22-alpine");
	assert_string_equal(final->name, "final");
	assert_string_equal(final->from, "alpine:3.20");
	assert_int_equal(final->line, 15);
	/* the heredoc and the comment before the next Bootstrap are %post's */
	assert_non_null(strstr(devel->post.text, "\nEOF\n"));
	assert_non_null(strstr(devel->post.text, "# Install the binary"));
	assert_null(devel->runscript.text);
	assert_int_equal(final->nfiles, 1);
	assert_string_equal(final->files[0].from_stage, "devel");
	assert_string_equal(final->files[0].args, "from devel");
	assert_string_equal(final->files[0].files[0].src, "/root/hello");
	assert_string_equal(final->files[0].files[0].dst, "/bin/hello");
	assert_ptr_equal(recipe_find_stage(r, "devel"), devel);
	assert_null(recipe_find_stage(r, "nope"));
	recipe_free(r);
}

static void test_templates(void **state)
{
	/* without the build argument the %arguments default that uses it fails */
	struct sifu_err err = {0};
	struct recipe *r = NULL;
	assert_true(recipe_load(FIXTURES "/good/templates.def", NULL, &r, &err) < 0);
	char line[2 * SIFU_ERR_MSG_MAX];
	sifu_err_format(&err, line, sizeof(line));
	assert_non_null(strstr(line, "templates.def:7: build variable 'extra' is not defined"));
	assert_non_null(strstr(err.hint, "--build-arg extra=VALUE"));

	const char *args[] = {"extra=curl", NULL};
	r = load_ok("good/templates.def", args);
	const struct recipe_stage *s = &r->stages[0];
	assert_string_equal(s->from, "debian:bookworm-slim");
	/* a default that itself uses a template gets the build argument */
	assert_non_null(strstr(s->post.text, "apt-get install -y curl hello\n"));
	assert_non_null(strstr(s->post.text, "# {{ not_a_variable }} in a comment"));
	assert_non_null(strstr(s->post.text, "echo '#!bookworm-slim'"));
	recipe_free(r);

	/* a build argument beats the %arguments default */
	const char *args2[] = {"extra=curl", "tag = trixie ", NULL};
	r = load_ok("good/templates.def", args2);
	assert_string_equal(r->stages[0].from, "debian:trixie");
	recipe_free(r);

	/* an unused build argument is listed for the CLI to refuse or warn */
	const char *args3[] = {"extra=x", "unused=1", NULL};
	r = load_ok("good/templates.def", args3);
	assert_int_equal(r->nunused, 1);
	assert_string_equal(r->unused[0], "unused");
	recipe_free(r);
}

static void test_template_errors(void **state)
{
	char msg[4096];
	parse_bad("Bootstrap: docker\nFrom: {{ base\n", NULL, msg, sizeof(msg));
	assert_non_null(strstr(msg, "t.def:2: unterminated template '{{ base'"));
	parse_bad("Bootstrap: docker\nFrom: x\n%post\n  echo {{ v }\n", NULL, msg, sizeof(msg));
	assert_non_null(strstr(msg, "t.def:4: unterminated template"));
	/* not templates: Go templates, awk, shell braces */
	struct recipe *r = parse_ok("Bootstrap: docker\nFrom: x\n%post\n"
	                            "  docker inspect -f '{{.Id}}' x\n  awk '{{print $1}}'\n"
	                            "  echo ${x} }}{{\n");
	assert_non_null(strstr(r->stages[0].post.text, "'{{.Id}}'"));
	recipe_free(r);
	/* a build-arg value with a newline would shift every line after it */
	struct recipe_buildargs ba = {0};
	struct sifu_err err = {0};
	assert_int_equal(recipe_buildargs_add(&ba, "v=a\nb", &err), 0);
	parse_bad("Bootstrap: docker\nFrom: {{v}}\n", &ba, msg, sizeof(msg));
	assert_non_null(strstr(msg, "contains a newline"));
	recipe_buildargs_free(&ba);
	/* a value that expands to a template again (found by the fuzzer: the
	 * stored definition grew at every round trip) */
	parse_bad("Bootstrap: docker\nFrom: x\n%arguments\n t=a{{ t }}\n", NULL, msg, sizeof(msg));
	assert_non_null(
	    strstr(msg, "t.def:4: after expansion the line still contains the template"));
	parse_bad("Bootstrap: docker\nFrom: x\n%arguments\n a={{ zz }}\n%post\n {{a}}\n", NULL, msg,
	          sizeof(msg));
	assert_non_null(strstr(msg, "t.def:4: build variable 'zz' is not defined"));
	/* expansion is bounded: a long value used many times */
	char *big = malloc(100 * 1024 + 3);
	memcpy(big, "a=", 2);
	memset(big + 2, 'x', 100 * 1024);
	big[100 * 1024 + 2] = '\0';
	assert_int_equal(recipe_buildargs_add(&ba, big, &err), 0);
	free(big);
	char text[400];
	size_t tl = (size_t)snprintf(text, sizeof(text), "Bootstrap: docker\nFrom: x\n%%post\n");
	for (int i = 0; i < 50; i++)
		tl += (size_t)snprintf(text + tl, sizeof(text) - tl, "{{a}}");
	parse_bad(text, &ba, msg, sizeof(msg));
	assert_non_null(strstr(msg, "t.def:4: the line is longer than 4 MiB"));
	recipe_buildargs_free(&ba);
	/* a template may not start a new stage */
	assert_int_equal(recipe_buildargs_add(&ba, "v=bootstrap: docker", &err), 0);
	parse_bad("Bootstrap: docker\nFrom: x\n%post\n{{ v }}\n", &ba, msg, sizeof(msg));
	assert_non_null(strstr(msg, "t.def:4:"));
	recipe_buildargs_free(&ba);
}

static void test_build_args(void **state)
{
	struct recipe_buildargs ba = {0};
	struct sifu_err err = {0};
	assert_true(recipe_buildargs_add(&ba, "novalue", &err) < 0);
	assert_true(recipe_buildargs_add(&ba, "=x", &err) < 0);
	const char file[] = "# comment\n\nA=1\n B = two words \nbad line\nA=3\n";
	assert_int_equal(recipe_buildargs_add_text(&ba, "args.txt", file, sizeof(file) - 1, &err),
	                 0);
	assert_int_equal(ba.n, 3);
	assert_string_equal(ba.v[1].key, "B");
	assert_string_equal(ba.v[1].value, "two words");
	assert_int_equal(ba.nwarnings, 1);
	assert_non_null(strstr(ba.warnings[0], "args.txt:5: skipping 'bad line'"));
	struct recipe *r = NULL;
	const char def[] = "Bootstrap: docker\nFrom: img:{{A}}\n%post\n  echo {{ B }}\n";
	assert_int_equal(recipe_parse("t.def", def, sizeof(def) - 1, &ba, &r, &err), 0);
	assert_string_equal(r->stages[0].from, "img:3"); /* the later A wins */
	assert_string_equal(r->stages[0].post.text, "  echo two words\n");
	recipe_free(r);
	recipe_buildargs_free(&ba);
}

static void test_header_rules(void **state)
{
	struct recipe *r = parse_ok("# leading comment\n\nBootstrap: Docker\nFROM :  alpine  \n"
	                            "osversion: 1\nOtherURL12: http://x\nIncludeCmd: yes\n"
	                            "MirrorURL: http://a/\\n\\\n  http://b/\n");
	const struct recipe_stage *s = &r->stages[0];
	assert_string_equal(s->bootstrap, "docker"); /* agents in any case */
	assert_string_equal(s->from, "alpine");
	assert_string_equal(recipe_header_get(s, "otherurl12"), "http://x");
	assert_string_equal(recipe_header_get(s, "mirrorurl"), "http://a/\nhttp://b/");
	recipe_free(r);

	/* a duplicate key: the last value wins, with a warning */
	r = parse_ok("Bootstrap: docker\nFrom: a\nFrom: b\n");
	assert_string_equal(r->stages[0].from, "b");
	assert_int_equal(r->nwarnings, 1);
	assert_non_null(strstr(r->warnings[0], "t.def:3:"));
	recipe_free(r);

	/* a continuation at the very end is kept (Apptainer drops it) */
	r = parse_ok("Bootstrap: docker\nFrom: a\\\n");
	assert_string_equal(r->stages[0].from, "a");
	recipe_free(r);

	char msg[4096];
	parse_bad("Bootstrap: docker\nFrmo: x\n", NULL, msg, sizeof(msg));
	assert_non_null(strstr(msg, "t.def:2: unknown header key 'frmo' | did you mean 'From'?"));
	parse_bad("Bootstrap: dokcer\nFrom: x\n", NULL, msg, sizeof(msg));
	assert_non_null(strstr(
	    msg, "t.def:1: unknown bootstrap agent 'dokcer' | did you mean 'Bootstrap: docker'?"));
	parse_bad("Bootstrap: docker\n\n%post\n", NULL, msg, sizeof(msg));
	assert_non_null(strstr(msg, "t.def:1: 'Bootstrap: docker' needs a From: line"));
	parse_bad("Bootstrap: debootstrap\nOSVersion: bookworm\n", NULL, msg, sizeof(msg));
	assert_non_null(strstr(msg, "needs a MirrorURL: line"));
}

static void test_sections_rules(void **state)
{
	/* names in any case, indented section lines, CRLF line ends */
	struct recipe *r =
	    parse_ok("Bootstrap: scratch\r\n%POST\r\n  a\r\n  %Runscript -x\r\n  b\r\n"
	             "  Bootstrap: not a new stage\r\n%labels\r\n k\tv1 v2\r\n  # c\r\n empty\r\n"
	             " k v3\r\n");
	const struct recipe_stage *s = &r->stages[0];
	assert_int_equal(r->nstages, 1);
	assert_string_equal(s->post.text, "  a\n");
	assert_string_equal(s->runscript.args, "-x");
	assert_string_equal(s->runscript.text, "  b\n  Bootstrap: not a new stage\n");
	assert_int_equal(s->nlabels, 2);
	assert_string_equal(s->labels[0].key, "k");
	assert_string_equal(s->labels[0].value, "v3"); /* replaced in place */
	assert_string_equal(s->labels[1].key, "empty");
	assert_string_equal(s->labels[1].value, "");
	recipe_free(r);

	/* %files groups: host files and each "from STAGE" apart, repeats merged */
	r = parse_ok("Bootstrap: scratch\nStage: one\n"
	             "Bootstrap: scratch\n%files\n a\n%files from one\n b c\n%files\n d e\n"
	             "%files FROM one\n f\n");
	s = &r->stages[1];
	assert_int_equal(s->nfiles, 2);
	assert_int_equal(s->files[0].nfiles, 2);
	assert_string_equal(s->files[0].files[1].src, "d");
	assert_int_equal(s->files[1].nfiles, 2);
	assert_string_equal(s->files[1].files[1].src, "f");
	recipe_free(r);

	/* a comment after the paths */
	r = parse_ok("Bootstrap: scratch\n%files\n /a # note\n /b /c #d e\n \"#x\" '#y'\n");
	s = &r->stages[0];
	assert_int_equal(s->files[0].nfiles, 3);
	assert_null(s->files[0].files[0].dst);
	assert_string_equal(s->files[0].files[1].dst, "/c");
	assert_string_equal(s->files[0].files[2].src, "#x");
	assert_string_equal(s->files[0].files[2].dst, "#y");
	recipe_free(r);
	/* an indented "Bootstrap :" first line, as Apptainer reads one stage */
	r = parse_ok("# x\n  Bootstrap : docker\nFrom: a\n");
	assert_string_equal(r->stages[0].bootstrap, "docker");
	recipe_free(r);

	char msg[4096];
	parse_bad("Bootstrap: docker\nFrom ubuntu:24.04\n", NULL, msg, sizeof(msg));
	assert_non_null(strstr(msg, "t.def:2: expected 'Key: value' in the header, found 'From "
	                            "ubuntu:24.04' | a ':' is missing after 'From'"));
	parse_bad("Bootstrap: scratch\n%files\n a b c\n", NULL, msg, sizeof(msg));
	assert_non_null(strstr(msg, "t.def:3: %files line has 3 paths"));
	parse_bad("Bootstrap: scratch\n%psot\n", NULL, msg, sizeof(msg));
	assert_non_null(strstr(msg, "t.def:2: unknown section '%psot' | did you mean '%post'?"));
	parse_bad("Bootstrap: scratch\n%apprun\n", NULL, msg, sizeof(msg));
	assert_non_null(strstr(msg, "t.def:2: %apprun needs an app name"));
	parse_bad("Bootstrap: scratch\nStage: a\n%files from b\n x\n", NULL, msg, sizeof(msg));
	assert_non_null(strstr(msg, "t.def:3: %files from 'b': no earlier stage is named 'b'"));
	parse_bad("%post\n  x\nBootstrap: scratch\n", NULL, msg, sizeof(msg));
	assert_non_null(strstr(msg, "t.def:1: section '%post' before the header"));
	parse_bad("", NULL, msg, sizeof(msg));
	assert_non_null(strstr(msg, "empty definition file"));
}

static void test_shebang_args(void **state)
{
	struct recipe_script s = {.args = "-e # why", .text = "  echo hi\n"};
	char *sb, *body;
	recipe_script_shebang(&s, &sb, &body);
	assert_string_equal(sb, "#!/bin/sh -e ");
	assert_string_equal(body, "  echo hi\n");
	free(sb), free(body);
	struct recipe_script t = {.args = "-u", .text = "\n  #!/usr/bin/env python3 \nprint(1)\n"};
	recipe_script_shebang(&t, &sb, &body);
	assert_string_equal(sb, "#!/usr/bin/env python3 -u");
	/* the first non-blank line (Apptainer takes the first line, blank or not) */
	assert_string_equal(body, "print(1)\n");
	free(sb), free(body);
}

/* serialise → parse → serialise gives the same text, and the structure
 * survives */
static void roundtrip(struct recipe *r)
{
	char *t1 = recipe_serialize(r);
	struct recipe *r2 = parse_ok(t1);
	char *t2 = recipe_serialize(r2);
	assert_string_equal(t1, t2);
	assert_int_equal(r->nstages, r2->nstages);
	for (size_t i = 0; i < r->nstages; i++) {
		const struct recipe_stage *a = &r->stages[i], *b = &r2->stages[i];
		assert_int_equal(a->nheader, b->nheader);
		for (size_t k = 0; k < a->nheader; k++) {
			assert_string_equal(a->header[k].key, b->header[k].key);
			assert_string_equal(a->header[k].value, b->header[k].value);
		}
		const struct recipe_script *sa[] = {&a->help,      &a->setup, &a->post,
		                                    &a->runscript, &a->test,  &a->environment};
		const struct recipe_script *sb[] = {&b->help,      &b->setup, &b->post,
		                                    &b->runscript, &b->test,  &b->environment};
		for (size_t k = 0; k < ARRAY_SIZE(sa); k++) {
			assert_true(!sa[k]->text == !sb[k]->text);
			if (sa[k]->text)
				assert_string_equal(sa[k]->text, sb[k]->text);
			assert_true(!sa[k]->args == !sb[k]->args);
		}
		assert_int_equal(a->nlabels, b->nlabels);
		assert_int_equal(a->nfiles, b->nfiles);
		for (size_t k = 0; k < a->nfiles; k++) {
			assert_int_equal(a->files[k].nfiles, b->files[k].nfiles);
			for (size_t j = 0; j < a->files[k].nfiles; j++) {
				assert_string_equal(a->files[k].files[j].src,
				                    b->files[k].files[j].src);
				assert_true(!a->files[k].files[j].dst == !b->files[k].files[j].dst);
			}
		}
		assert_int_equal(a->napps, b->napps);
	}
	free(t1);
	free(t2);
	recipe_free(r2);
}

static void test_roundtrip(void **state)
{
	const char *files[] = {"all-sections.def", "two-stage.def",       "apt-search.def",
	                       "templates.def",    "scratch-busybox.def", "debootstrap.def",
	                       "localimage.def"};
	const char *args[] = {"extra=curl", NULL};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char name[256];
		snprintf(name, sizeof(name), "good/%s", files[i]);
		struct recipe *r = load_ok(name, args);
		roundtrip(r);
		recipe_free(r);
	}
	/* awkward values: quotes and spaces in paths, newline and trailing
	 * backslash in header values, a path starting with '#' */
	struct recipe *r = parse_ok("Bootstrap: docker\nFrom: a\\\\\n\nInclude: x\\n\\\n y\n"
	                            "%files\n \"#odd\" 'say \"hi\"'\n\"it's\" \"%p\"\n");
	assert_string_equal(r->stages[0].from, "a\\");
	assert_string_equal(r->stages[0].files[0].files[0].src, "#odd");
	assert_string_equal(r->stages[0].files[0].files[0].dst, "say \"hi\"");
	assert_string_equal(r->stages[0].files[0].files[1].src, "it's");
	roundtrip(r);
	char *t = recipe_serialize(r);
	struct recipe *r2 = parse_ok(t);
	assert_string_equal(r2->stages[0].from, "a\\");
	assert_string_equal(recipe_header_get(&r2->stages[0], "include"), "x\ny");
	assert_string_equal(r2->stages[0].files[0].files[0].dst, "say \"hi\"");
	free(t);
	recipe_free(r2);
	recipe_free(r);
}

/* A build's tree with N files that have a second link: each becomes one
 * inode with two names, found in O(1) (a60965e compared each linked file
 * with every one before it: N * N / 2).  Counted, not timed. */
static void test_squash_dir_links(void **state)
{
	enum { N = 3000 };
	char dir[] = "/tmp/sifu-test-tree-XXXXXX";
	assert_non_null(mkdtemp(dir));
	int root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(root >= 0);
	assert_int_equal(mkdirat(root, "d", 0755), 0);
	char a[32], b[32];
	for (int i = 0; i < N; i++) {
		snprintf(a, sizeof(a), "d/f%d", i);
		snprintf(b, sizeof(b), "l%d", i);
		int fd = openat(root, a, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, "x", 1), 1);
		close(fd);
		assert_int_equal(linkat(root, a, root, b, 0), 0);
	}
	char path[] = "/tmp/sifu-test-tree-sq-XXXXXX";
	int out = mkostemp(path, O_CLOEXEC);
	unlink(path);
	struct sq_opts o = {.workers = 1};
	struct sq_image *img;
	struct sifu_err err = {0};
	assert_int_equal(sq_image_create(out, 0, &o, &img, &err), 0);
	uint64_t probes = 0;
	assert_int_equal(bld_squash_dir(root, NULL, img, &probes, &err), 0);
	struct sq_stats st;
	sq_image_stats(img, &st);
	assert_int_equal(st.files, N); /* each inode's data once */
	if (probes > 8 * (uint64_t)N)
		fail_msg("%llu probes for %d linked files: not linear", (unsigned long long)probes,
		         N);
	sq_image_free(img);
	close(out);
	close(root);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_all_sections),   cmocka_unit_test(test_two_stages),
	    cmocka_unit_test(test_templates),      cmocka_unit_test(test_template_errors),
	    cmocka_unit_test(test_build_args),     cmocka_unit_test(test_header_rules),
	    cmocka_unit_test(test_sections_rules), cmocka_unit_test(test_shebang_args),
	    cmocka_unit_test(test_roundtrip),      cmocka_unit_test(test_squash_dir_links),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
