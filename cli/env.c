/* SPDX-License-Identifier: BSD-3-Clause */
/* cli/env.c: the one place sifu reads its environment (besides the options
 * that options.def maps to variables).  Modules read none: the CLI copies
 * what they need into their option structs, which is also what lets a
 * launch's settings travel to another process (an instance keeper). */
#include "cli.h"

#include <pwd.h>

static const char *first(cli_getenv_fn get, const char *const names[])
{
	for (size_t i = 0; names[i]; i++) {
		const char *v = get(names[i]);
		if (v && *v)
			return v;
	}
	return NULL;
}

#define FIRST(...) first(get, (const char *const[]){__VA_ARGS__, NULL})

void cli_env_fill(struct cli_env *e, cli_getenv_fn get)
{
	*e = (struct cli_env){
	    .home = FIRST("HOME"),
	    .configdir = FIRST("APPTAINER_CONFIGDIR", "SINGULARITY_CONFIGDIR"),
	    .user = FIRST("USER"),
	    .path = FIRST("PATH"),
	    .tmpdir = FIRST("TMPDIR"),
	    .build_tmpdir =
	        FIRST("SIFU_TMPDIR", "APPTAINER_TMPDIR", "SINGULARITY_TMPDIR", "TMPDIR"),
	    .xdg_config_home = FIRST("XDG_CONFIG_HOME"),
	    .xdg_cache_home = FIRST("XDG_CACHE_HOME"),
	    .cachedir = FIRST("SIFU_CACHEDIR", "APPTAINER_CACHEDIR", "SINGULARITY_CACHEDIR"),
	    .block_cache = get("SIFU_BLOCK_CACHE"), /* "" means off: keep it */
	    .docker_config = FIRST("DOCKER_CONFIG"),
	    .ca_bundle = FIRST("SIFU_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"),
	    .pull_retries = FIRST("SIFU_PULL_RETRIES"),
	    .source_date_epoch = FIRST("SOURCE_DATE_EPOCH"),
	    .busybox = FIRST("SIFU_BUSYBOX"),
	    .debootstrap = FIRST("SIFU_DEBOOTSTRAP"),
	    .debootstrap_include = FIRST("INCLUDE"),
	    .keysdir = FIRST("SIFU_KEYSDIR"),
	    .passphrase = get("SIFU_PASSPHRASE"), /* "" is a passphrase */
	    .key_algo = FIRST("SIFU_KEY_ALGO"),
	    .no_color = get("NO_COLOR"),
	    .debug = FIRST("APPTAINER_DEBUG", "SINGULARITY_DEBUG"),
	    .verbose = FIRST("APPTAINER_VERBOSE", "SINGULARITY_VERBOSE"),
	    .quiet = FIRST("APPTAINER_QUIET", "SINGULARITY_QUIET"),
	    .silent = FIRST("APPTAINER_SILENT", "SINGULARITY_SILENT"),
	    .nocolor = FIRST("APPTAINER_NOCOLOR", "SINGULARITY_NOCOLOR"),
	    .messagelevel = FIRST("APPTAINER_MESSAGELEVEL", "SINGULARITY_MESSAGELEVEL"),
	    .columns = FIRST("COLUMNS"),
	    .no_openat2 = FIRST("SIFU_NO_OPENAT2"),
	};
	/* Apptainer's global --nocolor as a variable: a switch, so "false"
	 * keeps colour, where NO_COLOR turns it off whatever its value */
	const char *nc = FIRST("SIFU_NOCOLOR", "APPTAINER_NOCOLOR", "SINGULARITY_NOCOLOR");
	bool off;
	if (!e->no_color && nc && cli_parse_bool(nc, &off) && off)
		e->no_color = nc;
}

static const char *real_getenv(const char *name)
{
	return getenv(name);
}

const struct cli_env *cli_env_get(void)
{
	static struct cli_env env;
	static bool filled;
	if (!filled) {
		cli_env_fill(&env, real_getenv);
		/* HOME unset (env -i, some batch systems): the password
		 * database's home, where Apptainer looks too (user.Current) */
		struct passwd *pw = env.home ? NULL : getpwuid(geteuid());
		if (pw && pw->pw_dir && *pw->pw_dir == '/')
			env.home = pw->pw_dir;
		/* registry logins and public keys live there (Apptainer's
		 * syfs.ConfigDir), kept for the whole run */
		static char dflt[4096];
		if (!env.configdir && env.home) {
			snprintf(dflt, sizeof(dflt), "%s/.apptainer", env.home);
			env.configdir = dflt;
		}
		filled = true;
	}
	return &env;
}

const char *cli_tmp_base(void)
{
	const char *t = cli_env_get()->tmpdir;
	return t && *t == '/' ? t : "/tmp";
}
