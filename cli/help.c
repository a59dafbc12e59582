/* SPDX-License-Identifier: BSD-3-Clause */
/* --help text and the Markdown that becomes the man pages: one source. */
#include "cli.h"

#include <sys/ioctl.h>

/* The flags sifu takes before a verb (cli/main.c parses them), described
 * like a verb's options so that one formatter writes both. */
static const struct cli_opt global_opts[] = {
    {.short_name = 'd',
     .long_name = "debug",
     .help = "print debugging information, error chains and phase timings"},
    {.short_name = 'q',
     .long_name = "quiet",
     .help = "suppress normal output: only warnings and errors"},
    {.short_name = 's', .long_name = "silent", .help = "only print errors"},
    {.short_name = 'v', .long_name = "verbose", .help = "print additional information"},
    {.long_name = "no-color", .help = "print without color (also --nocolor)"},
    {.long_name = "version", .help = "print the version and exit"},
    {.short_name = 'h',
     .long_name = "help",
     .help = "help for sifu, or for a verb: sifu VERB --help"},
};

static void opt_flags(const struct cli_opt *o, char *buf, size_t len)
{
	const char *arg = o->arg == A_NONE ? "" : o->arg == A_OPT ? "[=" : " ";
	char meta[64] = "";
	if (o->arg != A_NONE)
		snprintf(meta, sizeof(meta), "%s%s%s", arg, o->metavar ? o->metavar : "VALUE",
		         o->arg == A_OPT ? "]" : "");
	if (o->short_name)
		snprintf(buf, len, "-%c, --%s%s", o->short_name, o->long_name, meta);
	else
		snprintf(buf, len, "    --%s%s", o->long_name, meta);
}

/* Append the variable NAME (K bytes) to the list in BUF unless it is there:
 * an option's extra names may repeat what its prefix makes (--nohttps
 * has APPTAINER_NOHTTPS both ways), and a reader wants each once. */
static void env_add(char *buf, size_t len, size_t *n, const char *name, size_t k)
{
	for (const char *p = buf; *p;) {
		size_t t = strcspn(p, ",");
		if (t == k && !strncmp(p, name, k))
			return;
		p += t;
		p += strspn(p, ", ");
	}
	if (*n < len)
		*n += (size_t)snprintf(buf + *n, len - *n, "%s%.*s", *n ? ", " : "", (int)k, name);
}

static void opt_envs(const struct cli_opt *o, unsigned verb_bit, char *buf, size_t len)
{
	buf[0] = '\0';
	size_t n = 0;
	static const char *const prefixes[] = {"SIFU_", "APPTAINER_", "SINGULARITY_"};
	const char *verb_env = cli_opt_verb_env(verb_bit, o->id);
	for (size_t i = 0; i < ARRAY_SIZE(prefixes) * 2; i++) {
		const char *base = i < ARRAY_SIZE(prefixes) ? o->env : verb_env;
		if (!base)
			continue;
		char name[128];
		int k =
		    snprintf(name, sizeof(name), "%s%s", prefixes[i % ARRAY_SIZE(prefixes)], base);
		env_add(buf, len, &n, name, (size_t)k);
	}
	for (const char *p = o->extra_env; p && *p;) {
		size_t k = strcspn(p, ":");
		env_add(buf, len, &n, p, k);
		p += k + (p[k] == ':');
	}
}

/* The width help is wrapped to: $COLUMNS, else the terminal's, else 80
 * (a pipe or a file), as man and cobra-based tools do. */
static size_t help_width(FILE *f)
{
	const char *c = cli_env_get()->columns;
	long w = 0;
	if (c) {
		char *end;
		w = strtol(c, &end, 10);
		if (*end)
			w = 0;
	}
	struct winsize ws;
	if (w <= 0 && ioctl(fileno(f), TIOCGWINSZ, &ws) == 0)
		w = ws.ws_col;
	if (w <= 0)
		w = 80;
	return w < 40 ? 40 : (size_t)w;
}

/* Print TEXT from column COL on, broken at spaces before WIDTH; further
 * lines start at column INDENT.  A word longer than a line stays whole. */
static void put_wrapped(FILE *f, size_t col, size_t indent, const char *text, size_t width)
{
	bool line_start = true;
	for (const char *p = text + strspn(text, " "); *p;) {
		size_t k = strcspn(p, " ");
		if (!line_start && col + 1 + k > width) {
			fprintf(f, "\n%*s", (int)indent, "");
			col = indent;
			line_start = true;
		}
		if (!line_start)
			col += (size_t)fprintf(f, " ");
		col += (size_t)fprintf(f, "%.*s", (int)k, p);
		line_start = false;
		p += k;
		p += strspn(p, " ");
	}
	fputc('\n', f);
}

/* One option line: FLAGS in a column of FLAGW, then HELP wrapped beside it. */
static void put_option(FILE *f, const char *flags, size_t flagw, const char *help, size_t width)
{
	/* on a narrow terminal the help goes under the flags, so that long
	 * variable names still fit */
	if (width < flagw + 3 + 40) {
		if (*flags)
			fprintf(f, "  %s\n", flags);
		put_wrapped(f, (size_t)fprintf(f, "%8s", ""), 8, help, width);
		return;
	}
	int col = fprintf(f, "  %-*s ", (int)flagw, flags);
	put_wrapped(f, (size_t)col, flagw + 3, help, width);
}

void cli_print_verb_help(FILE *f, const struct cli_verb *v)
{
	size_t width = help_width(f);
	fprintf(f, "Usage:\n  %s\n\nDescription:\n", v->usage);
	put_wrapped(f, (size_t)fprintf(f, "  "), 2, v->summary, width);
	fputc('\n', f);
	/* the description is written in paragraphs of lines near 76 columns:
	 * each paragraph is flowed again to this width */
	for (const char *p = v->description; *p;) {
		size_t k = strstr(p, "\n\n") ? (size_t)(strstr(p, "\n\n") - p) : strlen(p);
		_cleanup_free_ char *para = sifu_xstrndup(p, k);
		for (char *c = para; *c; c++)
			*c = *c == '\n' ? ' ' : *c;
		if (*para)
			put_wrapped(f, (size_t)fprintf(f, "  "), 2, para, width);
		p += k;
		if (*p) {
			fputc('\n', f);
			p += strspn(p, "\n");
		}
	}
	/* always the heading, as Apptainer's (cobra's) help has it: a verb
	 * without options of its own still takes --help */
	fprintf(f, "\nOptions:\n");
	for (size_t i = 0; i < O_COUNT; i++) {
		const struct cli_opt *o = &cli_opts[i];
		if (!(o->verbs & v->bit))
			continue;
		char flags[96], envs[512], line[600];
		opt_flags(o, flags, sizeof(flags));
		opt_envs(o, v->bit, envs, sizeof(envs));
		put_option(f, flags, 30, o->help, width);
		if (envs[0]) {
			snprintf(line, sizeof(line), "[%s]", envs);
			put_option(f, "", 30, line, width);
		}
	}
	put_option(f, "-h, --help", 30, "help for this verb", width);
	fprintf(f, "\nExamples:\n%s\n", v->examples);
	fprintf(f, "For global options, see 'sifu --help'.\n");
}

void cli_print_main_help(FILE *f, const struct cli_verb *verbs, size_t nverbs)
{
	size_t width = help_width(f);
	fprintf(f, "sifu: run Singularity/Apptainer (SIF) containers with no privileges\n\n"
	           "Usage:\n  sifu [global options] VERB [options] [args]\n\nVerbs:\n");
	for (size_t i = 0; i < nverbs; i++)
		put_option(f, verbs[i].name, 10, verbs[i].summary, width);
	fprintf(f, "\nGlobal options:\n");
	for (size_t i = 0; i < ARRAY_SIZE(global_opts); i++) {
		char fl[64];
		opt_flags(&global_opts[i], fl, sizeof(fl));
		put_option(f, fl, 18, global_opts[i].help, width);
	}
	fprintf(f, "\nExamples:\n"
	           "  $ sifu exec ubuntu.sif head -n 4 /etc/os-release\n"
	           "  $ ./ubuntu.sif                 # a SIF is its own launcher\n\n"
	           "Run 'sifu VERB --help' for more about a verb; 'man sifu' for the manual.\n");
}

static void md_escape(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (strchr("\\`*_[]<>#|", *s))
			fputc('\\', f);
		fputc(*s, f);
	}
}

static void md_block(FILE *f, const char *text)
{
	for (const char *p = text; *p;) {
		size_t k = strcspn(p, "\n");
		fprintf(f, "    %.*s\n", (int)k, p);
		p += k + (p[k] == '\n');
	}
}

static void md_paragraphs(FILE *f, const char *text)
{
	for (const char *p = text; *p;) {
		size_t k = strcspn(p, "\n");
		char line[512];
		snprintf(line, sizeof(line), "%.*s", (int)k, p);
		md_escape(f, line);
		fputc('\n', f);
		p += k + (p[k] == '\n');
	}
}

void cli_print_verb_markdown(FILE *f, const struct cli_verb *v)
{
	char upper[32];
	snprintf(upper, sizeof(upper), "SIFU-%s", v->name);
	for (char *c = upper; *c; c++)
		*c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
	fprintf(f, "%s 1 \"\" \"sifu %s\" \"sifu manual\"\n", upper, SIFU_VERSION);
	fprintf(f, "=================================================\n\n");
	fprintf(f, "# NAME\n\nsifu-%s - ", v->name);
	md_escape(f, v->summary);
	fprintf(f, "\n\n# SYNOPSIS\n\n**");
	md_escape(f, v->usage);
	fprintf(f, "**\n\n# DESCRIPTION\n\n");
	md_paragraphs(f, v->description);
	fprintf(f, "\n# OPTIONS\n\n");
	for (size_t i = 0; i < O_COUNT; i++) {
		const struct cli_opt *o = &cli_opts[i];
		if (!(o->verbs & v->bit))
			continue;
		char flags[96], envs[512];
		opt_flags(o, flags, sizeof(flags));
		opt_envs(o, v->bit, envs, sizeof(envs));
		const char *fl = flags;
		while (*fl == ' ')
			fl++;
		fprintf(f, "**");
		md_escape(f, fl);
		fprintf(f, "**\n:   ");
		md_escape(f, o->help);
		if (envs[0]) {
			fprintf(f, " (environment: ");
			md_escape(f, envs);
			fprintf(f, ")");
		}
		fprintf(f, "\n\n");
	}
	fprintf(f, "**-h, --help**\n:   help for this verb\n\n# EXAMPLES\n\n");
	md_block(f, v->examples);
	fprintf(f, "\n# SEE ALSO\n\nsifu(1)\n");
}

void cli_print_main_markdown(FILE *f, const struct cli_verb *verbs, size_t nverbs)
{
	fprintf(f, "SIFU 1 \"\" \"sifu %s\" \"sifu manual\"\n", SIFU_VERSION);
	fprintf(f, "=================================================\n\n");
	fprintf(f,
	        "# NAME\n\nsifu - run Singularity/Apptainer (SIF) containers with no privileges\n\n"
	        "# SYNOPSIS\n\n**sifu** \\[global options\\] *VERB* \\[options\\] \\[args\\]\n\n"
	        "# DESCRIPTION\n\n"
	        "sifu runs SIF images, bare SquashFS images and sandbox directories without\n"
	        "setuid helpers, daemons or root: a user namespace, and the image served by a\n"
	        "FUSE server inside sifu itself, with read-ahead built for slow shared file\n"
	        "systems. Its command line follows apptainer(1) and singularity(1).\n\n"
	        "Invoked as **run-singularity** it behaves as **sifu run**, so a SIF file\n"
	        "starting with `#!/usr/bin/env run-singularity` runs as a program.\n\n"
	        "# VERBS\n\n");
	for (size_t i = 0; i < nverbs; i++) {
		fprintf(f, "**%s**\n:   ", verbs[i].name);
		md_escape(f, verbs[i].summary);
		fprintf(f, " (see sifu-%s(1))\n\n", verbs[i].name);
	}
	fprintf(f, "# GLOBAL OPTIONS\n\n");
	for (size_t i = 0; i < ARRAY_SIZE(global_opts); i++) {
		char buf[64];
		opt_flags(&global_opts[i], buf, sizeof(buf));
		const char *fl = buf;
		while (*fl == ' ')
			fl++;
		fprintf(f, "**%s**\n:   %s\n\n", fl, global_opts[i].help);
	}
	fprintf(f,
	        "# ENVIRONMENT\n\n"
	        "Every flag of a verb can be given as an environment variable SIFU\\_*FLAG*,\n"
	        "APPTAINER\\_*FLAG* or SINGULARITY\\_*FLAG* (upper case, dashes as\n"
	        "underscores); the command line wins, then SIFU\\_, then APPTAINER\\_, then\n"
	        "SINGULARITY\\_. Each verb's page lists its variables.\n\n"
	        "Variables that are not a verb's flag: SIFU\\_CACHEDIR, APPTAINER\\_CACHEDIR,\n"
	        "SINGULARITY\\_CACHEDIR (the cache's directory); SIFU\\_TMPDIR,\n"
	        "APPTAINER\\_TMPDIR, SINGULARITY\\_TMPDIR, TMPDIR (build's temporary\n"
	        "directory); SIFU\\_NOCOLOR, APPTAINER\\_NOCOLOR, SINGULARITY\\_NOCOLOR\n"
	        "(true: as --no-color), NO\\_COLOR (set: as --no-color); APPTAINER\\_CONFIGDIR,\n"
	        "SINGULARITY\\_CONFIGDIR (Apptainer's per-user directory, default\n"
	        "~/.apptainer: registry logins in docker-config.json, public keys in\n"
	        "keys/pgp-public).\n\n"
	        "# EXIT STATUS\n\n"
	        "The payload's exit status for exec, run, shell and test (128+N when it was\n"
	        "killed by signal N); 0 on success otherwise; 255 when sifu itself fails.\n\n"
	        "# EXAMPLES\n\n"
	        "    $ sifu exec ubuntu.sif head -n 4 /etc/os-release\n"
	        "    $ ./ubuntu.sif\n\n"
	        "# SEE ALSO\n\nsifu-exec(1), sifu-run(1), sifu-shell(1), sifu-sif(1)\n");
}
