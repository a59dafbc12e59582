/* SPDX-License-Identifier: BSD-3-Clause */
/* `sifu registry login|logout docker://HOST`, `registry list`: credentials
 * in the docker config.json format, in ~/.apptainer/docker-config.json as
 * Apptainer keeps them (or --authfile), where pull finds them.  A login is
 * checked against the registry before it is stored. */
#include "cli.h"
#include "fetch.h"

#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <termios.h>

int cmd_registry(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);

static char *config_path(struct cli_args *a)
{
	if (a->set[O_AUTHFILE])
		return sifu_xstrdup(a->val[O_AUTHFILE]);
	const char *dir = cli_env_get()->configdir;
	return sifu_xasprintf("%s/docker-config.json", dir ? dir : "./.apptainer");
}

static int save(const char *path, json_t *j, struct sifu_err *err)
{
	_cleanup_free_ char *dir = sifu_xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		for (char *p = dir + 1; *p; p++)
			if (*p == '/') {
				*p = 0;
				mkdir(dir, 0700);
				*p = '/';
			}
		mkdir(dir, 0700);
	}
	char *s = json_dumps(j, JSON_INDENT(2));
	_cleanup_free_ char *text = sifu_xasprintf("%s\n", s);
	free(s);
	/* the temporary file is 0600 from the start: it holds the secrets too */
	int r = sifu_atomic_write(AT_FDCWD, path, text, strlen(text), 0600, err);
	return r < 0 ? sifu_err_wrap(err, "writing %s", path) : 0;
}

static char *read_secret(bool from_stdin)
{
	char *line = NULL;
	size_t cap = 0;
	FILE *f = from_stdin ? stdin : fopen("/dev/tty", "r+e");
	if (!f)
		return NULL;
	struct termios old, q;
	bool restore = false;
	if (!from_stdin) {
		fputs("Password / Token: ", f);
		fflush(f);
		if (tcgetattr(fileno(f), &old) == 0) {
			q = old;
			q.c_lflag &= ~(tcflag_t)ECHO;
			restore = tcsetattr(fileno(f), TCSAFLUSH, &q) == 0;
		}
	}
	ssize_t n = getline(&line, &cap, f);
	if (restore) {
		tcsetattr(fileno(f), TCSAFLUSH, &old);
		fputc('\n', f);
	}
	if (!from_stdin)
		fclose(f);
	if (n < 0) {
		free(line);
		return NULL;
	}
	line[strcspn(line, "\r\n")] = 0;
	return line;
}

/* HOST of "docker://HOST[/...]" or "oras://HOST[/...]", Docker Hub's
 * aliases folded into the name pull looks up; NULL with ERR set.  A bare
 * HOST is refused, as Apptainer's registry login refuses it (e2e
 * registry "login without scheme KO"): the scheme says what the login is for. */
static char *registry_host(const char *verb, const char *uri, struct sifu_err *err)
{
	const char *h = NULL;
	if (strncmp(uri, "docker://", 9) == 0)
		h = uri + 9;
	else if (strncmp(uri, "oras://", 7) == 0)
		h = uri + 7;
	if (!h) {
		sifu_err_set(err, SIFU_E_USAGE, 0, "%s: \"%s\" is not a docker:// or oras:// URI",
		             verb, uri);
		sifu_err_hint(err, "name the registry as docker://%s", uri);
		return NULL;
	}
	char *host = sifu_xstrndup(h, strcspn(h, "/"));
	if (!*host) {
		free(host);
		sifu_err_set(err, SIFU_E_USAGE, 0, "%s: no host in \"%s\"", verb, uri);
		return NULL;
	}
	if (!strcmp(host, "docker.io") || !strcmp(host, "index.docker.io")) {
		free(host);
		host = sifu_xstrdup("registry-1.docker.io");
	}
	return host;
}

/* The config file's "auths" object (made when missing); *J holds the file. */
static json_t *load_auths(const char *path, json_t **j)
{
	json_error_t je;
	*j = json_load_file(path, 0, &je);
	if (!*j)
		*j = json_object();
	json_t *auths = json_object_get(*j, "auths");
	if (!json_is_object(auths)) {
		auths = json_object();
		json_object_set_new(*j, "auths", auths);
	}
	return auths;
}

/* The user name in an "auths" entry ("" when it cannot be read). */
static char *auth_user(json_t *entry)
{
	const char *a = json_string_value(json_object_get(entry, "auth"));
	size_t n = a ? strlen(a) : 0;
	unsigned char *dec = sifu_xcalloc(1, n + 4);
	if (n && EVP_DecodeBlock(dec, (const unsigned char *)a, (int)n) >= 0)
		dec[strcspn((char *)dec, ":")] = 0;
	else
		dec[0] = 0;
	return (char *)dec;
}

/* The password: -p, else --password-stdin, else asked on the terminal. */
static char *login_secret(struct cli_args *a, struct sifu_err *err)
{
	char *pw = a->set[O_REG_PASSWORD] ? sifu_xstrdup(a->val[O_REG_PASSWORD])
	                                  : read_secret(a->set[O_PASSWORD_STDIN]);
	if (pw && *pw)
		return pw;
	free(pw);
	sifu_err_set(err, SIFU_E_USAGE, 0, "registry login: no password given");
	sifu_err_hint(err, "pipe it in with --password-stdin");
	return NULL;
}

/* Ask the registry whether USER and PW are good before anything is stored:
 * a mistyped password must not replace credentials that work. */
static int check_login(struct cli_args *a, const char *host, const char *user, const char *pw,
                       struct sifu_err *err)
{
	struct fetch_pull_opts o;
	_cleanup_free_ char *u = NULL, *p = NULL;
	if (cli_pull_opts(a, &o, &u, &p, err) < 0)
		return -EINVAL;
	o.username = user;
	o.password = pw;
	int r = fetch_registry_check_login(host, &o, err);
	if (r == 1)
		sifu_warning("registry %s lets anyone in (GET /v2/ needs no credentials): "
		             "they are stored unchecked",
		             host);
	return r < 0 ? r : 0;
}

static int do_login(struct cli_args *a, const char *host, struct sifu_err *err)
{
	const char *user = a->set[O_USERNAME] ? a->val[O_USERNAME] : "";
	if (!*user) {
		sifu_err_set(err, SIFU_E_USAGE, 0, "registry login needs --username");
		sifu_err_hint(err, "e.g. sifu registry login -u NAME --password-stdin docker://%s",
		              host);
		return -EINVAL;
	}
	_cleanup_free_ char *pw = login_secret(a, err);
	if (!pw)
		return -EINVAL;
	int r = check_login(a, host, user, pw, err);
	if (r < 0) {
		explicit_bzero(pw, strlen(pw));
		return r;
	}
	_cleanup_free_ char *path = config_path(a);
	json_t *j;
	json_t *auths = load_auths(path, &j);
	_cleanup_free_ char *up = sifu_xasprintf("%s:%s", user, pw);
	explicit_bzero(pw, strlen(pw));
	_cleanup_free_ char *b64 = sifu_xmalloc(4 * ((strlen(up) + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)up, (int)strlen(up));
	explicit_bzero(up, strlen(up));
	json_object_set_new(auths, host, json_pack("{s:s}", "auth", b64));
	explicit_bzero(b64, strlen(b64));
	r = save(path, j, err);
	json_decref(j);
	if (r == 0)
		sifu_info("Token stored in %s", path);
	return r;
}

/* As Apptainer's logout: no credentials to remove is a warning, not an
 * error (e2e registry "logout KO" exits 0); either way the line says what
 * happened to which file. */
static int do_logout(struct cli_args *a, const char *host, struct sifu_err *err)
{
	_cleanup_free_ char *path = config_path(a);
	json_t *j;
	json_t *auths = load_auths(path, &j);
	json_t *entry = json_object_get(auths, host);
	if (!entry) {
		json_decref(j);
		sifu_warning("no credentials for %s are stored in %s: nothing removed", host, path);
		return 0;
	}
	_cleanup_free_ char *user = auth_user(entry);
	json_object_del(auths, host);
	int r = save(path, j, err);
	json_decref(j);
	if (r == 0)
		sifu_info("Logout succeeded: removed the credentials%s%s%s for %s from %s",
		          *user ? " of '" : "", user, *user ? "'" : "", host, path);
	return r;
}

/* Registries with stored credentials, one URI a line on stdout. */
static int do_list(struct cli_args *a)
{
	_cleanup_free_ char *path = config_path(a);
	json_t *j;
	json_t *auths = load_auths(path, &j);
	const char *host;
	json_t *entry;
	json_object_foreach(auths, host, entry)
	{
		_cleanup_free_ char *user = auth_user(entry);
		printf("docker://%s%s%s\n", host, *user ? "  " : "", user);
	}
	if (json_object_size(auths) == 0)
		sifu_info("no registry credentials are stored in %s", path);
	json_decref(j);
	return 0;
}

int cmd_registry(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
{
	const char *sub = a->npos > 0 ? a->pos[0] : "";
	bool list = !strcmp(sub, "list");
	if ((list && a->npos != 1) ||
	    (!list && (a->npos != 2 || (strcmp(sub, "login") && strcmp(sub, "logout"))))) {
		sifu_err_set(err, SIFU_E_USAGE, 0, "%s takes login|logout docker://HOST, or list",
		             v->name);
		return -EINVAL;
	}
	if (list)
		return do_list(a);
	_cleanup_free_ char *host = registry_host(sub, a->pos[1], err);
	if (!host)
		return -EINVAL;
	return !strcmp(sub, "login") ? do_login(a, host, err) : do_logout(a, host, err);
}
