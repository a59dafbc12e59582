/* SPDX-License-Identifier: BSD-3-Clause */
/* `sifu pull [OUTPUT] URI` */
#include "cli.h"
#include "fetch.h"
#include "sif.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>

int cmd_pull(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);

/* Read one line from the terminal, without echo for secrets. */
static char *prompt(const char *what, bool secret)
{
	_cleanup_fclose_ FILE *tty = fopen("/dev/tty", "r+e");
	if (!tty)
		return NULL;
	fprintf(tty, "%s: ", what);
	fflush(tty);
	struct termios old, quiet;
	bool restore = false;
	if (secret && tcgetattr(fileno(tty), &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		restore = tcsetattr(fileno(tty), TCSAFLUSH, &quiet) == 0;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, tty);
	if (restore) {
		tcsetattr(fileno(tty), TCSAFLUSH, &old);
		fputc('\n', tty);
	}
	if (n < 0) {
		free(line);
		return NULL;
	}
	line[strcspn(line, "\r\n")] = 0;
	return line;
}

/* Shared with the actions (exec docker://…): the options that say how to
 * reach a source. */
int cli_pull_opts(struct cli_args *a, struct fetch_pull_opts *o, char **user, char **pass,
                  struct sifu_err *err)
{
	memset(o, 0, sizeof(*o));
	fetch_platform_host(&o->platform);
	if (a->set[O_PLATFORM] && fetch_platform_parse(a->val[O_PLATFORM], &o->platform, err) < 0)
		return -EINVAL;
	if (a->set[O_ARCH]) {
		struct fetch_platform p;
		if (fetch_platform_parse(a->val[O_ARCH], &p, err) < 0)
			return -EINVAL;
		snprintf(o->platform.arch, sizeof(o->platform.arch), "%s", p.arch);
		if (!a->set[O_PLATFORM])
			o->platform.variant[0] = 0;
	}
	o->platform_given = a->set[O_PLATFORM] || a->set[O_ARCH];
	if (a->set[O_COMPRESSION] &&
	    sq_parse_compression(a->val[O_COMPRESSION], &o->squash, err) < 0)
		return -EINVAL;
	o->disable_cache = a->set[O_DISABLE_CACHE];
	cli_cache_loc(&o->cache);
	o->nohttps = a->set[O_NOHTTPS];
	o->insecure = a->set[O_INSECURE];
	o->authfile = a->set[O_AUTHFILE] ? a->val[O_AUTHFILE] : NULL;
	o->quiet = sifu_log_get_level() < SIFU_LOG_INFO; /* -q, -s */
	const struct cli_env *env = cli_env_get();
	o->ca_bundle = env->ca_bundle;
	o->home = env->home;
	o->configdir = env->configdir;
	o->docker_config = env->docker_config;
	o->retries =
	    env->pull_retries ? (int)strtol(env->pull_retries, NULL, 10) : FETCH_RETRIES_DEFAULT;
	o->sif_write = cli_sif_write();
	if (a->set[O_DOCKER_LOGIN]) {
		*user = prompt("Username", false);
		*pass = *user ? prompt("Password", true) : NULL;
		if (!*user || !*pass) {
			sifu_err_set(err, SIFU_E_USAGE, 0,
			             "--docker-login needs a terminal to ask on");
			sifu_err_hint(err,
			              "set SIFU_DOCKER_USERNAME and SIFU_DOCKER_PASSWORD instead");
			return -EINVAL;
		}
	} else {
		if (a->set[O_DOCKER_USERNAME])
			*user = sifu_xstrdup(a->val[O_DOCKER_USERNAME]);
		if (a->set[O_DOCKER_PASSWORD])
			*pass = sifu_xstrdup(a->val[O_DOCKER_PASSWORD]);
	}
	o->username = *user;
	o->password = *pass;
	return 0;
}

/* The file a pull writes, chosen as Apptainer's pull does: --name, else
 * the first of two words, else a name made from the URI; then --dir in
 * front.  Singularity 3.x scripts and workflow tools (cwltool, Snakemake,
 * Nextflow) use every one of these forms. */
static char *pull_output(struct cli_args *a, const char *uri, struct sifu_err *err)
{
	_cleanup_free_ char *name = NULL;
	if (a->set[O_PULL_NAME] && *a->val[O_PULL_NAME]) {
		name = sifu_xstrdup(a->val[O_PULL_NAME]);
	} else if (a->npos == 2) {
		name = sifu_xstrdup(a->pos[0]);
	} else {
		struct fetch_ref ref;
		if (!strstr(uri, ":")) {
			sifu_err_set(err, SIFU_E_USAGE, 0, "no transport type URI supplied: \"%s\"",
			             uri);
			sifu_err_hint(err, "e.g. docker://%s", uri);
			return NULL;
		}
		if (fetch_ref_parse(uri, &ref, err) < 0)
			return NULL;
		name = fetch_ref_default_name(&ref);
		fetch_ref_free(&ref);
	}
	if (a->set[O_PULL_DIR] && *a->val[O_PULL_DIR])
		return sifu_xasprintf("%s/%s", a->val[O_PULL_DIR], name);
	return TAKE_PTR(name);
}

int cmd_pull(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
{
	if (a->npos < 1 || a->npos > 2) {
		sifu_err_set(err, SIFU_E_USAGE, 0, "pull takes [OUTPUT] URI");
		sifu_err_hint(err, "e.g. sifu pull alpine.sif docker://alpine");
		return -EINVAL;
	}
	const char *uri = a->pos[a->npos - 1];
	_cleanup_free_ char *out = pull_output(a, uri, err);
	if (!out)
		return -EINVAL;
	struct stat st;
	if (!a->set[O_FORCE] && lstat(out, &st) == 0) {
		/* Apptainer's words, which scripts may look for */
		sifu_err_set(err, SIFU_E_USAGE, EEXIST,
		             "image file already exists: \"%s\" - will not overwrite", out);
		sifu_err_hint(err, "use --force to overwrite it");
		return -EEXIST;
	}
	/* --force: still never a directory, nor another user's symlink */
	if (sif_output_check(out, err) < 0)
		return -EINVAL;
	struct fetch_pull_opts o;
	_cleanup_free_ char *user = NULL;
	_cleanup_free_ char *pass = NULL;
	if (cli_pull_opts(a, &o, &user, &pass, err) < 0)
		return -EINVAL;
	int r = fetch_pull(uri, out, &o, err);
	if (r < 0)
		return r;
	if (!o.quiet)
		sifu_info("Wrote %s", out);
	return 0;
}
