/* SPDX-License-Identifier: BSD-3-Clause */
/* Fuzz the OCI JSON readers with one input: manifest kind, index platform
 * choice, manifest and config parsing, and the scripts made from a config. */
#include "fetch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (1 << 20))
		return 0;
	const char *s = (const char *)data;
	struct sifu_err err = {0};
	fetch_manifest_kind(s, size, &err);
	struct fetch_platform p;
	fetch_platform_host(&p);
	struct fetch_blob b = {0};
	if (fetch_index_select(s, size, &p, &b, &err) == 0)
		free(b.media_type);
	struct fetch_manifest m;
	if (fetch_manifest_parse(s, size, &m, &err) == 0)
		fetch_manifest_free(&m);
	struct fetch_config c;
	if (fetch_config_parse(s, size, &c, &err) == 0) {
		free(fetch_runscript(&c));
		free(fetch_env_script(&c));
		fetch_config_free(&c);
	}
	return 0;
}
