/* SPDX-License-Identifier: BSD-3-Clause */
/* `sifu cache list|clean`, worded as Apptainer's. */
#include "cli.h"
#include "fetch.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <sys/stat.h>
#include <time.h>

int cmd_cache(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);

/* A home directory to keep the cache in: absolute, and a directory of the
 * caller's (a HOME left pointing at someone else's directory, or at /, is
 * not one). */
static bool usable_home(const char *h)
{
	struct stat st;
	return h && h[0] == '/' && stat(h, &st) == 0 && S_ISDIR(st.st_mode) &&
	       st.st_uid == geteuid();
}

void cli_cache_loc(struct fetch_cache_loc *loc)
{
	static char dir[PATH_MAX + 16], tmp[PATH_MAX];
	memset(loc, 0, sizeof(*loc));
	const struct cli_env *env = cli_env_get();
	/* the same private directory as the block cache's */
	snprintf(tmp, sizeof(tmp), "%s/sifu-%u", cli_tmp_base(), (unsigned)geteuid());
	loc->tmpbase = tmp;
	loc->nprivate = 1;
	loc->fix = "set SIFU_CACHEDIR to a directory of your own, or use --disable-cache";
	loc->dir = dir;
	if (env->cachedir) {
		snprintf(dir, sizeof(dir), "%s", env->cachedir);
		return;
	}
	if (env->xdg_cache_home && *env->xdg_cache_home == '/') {
		snprintf(dir, sizeof(dir), "%s/sifu", env->xdg_cache_home);
		return;
	}
	const char *home = env->home;
	if (!usable_home(home)) {
		struct passwd *pw = getpwuid(geteuid());
		home = pw ? pw->pw_dir : NULL;
	}
	if (usable_home(home)) {
		snprintf(dir, sizeof(dir), "%s/.cache/sifu", home);
		return;
	}
	/* no home: never a shared path as found (/tmp/.cache/sifu could be
	 * anybody's), but a directory made private to the caller */
	snprintf(dir, sizeof(dir), "%s/cache", tmp);
	loc->nprivate = 2;
}

static int cache_list_one(struct fetch_cache *c, bool sif, bool all, struct sifu_err *err)
{
	struct fetch_cache_entry *e = NULL;
	size_t n = 0;
	if (fetch_cache_list(c, sif, &e, &n, err) < 0)
		return -EIO;
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		total += e[i].size;
		if (!all)
			continue;
		char sz[32], when[32];
		sifu_fmt_bytes(e[i].size, sz, sizeof(sz));
		time_t t = (time_t)e[i].mtime;
		struct tm tm;
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
		if (sif)
			printf("%-20.19s %-12s %s\n", e[i].name, sz, when);
		else
			printf("sha256:%-13.12s %-12s %s\n", e[i].name, sz, when);
	}
	char tot[32];
	sifu_fmt_bytes(total, tot, sizeof(tot));
	printf("There are %zu %s file(s) using %s of space\n", n, sif ? "container" : "OCI blob",
	       tot);
	free(e);
	return 0;
}

/* The block cache (decompressed blocks kept by exec/run/shell/test, see
 * sifu-exec(1) --block-cache): count its files, or remove them (unlink
 * only: a running container keeps the file it has mapped).  Everything
 * through DFD, the directory checked by cli_block_cache_open: names are
 * never resolved again from the path. */
static void blocks_walk(int dfd, bool remove, int64_t before, size_t *n, uint64_t *bytes)
{
	*n = 0;
	*bytes = 0;
	if (dfd < 0)
		return; /* none yet */
	_cleanup_closedir_ DIR *d = sifu_opendir_at(dfd, ".");
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat st;
		size_t len = strlen(de->d_name);
		bool ours = (len > 4 && !strcmp(de->d_name + len - 4, ".blk")) ||
		            (len > 4 && !strcmp(de->d_name + len - 4, ".tmp"));
		if (!ours || fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || (before && st.st_mtime >= before) ||
		    (remove && unlinkat(dfd, de->d_name, 0) < 0))
			continue;
		(*n)++;
		*bytes += (uint64_t)st.st_size;
	}
}

/* The block cache's directory as `cache list|clean` see it (never made):
 * a dirfd, -ENOENT when there is none (nothing to do), or another -errno
 * with err set when it cannot be trusted. */
static int blocks_open(char *buf, size_t len, const char **dir, struct sifu_err *err)
{
	*dir = cli_block_cache_path(cli_env_get()->block_cache, buf, len);
	if (!*dir)
		return -ENOENT;
	struct sifu_err e = {0};
	int fd = cli_block_cache_open(*dir, *dir == buf, false, &e);
	if (fd == -ENOENT)
		return fd;
	if (fd < 0)
		*err = e;
	return fd;
}

/* A cache type as given (--type, or a word after list/clean) to the one of
 * sifu's it means: Apptainer's oci-tmp holds SIFs made for exec docker://,
 * sifu's sif; its library, net, oras, shub and ipfs caches have no
 * counterpart here (an oras:// pull keeps its SIF as a blob), so they are
 * accepted and hold nothing.  NULL: not a type. */
static const char *cache_type(const char *t)
{
	static const char *const map[][2] = {
	    {"blob", "blob"},   {"blobs", "blob"},    {"sif", "sif"},
	    {"oci-tmp", "sif"}, {"blocks", "blocks"}, {"debootstrap", "debootstrap"},
	    {"all", "all"},     {"library", "none"},  {"net", "none"},
	    {"oras", "none"},   {"shub", "none"},     {"ipfs", "none"},
	    {"oci", "none"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (!strcmp(t, map[i][0]))
			return map[i][1];
	return NULL;
}

/* The I-th type asked for: --type's, then the words after list or clean
 * (`cache list all`). */
static size_t ntypes(const struct cli_args *a)
{
	return a->nlist[O_TYPE] + (size_t)a->npos - 1;
}

static const char *type_arg(const struct cli_args *a, size_t i)
{
	return i < a->nlist[O_TYPE] ? a->list[O_TYPE][i] : a->pos[1 + i - a->nlist[O_TYPE]];
}

/* none asked for means all */
static bool want(struct cli_args *a, const char *type)
{
	if (ntypes(a) == 0)
		return true;
	for (size_t i = 0; i < ntypes(a); i++) {
		const char *t = cache_type(type_arg(a, i));
		if (t && (!strcmp(t, type) || !strcmp(t, "all")))
			return true;
	}
	return false;
}

static int cache_list(struct fetch_cache *c, struct cli_args *a, struct sifu_err *err)
{
	bool all =
	    a->set[O_ALL] || a->set[O_CACHE_VERBOSE] || sifu_log_get_level() >= SIFU_LOG_VERBOSE;
	if (all)
		printf("%-20s %-12s %s\n", "NAME", "SIZE", "DATE CREATED");
	int r = 0;
	if (want(a, "sif"))
		r = cache_list_one(c, true, all, err);
	if (r == 0 && want(a, "blob"))
		r = cache_list_one(c, false, all, err);
	if (r == 0)
		printf("Cache directory: %s\n", c->dir);
	char buf[PATH_MAX];
	const char *bdir = NULL;
	struct sifu_err e = {0};
	_cleanup_close_ int bfd = want(a, "blocks") ? blocks_open(buf, sizeof(buf), &bdir, &e) : -1;
	if (r == 0 && bdir) {
		size_t n;
		uint64_t bytes;
		char b[32];
		if (bfd < 0 && bfd != -ENOENT) { /* listing removes nothing: say it, go on */
			char line[SIFU_ERR_MSG_MAX];
			sifu_err_format(&e, line, sizeof(line));
			sifu_log(SIFU_LOG_WARN, "%s (%s)", line, e.hint);
		}
		blocks_walk(bfd, false, 0, &n, &bytes);
		sifu_fmt_bytes(bytes, b, sizeof(b));
		printf("There are %zu block cache file(s) using %s of space\n", n, b);
		printf("Block cache directory: %s\n", bdir);
	}
	if (r == 0 && want(a, "debootstrap")) {
		size_t n;
		uint64_t bytes;
		char b[32];
		fetch_cache_sub(c, "debootstrap", false, 0, &n, &bytes);
		sifu_fmt_bytes(bytes, b, sizeof(b));
		printf("There are %zu debootstrap package file(s) using %s of space\n", n, b);
	}
	return r;
}

/* Ask before cleaning, naming what goes where (Apptainer's
 * cleanCachePrompt reads the answer from stdin, a terminal or not).
 * 1: yes; 0: declined; < 0: no answer (end of input). */
static int confirm(struct cli_args *a, const char *dir, const char *bdir)
{
	fprintf(stderr, "This will delete from your cache:\n");
	if (want(a, "blob") || want(a, "sif"))
		fprintf(stderr, "  %s%s%s in %s\n", want(a, "blob") ? "OCI blobs" : "",
		        want(a, "blob") && want(a, "sif") ? " and " : "",
		        want(a, "sif") ? "pulled images" : "", dir);
	if (want(a, "blocks") && bdir)
		fprintf(stderr, "  kept image blocks in %s\n", bdir);
	if (want(a, "debootstrap"))
		fprintf(stderr, "  debootstrap packages in %s/debootstrap\n", dir);
	fprintf(stderr, "Hint: --dry-run shows exactly what would be deleted.\n"
	                "Do you want to continue? [y/N] ");
	char line[16];
	bool answered = fgets(line, sizeof(line), stdin) != NULL;
	if (!answered || !isatty(0)) /* no echo ended the prompt's line */
		fputc('\n', stderr);
	return answered ? line[0] == 'y' || line[0] == 'Y' : -1;
}

int cmd_cache(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
{
	if (a->npos < 1 || (strcmp(a->pos[0], "list") != 0 && strcmp(a->pos[0], "clean") != 0)) {
		sifu_err_set(err, SIFU_E_USAGE, 0, "cache takes one of: list, clean");
		sifu_err_hint(err, "e.g. sifu cache list, or sifu cache clean --force");
		return -EINVAL;
	}
	for (size_t i = 0; i < ntypes(a); i++) {
		if (!cache_type(type_arg(a, i))) {
			sifu_err_set(err, SIFU_E_USAGE, 0, "unknown cache type \"%s\"",
			             type_arg(a, i));
			sifu_err_hint(err, "use blob, sif (oci-tmp), blocks, debootstrap or all; "
			                   "library, net, oras and shub hold nothing in sifu");
			return -EINVAL;
		}
	}
	int64_t before = 0;
	if (a->set[O_DAYS]) {
		char *end;
		errno = 0;
		long days = strtol(a->val[O_DAYS], &end, 10);
		if (errno || end == a->val[O_DAYS] || *end || days < 0 || days > 365L * 1000) {
			sifu_err_set(err, SIFU_E_USAGE, 0,
			             "--days takes a number of days, not \"%s\"", a->val[O_DAYS]);
			return -EINVAL;
		}
		/* as in Apptainer, --days 0 removes everything, as no --days does */
		before = days ? (int64_t)time(NULL) - (int64_t)days * 86400 : 0;
	}
	struct fetch_cache c;
	struct fetch_cache_loc loc;
	cli_cache_loc(&loc);
	if (fetch_cache_open(&loc, false, &c, err) < 0)
		return -EIO;
	int r = 0;
	if (strcmp(a->pos[0], "list") == 0) {
		r = cache_list(&c, a, err);
	} else {
		size_t n;
		uint64_t bytes;
		char buf[PATH_MAX];
		const char *bdir = NULL;
		_cleanup_close_ int bfd = -ENOENT;
		/* a block cache directory that is not the caller's own is
		 * refused before anything is removed: its files might be
		 * someone else's, reached through a planted symlink */
		if (want(a, "blocks") && (bfd = blocks_open(buf, sizeof(buf), &bdir, err)) < 0 &&
		    bfd != -ENOENT) {
			fetch_cache_close(&c);
			return bfd;
		}
		int yes = a->set[O_FORCE] || a->set[O_CACHE_FORCE] || a->set[O_DRY_RUN]
		              ? 1
		              : confirm(a, c.dir, bdir);
		if (yes <= 0) {
			fetch_cache_close(&c);
			if (yes == 0) { /* declining is an answer, not a failure */
				sifu_info("Cache cleanup canceled, nothing removed");
				return 0;
			}
			sifu_err_set(err, SIFU_E_USAGE, 0,
			             "cache clean: no answer, nothing removed");
			sifu_err_hint(err, "use --force to clean without asking");
			return -ECANCELED;
		}
		struct fetch_clean_opts co = {.dry_run = a->set[O_DRY_RUN],
		                              .blobs = want(a, "blob"),
		                              .sifs = want(a, "sif"),
		                              .before = before};
		if (co.blobs || co.sifs)
			r = fetch_cache_clean(&c, &co, &n, &bytes, err);
		if (r == 0 && (co.blobs || co.sifs)) {
			char b[32];
			sifu_fmt_bytes(bytes, b, sizeof(b));
			printf("%s %zu file(s), %s, from %s\n",
			       a->set[O_DRY_RUN] ? "Would remove" : "Removed", n, b, c.dir);
		}
		if (r == 0 && bdir && want(a, "blocks")) {
			char b[32];
			blocks_walk(bfd, !a->set[O_DRY_RUN], before, &n, &bytes);
			sifu_fmt_bytes(bytes, b, sizeof(b));
			printf("%s %zu file(s), %s, from %s\n",
			       a->set[O_DRY_RUN] ? "Would remove" : "Removed", n, b, bdir);
		}
		if (r == 0 && want(a, "debootstrap")) {
			char b[32];
			fetch_cache_sub(&c, "debootstrap", !a->set[O_DRY_RUN], before, &n, &bytes);
			sifu_fmt_bytes(bytes, b, sizeof(b));
			printf("%s %zu file(s), %s, from %s/debootstrap\n",
			       a->set[O_DRY_RUN] ? "Would remove" : "Removed", n, b, c.dir);
		}
	}
	fetch_cache_close(&c);
	return r;
}
