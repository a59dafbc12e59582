/* SPDX-License-Identifier: BSD-3-Clause */
#include "fetch-private.h"
int fetch_source_registry(const struct fetch_ref *ref, const struct fetch_pull_opts *o,
			  struct fetch_cache *cache, struct fetch_source **out, struct sifu_err *err)
{
	return sifu_err_set(err, SIFU_E_UNAVAILABLE, 0, "docker:// is not built yet");
}
