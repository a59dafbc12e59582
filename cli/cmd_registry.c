/* SPDX-License-Identifier: BSD-3-Clause */
/* `sifu registry login|logout docker://HOST`: credentials in the docker
 * config.json format, in ~/.apptainer/docker-config.json as Apptainer keeps
 * them (or --authfile), where pull finds them. */
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
	const char *home = cli_env_get()->home;
	return sifu_xasprintf("%s/.apptainer/docker-config.json", home ? home : ".");
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

int cmd_registry(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
{
	if (a->npos != 2 || (strcmp(a->pos[0], "login") && strcmp(a->pos[0], "logout"))) {
		sifu_err_set(err, SIFU_E_USAGE, 0, "registry takes login|logout docker://HOST");
		return -EINVAL;
	}
	const char *uri = a->pos[1];
	if (strncmp(uri, "docker://", 9) == 0)
		uri += 9;
	_cleanup_free_ char *host = sifu_xstrndup(uri, strcspn(uri, "/"));
	if (!*host) {
		sifu_err_set(err, SIFU_E_USAGE, 0, "registry: no host in \"%s\"", a->pos[1]);
		return -EINVAL;
	}
	if (!strcmp(host, "docker.io") || !strcmp(host, "index.docker.io")) {
		free(host);
		host = sifu_xstrdup("registry-1.docker.io");
	}
	_cleanup_free_ char *path = config_path(a);
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	if (!j)
		j = json_object();
	json_t *auths = json_object_get(j, "auths");
	if (!json_is_object(auths)) {
		auths = json_object();
		json_object_set_new(j, "auths", auths);
	}
	int r = 0;
	if (!strcmp(a->pos[0], "logout")) {
		if (json_object_del(auths, host) < 0) {
			sifu_err_set(err, SIFU_E_NOTFOUND, 0, "not logged in to %s (in %s)", host,
			             path);
			r = -ENOENT;
		} else {
			r = save(path, j, err);
		}
		json_decref(j);
		return r;
	}
	if (!a->set[O_USERNAME]) {
		json_decref(j);
		sifu_err_set(err, SIFU_E_USAGE, 0, "registry login needs --username");
		sifu_err_hint(err, "e.g. sifu registry login -u NAME --password-stdin docker://%s",
		              host);
		return -EINVAL;
	}
	_cleanup_free_ char *pw = read_secret(a->set[O_PASSWORD_STDIN]);
	if (!pw) {
		json_decref(j);
		sifu_err_set(err, SIFU_E_USAGE, 0, "no password given");
		sifu_err_hint(err, "pipe it in with --password-stdin");
		return -EINVAL;
	}
	_cleanup_free_ char *up = sifu_xasprintf("%s:%s", a->val[O_USERNAME], pw);
	_cleanup_free_ char *b64 = sifu_xmalloc(4 * ((strlen(up) + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)up, (int)strlen(up));
	explicit_bzero(up, strlen(up));
	json_object_set_new(auths, host, json_pack("{s:s}", "auth", b64));
	r = save(path, j, err);
	json_decref(j);
	if (r == 0)
		fprintf(stderr, "INFO:    Token stored in %s\n", path);
	return r;
}
