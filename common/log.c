/* SPDX-License-Identifier: BSD-3-Clause */
#include "common.h"

#include <time.h>

static enum sifu_loglevel log_level = SIFU_LOG_INFO;
static bool log_color;

void sifu_log_set_level(enum sifu_loglevel lvl)
{
	log_level = lvl;
}
enum sifu_loglevel sifu_log_get_level(void)
{
	return log_level;
}
void sifu_log_set_color(bool on)
{
	log_color = on;
}
bool sifu_log_color(void)
{
	return log_color;
}

uint64_t sifu_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* pkg/sylog/sylog_common.go messageLabels, and sylog.go messageColors: only
 * the label is coloured, and only on a terminal (cmd/internal/cli
 * apptainer.go: !term.IsTerminal(2) turns colour off). */
static const char *label(enum sifu_loglevel lvl, const char **color)
{
	switch (lvl) {
	case SIFU_LOG_FATAL: *color = "\033[31m"; return "FATAL";
	case SIFU_LOG_ERROR:
	case SIFU_LOG_QUIET: /* "errors only": a message at it is an error */
		*color = "\033[31m";
		return "ERROR";
	case SIFU_LOG_WARN: *color = "\033[33m"; return "WARNING";
	case SIFU_LOG_INFO: *color = "\033[34m"; return "INFO";
	case SIFU_LOG_VERBOSE: *color = ""; return "VERBOSE";
	default: *color = ""; return "DEBUG";
	}
}

void sifu_log_at(enum sifu_loglevel lvl, const char *func, const char *fmt, ...)
{
	if (lvl > log_level)
		return;
	const char *color;
	const char *name = label(lvl, &color);
	const char *reset = log_color && *color ? "\033[0m" : "";
	if (!log_color)
		color = "";
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	size_t n = strlen(line);
	while (n && line[n - 1] == '\n') /* sylog trims trailing newlines */
		line[--n] = '\0';
	char who[96] = "";
	if (log_level >= SIFU_LOG_DEBUG) {
		/* sylog's prefix(): "%-8s" label, "%-19s" [U=,P=], "%-30s" func() */
		char ids[32], fn[48];
		snprintf(ids, sizeof(ids), "[U=%u,P=%d]", (unsigned)geteuid(), (int)getpid());
		snprintf(fn, sizeof(fn), "%s()", func ? func : "????");
		snprintf(who, sizeof(who), "%-19s%-30s", ids, fn);
		/* one write per line so concurrent threads do not interleave */
		fprintf(stderr, "%s%-8s%s%s%s\n", color, name, reset, who, line);
		return;
	}
	char tag[16];
	snprintf(tag, sizeof(tag), "%s:", name);
	fprintf(stderr, "%s%-8s%s %s\n", color, tag, reset, line);
}
