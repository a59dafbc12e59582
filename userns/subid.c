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

/* /etc/subuid and /etc/subgid are a line per user: 1 MiB is thousands. */
#define SUBID_FILE_MAX (1u << 20)
/* What newuidmap and newgidmap say is a line or two. */
#define TOOL_OUT_MAX (64u << 10)

static int lookup(const char *file, const char *user, unsigned id, struct ns_subid *out,
                  struct sifu_err *err)
{
	_cleanup_free_ char *text = NULL;
	if (sifu_read_file_at(AT_FDCWD, file, SUBID_FILE_MAX, &text, NULL, NULL) == 0 &&
	    ns_subid_find(text, user, id, out) == 0)
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

/* What the map needs: the caller, its ranges, the two programs and their
 * command lines (inside 0 -> the caller; inside 1..N -> the range). */
struct subid_req {
	unsigned uid, gid;
	char name[64]; /* the caller's user name, or its uid */
	char nu[PATH_MAX], ng[PATH_MAX];
	char spid[16], su[16], sg[16], s1[16], s2[16], s3[16], s4[16];
	char *uidmap[9], *gidmap[9];
};

static int find_tools(const char *search, struct subid_req *q, struct sifu_err *err)
{
	if (sifu_find_exe("newuidmap", search, q->nu, sizeof(q->nu)) &&
	    sifu_find_exe("newgidmap", search, q->ng, sizeof(q->ng)))
		return 0;
	sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT,
	             "subordinate ids need newuidmap and newgidmap, and this host has none");
	sifu_err_hint(err, "install them (Debian/Ubuntu: apt-get install uidmap; "
	                   "Fedora/RHEL: shadow-utils)");
	return -ENOENT;
}

static void make_argv(struct subid_req *q, const struct ns_subid *uids, const struct ns_subid *gids)
{
	snprintf(q->spid, sizeof(q->spid), "%d", (int)getpid());
	snprintf(q->su, sizeof(q->su), "%u", q->uid);
	snprintf(q->sg, sizeof(q->sg), "%u", q->gid);
	snprintf(q->s1, sizeof(q->s1), "%u", uids->start);
	snprintf(q->s2, sizeof(q->s2), "%u", uids->count);
	snprintf(q->s3, sizeof(q->s3), "%u", gids->start);
	snprintf(q->s4, sizeof(q->s4), "%u", gids->count);
	char *const uidmap[] = {q->nu, q->spid, "0", q->su, "1", "1", q->s1, q->s2, NULL};
	char *const gidmap[] = {q->ng, q->spid, "0", q->sg, "1", "1", q->s3, q->s4, NULL};
	memcpy(q->uidmap, uidmap, sizeof(uidmap));
	memcpy(q->gidmap, gidmap, sizeof(gidmap));
}

/* Who asks, for which ranges, with which programs. */
static int subid_request(const char *search, struct subid_req *q, struct ns_subid *uids,
                         struct ns_subid *gids, struct sifu_err *err)
{
	q->uid = getuid();
	q->gid = getgid();
	struct passwd *pw = getpwuid(q->uid);
	snprintf(q->name, sizeof(q->name), "%s", pw ? pw->pw_name : "");
	if (!q->name[0])
		snprintf(q->name, sizeof(q->name), "%u", q->uid);
	int r = lookup("/etc/subuid", q->name, q->uid, uids, err);
	if (r == 0)
		r = lookup("/etc/subgid", q->name, q->uid, gids, err);
	if (r == 0)
		r = find_tools(search, q, err);
	if (r == 0)
		make_argv(q, uids, gids);
	return r;
}

/* newuidmap or newgidmap said no: the first line of what they printed. */
static void refused(const struct subid_req *q, const struct sifu_buf *said, struct sifu_err *err)
{
	char msg[512];
	snprintf(msg, sizeof(msg), "%s", said->p ? said->p : "");
	msg[strcspn(msg, "\n")] = 0;
	sifu_err_set(err, SIFU_E_DENIED, EPERM, "newuidmap/newgidmap refused the map%s%s",
	             msg[0] ? ": " : "", msg);
	sifu_err_hint(err,
	              "check the ranges in /etc/subuid and /etc/subgid for %s, and that "
	              "newuidmap and newgidmap are set-user-ID root (or have their file "
	              "capabilities)",
	              q->name);
}

/* The helper: wait for "go", then run newuidmap and newgidmap; what fails
 * goes to the parent through CE. */
_Noreturn static void helper(int go, struct sifu_childerr *ce, const struct subid_req *q)
{
	struct sifu_err err = {0};
	char c = 0;
	while (read(go, &c, 1) < 0 && errno == EINTR)
		;
	if (c != 'G') {
		/* the parent could not unshare and says why itself */
		sifu_err_set(&err, SIFU_E_SYS, ECANCELED, "the id map was not asked for");
		sifu_childerr_exit(ce, &err);
	}
	char *const *const argvs[] = {q->uidmap, q->gidmap};
	struct sifu_buf said = {0};
	for (size_t i = 0; i < ARRAY_SIZE(argvs); i++) {
		/* 2>&1: posix_spawn's file actions run in order, so by the
		 * time fd 2 is dup'ed from fd 1, fd 1 is the capture pipe */
		struct sifu_command s = {.argv = argvs[i], .in = -1, .err = STDOUT_FILENO};
		struct sifu_exit x;
		char *out = NULL;
		size_t len = 0;
		if (sifu_spawn_capture(&s, TOOL_OUT_MAX, &out, &len, &x, &err) < 0)
			sifu_childerr_exit(ce, &err);
		sifu_buf_add(&said, out, len);
		free(out);
		if (!sifu_exit_ok(&x)) {
			refused(q, &said, &err);
			sifu_childerr_exit(ce, &err);
		}
	}
	_exit(0);
}

/* Unshare the user namespace while the helper, still outside it, maps it;
 * 0 once mapped. */
static int map_through_helper(const struct subid_req *q, struct sifu_err *err)
{
	int go[2];
	struct sifu_childerr ce;
	if (pipe2(go, O_CLOEXEC) < 0)
		return sifu_err_sys(err, "pipe");
	if (sifu_childerr_open(&ce, NULL) < 0) {
		int r = sifu_err_sys(err, "pipe");
		close(go[0]);
		close(go[1]);
		return r;
	}
	pid_t h = fork();
	if (h == 0) {
		close(go[1]);
		sifu_childerr_in_child(&ce);
		helper(go[0], &ce, q);
	}
	int r = h < 0 ? sifu_err_sys(err, "fork") : 0;
	close(go[0]);
	sifu_childerr_in_parent(&ce);
	if (r < 0) {
		close(go[1]);
		sifu_childerr_close(&ce);
		return r;
	}
	int e = unshare(CLONE_NEWUSER) < 0 ? errno : 0;
	if (write(go[1], e ? "X" : "G", 1) != 1 && !e)
		e = errno;
	close(go[1]);
	struct sifu_err herr = {0};
	int rep = sifu_childerr_recv(&ce, &herr);
	sifu_childerr_close(&ce);
	struct sifu_exit x = {0};
	(void)sifu_proc_wait(h, &x, NULL);
	if (e) {
		errno = e;
		sifu_err_sys(err, "the kernel refused to create a user namespace");
		sifu_err_hint(err, "ask the administrator to enable unprivileged user namespaces "
		                   "(user.max_user_namespaces > 0)");
		return -e;
	}
	if (rep != 0) {
		*err = herr;
		return err->errnum ? -err->errnum : -EIO;
	}
	if (!sifu_exit_ok(&x)) {
		char how[128];
		sifu_exit_describe(&x, how, sizeof(how));
		return sifu_err_set(err, SIFU_E_SYS, EIO,
		                    "the helper that runs newuidmap and newgidmap %s", how);
	}
	return 0;
}

int ns_enter_subid(const char *search, struct ns_subid *uids, struct ns_subid *gids,
                   struct sifu_err *err)
{
	struct subid_req q;
	int r = subid_request(search, &q, uids, gids, err);
	if (r == 0)
		r = map_through_helper(&q, err);
	if (r < 0)
		return r;
	/* the host's supplementary groups are unmapped here: drop them */
	if (setgroups(0, NULL) < 0)
		sifu_debug("subordinate ids: setgroups: %s", strerror(errno));
	if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
		return sifu_err_sys(err, "becoming root of the user namespace");
	return 0;
}
