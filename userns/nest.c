/* SPDX-License-Identifier: BSD-3-Clause */
/* The payload's own user namespace: what keeps read-only mounts read-only.
 *
 * The launcher's user namespace owns the mount namespace the tree is built
 * in, so a payload that is root there (--fakeroot, or root running sifu)
 * holds CAP_SYS_ADMIN over those mounts: `mount -o remount,rw,bind /mnt`
 * would turn a `:ro` bind writable, `umount` would show what a bind covers.
 * The kernel's rule (mount_namespaces(7), "Restrictions on mount
 * namespaces"): when a mount namespace is created owned by a user namespace
 * other than the one owning its parent - a "less privileged" one - the
 * mounts copied into it are locked: MS_RDONLY, MS_NOSUID, MS_NODEV,
 * MS_NOEXEC and the atime flags can no longer be changed (MNT_LOCK_*), and
 * mounts that came as a unit can no longer be separated or unmounted to
 * reveal what lies below (MNT_LOCKED).  So, once the tree is complete and
 * the payload has pivoted into it, the payload creates a child user
 * namespace, mapping every id identically (nothing changes for what runs
 * inside), and a mount namespace owned by that child.  The superblocks
 * (the image's overlay, the tmpfs mounts, FUSE) stay owned by the
 * launcher's namespace, so they cannot be remounted either.
 *
 * The PID, network, IPC and UTS namespaces are created in the same call:
 * owned by the child namespace, a root inside may still mount /proc for its
 * PID namespace (a %post that runs `mount -t proc`), bring up interfaces
 * and set the host name, as before. */
#include "userns_priv.h"

#include <fcntl.h>
#include <limits.h>
#include <sched.h>

struct maps {
	char uid[2048], gid[2048];
	unsigned u1, g1; /* the one id mapped, or UINT_MAX */
	bool deny;       /* setgroups is denied in the launcher's namespace */
};

static int read_at(int dir, const char *name, char *buf, size_t len)
{
	_cleanup_close_ int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static int write_at(int dir, const char *name, const char *s)
{
	_cleanup_close_ int fd = openat(dir, name, O_WRONLY | O_CLOEXEC);
	size_t n = strlen(s);
	if (fd < 0)
		return -errno;
	return write(fd, s, n) == (ssize_t)n ? 0 : -errno;
}

static int read_maps(int self, struct maps *m, struct sifu_err *err)
{
	char um[2048], gm[2048], sg[16] = "deny";
	m->u1 = m->g1 = UINT_MAX;
	int r = read_at(self, "uid_map", um, sizeof(um));
	if (r == 0)
		r = read_at(self, "gid_map", gm, sizeof(gm));
	if (r == 0 && read_at(self, "setgroups", sg, sizeof(sg)) < 0)
		snprintf(sg, sizeof(sg), "deny"); /* Linux < 3.19: no such file */
	if (r == 0)
		r = ns_idmap_identity(um, m->uid, sizeof(m->uid), &m->u1);
	if (r == 0)
		r = ns_idmap_identity(gm, m->gid, sizeof(m->gid), &m->g1);
	if (r < 0) {
		errno = -r;
		return sifu_err_sys(err, "reading the launcher's id maps");
	}
	m->deny = !strncmp(sg, "deny", 4);
	return 0;
}

/* uid_map, setgroups, gid_map: the order user_namespaces(7) requires. */
static int write_maps(int self, const struct maps *m, bool deny)
{
	int r = write_at(self, "uid_map", m->uid);
	if (r == 0 && deny)
		r = write_at(self, "setgroups", "deny");
	return r < 0 ? r : write_at(self, "gid_map", m->gid);
}

/* The helper: once told ('U'), write the maps of its parent's new user
 * namespace; a failure goes back through CE (its errno is what counts). */
_Noreturn static void map_helper(int go, struct sifu_childerr *ce, int self, const struct maps *m)
{
	char c = 0;
	while (read(go, &c, 1) < 0 && errno == EINTR)
		;
	int r = c == 'U' ? write_maps(self, m, m->deny) : 0;
	if (r < 0) {
		struct sifu_err e = {0};
		errno = -r;
		sifu_err_sys(&e, "writing the payload's id maps");
		sifu_childerr_exit(ce, &e);
	}
	_exit(0);
}

/* More than the caller's own id (subordinate ranges: build --userns-subid)
 * needs CAP_SETUID in the parent namespace, which the payload gives up by
 * unsharing: a helper forked before writes the maps, as newuidmap would. */
static int unshare_helped(int self, const struct maps *m, int flags)
{
	int p[2];
	struct sifu_childerr ce;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid_t h = sifu_childerr_open(&ce, NULL) < 0 ? -1 : fork();
	if (h < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		sifu_childerr_close(&ce);
		return -e;
	}
	if (h == 0) {
		close(p[1]);
		sifu_childerr_in_child(&ce);
		map_helper(p[0], &ce, self, m);
	}
	close(p[0]);
	sifu_childerr_in_parent(&ce);
	int r = unshare(flags) < 0 ? -errno : 0;
	if (r == 0 && write(p[1], "U", 1) != 1)
		r = -errno;
	close(p[1]);
	struct sifu_err e;
	int rep = sifu_childerr_recv(&ce, &e);
	sifu_childerr_close(&ce);
	struct sifu_exit x = {0};
	(void)sifu_proc_wait(h, &x, NULL);
	if (r == 0 && rep != 0)
		r = e.errnum ? -e.errnum : -EIO;
	else if (r == 0 && !sifu_exit_ok(&x))
		r = -EIO;
	return r;
}

int ns_nest(struct ns_run *l, int self, struct sifu_err *err)
{
	const struct ns_config *c = l->c;
	struct maps m;
	int r = read_maps(self, &m, err);
	if (r < 0)
		return r;
	int flags = CLONE_NEWUSER | CLONE_NEWNS;
	flags |= c->pid ? CLONE_NEWPID : 0;
	flags |= c->ipc ? CLONE_NEWIPC : 0;
	flags |= c->net ? CLONE_NEWNET : 0;
	flags |= c->hostname || c->uts ? CLONE_NEWUTS : 0;
	/* one id, the payload's own: it may map itself (user_namespaces(7),
	 * "Defining user and group ID mappings"), no helper needed */
	if (m.u1 == geteuid() && m.g1 == getegid()) {
		r = unshare(flags) < 0 ? -errno : write_maps(self, &m, true);
	} else {
		r = unshare_helped(self, &m, flags);
	}
	if (r < 0) {
		errno = -r;
		sifu_err_sys(err, "creating the payload's user namespace");
		/* two levels per run: the launcher's and the payload's own */
		if (r == -ENOSPC || r == -EUSERS)
			sifu_err_hint(err,
			              "sifu needs two nested user namespaces per run: ask the "
			              "administrator to raise sysctl user.max_user_namespaces");
		return r;
	}
	return 0;
}
