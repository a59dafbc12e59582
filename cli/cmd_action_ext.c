/* SPDX-License-Identifier: BSD-3-Clause */
/* The parts of the actions that need the registry and signature code
 * (libcurl, GPGME, …): linked into sifu-all only, so the launcher binary
 * that runs every `sifu exec` does not load those libraries at start-up.
 * cmd_action.c reaches them through weak references and hands the command
 * to sifu-all when they are absent (cli_delegate_full). */
#include "cli_priv.h"
#include "fetch.h"
#include "sif.h"

#include <fcntl.h>
#include <sys/stat.h>

int cmd_action_pull(struct cli_args *a, const char *uri, char **path, struct sifu_err *err)
{
	struct fetch_pull_opts o;
	_cleanup_free_ char *user = NULL, *pass = NULL;
	if (cli_pull_opts(a, &o, &user, &pass, err) < 0)
		return -EINVAL;
	_cleanup_free_ char *cached = NULL;
	int fd;
	if (fetch_pull_cached_fd(uri, &o, &cached, &fd, err) < 0) {
		sifu_err_wrap(err, "getting %s", uri);
		return -EIO;
	}
	/* run the file that was checked against its record, not whatever the
	 * path names by the time the launcher opens it; the fd stays open for
	 * the life of this process (close-on-exec, so not in the payload) */
	sifu_debug("image %s (checked), opened as fd %d", cached, fd);
	*path = sifu_xasprintf("/proc/self/fd/%d", fd);
	return 0;
}

/* Blocks the FUSE server checks one at a time: 32 bytes of digest per
 * 64 KiB (0.5 MiB per GiB of image), and a read of part of a block costs
 * at most 64 KiB of hashing. */
#define VERIFY_BLOCK (64u << 10)

static int open_image(const char *image, struct sifu_err *err)
{
	/* O_NONBLOCK: a FIFO named as the image must not hang the open */
	_cleanup_close_ int fd = open(image, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return sifu_err_sys(err, "--verify: %s", image);
	if ((!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) || !sif_fd_is_sif(fd)) {
		sifu_err_set(err, SIFU_E_UNSUPPORTED, EINVAL,
		             "--verify: %s is not a SIF file, and only SIF images carry signatures",
		             image);
		sifu_err_hint(err, "run without --verify, or build and sign a SIF");
		return -EINVAL;
	}
	if (fcntl(fd, F_SETFL, 0) < 0)
		return sifu_err_sys(err, "--verify: %s", image);
	return TAKE_FD(fd);
}

/* --verify[=KEY]: refuse an image whose signatures do not verify, against a
 * PEM public key (DSSE) or, without KEY, the OpenPGP keyring.
 *
 * Why one open file and block digests: verifying a path and then opening
 * it again to serve it runs whatever the path names by then (a rename in
 * between), and the FUSE server reads lazily for as long as the container
 * runs, so a write into the partition after verification would be served
 * too.  So the image is opened once, verified from that fd, and the same
 * fd is served; the verification pass records a SHA-256 of every 64 KiB of
 * the partition, and the server checks each block it reads against them
 * (fuse/backend.c): a changed block is an I/O error in the container, never
 * unsigned bytes.  Refusing images that others could write instead would
 * not help: the caller's own processes can always write the caller's files.
 * The SHA-256 comes from libcrypto here, in sifu-all, where the signature
 * code already is: the launcher binary that runs a plain `exec` still
 * loads no libcrypto (it hands --verify to sifu-all). */
int cmd_action_verify(struct cmd_action *x, const char *key, struct sifu_err *err)
{
	const char *image = x->cfg.image;
	_cleanup_close_ int fd = open_image(image, err);
	if (fd < 0)
		return fd;
	struct sif_pemkey *k = NULL;
	if (key && *key && sif_pemkey_load(key, false, &k, err) < 0)
		return -EINVAL;
	struct sif_verify_opts o = {.keys = &k, .nkeys = k ? 1 : 0, .keyring = cli_keyring()};
	struct sif_served_part part = {.block = VERIFY_BLOCK};
	int r = sif_verify_fd(fd, image, &o, NULL, &part, err);
	sif_pemkey_free(k);
	sif_pgp_cleanup(o.keyring);
	if (r < 0) {
		sifu_err_wrap(err, "--verify: refusing to run %s", image);
		/* a command that itself works: 'sifu verify IMAGE' fails the
		 * same way when the signature needs a key the keyring lacks */
		if (err->hint[0])
			;
		else if (key && *key)
			sifu_err_hint(err, "check it with 'sifu verify --key %s %s'", key, image);
		else
			sifu_err_hint(err,
			              "give the signer's public key, --verify=PUBLIC.pem, or check "
			              "the image with 'sifu verify --key PUBLIC.pem %s'",
			              image);
		return r;
	}
	x->opened = (struct ns_image_fd){
	    .fd = TAKE_FD(fd), .offset = part.offset, .size = part.size, .fstype = part.fstype};
	x->digests = part.sha256;
	x->verity = (struct sqf_verity){.block_size = part.block,
	                                .nblocks = part.nblocks,
	                                .sha256 = (const uint8_t(*)[32])part.sha256,
	                                .hash = sif_sha256};
	x->cfg.opened = &x->opened;
	x->cfg.sqf.verity = &x->verity;
	/* the block cache's copies were never checked against the digests */
	if (x->cfg.sqf.block_cache_dir >= 0)
		close(x->cfg.sqf.block_cache_dir);
	x->cfg.sqf.block_cache_dir = -1;
	return 0;
}
