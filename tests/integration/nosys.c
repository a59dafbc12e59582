/* SPDX-License-Identifier: BSD-3-Clause */
/* sifu-test-nosys SYSCALL[,SYSCALL…] COMMAND [ARG…]: run COMMAND where the
 * named system calls fail with ENOSYS, as on a kernel older than them, so
 * the integration tests reach sifu's fallbacks on any kernel:
 *
 *   open_tree,move_mount,mount_setattr,openat2   Linux < 5.2
 *   mount_setattr,openat2                        Linux 5.2-5.5
 *   mount_setattr                                Linux 5.6-5.11
 *
 * A seccomp filter (inherited by every child, kept across execve; it needs
 * no privilege with PR_SET_NO_NEW_PRIVS). */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#else
#error "sifu-test-nosys: add this architecture's AUDIT_ARCH_*"
#endif

/* these numbers are the same on every architecture (asm-generic order) */
static const struct {
	const char *name;
	unsigned nr;
} known[] = {{"open_tree", 428}, {"move_mount", 429}, {"openat2", 437}, {"mount_setattr", 442}};

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s SYSCALL[,SYSCALL...] COMMAND [ARG...]\n", argv[0]);
		return 2;
	}
	unsigned nrs[8];
	size_t n = 0;
	for (char *w = strtok(argv[1], ","); w; w = strtok(NULL, ",")) {
		size_t i = 0;
		while (i < sizeof(known) / sizeof(known[0]) && strcmp(known[i].name, w))
			i++;
		if (i == sizeof(known) / sizeof(known[0]) || n == 8) {
			fprintf(stderr, "%s: unknown system call %s\n", argv[0], w);
			return 2;
		}
		nrs[n++] = known[i].nr;
	}
	struct sock_filter f[4 + 8 + 2];
	size_t k = 0;
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
	                                      offsetof(struct seccomp_data, arch));
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
	                                      offsetof(struct seccomp_data, nr));
	for (size_t i = 0; i < n; i++) /* to the ENOSYS return, past the allow */
		f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nrs[i],
		                                      (unsigned char)(n - i), 0);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
	struct sock_fprog prog = {.len = (unsigned short)k, .filter = f};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
		perror("sifu-test-nosys: seccomp");
		return 2;
	}
	execvp(argv[2], argv + 2);
	perror(argv[2]);
	return 127;
}
