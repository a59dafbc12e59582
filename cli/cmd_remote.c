/* SPDX-License-Identifier: BSD-3-Clause */
/* Apptainer verbs for services sifu does not have -- a container library
 * (remote endpoints, search), keyservers, plugins -- answered with one
 * plain line and what to do instead, not "unknown verb" and a suggestion
 * of an unrelated sifu verb.  What of `remote` does apply (logins to OCI
 * registries) is `registry` under another name.
 *
 * These verbs have no option bit (cli_verb.bit 0): main hands them their
 * words unparsed, so that any Apptainer flag (`remote add --global ...`,
 * `search --library ...`) still gets the answer rather than "unknown flag". */
#include "cli.h"

int cmd_remote(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);
int cmd_keyserver(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);
int cmd_search(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);
int cmd_plugin(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);
/* cmd_registry.c: called directly, not through the verb table (verbs.c
 * refers to this file: scripts/check-calls forbids the cycle) */
int cmd_registry(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);

static bool asks_help(const struct cli_args *a)
{
	for (int i = 0; i < a->npos; i++)
		if (!strcmp(a->pos[i], "--help") || !strcmp(a->pos[i], "-h"))
			return true;
	return false;
}

/* Exit 255 with WHAT (one sentence) and INSTEAD as the hint. */
static int not_here(const char *what, const char *instead, struct sifu_err *err)
{
	sifu_err_set(err, SIFU_E_UNSUPPORTED, 0, "%s", what);
	sifu_err_hint(err, "%s", instead);
	return -ENOTSUP;
}

/* `remote login|logout [options] docker://HOST` and `remote list`: the
 * registry verbs, with registry's options (Apptainer's remote login takes
 * the same -u, -p, --password-stdin and --insecure, cmd/internal/cli/
 * remote.go).  A remote endpoint name instead of a URI (`remote login
 * SylabsCloud`), and every other remote subcommand, are about a library
 * endpoint or a keyserver. */
int cmd_remote(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
{
	if (asks_help(a)) {
		cli_print_verb_help(stdout, v);
		return 0;
	}
	const char *sub = a->npos > 0 ? a->pos[0] : "";
	bool login = !strcmp(sub, "login") || !strcmp(sub, "logout");
	if (!login && strcmp(sub, "list") != 0) {
		char what[160];
		snprintf(what, sizeof(what),
		         "'remote%s%s' does not apply to sifu: it has no library or keyserver "
		         "endpoints, only OCI registries",
		         *sub ? " " : "", sub);
		return not_here(what,
		                "log in to a registry with 'sifu remote login -u NAME "
		                "--password-stdin docker://HOST', pull with docker:// or oras://",
		                err);
	}
	/* registry's options, under remote's name in messages */
	struct cli_verb reg = *v;
	reg.bit = V_REGISTRY;
	struct cli_args ra;
	int r = cli_parse(&reg, a->npos, a->pos, &ra, err);
	if (r < 0)
		return r;
	if (login && (ra.npos < 2 || (strncmp(ra.pos[1], "docker://", 9) != 0 &&
	                              strncmp(ra.pos[1], "oras://", 7) != 0))) {
		cli_args_free(&ra);
		char what[160];
		snprintf(what, sizeof(what),
		         "'remote %s' without a docker:// or oras:// URI is for a library "
		         "endpoint, which sifu does not have",
		         sub);
		return not_here(what, "name the registry: sifu remote login -u NAME docker://HOST",
		                err);
	}
	r = cmd_registry(&reg, &ra, err);
	cli_args_free(&ra);
	return r;
}

int cmd_keyserver(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
{
	if (asks_help(a)) {
		cli_print_verb_help(stdout, v);
		return 0;
	}
	return not_here("'keyserver' does not apply to sifu: it has no keyserver endpoints",
	                "exchange public keys as files: sifu key export / sifu key import", err);
}

int cmd_search(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
{
	if (asks_help(a)) {
		cli_print_verb_help(stdout, v);
		return 0;
	}
	return not_here("'search' does not apply to sifu: it has no container library to search",
	                "find images in your registry's web interface or with 'skopeo "
	                "list-tags docker://REGISTRY/NAME', then sifu pull docker://...",
	                err);
}

int cmd_plugin(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
{
	if (asks_help(a)) {
		cli_print_verb_help(stdout, v);
		return 0;
	}
	return not_here("'plugin' does not apply to sifu: it has no plugins (Apptainer's are Go "
	                "code built into Apptainer)",
	                "what a plugin would add goes on the command line or in the "
	                "environment: --bind, --env, APPTAINERENV_NAME",
	                err);
}
