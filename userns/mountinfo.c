/* SPDX-License-Identifier: BSD-3-Clause */
/* Pure text work for mount locking, without system calls (unit-tested):
 *
 *  - /proc/self/mountinfo: which mounts lie at or below a bind, and the
 *    per-mount flags each one has, so that kernels without mount_setattr
 *    (< 5.12) can make every submount of a read-only bind read-only one
 *    remount at a time, keeping the flags the kernel locked (proc(5),
 *    "/proc/pid/mountinfo"; bubblewrap's bind_mount does the same);
 *  - /proc/self/uid_map and gid_map: the identity map of every id the
 *    launcher's user namespace maps, for the payload's own namespace. */
#include "userns.h"

#include <limits.h>
#include <sys/mount.h>

/* mountinfo escapes space, tab, newline and backslash as \ooo (octal). */
static char *unescape(const char *s, size_t n)
{
	char *o = sifu_xmalloc(n + 1), *p = o;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' &&
		    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			*p++ = (char)((s[i + 1] - '0') << 6 | (s[i + 2] - '0') << 3 |
			              (s[i + 3] - '0'));
			i += 3;
		} else {
			*p++ = s[i];
		}
	}
	*p = '\0';
	return o;
}

/* The per-mount options ("rw,nosuid,relatime") as mount(2) flags.  No atime
 * word means strictatime. */
static unsigned long opt_flags(const char *s, size_t n)
{
	static const struct {
		const char *w;
		unsigned long f;
	} words[] = {{"ro", MS_RDONLY},         {"nosuid", MS_NOSUID},
	             {"nodev", MS_NODEV},       {"noexec", MS_NOEXEC},
	             {"noatime", MS_NOATIME},   {"nodiratime", MS_NODIRATIME},
	             {"relatime", MS_RELATIME}, {"nosymfollow", NS_MS_NOSYMFOLLOW}};
	unsigned long fl = 0;
	while (n) {
		size_t w = 0;
		while (w < n && s[w] != ',')
			w++;
		for (size_t i = 0; i < ARRAY_SIZE(words); i++)
			if (strlen(words[i].w) == w && !memcmp(words[i].w, s, w))
				fl |= words[i].f;
		s += w;
		n -= w;
		if (n) {
			s++;
			n--;
		}
	}
	if (!(fl & (MS_NOATIME | MS_RELATIME)))
		fl |= MS_STRICTATIME;
	return fl;
}

/* The next space-separated field of [*p, end), or false at the end. */
static bool field(const char **p, const char *end, const char **f, size_t *n)
{
	while (*p < end && **p == ' ')
		(*p)++;
	if (*p >= end)
		return false;
	*f = *p;
	while (*p < end && **p != ' ')
		(*p)++;
	*n = (size_t)(*p - *f);
	return true;
}

static bool parse_int(const char *s, size_t n, int *out)
{
	long v = 0;
	if (n == 0 || n > 10)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (v > INT_MAX)
		return false;
	*out = (int)v;
	return true;
}

/* "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL…] - TYPE SOURCE SUPER" */
static int parse_line(const char *s, const char *end, struct ns_mountinfo *m)
{
	const char *f[6];
	size_t n[6];
	for (int i = 0; i < 6; i++)
		if (!field(&s, end, &f[i], &n[i]))
			return -EINVAL;
	if (!parse_int(f[0], n[0], &m->id) || !parse_int(f[1], n[1], &m->parent) || f[4][0] != '/')
		return -EINVAL;
	/* the separator must follow, or the line was cut short */
	const char *t;
	size_t tn;
	bool sep = false;
	while (!sep && field(&s, end, &t, &tn))
		sep = tn == 1 && t[0] == '-';
	if (!sep)
		return -EINVAL;
	m->flags = opt_flags(f[5], n[5]);
	m->mnt_point = unescape(f[4], n[4]);
	return 0;
}

void ns_mountinfo_free(struct ns_mountinfo *m, size_t n)
{
	for (size_t i = 0; m && i < n; i++)
		free(m[i].mnt_point);
	free(m);
}

int ns_mountinfo_parse(const char *text, struct ns_mountinfo **out, size_t *nout,
                       struct sifu_err *err)
{
	struct ns_mountinfo *m = NULL;
	size_t n = 0, line = 0;
	for (const char *s = text; *s;) {
		const char *end = strchr(s, '\n');
		if (!end)
			end = s + strlen(s);
		line++;
		if (end > s) {
			m = sifu_xrealloc(m, (n + 1) * sizeof(*m));
			if (parse_line(s, end, &m[n]) < 0) {
				ns_mountinfo_free(m, n);
				return sifu_err_set(err, SIFU_E_CORRUPT, EINVAL,
				                    "mountinfo: line %zu is malformed", line);
			}
			n++;
		}
		s = *end ? end + 1 : end;
	}
	*out = m;
	*nout = n;
	return 0;
}

size_t ns_mountinfo_subtree(const struct ns_mountinfo *m, size_t n, int root, size_t *idx)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (m[i].id == root) {
			idx[k++] = i;
			break;
		}
	/* breadth first: parents come before their children; each mount is
	 * taken once (a namespace's root may name itself as its parent) */
	for (size_t q = 0; q < k; q++)
		for (size_t i = 0; i < n; i++) {
			if (m[i].parent != m[idx[q]].id || m[i].id == m[i].parent)
				continue;
			bool seen = false;
			for (size_t j = 0; j < k && !seen; j++)
				seen = idx[j] == i;
			if (!seen)
				idx[k++] = i;
		}
	return k;
}

int ns_idmap_identity(const char *map, char *out, size_t len, unsigned *single)
{
	size_t used = 0, lines = 0;
	*single = UINT_MAX;
	out[0] = '\0';
	for (const char *s = map; *s;) {
		unsigned long in, outside, count;
		char *e;
		while (*s == ' ' || *s == '\n')
			s++;
		if (!*s)
			break;
		in = strtoul(s, &e, 10);
		if (e == s)
			return -EINVAL;
		outside = strtoul(s = e, &e, 10);
		if (e == s)
			return -EINVAL;
		count = strtoul(s = e, &e, 10);
		if (e == s || count == 0 || in > UINT_MAX || count > UINT_MAX)
			return -EINVAL;
		(void)outside;
		s = e;
		int w = snprintf(out + used, len - used, "%lu %lu %lu\n", in, in, count);
		if (w < 0 || (size_t)w >= len - used)
			return -ENOSPC;
		used += (size_t)w;
		lines++;
		if (lines == 1 && count == 1)
			*single = (unsigned)in;
	}
	if (lines != 1)
		*single = UINT_MAX;
	return lines ? 0 : -EINVAL;
}
