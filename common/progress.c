/* SPDX-License-Identifier: BSD-3-Clause */
#include "common.h"

struct sifu_progress {
	char *label;
	uint64_t total, done;
	uint64_t start_ns, last_ns;
	bool quiet;
};

void sifu_fmt_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	size_t u = 0;
	while (v >= 1024.0 && u + 1 < ARRAY_SIZE(units))
		v /= 1024.0, u++;
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
}

void sifu_fmt_duration(uint64_t secs, char *buf, size_t len)
{
	if (secs >= 3600)
		snprintf(buf, len, "%lluh%02llum", (unsigned long long)(secs / 3600),
		         (unsigned long long)(secs % 3600 / 60));
	else if (secs >= 60)
		snprintf(buf, len, "%llum%02llus", (unsigned long long)(secs / 60),
		         (unsigned long long)(secs % 60));
	else
		snprintf(buf, len, "%llus", (unsigned long long)secs);
}

struct sifu_progress *sifu_progress_new(const char *label, uint64_t total)
{
	struct sifu_progress *p = sifu_xcalloc(1, sizeof(*p));
	p->label = sifu_xstrdup(label);
	p->total = total;
	p->start_ns = p->last_ns = sifu_now_ns();
	/* Apptainer draws its bars only on a terminal and not under -q/-s
	 * (internal/pkg/client/progress_roundtrip.go): a redirected stderr is a
	 * job log, where progress lines are noise. */
	p->quiet = !isatty(2) || sifu_log_get_level() < SIFU_LOG_INFO;
	return p;
}

static void progress_draw(struct sifu_progress *p, bool final)
{
	uint64_t now = sifu_now_ns();
	double secs = (double)(now - p->start_ns) / 1e9;
	double rate = secs > 0 ? (double)p->done / secs : 0;
	char done[32], tot[32], rt[32], eta[32] = "";
	sifu_fmt_bytes(p->done, done, sizeof(done));
	sifu_fmt_bytes(p->total, tot, sizeof(tot));
	sifu_fmt_bytes((uint64_t)rate, rt, sizeof(rt));
	if (p->total && rate > 0 && p->done < p->total) {
		char d[16];
		sifu_fmt_duration((uint64_t)((double)(p->total - p->done) / rate), d, sizeof(d));
		snprintf(eta, sizeof(eta), " ETA %s", d);
	}
	char bar[31] = "";
	if (p->total) {
		int fill = (int)(30.0 * (double)p->done / (double)p->total);
		for (int i = 0; i < 30; i++)
			bar[i] = i < fill ? '=' : ' ';
		bar[30] = '\0';
	}
	fprintf(stderr, "\r%-24.24s [%s] %s/%s %s/s%s\033[K%s", p->label, bar, done,
	        p->total ? tot : "?", rt, eta, final ? "\n" : "");
}

void sifu_progress_update(struct sifu_progress *p, uint64_t done)
{
	if (!p)
		return;
	p->done = done;
	if (p->quiet)
		return;
	uint64_t now = sifu_now_ns();
	if (now - p->last_ns < 100000000ull) /* redraw at most 10/s */
		return;
	p->last_ns = now;
	progress_draw(p, false);
}

void sifu_progress_done(struct sifu_progress *p)
{
	if (!p)
		return;
	if (!p->quiet)
		progress_draw(p, true);
	free(p->label);
	free(p);
}
