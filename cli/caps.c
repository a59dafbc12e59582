/* SPDX-License-Identifier: BSD-3-Clause */
/* Capability names, for --add-caps, --drop-caps and seccomp profiles. */
#include "cli.h"

#include <linux/capability.h>
#include <strings.h>

/* Capability names as Apptainer's capabilities.Normalize reads them: any
 * case, with or without CAP_, "all" for every one. */
/* clang-format off */
#define CAPN(n) {#n, n}
static const struct {
	const char *name;
	unsigned bit;
} cap_names[] = {
    CAPN(CAP_CHOWN), CAPN(CAP_DAC_OVERRIDE), CAPN(CAP_DAC_READ_SEARCH),
    CAPN(CAP_FOWNER), CAPN(CAP_FSETID), CAPN(CAP_KILL),
    CAPN(CAP_SETGID), CAPN(CAP_SETUID), CAPN(CAP_SETPCAP),
    CAPN(CAP_LINUX_IMMUTABLE), CAPN(CAP_NET_BIND_SERVICE), CAPN(CAP_NET_BROADCAST),
    CAPN(CAP_NET_ADMIN), CAPN(CAP_NET_RAW), CAPN(CAP_IPC_LOCK),
    CAPN(CAP_IPC_OWNER), CAPN(CAP_SYS_MODULE), CAPN(CAP_SYS_RAWIO),
    CAPN(CAP_SYS_CHROOT), CAPN(CAP_SYS_PTRACE), CAPN(CAP_SYS_PACCT),
    CAPN(CAP_SYS_ADMIN), CAPN(CAP_SYS_BOOT), CAPN(CAP_SYS_NICE),
    CAPN(CAP_SYS_RESOURCE), CAPN(CAP_SYS_TIME), CAPN(CAP_SYS_TTY_CONFIG),
    CAPN(CAP_MKNOD), CAPN(CAP_LEASE), CAPN(CAP_AUDIT_WRITE),
    CAPN(CAP_AUDIT_CONTROL), CAPN(CAP_SETFCAP), CAPN(CAP_MAC_OVERRIDE),
    CAPN(CAP_MAC_ADMIN), CAPN(CAP_SYSLOG), CAPN(CAP_WAKE_ALARM),
    CAPN(CAP_BLOCK_SUSPEND), CAPN(CAP_AUDIT_READ), CAPN(CAP_PERFMON),
    CAPN(CAP_BPF), CAPN(CAP_CHECKPOINT_RESTORE),
};
#undef CAPN
/* clang-format on */

int cli_cap_bit(const char *name)
{
	if (!name)
		return -1;
	size_t n = strlen(name);
	if (n >= 4 && !strncasecmp(name, "CAP_", 4))
		name += 4, n -= 4;
	for (size_t k = 0; k < ARRAY_SIZE(cap_names); k++)
		if (strlen(cap_names[k].name + 4) == n &&
		    !strncasecmp(cap_names[k].name + 4, name, n))
			return (int)cap_names[k].bit;
	return -1;
}

uint64_t cli_caps_all(void)
{
	uint64_t all = 0;
	for (size_t k = 0; k < ARRAY_SIZE(cap_names); k++)
		all |= UINT64_C(1) << cap_names[k].bit;
	return all;
}
