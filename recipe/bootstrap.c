/* SPDX-License-Identifier: BSD-3-Clause */
/* recipe/: bootstrap agents - the base root file system of a stage.
 *
 *   busybox     a static busybox binary of the host (offline) and its applets
 *   scratch     nothing
 *   localimage  a SIF, a bare SquashFS or a sandbox directory
 *   docker, oci, oci-archive, docker-archive
 *               through the pull path: a SIF in the build's private directory,
 *               then extracted (layers, whiteouts and digests as `sifu pull`)
 *   debootstrap the host's debootstrap as fake root (debootstrap.c) */
#include "recipe_priv.h"
#include "sif.h"
#include "sqfuse.h"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

/* ------------------------------------------------------------- busybox -- */

/* A static executable has no PT_INTERP: it runs in an empty root. */
static bool elf_is_static(int fd)
{
	Elf64_Ehdr eh;
	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr))
		return false;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) !=
		    (ssize_t)sizeof(ph))
			return false;
		if (ph.p_type == PT_INTERP)
			return false;
	}
	return true;
}

/* o->busybox ($SIFU_BUSYBOX), else the first static busybox of a few usual
 * places. */
static int find_busybox(const struct recipe_build_opts *o, char *path, size_t len,
                        struct sifu_err *err)
{
	const char *env = o->busybox;
	static const char *const cands[] = {"/bin/busybox", "/usr/bin/busybox", "/sbin/busybox",
	                                    "/usr/sbin/busybox",
	                                    "/usr/lib/initramfs-tools/bin/busybox"};
	for (size_t i = 0; i < ARRAY_SIZE(cands) + 1; i++) {
		const char *p = i == 0 ? env : cands[i - 1];
		if (!p || !*p)
			continue;
		_cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (elf_is_static(fd)) {
			snprintf(path, len, "%s", p);
			return 0;
		}
		if (i == 0)
			return sifu_err_set(err, SIFU_E_USAGE, 0,
			                    "SIFU_BUSYBOX=%s is not a static 64-bit busybox", p);
	}
	sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT,
	             "Bootstrap: busybox needs a static busybox binary on this host");
	sifu_err_hint(err, "install busybox-static, or set SIFU_BUSYBOX=/path/to/busybox");
	return -ENOENT;
}

/* The applets BB says it has, where they belong ("bin/ls" lines). */
static int busybox_applets(const char *bb, char **list, struct sifu_err *err)
{
	/* a relative name runs from the current directory, not from $PATH */
	_cleanup_free_ char *exe = strchr(bb, '/') ? sifu_xstrdup(bb) : sifu_xasprintf("./%s", bb);
	char *argv[] = {exe, "--list-full", NULL};
	struct sifu_command sp = {.argv = argv, .in = -1, .out = -1, .err = -1};
	struct sifu_exit x = {0};
	struct sifu_err serr = {0};
	int r = sifu_spawn_capture(&sp, 1 << 20, list, NULL, &x, &serr);
	if (r == 0 && sifu_exit_ok(&x))
		return 0;
	if (r < 0)
		sifu_debug("build: %s", serr.chain[0]);
	else
		free(TAKE_PTR(*list));
	return sifu_err_set(err, SIFU_E_SYS, 0, "%s %s failed", bb, argv[1]);
}

static int bootstrap_busybox(const struct bld_stage_ctx *c, struct sifu_err *err)
{
	char bb[PATH_MAX];
	int r = find_busybox(c->o, bb, sizeof(bb), err);
	if (r < 0)
		return r;
	static const char *const dirs[] = {"/bin",     "/sbin", "/usr/bin", "/usr/sbin",
	                                   "/etc",     "/root", "/home",    "/tmp",
	                                   "/var/tmp", "/dev",  "/proc",    "/sys"};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		int fd = sifu_path_mkdir_in_root(c->rootfd, dirs[i], 0755);
		if (fd < 0)
			return sifu_err_set(err, SIFU_E_SYS, -fd, "creating %s", dirs[i]);
		close(fd);
	}
	_cleanup_close_ int bin =
	    sifu_path_open_in_root(c->rootfd, "/bin", O_RDONLY | O_DIRECTORY, 0);
	if (bin < 0)
		return sifu_err_set(err, SIFU_E_SYS, -bin, "opening /bin of the build");
	fchmodat(c->rootfd, "tmp", 01777, 0);
	fchmodat(c->rootfd, "var/tmp", 01777, 0);
	fchmodat(c->rootfd, "root", 0700, 0);
	if ((r = bld_copy_in(-1, bb, c->rootfd, "/bin/busybox", err)) < 0)
		return sifu_err_wrap(err, "copying %s", bb);
	/* the applets, where this busybox says they belong */
	_cleanup_free_ char *list = NULL;
	if (busybox_applets(bb, &list, err) < 0)
		return sifu_err_wrap(err, "asking %s for its applets", bb);
	for (char *save = NULL, *line = strtok_r(list, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!*line || strstr(line, "..") || !strcmp(line, "bin/busybox"))
			continue;
		int depth = 0;
		for (const char *s = line; *s; s++)
			depth += *s == '/';
		char target[64] = "";
		for (int i = 0; i < depth; i++)
			strncat(target, "../", sizeof(target) - strlen(target) - 1);
		strncat(target, "bin/busybox", sizeof(target) - strlen(target) - 1);
		_cleanup_free_ char *path = sifu_xasprintf("/%s", line);
		if ((r = bld_symlink(c->rootfd, target, path, err)) < 0)
			return r;
	}
	struct stat st;
	if (fstatat(c->rootfd, "etc/passwd", &st, AT_SYMLINK_NOFOLLOW) < 0 &&
	    (r = bld_write_file(c->rootfd, "/etc/passwd", 0644, "root:x:0:0:root:/root:/bin/sh\n",
	                        err)) < 0)
		return r;
	if (fstatat(c->rootfd, "etc/group", &st, AT_SYMLINK_NOFOLLOW) < 0 &&
	    (r = bld_write_file(c->rootfd, "/etc/group", 0644, "root:x:0:\n", err)) < 0)
		return r;
	return 0;
}

/* ---------------------------------------------------------- localimage -- */

int bld_unpack_local(const char *path, int rootfd, struct sifu_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return sifu_err_sys(err, "%s", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sifu_err_sys(err, "%s", path);
	if (S_ISDIR(st.st_mode))
		return bld_copy_dir(fd, rootfd, err);
	uint64_t off = 0, size = (uint64_t)st.st_size;
	if (sif_fd_is_sif(fd)) {
		struct sif_rootfs_loc loc;
		if (sif_find_rootfs(fd, &loc, err) < 0)
			return sifu_err_wrap(err, "%s", path);
		if (loc.fstype != SIF_FS_SQUASH)
			return sifu_err_set(err, SIFU_E_UNSUPPORTED, 0,
			                    "%s: the root file system is not SquashFS", path);
		off = loc.offset;
		size = loc.size;
	}
	struct sqf_options so;
	sqf_options_default(&so);
	struct sqf_image *img = NULL;
	if (sqf_image_open(fd, off, size, &so, &img, err) < 0)
		return sifu_err_wrap(err, "%s", path);
	_cleanup_close_ int dfd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r =
	    dfd < 0 ? sifu_err_sys(err, "opening the build's root") : sqf_extract(img, dfd, err);
	sqf_image_close(img);
	if (r < 0)
		return sifu_err_wrap(err, "extracting %s", path);
	return 0;
}

/* Fingerprints: the base image must verify (OpenPGP keyring, as Apptainer
 * checks it) and carry a good signature by every fingerprint listed. */
static int check_fingerprints(const struct bld_stage_ctx *c, const char *base, const char *name,
                              struct sifu_err *err)
{
	const char *fps = recipe_header_get(c->st, "fingerprints");
	if (!fps || !*fps)
		return 0;
	_cleanup_close_ int fd = open(base, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || !sif_fd_is_sif(fd)) {
		sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		             "Fingerprints: (stage at line %u) needs a signed SIF base; %s is not "
		             "a SIF",
		             c->st->line, name);
		sifu_err_hint(err, "remove Fingerprints:, or build from a signed SIF");
		return -EINVAL;
	}
	struct sif_verify_report rep = {0};
	struct sif_verify_opts o = {.keyring = c->o->keyring};
	int r = sif_verify_image(base, &o, &rep, err);
	if (r < 0) {
		sif_verify_report_free(&rep);
		return sifu_err_wrap(err, "Fingerprints: the base %s does not verify", name);
	}
	_cleanup_free_ char *list = sifu_xstrdup(fps);
	char *save = NULL;
	for (char *t = strtok_r(list, ", \t", &save); t && r == 0;
	     t = strtok_r(NULL, ", \t", &save)) {
		bool found = false;
		for (size_t i = 0; i < rep.nsigs && !found; i++)
			found = rep.sigs[i].ok && strcasestr(rep.sigs[i].signer, t);
		if (!found) {
			r = sifu_err_set(err, SIFU_E_VERIFY, EPERM,
			                 "Fingerprints: the base %s has no good signature by %s",
			                 name, t);
			sifu_err_hint(err, "'sifu verify %s' shows who signed it", name);
		}
	}
	sif_verify_report_free(&rep);
	sif_pgp_cleanup(c->o->keyring);
	return r;
}

/* -------------------------------------------------------------- docker -- */

static int bootstrap_pull(const struct bld_stage_ctx *c, const char *agent, struct sifu_err *err)
{
	const char *from = c->st->from;
	if (!from || !*from)
		return sifu_err_set(err, SIFU_E_USAGE, 0, "Bootstrap: %s needs From:", agent);
	_cleanup_free_ char *uri = NULL;
	const char *registry = recipe_header_get(c->st, "registry");
	const char *ns = recipe_header_get(c->st, "namespace");
	if (!strcmp(agent, "docker")) {
		const char *f = !strncmp(from, "docker://", 9) ? from + 9 : from;
		if (registry && ns)
			uri = sifu_xasprintf("docker://%s/%s/%s", registry, ns, f);
		else if (registry)
			uri = sifu_xasprintf("docker://%s/%s", registry, f);
		else
			uri = sifu_xasprintf("docker://%s", f);
	} else {
		uri = sifu_xasprintf("%s:%s", agent, from);
	}
	if (!c->o->pull)
		return sifu_err_set(err, SIFU_E_USAGE, 0, "no pull options for %s", uri);
	/* base.sif lives only until it is extracted below: lz4, the cheapest
	 * compressor, not --compression (meant for the result) - gzip 6 here
	 * was a quarter of the apt example's build time, gzip 9 half of it
	 * (docs/benchmarks.md, "build"). */
	struct fetch_pull_opts po = *c->o->pull;
	int r = sq_parse_compression("lz4", &po.squash, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *sif = sifu_xasprintf("%s/base.sif", c->workdir);
	r = fetch_pull(uri, sif, &po, err);
	if (r < 0)
		return sifu_err_wrap(err, "Bootstrap: %s, From: %s", agent, from);
	r = check_fingerprints(c, sif, uri, err);
	if (r == 0)
		r = bld_unpack_local(sif, c->rootfd, err);
	unlink(sif);
	return r;
}

int bld_bootstrap(const struct bld_stage_ctx *c, struct sifu_err *err)
{
	const char *a = c->st->bootstrap;
	if (!strcmp(a, "busybox"))
		return bootstrap_busybox(c, err);
	if (!strcmp(a, "scratch"))
		return 0;
	if (!strcmp(a, "localimage")) {
		if (!c->st->from)
			return sifu_err_set(err, SIFU_E_USAGE, 0,
			                    "Bootstrap: localimage needs From:");
		int r = check_fingerprints(c, c->st->from, c->st->from, err);
		return r < 0 ? r : bld_unpack_local(c->st->from, c->rootfd, err);
	}
	if (!strcmp(a, "docker") || !strcmp(a, "oci") || !strcmp(a, "oci-archive") ||
	    !strcmp(a, "docker-archive"))
		return bootstrap_pull(c, a, err);
	if (!strcmp(a, "debootstrap"))
		return bld_debootstrap(c, err);
	sifu_err_set(err, SIFU_E_UNSUPPORTED, ENOSYS,
	             "Bootstrap: %s is not supported by sifu's builder (line %u)", a, c->st->line);
	sifu_err_hint(err, "use busybox, scratch, localimage, docker, oci, oci-archive, "
	                   "docker-archive or debootstrap");
	return -ENOSYS;
}
