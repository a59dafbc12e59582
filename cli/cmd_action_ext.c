/* SPDX-License-Identifier: BSD-3-Clause */
/* The parts of the actions that need the registry and signature code
 * (libcurl, GPGME, …): linked into sifu-all only, so the launcher binary
 * that runs every `sifu exec` does not load those libraries at start-up.
 * cmd_action.c reaches them through weak references and hands the command
 * to sifu-all when they are absent (cli_delegate_full). */
#include "cmd_action.h"
#include "fetch.h"
#include "sif.h"

#include <fcntl.h>

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

/* --verify[=KEY]: refuse an image whose signatures do not verify, against a
 * PEM public key (DSSE) or, without KEY, the OpenPGP keyring. */
int cmd_action_verify(const char *image, const char *key, struct sifu_err *err)
{
	_cleanup_close_ int fd = open(image, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sifu_err_sys(err, "--verify: %s", image);
	if (!sif_fd_is_sif(fd)) {
		sifu_err_set(err, SIFU_E_UNSUPPORTED, EINVAL,
		             "--verify: %s is not a SIF file, and only SIF images carry signatures",
		             image);
		sifu_err_hint(err, "run without --verify, or build and sign a SIF");
		return -EINVAL;
	}
	struct sif_pemkey *k = NULL;
	if (key && *key && sif_pemkey_load(key, false, &k, err) < 0)
		return -EINVAL;
	struct sif_verify_opts o = {.keys = &k, .nkeys = k ? 1 : 0};
	int r = sif_verify_image(image, &o, NULL, err);
	sif_pemkey_free(k);
	sif_pgp_cleanup();
	if (r < 0) {
		sifu_err_wrap(err, "--verify: refusing to run %s", image);
		if (!err->hint[0])
			sifu_err_hint(err, "check it with 'sifu verify %s'", image);
	}
	return r;
}
