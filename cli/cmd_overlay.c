/* SPDX-License-Identifier: BSD-3-Clause */
/* sifu overlay create: a persistent ext3 overlay, as an image file or as a
 * partition added to a SIF (Apptainer's `overlay create`, its checks and
 * messages). */
#include "cli.h"
#include "sif.h"
#include "sqfuse.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

int cmd_overlay(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);

#define MIN_MIB 64 /* Apptainer's least */

static int size_mib(const struct cli_args *a, uint64_t *mib, struct sifu_err *err)
{
	*mib = MIN_MIB;
	if (!a->set[O_OVERLAY_SIZE])
		return 0;
	const char *s = a->val[O_OVERLAY_SIZE];
	char *end;
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	if (!*s || *end || errno || *s == '-' || n > (UINT64_MAX >> 20)) {
		sifu_err_set(err, SIFU_E_USAGE, EINVAL, "--size: '%s' is not a number of MiB", s);
		return -EINVAL;
	}
	if (n < MIN_MIB)
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		                    "image size must be equal or greater than %d MiB", MIN_MIB);
	*mib = n;
	return 0;
}

/* May an overlay partition be added to the SIF in FD?  Apptainer's checks,
 * in its order, with its words.  *ARCH: the image's primary architecture
 * (Go name), for the new partition. */
static int check_sif(int fd, const char *path, const char **arch, struct sifu_err *err)
{
	_cleanup_sif_ struct sif_image *img = NULL;
	if (sif_open_fd(fd, &img, err) < 0)
		return sifu_err_wrap(err, "while opening image file %s", path);
	const struct sif_descr *prim = sif_primary(img);
	struct sif_partinfo pi;
	if (!prim)
		return sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT,
		                    "while getting root FS partition: no primary partition in %s",
		                    path);
	sif_descr_partition(prim, &pi);
	if (pi.fstype == SIF_FS_ENCRYPTED_SQUASH)
		return sifu_err_set(
		    err, SIFU_E_UNSUPPORTED, EINVAL,
		    "encrypted root FS partition in %s: could not add writable overlay", path);
	for (int64_t i = 0; i < img->h.dtotal; i++)
		if (img->d[i].used && img->d[i].datatype == SIF_DT_SIGNATURE)
			return sifu_err_set(
			    err, SIFU_E_USAGE, EPERM,
			    "SIF image %s is signed: could not add writable overlay", path);
	for (int64_t i = 0; i < img->h.dtotal; i++) {
		const struct sif_descr *d = &img->d[i];
		if (!d->used || d->datatype != SIF_DT_PARTITION)
			continue;
		sif_descr_partition(d, &pi);
		if (pi.parttype == SIF_PART_OVERLAY && pi.fstype == SIF_FS_EXT3)
			return sifu_err_set(
			    err, SIFU_E_USAGE, EEXIST,
			    "a writable overlay partition already exists in %s (ID: "
			    "%u), delete it first with \"sifu sif del %u %s\"",
			    path, d->id, d->id, path);
	}
	const char *go = sif_arch_goarch(img->h.arch);
	*arch = strcmp(go, "unknown") ? go : sif_host_goarch();
	return 0;
}

/* What IMAGE is now: 0 when it does not exist (a new image file), 1 when
 * it is a SIF that may take an overlay partition, or an error. */
static int check_target(const char *path, const char **arch, struct sifu_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
		return sifu_err_sys(err, "cannot open %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sifu_err_sys(err, "cannot stat %s", path);
	if (S_ISREG(st.st_mode) && sif_fd_is_sif(fd)) {
		int r = check_sif(fd, path, arch, err);
		if (r == 0 && access(path, W_OK) < 0)
			r = sifu_err_sys(err, "cannot write %s", path);
		return r < 0 ? r : 1;
	}
	if (S_ISREG(st.st_mode) && sqf_ext_probe(fd, 0))
		return sifu_err_set(err, SIFU_E_USAGE, EEXIST,
		                    "EXT3 overlay image %s already exists", path);
	sifu_err_set(err, SIFU_E_USAGE, EEXIST, "destination image must be SIF image");
	sifu_err_hint(err, "%s exists and is not a SIF: name a new file for an overlay image",
	              path);
	return -EEXIST;
}

/* FD's size, with its blocks allocated unless SPARSE (posix_fallocate
 * writes zeros where the file system cannot allocate). */
static int size_file(int fd, uint64_t bytes, bool sparse, struct sifu_err *err)
{
	if (sparse) {
		if (ftruncate(fd, (off_t)bytes) < 0)
			return sifu_err_sys(err, "while sizing the overlay image");
		return 0;
	}
	int e = posix_fallocate(fd, 0, (off_t)bytes);
	if (e)
		return sifu_err_set(err, SIFU_E_SYS, e, "while allocating the overlay image: %s",
		                    strerror(e));
	return 0;
}

static int add_partition(const char *path, int fd, const char *arch, struct sifu_err *err)
{
	struct sif_add_opts o;
	sif_add_opts_init(&o);
	o.datatype = SIF_DT_PARTITION;
	o.fstype = SIF_FS_EXT3;
	o.parttype = SIF_PART_OVERLAY;
	o.arch = arch;
	o.groupid = 1; /* as Apptainer's (sylabs/sif's default group) */
	o.write = cli_sif_write();
	uint32_t id;
	if (lseek(fd, 0, SEEK_SET) < 0)
		return sifu_err_sys(err, "overlay image");
	if (sif_add_object(path, fd, &o, &id, err) < 0)
		return sifu_err_wrap(err, "while adding ext3 overlay partition to %s", path);
	sifu_debug("overlay: partition %u added to %s", id, path);
	return 0;
}

/* The file system is made in a temporary file beside IMAGE: renamed to
 * IMAGE when done, or copied into the SIF (sif_add_object writes the data,
 * then the descriptor, then the header: an interrupted add leaves the old
 * image) and removed. */
static int create(const struct cli_args *a, const char *path, struct sifu_err *err)
{
	uint64_t mib;
	const char *arch = NULL;
	int r = size_mib(a, &mib, err);
	if (r < 0)
		return r;
	int sif = check_target(path, &arch, err);
	if (sif < 0)
		return sif;
	_cleanup_atomic_ struct sifu_atomic tmp = {.fd = -1, .dirfd = -1};
	if ((r = sifu_atomic_open(&tmp, AT_FDCWD, path, err)) < 0 ||
	    (r = size_file(tmp.fd, mib << 20, a->set[O_SPARSE], err)) < 0)
		return r;
	bool fake = a->set[O_FAKEROOT];
	struct sqf_ext_mkfs_options mo = {
	    .search_path = cli_env_get()->path,
	    .uid = fake ? 0 : (uint32_t)getuid(),
	    .gid = fake ? 0 : (uint32_t)getgid(),
	    .dirs = a->list[O_CREATE_DIR],
	    .ndirs = a->nlist[O_CREATE_DIR],
	};
	if ((r = sqf_ext_mkfs_overlay(tmp.fd, &mo, err)) < 0)
		return sifu_err_wrap(err, "while creating ext3 file system in %s", path);
	if (sif)
		return add_partition(path, tmp.fd, arch, err);
	return sifu_atomic_commit(&tmp, 0600, err); /* Apptainer's mode */
}

int cmd_overlay(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
{
	if (a->npos == 0 || strcmp(a->pos[0], "create")) {
		if (a->npos == 0)
			sifu_err_set(err, SIFU_E_USAGE, EINVAL,
			             "overlay needs a subcommand: create");
		else
			sifu_err_set(err, SIFU_E_USAGE, EINVAL,
			             "overlay: unknown subcommand '%s' (the one there is: create)",
			             a->pos[0]);
		sifu_err_hint(err, "usage: %s", v->usage);
		return -EINVAL;
	}
	if (a->npos != 2) {
		sifu_err_set(err, SIFU_E_USAGE, EINVAL, "overlay create takes one image");
		sifu_err_hint(err, "usage: %s", v->usage);
		return -EINVAL;
	}
	/* SIGINT, SIGTERM and SIGHUP wait until the temporary file is renamed
	 * or removed, then take effect as usual: nothing is left beside IMAGE.
	 * mke2fs (started with an empty mask) still gets a terminal's Ctrl-C
	 * and stops, so an interrupted create ends at once, cleaned up. */
	sigset_t stop, old;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGHUP);
	sigprocmask(SIG_BLOCK, &stop, &old);
	int r = create(a, a->pos[1], err);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return r;
}
