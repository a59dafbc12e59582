/* SPDX-License-Identifier: BSD-3-Clause */
#include "cli.h"

#include <ctype.h>

const struct cli_opt cli_opts[O_COUNT] = {
#define OPT(id, s, l, a, m, env, extra, verbs, help) \
	[id] = {id, s, l, a, m, env, extra, verbs, help},
#include "options.def"
#undef OPT
};

size_t cli_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return (size_t)-1;
	size_t prev[65], cur[65];
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, (lb + 1) * sizeof(size_t));
	}
	return prev[lb];
}

const char *cli_suggest(const char *word, const char *const *candidates)
{
	const char *best = NULL;
	size_t bestd = (size_t)-1;
	size_t len = strlen(word);
	for (size_t i = 0; candidates[i]; i++) {
		size_t d = cli_edit_distance(word, candidates[i]);
		/* a prefix of a longer name is a strong hint too */
		if (len >= 2 && !strncmp(candidates[i], word, len))
			d = d < 1 ? d : 1;
		if (d < bestd)
			bestd = d, best = candidates[i];
	}
	size_t limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
	return bestd <= limit ? best : NULL;
}

int cli_parse_size(const char *s, uint64_t *out)
{
	char *end;
	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	unsigned shift = 0;
	switch (tolower((unsigned char)*end)) {
	case '\0': break;
	case 'k': shift = 10; break;
	case 'm': shift = 20; break;
	case 'g': shift = 30; break;
	case 't': shift = 40; break;
	default: return -EINVAL;
	}
	if (*end) {
		end++;
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'b' || *end == 'B')
			end++;
		if (*end)
			return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

bool cli_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"1", "true", "yes", "on", "y"};
	static const char *const no[] = {"0", "false", "no", "off", "n", ""};
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++)
		if (!strcasecmp(s, yes[i]))
			return *out = true, true;
	for (size_t i = 0; i < ARRAY_SIZE(no); i++)
		if (!strcasecmp(s, no[i]))
			return *out = false, true;
	return false;
}

const char *cli_one_image(const struct cli_args *a, const char *verb, struct sifu_err *err)
{
	if (a->npos == 1)
		return a->pos[0];
	sifu_err_set(err, SIFU_E_USAGE, EINVAL, "%s takes one image (sifu %s [options] IMAGE)",
	             verb, verb);
	return NULL;
}

static void list_add(struct cli_args *a, enum cli_opt_id id, const char *value)
{
	/* comma lists accumulate; an empty element is dropped.  --env is kept
	 * whole: its commas are split as Apptainer splits them (cmd_action.c). */
	if (id == O_ENV) {
		a->list[id] = sifu_xrealloc(a->list[id], (a->nlist[id] + 2) * sizeof(char *));
		a->list[id][a->nlist[id]++] = sifu_xstrdup(value);
		a->list[id][a->nlist[id]] = NULL;
		return;
	}
	/* a bind path may hold a comma written "\,", as in Apptainer's
	 * ParseBindPath: it does not split the list (ns_bind_parse unescapes) */
	bool escapes = id == O_BIND;
	for (const char *p = value; p && *p;) {
		size_t n = 0;
		while (p[n] && p[n] != ',')
			n += escapes && p[n] == '\\' && p[n + 1] == ',' ? 2 : 1;
		if (n) {
			a->list[id] =
			    sifu_xrealloc(a->list[id], (a->nlist[id] + 2) * sizeof(char *));
			a->list[id][a->nlist[id]++] = sifu_xstrndup(p, n);
			a->list[id][a->nlist[id]] = NULL;
		}
		p += n + (p[n] == ',');
	}
}

/* The option that an alias stands for: Apptainer has --cwd and --pwd write
 * the same value (cwdPath in its action_flags.go), so the last of either
 * wins and a variable for one yields to the other given on the command line. */
static enum cli_opt_id target(enum cli_opt_id id)
{
	return id == O_CWD ? O_PWD : id;
}

static void set_value(struct cli_args *a, enum cli_opt_id id, const char *value, const char *source)
{
	id = target(id);
	a->set[id] = true;
	a->source[id] = source;
	if (cli_opts[id].arg == A_LIST) {
		list_add(a, id, value);
	} else if (value) {
		free(a->val[id]);
		a->val[id] = sifu_xstrdup(value);
	}
}

static const struct cli_opt *find_long(unsigned verb, const char *name, size_t n)
{
	for (size_t i = 0; i < O_COUNT; i++)
		if ((cli_opts[i].verbs & verb) && strlen(cli_opts[i].long_name) == n &&
		    !strncmp(cli_opts[i].long_name, name, n))
			return &cli_opts[i];
	return NULL;
}

static const struct cli_opt *find_short(unsigned verb, char c)
{
	for (size_t i = 0; i < O_COUNT; i++)
		if ((cli_opts[i].verbs & verb) && cli_opts[i].short_name == c)
			return &cli_opts[i];
	return NULL;
}

static int unknown_flag(const struct cli_verb *v, const char *flag, struct sifu_err *err)
{
	const char *names[O_COUNT + 2];
	size_t n = 0;
	for (size_t i = 0; i < O_COUNT; i++)
		if (cli_opts[i].verbs & v->bit)
			names[n++] = cli_opts[i].long_name;
	names[n++] = "help";
	names[n] = NULL;
	const char *bare = flag;
	while (*bare == '-')
		bare++;
	char word[64];
	snprintf(word, sizeof(word), "%.*s", (int)strcspn(bare, "="), bare);
	const char *s = cli_suggest(word, names);
	sifu_err_set(err, SIFU_E_USAGE, EINVAL, "%s: unknown flag %s", v->name, flag);
	if (s)
		sifu_err_hint(err, "did you mean --%s?  See 'sifu %s --help'.", s, v->name);
	else
		sifu_err_hint(err, "see 'sifu %s --help' for the flags it takes", v->name);
	return -EINVAL;
}

static int missing_value(const struct cli_verb *v, const struct cli_opt *o, struct sifu_err *err)
{
	sifu_err_set(err, SIFU_E_USAGE, EINVAL, "%s: flag --%s needs a value (%s)", v->name,
	             o->long_name, o->metavar ? o->metavar : "VALUE");
	return -EINVAL;
}

/* The value of option O: INLINE ("--opt=value", "-Bvalue") when given, else
 * none for an optional value, else the next argument. */
static int take_value(const struct cli_verb *v, const struct cli_opt *o, const char *inline_value,
                      char **argv, int argc, int *i, struct cli_args *a, struct sifu_err *err)
{
	if (o->arg == A_OPT || inline_value) {
		set_value(a, o->id, inline_value, "command line");
		return 0;
	}
	if (*i + 1 >= argc)
		return missing_value(v, o, err);
	set_value(a, o->id, argv[++*i], "command line");
	return 0;
}

static int parse_long(const struct cli_verb *v, char **argv, int argc, int *i, struct cli_args *a,
                      struct sifu_err *err)
{
	const char *arg = argv[*i] + 2;
	const char *eq = strchr(arg, '=');
	size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
	if (n == 4 && !strncmp(arg, "help", 4))
		return 1; /* caller prints help */
	const struct cli_opt *o = find_long(v->bit, arg, n);
	if (!o)
		return unknown_flag(v, argv[*i], err);
	if (o->arg == A_NONE) {
		bool b = true;
		if (eq && !cli_parse_bool(eq + 1, &b)) {
			sifu_err_set(err, SIFU_E_USAGE, EINVAL,
			             "%s: --%s takes true or false, not '%s'", v->name,
			             o->long_name, eq + 1);
			return -EINVAL;
		}
		if (b)
			set_value(a, o->id, NULL, "command line");
		return 0;
	}
	return take_value(v, o, eq ? eq + 1 : NULL, argv, argc, i, a, err);
}

static int parse_short(const struct cli_verb *v, char **argv, int argc, int *i, struct cli_args *a,
                       struct sifu_err *err)
{
	const char *p = argv[*i] + 1;
	for (; *p; p++) {
		if (*p == 'h')
			return 1;
		const struct cli_opt *o = find_short(v->bit, *p);
		if (!o) {
			char flag[4] = {'-', *p, 0, 0};
			return unknown_flag(v, flag, err);
		}
		if (o->arg == A_NONE) {
			set_value(a, o->id, NULL, "command line");
			continue;
		}
		return take_value(v, o, p[1] ? p + 1 : NULL, argv, argc, i, a, err); /* -Bvalue */
	}
	return 0;
}

static const char *real_getenv(const char *name)
{
	return getenv(name);
}

int cli_parse(const struct cli_verb *v, int argc, char **argv, struct cli_args *a,
              struct sifu_err *err)
{
	memset(a, 0, sizeof(*a));
	a->pos = sifu_xcalloc((size_t)argc + 1, sizeof(char *));
	bool opts_done = false;
	for (int i = 0; i < argc; i++) {
		char *arg = argv[i];
		if (opts_done || arg[0] != '-' || arg[1] == '\0') {
			a->pos[a->npos++] = arg;
			if (!v->interspersed)
				opts_done = true;
			continue;
		}
		if (!strcmp(arg, "--")) {
			opts_done = true;
			continue;
		}
		int r = arg[1] == '-' ? parse_long(v, argv, argc, &i, a, err)
		                      : parse_short(v, argv, argc, &i, a, err);
		if (r != 0)
			return r; /* 1: help asked for */
	}
	return cli_apply_env(v, a, real_getenv, err);
}

static int env_one(const struct cli_verb *v, struct cli_args *a, const struct cli_opt *o,
                   const char *name, const char *value, struct sifu_err *err)
{
	if (o->arg == A_NONE) {
		bool b;
		if (!cli_parse_bool(value, &b)) {
			sifu_err_set(err, SIFU_E_USAGE, EINVAL,
			             "%s=%s: expected true or false (for --%s)", name, value,
			             o->long_name);
			return -EINVAL;
		}
		if (b)
			set_value(a, o->id, NULL, name);
		else
			a->source[target(o->id)] = name; /* explicitly off */
		return 0;
	}
	set_value(a, o->id, value, name);
	return 0;
}

/* An option whose variable adds to the command line's values instead of
 * standing in for them: Apptainer's --bind and --mount (EnvAppendValue in
 * its cmdline package) take the command line's specs first, then those of
 * APPTAINER_BIND / APPTAINER_MOUNT - a job script that exports
 * APPTAINER_BIND and passes -B gets both. */
static bool env_appends(enum cli_opt_id id)
{
	return id == O_BIND || id == O_MOUNT;
}

/* Apply VALUE (from the variable NAME; nothing when NULL) to option O. */
static int env_take(const struct cli_verb *v, struct cli_args *a, const struct cli_opt *o,
                    const char *name, const char *value, struct sifu_err *err)
{
	if (!value)
		return 0;
	/* source must outlive this frame: keep the name in the args */
	char *kept = sifu_xstrdup(name);
	const char *before = a->source[target(o->id)];
	int r = env_one(v, a, o, kept, value, err);
	if (r < 0) {
		free(kept);
		return r;
	}
	if (before) { /* appended: the first source names the option */
		a->source[target(o->id)] = before;
		free(kept);
		return 0;
	}
	a->source[target(o->id)] = kept; /* freed in cli_args_free */
	return 0;
}

/* Variables that Apptainer gives one flag under a different name in each
 * verb (its EnvKeys in cmd/internal/cli: pull's --arch reads PULL_ARCH,
 * build's BUILD_ARCH; sign's --key SIGN_KEY, verify's VERIFY_KEY), where
 * sifu has one option for both: a job script's APPTAINER_SIGN_KEY, a
 * private key, must not become verify's key. */
static const struct {
	unsigned verbs;
	enum cli_opt_id id;
	const char *env; /* with SIFU_, APPTAINER_, SINGULARITY_ */
} verb_env[] = {
    {V_PULL, O_ARCH, "PULL_ARCH"},
    {V_BUILD, O_ARCH, "BUILD_ARCH"},
    {V_SIGN, O_KEY, "SIGN_KEY"},
    {V_VERIFY, O_KEY, "VERIFY_KEY"},
    /* remote login --insecure (remote.go): plain HTTP, sifu's --nohttps */
    {V_REGISTRY, O_NOHTTPS, "LOGIN_INSECURE"},
};

const char *cli_opt_verb_env(unsigned verb_bit, enum cli_opt_id id)
{
	for (size_t i = 0; i < ARRAY_SIZE(verb_env); i++)
		if ((verb_env[i].verbs & verb_bit) && verb_env[i].id == id)
			return verb_env[i].env;
	return NULL;
}

/* The first of SIFU_BASE, APPTAINER_BASE, SINGULARITY_BASE that is set
 * (its name in NAME), or NULL. */
static const char *get_prefixed(cli_getenv_fn get, const char *base, char *name, size_t len)
{
	static const char *const prefixes[] = {"SIFU_", "APPTAINER_", "SINGULARITY_"};
	const char *value = NULL;
	for (size_t p = 0; base && p < ARRAY_SIZE(prefixes) && !value; p++) {
		snprintf(name, len, "%s%s", prefixes[p], base);
		value = get(name);
	}
	return value;
}

int cli_apply_env(const struct cli_verb *v, struct cli_args *a, cli_getenv_fn get,
                  struct sifu_err *err)
{
	for (size_t i = 0; i < O_COUNT; i++) {
		const struct cli_opt *o = &cli_opts[i];
		bool append = env_appends(o->id);
		enum cli_opt_id to = target(o->id);
		if (!(o->verbs & v->bit) || (!append && (a->set[to] || a->source[to])))
			continue;
		char name[128];
		const char *value = get_prefixed(get, o->env, name, sizeof(name));
		if (!value)
			value =
			    get_prefixed(get, cli_opt_verb_env(v->bit, o->id), name, sizeof(name));
		int r = env_take(v, a, o, name, value, err);
		if (r < 0)
			return r;
		/* the extra names are an alternative to the main one, except for
		 * an appending option, where Apptainer applies both (APPTAINER_BIND
		 * and then APPTAINER_BINDPATH) */
		if ((value && !append) || !o->extra_env)
			continue;
		value = NULL;
		_cleanup_free_ char *extra = sifu_xstrdup(o->extra_env);
		char *save = NULL;
		for (char *t = strtok_r(extra, ":", &save); t && !value;
		     t = strtok_r(NULL, ":", &save)) {
			snprintf(name, sizeof(name), "%s", t);
			value = get(name);
		}
		r = env_take(v, a, o, name, value, err);
		if (r < 0)
			return r;
	}
	return 0;
}

void cli_args_free(struct cli_args *a)
{
	for (size_t i = 0; i < O_COUNT; i++) {
		free(a->val[i]);
		for (size_t j = 0; j < a->nlist[i]; j++)
			free(a->list[i][j]);
		free(a->list[i]);
		if (a->source[i] && strcmp(a->source[i], "command line") != 0)
			free((char *)a->source[i]);
	}
	free(a->pos);
	memset(a, 0, sizeof(*a));
}
