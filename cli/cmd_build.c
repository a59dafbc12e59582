/* SPDX-License-Identifier: BSD-3-Clause */
/* sifu build OUTPUT SOURCE: the front end.  A definition file is read, its
 * templates expanded with the build arguments and the whole file validated
 * before anything else happens, so a mistake on line 40 costs nothing. */
#include "cli.h"
#include "cli_priv.h"
#include "fetch.h"
#include "recipe.h"
#include "sif.h"
#include "squash.h"

extern char **environ;

#include <fcntl.h>
#include <limits.h>
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

static const char *const section_names[] = {"setup", "files",  "post",      "environment",
                                            "test",  "labels", "runscript", "startscript",
                                            "none",  "all"};

static int build_opts(struct cli_args *a, struct recipe_build_opts *o, struct sifu_err *err)
{
	const struct cli_env *env = cli_env_get();
	*o = (struct recipe_build_opts){
	    .output = a->pos[0],
	    .sandbox = a->set[O_SANDBOX],
	    .force = a->set[O_FORCE],
	    .update = a->set[O_UPDATE],
	    .notest = a->set[O_NOTEST],
	    .fix_perms = a->set[O_FIX_PERMS],
	    .data = a->set[O_BUILD_DATA],
	    .no_cleanup = a->set[O_NO_CLEANUP],
	    .userns_subid = a->set[O_USERNS_SUBID],
	    .writable_tmpfs = a->set[O_WRITABLE_TMPFS],
	    .host_env = environ,
	    /* the variables the builder's steps follow, read here once */
	    .tmpdir = env->build_tmpdir,
	    .busybox = env->busybox,
	    .debootstrap = env->debootstrap,
	    .path = env->path,
	    .debootstrap_include = env->debootstrap_include,
	    .sif_write = cli_sif_write(),
	    .keyring = cli_keyring(),
	};
	if (o->update && !o->sandbox) {
		sifu_err_set(err, SIFU_E_USAGE, 0, "--update needs --sandbox");
		sifu_err_hint(err, "an image file is written once; update a sandbox directory");
		return -EINVAL;
	}
	if (!a->set[O_SECTION])
		return 0;
	for (size_t i = 0; i < a->nlist[O_SECTION]; i++) {
		bool ok = false;
		for (size_t k = 0; k < ARRAY_SIZE(section_names); k++)
			ok |= !strcmp(a->list[O_SECTION][i], section_names[k]);
		if (!ok) {
			sifu_err_set(err, SIFU_E_USAGE, 0, "--section %s: no such section",
			             a->list[O_SECTION][i]);
			sifu_err_hint(err, "one of setup, files, post, environment, test, labels, "
			                   "runscript, startscript, none, all");
			return -EINVAL;
		}
	}
	return 0;
}

/* Build arguments the file never uses: refused, or with
 * --warn-unused-build-args a warning, in Apptainer's words (build_linux.go). */
static int unused_args(struct cli_args *a, const struct recipe *r, struct sifu_err *err)
{
	if (!r->nunused)
		return 0;
	_cleanup_buf_ struct sifu_buf names = {0};
	for (size_t i = 0; i < r->nunused; i++) {
		if (i)
			sifu_buf_add(&names, " ", 1);
		sifu_buf_str(&names, r->unused[i]);
	}
	sifu_buf_add(&names, "", 1);
	if (a->set[O_WARN_UNUSED_BUILD_ARGS]) {
		sifu_log(SIFU_LOG_WARN, "Unused build args: %s", names.p);
		return 0;
	}
	return sifu_err_set(err, SIFU_E_USAGE, 0,
	                    "unused build args: %s. Use option --warn-unused-build-args to show a "
	                    "warning instead of a fatal message",
	                    names.p);
}

/* Apptainer's --mksquashfs-args, for sifu's own SquashFS writer: the
 * options that shape the image map onto it, the ones that change nothing
 * here are accepted, any other is refused rather than silently dropped. */
/* mksquashfs's "-b 64K": 4 KiB to 1 MiB, a power of two. */
static int block_size(const char *v, uint32_t *out, struct sifu_err *err)
{
	char *end;
	unsigned long n = strtoul(v, &end, 10);
	if (*end == 'K' || *end == 'k')
		n <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		n <<= 20, end++;
	if (*end || n < 4096 || n > (1u << 20) || (n & (n - 1))) {
		sifu_err_set(err, SIFU_E_USAGE, 0, "--mksquashfs-args: bad block size '%s'", v);
		sifu_err_hint(err, "a power of two from 4K to 1M");
		return -EINVAL;
	}
	*out = (uint32_t)n;
	return 0;
}

static int mksquashfs_args(const char *args, struct sq_opts *sq, struct sifu_err *err)
{
	static const char *const inert[] = {"-noappend", "-no-progress", "-quiet", "-reproducible"};
	_cleanup_free_ char *copy = sifu_xstrdup(args);
	const char *comp = NULL, *level = NULL;
	char *save = NULL;
	for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		bool ok = false;
		for (size_t i = 0; i < ARRAY_SIZE(inert); i++)
			ok |= !strcmp(w, inert[i]);
		if (ok)
			continue;
		const char *v = strtok_r(NULL, " \t", &save);
		if (!strcmp(w, "-comp") && v)
			comp = v;
		else if (!strcmp(w, "-Xcompression-level") && v)
			level = v;
		else if (!strcmp(w, "-b") && v) {
			if (block_size(v, &sq->block_size, err) < 0)
				return -EINVAL;
		} else if (strcmp(w, "-processors") || !v) {
			sifu_err_set(err, SIFU_E_USAGE, 0,
			             "--mksquashfs-args: %s%s is not supported: sifu writes the "
			             "SquashFS itself",
			             w, v ? "" : " without a value");
			sifu_err_hint(err,
			              "it takes -comp ALGO, -Xcompression-level N and -b SIZE; "
			              "-noappend, -no-progress, -quiet, -reproducible and "
			              "-processors N change nothing");
			return -EINVAL;
		}
	}
	if (!comp && !level)
		return 0;
	/* "ALGO:LEVEL" as --compression takes it, which checks the range;
	 * mksquashfs's default algorithm is gzip, as sifu's */
	_cleanup_free_ char *spec =
	    level ? sifu_xasprintf("%s:%s", comp ? comp : "gzip", level) : sifu_xstrdup(comp);
	if (sq_parse_compression(spec, sq, err) < 0)
		return sifu_err_wrap(err, "--mksquashfs-args");
	return 0;
}

/* SOURCE_DATE_EPOCH, or 0 with --reproducible where it is unset: every time
 * the build writes (SIF header and descriptors, SquashFS, build-date label)
 * becomes it and the SIF's id the nil UUID, so that the same input gives
 * the same bytes (Apptainer: assemblers/sif.go, metadata.go). */
static void reproducible(struct cli_args *a, struct recipe_build_opts *o, struct sq_opts *sq,
                         struct sif_write_opts *wo)
{
	const char *sde = cli_env_get()->source_date_epoch;
	char *end = NULL;
	long long t = sde && *sde ? strtoll(sde, &end, 10) : 0;
	bool have = sde && *sde && !*end;
	if (!have && !a->set[O_REPRODUCIBLE])
		return;
	if (!have)
		t = 0;
	*wo = (struct sif_write_opts){.source_date_epoch = have ? sde : "0"};
	o->sif_write = wo;
	o->fixed_time = true;
	o->epoch = t;
	sq->mtime = t < 0 ? 0 : t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
	sq->clamp_mtime = true;
}

/* --bind and --mount for %post and %test, parsed as exec parses them. */
static int build_binds(struct cli_args *a, struct cmd_action *x, struct recipe_build_opts *o,
                       struct sifu_err *err)
{
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return sifu_err_sys(err, "getcwd");
	int r = cmd_action_parse_binds(a, cwd, x, err);
	if (r < 0)
		return r;
	o->binds = x->binds;
	o->nbinds = x->nbinds;
	o->bind_list = x->bind_list;
	return 0;
}

int cmd_build(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
{
	(void)v;
	if (a->npos != 2) {
		sifu_err_set(err, SIFU_E_USAGE, 0,
		             "build takes OUTPUT and SOURCE, got %d argument%s", a->npos,
		             a->npos == 1 ? "" : "s");
		sifu_err_hint(err, "e.g. sifu build tool.sif tool.def; see sifu build --help");
		return -EINVAL;
	}
	const char *src = a->pos[1];
	struct recipe_build_opts o = {0};
	struct fetch_pull_opts po;
	_cleanup_free_ char *user = NULL, *pass = NULL;
	/* how to reach a docker://, oci: … base: the same options as pull */
	_cleanup_(cmd_action_free) struct cmd_action bx = {.opened.fd = -1};
	if (build_opts(a, &o, err) < 0 || build_binds(a, &bx, &o, err) < 0 ||
	    cli_pull_opts(a, &po, &user, &pass, err) < 0)
		return -EINVAL;
	if (a->set[O_MKSQUASHFS_ARGS] &&
	    mksquashfs_args(a->val[O_MKSQUASHFS_ARGS], &po.squash, err) < 0)
		return -EINVAL;
	struct sif_write_opts wo;
	reproducible(a, &o, &po.squash, &wo);
	o.pull = &po;
	/* --section a,b arrives as a list; NULL-terminate it */
	_cleanup_free_ char **sections = NULL;
	if (a->set[O_SECTION]) {
		sections = sifu_xcalloc(a->nlist[O_SECTION] + 1, sizeof(char *));
		for (size_t i = 0; i < a->nlist[O_SECTION]; i++)
			sections[i] = a->list[O_SECTION][i];
		o.sections = sections;
	}
	int ret;
	if (o.data && (o.sandbox || classify(src) == SRC_DEFFILE || classify(src) == SRC_URI)) {
		/* Apptainer also runs a definition file into a data partition;
		 * sifu does not yet */
		sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		             "--data makes a SIF from a directory or a SquashFS file, not from %s",
		             o.sandbox                  ? "--sandbox"
		             : classify(src) == SRC_URI ? "a URI"
		                                        : "a definition file");
		sifu_err_hint(
		    err, "build the tree first (a sandbox), then: sifu build --data DATA.sif DIR");
		return -EINVAL;
	}
	switch (classify(src)) {
	case SRC_URI:
	case SRC_SANDBOX:
	case SRC_IMAGE: ret = recipe_convert(src, &o, err); goto done;
	case SRC_DEFFILE: break;
	}

	struct recipe_buildargs ba = {0};
	struct recipe *r = NULL;
	ret = load_build_args(a, &ba, err);
	if (ret >= 0)
		ret = recipe_load(src, &ba, &r, err);
	recipe_buildargs_free(&ba);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < r->nwarnings; i++)
		sifu_log(SIFU_LOG_WARN, "%s", r->warnings[i]);
	if ((ret = unused_args(a, r, err)) < 0) {
		recipe_free(r);
		return ret;
	}
	sifu_log(SIFU_LOG_INFO, "%s is valid (%zu stage%s, Bootstrap: %s)", src, r->nstages,
	         r->nstages == 1 ? "" : "s", r->stages[r->nstages - 1].bootstrap);
	o.source_text = r->raw;
	ret = recipe_build(r, &o, err);
	recipe_free(r);
done:
	if (ret == 0 && sifu_log_get_level() >= SIFU_LOG_INFO)
		sifu_info("Build complete: %s", o.output);
	return ret;
}
