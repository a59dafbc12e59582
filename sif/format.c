/* SPDX-License-Identifier: BSD-3-Clause */
/* The pure half of sif/: packed structures, names as siftool prints them,
 * and the validation of a header and descriptor table against a file size.
 * Layout facts from the reference Go implementation (sylabs/sif v2,
 * pkg/sif/sif.go `header`, descriptor.go `rawDescriptor`, arch.go), which
 * encodes the structures with encoding/binary: little endian, no padding. */
#include "sif.h"

#include <endian.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <time.h>

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

/* The integer fields of the packed structures: where each lies in the
 * on-disk bytes, where in the decoded struct, and its width (4 or 8). */
struct int_field {
	unsigned disk, mem, width;
};
#define HDR_INT(name, field)                                          \
	{                                                             \
		SIF_HDR_##name, offsetof(struct sif_header, field), 8 \
	}
#define DESCR_INT(name, field, width)                                  \
	{                                                              \
		SIF_D_##name, offsetof(struct sif_descr, field), width \
	}

static const struct int_field header_ints[] = {
    HDR_INT(CTIME, ctime),     HDR_INT(MTIME, mtime),       HDR_INT(DFREE, dfree),
    HDR_INT(DTOTAL, dtotal),   HDR_INT(DOFF, doff),         HDR_INT(DSIZE, dsize),
    HDR_INT(DATAOFF, dataoff), HDR_INT(DATASIZE, datasize),
};
static const struct int_field descr_ints[] = {
    DESCR_INT(DATATYPE, datatype, 4), DESCR_INT(ID, id, 4),         DESCR_INT(GROUP, groupid, 4),
    DESCR_INT(LINK, link, 4),         DESCR_INT(OFFSET, offset, 8), DESCR_INT(SIZE, size, 8),
    DESCR_INT(PADDED, padded, 8),     DESCR_INT(CTIME, ctime, 8),   DESCR_INT(MTIME, mtime, 8),
    DESCR_INT(UID, uid, 8),           DESCR_INT(GID, gid, 8),
};

static void ints_decode(const uint8_t *buf, void *s, const struct int_field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t *m = (uint8_t *)s + f[i].mem;
		if (f[i].width == 8) {
			uint64_t v = get64(buf + f[i].disk);
			memcpy(m, &v, 8);
		} else {
			uint32_t v = get32(buf + f[i].disk);
			memcpy(m, &v, 4);
		}
	}
}

static void ints_encode(const void *s, uint8_t *buf, const struct int_field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const uint8_t *m = (const uint8_t *)s + f[i].mem;
		uint64_t v64;
		uint32_t v32;
		if (f[i].width == 8)
			memcpy(&v64, m, 8), put64(buf + f[i].disk, v64);
		else
			memcpy(&v32, m, 4), put32(buf + f[i].disk, v32);
	}
}

void sif_header_decode(const uint8_t buf[SIF_HDR_SIZE], struct sif_header *h)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->launch, buf + SIF_HDR_LAUNCH, SIF_LAUNCH_LEN);
	memcpy(h->magic, buf + SIF_HDR_MAGIC, 10);
	memcpy(h->version, buf + SIF_HDR_VERSION, 3);
	memcpy(h->arch, buf + SIF_HDR_ARCH, 3);
	memcpy(h->id, buf + SIF_HDR_ID, 16);
	ints_decode(buf, h, header_ints, ARRAY_SIZE(header_ints));
}

void sif_header_encode(const struct sif_header *h, uint8_t buf[SIF_HDR_SIZE])
{
	memset(buf, 0, SIF_HDR_SIZE);
	memcpy(buf + SIF_HDR_LAUNCH, h->launch, strnlen(h->launch, SIF_LAUNCH_LEN));
	memcpy(buf + SIF_HDR_MAGIC, h->magic, 10);
	memcpy(buf + SIF_HDR_VERSION, h->version, strnlen(h->version, 3));
	memcpy(buf + SIF_HDR_ARCH, h->arch, strnlen(h->arch, 3));
	memcpy(buf + SIF_HDR_ID, h->id, 16);
	ints_encode(h, buf, header_ints, ARRAY_SIZE(header_ints));
}

void sif_descr_decode(const uint8_t buf[SIF_DESCR_SIZE], struct sif_descr *d)
{
	memset(d, 0, sizeof(*d));
	ints_decode(buf, d, descr_ints, ARRAY_SIZE(descr_ints));
	d->used = buf[SIF_D_USED];
	memcpy(d->name, buf + SIF_D_NAME, SIF_NAME_LEN);
	memcpy(d->extra, buf + SIF_D_EXTRA, SIF_EXTRA_LEN);
}

void sif_descr_encode(const struct sif_descr *d, uint8_t buf[SIF_DESCR_SIZE])
{
	memset(buf, 0, SIF_DESCR_SIZE);
	ints_encode(d, buf, descr_ints, ARRAY_SIZE(descr_ints));
	buf[SIF_D_USED] = d->used;
	memcpy(buf + SIF_D_NAME, d->name, strnlen(d->name, SIF_NAME_LEN));
	memcpy(buf + SIF_D_EXTRA, d->extra, SIF_EXTRA_LEN);
}

/* ------------------------------------------------------------ extra fields */

void sif_descr_partition(const struct sif_descr *d, struct sif_partinfo *p)
{
	p->fstype = (int32_t)get32(d->extra);
	p->parttype = (int32_t)get32(d->extra + 4);
	memcpy(p->arch, d->extra + 8, 3);
	p->arch[3] = '\0';
}

int32_t sif_descr_signature(const struct sif_descr *d, uint8_t fp[20], bool *has_fp)
{
	static const uint8_t zero[20];
	memcpy(fp, d->extra + 4, 20);
	*has_fp = memcmp(fp, zero, 20) != 0;
	return (int32_t)get32(d->extra);
}

void sif_descr_crypto(const struct sif_descr *d, int32_t *format, int32_t *message)
{
	*format = (int32_t)get32(d->extra);
	*message = (int32_t)get32(d->extra + 4);
}

int32_t sif_descr_sbom(const struct sif_descr *d)
{
	return (int32_t)get32(d->extra);
}

void sif_descr_oci_digest(const struct sif_descr *d, char *buf, size_t len)
{
	size_t n = strnlen((const char *)d->extra, SIF_EXTRA_LEN);
	snprintf(buf, len, "%.*s", (int)n, (const char *)d->extra);
}

/* ------------------------------------------------------------------ names */

/* A value and its name, for the name tables below. */
struct named {
	int32_t v;
	const char *name;
};

static const char *name_in(const struct named *t, size_t n, int32_t v, const char *unknown)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].v == v)
			return t[i].name;
	return unknown;
}

static const struct named datatype_names[] = {
    {SIF_DT_DEFFILE, "Def.FILE"},    {SIF_DT_ENVVAR, "Env.Vars"},
    {SIF_DT_LABELS, "JSON.Labels"},  {SIF_DT_PARTITION, "FS"},
    {SIF_DT_SIGNATURE, "Signature"}, {SIF_DT_GENERIC_JSON, "JSON.Generic"},
    {SIF_DT_GENERIC, "Generic/Raw"}, {SIF_DT_CRYPTO_MESSAGE, "Cryptographic Message"},
    {SIF_DT_SBOM, "SBOM"},           {SIF_DT_OCI_ROOT_INDEX, "OCI.RootIndex"},
    {SIF_DT_OCI_BLOB, "OCI.Blob"},
};
static const struct named fstype_names[] = {
    {SIF_FS_SQUASH, "Squashfs"},
    {SIF_FS_EXT3, "Ext3"},
    {SIF_FS_IMMOBJECTS, "Archive"},
    {SIF_FS_RAW, "Raw"},
    {SIF_FS_ENCRYPTED_SQUASH, "Encrypted squashfs"},
};
static const struct named parttype_names[] = {
    {SIF_PART_SYSTEM, "System"},
    {SIF_PART_PRIMSYS, "*System"},
    {SIF_PART_DATA, "Data"},
    {SIF_PART_OVERLAY, "Overlay"},
};
/* Go's crypto.Hash names */
static const struct named hash_names[] = {
    {SIF_HASH_SHA256, "SHA-256"},      {SIF_HASH_SHA384, "SHA-384"},
    {SIF_HASH_SHA512, "SHA-512"},      {SIF_HASH_BLAKE2S, "BLAKE2s-256"},
    {SIF_HASH_BLAKE2B, "BLAKE2b-256"},
};
static const struct named format_names[] = {{1, "OpenPGP"}, {2, "PEM"}};
static const struct named message_names[] = {{0x100, "Clear Signature"}, {0x200, "RSA-OAEP"}};

/* The public lookups, each a table and what an unknown value is called. */
#define NAME_LOOKUP(fn, table, unknown)                               \
	const char *fn(int32_t t)                                     \
	{                                                             \
		return name_in(table, ARRAY_SIZE(table), t, unknown); \
	}
NAME_LOOKUP(sif_datatype_name, datatype_names, "Unknown")
NAME_LOOKUP(sif_fstype_name, fstype_names, "Unknown")
NAME_LOOKUP(sif_parttype_name, parttype_names, "Unknown")
NAME_LOOKUP(sif_hash_name, hash_names, "unknown")
NAME_LOOKUP(sif_format_name, format_names, "Unknown")
NAME_LOOKUP(sif_message_name, message_names, "Unknown")

static const char *const sbom_names[] = {
    NULL,       "cyclonedx-json", "cyclonedx-xml", "github-json", "spdx-json",
    "spdx-rdf", "spdx-tag-value", "spdx-yaml",     "syft-json",
};

const char *sif_sbom_name(int32_t t)
{
	if (t > 0 && (size_t)t < ARRAY_SIZE(sbom_names))
		return sbom_names[t];
	return "unknown";
}

int32_t sif_sbom_parse(const char *name)
{
	if (!strcmp(name, "github")) /* siftool's alias */
		return 3;
	for (size_t i = 1; i < ARRAY_SIZE(sbom_names); i++)
		if (!strcmp(name, sbom_names[i]))
			return (int32_t)i;
	return 0;
}

static const char *const arch_names[] = {
    NULL,   "386",    "amd64",  "arm",      "arm64", "ppc64",   "ppc64le",
    "mips", "mipsle", "mips64", "mips64le", "s390x", "riscv64",
};

const char *sif_arch_goarch(const char *code)
{
	for (size_t i = 1; i < ARRAY_SIZE(arch_names); i++) {
		char c[4];
		snprintf(c, sizeof(c), "%02zu", i);
		if (!strncmp(code, c, 3))
			return arch_names[i];
	}
	return "unknown";
}

const char *sif_arch_code(const char *goarch)
{
	static const char *const codes[] = {NULL, "01", "02", "03", "04", "05", "06",
	                                    "07", "08", "09", "10", "11", "12"};
	for (size_t i = 1; i < ARRAY_SIZE(arch_names); i++)
		if (!strcmp(goarch, arch_names[i]))
			return codes[i];
	return NULL;
}

const char *sif_host_goarch(void)
{
#if defined(__x86_64__)
	return "amd64";
#elif defined(__i386__)
	return "386";
#elif defined(__aarch64__)
	return "arm64";
#elif defined(__arm__)
	return "arm";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return "ppc64le";
#elif defined(__powerpc64__)
	return "ppc64";
#elif defined(__s390x__)
	return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
	return "riscv64";
#else
	return "unknown";
#endif
}

void sif_fmt_size(int64_t size, char *buf, size_t len)
{
	/* siftool's readableSize: binary units, rounded half away from zero */
	if (-1024 < size && size < 1024) {
		snprintf(buf, len, "%" PRId64 " B", size);
		return;
	}
	static const char units[] = "KMGTPE";
	uint64_t div = 1024;
	int exp = 0;
	for (int64_t n = size / 1024; n <= -1024 || n >= 1024; n /= 1024) {
		div *= 1024;
		exp++;
	}
	snprintf(buf, len, "%.0f %ciB", round((double)size / (double)div), units[exp]);
}

void sif_fmt_time(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;
	if (!gmtime_r(&tt, &tm)) {
		snprintf(buf, len, "@%" PRId64, t);
		return;
	}
	snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d +0000 UTC", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void sif_fmt_uuid(const uint8_t id[16], char buf[37])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			buf[o++] = '-';
		buf[o++] = hex[id[i] >> 4];
		buf[o++] = hex[id[i] & 15];
	}
	buf[o] = '\0';
}

bool sif_uuid_is_nil(const uint8_t id[16])
{
	for (int i = 0; i < 16; i++)
		if (id[i])
			return false;
	return true;
}

int sif_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int sif_uuid_parse(const char *s, uint8_t id[16])
{
	if (strlen(s) != 36)
		return -EINVAL;
	int n = 0;
	for (int i = 0; i < 36;) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i++] != '-')
				return -EINVAL;
			continue;
		}
		int a = sif_hexval(s[i]), b = sif_hexval(s[i + 1]);
		if (a < 0 || b < 0)
			return -EINVAL;
		id[n++] = (uint8_t)(a << 4 | b);
		i += 2;
	}
	return 0;
}

/* ------------------------------------------------------------- validation */

static int corrupt(struct sifu_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int corrupt(struct sifu_err *err, const char *fmt, ...)
{
	char msg[SIFU_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sifu_err_set(err, SIFU_E_CORRUPT, EINVAL, "%s", msg);
	return -EINVAL;
}

int sif_check_header(const struct sif_header *h, uint64_t file_size, struct sifu_err *err)
{
	static const uint8_t magic[10] = "SIF_MAGIC";
	if (memcmp(h->magic, magic, 10)) {
		sifu_err_set(err, SIFU_E_UNSUPPORTED, EINVAL,
		             "not a SIF file: no SIF_MAGIC at offset %d", SIF_HDR_MAGIC);
		return -EINVAL;
	}
	if (memcmp(h->version, "01", 3)) {
		char v[16];
		snprintf(v, sizeof(v), "%.3s", h->version);
		for (char *p = v; *p; p++)
			if (*p < 0x20 || *p > 0x7e)
				*p = '?';
		sifu_err_set(err, SIFU_E_UNSUPPORTED, EINVAL,
		             "header field version (offset %d): SIF version '%s' is not supported "
		             "(this reads version 01)",
		             SIF_HDR_VERSION, v);
		return -EINVAL;
	}
	if (h->dtotal < 0 || h->dtotal > SIF_DESCR_MAX)
		return corrupt(err,
		               "header field DescriptorsTotal (offset %d): %" PRId64
		               " is out of range (0..%d)",
		               SIF_HDR_DTOTAL, h->dtotal, SIF_DESCR_MAX);
	if (h->dfree < 0 || h->dfree > h->dtotal)
		return corrupt(err,
		               "header field DescriptorsFree (offset %d): %" PRId64
		               " free of %" PRId64 " descriptors",
		               SIF_HDR_DFREE, h->dfree, h->dtotal);
	if (h->doff < SIF_HDR_SIZE)
		return corrupt(err,
		               "header field DescriptorsOffset (offset %d): %" PRId64
		               " overlaps the 128-byte global header",
		               SIF_HDR_DOFF, h->doff);
	int64_t need = h->dtotal * SIF_DESCR_SIZE;
	if (h->dsize < need)
		return corrupt(err,
		               "header field DescriptorsSize (offset %d): %" PRId64
		               " bytes cannot hold %" PRId64 " descriptors of %d bytes",
		               SIF_HDR_DSIZE, h->dsize, h->dtotal, SIF_DESCR_SIZE);
	if ((uint64_t)h->doff > file_size || (uint64_t)need > file_size - (uint64_t)h->doff) {
		sifu_err_set(err, SIFU_E_RANGE, ERANGE,
		             "header field DescriptorsOffset (offset %d): the descriptor table "
		             "(%" PRId64 " bytes at %" PRId64 ") runs past the end of the file "
		             "(%" PRIu64 " bytes; truncated?)",
		             SIF_HDR_DOFF, need, h->doff, file_size);
		return -ERANGE;
	}
	if (h->dsize > INT64_MAX - h->doff || h->dataoff < h->doff + h->dsize)
		return corrupt(err,
		               "header field DataOffset (offset %d): %" PRId64
		               " lies inside the descriptor table (%" PRId64 "-%" PRId64 ")",
		               SIF_HDR_DATAOFF, h->dataoff, h->doff,
		               h->dsize > INT64_MAX - h->doff ? INT64_MAX : h->doff + h->dsize);
	if ((uint64_t)h->dataoff > file_size) {
		sifu_err_set(err, SIFU_E_RANGE, ERANGE,
		             "header field DataOffset (offset %d): %" PRId64
		             " is past the end of the file (%" PRIu64 " bytes; truncated?)",
		             SIF_HDR_DATAOFF, h->dataoff, file_size);
		return -ERANGE;
	}
	if (h->datasize < 0 || (uint64_t)h->datasize > file_size - (uint64_t)h->dataoff) {
		sifu_err_set(err, SIFU_E_RANGE, ERANGE,
		             "header field DataSize (offset %d): %" PRId64
		             " bytes from offset %" PRId64 " run past the end of the file (%" PRIu64
		             " bytes; truncated?)",
		             SIF_HDR_DATASIZE, h->datasize, h->dataoff, file_size);
		return -ERANGE;
	}
	return 0;
}

struct span {
	int64_t start, end;
	uint32_t id;
	size_t idx;
};

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

static int64_t doffset(const struct sif_header *h, size_t i, int field)
{
	return h->doff + (int64_t)i * SIF_DESCR_SIZE + field;
}

static int check_one(const struct sif_header *h, const struct sif_descr *d, size_t i,
                     uint64_t file_size, struct sifu_err *err)
{
	if (d->id == 0)
		return corrupt(err,
		               "descriptor %zu field ID (offset %" PRId64 "): object id 0 is "
		               "reserved",
		               i, doffset(h, i, SIF_D_ID));
	if ((d->groupid & SIF_GROUP_MASK) != SIF_GROUP_MASK)
		return corrupt(err,
		               "object %u field GroupID (offset %" PRId64 "): 0x%08x lacks the "
		               "group mask 0xf0000000",
		               d->id, doffset(h, i, SIF_D_GROUP), d->groupid);
	if (d->link == SIF_GROUP_MASK)
		return corrupt(err,
		               "object %u field LinkedID (offset %" PRId64 "): link to group 0",
		               d->id, doffset(h, i, SIF_D_LINK));
	if (d->offset < h->dataoff || (uint64_t)d->offset > file_size) {
		sifu_err_set(err, SIFU_E_RANGE, ERANGE,
		             "object %u field Offset (offset %" PRId64 "): %" PRId64
		             " is outside the "
		             "data section (%" PRId64 "-%" PRIu64 ")",
		             d->id, doffset(h, i, SIF_D_OFFSET), d->offset, h->dataoff, file_size);
		return -ERANGE;
	}
	if (d->size < 0 || (uint64_t)d->size > file_size - (uint64_t)d->offset) {
		sifu_err_set(err, SIFU_E_RANGE, ERANGE,
		             "object %u field Size (offset %" PRId64 "): %" PRId64
		             " bytes at %" PRId64 " run past the end of the file (%" PRIu64
		             " bytes; truncated?)",
		             d->id, doffset(h, i, SIF_D_SIZE), d->size, d->offset, file_size);
		return -ERANGE;
	}
	if (d->padded < d->size || d->padded - d->size > d->offset)
		return corrupt(err,
		               "object %u field SizeWithPadding (offset %" PRId64 "): %" PRId64
		               " does not fit size %" PRId64 " at offset %" PRId64,
		               d->id, doffset(h, i, SIF_D_PADDED), d->padded, d->size, d->offset);
	return 0;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static bool has_u32(const uint32_t *v, size_t n, uint32_t key)
{
	return bsearch(&key, v, n, sizeof(*v), u32_cmp) != NULL;
}

/* What sif_check_descriptors gathers in one pass over the table: sorted
 * ids and group ids make the duplicate and link checks n log n, so a huge
 * descriptor table cannot make opening an image quadratic. */
struct table {
	struct span *spans; /* the bytes of each non-empty object */
	uint32_t *ids, *groups;
	size_t nspans, nids; /* nids: the used descriptors */
};

static void table_free(struct table *t)
{
	SIFU_FREE_MANY(t->spans, t->ids, t->groups);
}

/* Check each used descriptor on its own, and gather them into T. */
static int gather(const struct sif_header *h, const struct sif_descr *d, uint64_t file_size,
                  struct table *t, struct sifu_err *err)
{
	int64_t primaries = 0;
	for (size_t i = 0; i < (size_t)h->dtotal; i++) {
		if (!d[i].used)
			continue;
		int r = check_one(h, &d[i], i, file_size, err);
		if (r < 0)
			return r;
		t->ids[t->nids] = d[i].id;
		t->groups[t->nids++] = d[i].groupid;
		if (d[i].datatype == SIF_DT_PARTITION) {
			struct sif_partinfo p;
			sif_descr_partition(&d[i], &p);
			if (p.parttype == SIF_PART_PRIMSYS && ++primaries > 1)
				return corrupt(err,
				               "object %u field Extra (offset %" PRId64
				               "): a second "
				               "primary system partition",
				               d[i].id, doffset(h, i, SIF_D_EXTRA + 4));
		}
		if (d[i].size > 0)
			t->spans[t->nspans++] =
			    (struct span){d[i].offset, d[i].offset + d[i].size, d[i].id, i};
	}
	return 0;
}

/* No object id twice (T's ids sorted). */
static int check_unique_ids(const struct sif_header *h, const struct sif_descr *d,
                            const struct table *t, struct sifu_err *err)
{
	for (size_t k = 1; k < t->nids; k++) {
		if (t->ids[k] != t->ids[k - 1])
			continue;
		/* name the second descriptor (in table order) that uses the id */
		size_t first = SIZE_MAX;
		for (size_t i = 0; i < (size_t)h->dtotal; i++) {
			if (!d[i].used || d[i].id != t->ids[k])
				continue;
			if (first == SIZE_MAX) {
				first = i;
				continue;
			}
			return corrupt(err,
			               "descriptor %zu field ID (offset %" PRId64 "): object id %u "
			               "is used twice",
			               i, doffset(h, i, SIF_D_ID), d[i].id);
		}
	}
	return 0;
}

/* No two objects share a byte (T's spans sorted). */
static int check_overlaps(const struct sif_header *h, const struct table *t, struct sifu_err *err)
{
	const struct span *sp = t->spans;
	for (size_t k = 1; k < t->nspans; k++)
		if (sp[k].start < sp[k - 1].end)
			return corrupt(err,
			               "object %u field Offset (offset %" PRId64 "): bytes %" PRId64
			               "-%" PRId64 " overlap object %u (%" PRId64 "-%" PRId64 ")",
			               sp[k].id, doffset(h, sp[k].idx, SIF_D_OFFSET), sp[k].start,
			               sp[k].end, sp[k - 1].id, sp[k - 1].start, sp[k - 1].end);
	return 0;
}

/* Every link names another object, or a group that exists. */
static int check_links(const struct sif_header *h, const struct sif_descr *d, const struct table *t,
                       struct sifu_err *err)
{
	for (size_t i = 0; i < (size_t)h->dtotal; i++) {
		if (!d[i].used || !d[i].link)
			continue;
		uint32_t l = d[i].link;
		bool ok = (l & SIF_GROUP_MASK) == SIF_GROUP_MASK
		              ? has_u32(t->groups, t->nids, l)
		              : (l != d[i].id && has_u32(t->ids, t->nids, l));
		if (!ok)
			return corrupt(
			    err,
			    "object %u field LinkedID (offset %" PRId64 "): links to %s %u, "
			    "which %s",
			    d[i].id, doffset(h, i, SIF_D_LINK),
			    (l & SIF_GROUP_MASK) == SIF_GROUP_MASK ? "group" : "object",
			    l & ~SIF_GROUP_MASK, l == d[i].id ? "is itself" : "does not exist");
	}
	return 0;
}

int sif_check_descriptors(const struct sif_header *h, const struct sif_descr *d, uint64_t file_size,
                          struct sifu_err *err)
{
	size_t cap = (size_t)h->dtotal + 1;
	_cleanup_(table_free) struct table t = {.spans = sifu_xcalloc(cap, sizeof(*t.spans)),
	                                        .ids = sifu_xcalloc(cap, sizeof(*t.ids)),
	                                        .groups = sifu_xcalloc(cap, sizeof(*t.groups))};
	int r = gather(h, d, file_size, &t, err);
	if (r < 0)
		return r;
	int64_t used = (int64_t)t.nids;
	if (h->dfree != h->dtotal - used)
		return corrupt(err,
		               "header field DescriptorsFree (offset %d): says %" PRId64
		               " free, but %" PRId64 " of %" PRId64 " descriptors are unused",
		               SIF_HDR_DFREE, h->dfree, h->dtotal - used, h->dtotal);
	qsort(t.ids, t.nids, sizeof(*t.ids), u32_cmp);
	qsort(t.groups, t.nids, sizeof(*t.groups), u32_cmp);
	qsort(t.spans, t.nspans, sizeof(*t.spans), span_cmp);
	if ((r = check_unique_ids(h, d, &t, err)) < 0 || (r = check_overlaps(h, &t, err)) < 0)
		return r;
	return check_links(h, d, &t, err);
}
