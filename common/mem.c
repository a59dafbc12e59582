/* SPDX-License-Identifier: BSD-3-Clause */
/* common/mem.c: allocators that abort on failure, and the growable string. */
#include "common.h"

static void oom(void)
{
	static const char msg[] = "FATAL:   out of memory\n";
	ssize_t r = write(2, msg, sizeof(msg) - 1);
	(void)r;
	abort();
}

void *sifu_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *sifu_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom();
	return p;
}

void *sifu_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom();
	return q;
}

char *sifu_xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		oom();
	return p;
}

char *sifu_xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	if (!p)
		oom();
	return p;
}

__attribute__((format(printf, 2, 0))) static char *xvasprintf(size_t *len, const char *fmt,
                                                              va_list ap)
{
	char *p = NULL;
	int r = vasprintf(&p, fmt, ap);
	if (r < 0)
		oom();
	*len = (size_t)r;
	return p;
}

char *sifu_xasprintf(const char *fmt, ...)
{
	va_list ap;
	size_t n;
	va_start(ap, fmt);
	char *p = xvasprintf(&n, fmt, ap);
	va_end(ap);
	return p;
}

/* ------------------------------------------------------- growable string -- */

void sifu_buf_add(struct sifu_buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = sifu_xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void sifu_buf_str(struct sifu_buf *b, const char *s)
{
	sifu_buf_add(b, s, strlen(s));
}

void sifu_buf_printf(struct sifu_buf *b, const char *fmt, ...)
{
	va_list ap;
	size_t n;
	va_start(ap, fmt);
	char *s = xvasprintf(&n, fmt, ap);
	va_end(ap);
	sifu_buf_add(b, s, n);
	free(s);
}

char *sifu_buf_take(struct sifu_buf *b)
{
	char *p = b->p ? b->p : sifu_xstrdup("");
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

void sifu_buf_free(struct sifu_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void sifu_free_many(void *const *ptrs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ptrs[i]);
}
