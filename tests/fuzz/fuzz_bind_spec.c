/* SPDX-License-Identifier: BSD-3-Clause */
/* Fuzz the user-facing specs of the launcher: the first byte picks the
 * parser (--bind, --mount, --env-file text, --no-mount word), the rest is the
 * spec.  Checks the invariants a successful parse promises. */
#include "userns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 8192)
		return 0;
	char *s = sifu_xmalloc(size);
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	struct sifu_err err = {0};
	struct ns_bind b;
	int r;
	switch (data[0] % 5) {
	case 0:
	case 1:
		r = data[0] % 5 ? ns_mount_parse(s, "/cwd", &b, &err)
		                : ns_bind_parse(s, "/cwd", &b, &err);
		if (r == 0) {
			if (!b.src || !b.dst || b.dst[0] != '/' || !*b.src)
				abort();
			ns_bind_free(&b);
		} else if (err.depth == 0 || !err.chain[0][0]) {
			abort(); /* every failure says why */
		}
		break;
	case 2: {
		struct ns_strv v = {0};
		if (ns_env_file_parse(s, &v, &err) == 0)
			for (size_t i = 0; i < v.n; i++)
				if (!strchr(v.v[i], '=') || v.v[i][0] == '=')
					abort();
		ns_strv_free(&v);
		break;
	}
	case 3: {
		unsigned m = 0;
		ns_nomount_parse(s, &m, &err);
		break;
	}
	case 4: {
		char *p = ns_passwd_edit(s, "user", 1000, 1000, "", "/home/user", "/bin/sh");
		if (!strstr(p, "user:x:1000:1000::/home/user:/bin/sh\n"))
			abort();
		free(p);
		char *opts[] = {s, NULL};
		struct ns_env_spec es = {.home = "/h",
		                         .container = "/c",
		                         .name = "c",
		                         .command = "exec",
		                         .bind = "",
		                         .env_opts = opts};
		struct ns_env e;
		if (ns_env_build(&es, &e, &err) == 0) {
			free(ns_env_script(&e));
			ns_env_free(&e);
		}
		break;
	}
	}
	free(s);
	return 0;
}
