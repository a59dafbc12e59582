/* SPDX-License-Identifier: BSD-3-Clause */
#include "sif.h"

#include <endian.h>

/* Global header layout (sylabs/sif pkg/sif/sif.go: header). */
#define HDR_LAUNCH_LEN 32
#define HDR_MAGIC_OFF 32
#define HDR_MAGIC_LEN 10

bool sif_fd_is_sif(int fd)
{
	char buf[HDR_MAGIC_OFF + HDR_MAGIC_LEN];
	if (pread(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf))
		return false;
	return !memcmp(buf + HDR_MAGIC_OFF, SIF_MAGIC, strlen(SIF_MAGIC));
}

int sif_find_rootfs(int fd, struct sif_rootfs_loc *out, struct sifu_err *err)
{
	if (!sif_fd_is_sif(fd))
		return sifu_err_set(err, SIFU_E_UNSUPPORTED, EINVAL, "not a SIF file");
	return sifu_err_set(err, SIFU_E_UNAVAILABLE, ENOSYS,
			    "reading SIF partitions is not available in this build yet");
}
