/* SPDX-License-Identifier: BSD-3-Clause */
/* Fuzz target: a whole SIF image through sign/verify's parsers — signature
 * kind detection, DSSE envelopes (JSON, base64), the signed metadata JSON,
 * digests and coverage — with the reference Ed25519 key.  An input holding
 * OpenPGP text goes to gpg with an empty keyring of its own (SIFU_KEYSDIR
 * in a temporary directory), never the user's. */
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sif.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* tests/fixtures/sif/ed25519-public.pem (sylabs/sif test key, BSD-3-Clause) */
static const char ed25519_pub[] = "-----BEGIN PUBLIC KEY-----\n"
                                  "MCowBQYDK2VwAyEA4LypVa0tjUB5eUQeeGjllrBG7gWCIOSymuMc6fg8GB4=\n"
                                  "-----END PUBLIC KEY-----\n";

static char keysdir[] = "/tmp/sifu-fuzz-keys-XXXXXX";

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st, (void)type, (void)ftw;
	remove(path);
	return 0;
}

static void rm_keysdir(void)
{
	nftw(keysdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static struct sif_pemkey *key(void)
{
	static struct sif_pemkey *k;
	if (k)
		return k;
	if (!mkdtemp(keysdir))
		abort();
	atexit(rm_keysdir);
	setenv("SIFU_KEYSDIR", keysdir, 1);
	int fd = memfd_create("key", MFD_CLOEXEC);
	if (fd < 0 || write(fd, ed25519_pub, sizeof(ed25519_pub) - 1) < 0)
		abort();
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	struct sifu_err err = {0};
	if (sif_pemkey_load(path, false, &k, &err) < 0)
		abort();
	close(fd);
	return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sif_pemkey *k = key();
	bool legacy;
	(void)sif_dsse_is_envelope(data, size);
	(void)sif_pgp_is_clearsigned(data, size, &legacy);
	char *payload = NULL, *signers = NULL;
	size_t plen;
	struct sifu_err err = {0};
	if (sif_dsse_verify(data, size, &k, 1, &payload, &plen, &signers, &err) == 0)
		free(payload);
	free(signers);

	int fd = memfd_create("img", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		struct sif_verify_opts o = {.keys = &k, .nkeys = 1};
		struct sif_verify_report rep;
		(void)sif_verify_image(path, &o, &rep, &err);
		sif_verify_report_free(&rep);
	}
	close(fd);
	return 0;
}
