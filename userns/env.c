/* SPDX-License-Identifier: BSD-3-Clause */
/* The payload's environment, built as Apptainer builds it (see its "Environment
 * Variable Precedence"): host variables pass except the ones it resets; the
 * image's /.singularity.d/env/[0-9]*.sh are sourced over them; then --env-file,
 * APPTAINERENV_/SINGULARITYENV_ and --env override, in that order.  Pure. */
#include "userns.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define ENV_SCRIPT   "/.singularity.d/env/91-environment.sh"

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
	size_t k = strcspn(kv, "=");
	for (const char *const *n = names; *n; n++)
		if (strlen(*n) == k && !memcmp(kv, *n, k))
			return true;
	return false;
}

static void add_ov(struct ns_env *e, enum ns_env_op op, const char *key, size_t klen,
                   const char *value)
{
	e->ov = sifu_xrealloc(e->ov, (e->nov + 1) * sizeof(*e->ov));
	struct ns_env_override *o = &e->ov[e->nov++];
	o->op = op;
	o->key = sifu_xstrndup(key, klen);
	o->value = sifu_xstrdup(value);
}

/* KEY=VALUE from a user source; PREPEND_PATH / APPEND_PATH are special. */
static int add_user_var(struct ns_env *e, const char *kv, const char *what, struct sifu_err *err)
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
	enum ns_env_op op = NS_ENV_SET;
	if (k == 12 && !memcmp(kv, "PREPEND_PATH", 12))
		op = NS_ENV_PREPEND_PATH;
	else if (k == 11 && !memcmp(kv, "APPEND_PATH", 11))
		op = NS_ENV_APPEND_PATH;
	add_ov(e, op, kv, k, eq + 1);
	return 0;
}

static void strip_quotes(char *v)
{
	size_t n = strlen(v);
	if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
		memmove(v, v + 1, n - 2);
		v[n - 2] = '\0';
	}
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
			strip_quotes(eq + 1);
			ns_strv_push(out, s);
		}
		p += n;
		if (*p)
			p++;
	}
	return 0;
}

static void base_env(const struct ns_env_spec *s, struct ns_strv *b)
{
	if (!s->cleanenv) {
		for (char *const *h = s->host; h && *h; h++)
			if (strchr(*h, '=') && !host_dropped(*h))
				ns_strv_push(b, *h);
	} else {
		/* what Apptainer's --cleanenv keeps */
		for (char *const *h = s->host; h && *h; h++)
			if (!strncmp(*h, "TERM=", 5))
				ns_strv_push(b, *h);
		ns_env_set(b, "LANG", "C");
	}
	ns_env_set(b, "PATH", DEFAULT_PATH);
	ns_env_set(b, "LD_LIBRARY_PATH", "/.singularity.d/libs");
	ns_env_set(b, "HOME", s->home);
}

static void runtime_vars(const struct ns_env_spec *s, struct ns_env *e)
{
	static const char *const prefixes[] = {"APPTAINER_", "SINGULARITY_"};
	for (size_t i = 0; i < 2; i++) {
		const char *p = prefixes[i];
		char key[64];
#define RT(name, val)                                           \
	do {                                                    \
		snprintf(key, sizeof(key), "%s%s", p, name);    \
		add_ov(e, NS_ENV_SET, key, strlen(key), (val)); \
	} while (0)
		RT("CONTAINER", s->container);
		RT("NAME", s->name);
		RT("COMMAND", s->command);
		RT("ENVIRONMENT", ENV_SCRIPT);
		RT("BIND", s->bind ? s->bind : "");
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
				int r = add_user_var(e, *h + pl, prefixes[i], err);
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
	add_ov(out, NS_ENV_SET, "PS1", 3, "Sifu> ");
	int r = 0;
	if (s->env_file) {
		struct ns_strv f = {0};
		r = ns_env_file_parse(s->env_file, &f, err);
		for (size_t i = 0; r == 0 && i < f.n; i++)
			r = add_user_var(out, f.v[i], "--env-file", err);
		ns_strv_free(&f);
	}
	if (r == 0)
		r = prefixed_vars(s, out, err);
	for (char *const *o = s->env_opts; r == 0 && o && *o; o++)
		r = add_user_var(out, *o, "--env", err);
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
	memset(e, 0, sizeof(*e));
}

/* Double-quote VALUE for sh so that $NAME and ${NAME} still expand (Apptainer
 * evaluates "\$PATH" given to --env in the container) but nothing runs:
 * backquotes, backslashes, quotes and "$(" are escaped. */
static void sh_quote(struct ns_strv *parts, const char *v)
{
	size_t n = strlen(v);
	char *q = sifu_xmalloc(2 * n + 3), *o = q;
	*o++ = '"';
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		if (c == '"' || c == '\\' || c == '`' || (c == '$' && v[i + 1] == '('))
			*o++ = '\\';
		*o++ = c;
	}
	*o++ = '"';
	*o = '\0';
	ns_strv_push_take(parts, q);
}

char *ns_env_script(const struct ns_env *e)
{
	struct ns_strv parts = {0};
	ns_strv_push(&parts,
	             "for f in /.singularity.d/env/*.sh; do if [ -f \"$f\" ]; then . \"$f\"; "
	             "fi; done\n");
	for (size_t i = 0; i < e->nov; i++) {
		const struct ns_env_override *o = &e->ov[i];
		const char *key = o->op == NS_ENV_SET ? o->key : "PATH";
		ns_strv_push_take(&parts,
		                  sifu_xasprintf("export %s=%s", key,
		                                 o->op == NS_ENV_APPEND_PATH ? "\"$PATH\":" : ""));
		sh_quote(&parts, o->value);
		ns_strv_push_take(
		    &parts, sifu_xstrdup(o->op == NS_ENV_PREPEND_PATH ? ":\"$PATH\"\n" : "\n"));
	}
	/* as Apptainer: a command that is not there is sifu's failure (255);
	 * checked without a subshell (no fork), and only where /dev/null is */
	ns_strv_push(&parts,
	             "unset f\nif [ -e /dev/null ] && ! command -v \"$1\" >/dev/null 2>&1; then "
	             "echo \"sifu: cannot run '$1' in the container: not found (not in the "
	             "image, or not on its PATH)\" >&2; exit 255; fi\nexec \"$@\"\n");
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

/* $NAME and ${NAME} expanded from ENV, as the shell would (no shell is
 * there when this is used); anything else is literal. */
static char *expand(const struct ns_strv *env, const char *v)
{
	size_t cap = strlen(v) + 1, o = 0;
	char *r = sifu_xmalloc(cap);
	for (const char *p = v; *p;) {
		const char *val = NULL;
		size_t skip = 1;
		if (*p == '$') {
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
				val = val ? val : "";
				skip = 1 + brace + k + brace;
			}
		}
		size_t add = val ? strlen(val) : 1;
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

void ns_env_apply(const struct ns_env *e, struct ns_strv *out)
{
	for (size_t i = 0; i < e->base.n; i++)
		ns_strv_push(out, e->base.v[i]);
	for (size_t i = 0; i < e->nov; i++) {
		const struct ns_env_override *o = &e->ov[i];
		const char *path = ns_env_get(out, "PATH");
		if (o->op == NS_ENV_SET) {
			_cleanup_free_ char *v = expand(out, o->value);
			ns_env_set(out, o->key, v);
		} else {
			_cleanup_free_ char *np =
			    o->op == NS_ENV_PREPEND_PATH
			        ? sifu_xasprintf("%s:%s", o->value, path ? path : "")
			        : sifu_xasprintf("%s:%s", path ? path : "", o->value);
			ns_env_set(out, "PATH", np);
		}
	}
}
