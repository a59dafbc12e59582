/* SPDX-License-Identifier: BSD-3-Clause */
/* Pure helpers of the launcher: string vectors, bind and mount specs, id map
 * lines, passwd/group editing, the cwd skip rule.  No system calls here. */
#include "userns.h"

void ns_strv_push_take(struct ns_strv *s, char *str)
{
	if (s->n + 2 > s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = sifu_xrealloc(s->v, s->cap * sizeof(char *));
	}
	s->v[s->n++] = str;
	s->v[s->n] = NULL;
}

void ns_strv_push(struct ns_strv *s, const char *str)
{
	ns_strv_push_take(s, sifu_xstrdup(str));
}

void ns_strv_free(struct ns_strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static ssize_t env_find(const struct ns_strv *env, const char *key)
{
	size_t k = strlen(key);
	for (size_t i = 0; i < env->n; i++)
		if (!strncmp(env->v[i], key, k) && env->v[i][k] == '=')
			return (ssize_t)i;
	return -1;
}

const char *ns_env_get(const struct ns_strv *env, const char *key)
{
	ssize_t i = env_find(env, key);
	return i < 0 ? NULL : env->v[i] + strlen(key) + 1;
}

void ns_env_set(struct ns_strv *env, const char *key, const char *value)
{
	char *kv = sifu_xasprintf("%s=%s", key, value);
	ssize_t i = env_find(env, key);
	if (i < 0) {
		ns_strv_push_take(env, kv);
		return;
	}
	free(env->v[i]);
	env->v[i] = kv;
}

void ns_env_unset(struct ns_strv *env, const char *key)
{
	ssize_t i = env_find(env, key);
	if (i < 0)
		return;
	free(env->v[i]);
	memmove(env->v + i, env->v + i + 1, (env->n - (size_t)i) * sizeof(char *));
	env->n--;
}

void ns_bind_free(struct ns_bind *b)
{
	free(b->src);
	free(b->dst);
	free(b->image_src);
	memset(b, 0, sizeof(*b));
}

static int bind_check(struct ns_bind *b, const char *spec, struct sifu_err *err)
{
	if (!b->src || !*b->src || !b->dst || !*b->dst) {
		sifu_err_set(err, SIFU_E_USAGE, EINVAL, "bind '%s': empty source or destination",
		             spec);
		sifu_err_hint(err, "write --bind SRC[:DEST[:ro|rw]]");
		return -EINVAL;
	}
	if (b->dst[0] != '/') {
		sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		             "bind '%s': destination '%s' is not an absolute path", spec, b->dst);
		sifu_err_hint(err, "destinations inside the container start with '/'");
		return -EINVAL;
	}
	return 0;
}

/* id=N: a SIF object id, > 0 (Apptainer: "id number must be greater than 0") */
static int bind_id(struct ns_bind *b, const char *spec, const char *v, struct sifu_err *err)
{
	char *e;
	errno = 0;
	unsigned long id = strtoul(v, &e, 10);
	if (!*v || *e || errno || id > UINT32_MAX || v[0] == '-' || id == 0) {
		sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		             "bind '%s': id '%s': the id number must be greater than 0", spec, v);
		sifu_err_hint(err, "give the descriptor id of a SIF partition ('sifu sif list')");
		return -EINVAL;
	}
	b->id = (uint32_t)id;
	if (!b->image_src)
		b->image_src = sifu_xstrdup("/");
	return 0;
}

bool ns_bind_is_option(const char *w)
{
	return !strcmp(w, "ro") || !strcmp(w, "rw") || !strncmp(w, "image-src=", 10) ||
	       !strncmp(w, "id=", 3);
}

int ns_bind_option(struct ns_bind *b, const char *spec, const char *opt, struct sifu_err *err)
{
	if (!strcmp(opt, "ro") || !strcmp(opt, "readonly")) {
		b->ro = true;
	} else if (!strcmp(opt, "rw")) {
		b->ro = false;
	} else if (!strncmp(opt, "image-src=", 10)) {
		free(b->image_src);
		b->image_src = sifu_xstrdup(opt[10] ? opt + 10 : "/");
	} else if (!strncmp(opt, "id=", 3)) {
		return bind_id(b, spec, opt + 3, err);
	} else {
		sifu_err_set(err, SIFU_E_USAGE, EINVAL, "bind '%s': unknown option '%s'", spec,
		             opt);
		sifu_err_hint(err, "bind options are ro, rw, image-src=PATH and id=N");
		return -EINVAL;
	}
	return 0;
}

/* The options field: one word, or several separated by commas. */
static int bind_opt(struct ns_bind *b, const char *spec, const char *opts, struct sifu_err *err)
{
	_cleanup_free_ char *copy = sifu_xstrdup(opts);
	char *save = NULL;
	b->opts = true;
	for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		int r = ns_bind_option(b, spec, w, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* A relative source is taken from CWD (and so is a defaulted destination). */
static void bind_absolutize(struct ns_bind *b, bool dst_defaulted, const char *cwd)
{
	if (!cwd || b->src[0] == '/' || !b->src[0])
		return;
	char *abs = sifu_xasprintf("%s/%s", cwd, b->src);
	char norm[4096];
	if (sifu_path_normalize(abs, norm, sizeof(norm)) == 0) {
		free(abs);
		abs = sifu_xstrdup(norm);
	}
	free(b->src);
	b->src = abs;
	if (dst_defaulted) {
		free(b->dst);
		b->dst = sifu_xstrdup(abs);
	}
}

/* The next ':' of S that is not written "\:", or NULL (Apptainer's
 * splitBy in its bind parser). */
static const char *bind_colon(const char *s)
{
	for (; *s; s++)
		if (*s == ':')
			return s;
		else if (*s == '\\' && (s[1] == ':' || s[1] == ','))
			s++;
	return NULL;
}

/* "\:" and "\," in a bind path stand for ':' and ',' (e2e actionBinds,
 * BindFileWithColonOK and BindFileWithCommaOK). */
static void bind_unescape(char *s)
{
	char *o = s;
	for (; *s; s++)
		if (!(*s == '\\' && (s[1] == ':' || s[1] == ',')))
			*o++ = *s;
	*o = '\0';
}

int ns_bind_parse(const char *spec, const char *cwd, struct ns_bind *out, struct sifu_err *err)
{
	memset(out, 0, sizeof(*out));
	const char *c1 = bind_colon(spec);
	const char *c2 = c1 ? bind_colon(c1 + 1) : NULL;
	int r = 0;
	if (!c1) {
		out->src = sifu_xstrdup(spec);
		out->dst = sifu_xstrdup(spec);
	} else {
		out->src = sifu_xstrndup(spec, (size_t)(c1 - spec));
		out->dst = c2 ? sifu_xstrndup(c1 + 1, (size_t)(c2 - c1 - 1)) : sifu_xstrdup(c1 + 1);
		if (c2)
			r = bind_opt(out, spec, c2 + 1, err);
	}
	bind_unescape(out->src);
	bind_unescape(out->dst);
	bind_absolutize(out, !c1, cwd);
	if (r == 0)
		r = bind_check(out, spec, err);
	if (r < 0)
		ns_bind_free(out);
	return r;
}

static bool key_is(const char *k, size_t n, const char *const *names)
{
	for (; *names; names++)
		if (strlen(*names) == n && !memcmp(k, *names, n))
			return true;
	return false;
}

static int mount_field(struct ns_bind *b, const char *spec, const char *f, size_t n,
                       struct sifu_err *err)
{
	static const char *const srcs[] = {"src", "source", NULL};
	static const char *const dsts[] = {"dst", "destination", "dest", "target", NULL};
	const char *eq = memchr(f, '=', n);
	size_t kn = eq ? (size_t)(eq - f) : n;
	char *val = eq ? sifu_xstrndup(eq + 1, n - kn - 1) : NULL;
	int r = 0;
	if (!eq && n == 8 && !memcmp(f, "nonested", 8)) {
		/* --mount only: Apptainer keeps such a bind out of the
		 * APPTAINER_BIND it passes to nested containers */
		b->nonested = true;
	} else if (!eq) {
		char opt[32] = "";
		if (n < sizeof(opt))
			memcpy(opt, f, n);
		r = ns_bind_option(b, spec, opt, err);
	} else if ((kn == 9 && !memcmp(f, "image-src", 9)) || (kn == 2 && !memcmp(f, "id", 2))) {
		_cleanup_free_ char *opt = sifu_xstrndup(f, n);
		r = ns_bind_option(b, spec, opt, err);
	} else if (kn == 4 && !memcmp(f, "type", 4)) {
		if (strcmp(val, "bind") != 0) {
			sifu_err_set(err, SIFU_E_UNSUPPORTED, EINVAL,
			             "mount '%s': type '%s' is not supported", spec, val);
			sifu_err_hint(err, "only type=bind is supported, as in Apptainer");
			r = -EINVAL;
		}
	} else if (key_is(f, kn, srcs)) {
		free(b->src);
		b->src = TAKE_PTR(val);
	} else if (key_is(f, kn, dsts)) {
		free(b->dst);
		b->dst = TAKE_PTR(val);
	} else if (kn == 8 && !memcmp(f, "readonly", 8)) {
		b->ro = !val || strcmp(val, "false") != 0;
	} else {
		sifu_err_set(err, SIFU_E_USAGE, EINVAL, "mount '%s': unknown field '%.*s'", spec,
		             (int)kn, f);
		sifu_err_hint(err, "write --mount type=bind,src=SRC,dst=DEST[,ro][,image-src=PATH]"
		                   "[,id=N]");
		r = -EINVAL;
	}
	free(val);
	return r;
}

int ns_mount_parse(const char *spec, const char *cwd, struct ns_bind *out, struct sifu_err *err)
{
	memset(out, 0, sizeof(*out));
	const char *p = spec;
	int r = 0;
	while (r == 0 && *p) {
		size_t n = strcspn(p, ",\n");
		if (n)
			r = mount_field(out, spec, p, n, err);
		p += n;
		if (*p)
			p++;
	}
	if (r == 0 && out->src)
		bind_absolutize(out, false, cwd);
	if (r == 0)
		r = bind_check(out, spec, err);
	if (r < 0)
		ns_bind_free(out);
	return r;
}

int ns_idmap_format(char *buf, size_t len, unsigned inside, unsigned outside, unsigned count)
{
	int n = snprintf(buf, len, "%u %u %u\n", inside, outside, count);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : n;
}

/* Append the lines of TEXT to OUT except those whose field FIELD equals A
 * or (when B is set) whose field FIELD2 equals B. */
static void copy_lines_except(struct ns_strv *out, const char *text, const char *name,
                              const char *idstr, unsigned idfield)
{
	const char *p = text ? text : "";
	while (*p) {
		size_t n = strcspn(p, "\n");
		const char *colon = memchr(p, ':', n);
		bool drop = false;
		if (colon) {
			size_t kn = (size_t)(colon - p);
			drop = kn == strlen(name) && !memcmp(p, name, kn);
			/* find field idfield (0-based) */
			const char *f = p;
			for (unsigned i = 0; i < idfield && f; i++) {
				f = memchr(f, ':', n - (size_t)(f - p));
				f = f ? f + 1 : NULL;
			}
			if (f) {
				size_t fl = strcspn(f, ":\n");
				drop = drop || (fl == strlen(idstr) && !memcmp(f, idstr, fl));
			}
		}
		if (n && !drop)
			ns_strv_push_take(out, sifu_xstrndup(p, n));
		p += n;
		if (*p)
			p++;
	}
}

static char *join_lines(struct ns_strv *lines)
{
	size_t total = 1;
	for (size_t i = 0; i < lines->n; i++)
		total += strlen(lines->v[i]) + 1;
	char *s = sifu_xmalloc(total), *o = s;
	for (size_t i = 0; i < lines->n; i++) {
		size_t l = strlen(lines->v[i]);
		memcpy(o, lines->v[i], l);
		o += l;
		*o++ = '\n';
	}
	*o = '\0';
	ns_strv_free(lines);
	return s;
}

char *ns_passwd_edit(const char *passwd, const char *name, unsigned uid, unsigned gid,
                     const char *gecos, const char *home, const char *shell)
{
	struct ns_strv lines = {0};
	char idstr[16];
	snprintf(idstr, sizeof(idstr), "%u", uid);
	copy_lines_except(&lines, passwd, name, idstr, 2);
	ns_strv_push_take(&lines, sifu_xasprintf("%s:x:%u:%u:%s:%s:%s", name, uid, gid,
	                                         gecos ? gecos : "", home, shell));
	return join_lines(&lines);
}

char *ns_group_edit(const char *group, const char *name, unsigned gid, const char *user)
{
	struct ns_strv lines = {0};
	char idstr[16];
	snprintf(idstr, sizeof(idstr), "%u", gid);
	copy_lines_except(&lines, group, name, idstr, 2);
	ns_strv_push_take(&lines, sifu_xasprintf("%s:x:%u:%s", name, gid, user));
	return join_lines(&lines);
}

bool ns_cwd_is_skipped(const char *cwd)
{
	/* Apptainer's rule: these directories themselves, and anything below the
	 * virtual file systems */
	static const char *const exact[] = {"/",    "/etc",  "/bin", "/mnt",   "/usr", "/var",
	                                    "/opt", "/sbin", "/lib", "/lib64", NULL};
	static const char *const below[] = {"/sys", "/proc", "/dev", NULL};
	if (!cwd || cwd[0] != '/')
		return true;
	for (const char *const *s = exact; *s; s++)
		if (!strcmp(cwd, *s))
			return true;
	for (const char *const *s = below; *s; s++) {
		size_t n = strlen(*s);
		if (!strncmp(cwd, *s, n) && (cwd[n] == '\0' || cwd[n] == '/'))
			return true;
	}
	return false;
}

int ns_nomount_parse(const char *word, unsigned *mask, struct sifu_err *err)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {
	    {"home", NS_NOMOUNT_HOME},
	    {"cwd", NS_NOMOUNT_CWD},
	    {"tmp", NS_NOMOUNT_TMP},
	    {"proc", NS_NOMOUNT_PROC},
	    {"sys", NS_NOMOUNT_SYS},
	    {"dev", NS_NOMOUNT_DEV},
	    {"hosts", NS_NOMOUNT_HOSTS},
	    {"localtime", NS_NOMOUNT_LOCALTIME},
	    {"resolv.conf", NS_NOMOUNT_RESOLV},
	    {"passwd", NS_NOMOUNT_PASSWD},
	    {"group", NS_NOMOUNT_PASSWD},
	    {"devpts", NS_NOMOUNT_DEVPTS},
	    {"hostfs", 0}, /* sifu binds no host file systems */
	    {"bind-paths", NS_NOMOUNT_HOSTS | NS_NOMOUNT_LOCALTIME | NS_NOMOUNT_RESOLV},
	    {"/etc/hosts", NS_NOMOUNT_HOSTS},
	    {"/etc/localtime", NS_NOMOUNT_LOCALTIME},
	    {"/etc/resolv.conf", NS_NOMOUNT_RESOLV},
	};
	char norm[PATH_MAX];
	const char *w = word;
	if (word[0] == '/' && sifu_path_normalize(word, norm, sizeof(norm)) == 0)
		w = norm;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (!strcmp(w, names[i].name)) {
			*mask |= names[i].bit;
			return 0;
		}
	if (word[0] == '/')
		return 0; /* a bind path entry sifu does not have */
	sifu_err_set(err, SIFU_E_USAGE, EINVAL, "--no-mount: unknown mount '%s'", word);
	sifu_err_hint(err, "known: home, cwd, tmp, proc, sys, dev, devpts, hosts, localtime, "
	                   "resolv.conf, passwd, group, hostfs, bind-paths, or the absolute path "
	                   "of a default bind (/etc/hosts)");
	return -EINVAL;
}
