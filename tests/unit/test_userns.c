/* SPDX-License-Identifier: BSD-3-Clause */
/* The pure parts of userns/: bind and mount specs, id map lines, passwd and
 * group editing, the cwd skip rule, --no-mount words, the environment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "userns.h"

#include <limits.h>
#include <sys/mount.h>

static void test_bind_forms(void **state)
{
	struct sifu_err err = {0};
	struct ns_bind b;
	assert_int_equal(ns_bind_parse("/data", NULL, &b, &err), 0);
	assert_string_equal(b.src, "/data");
	assert_string_equal(b.dst, "/data");
	assert_false(b.ro);
	ns_bind_free(&b);
	assert_int_equal(ns_bind_parse("/data:/mnt", NULL, &b, &err), 0);
	assert_string_equal(b.dst, "/mnt");
	ns_bind_free(&b);
	assert_int_equal(ns_bind_parse("/data:/mnt:ro", NULL, &b, &err), 0);
	assert_true(b.ro);
	ns_bind_free(&b);
	assert_int_equal(ns_bind_parse("/data:/mnt:rw", NULL, &b, &err), 0);
	assert_false(b.ro);
	ns_bind_free(&b);
}

static void test_bind_relative_source(void **state)
{
	struct sifu_err err = {0};
	struct ns_bind b;
	assert_int_equal(ns_bind_parse("data/../in", "/home/u/work", &b, &err), 0);
	assert_string_equal(b.src, "/home/u/work/in");
	assert_string_equal(b.dst, "/home/u/work/in"); /* defaulted: the same place */
	ns_bind_free(&b);
	assert_int_equal(ns_bind_parse("in:/data", "/w", &b, &err), 0);
	assert_string_equal(b.src, "/w/in");
	assert_string_equal(b.dst, "/data");
	ns_bind_free(&b);
}

/* Apptainer's bind.go: "\:" and "\," stand for ':' and ',' in a path
 * (e2e actionBinds BindFileWithColonOK, BindFileWithCommaOK) */
static void test_bind_escapes(void **state)
{
	struct sifu_err err = {0};
	struct ns_bind b;
	assert_int_equal(ns_bind_parse("/d/f\\:colon:/c:ro", NULL, &b, &err), 0);
	assert_string_equal(b.src, "/d/f:colon");
	assert_string_equal(b.dst, "/c");
	assert_true(b.ro);
	ns_bind_free(&b);
	assert_int_equal(ns_bind_parse("/d/f\\,comma", NULL, &b, &err), 0);
	assert_string_equal(b.src, "/d/f,comma");
	assert_string_equal(b.dst, "/d/f,comma");
	ns_bind_free(&b);
	/* unescaped, the colon splits: "colon" is a relative destination */
	assert_true(ns_bind_parse("/d/f:colon:/c", NULL, &b, &err) < 0);
	/* --mount's nonested flag (Apptainer 1.5) is accepted */
	assert_int_equal(ns_mount_parse("type=bind,src=/a,dst=/b,nonested", NULL, &b, &err), 0);
	assert_string_equal(b.dst, "/b");
	assert_true(b.nonested);
	ns_bind_free(&b);
}

static void test_bind_errors(void **state)
{
	struct sifu_err err = {0};
	struct ns_bind b;
	assert_true(ns_bind_parse("/a:/b:bogus", NULL, &b, &err) < 0);
	assert_int_equal(err.code, SIFU_E_USAGE);
	assert_non_null(strstr(err.hint, "image-src=PATH"));
	assert_true(ns_bind_parse("/a:relative", NULL, &b, &err) < 0);
	assert_true(ns_bind_parse(":/b", NULL, &b, &err) < 0);
	assert_true(ns_bind_parse("/a:", NULL, &b, &err) < 0);
	assert_true(ns_bind_parse("", NULL, &b, &err) < 0);
}

/* Apptainer's image bind options (bind.go: image-src, id; id > 0) */
static void test_bind_image(void **state)
{
	struct sifu_err err = {0};
	struct ns_bind b;
	assert_int_equal(ns_bind_parse("/i.sif:/d:image-src=/x,id=2", NULL, &b, &err), 0);
	assert_string_equal(b.image_src, "/x");
	assert_int_equal(b.id, 2);
	/* the CLI splits at commas: a later option word joins the bind */
	assert_true(ns_bind_is_option("id=3"));
	assert_false(ns_bind_is_option("/other"));
	assert_int_equal(ns_bind_option(&b, "id=3", "id=3", &err), 0);
	assert_int_equal(b.id, 3);
	ns_bind_free(&b);
	assert_int_equal(ns_bind_parse("/i.sif:/d:id=4", NULL, &b, &err), 0);
	assert_string_equal(b.image_src, "/"); /* defaults to the image's root */
	ns_bind_free(&b);
	assert_int_equal(ns_bind_parse("/i.sqfs:/d", NULL, &b, &err), 0);
	assert_null(b.image_src); /* no option: the file itself */
	ns_bind_free(&b);
	assert_true(ns_bind_parse("/i.sif:/d:id=0", NULL, &b, &err) < 0);
	assert_true(ns_bind_parse("/i.sif:/d:id=x", NULL, &b, &err) < 0);
	assert_int_equal(
	    ns_mount_parse("type=bind,src=/i.sif,dst=/d,image-src=/y,id=5", NULL, &b, &err), 0);
	assert_string_equal(b.image_src, "/y");
	assert_int_equal(b.id, 5);
	ns_bind_free(&b);
}

static void test_mount_spec(void **state)
{
	struct sifu_err err = {0};
	struct ns_bind b;
	assert_int_equal(ns_mount_parse("type=bind,src=/data,dst=/mnt", NULL, &b, &err), 0);
	assert_string_equal(b.src, "/data");
	assert_string_equal(b.dst, "/mnt");
	assert_false(b.ro);
	ns_bind_free(&b);
	assert_int_equal(ns_mount_parse("type=bind,source=/data,dest=/mnt,ro", NULL, &b, &err), 0);
	assert_true(b.ro);
	ns_bind_free(&b);
	/* type=bind is inferred, as Apptainer does; target= is dst= */
	assert_int_equal(ns_mount_parse("src=/a,target=/b,readonly", NULL, &b, &err), 0);
	assert_string_equal(b.dst, "/b");
	assert_true(b.ro);
	ns_bind_free(&b);
	assert_true(ns_mount_parse("type=tmpfs,dst=/x", NULL, &b, &err) < 0);
	assert_int_equal(err.code, SIFU_E_UNSUPPORTED);
	assert_true(ns_mount_parse("type=bind,src=/a", NULL, &b, &err) < 0);
	assert_true(ns_mount_parse("type=bind,src=/a,dst=/b,colour=red", NULL, &b, &err) < 0);
}

static void test_idmap(void **state)
{
	char buf[64];
	assert_int_equal(ns_idmap_format(buf, sizeof(buf), 1000, 1000, 1), 12);
	assert_string_equal(buf, "1000 1000 1\n");
	ns_idmap_format(buf, sizeof(buf), 0, 4242, 1);
	assert_string_equal(buf, "0 4242 1\n");
	assert_true(ns_idmap_format(buf, 4, 0, 4242, 1) < 0);
}

static void test_passwd_add_and_replace(void **state)
{
	const char *img = "root:x:0:0:root:/root:/bin/bash\n"
	                  "daemon:x:1:1::/:/usr/sbin/nologin\n"
	                  "old:x:1000:1000::/home/old:/bin/sh\n";
	char *p = ns_passwd_edit(img, "alice", 1000, 100, "Alice", "/home/alice", "/bin/zsh");
	/* the entry with the same uid is replaced, others kept in order */
	assert_string_equal(p, "root:x:0:0:root:/root:/bin/bash\n"
	                       "daemon:x:1:1::/:/usr/sbin/nologin\n"
	                       "alice:x:1000:100:Alice:/home/alice:/bin/zsh\n");
	free(p);
	p = ns_passwd_edit(NULL, "bob", 5, 5, NULL, "/h", "/bin/sh");
	assert_string_equal(p, "bob:x:5:5::/h:/bin/sh\n");
	free(p);
	/* same name, other uid: replaced too; no trailing newline in input */
	p = ns_passwd_edit("bob:x:7:7::/x:/bin/sh", "bob", 5, 5, "", "/h", "/bin/sh");
	assert_string_equal(p, "bob:x:5:5::/h:/bin/sh\n");
	free(p);
}

static void test_group_edit(void **state)
{
	char *g = ns_group_edit("root:x:0:\nusers:x:100:\nstaff:x:50:\n", "users", 100, "alice");
	assert_string_equal(g, "root:x:0:\nstaff:x:50:\nusers:x:100:alice\n");
	free(g);
	g = ns_group_edit("", "g", 9, "u");
	assert_string_equal(g, "g:x:9:u\n");
	free(g);
}

static void test_cwd_skip(void **state)
{
	assert_true(ns_cwd_is_skipped("/"));
	assert_true(ns_cwd_is_skipped("/etc"));
	assert_true(ns_cwd_is_skipped("/opt"));
	assert_true(ns_cwd_is_skipped("/lib64"));
	assert_true(ns_cwd_is_skipped("/proc/1"));
	assert_true(ns_cwd_is_skipped("/dev"));
	assert_true(ns_cwd_is_skipped("relative"));
	/* below a system directory (other than the virtual ones) it is bound */
	assert_false(ns_cwd_is_skipped("/usr/share/doc"));
	assert_false(ns_cwd_is_skipped("/opt/app"));
	assert_false(ns_cwd_is_skipped("/home/alice/work"));
	assert_false(ns_cwd_is_skipped("/etcetera"));
	assert_false(ns_cwd_is_skipped("/devel"));
	assert_false(ns_cwd_is_skipped("/var/tmp/job"));
}

static void test_nomount(void **state)
{
	struct sifu_err err = {0};
	unsigned m = 0;
	assert_int_equal(ns_nomount_parse("tmp", &m, &err), 0);
	assert_int_equal(ns_nomount_parse("dev", &m, &err), 0);
	assert_int_equal(ns_nomount_parse("hostfs", &m, &err), 0);
	assert_int_equal(m, NS_NOMOUNT_TMP | NS_NOMOUNT_DEV);
	assert_true(ns_nomount_parse("tpm", &m, &err) < 0);
	/* Apptainer's names: bind-paths, devpts, absolute bind path entries */
	m = 0;
	assert_int_equal(ns_nomount_parse("bind-paths", &m, &err), 0);
	assert_int_equal(m, NS_NOMOUNT_HOSTS | NS_NOMOUNT_LOCALTIME | NS_NOMOUNT_RESOLV);
	m = 0;
	assert_int_equal(ns_nomount_parse("//etc/hosts/", &m, &err), 0);
	assert_int_equal(ns_nomount_parse("/etc/localtime", &m, &err), 0);
	assert_int_equal(ns_nomount_parse("devpts", &m, &err), 0);
	assert_int_equal(ns_nomount_parse("/opt/not-a-default", &m, &err), 0);
	assert_int_equal(m, NS_NOMOUNT_HOSTS | NS_NOMOUNT_LOCALTIME | NS_NOMOUNT_DEVPTS);
}

/* ------------------------------------------------------------ environment -- */

static const char *ov_get(const struct ns_env *e, const char *key)
{
	const char *v = NULL;
	for (size_t i = 0; i < e->nov; i++)
		if ((e->ov[i].op == NS_ENV_SET || e->ov[i].op == NS_ENV_LITERAL) &&
		    !strcmp(e->ov[i].key, key))
			v = e->ov[i].value; /* the last one wins */
	return v;
}

static void spec_init(struct ns_env_spec *s, char **host)
{
	memset(s, 0, sizeof(*s));
	s->host = host;
	s->home = "/home/alice";
	s->container = "/data/img.sif";
	s->name = "img.sif";
	s->command = "exec";
	s->bind = "/a:/b";
}

static void test_env_host_filtering(void **state)
{
	char *host[] = {
	    "FOO=bar",           "PATH=/host/bin", "HOME=/elsewhere", "LD_LIBRARY_PATH=/x",
	    "APPTAINER_BIND=/q", "PS1=$ ",         "TERM=xterm",      NULL};
	struct ns_env_spec s;
	spec_init(&s, host);
	struct ns_env e;
	struct sifu_err err = {0};
	assert_int_equal(ns_env_build(&s, &e, &err), 0);
	assert_string_equal(ns_env_get(&e.base, "FOO"), "bar");
	assert_string_equal(ns_env_get(&e.base, "PATH"),
	                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	assert_string_equal(ns_env_get(&e.base, "HOME"), "/home/alice");
	/* left to 99-base.sh: set here, it was doubled by the image's own */
	assert_null(ns_env_get(&e.base, "LD_LIBRARY_PATH"));
	assert_null(ns_env_get(&e.base, "APPTAINER_BIND"));
	assert_null(ns_env_get(&e.base, "PS1"));
	assert_string_equal(ov_get(&e, "PS1"), "Sifu> ");
	assert_string_equal(ov_get(&e, "APPTAINER_CONTAINER"), "/data/img.sif");
	assert_string_equal(ov_get(&e, "SINGULARITY_NAME"), "img.sif");
	assert_string_equal(ov_get(&e, "APPTAINER_COMMAND"), "exec");
	assert_string_equal(ov_get(&e, "SINGULARITY_BIND"), "/a:/b");
	assert_string_equal(ov_get(&e, "APPTAINER_ENVIRONMENT"),
	                    "/.singularity.d/env/91-environment.sh");
	ns_env_free(&e);
}

static void test_env_cleanenv(void **state)
{
	char *host[] = {"FOO=bar", "TERM=xterm", "LANG=de_DE.UTF-8", NULL};
	struct ns_env_spec s;
	spec_init(&s, host);
	s.cleanenv = true;
	struct ns_env e;
	assert_int_equal(ns_env_build(&s, &e, NULL), 0);
	assert_null(ns_env_get(&e.base, "FOO"));
	assert_string_equal(ns_env_get(&e.base, "TERM"), "xterm");
	assert_string_equal(ns_env_get(&e.base, "LANG"), "C");
	assert_string_equal(ns_env_get(&e.base, "HOME"), "/home/alice");
	ns_env_free(&e);
}

/* env-file < SINGULARITYENV_ < APPTAINERENV_ < --env */
static void test_env_precedence(void **state)
{
	char *host[] = {"A=host",
	                "APPTAINERENV_B=apptainer",
	                "SINGULARITYENV_B=singularity",
	                "SINGULARITYENV_C=singularity",
	                "APPTAINERENV_D=apptainer",
	                NULL};
	char *opts[] = {"D=option", NULL};
	struct ns_env_spec s;
	spec_init(&s, host);
	s.env_files = (char *const[]){"A=file\nB=file\nC=file\nD=file\nE='quoted'\n", NULL};
	s.env_opts = opts;
	struct ns_env e;
	struct ns_strv out = {0};
	assert_int_equal(ns_env_build(&s, &e, NULL), 0);
	ns_env_apply(&e, &out);
	assert_string_equal(ns_env_get(&out, "A"), "file");
	assert_string_equal(ns_env_get(&out, "B"), "apptainer");
	assert_string_equal(ns_env_get(&out, "C"), "singularity");
	assert_string_equal(ns_env_get(&out, "D"), "option");
	assert_string_equal(ns_env_get(&out, "E"), "quoted");
	assert_null(ns_env_get(&out, "APPTAINERENV_B"));
	ns_strv_free(&out);
	ns_env_free(&e);
}

/* HOME and the shell/app names are not for users to set, from any source
 * (Apptainer's alwaysOmitKeys): the home stays the one mounted */
static void test_env_refused_overrides(void **state)
{
	char *host[] = {"APPTAINERENV_HOME=/x", "SINGULARITYENV_APPTAINER_SHELL=/bin/x",
	                "APPTAINERENV_OK=1", NULL};
	char *opts[] = {"HOME=/y", "SINGULARITY_APPNAME=a", NULL};
	struct ns_env_spec s;
	spec_init(&s, host);
	s.env_files = (char *const[]){"HOME=/z\nAPPTAINER_APPNAME=b\n", NULL};
	s.env_opts = opts;
	struct ns_env e;
	struct ns_strv out = {0};
	assert_int_equal(ns_env_build(&s, &e, NULL), 0);
	ns_env_apply(&e, &out);
	assert_string_equal(ns_env_get(&out, "HOME"), "/home/alice");
	assert_null(ov_get(&e, "HOME"));
	assert_null(ov_get(&e, "APPTAINER_SHELL"));
	assert_null(ov_get(&e, "APPTAINER_APPNAME"));
	assert_null(ov_get(&e, "SINGULARITY_APPNAME"));
	assert_string_equal(ns_env_get(&out, "OK"), "1");
	ns_strv_free(&out);
	ns_env_free(&e);
}

static void test_env_path_edits(void **state)
{
	char *host[] = {"APPTAINERENV_PREPEND_PATH=/start", NULL};
	char *opts[] = {"APPEND_PATH=/end", NULL};
	struct ns_env_spec s;
	spec_init(&s, host);
	s.env_opts = opts;
	struct ns_env e;
	struct ns_strv out = {0};
	assert_int_equal(ns_env_build(&s, &e, NULL), 0);
	ns_env_apply(&e, &out);
	assert_string_equal(
	    ns_env_get(&out, "PATH"),
	    "/start:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/end");
	assert_null(ns_env_get(&out, "APPEND_PATH"));
	char *script = ns_env_script(&e);
	assert_non_null(strstr(script, "export PATH=\"/start\":\"$PATH\"\n"));
	assert_non_null(strstr(script, "export PATH=\"$PATH\":\"/end\"\n"));
	free(script);
	ns_strv_free(&out);
	ns_env_free(&e);
}

static void test_env_script(void **state)
{
	char *opts[] = {"X=$HOME/a", "Y=`id`$(id)\"q\"\\", "L=/x/\\$LIB/y.so",
	                "LD_LIBRARY_PATH=/foo,", NULL};
	struct ns_env_spec s;
	spec_init(&s, NULL);
	s.container = "/d/it's.sif";
	s.env_opts = opts;
	struct ns_env e;
	assert_int_equal(ns_env_build(&s, &e, NULL), 0);
	e.uid = 1234;
	char *script = ns_env_script(&e);
	/* $UID for a POSIX sh, as Apptainer's shell has it */
	assert_non_null(strstr(script, "[ -n \"${UID:-}\" ] || UID=1234\n"));
	/* evaluated in double quotes as Apptainer's (e2e "env eval"): only '"'
	 * escaped, and a backslash that would escape the closing quote */
	assert_non_null(strstr(script, "export X=\"$HOME/a\"\n"));
	assert_non_null(strstr(script, "export Y=\"`id`$(id)\\\"q\\\"\\\\\"\n"));
	assert_non_null(strstr(script, "export L=\"/x/\\$LIB/y.so\"\n"));
	/* a user's LD_LIBRARY_PATH keeps the bound libraries, last */
	assert_non_null(strstr(script, "export LD_LIBRARY_PATH=\"/foo,\":/.singularity.d/libs\n"));
	/* sifu's own values are not evaluated */
	assert_non_null(strstr(script, "export PS1='Sifu> '\n"));
	assert_non_null(strstr(script, "export APPTAINER_CONTAINER='/d/it'\\''s.sif'\n"));
	/* overrides right after 99-base.sh, or after every script; a legacy
	 * /environment without /.singularity.d */
	assert_non_null(strstr(script, "/.singularity.d/env/99-base.sh ]"));
	assert_non_null(strstr(script, "elif [ -f /environment ]; then . /environment\n"));
	assert_true(strstr(script, "export X=") < strstr(script, "for f in"));
	assert_non_null(strstr(script, "exec \"$@\"\n"));
	free(script);
	ns_env_free(&e);
}

/* where there is no shell: the same evaluation, short of running commands */
static void test_env_apply_eval(void **state)
{
	char *host[] = {"APPTAINERENV_WHO=$UID", "APPTAINERENV_ESC=\\$UID",
	                "APPTAINERENV_L=/foo/bar/\\$LIB/baz.so",
	                "APPTAINERENV_PREPEND_LD_LIBRARY_PATH=/pre", NULL};
	char *opts[] = {"Q=\"$GID\"", "APPEND_LD_LIBRARY_PATH=/app", NULL};
	struct ns_env_spec s;
	spec_init(&s, host);
	s.env_opts = opts;
	struct ns_env e;
	struct ns_strv out = {0};
	assert_int_equal(ns_env_build(&s, &e, NULL), 0);
	e.uid = 1234;
	e.gid = 99;
	ns_env_apply(&e, &out);
	assert_string_equal(ns_env_get(&out, "WHO"), "1234");
	assert_string_equal(ns_env_get(&out, "ESC"), "$UID");
	assert_string_equal(ns_env_get(&out, "L"), "/foo/bar/$LIB/baz.so");
	assert_string_equal(ns_env_get(&out, "Q"), "\"99\"");
	assert_string_equal(ns_env_get(&out, "LD_LIBRARY_PATH"), "/pre:/.singularity.d/libs:/app");
	ns_strv_free(&out);
	ns_env_free(&e);
	/* a user's value, trailing separator and all, then the libraries */
	char *opts2[] = {"LD_LIBRARY_PATH=/foo,", NULL};
	spec_init(&s, NULL);
	s.env_opts = opts2;
	assert_int_equal(ns_env_build(&s, &e, NULL), 0);
	ns_env_apply(&e, &out);
	assert_string_equal(ns_env_get(&out, "LD_LIBRARY_PATH"), "/foo,:/.singularity.d/libs");
	ns_strv_free(&out);
	ns_env_free(&e);
}

static void test_env_apply_expands(void **state)
{
	char *host[] = {"U=you", NULL};
	char *opts[] = {"PATH=$PATH:/end", "G=${U}-$U-$NOPE-$-${open", "PS1=$ ", NULL};
	struct ns_env_spec s;
	spec_init(&s, host);
	s.env_opts = opts;
	struct ns_env e;
	struct ns_strv out = {0};
	assert_int_equal(ns_env_build(&s, &e, NULL), 0);
	ns_env_apply(&e, &out);
	assert_string_equal(ns_env_get(&out, "PATH"),
	                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/end");
	assert_string_equal(ns_env_get(&out, "G"), "you-you--$-${open");
	assert_string_equal(ns_env_get(&out, "PS1"), "$ ");
	ns_strv_free(&out);
	ns_env_free(&e);
}

static void test_env_errors(void **state)
{
	struct sifu_err err = {0};
	char *bad[] = {"NOEQUALS", NULL};
	struct ns_env_spec s;
	spec_init(&s, NULL);
	s.env_opts = bad;
	struct ns_env e;
	assert_true(ns_env_build(&s, &e, &err) < 0);
	assert_non_null(strstr(err.chain[0], "NOEQUALS"));
	char *bad2[] = {"1X=y", NULL};
	s.env_opts = bad2;
	assert_true(ns_env_build(&s, &e, &err) < 0);
	s.env_opts = NULL;
	s.env_files = (char *const[]){"OK=1\nthis line is wrong\n", NULL};
	assert_true(ns_env_build(&s, &e, &err) < 0);
	assert_non_null(strstr(err.chain[0], "line 2"));
}

static void test_env_file_parse(void **state)
{
	struct ns_strv v = {0};
	assert_int_equal(ns_env_file_parse("# c\n\nexport A=1\n  B=\"two words\"  \r\nC='3'\nD=\n"
	                                   "PATH=\"\\$PATH:/\"\nE='$x'\\$y\" \\\"\" # note\n",
	                                   &v, NULL),
	                 0);
	assert_int_equal(v.n, 6);
	/* e2e "environment file": PATH="\$PATH:/" is $PATH:/, evaluated later */
	assert_string_equal(v.v[4], "PATH=$PATH:/");
	assert_string_equal(v.v[5], "E=$x$y \"");
	assert_string_equal(v.v[0], "A=1");
	assert_string_equal(v.v[1], "B=two words");
	assert_string_equal(v.v[2], "C=3");
	assert_string_equal(v.v[3], "D=");
	ns_strv_free(&v);
	assert_true(ns_env_file_parse("A=\"open\n", &v, NULL) < 0);
	ns_strv_free(&v);
}

static void test_strv_env(void **state)
{
	struct ns_strv e = {0};
	ns_env_set(&e, "A", "1");
	ns_env_set(&e, "AB", "2");
	ns_env_set(&e, "A", "3");
	assert_int_equal(e.n, 2);
	assert_string_equal(ns_env_get(&e, "A"), "3");
	assert_string_equal(ns_env_get(&e, "AB"), "2");
	ns_env_unset(&e, "A");
	assert_null(ns_env_get(&e, "A"));
	assert_string_equal(e.v[0], "AB=2");
	assert_null(e.v[1]);
	ns_strv_free(&e);
}

/* /etc/subuid: "name:start:count"; a numeric uid names the user too; the
 * first good line wins; malformed lines are skipped. */
static void test_subid_find(void **state)
{
	(void)state;
	struct ns_subid r = {0};
	const char *t = "# comment\n"
	                "alice:100000:65536\n"
	                "bob:200000:1000\n"
	                "bob:900000:5\n"
	                "1003:300000:10\n"
	                "carol:x:10\n"
	                "carol:400000:\n"
	                "carol:400000:20\n"
	                "dave:4294967290:100\n"
	                "eve:500000:0\n"
	                "alicex:600000:1";
	assert_int_equal(ns_subid_find(t, "bob", 1001, &r), 0);
	assert_int_equal(r.start, 200000);
	assert_int_equal(r.count, 1000);
	assert_int_equal(ns_subid_find(t, "alice", 1000, &r), 0);
	assert_int_equal(r.start, 100000);
	assert_int_equal(r.count, 65536);
	assert_int_equal(ns_subid_find(t, "frank", 1003, &r), 0);
	assert_int_equal(r.start, 300000);
	assert_int_equal(ns_subid_find(t, "carol", 1004, &r), 0);
	assert_int_equal(r.start, 400000);
	assert_int_equal(r.count, 20);
	assert_int_equal(ns_subid_find(t, "alicex", 1009, &r), 0);
	assert_int_equal(r.start, 600000);
	/* past the 32-bit id space, an empty range, nobody, a prefix only */
	assert_int_equal(ns_subid_find(t, "dave", 1005, &r), -ENOENT);
	assert_int_equal(ns_subid_find(t, "eve", 1006, &r), -ENOENT);
	assert_int_equal(ns_subid_find(t, "zed", 1007, &r), -ENOENT);
	assert_int_equal(ns_subid_find(t, "ali", 1008, &r), -ENOENT);
	assert_int_equal(ns_subid_find("", "alice", 1000, &r), -ENOENT);
}

/* /proc/self/mountinfo as a user namespace sees it after sifu's staging:
 * the bind of /dev at /root/hostdev with its submounts, one of them stacked,
 * an escaped mount point, optional fields, and an unrelated mount. */
static const char mountinfo_text[] =
    "68 45 0:42 / /root rw,nosuid,nodev,relatime - overlay overlay rw,lowerdir=/img\n"
    "131 68 0:6 / /root/hostdev rw,nosuid,relatime shared:2 - devtmpfs udev rw\n"
    "132 131 0:23 / /root/hostdev/shm rw,nosuid,nodev,noexec - tmpfs tmpfs rw\n"
    "133 132 0:27 / /root/hostdev/shm ro,noatime master:7 propagate_from:1 - tmpfs t rw\n"
    "134 131 0:24 / /root/hostdev/pts rw,nosuid,noexec,relatime,nodiratime - devpts devpts rw\n"
    "140 134 0:30 /x /root/hostdev/pts/a\\040b\\134c rw,nosymfollow - tmpfs t rw\n"
    "150 68 0:31 / /root/hostdevx rw - tmpfs t rw\n";

static void test_mountinfo_parse(void **state)
{
	(void)state;
	struct sifu_err err = {0};
	struct ns_mountinfo *m = NULL;
	size_t n = 0;
	assert_int_equal(ns_mountinfo_parse(mountinfo_text, &m, &n, &err), 0);
	assert_int_equal(n, 7);
	assert_int_equal(m[1].id, 131);
	assert_int_equal(m[1].parent, 68);
	assert_string_equal(m[1].mnt_point, "/root/hostdev");
	assert_int_equal(m[1].flags, MS_NOSUID | MS_RELATIME);
	assert_int_equal(m[2].flags, MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_STRICTATIME);
	assert_int_equal(m[3].flags, MS_RDONLY | MS_NOATIME);
	assert_int_equal(m[4].flags, MS_NOSUID | MS_NOEXEC | MS_RELATIME | MS_NODIRATIME);
	/* \040 is a space, \134 a backslash */
	assert_string_equal(m[5].mnt_point, "/root/hostdev/pts/a b\\c");
	assert_int_equal(m[5].flags, NS_MS_NOSYMFOLLOW | MS_STRICTATIME);
	/* the subtree of the bind: itself first, parents before children, the
	 * sibling whose name only starts the same left out */
	size_t idx[7];
	size_t k = ns_mountinfo_subtree(m, n, 131, idx);
	assert_int_equal(k, 5);
	assert_int_equal(m[idx[0]].id, 131);
	for (size_t i = 1; i < k; i++) {
		bool parent_before = false;
		for (size_t j = 0; j < i; j++)
			parent_before |= m[idx[j]].id == m[idx[i]].parent;
		assert_true(parent_before);
		assert_int_not_equal(m[idx[i]].id, 150);
	}
	assert_int_equal(ns_mountinfo_subtree(m, n, 133, idx), 1);
	assert_int_equal(ns_mountinfo_subtree(m, n, 999, idx), 0);
	ns_mountinfo_free(m, n);
	/* a namespace's root naming itself as parent is taken once */
	assert_int_equal(
	    ns_mountinfo_parse("1 1 0:1 / / rw - t t rw\n2 1 0:2 / /a rw - t t rw", &m, &n, &err),
	    0);
	assert_int_equal(n, 2);
	assert_int_equal(ns_mountinfo_subtree(m, n, 1, idx), 2);
	ns_mountinfo_free(m, n);
}

static void test_mountinfo_errors(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "131 68 0:6 / /root/hostdev rw\n",              /* no separator */
	    "13x 68 0:6 / /a rw - t t rw\n",                /* not a number */
	    "131 68 0:6 /\n",                               /* cut short */
	    "131 68 0:6 / relative rw - t t rw\n",          /* not absolute */
	    "99999999999 68 0:6 / /a rw - t t rw\n",        /* out of range */
	    "1 1 0:1 / / rw - t t rw\n\n2 1 0:2 / /a rw\n", /* the third line */
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct sifu_err err = {0};
		struct ns_mountinfo *m = NULL;
		size_t n = 0;
		assert_int_equal(ns_mountinfo_parse(bad[i], &m, &n, &err), -EINVAL);
		assert_int_equal(err.code, SIFU_E_CORRUPT);
	}
	struct sifu_err err = {0};
	struct ns_mountinfo *m = NULL;
	size_t n = 0;
	ns_mountinfo_parse("1 1 0:1 / / rw - t t rw\n\n2 1 0:2 / /a rw\n", &m, &n, &err);
	assert_non_null(strstr(err.chain[0], "line 3"));
	/* empty text: no mounts, no error */
	assert_int_equal(ns_mountinfo_parse("", &m, &n, &err), 0);
	assert_int_equal(n, 0);
	ns_mountinfo_free(m, n);
}

static void test_idmap_identity(void **state)
{
	(void)state;
	char out[256];
	unsigned one;
	assert_int_equal(
	    ns_idmap_identity("      1000       1000          1\n", out, sizeof(out), &one), 0);
	assert_string_equal(out, "1000 1000 1\n");
	assert_int_equal(one, 1000);
	/* --fakeroot: 0 is the caller outside; inside it stays 0 */
	assert_int_equal(ns_idmap_identity("0 1000 1\n", out, sizeof(out), &one), 0);
	assert_string_equal(out, "0 0 1\n");
	assert_int_equal(one, 0);
	/* subordinate ranges: every range, identically; not a single id */
	assert_int_equal(ns_idmap_identity("0 1000 1\n1 100000 65536\n", out, sizeof(out), &one),
	                 0);
	assert_string_equal(out, "0 0 1\n1 1 65536\n");
	assert_int_equal(one, UINT_MAX);
	assert_int_equal(ns_idmap_identity("0 0 4294967295\n", out, sizeof(out), &one), 0);
	assert_string_equal(out, "0 0 4294967295\n");
	assert_int_equal(one, UINT_MAX);
	assert_int_equal(ns_idmap_identity("", out, sizeof(out), &one), -EINVAL);
	assert_int_equal(ns_idmap_identity("0 1000\n", out, sizeof(out), &one), -EINVAL);
	assert_int_equal(ns_idmap_identity("0 1000 0\n", out, sizeof(out), &one), -EINVAL);
	assert_int_equal(ns_idmap_identity("x 1 1\n", out, sizeof(out), &one), -EINVAL);
	assert_int_equal(ns_idmap_identity("0 1000 1\n1 100000 65536\n", out, 8, &one), -ENOSPC);
}

/* A plain start needs no shell; values only a shell evaluates do. */
static void test_env_needs_shell(void **state)
{
	struct ns_env_override ov[] = {
	    {NS_ENV_SET, "A", "$HOME/x:${PATH}:\\$LIB"},
	    {NS_ENV_LITERAL, "APPTAINER_NAME", "$(not evaluated)"},
	};
	struct ns_env e = {.ov = ov, .nov = 2};
	assert_false(ns_env_needs_shell(&e));
	ov[0].value = "$(id -u)";
	assert_true(ns_env_needs_shell(&e));
	ov[0].value = "`id -u`";
	assert_true(ns_env_needs_shell(&e));
	ov[0].value = "${X:-default}";
	assert_true(ns_env_needs_shell(&e));
	ov[0].value = "plain";
	ov[0].key = "PREPEND_LD_LIBRARY_PATH";
	assert_true(ns_env_needs_shell(&e));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bind_forms),
	    cmocka_unit_test(test_bind_relative_source),
	    cmocka_unit_test(test_bind_errors),
	    cmocka_unit_test(test_bind_image),
	    cmocka_unit_test(test_mount_spec),
	    cmocka_unit_test(test_idmap),
	    cmocka_unit_test(test_subid_find),
	    cmocka_unit_test(test_passwd_add_and_replace),
	    cmocka_unit_test(test_group_edit),
	    cmocka_unit_test(test_cwd_skip),
	    cmocka_unit_test(test_nomount),
	    cmocka_unit_test(test_env_host_filtering),
	    cmocka_unit_test(test_env_cleanenv),
	    cmocka_unit_test(test_env_precedence),
	    cmocka_unit_test(test_env_refused_overrides),
	    cmocka_unit_test(test_env_path_edits),
	    cmocka_unit_test(test_env_script),
	    cmocka_unit_test(test_env_apply_eval),
	    cmocka_unit_test(test_env_apply_expands),
	    cmocka_unit_test(test_env_errors),
	    cmocka_unit_test(test_env_file_parse),
	    cmocka_unit_test(test_strv_env),
	    cmocka_unit_test(test_mountinfo_parse),
	    cmocka_unit_test(test_mountinfo_errors),
	    cmocka_unit_test(test_idmap_identity),
	    cmocka_unit_test(test_env_needs_shell),
	    cmocka_unit_test(test_bind_escapes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
