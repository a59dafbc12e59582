/* SPDX-License-Identifier: BSD-3-Clause */
/* The definition-file parser.  Pure: it works on a buffer and never touches
 * the system (recipe_load in recipe.c reads the file).
 *
 * The rules follow Apptainer's parser (pkg/build/types/parser/deffile.go,
 * internal/pkg/build/args) so that a file Apptainer builds parses the same
 * way here; where Apptainer silently does something surprising, sifu says
 * so instead (see docs/build.md, "Differences"). */
#include "recipe_priv.h"

#include <ctype.h>
#include <stdarg.h>
#include <strings.h>

/* ------------------------------------------------------------- tables -- */

/* Header keys as Apptainer's validHeaders, spelt the way the serialiser
 * writes them; the parser's keys are these in lower case.  "OtherURL" stands
 * for OtherURL<N>. */
static const char *const header_keys[] = {
    "Bootstrap", "From",      "Stage",     "Fingerprints", "Include",     "IncludeCmd",
    "MirrorURL", "UpdateURL", "OSVersion", "Library",      "Registry",    "Namespace",
    "Product",   "User",      "Regcode",   "ProductPGP",   "RegisterURL", "Modules",
    "ConfURL",   "Setopt",    "OtherURL",
};

/* Bootstrap agents Apptainer knows, and the header keys each one needs. */
static const struct {
	const char *agent;
	const char *needs[2];
} agents[] = {
    {"docker", {"from"}},
    {"docker-archive", {"from"}},
    {"docker-daemon", {"from"}},
    {"oci", {"from"}},
    {"oci-archive", {"from"}},
    {"localimage", {"from"}},
    {"library", {"from"}},
    {"shub", {"from"}},
    {"oras", {"from"}},
    {"scratch", {NULL}},
    {"busybox", {NULL}},
    {"arch", {NULL}},
    {"debootstrap", {"mirrorurl", "osversion"}},
    {"yum", {"mirrorurl"}},
    {"zypper", {NULL}},
};

static const char *const main_sections[] = {"help",        "setup",       "files",    "labels",
                                            "environment", "pre",         "post",     "runscript",
                                            "test",        "startscript", "arguments"};
static const char *const app_sections[] = {"appinstall", "apprun",  "appenv",  "applabels",
                                           "appfiles",   "apphelp", "apptest", "appstart"};

/* ------------------------------------------------------------ helpers -- */

static bool is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

void bld_trim(const char **s, size_t *n)
{
	while (*n && is_blank((unsigned char)**s))
		(*s)++, (*n)--;
	while (*n && is_blank((unsigned char)(*s)[*n - 1]))
		(*n)--;
}

static void lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return 99;
	size_t row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (tolower((unsigned char)a[i - 1]) !=
			                      tolower((unsigned char)b[j - 1]));
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* The hint for an unknown WORD: the nearest of the N known WORDS, if it is
 * close enough to be a typo ("did you mean 'PREFIX<it>'?"), else KNOWN. */
static void suggest(char *hint, size_t len, const char *word, const char *const *words, size_t n,
                    const char *prefix, const char *known)
{
	const char *best = NULL;
	size_t bestd = 3;
	for (size_t i = 0; i < n; i++) {
		size_t d = edit_distance(word, words[i]);
		if (d < bestd)
			bestd = d, best = words[i];
	}
	if (best)
		snprintf(hint, len, "did you mean '%s%s'?", prefix, best);
	else
		snprintf(hint, len, "%s", known);
}

/* ---------------------------------------------------------- the state -- */

struct line {
	const char *s; /* not NUL-terminated */
	size_t n;
	unsigned no; /* 1-based line number in the file */
};

struct pctx {
	const char *name;
	struct recipe *r;
	struct sifu_err *err;
	const struct recipe_buildargs *ba;
	bool *ba_used;
	size_t expanded; /* bytes of expanded lines so far */
	/* the file's text with its templates replaced (Apptainer's FullRaw):
	 * TEXT up to DONE is in RAW already */
	const char *text;
	size_t done;
	struct sifu_buf raw;
};

static int perr(struct pctx *c, unsigned line, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int perr(struct pctx *c, unsigned line, const char *hint, const char *fmt, ...)
{
	char msg[SIFU_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line)
		sifu_err_set(c->err, SIFU_E_CORRUPT, 0, "%s:%u: %s", c->name, line, msg);
	else
		sifu_err_set(c->err, SIFU_E_CORRUPT, 0, "%s: %s", c->name, msg);
	if (hint)
		sifu_err_hint(c->err, "%s", hint);
	return -EINVAL;
}

static void pwarn(struct pctx *c, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void pwarn(struct pctx *c, unsigned line, const char *fmt, ...)
{
	char msg[SIFU_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	struct recipe *r = c->r;
	r->warnings = sifu_xrealloc(r->warnings, (r->nwarnings + 1) * sizeof(char *));
	r->warnings[r->nwarnings++] = line ? sifu_xasprintf("%s:%u: %s", c->name, line, msg)
	                                   : sifu_xasprintf("%s: %s", c->name, msg);
}

/* Shorten a line for quoting it in a message. */
static void quote_line(char *out, size_t outlen, const char *s, size_t n)
{
	bld_trim(&s, &n);
	if (n > 60)
		snprintf(out, outlen, "%.57s...", s);
	else
		snprintf(out, outlen, "%.*s", (int)n, s);
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = '?';
}

/* -------------------------------------------------------------- lines -- */

/* The first word of a line starts with '%': a section line. */
static bool is_section_line(const struct line *l)
{
	size_t i = 0;
	while (i < l->n && is_blank((unsigned char)l->s[i]))
		i++;
	return i < l->n && l->s[i] == '%';
}

/* Split the section line L into its name (after the '%'s, up to a blank)
 * and what follows the name (not trimmed). */
static void section_words(const struct line *l, const char **name, size_t *namen, const char **rest,
                          size_t *restn)
{
	const char *s = l->s;
	size_t n = l->n;
	bld_trim(&s, &n);
	while (n && *s == '%')
		s++, n--;
	size_t w = 0;
	while (w < n && !is_blank((unsigned char)s[w]))
		w++;
	*name = s, *namen = w;
	*rest = s + w, *restn = n - w;
}

/* Apptainer splits stages at (?mi)^bootstrap: */
static bool is_stage_start(const char *s, size_t n)
{
	return n >= 10 && !strncasecmp(s, "bootstrap:", 10);
}

/* "Bootstrap :" with any blanks, the header line Apptainer reads. */
static bool is_bootstrap_line(const struct line *l)
{
	const char *colon = memchr(l->s, ':', l->n);
	if (!colon || is_section_line(l))
		return false;
	const char *k = l->s;
	size_t kn = (size_t)(colon - l->s);
	bld_trim(&k, &kn);
	return kn == 9 && !strncasecmp(k, "bootstrap", 9);
}

static bool is_comment_or_blank(const struct line *l)
{
	const char *s = l->s;
	size_t n = l->n;
	bld_trim(&s, &n);
	return n == 0 || s[0] == '#';
}

/* Split TEXT into lines; trailing '\r's go (CRLF files parse like LF ones). */
static int split_lines(struct pctx *c, const char *text, size_t len, struct line **out,
                       size_t *nout)
{
	size_t cap = 64, n = 0;
	struct line *v = sifu_xmalloc(cap * sizeof(*v));
	size_t start = 0;
	unsigned no = 1;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && text[i] == '\0') {
			free(v);
			return perr(c, no, "a definition file is plain text",
			            "NUL byte in the file");
		}
		if (i < len && text[i] != '\n')
			continue;
		if (i == len && start == len)
			break;
		size_t ln = i - start;
		while (ln && text[start + ln - 1] == '\r') /* Apptainer drops one */
			ln--;
		if (n == cap)
			cap *= 2, v = sifu_xrealloc(v, cap * sizeof(*v));
		v[n++] = (struct line){text + start, ln, no++};
		start = i + 1;
	}
	*out = v;
	*nout = n;
	return 0;
}

/* ---------------------------------------------------------- templates -- */

static bool is_word(int c)
{
	return isalnum(c) || c == '_';
}

/* Where the comment of a line starts (N if none): a '#' at the start of the
 * line or after a blank, not "#!".  Templates after it are left alone. */
static size_t comment_start(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '#' && (i == 0 || is_blank((unsigned char)s[i - 1])) &&
		    (i + 1 >= n || s[i + 1] != '!'))
			return i;
	return n;
}

static const char *lookup_kv(const struct recipe_kv *v, size_t n, const char *key, size_t *idx)
{
	for (size_t i = n; i-- > 0;)
		if (!strcmp(v[i].key, key)) {
			if (idx)
				*idx = i;
			return v[i].value;
		}
	return NULL;
}

struct defaults {
	struct recipe_kv *v;
	size_t n;
};

static const char *arg_value(struct pctx *c, const struct defaults *d, const char *name, bool mark)
{
	size_t idx;
	const char *v = c->ba ? lookup_kv(c->ba->v, c->ba->n, name, &idx) : NULL;
	if (v) {
		if (mark)
			c->ba_used[idx] = true;
		return v;
	}
	return lookup_kv(d->v, d->n, name, NULL);
}

/* Match "{{ \s* NAME \s* }}" at s[i]; returns the length matched, 0 if
 * none; *unterminated when "{{ NAME" runs into the end of the line or a
 * single '}'. */
static size_t match_template(const char *s, size_t n, size_t i, size_t *name_at, size_t *name_len,
                             bool *unterminated)
{
	*unterminated = false;
	if (i + 1 >= n || s[i] != '{' || s[i + 1] != '{')
		return 0;
	size_t j = i + 2;
	while (j < n && is_blank((unsigned char)s[j]))
		j++;
	size_t k = j;
	while (k < n && is_word((unsigned char)s[k]))
		k++;
	if (k == j)
		return 0;
	*name_at = j;
	*name_len = k - j;
	while (k < n && is_blank((unsigned char)s[k]))
		k++;
	if (k + 1 < n && s[k] == '}' && s[k + 1] == '}')
		return k + 2 - i;
	if (k == n || (s[k] == '}' && (k + 1 == n || s[k + 1] != '}')))
		*unterminated = true;
	return 0;
}

/* Replace templates in VALUE itself by known values (one level, as
 * Apptainer); unknown names stay as they are. */
static char *expand_nested(struct pctx *c, const struct defaults *d, const char *value)
{
	struct sifu_buf b = {0};
	size_t n = strlen(value);
	for (size_t i = 0; i < n;) {
		size_t at = 0, ln = 0;
		bool unterminated;
		size_t m = match_template(value, n, i, &at, &ln, &unterminated);
		if (m) {
			char *name = sifu_xstrndup(value + at, ln);
			const char *v = arg_value(c, d, name, true);
			free(name);
			if (v) {
				sifu_buf_str(&b, v);
				i += m;
				continue;
			}
			sifu_buf_add(&b, value + i, m);
			i += m;
			continue;
		}
		sifu_buf_add(&b, value + i, 1);
		i++;
	}
	return sifu_buf_take(&b);
}

/* Does S hold "{{ NAME }}" or "{{ NAME" anywhere?  Used on values that are
 * rebuilt from pieces (joined header lines, unquoted paths): a template that
 * only appears once the pieces are joined would expand when the stored
 * definition is read again. */
static bool has_template(const char *s, char *name, size_t namelen)
{
	size_t n = strlen(s);
	for (size_t i = 0; i < n; i++) {
		size_t at = 0, ln = 0;
		bool unterminated;
		if (match_template(s, n, i, &at, &ln, &unterminated) || unterminated) {
			snprintf(name, namelen, "%.*s", (int)(ln > 40 ? 40 : ln), s + at);
			return true;
		}
	}
	return false;
}

#define LINE_MAX_EXPANDED (4u << 20)
#define FILE_MAX_EXPANDED (32u << 20)

/* Expand the templates of one line; *out is NULL when nothing changed. */
static int expand_line(struct pctx *c, const struct defaults *d, const struct line *l, char **out)
{
	*out = NULL;
	const char *s = l->s;
	size_t n = l->n;
	if (!memchr(s, '{', n))
		return 0;
	_cleanup_buf_ struct sifu_buf b = {0};
	bool changed = false;
	size_t cstart = comment_start(s, n);
	for (size_t i = 0; i < n;) {
		size_t at = 0, ln = 0;
		bool unterminated;
		size_t m = match_template(s, n, i, &at, &ln, &unterminated);
		if (!m && unterminated && i < cstart) {
			return perr(c, l->no, "write a template as {{ NAME }} on one line",
			            "unterminated template '{{ %.*s': expected '}}'", (int)ln,
			            s + at);
		}
		if (!m || i > cstart) {
			sifu_buf_add(&b, s + i, 1);
			i++;
			continue;
		}
		char *name = sifu_xstrndup(s + at, ln);
		const char *v = arg_value(c, d, name, true);
		if (!v) {
			char hint[SIFU_ERR_MSG_MAX];
			snprintf(
			    hint, sizeof(hint),
			    "give it with --build-arg %s=VALUE or --build-arg-file, or a default "
			    "'%s=VALUE' in the %%arguments section",
			    name, name);
			int r = perr(c, l->no, hint, "build variable '%s' is not defined", name);
			free(name);
			return r;
		}
		char *val = expand_nested(c, d, v);
		if (strchr(val, '\n')) {
			int r = perr(c, l->no, "template values are single lines",
			             "the value of build variable '%s' contains a newline", name);
			free(val);
			free(name);
			return r;
		}
		sifu_buf_str(&b, val);
		free(val);
		free(name);
		if (b.len > LINE_MAX_EXPANDED || c->expanded + b.len > FILE_MAX_EXPANDED) {
			/* values used thousands of times */
			return perr(
			    c, l->no, "use fewer or shorter template values",
			    "the %s is longer than %u MiB once its templates are expanded",
			    b.len > LINE_MAX_EXPANDED ? "line" : "file",
			    (b.len > LINE_MAX_EXPANDED ? LINE_MAX_EXPANDED : FILE_MAX_EXPANDED) >>
			        20);
		}
		changed = true;
		i += m;
	}
	if (!changed)
		return 0;
	/* Expanding must leave no template behind (a value naming an unknown or
	 * self-referencing variable, or two values joining into "{{ x }}"):
	 * Apptainer would leave it in, and the stored definition would expand
	 * differently the next time. */
	size_t bstart = comment_start(b.p, b.len);
	for (size_t i = 0; i < bstart; i++) {
		size_t at = 0, ln = 0;
		bool unterminated;
		size_t m = match_template(b.p, b.len, i, &at, &ln, &unterminated);
		if (m || unterminated) {
			int r =
			    perr(c, l->no,
			         "build variable values may use other variables one level deep; "
			         "define every variable they name",
			         "after expansion the line still contains the template '{{ %.*s'",
			         (int)ln, b.p + at);
			return r;
		}
	}
	c->expanded += b.len;
	*out = sifu_buf_take(&b);
	return 0;
}

/* The %arguments defaults of a stage, from its raw lines (as Apptainer
 * reads them before expanding). */
static void read_defaults(struct pctx *c, const struct line *lines, size_t n, struct defaults *d)
{
	bool in_args = false;
	for (size_t i = 0; i < n; i++) {
		const struct line *l = &lines[i];
		if (is_section_line(l)) {
			const char *name, *rest;
			size_t namen, restn;
			section_words(l, &name, &namen, &rest, &restn);
			in_args = namen == 9 && !strncasecmp(name, "arguments", 9);
			continue;
		}
		if (!in_args || is_comment_or_blank(l))
			continue;
		const char *s = l->s;
		size_t len = l->n;
		bld_trim(&s, &len);
		const char *eq = memchr(s, '=', len);
		const char *k = s;
		size_t kn = eq ? (size_t)(eq - s) : 0;
		bld_trim(&k, &kn);
		if (!eq || kn == 0) {
			char q[80];
			quote_line(q, sizeof(q), s, len);
			pwarn(c, l->no, "skipping '%s' in %%arguments: not KEY=VALUE", q);
			continue;
		}
		const char *v = eq + 1;
		size_t vn = len - (size_t)(eq + 1 - s);
		bld_trim(&v, &vn);
		d->v = sifu_xrealloc(d->v, (d->n + 1) * sizeof(*d->v));
		d->v[d->n++] =
		    (struct recipe_kv){sifu_xstrndup(k, kn), sifu_xstrndup(v, vn), l->no};
	}
}

static void free_kvs(struct recipe_kv *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].key), free(v[i].value);
	free(v);
}

/* ------------------------------------------------------------- header -- */

static const char *header_display(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(header_keys); i++)
		if (!strcasecmp(header_keys[i], key))
			return header_keys[i];
	return NULL;
}

static bool header_key_valid(const char *key)
{
	if (header_display(key))
		return strcmp(key, "otherurl") != 0;
	/* OtherURL<N> */
	size_t n = strlen(key);
	if (n > 8 && !strncmp(key, "otherurl", 8)) {
		for (size_t i = 8; i < n; i++)
			if (!isdigit((unsigned char)key[i]))
				return false;
		return true;
	}
	return false;
}

const char *recipe_header_get(const struct recipe_stage *s, const char *key)
{
	for (size_t i = 0; i < s->nheader; i++)
		if (!strcasecmp(s->header[i].key, key))
			return s->header[i].value;
	return NULL;
}

static int header_set(struct pctx *c, struct recipe_stage *st, char *key, char *value,
                      unsigned line)
{
	if (!header_key_valid(key)) {
		char hint[SIFU_ERR_MSG_MAX];
		suggest(hint, sizeof(hint), key, header_keys, ARRAY_SIZE(header_keys), "",
		        "header keys are Bootstrap, From, Stage, Fingerprints, Include, "
		        "MirrorURL, OSVersion, UpdateURL, Registry, Namespace, Library, "
		        "IncludeCmd, Product, User, Regcode, ProductPGP, RegisterURL, "
		        "Modules, OtherURL<N>, ConfURL, Setopt; sections start with %");
		int r = perr(c, line, hint, "unknown header key '%s'", key);
		free(key);
		free(value);
		return r;
	}
	/* "a \" continued by nothing would keep its blank: a value never ends
	 * in blanks */
	size_t vl = strlen(value);
	while (vl && is_blank((unsigned char)value[vl - 1]))
		value[--vl] = '\0';
	char tname[48];
	if (has_template(value, tname, sizeof(tname))) {
		int r = perr(c, line, "write {{ NAME }} whole on one line, before any '#'",
		             "header value of '%s' holds a broken template '{{ %s'", key, tname);
		free(key);
		free(value);
		return r;
	}
	for (size_t i = 0; i < st->nheader; i++)
		if (!strcmp(st->header[i].key, key)) {
			pwarn(c, line,
			      "header key '%s' given again (first at line %u): the last value is "
			      "used",
			      header_display(key) ? header_display(key) : key, st->header[i].line);
			free(st->header[i].value);
			st->header[i].value = value;
			st->header[i].line = line;
			free(key);
			return 0;
		}
	st->header = sifu_xrealloc(st->header, (st->nheader + 1) * sizeof(*st->header));
	st->header[st->nheader++] = (struct recipe_kv){key, value, line};
	return 0;
}

/* Header lines: "Key: value", '#' comments (anywhere), blank lines, and
 * continuation lines ending in '\' (a literal "\n" just before it becomes a
 * newline), as Apptainer's doHeader. */
static int parse_header(struct pctx *c, struct recipe_stage *st, const struct line *lines, size_t n)
{
	char *ckey = NULL;
	struct sifu_buf cval;
	cval = (struct sifu_buf){0};
	unsigned cline = 0;
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		const struct line *l = &lines[i];
		const char *s = l->s;
		size_t len = l->n;
		bld_trim(&s, &len);
		if (len == 0 || s[0] == '#') {
			if (ckey) {
				r = header_set(c, st, ckey, sifu_buf_take(&cval), cline);
				ckey = NULL;
			}
			continue;
		}
		const char *hash = memchr(s, '#', len);
		if (hash)
			len = (size_t)(hash - s);
		char *key;
		struct sifu_buf val;
		val = (struct sifu_buf){0};
		unsigned kline;
		if (!ckey) {
			const char *colon = memchr(s, ':', len);
			if (!colon) {
				char q[80];
				quote_line(q, sizeof(q), s, len);
				return perr(c, l->no,
				            "header lines are 'Key: value'; sections start with % "
				            "(e.g. %post)",
				            "expected 'Key: value' in the header, found '%s'", q);
			}
			const char *k = s, *v = colon + 1;
			size_t kn = (size_t)(colon - s), vn = len - kn - 1;
			bld_trim(&k, &kn);
			bld_trim(&v, &vn);
			key = sifu_xstrndup(k, kn);
			lower(key);
			size_t sp = strcspn(key, " \t\v\f\r");
			if (key[sp]) { /* "From ubuntu:24.04": the ':' is the image's */
				char q[80], hint[SIFU_ERR_MSG_MAX];
				quote_line(q, sizeof(q), s, len);
				key[sp] = '\0';
				if (header_key_valid(key))
					snprintf(hint, sizeof(hint), "a ':' is missing after '%s'",
					         header_display(key));
				else
					snprintf(hint, sizeof(hint),
					         "header lines are 'Key: value'; sections start "
					         "with %%");
				free(key);
				return perr(c, l->no, hint,
				            "expected 'Key: value' in the header, found '%s'", q);
			}
			sifu_buf_add(&val, v, vn);
			kline = l->no;
		} else {
			key = ckey;
			ckey = NULL;
			val = cval;
			cval = (struct sifu_buf){0};
			const char *v = s;
			size_t vn = len;
			bld_trim(&v, &vn);
			sifu_buf_add(&val, v, vn);
			kline = cline;
		}
		if (val.len && val.p[val.len - 1] == '\\') {
			val.p[--val.len] = '\0';
			if (val.len >= 2 && val.p[val.len - 2] == '\\' &&
			    val.p[val.len - 1] == 'n') {
				val.len -= 2;
				sifu_buf_add(&val, "\n", 1);
			}
			ckey = key;
			cval = val;
			cline = kline;
			continue;
		}
		r = header_set(c, st, key, sifu_buf_take(&val), kline);
	}
	if (ckey) {
		if (r == 0)
			r = header_set(c, st, ckey, sifu_buf_take(&cval), cline);
		else
			free(ckey), free(cval.p);
	}
	return r;
}

/* ---------------------------------------------------------- sections -- */

static void script_add(struct recipe_script *sc, const char *args, const struct line *body,
                       size_t nbody, unsigned line)
{
	struct sifu_buf b = {0};
	if (sc->text)
		sifu_buf_str(&b, sc->text);
	for (size_t i = 0; i < nbody; i++) {
		sifu_buf_add(&b, body[i].s, body[i].n);
		sifu_buf_add(&b, "\n", 1);
	}
	free(sc->text);
	sc->text = sifu_buf_take(&b);
	if (args) { /* a later section's arguments win, as in Apptainer */
		free(sc->args);
		sc->args = sifu_xstrdup(args);
	}
	if (!sc->line)
		sc->line = line;
}

/* Split a %files line into words: blanks separate, "..." and '...' quote
 * (the quotes go), an unquoted word starting with '#' starts a comment, as
 * in a shell.  (Apptainer takes the first two words whatever they are: for
 * "/a # note" it copies /a to a file named "#".) */
static int split_words(struct pctx *c, const struct line *l, char ***out, size_t *nout)
{
	const char *s = l->s;
	size_t n = l->n;
	bld_trim(&s, &n);
	char **v = NULL;
	size_t nv = 0;
	for (size_t i = 0; i < n;) {
		while (i < n && is_blank((unsigned char)s[i]))
			i++;
		if (i == n || s[i] == '#') /* "/a /b  # why": a comment, as in a shell */
			break;
		_cleanup_buf_ struct sifu_buf w = {0};
		sifu_buf_add(&w, "", 0);
		while (i < n && !is_blank((unsigned char)s[i])) {
			if (s[i] == '"' || s[i] == '\'') {
				char q = s[i];
				const char *end = memchr(s + i + 1, q, n - i - 1);
				if (!end) {
					for (size_t k = 0; k < nv; k++)
						free(v[k]);
					free(v);
					return perr(c, l->no,
					            "close the quote, or quote the whole path",
					            "unterminated %c quote in a %%files line", q);
				}
				sifu_buf_add(&w, s + i + 1, (size_t)(end - (s + i + 1)));
				i = (size_t)(end - s) + 1;
			} else {
				sifu_buf_add(&w, s + i, 1);
				i++;
			}
		}
		v = sifu_xrealloc(v, (nv + 1) * sizeof(*v));
		v[nv++] = sifu_buf_take(&w);
	}
	*out = v;
	*nout = nv;
	return 0;
}

static int parse_file_lines(struct pctx *c, const struct line *body, size_t nbody,
                            struct recipe_file **files, size_t *nfiles, const char *section)
{
	for (size_t i = 0; i < nbody; i++) {
		if (is_comment_or_blank(&body[i]))
			continue;
		char **w = NULL;
		size_t nw = 0;
		if (split_words(c, &body[i], &w, &nw) < 0)
			return -EINVAL;
		int r = 0;
		if (nw > 2)
			r = perr(
			    c, body[i].no, "quote a path that contains spaces: \"my file\" /opt/",
			    "%s line has %zu paths: expected 'SOURCE [DESTINATION]'", section, nw);
		else if (nw == 0 || w[0][0] == '\0' || (nw == 2 && w[1][0] == '\0'))
			r = perr(c, body[i].no, "remove the empty quotes",
			         "%s line has an empty path: expected 'SOURCE [DESTINATION]'",
			         section);
		char tname[48];
		for (size_t k = 0; r == 0 && k < nw; k++)
			if (has_template(w[k], tname, sizeof(tname)))
				r = perr(c, body[i].no, "write {{ NAME }} whole, outside quotes",
				         "%s path '%s' holds a broken template '{{ %s'", section,
				         w[k], tname);
		if (r < 0 || nw == 0) { /* nw == 0 set r above: said for the analyser */
			for (size_t k = 0; k < nw; k++)
				free(w[k]);
			free(w);
			return r < 0 ? r : -EINVAL;
		}
		*files = sifu_xrealloc(*files, (*nfiles + 1) * sizeof(**files));
		(*files)[(*nfiles)++] =
		    (struct recipe_file){w[0], nw == 2 ? w[1] : NULL, body[i].no};
		free(w);
	}
	return 0;
}

/* Labels: "KEY VALUE" lines, split at the first blank; a later key replaces
 * an earlier one (Apptainer keeps them in a map). */
static void parse_label_lines(const struct line *body, size_t nbody, struct recipe_kv **labels,
                              size_t *nlabels)
{
	for (size_t i = 0; i < nbody; i++) {
		if (is_comment_or_blank(&body[i]))
			continue;
		const char *s = body[i].s;
		size_t n = body[i].n;
		bld_trim(&s, &n);
		size_t k = 0;
		while (k < n && !is_blank((unsigned char)s[k]))
			k++;
		const char *v = s + k;
		size_t vn = n - k;
		bld_trim(&v, &vn);
		char *key = sifu_xstrndup(s, k);
		size_t idx;
		if (lookup_kv(*labels, *nlabels, key, &idx)) {
			free(key);
			free((*labels)[idx].value);
			(*labels)[idx].value = sifu_xstrndup(v, vn);
			(*labels)[idx].line = body[i].no;
			continue;
		}
		*labels = sifu_xrealloc(*labels, (*nlabels + 1) * sizeof(**labels));
		(*labels)[(*nlabels)++] = (struct recipe_kv){key, sifu_xstrndup(v, vn), body[i].no};
	}
}

static struct recipe_app *find_app(struct recipe_stage *st, const char *name, unsigned line)
{
	for (size_t i = 0; i < st->napps; i++)
		if (!strcmp(st->apps[i].name, name))
			return &st->apps[i];
	st->apps = sifu_xrealloc(st->apps, (st->napps + 1) * sizeof(*st->apps));
	struct recipe_app *a = &st->apps[st->napps++];
	memset(a, 0, sizeof(*a));
	a->name = sifu_xstrdup(name);
	a->line = line;
	return a;
}

/* Where the script section NAME lives in a stage or an app. */
struct script_field {
	const char *name;
	size_t off;
};

static struct recipe_script *find_script(void *owner, const struct script_field *map, size_t n,
                                         const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(map[i].name, name))
			return (struct recipe_script *)((char *)owner + map[i].off);
	return NULL;
}

/* clang-format off */
#define SCRIPT_FIELD(type, field) {#field, offsetof(type, field)}
/* clang-format on */

static struct recipe_script *main_script(struct recipe_stage *st, const char *name)
{
	static const struct script_field map[] = {
	    SCRIPT_FIELD(struct recipe_stage, help),
	    SCRIPT_FIELD(struct recipe_stage, setup),
	    SCRIPT_FIELD(struct recipe_stage, environment),
	    SCRIPT_FIELD(struct recipe_stage, pre),
	    SCRIPT_FIELD(struct recipe_stage, post),
	    SCRIPT_FIELD(struct recipe_stage, runscript),
	    SCRIPT_FIELD(struct recipe_stage, startscript),
	    SCRIPT_FIELD(struct recipe_stage, test),
	    SCRIPT_FIELD(struct recipe_stage, arguments),
	};
	return find_script(st, map, ARRAY_SIZE(map), name);
}

/* NAME is "app" and the field: %appinstall, %apprun ... */
static struct recipe_script *app_script(struct recipe_app *a, const char *name)
{
	static const struct script_field map[] = {
	    SCRIPT_FIELD(struct recipe_app, install), SCRIPT_FIELD(struct recipe_app, run),
	    SCRIPT_FIELD(struct recipe_app, env),     SCRIPT_FIELD(struct recipe_app, help),
	    SCRIPT_FIELD(struct recipe_app, test),    SCRIPT_FIELD(struct recipe_app, start),
	};
	return strncmp(name, "app", 3) ? NULL : find_script(a, map, ARRAY_SIZE(map), name + 3);
}

static bool in_list(const char *w, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(w, list[i]))
			return true;
	return false;
}

static int files_section(struct pctx *c, struct recipe_stage *st, size_t stage_idx,
                         const char *args, const struct line *body, size_t nbody, unsigned line)
{
	char *from = NULL;
	/* "%files from build # why": a comment after the arguments goes, as
	 * Apptainer's build cuts them at the first '#' (stage.go) */
	size_t n = args ? strcspn(args, "#") : 0;
	const char *s = args;
	if (s)
		bld_trim(&s, &n);
	if (n) {
		if (n > 4 && !strncasecmp(s, "from", 4) && is_blank((unsigned char)s[4])) {
			const char *v = s + 4;
			size_t vn = n - 4;
			bld_trim(&v, &vn);
			bool one_word = vn > 0;
			for (size_t i = 0; i < vn; i++)
				if (is_blank((unsigned char)v[i]))
					one_word = false;
			if (one_word)
				from = sifu_xstrndup(v, vn);
		}
		if (!from)
			return perr(c, line, "write '%files' or '%files from STAGE'",
			            "%%files takes no arguments or 'from STAGE', found '%s'", args);
		bool found = false;
		for (size_t i = 0; i < stage_idx && !found; i++)
			found = c->r->stages[i].name && !strcmp(c->r->stages[i].name, from);
		if (!found) {
			char hint[SIFU_ERR_MSG_MAX];
			snprintf(hint, sizeof(hint),
			         "name a stage with 'Stage: %s' in the header of an earlier stage; "
			         "files can only come from stages above this one",
			         from);
			int r =
			    perr(c, line, hint, "%%files from '%s': no earlier stage is named '%s'",
			         from, from);
			free(from);
			return r;
		}
	}
	struct recipe_files *g = NULL;
	for (size_t i = 0; i < st->nfiles; i++) {
		const char *f = st->files[i].from_stage;
		if ((!f && !from) || (f && from && !strcmp(f, from)))
			g = &st->files[i];
	}
	if (!g) {
		st->files = sifu_xrealloc(st->files, (st->nfiles + 1) * sizeof(*st->files));
		g = &st->files[st->nfiles++];
		memset(g, 0, sizeof(*g));
		g->args = from ? sifu_xasprintf("from %s", from) : NULL;
		g->from_stage = from;
		g->line = line;
		from = NULL;
	}
	free(from);
	return parse_file_lines(c, body, nbody, &g->files, &g->nfiles, "%files");
}

static int section(struct pctx *c, struct recipe_stage *st, size_t stage_idx,
                   const struct line *hdr, const struct line *body, size_t nbody)
{
	const char *s, *a;
	size_t w, an;
	section_words(hdr, &s, &w, &a, &an);
	_cleanup_free_ char *name = sifu_xstrndup(s, w);
	lower(name);
	bld_trim(&a, &an);
	_cleanup_free_ char *args = an ? sifu_xstrndup(a, an) : NULL;

	if (in_list(name, app_sections, ARRAY_SIZE(app_sections))) {
		if (!args)
			return perr(c, hdr->no, "write e.g. '%apprun myapp'",
			            "%%%s needs an app name", name);
		size_t k = 0;
		while (args[k] && !is_blank((unsigned char)args[k]))
			k++;
		if (args[k])
			pwarn(c, hdr->no, "%%%s: words after the app name '%.*s' are ignored", name,
			      (int)k, args);
		args[k] = '\0';
		char tname[48];
		if (has_template(args, tname, sizeof(tname)))
			return perr(c, hdr->no, "write {{ NAME }} whole",
			            "app name '%s' holds a broken template '{{ %s'", args, tname);
		struct recipe_app *app = find_app(st, args, hdr->no);
		if (!strcmp(name, "applabels"))
			parse_label_lines(body, nbody, &app->labels, &app->nlabels);
		else if (!strcmp(name, "appfiles"))
			return parse_file_lines(c, body, nbody, &app->files, &app->nfiles,
			                        "%appfiles");
		else
			script_add(app_script(app, name), NULL, body, nbody, hdr->no);
		return 0;
	}
	if (!in_list(name, main_sections, ARRAY_SIZE(main_sections))) {
		const char *all[ARRAY_SIZE(main_sections) + ARRAY_SIZE(app_sections)];
		memcpy(all, main_sections, sizeof(main_sections));
		memcpy(all + ARRAY_SIZE(main_sections), app_sections, sizeof(app_sections));
		char hint[SIFU_ERR_MSG_MAX];
		suggest(hint, sizeof(hint), name, all, ARRAY_SIZE(all), "%",
		        "sections are %help %setup %files %labels %environment %pre "
		        "%post %runscript %startscript %test %arguments and %app* NAME");
		return perr(c, hdr->no, hint, "unknown section '%%%s'", name);
	}
	if (!strcmp(name, "files"))
		return files_section(c, st, stage_idx, args, body, nbody, hdr->no);
	if (!strcmp(name, "labels")) {
		parse_label_lines(body, nbody, &st->labels, &st->nlabels);
		return 0;
	}
	script_add(main_script(st, name), args, body, nbody, hdr->no);
	return 0;
}

/* ------------------------------------------------------------- stages -- */

static int check_stage(struct pctx *c, struct recipe_stage *st, size_t idx)
{
	const char *agent = recipe_header_get(st, "bootstrap");
	if (!agent || !*agent)
		return perr(c, st->line, "write e.g. 'Bootstrap: docker'",
		            "Bootstrap has no value: expected a bootstrap agent");
	/* Apptainer matches agents exactly; any case is accepted here */
	for (size_t i = 0; i < st->nheader; i++)
		if (!strcmp(st->header[i].key, "bootstrap"))
			lower(st->header[i].value);
	agent = recipe_header_get(st, "bootstrap");
	size_t k;
	for (k = 0; k < ARRAY_SIZE(agents); k++)
		if (!strcmp(agents[k].agent, agent))
			break;
	if (k == ARRAY_SIZE(agents)) {
		const char *names[ARRAY_SIZE(agents)];
		for (size_t i = 0; i < ARRAY_SIZE(agents); i++)
			names[i] = agents[i].agent;
		char hint[SIFU_ERR_MSG_MAX];
		suggest(hint, sizeof(hint), agent, names, ARRAY_SIZE(names), "Bootstrap: ",
		        "agents are docker, localimage, oras, scratch, busybox, debootstrap, "
		        "library, shub, oci, oci-archive, docker-archive, docker-daemon, yum, "
		        "zypper, arch");
		return perr(c, st->line, hint, "unknown bootstrap agent '%s'", agent);
	}
	for (size_t j = 0; j < ARRAY_SIZE(agents[k].needs) && agents[k].needs[j]; j++) {
		const char *key = agents[k].needs[j];
		const char *v = recipe_header_get(st, key);
		if (!v || !*v) {
			char hint[SIFU_ERR_MSG_MAX];
			if (!strcmp(key, "from"))
				snprintf(hint, sizeof(hint), "add e.g. 'From: %s' to the header",
				         !strcmp(agent, "docker")       ? "ubuntu:24.04"
				         : !strcmp(agent, "localimage") ? "base.sif"
				                                        : "SOURCE");
			else
				snprintf(hint, sizeof(hint), "add '%s: ...' to the header",
				         header_display(key));
			return perr(c, st->line, hint, "'Bootstrap: %s' needs a %s: line", agent,
			            header_display(key));
		}
	}
	st->bootstrap = agent;
	st->from = recipe_header_get(st, "from");
	st->name = recipe_header_get(st, "stage");
	unsigned sline = st->line; /* errors about the name point at its line */
	for (size_t i = 0; i < st->nheader; i++)
		if (!strcmp(st->header[i].key, "stage"))
			sline = st->header[i].line;
	if (st->name && !*st->name)
		return perr(c, sline, "write e.g. 'Stage: build'", "Stage: has no value");
	if (st->name && strpbrk(st->name, " \t\n\v\f\r"))
		return perr(c, sline, "use one word, e.g. 'Stage: build'",
		            "stage name '%s' has blanks: '%%files from' could not name it",
		            st->name);
	for (size_t i = 0; i < idx; i++)
		if (st->name && c->r->stages[i].name && !strcmp(c->r->stages[i].name, st->name))
			return perr(c, sline, "give each stage its own name",
			            "stage name '%s' is already used by the stage at line %u",
			            st->name, c->r->stages[i].line);
	return 0;
}

/* One stage: LINES are its raw lines, the first one "Bootstrap:". */
static int parse_stage(struct pctx *c, const struct line *raw, size_t n, size_t idx)
{
	struct recipe_stage *st = &c->r->stages[idx];
	memset(st, 0, sizeof(*st));
	st->line = raw[0].no;

	struct defaults d = {0};
	read_defaults(c, raw, n, &d);

	/* expand templates line by line: line numbers stay those of the file */
	struct line *lines = sifu_xmalloc(n * sizeof(*lines));
	char **owned = sifu_xcalloc(n, sizeof(char *));
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		lines[i] = raw[i];
		r = expand_line(c, &d, &raw[i], &owned[i]);
		if (r == 0 && owned[i]) {
			lines[i].s = owned[i];
			lines[i].n = strlen(owned[i]);
			size_t at = (size_t)(raw[i].s - c->text);
			sifu_buf_add(&c->raw, c->text + c->done, at - c->done);
			sifu_buf_str(&c->raw, owned[i]);
			c->done = at + raw[i].n;
			if (i > 0 && is_stage_start(lines[i].s, lines[i].n))
				r = perr(
				    c, lines[i].no, "a Bootstrap line cannot come from a template",
				    "this line starts a new stage once its templates are expanded");
		}
	}

	size_t i = 0;
	if (r == 0) {
		while (i < n && !is_section_line(&lines[i]))
			i++;
		r = parse_header(c, st, lines, i);
	}
	if (r == 0)
		r = check_stage(c, st, idx);
	while (r == 0 && i < n) {
		size_t j = i + 1;
		while (j < n && !is_section_line(&lines[j]))
			j++;
		r = section(c, st, idx, &lines[i], lines + i + 1, j - i - 1);
		i = j;
	}
	for (size_t k = 0; k < n; k++)
		free(owned[k]);
	free(owned);
	free(lines);
	free_kvs(d.v, d.n);
	return r;
}

/* Lines before the first Bootstrap: only comments and blank lines. */
static int check_preamble(struct pctx *c, const struct line *lines, size_t n, bool any_stage)
{
	for (size_t i = 0; i < n; i++) {
		const struct line *l = &lines[i];
		if (is_comment_or_blank(l))
			continue;
		char q[80];
		quote_line(q, sizeof(q), l->s, l->n);
		if (is_section_line(l))
			return perr(
			    c, l->no,
			    "a definition file starts with a header, e.g. 'Bootstrap: docker' "
			    "and 'From: ubuntu:24.04'",
			    "section '%s' before the header", q);
		const char *colon = memchr(l->s, ':', l->n);
		if (colon && any_stage) {
			return perr(c, l->no, "move the Bootstrap line to the top of the header",
			            "header line '%s' before Bootstrap: Bootstrap must come first",
			            q);
		}
		return perr(c, l->no,
		            "a definition file starts with 'Bootstrap: AGENT', e.g. 'Bootstrap: "
		            "docker'",
		            "expected 'Bootstrap: AGENT', found '%s'", q);
	}
	if (!any_stage)
		return perr(c, n ? lines[n - 1].no : 0,
		            "a definition file starts with 'Bootstrap: AGENT', e.g. 'Bootstrap: "
		            "docker'",
		            n ? "no Bootstrap line: the file has only comments"
		              : "empty definition file");
	return 0;
}

int recipe_parse(const char *name, const char *text, size_t len, const struct recipe_buildargs *ba,
                 struct recipe **out, struct sifu_err *err)
{
	struct recipe *r = sifu_xcalloc(1, sizeof(*r));
	r->name = sifu_xstrdup(name ? name : "definition file");
	_cleanup_buf_ struct sifu_buf raw = {0};
	struct pctx c = {.name = r->name, .r = r, .err = err, .ba = ba, .text = text};
	c.ba_used = sifu_xcalloc(ba && ba->n ? ba->n : 1, sizeof(bool));

	struct line *lines = NULL;
	size_t n = 0;
	int ret = split_lines(&c, text, len, &lines, &n);
	/* The first stage may start with an indented "Bootstrap :" line, which
	 * Apptainer accepts in a single-stage file; later ones start only at
	 * "bootstrap:" in column 0, as Apptainer splits them. */
	size_t first = n, nstages = 0;
	for (size_t i = 0; ret == 0 && i < n; i++)
		if (is_stage_start(lines[i].s, lines[i].n) ||
		    (first == n && is_bootstrap_line(&lines[i]))) {
			if (first == n)
				first = i;
			nstages++;
		}
	if (ret == 0)
		ret = check_preamble(&c, lines, first, nstages > 0);
	if (ret == 0) {
		r->stages = sifu_xcalloc(nstages, sizeof(*r->stages));
		for (size_t i = first; ret == 0 && i < n;) {
			size_t j = i + 1;
			while (j < n && !is_stage_start(lines[j].s, lines[j].n))
				j++;
			ret = parse_stage(&c, lines + i, j - i, r->nstages);
			r->nstages++; /* so recipe_free frees a half-parsed stage */
			i = j;
		}
	}
	/* lookups find the last occurrence of a key: that one is marked used */
	for (size_t i = 0; ret == 0 && ba && i < ba->n; i++) {
		size_t last = 0;
		lookup_kv(ba->v, ba->n, ba->v[i].key, &last);
		if (last == i && !c.ba_used[i]) {
			r->unused = sifu_xrealloc(r->unused, (r->nunused + 1) * sizeof(char *));
			r->unused[r->nunused++] = sifu_xstrdup(ba->v[i].key);
		}
	}
	free(lines);
	free(c.ba_used);
	raw = c.raw;
	if (ret < 0) {
		recipe_free(r);
		return ret;
	}
	sifu_buf_add(&raw, text + c.done, len - c.done);
	r->raw = sifu_buf_take(&raw);
	*out = r;
	return 0;
}

/* ------------------------------------------------------------- freeing -- */

static void script_free(struct recipe_script *s)
{
	free(s->args);
	free(s->text);
}

static void files_free(struct recipe_file *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(f[i].src), free(f[i].dst);
	free(f);
}

void recipe_free(struct recipe *r)
{
	if (!r)
		return;
	free(r->raw);
	for (size_t i = 0; i < r->nstages; i++) {
		struct recipe_stage *st = &r->stages[i];
		free_kvs(st->header, st->nheader);
		struct recipe_script *scripts[] = {&st->help,        &st->setup, &st->environment,
		                                   &st->pre,         &st->post,  &st->runscript,
		                                   &st->startscript, &st->test,  &st->arguments};
		for (size_t k = 0; k < ARRAY_SIZE(scripts); k++)
			script_free(scripts[k]);
		free_kvs(st->labels, st->nlabels);
		for (size_t k = 0; k < st->nfiles; k++) {
			free(st->files[k].args);
			free(st->files[k].from_stage);
			files_free(st->files[k].files, st->files[k].nfiles);
		}
		free(st->files);
		for (size_t k = 0; k < st->napps; k++) {
			struct recipe_app *a = &st->apps[k];
			free(a->name);
			script_free(&a->install), script_free(&a->run), script_free(&a->env);
			script_free(&a->help), script_free(&a->test), script_free(&a->start);
			free_kvs(a->labels, a->nlabels);
			files_free(a->files, a->nfiles);
		}
		free(st->apps);
	}
	free(r->stages);
	for (size_t i = 0; i < r->nwarnings; i++)
		free(r->warnings[i]);
	free(r->warnings);
	for (size_t i = 0; i < r->nunused; i++)
		free(r->unused[i]);
	free(r->unused);
	free(r->name);
	free(r);
}

/* ------------------------------------------------------------ queries -- */

const struct recipe_stage *recipe_find_stage(const struct recipe *r, const char *name)
{
	for (size_t i = 0; i < r->nstages; i++)
		if (r->stages[i].name && !strcmp(r->stages[i].name, name))
			return &r->stages[i];
	return NULL;
}

bool recipe_agent_known(const char *agent)
{
	for (size_t i = 0; i < ARRAY_SIZE(agents); i++)
		if (!strcasecmp(agents[i].agent, agent))
			return true;
	return false;
}

void bld_header_display(const char *key, char *buf, size_t len)
{
	const char *d = header_display(key);
	if (d)
		snprintf(buf, len, "%s", d);
	else if (!strncmp(key, "otherurl", 8))
		snprintf(buf, len, "OtherURL%s", key + 8);
	else
		snprintf(buf, len, "%s", key);
}
