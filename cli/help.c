/* SPDX-License-Identifier: BSD-3-Clause */
/* --help text and the Markdown that becomes the man pages: one source. */
#include "cli.h"

/* The flags sifu takes before a verb (cli/main.c parses them), described
 * like a verb's options so that one formatter writes both. */
static const struct cli_opt global_opts[] = {
    {.short_name = 'd',
     .long_name = "debug",
     .help = "print debugging information, error chains and phase timings"},
    {.short_name = 'q', .long_name = "quiet", .help = "only print errors"},
    {.short_name = 'v', .long_name = "verbose", .help = "print additional information"},
    {.long_name = "no-color", .help = "print without color"},
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

static void opt_envs(const struct cli_opt *o, char *buf, size_t len)
{
	buf[0] = '\0';
	if (!o->env && !o->extra_env)
		return;
	size_t n = 0;
	if (o->env)
		n += (size_t)snprintf(buf, len, "SIFU_%s, APPTAINER_%s, SINGULARITY_%s", o->env,
		                      o->env, o->env);
	if (o->extra_env && n < len) {
		const char *p = o->extra_env;
		while (*p && n + 3 < len) {
			size_t k = strcspn(p, ":");
			n += (size_t)snprintf(buf + n, len - n, "%s%.*s", n ? ", " : "", (int)k, p);
			p += k + (p[k] == ':');
		}
	}
}

void cli_print_verb_help(FILE *f, const struct cli_verb *v)
{
	fprintf(f, "Usage:\n  %s\n\nDescription:\n  %s\n\n", v->usage, v->summary);
	for (const char *p = v->description; *p;) {
		size_t k = strcspn(p, "\n");
		fprintf(f, "  %.*s\n", (int)k, p);
		p += k + (p[k] == '\n');
	}
	bool any = false;
	for (size_t i = 0; i < O_COUNT; i++) {
		const struct cli_opt *o = &cli_opts[i];
		if (!(o->verbs & v->bit))
			continue;
		if (!any)
			fprintf(f, "\nOptions:\n");
		any = true;
		char flags[96], envs[256];
		opt_flags(o, flags, sizeof(flags));
		opt_envs(o, envs, sizeof(envs));
		fprintf(f, "  %-30s %s\n", flags, o->help);
		if (envs[0])
			fprintf(f, "  %-30s [%s]\n", "", envs);
	}
	fprintf(f, "  %-30s %s\n", "-h, --help", "help for this verb");
	fprintf(f, "\nExamples:\n%s\n", v->examples);
	fprintf(f, "For global options, see 'sifu --help'.\n");
}

void cli_print_main_help(FILE *f, const struct cli_verb *verbs, size_t nverbs)
{
	fprintf(f, "sifu: run Singularity/Apptainer (SIF) containers with no privileges\n\n"
	           "Usage:\n  sifu [global options] VERB [options] [args]\n\nVerbs:\n");
	for (size_t i = 0; i < nverbs; i++)
		fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
	fprintf(f, "\nGlobal options:\n");
	for (size_t i = 0; i < ARRAY_SIZE(global_opts); i++) {
		char fl[64];
		opt_flags(&global_opts[i], fl, sizeof(fl));
		fprintf(f, "  %-18s %s\n", fl, global_opts[i].help);
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
		char flags[96], envs[256];
		opt_flags(o, flags, sizeof(flags));
		opt_envs(o, envs, sizeof(envs));
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
	fprintf(f, "# ENVIRONMENT\n\n"
	           "Every flag of a verb can be given as an environment variable SIFU\\_*FLAG*,\n"
	           "APPTAINER\\_*FLAG* or SINGULARITY\\_*FLAG* (upper case, dashes as\n"
	           "underscores); the command line wins, then SIFU\\_, then APPTAINER\\_, then\n"
	           "SINGULARITY\\_. Each verb's page lists its variables.\n\n"
	           "# EXIT STATUS\n\n"
	           "The payload's exit status for exec, run, shell and test (128+N when it was\n"
	           "killed by signal N); 0 on success otherwise; 255 when sifu itself fails.\n\n"
	           "# EXAMPLES\n\n"
	           "    $ sifu exec ubuntu.sif head -n 4 /etc/os-release\n"
	           "    $ ./ubuntu.sif\n\n"
	           "# SEE ALSO\n\nsifu-exec(1), sifu-run(1), sifu-shell(1), sifu-sif(1)\n");
}
