/* SPDX-License-Identifier: BSD-3-Clause */
/* Private to recipe/: a growable string and shared helpers. */
#pragma once

#include "common.h"

struct rbuf {
	char *p;
	size_t len, cap;
};
void rb_init(struct rbuf *b);
void rb_add(struct rbuf *b, const char *s, size_t n);
void rb_str(struct rbuf *b, const char *s);
void rb_printf(struct rbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The string (never NULL); the buffer is empty afterwards. */
char *rb_take(struct rbuf *b);

/* The spelling the serialiser writes for a lower-case header KEY. */
void recipe_header_display(const char *key, char *buf, size_t len);
