/* SPDX-License-Identifier: BSD-3-Clause */
/* sifu build OUTPUT SOURCE: the front end.  A definition file is read, its
 * templates expanded with the build arguments and the whole file validated
 * before anything else happens, so a mistake on line 40 costs nothing. */
#include "cli.h"
#include "recipe.h"

#include <fcntl.h>
#include <sys/stat.h>

int cmd_build(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);

/* What SOURCE names, the way Apptainer decides: a URI first, then a
 * directory (sandbox) or an image file, else a definition file. */
enum source_kind { SRC_URI, SRC_SANDBOX, SRC_IMAGE, SRC_DEFFILE };

static bool is_uri(const char *s)
{
	static const char *const schemes[] = {
	    "docker-archive:", "docker-daemon:", "oci-archive:", "oci:",  "library:",
	    "shub:",           "docker:",        "oras:",        "http:", "https:"};
	for (size_t i = 0; i < ARRAY_SIZE(schemes); i++)
		if (!strncmp(s, schemes[i], strlen(schemes[i])))
			return true;
	return strstr(s, "://") != NULL;
}

/* A SIF starts with its launch line and has "SIF_MAGIC" at offset 32. */
static bool looks_like_image(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return false;
	char buf[48] = {0};
	ssize_t n = pread(fd, buf, sizeof(buf), 0);
	if (n >= 41 && !memcmp(buf + 32, "SIF_MAGIC", 9))
		return true;
	/* a bare SquashFS image: "hsqs" */
	return n >= 4 && !memcmp(buf, "hsqs", 4);
}

static enum source_kind classify(const char *src)
{
	struct stat st;
	if (stat(src, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return SRC_SANDBOX;
		if (looks_like_image(src))
			return SRC_IMAGE;
		return SRC_DEFFILE;
	}
	return is_uri(src) ? SRC_URI : SRC_DEFFILE;
}

static int load_build_args(struct cli_args *a, struct recipe_buildargs *ba, struct sifu_err *err)
{
	if (a->set[O_BUILD_ARG_FILE] && a->val[O_BUILD_ARG_FILE]) {
		if (recipe_buildargs_load(ba, a->val[O_BUILD_ARG_FILE], err) < 0)
			return -EINVAL;
	}
	for (size_t i = 0; i < a->nlist[O_BUILD_ARG]; i++)
		if (recipe_buildargs_add(ba, a->list[O_BUILD_ARG][i], err) < 0)
			return -EINVAL;
	for (size_t i = 0; i < ba->nwarnings; i++)
		sifu_log(SIFU_LOG_WARN, "%s", ba->warnings[i]);
	return 0;
}

int cmd_build(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
{
	if (a->npos != 2) {
		sifu_err_set(err, SIFU_E_USAGE, 0,
		             "build takes OUTPUT and SOURCE, got %d argument%s", a->npos,
		             a->npos == 1 ? "" : "s");
		sifu_err_hint(err, "e.g. sifu build tool.sif tool.def; see sifu build --help");
		return -EINVAL;
	}
	const char *src = a->pos[1];
	switch (classify(src)) {
	case SRC_URI:
		return sifu_err_set(err, SIFU_E_UNAVAILABLE, ENOSYS,
		                    "building from a URI (%s) is not available in this build yet; "
		                    "use sifu pull",
		                    src);
	case SRC_SANDBOX:
	case SRC_IMAGE:
		return sifu_err_set(err, SIFU_E_UNAVAILABLE, ENOSYS,
		                    "converting %s is not available in this build yet", src);
	case SRC_DEFFILE: break;
	}

	struct recipe_buildargs ba = {0};
	struct recipe *r = NULL;
	int ret = load_build_args(a, &ba, err);
	if (ret == 0)
		ret = recipe_load(src, &ba, &r, err);
	recipe_buildargs_free(&ba);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < r->nwarnings; i++)
		sifu_log(SIFU_LOG_WARN, "%s", r->warnings[i]);
	size_t nstages = r->nstages;
	char agent[64];
	snprintf(agent, sizeof(agent), "%s", r->stages[nstages - 1].bootstrap);
	recipe_free(r);
	/* the builder (bootstrap agents, %post in a user namespace, the SIF
	 * writer) comes with the launcher and pull modules; until then say so
	 * plainly instead of pretending */
	return sifu_err_set(err, SIFU_E_UNAVAILABLE, ENOSYS,
	                    "%s is valid (%zu stage%s, Bootstrap: %s), but building from "
	                    "definition files is not available in this build yet",
	                    src, nstages, nstages == 1 ? "" : "s", agent);
}
