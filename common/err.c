/* SPDX-License-Identifier: BSD-3-Clause */
#define SIFU_ERR_DEFINE /* the definitions, not the analyser's wrappers */
#include "common.h"

static const char *const code_names[] = {
    [SIFU_E_OK] = "ok",
    [SIFU_E_SYS] = "system error",
    [SIFU_E_CORRUPT] = "corrupt",
    [SIFU_E_RANGE] = "out of range",
    [SIFU_E_UNSUPPORTED] = "unsupported",
    [SIFU_E_USAGE] = "usage",
    [SIFU_E_NOTFOUND] = "not found",
    [SIFU_E_DENIED] = "denied",
    [SIFU_E_UNAVAILABLE] = "not available",
    [SIFU_E_VERIFY] = "verification failed",
};

const char *sifu_errcode_name(enum sifu_errcode code)
{
	if ((size_t)code < ARRAY_SIZE(code_names) && code_names[code])
		return code_names[code];
	return "error";
}

static int err_return(const struct sifu_err *err)
{
	if (err && err->errnum > 0)
		return -err->errnum;
	return -EINVAL;
}

static int err_vset(struct sifu_err *err, enum sifu_errcode code, int errnum, const char *fmt,
                    va_list ap)
{
	if (!err)
		return errnum > 0 ? -errnum : -EINVAL;
	err->code = code;
	err->errnum = errnum;
	err->depth = 1;
	err->hint[0] = '\0';
	vsnprintf(err->chain[0], sizeof(err->chain[0]), fmt, ap);
	return err_return(err);
}

int sifu_err_set(struct sifu_err *err, enum sifu_errcode code, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = err_vset(err, code, errnum, fmt, ap);
	va_end(ap);
	return r;
}

int sifu_err_sys(struct sifu_err *err, const char *fmt, ...)
{
	int saved = errno ? errno : EIO;
	va_list ap;
	va_start(ap, fmt);
	int r = err_vset(err, SIFU_E_SYS, saved, fmt, ap);
	va_end(ap);
	errno = saved;
	return r;
}

int sifu_err_wrap(struct sifu_err *err, const char *fmt, ...)
{
	if (!err)
		return -EINVAL;
	if (err->depth == 0) /* wrapping nothing: make it the cause */
		err->depth = 1, err->chain[0][0] = '\0', err->code = SIFU_E_SYS;
	unsigned slot = err->depth < SIFU_ERR_CHAIN_MAX ? err->depth++ : SIFU_ERR_CHAIN_MAX - 1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->chain[slot], sizeof(err->chain[slot]), fmt, ap);
	va_end(ap);
	return err_return(err);
}

void sifu_err_hint(struct sifu_err *err, const char *fmt, ...)
{
	if (!err)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->hint, sizeof(err->hint), fmt, ap);
	va_end(ap);
}

void sifu_err_clear(struct sifu_err *err)
{
	if (err)
		memset(err, 0, offsetof(struct sifu_err, chain)), err->chain[0][0] = '\0',
		                                                  err->hint[0] = '\0';
}

void sifu_err_format(const struct sifu_err *err, char *buf, size_t len)
{
	if (!err || err->depth == 0) {
		snprintf(buf, len, "unknown error");
		return;
	}
	const char *inner = err->chain[0];
	const char *outer = err->chain[err->depth - 1];
	char sys[160] = "";
	if (err->code == SIFU_E_SYS && err->errnum > 0)
		snprintf(sys, sizeof(sys), ": %s", strerror(err->errnum));
	if (err->depth == 1)
		snprintf(buf, len, "%s%s", inner, sys);
	else
		snprintf(buf, len, "%s: %s%s", outer, inner, sys);
}
