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

void sifu_log(enum sifu_loglevel lvl, const char *fmt, ...)
{
	if (lvl > log_level)
		return;
	const char *tag = lvl >= SIFU_LOG_DEBUG  ? "debug"
	                  : lvl == SIFU_LOG_WARN ? "warning"
	                                         : "info";
	const char *on = "", *off = "";
	if (log_color) {
		on = lvl >= SIFU_LOG_DEBUG ? "\033[2m" : lvl == SIFU_LOG_WARN ? "\033[33m" : "";
		off = *on ? "\033[0m" : "";
	}
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* one write per line so concurrent threads do not interleave */
	fprintf(stderr, "%ssifu %s: %s%s\n", on, tag, line, off);
}
