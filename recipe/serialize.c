/* SPDX-License-Identifier: BSD-3-Clause */
/* The recipe back to definition-file text.  Apptainer stores a definition
 * in every image it builds; this writes one that parses to the same recipe
 * (tests/unit/test_recipe.c and the fuzz target check the round trip). */
#include "recipe_priv.h"

/* A header value: newlines become "\n\" continuations; a trailing '\' is
 * doubled and followed by a blank line so it does not continue. */
static void put_header(struct sifu_buf *b, const char *key, const char *value)
{
	char disp[96];
	bld_header_display(key, disp, sizeof(disp));
	sifu_buf_printf(b, "%s: ", disp);
	const char *p = value;
	for (;;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		sifu_buf_add(b, p, n);
		if (!nl)
			break;
		sifu_buf_str(b, "\\n\\\n    ");
		p = nl + 1;
	}
	size_t n = strlen(value);
	if (n && value[n - 1] == '\\')
		sifu_buf_str(b, "\\\n");
	sifu_buf_str(b, "\n");
}

static bool needs_quotes(const char *s)
{
	if (!*s || *s == '#' || *s == '%')
		return true;
	for (; *s; s++)
		if (*s == ' ' || *s == '\t' || *s == '\v' || *s == '\f' || *s == '\r' ||
		    *s == '"' || *s == '\'')
			return true;
	return false;
}

/* Double quotes, with a '"' inside written as '"' in single quotes. */
static void put_path(struct sifu_buf *b, const char *s)
{
	if (!needs_quotes(s)) {
		sifu_buf_str(b, s);
		return;
	}
	sifu_buf_str(b, "\"");
	for (; *s; s++) {
		if (*s == '"')
			sifu_buf_str(b, "\"'\"'\"");
		else
			sifu_buf_add(b, s, 1);
	}
	sifu_buf_str(b, "\"");
}

static void put_files(struct sifu_buf *b, const char *head, const struct recipe_file *f, size_t n)
{
	sifu_buf_str(b, head);
	for (size_t i = 0; i < n; i++) {
		sifu_buf_str(b, "    ");
		put_path(b, f[i].src);
		if (f[i].dst) {
			sifu_buf_str(b, " ");
			put_path(b, f[i].dst);
		}
		sifu_buf_str(b, "\n");
	}
}

static void put_labels(struct sifu_buf *b, const char *head, const struct recipe_kv *l, size_t n)
{
	sifu_buf_str(b, head);
	for (size_t i = 0; i < n; i++) {
		if (l[i].value[0])
			sifu_buf_printf(b, "    %s %s\n", l[i].key, l[i].value);
		else
			sifu_buf_printf(b, "    %s\n", l[i].key);
	}
}

static bool put_script(struct sifu_buf *b, const char *name, const char *app,
                       const struct recipe_script *s)
{
	if (!s->text)
		return false;
	sifu_buf_printf(b, "%%%s", name);
	if (app)
		sifu_buf_printf(b, " %s", app);
	if (s->args)
		sifu_buf_printf(b, " %s", s->args);
	sifu_buf_str(b, "\n");
	sifu_buf_str(b, s->text);
	return true;
}

static void put_app(struct sifu_buf *b, const struct recipe_app *a)
{
	bool any = false;
	any |= put_script(b, "appinstall", a->name, &a->install);
	any |= put_script(b, "apprun", a->name, &a->run);
	any |= put_script(b, "appenv", a->name, &a->env);
	any |= put_script(b, "apphelp", a->name, &a->help);
	any |= put_script(b, "apptest", a->name, &a->test);
	any |= put_script(b, "appstart", a->name, &a->start);
	if (a->nlabels || !any) {
		char *head = sifu_xasprintf("%%applabels %s\n", a->name);
		put_labels(b, head, a->labels, a->nlabels);
		free(head);
	}
	if (a->nfiles) {
		char *head = sifu_xasprintf("%%appfiles %s\n", a->name);
		put_files(b, head, a->files, a->nfiles);
		free(head);
	}
}

static void put_stage(struct sifu_buf *b, const struct recipe_stage *st)
{
	put_header(b, "bootstrap", st->bootstrap);
	for (size_t i = 0; i < st->nheader; i++)
		if (strcmp(st->header[i].key, "bootstrap"))
			put_header(b, st->header[i].key, st->header[i].value);
	sifu_buf_str(b, "\n");
	put_script(b, "arguments", NULL, &st->arguments);
	if (st->nlabels)
		put_labels(b, "%labels\n", st->labels, st->nlabels);
	for (size_t i = 0; i < st->nfiles; i++) {
		char *head = st->files[i].from_stage
		                 ? sifu_xasprintf("%%files from %s\n", st->files[i].from_stage)
		                 : sifu_xstrdup("%files\n");
		put_files(b, head, st->files[i].files, st->files[i].nfiles);
		free(head);
	}
	put_script(b, "help", NULL, &st->help);
	put_script(b, "setup", NULL, &st->setup);
	put_script(b, "pre", NULL, &st->pre);
	put_script(b, "post", NULL, &st->post);
	put_script(b, "environment", NULL, &st->environment);
	put_script(b, "runscript", NULL, &st->runscript);
	put_script(b, "startscript", NULL, &st->startscript);
	put_script(b, "test", NULL, &st->test);
	for (size_t i = 0; i < st->napps; i++)
		put_app(b, &st->apps[i]);
}

char *recipe_serialize(const struct recipe *r)
{
	struct sifu_buf b;
	b = (struct sifu_buf){0};
	for (size_t i = 0; i < r->nstages; i++) {
		put_stage(&b, &r->stages[i]);
	}
	return sifu_buf_take(&b);
}
