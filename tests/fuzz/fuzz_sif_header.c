/* SPDX-License-Identifier: BSD-3-Clause */
/* Fuzz the SIF header and descriptor parser: the input is a whole image
 * file.  An accepted image must then survive everything the CLI does with
 * a descriptor (names, extra fields, formatting, reading each object), and
 * a signature object's content is run through the signed-metadata check. */
#include "sif.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sifu_err err = {0};
	struct sif_image *img = NULL;
	if (sif_open_mem(data, size, &img, &err) < 0)
		return 0;
	char buf[512];
	sif_fmt_time(img->h.ctime, buf, sizeof(buf));
	sif_fmt_size(img->h.datasize, buf, sizeof(buf));
	sif_fmt_uuid(img->h.id, buf);
	(void)sif_arch_goarch(img->h.arch);
	for (int64_t i = 0; i < img->h.dtotal; i++) {
		const struct sif_descr *d = &img->d[i];
		if (!d->used)
			continue;
		if (sif_get(img, d->id) != d)
			abort(); /* ids are unique once validated */
		struct sif_partinfo p;
		sif_descr_partition(d, &p);
		(void)sif_arch_goarch(p.arch);
		uint8_t fp[20];
		bool has;
		(void)sif_hash_name(sif_descr_signature(d, fp, &has));
		sif_descr_oci_digest(d, buf, sizeof(buf));
		sif_fmt_time(d->mtime, buf, sizeof(buf));
		char *obj = NULL;
		size_t len = 0;
		if (sif_read_object(img, d, 1 << 20, &obj, &len, &err) == 0) {
			if (len != (size_t)d->size)
				abort();
			free(obj);
		}
	}
	(void)sif_primary(img);
	sif_close(img);
	return 0;
}
