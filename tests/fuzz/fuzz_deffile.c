/* SPDX-License-Identifier: BSD-3-Clause */
/* Fuzz the definition-file parser, the template expansion and the
 * serialiser.  Oracle: whatever parses must serialise to text that parses
 * again and serialises to the very same text (the round trip the image's
 * stored definition relies on). */
#include "recipe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 16)
		return 0;
	struct sifu_err err = {0};
	struct recipe_buildargs ba = {0};
	recipe_buildargs_add(&ba, "base=alpine:3.20", &err);
	recipe_buildargs_add(&ba, "v = 1.2 ", &err);
	/* the input doubles as a build-arg file */
	recipe_buildargs_add_text(&ba, "args", (const char *)data, size, &err);

	struct recipe *r = NULL;
	if (recipe_parse("fuzz.def", (const char *)data, size, &ba, &r, &err) < 0) {
		recipe_buildargs_free(&ba);
		return 0;
	}
	for (size_t i = 0; i < r->nstages; i++) {
		char *sb, *body;
		recipe_script_shebang(&r->stages[i].runscript, &sb, &body);
		free(sb);
		free(body);
	}
	char *text1 = recipe_serialize(r);
	recipe_free(r);

	struct recipe *r2 = NULL;
	if (recipe_parse("fuzz.def", text1, strlen(text1), &ba, &r2, &err) < 0) {
		char line[2 * SIFU_ERR_MSG_MAX];
		sifu_err_format(&err, line, sizeof(line));
		fprintf(stderr, "serialised text does not parse: %s\n--- text ---\n%s", line,
		        text1);
		abort();
	}
	char *text2 = recipe_serialize(r2);
	if (strcmp(text1, text2)) {
		fprintf(stderr, "round trip differs\n--- first ---\n%s--- second ---\n%s", text1,
		        text2);
		abort();
	}
	free(text2);
	recipe_free(r2);
	free(text1);
	recipe_buildargs_free(&ba);
	return 0;
}
