/* SPDX-License-Identifier: BSD-3-Clause */
/* recipe/: the seccomp fake root for %post.
 *
 * %post runs as uid 0 of a user namespace that maps only the caller's own
 * id.  Package managers then fail on calls such a namespace cannot do:
 * chown to another id (EINVAL: unmapped), setgroups (EPERM: denied before
 * the gid map), setuid/setgid to an unmapped id, mknod of a device (EPERM).
 * The filter answers those with success and does nothing, the way
 * Charliecloud's seccomp mode does; the files stay owned by the build's root.
 * mknod of a FIFO or socket still reaches the kernel and works. */
#include "build_int.h"
#include "config.h"

#include <sys/prctl.h>
#include <sys/stat.h>

#ifdef HAVE_SECCOMP
#include <seccomp.h>

static const char *const faked[] = {
    "chown",  "fchown",   "lchown",    "fchownat", "chown32",  "fchown32", "lchown32",
    "setuid", "setgid",   "setreuid",  "setregid", "setresuid", "setresgid",
    "setfsuid", "setfsgid", "setgroups", "setuid32", "setgid32", "setreuid32",
    "setregid32", "setresuid32", "setresgid32", "setfsuid32", "setfsgid32", "setgroups32",
};

int bld_seccomp_fakeroot(struct sifu_err *err)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return sifu_err_set(err, SIFU_E_SYS, ENOMEM, "seccomp: cannot start a filter");
	int r = 0;
	for (size_t i = 0; i < ARRAY_SIZE(faked) && r == 0; i++) {
		int nr = seccomp_syscall_resolve_name(faked[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(0), nr, 0);
	}
	/* mknod(path, mode, dev) / mknodat(dirfd, path, mode, dev): devices only */
	static const struct {
		const char *name;
		unsigned modearg;
	} mk[] = {{"mknod", 1}, {"mknodat", 2}};
	for (size_t i = 0; i < ARRAY_SIZE(mk) && r == 0; i++) {
		int nr = seccomp_syscall_resolve_name(mk[i].name);
		if (nr == __NR_SCMP_ERROR)
			continue;
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(0), nr, 1,
				     SCMP_CMP(mk[i].modearg, SCMP_CMP_MASKED_EQ, S_IFMT, S_IFCHR));
		if (r == 0)
			r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(0), nr, 1,
					     SCMP_CMP(mk[i].modearg, SCMP_CMP_MASKED_EQ, S_IFMT,
						      S_IFBLK));
	}
	if (r == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		r = -errno;
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	if (r < 0)
		return sifu_err_set(err, SIFU_E_SYS, -r, "seccomp: cannot install the fake-root filter");
	return 0;
}
#else
int bld_seccomp_fakeroot(struct sifu_err *err)
{
	sifu_log(SIFU_LOG_WARN, "this sifu was built without libseccomp: chown to other ids "
				"and setgroups fail in %%post");
	(void)err;
	return 0;
}
#endif
