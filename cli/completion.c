/* SPDX-License-Identifier: BSD-3-Clause */
/* The bash completion script, printed from the verb and option tables
 * (`sifu help --bash-completion`; the build installs its output), so that a
 * new verb or flag is completed the day it exists. */
#include "cli.h"

/* Verbs whose first word after the options is an image: their usage line
 * names one. */
static bool takes_image(const struct cli_verb *v)
{
	return strstr(v->usage, "IMAGE") != NULL;
}

/* Print each flag of verb V (-x and --long), and with VALUED only those
 * that take a value in the next word. */
static void verb_flags(FILE *f, const struct cli_verb *v, bool valued)
{
	const char *sep = "";
	for (size_t i = 0; i < O_COUNT; i++) {
		const struct cli_opt *o = &cli_opts[i];
		if (!(o->verbs & v->bit) || (valued && o->arg != A_REQ && o->arg != A_LIST))
			continue;
		if (o->short_name)
			fprintf(f, "%s-%c", sep, o->short_name), sep = " ";
		fprintf(f, "%s--%s", sep, o->long_name);
		sep = " ";
	}
	if (!valued)
		fprintf(f, "%s--help", sep);
}

static void print_tables(FILE *f, const struct cli_verb *verbs, size_t nverbs)
{
	fprintf(f, "_sifu_verbs='");
	for (size_t i = 0; i < nverbs; i++)
		fprintf(f, "%s%s", i ? " " : "", verbs[i].name);
	fprintf(f, "'\n_sifu_global='-d --debug -q --quiet -s --silent -v --verbose --no-color "
	           "--version -h --help'\n\n");
	fprintf(f, "# _sifu_flags VERB [valued]: the flags of VERB, or those taking a value\n"
	           "_sifu_flags() {\n\tcase $1:$2 in\n");
	for (size_t i = 0; i < nverbs; i++) {
		for (int valued = 0; valued < 2; valued++) {
			fprintf(f, "\t%s:%s) echo '", verbs[i].name, valued ? "valued" : "");
			verb_flags(f, &verbs[i], valued);
			fprintf(f, "' ;;\n");
		}
	}
	fprintf(f, "\tesac\n}\n\n_sifu_image_verbs=' ");
	for (size_t i = 0; i < nverbs; i++)
		if (takes_image(&verbs[i]))
			fprintf(f, "%s ", verbs[i].name);
	fprintf(f, "'\n\n");
}

/* The function itself does not depend on the tables. */
static const char completion_fn[] =
    "# Images: SIF files, SquashFS files and directories (sandboxes)\n"
    "_sifu_images() {\n"
    "\tlocal IFS=$'\\n' c\n"
    "\tCOMPREPLY=($(compgen -d -- \"$1\"))\n"
    "\tfor c in $(compgen -f -- \"$1\"); do\n"
    "\t\tcase $c in\n"
    "\t\t*.sif | *.sqfs | *.squashfs | *.simg | *.img) COMPREPLY+=(\"$c\") ;;\n"
    "\t\tesac\n"
    "\tdone\n"
    "}\n\n"
    "_sifu() {\n"
    "\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}\n"
    "\tlocal i=1 verb='' npos=0 w\n"
    "\tCOMPREPLY=()\n"
    "\twhile ((i < COMP_CWORD)); do\n"
    "\t\tcase ${COMP_WORDS[i]} in -*) ((i++)) ;; *) verb=${COMP_WORDS[i]}; ((i++)); break ;; esac\n"
    "\tdone\n"
    "\tif [[ -z $verb ]]; then\n"
    "\t\tif [[ $cur == -* ]]; then\n"
    "\t\t\tCOMPREPLY=($(compgen -W \"$_sifu_global\" -- \"$cur\"))\n"
    "\t\telse\n"
    "\t\t\tCOMPREPLY=($(compgen -W \"$_sifu_verbs\" -- \"$cur\"))\n"
    "\t\tfi\n"
    "\t\treturn 0\n"
    "\tfi\n"
    "\tlocal valued=\" $(_sifu_flags \"$verb\" valued) \"\n"
    "\t# count the words before this one that are not flags or their values\n"
    "\twhile ((i < COMP_CWORD)); do\n"
    "\t\tw=${COMP_WORDS[i]}\n"
    "\t\tif [[ $w == -* ]]; then\n"
    "\t\t\t[[ $w != *=* && $valued == *\" $w \"* ]] && ((i++))\n"
    "\t\telse\n"
    "\t\t\t((npos++))\n"
    "\t\tfi\n"
    "\t\t((i++))\n"
    "\tdone\n"
    "\tif [[ $cur == -* ]]; then\n"
    "\t\tCOMPREPLY=($(compgen -W \"$(_sifu_flags \"$verb\")\" -- \"$cur\"))\n"
    "\telif [[ $valued == *\" $prev \"* ]]; then\n"
    "\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n"
    "\telif ((npos == 0)) && [[ $_sifu_image_verbs == *\" $verb \"* ]]; then\n"
    "\t\t_sifu_images \"$cur\"\n"
    "\telse\n"
    "\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n"
    "\tfi\n"
    "\treturn 0\n"
    "}\n\n"
    "complete -o filenames -F _sifu sifu\n";

void cli_print_bash_completion(FILE *f, const struct cli_verb *verbs, size_t nverbs)
{
	fprintf(f, "# bash completion for sifu: made by 'sifu help --bash-completion' from\n"
	           "# sifu's own verb and option tables; do not edit.\n\n");
	print_tables(f, verbs, nverbs);
	fputs(completion_fn, f);
}
