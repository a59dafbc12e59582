/* SPDX-License-Identifier: BSD-3-Clause */
/* Fuzz a layer stream end to end: compression sniffing, gzip/zstd, the tar
 * reader, whiteouts and the in-memory tree, and the SquashFS writer, with the
 * image written to a memory file. */
#include "fetch.h"

#include <sys/mman.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (4 << 20))
		return 0;
	int in = memfd_create("layer", MFD_CLOEXEC);
	int out = memfd_create("image", MFD_CLOEXEC);
	if (in < 0 || out < 0)
		abort();
	for (size_t off = 0; off < size;) {
		ssize_t n = write(in, data + off, size - off);
		if (n <= 0)
			abort();
		off += (size_t)n;
	}
	lseek(in, 0, SEEK_SET);
	struct sq_opts o = {.workers = 1};
	struct sq_image *img;
	struct sifu_err err = {0};
	if (sq_image_create(out, 0, &o, &img, &err) == 0) {
		sq_image_next_layer(img);
		if (fetch_layer_apply(in, NULL, NULL, img, NULL, NULL, NULL, &err) == 0) {
			uint64_t sz;
			sq_image_finish(img, &sz, &err);
		}
		sq_image_free(img);
	}
	close(in);
	close(out);
	return 0;
}
