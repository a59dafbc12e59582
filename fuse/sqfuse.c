/* SPDX-License-Identifier: BSD-3-Clause */
#include "sqfuse.h"

void sqf_options_default(struct sqf_options *o)
{
	memset(o, 0, sizeof(*o));
	o->chunk_size = 1u << 20;
	o->cache_size = 64u << 20;
	o->readahead_max = 8u << 20;
	o->prefetch = SQF_PREFETCH_META;
	o->uid = getuid();
	o->gid = getgid();
}

int sqf_image_open(int fd, uint64_t offset, uint64_t size, const struct sqf_options *o,
		   struct sqf_image **out, struct sifu_err *err)
{
	return sifu_err_set(err, SIFU_E_UNAVAILABLE, ENOSYS,
			    "the SquashFS server is not available in this build yet");
}
