/* SPDX-License-Identifier: BSD-3-Clause */
#include "cli.h"

#include <libgen.h>
#include <limits.h>

#define EXIT_SIFU 255

static bool debug_chain;
static char **saved_argv; /* as given, for handing the command to sifu-all */

#ifdef SIFU_FULL
int cli_delegate_full(struct sifu_err *err)
{
	return sifu_err_set(err, SIFU_E_UNAVAILABLE, ENOSYS, "this is not available in this build");
}
#else
/* sifu-all sits next to sifu in the build tree, and in libexec/sifu/ when
 * installed (bin/../libexec/sifu/sifu-all). */
static bool find_full(char *buf, size_t len)
{
	char self[PATH_MAX - 32];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return false;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (!slash)
		return false;
	*slash = '\0';
	static const char *const rel[] = {"sifu-all", "../libexec/sifu/sifu-all"};
	for (size_t i = 0; i < ARRAY_SIZE(rel); i++) {
		snprintf(buf, len, "%s/%s", self, rel[i]);
		if (access(buf, X_OK) == 0)
			return true;
	}
	snprintf(buf, len, "%s/libexec/sifu/sifu-all", SIFU_PREFIX);
	return access(buf, X_OK) == 0;
}

int cli_delegate_full(struct sifu_err *err)
{
	char path[PATH_MAX];
	if (!find_full(path, sizeof(path))) {
		sifu_err_set(err, SIFU_E_UNAVAILABLE, ENOENT,
		             "this needs sifu-all (registries, builds, signatures), which is not "
		             "installed next to sifu");
		sifu_err_hint(err, "install sifu with 'meson install', or run build/cli/sifu-all");
		return -ENOENT;
	}
	fflush(NULL);
	execv(path, saved_argv);
	return sifu_err_sys(err, "running %s", path);
}
#endif

/* Apptainer ends a command with sylog.Fatalf: "FATAL:   message", exit 255.
 * The hint goes on the next line, indented under the message rather than
 * as an INFO line: it is part of the error, so -s (errors only) keeps it,
 * and `grep ^FATAL` still finds the one line that says what failed. */
void cli_report(const char *verb, const struct sifu_err *err)
{
	(void)verb;
	char line[2 * SIFU_ERR_MSG_MAX];
	sifu_err_format(err, line, sizeof(line));
	sifu_log(SIFU_LOG_FATAL, "%s", line);
	if (err->hint[0])
		fprintf(stderr, "%9s%s\n", "", err->hint);

	if (debug_chain && err->depth > 1) {
		sifu_debug("error chain (outermost first, code '%s'):",
		           sifu_errcode_name(err->code));
		for (unsigned i = err->depth; i-- > 0;)
			sifu_debug("  %s", err->chain[i]);
		if (err->errnum)
			sifu_debug("  errno %d (%s)", err->errnum, strerror(err->errnum));
	}
}

static int usage_error(struct sifu_err *err)
{
	cli_report(NULL, err);
	return EXIT_SIFU;
}

static int run_verb(const struct cli_verb *v, int argc, char **argv)
{
	struct sifu_err err = {0};
	struct cli_args args;
	int r;
	/* help, and the verbs with no options of their own (bit 0: Apptainer's
	 * that do not apply, cmd_remote.c), take their words as they are */
	if (v->bit == V_HELP || v->bit == 0) {
		memset(&args, 0, sizeof(args));
		args.pos = sifu_xcalloc((size_t)argc + 1, sizeof(char *));
		memcpy(args.pos, argv, (size_t)argc * sizeof(char *));
		args.npos = argc;
		r = 0;
	} else {
		r = cli_parse(v, argc, argv, &args, &err);
	}
	if (r == 1) {
		cli_print_verb_help(stdout, v);
		cli_args_free(&args);
		return 0;
	}
	if (r < 0) {
		cli_args_free(&args);
		return usage_error(&err);
	}
	if (v->run)
		r = v->run(v, &args, &err);
	else if (cli_delegate_full(&err) < 0 && err.errnum == ENOSYS)
		r = cli_not_built(v, &args, &err);
	else
		r = -1;
	cli_args_free(&args);
	if (r < 0) {
		cli_report(v->name, &err);
		return EXIT_SIFU;
	}
	return r; /* a payload's exit status, or 0 */
}

static int unknown_verb(const char *word)
{
	const char *names[64];
	size_t n = 0;
	for (size_t i = 0; i < cli_nverbs && n + 1 < ARRAY_SIZE(names); i++)
		names[n++] = cli_verbs[i].name;
	names[n] = NULL;
	struct sifu_err err = {0};
	sifu_err_set(&err, SIFU_E_USAGE, EINVAL, "unknown verb '%s'", word);
	const char *s = cli_suggest(word, names);
	if (s)
		sifu_err_hint(&err, "did you mean 'sifu %s'?  'sifu --help' lists the verbs.", s);
	else
		sifu_err_hint(&err, "'sifu --help' lists the verbs");
	return usage_error(&err);
}

/* The verb of the command line, after flag argv[i]: the first later word
 * that names one (a flag's value may come first). */
static const struct cli_verb *later_verb(int argc, char **argv, int i)
{
	for (int j = i + 1; j < argc; j++)
		if (argv[j][0] != '-' && cli_find_verb(argv[j]))
			return cli_find_verb(argv[j]);
	return NULL;
}

/* A verb's flag given before the verb (`sifu --block-cache off exec IMG`):
 * say where it goes instead of "unknown global flag".  True when reported. */
static bool verb_flag_first(int argc, char **argv, int i)
{
	const char *name = argv[i] + strspn(argv[i], "-");
	size_t n = strcspn(name, "=");
	const struct cli_verb *v = later_verb(argc, argv, i);
	for (size_t k = 0; k < O_COUNT; k++) {
		const struct cli_opt *o = &cli_opts[k];
		bool match = argv[i][1] == '-'
		                 ? strlen(o->long_name) == n && !strncmp(o->long_name, name, n)
		                 : n == 1 && o->short_name == *name;
		if (!match || (v && !(o->verbs & v->bit)))
			continue;
		struct sifu_err err = {0};
		sifu_err_set(&err, SIFU_E_USAGE, EINVAL, "%s is a flag of %s%s, not a global flag",
		             argv[i], v ? "the verb " : "verbs", v ? v->name : "");
		sifu_err_hint(&err, "put it after the verb: sifu %s %s ...", v ? v->name : "VERB",
		              argv[i]);
		usage_error(&err);
		return true;
	}
	return false;
}

/* The global output flags, from the command line or Apptainer's variables
 * (cmd/internal/cli/apptainer.go: a flag's EnvKeys). */
struct out_flags {
	bool debug, verbose, quiet, silent, nocolor;
};

/* Go's strconv.ParseBool's true words, which Apptainer reads these with. */
static bool env_true(const char *v)
{
	static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True", NULL};
	for (size_t i = 0; v && yes[i]; i++)
		if (!strcmp(v, yes[i]))
			return true;
	return false;
}

/* Apptainer's setSylogMessageLevel: the most verbose flag wins whatever the
 * order (-d over -v over -q over -s); without one, APPTAINER_MESSAGELEVEL
 * may only raise the level above INFO.  The levels each shows: -s errors,
 * -q errors and warnings, default adds INFO, -v VERBOSE, -d DEBUG. */
static void apply_output(struct out_flags f)
{
	const struct cli_env *env = cli_env_get();
	f.debug |= env_true(env->debug);
	f.verbose |= env_true(env->verbose);
	f.quiet |= env_true(env->quiet);
	f.silent |= env_true(env->silent);
	long ml = env->messagelevel ? strtol(env->messagelevel, NULL, 10) : 1;
	enum sifu_loglevel lvl = f.debug     ? SIFU_LOG_DEBUG
	                         : f.verbose ? SIFU_LOG_VERBOSE
	                         : f.quiet   ? SIFU_LOG_WARN
	                         : f.silent  ? SIFU_LOG_QUIET
	                         : ml >= 5   ? SIFU_LOG_DEBUG
	                         : ml >= 2   ? SIFU_LOG_VERBOSE
	                                     : SIFU_LOG_INFO;
	sifu_log_set_level(lvl);
	debug_chain = lvl >= SIFU_LOG_DEBUG;
	if (f.nocolor || env_true(env->nocolor))
		sifu_log_set_color(false);
}

static void setup_output(void)
{
	const struct cli_env *env = cli_env_get();
	sifu_log_set_color(isatty(2) && !(env->no_color && *env->no_color));
	if (env->no_openat2 && strcmp(env->no_openat2, "0") != 0)
		sifu_path_force_fallback(true);
}

int main(int argc, char **argv)
{
	saved_argv = argv;
	setup_output();
	const char *self = strrchr(argv[0], '/');
	self = self ? self + 1 : argv[0];
	/* `#!/usr/bin/env run-singularity` makes the kernel run
	 * `run-singularity ./image.sif args...`: that is `sifu run`. */
	if (!strcmp(self, "run-singularity"))
		return run_verb(cli_find_verb("run"), argc - 1, argv + 1);
	cli_set_as_apptainer(!strcmp(self, "apptainer") || !strcmp(self, "singularity"));

	int i = 1;
	struct out_flags out = {0};
	/* argv[i] != NULL: with UBSan's checks gcc cannot tell, and warns */
	for (; i < argc && argv[i] && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-d") || !strcmp(a, "--debug")) {
			out.debug = true;
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			out.quiet = true;
		} else if (!strcmp(a, "-s") || !strcmp(a, "--silent")) {
			out.silent = true;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			out.verbose = true;
		} else if (!strcmp(a, "--no-color") || !strcmp(a, "--nocolor")) {
			out.nocolor = true;
		} else if (!strcmp(a, "--version")) {
			apply_output(out); /* -d --version names sifu */
			cli_print_version(true);
			return 0;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			cli_print_main_help(stdout, cli_verbs, cli_nverbs);
			return 0;
		} else if (verb_flag_first(argc, argv, i)) {
			return EXIT_SIFU;
		} else {
			static const char *const g[] = {"debug",   "quiet", "verbose", "no-color",
			                                "version", "help",  "silent",  NULL};
			struct sifu_err err = {0};
			sifu_err_set(&err, SIFU_E_USAGE, EINVAL, "unknown global flag %s", a);
			const char *s = cli_suggest(a + strspn(a, "-"), g);
			if (s)
				sifu_err_hint(&err, "did you mean --%s?", s);
			else
				sifu_err_hint(&err,
				              "global flags go before the verb; see 'sifu --help'");
			return usage_error(&err);
		}
	}
	apply_output(out);
	if (i >= argc) {
		cli_print_main_help(stderr, cli_verbs, cli_nverbs);
		return EXIT_SIFU;
	}
	const struct cli_verb *v = cli_find_verb(argv[i]);
	if (!v)
		return unknown_verb(argv[i]);
	return run_verb(v, argc - i - 1, argv + i + 1);
}
