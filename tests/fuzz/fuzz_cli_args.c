/* SPDX-License-Identifier: BSD-3-Clause */
/* Fuzz the option parser: the input is NUL-separated argv for `exec`, with
 * the environment lookup answering from the same words. */
#include "cli.h"

static char **words;
static size_t nwords;

static const char *fuzz_getenv(const char *name)
{
	for (size_t i = 0; i + 1 < nwords; i += 2)
		if (!strcmp(words[i], name))
			return words[i + 1];
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *buf = malloc(size + 1);
	memcpy(buf, data, size);
	buf[size] = '\0';
	char *argv[256];
	int argc = 0;
	for (size_t i = 0; i <= size && argc < 255;) {
		argv[argc++] = buf + i;
		i += strlen(buf + i) + 1;
	}
	argv[argc] = NULL;
	words = argv;
	nwords = (size_t)argc;
	const char *verbs[] = {"exec", "pull", "sif", "inspect"};
	for (size_t k = 0; k < ARRAY_SIZE(verbs); k++) {
		const struct cli_verb *v = cli_find_verb(verbs[k]);
		struct cli_args a;
		struct sifu_err err = {0};
		if (cli_parse(v, argc, argv, &a, &err) == 0)
			cli_apply_env(v, &a, fuzz_getenv, &err);
		cli_args_free(&a);
	}
	uint64_t sz;
	cli_parse_size(argv[0], &sz);
	free(buf);
	return 0;
}
