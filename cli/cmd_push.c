/* SPDX-License-Identifier: BSD-3-Clause */
/* `sifu push IMAGE.sif oras://HOST/REPO[:TAG]` (Apptainer's
 * cmd/internal/cli/push.go: library:// and oras://; sifu has only the
 * second). */
#include "cli.h"
#include "fetch.h"

int cmd_push(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);

/* Destinations Apptainer's push refuses or sifu does not have, each with
 * its own line: a user coming from `docker push` tries docker:// first. */
static int refuse_dest(const char *dest, struct sifu_err *err)
{
	if (strncmp(dest, "docker://", 9) == 0) {
		sifu_err_set(err, SIFU_E_UNSUPPORTED, 0,
		             "push does not send to docker://: a SIF goes to a registry as an "
		             "ORAS artifact, oras://%s",
		             dest + 9);
		sifu_err_hint(err, "Apptainer pushes only to oras:// and library://");
		return -EINVAL;
	}
	if (strncmp(dest, "library://", 10) == 0) {
		sifu_err_set(err, SIFU_E_UNSUPPORTED, 0,
		             "library:// does not apply: sifu has no container library");
		sifu_err_hint(err, "push to an OCI registry: oras://HOST/REPO:TAG");
		return -EINVAL;
	}
	if (strncmp(dest, "oras://", 7) != 0) {
		sifu_err_set(err, SIFU_E_USAGE, 0, "push sends to oras://HOST/REPO[:TAG], not %s",
		             dest);
		return -EINVAL;
	}
	return 0;
}

/* --annotation KEY=VALUE and --description TEXT as Apptainer's push.go
 * turns them into manifest annotations; a KEY without a value is left out
 * with a warning, as there.  DESC is the description's KEY=VALUE, or NULL.
 * The strings are borrowed; free the array. */
static char **push_annotations(struct cli_args *a, char *desc)
{
	char **kv = sifu_xcalloc(a->nlist[O_PUSH_ANNOTATION] + 2, sizeof(*kv));
	size_t n = 0;
	for (size_t i = 0; i < a->nlist[O_PUSH_ANNOTATION]; i++) {
		char *item = a->list[O_PUSH_ANNOTATION][i];
		if (strchr(item, '='))
			kv[n++] = item;
		else
			sifu_log(SIFU_LOG_WARN, "Value missing for \"%s\", not setting", item);
	}
	if (desc)
		kv[n++] = desc;
	return kv;
}

int cmd_push(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
{
	if (a->npos != 2) {
		sifu_err_set(err, SIFU_E_USAGE, 0, "push takes IMAGE.sif oras://HOST/REPO[:TAG]");
		sifu_err_hint(err,
		              "e.g. sifu push lolcow.sif oras://registry.example.org/me/lolcow:1");
		return -EINVAL;
	}
	if (refuse_dest(a->pos[1], err) < 0)
		return -EINVAL;
	struct fetch_pull_opts o;
	_cleanup_free_ char *user = NULL;
	_cleanup_free_ char *pass = NULL;
	if (cli_pull_opts(a, &o, &user, &pass, err) < 0)
		return -EINVAL;
	_cleanup_free_ char *desc = a->set[O_PUSH_DESCRIPTION]
	                                ? sifu_xasprintf("org.opencontainers.image.description=%s",
	                                                 a->val[O_PUSH_DESCRIPTION])
	                                : NULL;
	_cleanup_free_ char **kv = push_annotations(a, desc);
	char digest[FETCH_HEX_LEN + 8];
	int r = fetch_push(a->pos[0], a->pos[1], &o, kv, digest, err);
	if (r < 0)
		return r;
	if (!o.quiet) {
		sifu_info("Digest: %s", digest);
		sifu_info("Upload complete");
	}
	return 0;
}
