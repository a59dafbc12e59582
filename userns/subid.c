/* SPDX-License-Identifier: BSD-3-Clause */
/* Subordinate ids (`sifu build --userns-subid`): the calling process becomes
 * uid 0 of a new user namespace that maps 0 to the caller and 1..N to the
 * caller's ranges in /etc/subuid and /etc/subgid.
 *
 * Only the set-user-ID newuidmap/newgidmap (shadow's `uidmap` package) may
 * write such a map for an unprivileged user; sifu runs them the way
 * Apptainer's fakeroot and rootless podman do, and gains nothing itself.
 * They must run from outside the new namespace (inside it their owner, the
 * real root, is not mapped and the set-user-ID bit is ignored), so a helper
 * is forked before unshare() and maps its parent once told to. */
#include "userns.h"

#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>

static bool field_is(const char *f, size_t n, const char *s)
{
	return s && strlen(s) == n && !memcmp(f, s, n);
}

int ns_subid_find(const char *text, const char *user, unsigned id, struct ns_subid *out)
{
	char num[16];
	snprintf(num, sizeof(num), "%u", id);
	for (const char *l = text; l && *l;) {
		const char *end = strchr(l, '\n');
		size_t len = end ? (size_t)(end - l) : strlen(l);
		const char *c1 = memchr(l, ':', len);
		const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - l)) : NULL;
		if (c2 &&
		    (field_is(l, (size_t)(c1 - l), user) || field_is(l, (size_t)(c1 - l), num))) {
			char a[16] = "", b[16] = "";
			size_t la = (size_t)(c2 - c1 - 1), lb = len - (size_t)(c2 + 1 - l);
			if (la && la < sizeof(a) && lb && lb < sizeof(b)) {
				memcpy(a, c1 + 1, la);
				memcpy(b, c2 + 1, lb);
				char *ea, *eb;
				unsigned long s = strtoul(a, &ea, 10), n = strtoul(b, &eb, 10);
				if (!*ea && !*eb && n > 0 && s > 0 && s + n - 1 <= UINT32_MAX - 1) {
					out->start = (unsigned)s;
					out->count = (unsigned)n;
					return 0;
				}
			}
		}
		l = end ? end + 1 : NULL;
	}
	return -ENOENT;
}

static char *slurp(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, len = 0;
	char *buf = sifu_xmalloc(cap + 1);
	for (;;) {
		if (len == cap)
			buf = sifu_xrealloc(buf, (cap *= 2) + 1);
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = 0;
	return buf;
}

static int lookup(const char *file, const char *user, unsigned id, struct ns_subid *out,
                  struct sifu_err *err)
{
	_cleanup_free_ char *text = slurp(file);
	if (text && ns_subid_find(text, user, id, out) == 0)
		return 0;
	const bool uid = !strcmp(file, "/etc/subuid");
	sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT, "%s has no subordinate %s range for %s", file,
	             uid ? "uid" : "gid", user);
	sifu_err_hint(err,
	              "ask the administrator to add one, e.g. usermod --add-subuids "
	              "100000-165535 --add-subgids 100000-165535 %s",
	              user);
	return -ENOENT;
}

/* The helper: wait for "go", then run newuidmap and newgidmap (their
 * output goes to OUT). */
static void helper(int go, int out, char *const uidmap[], char *const gidmap[])
{
	char c = 0;
	while (read(go, &c, 1) < 0 && errno == EINTR)
		;
	if (c != 'G')
		_exit(3);
	char *const *const argvs[] = {uidmap, gidmap};
	for (size_t i = 0; i < 2; i++) {
		pid_t p = fork();
		if (p < 0)
			_exit(4);
		if (p == 0) {
			dup2(out, 1);
			dup2(out, 2);
			execv(argvs[i][0], argvs[i]);
			_exit(127);
		}
		int st;
		while (waitpid(p, &st, 0) < 0)
			if (errno != EINTR)
				_exit(5);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			_exit(1);
	}
	_exit(0);
}

int ns_enter_subid(struct ns_subid *uids, struct ns_subid *gids, struct sifu_err *err)
{
	unsigned uid = getuid(), gid = getgid();
	struct passwd *pw = getpwuid(uid);
	char name[64];
	snprintf(name, sizeof(name), "%s", pw ? pw->pw_name : "");
	if (!name[0])
		snprintf(name, sizeof(name), "%u", uid);
	int r = lookup("/etc/subuid", name, uid, uids, err);
	if (r == 0)
		r = lookup("/etc/subgid", name, uid, gids, err);
	if (r < 0)
		return r;
	char nu[PATH_MAX], ng[PATH_MAX];
	if (!sifu_find_exe("newuidmap", getenv("PATH") /* TODO(#15): from options */, nu,
	                   sizeof(nu)) ||
	    !sifu_find_exe("newgidmap", getenv("PATH") /* TODO(#15): from options */, ng,
	                   sizeof(ng))) {
		sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT,
		             "subordinate ids need newuidmap and newgidmap, and this host has "
		             "none");
		sifu_err_hint(err, "install them (Debian/Ubuntu: apt-get install uidmap; "
		                   "Fedora/RHEL: shadow-utils)");
		return -ENOENT;
	}
	pid_t me = getpid();
	char spid[16], su[16], sg[16], s1[16], s2[16], s3[16], s4[16];
	snprintf(spid, sizeof(spid), "%d", (int)me);
	snprintf(su, sizeof(su), "%u", uid);
	snprintf(sg, sizeof(sg), "%u", gid);
	snprintf(s1, sizeof(s1), "%u", uids->start);
	snprintf(s2, sizeof(s2), "%u", uids->count);
	snprintf(s3, sizeof(s3), "%u", gids->start);
	snprintf(s4, sizeof(s4), "%u", gids->count);
	/* inside 0 -> the caller; inside 1..N -> the subordinate range */
	char *const uidmap[] = {nu, spid, "0", su, "1", "1", s1, s2, NULL};
	char *const gidmap[] = {ng, spid, "0", sg, "1", "1", s3, s4, NULL};
	int go[2], out[2];
	if (pipe2(go, O_CLOEXEC) < 0)
		return sifu_err_sys(err, "pipe");
	if (pipe2(out, O_CLOEXEC) < 0) {
		close(go[0]);
		close(go[1]);
		return sifu_err_sys(err, "pipe");
	}
	pid_t h = fork();
	if (h < 0) {
		r = sifu_err_sys(err, "fork");
		goto fail;
	}
	if (h == 0) {
		close(go[1]);
		close(out[0]);
		helper(go[0], out[1], uidmap, gidmap);
	}
	close(go[0]);
	close(out[1]);
	go[0] = out[1] = -1;
	int e = unshare(CLONE_NEWUSER) < 0 ? errno : 0;
	if (write(go[1], e ? "X" : "G", 1) != 1 && !e)
		e = errno;
	close(go[1]);
	go[1] = -1;
	char msg[512] = "";
	size_t len = 0;
	for (;;) {
		ssize_t n = read(out[0], msg + len, sizeof(msg) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (len += (size_t)n) == sizeof(msg) - 1)
			break;
	}
	msg[len] = 0;
	msg[strcspn(msg, "\n")] = 0;
	close(out[0]);
	int st = 0;
	while (waitpid(h, &st, 0) < 0 && errno == EINTR)
		;
	if (e) {
		errno = e;
		sifu_err_sys(err, "the kernel refused to create a user namespace");
		sifu_err_hint(err, "ask the administrator to enable unprivileged user namespaces "
		                   "(user.max_user_namespaces > 0)");
		return -e;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		sifu_err_set(err, SIFU_E_DENIED, EPERM, "newuidmap/newgidmap refused the map%s%s",
		             msg[0] ? ": " : "", msg);
		sifu_err_hint(err,
		              "check the ranges in /etc/subuid and /etc/subgid for %s, and "
		              "that newuidmap and newgidmap are set-user-ID root (or have "
		              "their file capabilities)",
		              name);
		return -EPERM;
	}
	/* the host's supplementary groups are unmapped here: drop them */
	if (setgroups(0, NULL) < 0)
		sifu_debug("subordinate ids: setgroups: %s", strerror(errno));
	if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
		return sifu_err_sys(err, "becoming root of the user namespace");
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (go[i] >= 0)
			close(go[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	return r;
}
