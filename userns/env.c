/* SPDX-License-Identifier: BSD-3-Clause */
/* The payload's environment, built as Apptainer builds it (see its "Environment
 * Variable Precedence" and its action script): host variables pass except the
 * ones it resets; the image's /.singularity.d/env/[0-9]*.sh are sourced over
 * them; right after 99-base.sh, --env-file, APPTAINERENV_/SINGULARITYENV_ and
 * --env override, in that order, each value evaluated by the shell inside
 * double quotes; then LD_LIBRARY_PATH is completed.  Pure. */
#include "userns.h"

#include <ctype.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define ENV_SCRIPT   "/.singularity.d/env/91-environment.sh"
#define LIBS_DIR     "/.singularity.d/libs"

/* whether the K bytes at KEY are one of NAMES */
static bool key_in(const char *const *names, const char *key, size_t k)
{
	for (const char *const *n = names; *n; n++)
		if (strlen(*n) == k && !memcmp(key, *n, k))
			return true;
	return false;
}

/* host variables never passed in (Apptainer resets or consumes them) */
static bool host_dropped(const char *kv)
{
	static const char *const prefixes[] = {"APPTAINER_", "SINGULARITY_", "APPTAINERENV_",
	                                       "SINGULARITYENV_", NULL};
	static const char *const names[] = {"PATH",           "HOME", "LD_LIBRARY_PATH", "PS1",
	                                    "PROMPT_COMMAND", "PWD",  "OLDPWD",          NULL};
	for (const char *const *p = prefixes; *p; p++)
		if (!strncmp(kv, *p, strlen(*p)))
			return true;
	return key_in(names, kv, strcspn(kv, "="));
}

/* Names no user source may set (alwaysOmitKeys in Apptainer's
 * internal/pkg/util/env/create.go, which --env and --env-file reach as
 * APPTAINERENV_ too): HOME is the home that was mounted, the shell and app
 * names are the runtime's own.  Apptainer warns and goes on without them,
 * and so does sifu. */
static bool override_refused(const char *key, size_t k)
{
	static const char *const names[] = {"HOME",
	                                    "APPTAINER_SHELL",
	                                    "APPTAINER_APPNAME",
	                                    "SINGULARITY_SHELL",
	                                    "SINGULARITY_APPNAME",
	                                    NULL};
	return key_in(names, key, k);
}

/* O's value is the variable's, not evaluated in the container */
static bool is_literal(const struct ns_env_override *o)
{
	return o->op == NS_ENV_LITERAL || o->literal;
}

static void add_ov(struct ns_env *e, enum ns_env_op op, const char *key, size_t klen,
                   const char *value)
{
	e->ov = sifu_xrealloc(e->ov, (e->nov + 1) * sizeof(*e->ov));
	struct ns_env_override *o = &e->ov[e->nov++];
	o->op = op;
	o->literal = false;
	o->key = sifu_xstrndup(key, klen);
	o->value = sifu_xstrdup(value);
}

/* KEY=VALUE from a user source; PREPEND_PATH / APPEND_PATH are special. */
static int add_user_var(struct ns_env *e, const char *kv, bool no_eval, const char *what,
                        struct sifu_err *err)
{
	const char *eq = strchr(kv, '=');
	if (!eq || eq == kv) {
		sifu_err_set(err, SIFU_E_USAGE, EINVAL, "%s: '%s' is not NAME=VALUE", what, kv);
		sifu_err_hint(err, "write NAME=VALUE, e.g. --env LANG=C");
		return -EINVAL;
	}
	size_t k = (size_t)(eq - kv);
	for (size_t i = 0; i < k; i++)
		if (!(kv[i] == '_' || (kv[i] >= 'A' && kv[i] <= 'Z') ||
		      (kv[i] >= 'a' && kv[i] <= 'z') || (i && kv[i] >= '0' && kv[i] <= '9'))) {
			sifu_err_set(err, SIFU_E_USAGE, EINVAL,
			             "%s: '%.*s' is not a valid variable name", what, (int)k, kv);
			sifu_err_hint(
			    err, "names are letters, digits and '_', not starting with a digit");
			return -EINVAL;
		}
	if (override_refused(kv, k)) {
		/* Apptainer's words; a prefix names the variable in full */
		size_t wl = strlen(what);
		sifu_log(SIFU_LOG_WARN,
		         "Overriding %.*s environment variable with %s%.*s is not permitted",
		         (int)k, kv, what, wl && what[wl - 1] == '_' ? (int)k : 0, kv);
		return 0;
	}
	enum ns_env_op op = NS_ENV_SET;
	if (k == 12 && !memcmp(kv, "PREPEND_PATH", 12))
		op = NS_ENV_PREPEND_PATH;
	else if (k == 11 && !memcmp(kv, "APPEND_PATH", 11))
		op = NS_ENV_APPEND_PATH;
	add_ov(e, op, kv, k, eq + 1);
	/* Apptainer's --no-eval single-quotes the export (injectEnvHandler):
	 * the value is the variable's, with the path joins and the bound
	 * libraries after LD_LIBRARY_PATH still done */
	e->ov[e->nov - 1].literal = no_eval;
	return 0;
}

/* VALUE as one shell word, in place: quotes and one level of backslashes
 * removed; "$" stays, for the evaluation in the container.  What follows the
 * word (a comment) is dropped.  False for an unterminated quote. */
static bool shell_word(char *v)
{
	char *o = v;
	for (char *p = v; *p;) {
		if (*p == '\'') {
			char *end = strchr(p + 1, '\'');
			if (!end)
				return false;
			memmove(o, p + 1, (size_t)(end - p - 1));
			o += end - p - 1;
			p = end + 1;
		} else if (*p == '"') {
			for (p++; *p != '"'; p++) {
				if (!*p)
					return false;
				/* in double quotes a backslash escapes only these */
				if (*p == '\\' && p[1] && strchr("$`\"\\\n", p[1]))
					p++;
				*o++ = *p;
			}
			p++;
		} else if (*p == '\\' && p[1]) {
			*o++ = p[1];
			p += 2;
		} else if (*p == ' ' || *p == '\t') {
			break;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	return true;
}

int ns_env_file_parse(const char *text, struct ns_strv *out, struct sifu_err *err)
{
	const char *p = text;
	unsigned line = 0;
	while (*p) {
		size_t n = strcspn(p, "\n");
		line++;
		_cleanup_free_ char *l = sifu_xstrndup(p, n);
		char *s = l + strspn(l, " \t");
		size_t e = strlen(s);
		while (e && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r'))
			s[--e] = '\0';
		if (!strncmp(s, "export ", 7))
			s += 7 + strspn(s + 7, " \t");
		if (*s && *s != '#') {
			char *eq = strchr(s, '=');
			if (!eq || eq == s) {
				sifu_err_set(err, SIFU_E_USAGE, EINVAL,
				             "env file line %u: '%s' is not NAME=VALUE", line, s);
				sifu_err_hint(err, "each line is NAME=VALUE; '#' starts a comment");
				return -EINVAL;
			}
			if (!shell_word(eq + 1)) {
				sifu_err_set(err, SIFU_E_USAGE, EINVAL,
				             "env file line %u: unterminated quote in '%s'", line,
				             s);
				sifu_err_hint(err, "close the quote on the same line");
				return -EINVAL;
			}
			ns_strv_push(out, s);
		}
		p += n;
		if (*p)
			p++;
	}
	return 0;
}

/* --no-env: Apptainer adds the names to the keys it omits from the host
 * (SetContainerEnv in its env package); the proxy variables and TERM, which
 * it always passes, stay, and an APPTAINERENV_ variable still sets a name. */
static bool host_blocked(const struct ns_env_spec *s, const char *kv)
{
	static const char *const always[] = {
	    "TERM",     "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy",
	    "NO_PROXY", "all_proxy",  "ALL_PROXY",  "ftp_proxy",   "FTP_PROXY"};
	size_t k = strcspn(kv, "=");
	for (size_t i = 0; i < ARRAY_SIZE(always); i++)
		if (strlen(always[i]) == k && !memcmp(kv, always[i], k))
			return false;
	for (char *const *n = s->no_env; n && *n; n++)
		if (strlen(*n) == k && !memcmp(kv, *n, k))
			return true;
	return false;
}

static void base_env(const struct ns_env_spec *s, struct ns_strv *b)
{
	if (!s->cleanenv) {
		for (char *const *h = s->host; h && *h; h++)
			if (strchr(*h, '=') && !host_dropped(*h) && !host_blocked(s, *h))
				ns_strv_push(b, *h);
	} else {
		/* what Apptainer's --cleanenv keeps */
		for (char *const *h = s->host; h && *h; h++)
			if (!strncmp(*h, "TERM=", 5))
				ns_strv_push(b, *h);
		ns_env_set(b, "LANG", "C");
	}
	/* LD_LIBRARY_PATH starts unset: the image's 99-base.sh (or the script,
	 * for an image without one) gives it /.singularity.d/libs */
	ns_env_set(b, "PATH", DEFAULT_PATH);
	ns_env_set(b, "HOME", s->home);
	/* in the process's environment from the start, not injected after
	 * 99-base.sh: the image's 95-apps.sh reads it (Apptainer's launcher
	 * sets it the same way) */
	if (s->app) {
		ns_env_set(b, "APPTAINER_APPNAME", s->app);
		ns_env_set(b, "SINGULARITY_APPNAME", s->app);
	}
}

static void runtime_vars(const struct ns_env_spec *s, struct ns_env *e)
{
	static const char *const prefixes[] = {"APPTAINER_", "SINGULARITY_"};
	for (size_t i = 0; i < 2; i++) {
		const char *p = prefixes[i];
		char key[64];
#define RT(name, val)                                               \
	do {                                                        \
		snprintf(key, sizeof(key), "%s%s", p, name);        \
		add_ov(e, NS_ENV_LITERAL, key, strlen(key), (val)); \
	} while (0)
		RT("CONTAINER", s->container);
		RT("NAME", s->name);
		RT("COMMAND", s->command);
		RT("ENVIRONMENT", ENV_SCRIPT);
		RT("BIND", s->bind ? s->bind : "");
		/* as Apptainer's launcher, for runscripts that ask (its OCI
		 * runscript then runs CMD / ENTRYPOINT without eval) */
		if (s->no_eval)
			RT("NO_EVAL", "1");
#undef RT
	}
}

/* APPTAINERENV_X beats SINGULARITYENV_X (Apptainer's order). */
static int prefixed_vars(const struct ns_env_spec *s, struct ns_env *e, struct sifu_err *err)
{
	static const char *const prefixes[] = {"SINGULARITYENV_", "APPTAINERENV_"};
	for (size_t i = 0; i < 2; i++) {
		size_t pl = strlen(prefixes[i]);
		for (char *const *h = s->host; h && *h; h++)
			if (!strncmp(*h, prefixes[i], pl) && (*h)[pl] && (*h)[pl] != '=') {
				int r = add_user_var(e, *h + pl, s->no_eval, prefixes[i], err);
				if (r < 0)
					return r;
			}
	}
	return 0;
}

int ns_env_build(const struct ns_env_spec *s, struct ns_env *out, struct sifu_err *err)
{
	memset(out, 0, sizeof(*out));
	base_env(s, &out->base);
	add_ov(out, NS_ENV_LITERAL, "PS1", 3, "Sifu> ");
	int r = 0;
	for (size_t k = 0; r == 0 && s->env_files && s->env_files[k]; k++) {
		struct ns_strv f = {0};
		const char *name = s->env_file_names ? s->env_file_names[k] : NULL;
		r = ns_env_file_parse(s->env_files[k], &f, err);
		for (size_t i = 0; r == 0 && i < f.n; i++)
			r = add_user_var(out, f.v[i], s->no_eval, "--env-file", err);
		ns_strv_free(&f);
		if (r < 0 && name)
			sifu_err_wrap(err, "--env-file %s", name);
	}
	if (r == 0)
		r = prefixed_vars(s, out, err);
	for (char *const *o = s->env_opts; r == 0 && o && *o; o++)
		r = add_user_var(out, *o, s->no_eval, "--env", err);
	if (r == 0)
		runtime_vars(s, out);
	if (r < 0)
		ns_env_free(out);
	return r;
}

void ns_env_free(struct ns_env *e)
{
	ns_strv_free(&e->base);
	for (size_t i = 0; i < e->nov; i++) {
		free(e->ov[i].key);
		free(e->ov[i].value);
	}
	free(e->ov);
	free(e->script_head);
	free(e->script_tail);
	memset(e, 0, sizeof(*e));
}

/* VALUE in double quotes as Apptainer writes it for its shell: only '"' is
 * escaped, so that $VAR, ${VAR}, $(cmd) and `cmd` are evaluated in the
 * container and \$ keeps a literal $ (its historic behaviour, which job
 * scripts rely on: LD_PRELOAD=/x/\$LIB/y.so).  A backslash before '"' or at
 * the end is doubled so that the quotes always close. */
static void dquote(struct ns_strv *parts, const char *v)
{
	size_t n = strlen(v);
	char *q = sifu_xmalloc(2 * n + 3), *o = q;
	*o++ = '"';
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		if (c == '"' || (c == '\\' && (v[i + 1] == '"' || v[i + 1] == '\0')))
			*o++ = '\\';
		*o++ = c;
	}
	*o++ = '"';
	*o = '\0';
	ns_strv_push_take(parts, q);
}

/* VALUE in single quotes: nothing in it is evaluated. */
static void squote(struct ns_strv *parts, const char *v)
{
	struct ns_strv q = {0};
	ns_strv_push(&q, "'");
	for (const char *p = v; *p;) {
		size_t n = strcspn(p, "'");
		ns_strv_push_take(&q, sifu_xstrndup(p, n));
		p += n;
		if (*p) {
			ns_strv_push(&q, "'\\''");
			p++;
		}
	}
	ns_strv_push(&q, "'");
	for (size_t i = 0; i < q.n; i++)
		ns_strv_push(parts, q.v[i]);
	ns_strv_free(&q);
}

/* The script's fixed parts.  __sifu_base does what 99-base.sh does, for
 * images that have none (sifu's own); __sifu_ldp is Apptainer's
 * set_default_ld_library_path: when LD_LIBRARY_PATH is only
 * /.singularity.d/libs and that has files (--nv) or a PREPEND_/
 * APPEND_LD_LIBRARY_PATH is given, the directories glibc's ldconfig
 * searches go first, so that the bound libraries do not hide the image's.
 * (Its test of the directory is kept, and one that is missing skips
 * ldconfig: sifu may run images that lack it.) */
static const char script_funcs[] =
    "__sifu_base() {\n"
    "if [ -z \"${LD_LIBRARY_PATH:-}\" ]; then LD_LIBRARY_PATH=" LIBS_DIR "; "
    "else LD_LIBRARY_PATH=\"$LD_LIBRARY_PATH:" LIBS_DIR "\"; fi\n"
    "export LD_LIBRARY_PATH\n"
    "}\n"
    "__sifu_ldp() {\n"
    "[ \"${LD_LIBRARY_PATH:-}\" = " LIBS_DIR " ] && [ -d " LIBS_DIR " ] || return 0\n"
    "if [ \"$(cd " LIBS_DIR " 2>/dev/null && echo *)\" = \"*\" ] && "
    "[ -z \"${PREPEND_LD_LIBRARY_PATH:-}\" ] && [ -z \"${APPEND_LD_LIBRARY_PATH:-}\" ]; "
    "then return 0; fi\n"
    "[ -x /sbin/ldconfig ] || return 0\n"
    "__sifu_o=\n"
    "while IFS= read -r __sifu_l; do case \"$__sifu_l\" in \"\"|\"\t\"*) ;; "
    "*) __sifu_o=\"$__sifu_o${__sifu_l%%:*}:\" ;; esac; done <<__SIFU_EOF__\n"
    "$(/sbin/ldconfig -Nv 2>/dev/null)\n"
    "__SIFU_EOF__\n"
    "if [ -n \"$__sifu_o\" ]; then export LD_LIBRARY_PATH=\"$__sifu_o$LD_LIBRARY_PATH\"; fi\n"
    "unset __sifu_o __sifu_l\n"
    "}\n";

/* Sourcing, as Apptainer's action script: the overrides go right after
 * 99-base.sh (or after all scripts when there is none); an image without
 * /.singularity.d is a Singularity 2.2 one, whose /environment is sourced. */
static const char script_source[] =
    "__sifu_i=\n"
    "if [ -d /.singularity.d/env ]; then\n"
    "for f in /.singularity.d/env/*.sh; do if [ -f \"$f\" ]; then . \"$f\"\n"
    "if [ \"$f\" = /.singularity.d/env/99-base.sh ] && [ -z \"$__sifu_i\" ]; then "
    "__sifu_i=1; __sifu_inject; __sifu_ldp; fi\n"
    "fi; done\n"
    "[ -n \"$__sifu_i\" ] || __sifu_base\n"
    "elif [ -f /environment ]; then . /environment\n"
    "fi\n"
    "if [ -z \"$__sifu_i\" ]; then __sifu_inject; __sifu_ldp; fi\n"
    "if [ -n \"${LD_LIBRARY_PATH:-}\" ]; then\n"
    "[ -z \"${PREPEND_LD_LIBRARY_PATH:-}\" ] || "
    "LD_LIBRARY_PATH=\"$PREPEND_LD_LIBRARY_PATH:$LD_LIBRARY_PATH\"\n"
    "[ -z \"${APPEND_LD_LIBRARY_PATH:-}\" ] || "
    "LD_LIBRARY_PATH=\"$LD_LIBRARY_PATH:$APPEND_LD_LIBRARY_PATH\"\n"
    "fi\n"
    "unset f __sifu_i\n"
    "unset -f __sifu_base __sifu_ldp __sifu_inject\n";

/* The script's end: as Apptainer, a command that cannot be run is sifu's
 * failure (255), said in one line.  Left to the shell, `exec` of a
 * directory or a file without x would print "$0: line 51: ... Permission
 * denied", a line number of this script that means nothing to the user.
 * A name without a slash is looked up without a subshell (no fork), and
 * only where /dev/null can be opened: with --no-mount dev the image's own
 * node is there but the root is nodev (EACCES).  `true`, not `:`: a
 * redirection error on a special built-in would end the shell. */
static const char exec_check[] =
    "__sifu_cant() { echo \"FATAL:   cannot run '$1' in the container: $2\" >&2; exit 255; }\n"
    "case $1 in\n"
    "*/*)\n"
    "\t[ -e \"$1\" ] || __sifu_cant \"$1\" \"not found (not in the image)\"\n"
    "\t[ ! -d \"$1\" ] || __sifu_cant \"$1\" \"it is a directory\"\n"
    "\t[ -x \"$1\" ] || __sifu_cant \"$1\" \"permission denied (not an executable file)\" ;;\n"
    "*)\n"
    "\tif { true >/dev/null; } 2>&- && ! command -v \"$1\" >/dev/null 2>&1; then\n"
    "\t\t__sifu_cant \"$1\" \"not found (not in the image, or not on its PATH)\"\n"
    "\tfi ;;\n"
    "esac\n"
    "unset -f __sifu_cant\n"
    "exec \"$@\"\n";

char *ns_env_script(const struct ns_env *e)
{
	struct ns_strv parts = {0};
	if (e->script_head)
		ns_strv_push(&parts, e->script_head);
	/* $UID and $GID, which bash has and POSIX sh lacks (Apptainer's shell
	 * sets them); not exported */
	ns_strv_push_take(&parts, sifu_xasprintf("[ -n \"${UID:-}\" ] || UID=%lu\n"
	                                         "[ -n \"${GID:-}\" ] || GID=%lu\n",
	                                         e->uid, e->gid));
	ns_strv_push(&parts, script_funcs);
	ns_strv_push(&parts, "__sifu_inject() {\n");
	for (size_t i = 0; i < e->nov; i++) {
		const struct ns_env_override *o = &e->ov[i];
		const char *key = o->op == NS_ENV_SET || o->op == NS_ENV_LITERAL ? o->key : "PATH";
		ns_strv_push_take(&parts,
		                  sifu_xasprintf("export %s=%s", key,
		                                 o->op == NS_ENV_APPEND_PATH ? "\"$PATH\":" : ""));
		if (is_literal(o))
			squote(&parts, o->value);
		else
			dquote(&parts, o->value);
		/* a value given to LD_LIBRARY_PATH keeps the bound libraries, last */
		if (o->op == NS_ENV_SET && !strcmp(o->key, "LD_LIBRARY_PATH") && *o->value)
			ns_strv_push(&parts, ":" LIBS_DIR);
		ns_strv_push_take(
		    &parts, sifu_xstrdup(o->op == NS_ENV_PREPEND_PATH ? ":\"$PATH\"\n" : "\n"));
	}
	ns_strv_push(&parts, ":\n}\n");
	ns_strv_push(&parts, script_source);
	if (e->script_tail)
		ns_strv_push(&parts, e->script_tail);
	/* as Apptainer: a command that is not there is sifu's failure (255);
	 * checked without a subshell (no fork), and only where /dev/null can be
	 * opened: with --no-mount dev the image's own node is there but the
	 * root is nodev (EACCES).  `true`, not `:`: a redirection error on a
	 * special built-in would end the shell. */
	ns_strv_push(&parts, exec_check);
	size_t total = 1;
	for (size_t i = 0; i < parts.n; i++)
		total += strlen(parts.v[i]);
	char *s = sifu_xmalloc(total), *p = s;
	for (size_t i = 0; i < parts.n; i++) {
		size_t l = strlen(parts.v[i]);
		memcpy(p, parts.v[i], l);
		p += l;
	}
	*p = '\0';
	ns_strv_free(&parts);
	return s;
}

/* V evaluated as the shell evaluates it in double quotes, where there is no
 * shell: $NAME and ${NAME} from ENV ($UID and $GID from E where ENV has
 * none), a backslash before $ ` " or \ gives that character; anything else
 * (a $(cmd) among them: nothing can run it) is literal. */
static char *expand(const struct ns_env *e, const struct ns_strv *env, const char *v)
{
	size_t cap = strlen(v) + 1, o = 0;
	char *r = sifu_xmalloc(cap);
	char id[32];
	for (const char *p = v; *p;) {
		const char *val = NULL;
		size_t skip = 1, add = 1;
		if (*p == '\\' && p[1] && strchr("$`\"\\", p[1])) {
			val = p + 1;
			skip = 2;
		} else if (*p == '$') {
			bool brace = p[1] == '{';
			const char *n = p + 1 + brace;
			size_t k = 0;
			while (n[k] == '_' || (n[k] >= 'A' && n[k] <= 'Z') ||
			       (n[k] >= 'a' && n[k] <= 'z') || (k && n[k] >= '0' && n[k] <= '9'))
				k++;
			if (k && (!brace || n[k] == '}')) {
				char key[256];
				snprintf(key, sizeof(key), "%.*s", (int)k, n);
				val = ns_env_get(env, key);
				if (!val && (!strcmp(key, "UID") || !strcmp(key, "GID"))) {
					snprintf(id, sizeof(id), "%lu",
					         key[0] == 'U' ? e->uid : e->gid);
					val = id;
				}
				val = val ? val : "";
				add = strlen(val);
				skip = 1 + brace + k + brace;
			}
		}
		if (o + add + 1 > cap) {
			cap = 2 * (o + add + 1);
			r = sifu_xrealloc(r, cap);
		}
		memcpy(r + o, val ? val : p, add);
		o += add;
		p += skip;
	}
	r[o] = '\0';
	return r;
}

/* Every ${ in V opens a plain ${NAME}, which expand() knows. */
static bool simple_braces(const char *v)
{
	for (const char *p = strstr(v, "${"); p; p = strstr(p + 2, "${")) {
		size_t k = 0;
		while (p[2 + k] == '_' || isalnum((unsigned char)p[2 + k]))
			k++;
		if (!k || p[2 + k] != '}' || isdigit((unsigned char)p[2]))
			return false;
	}
	return true;
}

bool ns_env_needs_shell(const struct ns_env *e)
{
	for (size_t i = 0; i < e->nov; i++) {
		const char *v = e->ov[i].value;
		if (is_literal(&e->ov[i]) || !v)
			continue;
		/* command substitution, and ${...} forms beyond ${NAME}: only a
		 * shell evaluates them as Apptainer's action script does */
		if (strchr(v, '`') || strstr(v, "$(") || !simple_braces(v))
			return true;
	}
	static const char *const ldp[] = {"PREPEND_LD_LIBRARY_PATH", "APPEND_LD_LIBRARY_PATH"};
	for (size_t i = 0; i < ARRAY_SIZE(ldp); i++) {
		const char *v = ns_env_get(&e->base, ldp[i]);
		if (v && *v)
			return true; /* __sifu_ldp asks ldconfig */
		for (size_t k = 0; k < e->nov; k++)
			if (!strcmp(e->ov[k].key, ldp[i]))
				return true;
	}
	return false;
}

void ns_env_apply(const struct ns_env *e, struct ns_strv *out)
{
	for (size_t i = 0; i < e->base.n; i++)
		ns_strv_push(out, e->base.v[i]);
	/* what 99-base.sh would have done */
	ns_env_set(out, "LD_LIBRARY_PATH", LIBS_DIR);
	for (size_t i = 0; i < e->nov; i++) {
		const struct ns_env_override *o = &e->ov[i];
		const char *path = ns_env_get(out, "PATH");
		_cleanup_free_ char *v =
		    is_literal(o) ? sifu_xstrdup(o->value) : expand(e, out, o->value);
		if (o->op == NS_ENV_SET && !strcmp(o->key, "LD_LIBRARY_PATH") && *v) {
			_cleanup_free_ char *l = sifu_xasprintf("%s:%s", v, LIBS_DIR);
			ns_env_set(out, o->key, l);
		} else if (o->op == NS_ENV_SET || o->op == NS_ENV_LITERAL) {
			ns_env_set(out, o->key, v);
		} else {
			_cleanup_free_ char *np =
			    o->op == NS_ENV_PREPEND_PATH
			        ? sifu_xasprintf("%s:%s", v, path ? path : "")
			        : sifu_xasprintf("%s:%s", path ? path : "", v);
			ns_env_set(out, "PATH", np);
		}
	}
	const char *ld = ns_env_get(out, "LD_LIBRARY_PATH");
	const char *pre = ns_env_get(out, "PREPEND_LD_LIBRARY_PATH");
	const char *app = ns_env_get(out, "APPEND_LD_LIBRARY_PATH");
	if (ld && *ld && ((pre && *pre) || (app && *app))) {
		_cleanup_free_ char *l =
		    sifu_xasprintf("%s%s%s%s%s", pre && *pre ? pre : "", pre && *pre ? ":" : "", ld,
		                   app && *app ? ":" : "", app && *app ? app : "");
		ns_env_set(out, "LD_LIBRARY_PATH", l);
	}
}
