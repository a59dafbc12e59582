/* SPDX-License-Identifier: BSD-3-Clause */
/* `sifu sif`: siftool's commands with siftool's arguments and output layout
 * (sylabs/sif internal/app/siftool/info.go), so either tool can be used in a
 * script; --json gives the same facts for programs. */
#include "cli.h"
#include "sif.h"

#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>

/* the verb table (verbs.c) refers to this weakly */
int cmd_sif(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err);

const struct sif_write_opts *cli_sif_write(void)
{
	static struct sif_write_opts wo;
	wo = (struct sif_write_opts){.source_date_epoch = cli_env_get()->source_date_epoch};
	return &wo;
}

/* ---------------------------------------------------- siftool's output */

struct row {
	char label[64];
	char value[512];
};

struct rows {
	struct row r[32];
	size_t n;
};

static void add_row(struct rows *t, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add_row(struct rows *t, const char *label, const char *fmt, ...)
{
	if (t->n >= ARRAY_SIZE(t->r))
		return;
	struct row *r = &t->r[t->n++];
	snprintf(r->label, sizeof(r->label), "%s", label);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->value, sizeof(r->value), fmt, ap);
	va_end(ap);
}

/* What Go's text/tabwriter does with "INDENT?label\tvalue" lines: the label
 * column is as wide as its widest cell plus PAD. */
static void print_rows(FILE *f, const struct rows *t, const char *indent, int pad)
{
	size_t w = 0;
	for (size_t i = 0; i < t->n; i++)
		if (strlen(t->r[i].label) > w)
			w = strlen(t->r[i].label);
	for (size_t i = 0; i < t->n; i++)
		fprintf(f, "%s%-*s%s\n", indent, (int)(w + (size_t)pad), t->r[i].label,
		        t->r[i].value);
}

static void fmt_group(uint32_t raw, char *buf, size_t len)
{
	uint32_t g = raw & ~SIF_GROUP_MASK;
	if (g)
		snprintf(buf, len, "%u", g);
	else
		snprintf(buf, len, "NONE");
}

/* A JSON string from bytes of the file: invalid UTF-8 becomes '?'. */
static json_t *jstr(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);
	if (j)
		return j;
	_cleanup_free_ char *c = sifu_xmalloc(n + 1);
	for (size_t i = 0; i < n; i++)
		c[i] = (s[i] > 0 && s[i] < 0x7f) ? s[i] : '?';
	return json_stringn(c, n);
}

static bool is_time_set(int64_t t)
{
	return t != SIF_TIME_ZERO;
}

static int cmd_header(const struct sif_image *img, bool json)
{
	const struct sif_header *h = &img->h;
	char launch[SIF_LAUNCH_LEN + 1], id[37], buf[64];
	snprintf(launch, sizeof(launch), "%s", h->launch);
	size_t ll = strlen(launch);
	if (ll && launch[ll - 1] == '\n')
		launch[--ll] = '\0';
	sif_fmt_uuid(h->id, id);
	const char *arch = sif_arch_goarch(h->arch);
	if (json) {
		json_t *o = json_object();
		json_object_set_new(o, "launch_script", jstr(launch, ll));
		json_object_set_new(o, "version", jstr(h->version, strlen(h->version)));
		json_object_set_new(o, "primary_arch", json_string(arch));
		json_object_set_new(o, "id",
		                    sif_uuid_is_nil(h->id) ? json_null() : json_string(id));
		json_object_set_new(o, "created_at",
		                    is_time_set(h->ctime) ? json_integer(h->ctime) : json_null());
		json_object_set_new(o, "modified_at",
		                    is_time_set(h->mtime) ? json_integer(h->mtime) : json_null());
		json_object_set_new(o, "descriptors_free", json_integer(h->dfree));
		json_object_set_new(o, "descriptors_total", json_integer(h->dtotal));
		json_object_set_new(o, "descriptors_offset", json_integer(h->doff));
		json_object_set_new(o, "descriptors_size", json_integer(h->dsize));
		json_object_set_new(o, "data_offset", json_integer(h->dataoff));
		json_object_set_new(o, "data_size", json_integer(h->datasize));
		json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(o);
		return 0;
	}
	struct rows t = {0};
	if (ll)
		add_row(&t, "Launch Script:", "%s", launch);
	add_row(&t, "Version:", "%s", h->version);
	if (strcmp(arch, "unknown"))
		add_row(&t, "Primary Architecture:", "%s", arch);
	if (!sif_uuid_is_nil(h->id))
		add_row(&t, "ID:", "%s", id);
	if (is_time_set(h->ctime)) {
		sif_fmt_time(h->ctime, buf, sizeof(buf));
		add_row(&t, "Created At:", "%s", buf);
	}
	if (is_time_set(h->mtime)) {
		sif_fmt_time(h->mtime, buf, sizeof(buf));
		add_row(&t, "Modified At:", "%s", buf);
	}
	add_row(&t, "Descriptors Free:", "%" PRId64, h->dfree);
	add_row(&t, "Descriptors Total:", "%" PRId64, h->dtotal);
	add_row(&t, "Descriptors Offset:", "%" PRId64, h->doff);
	sif_fmt_size(h->dsize, buf, sizeof(buf));
	add_row(&t, "Descriptors Size:", "%s", buf);
	add_row(&t, "Data Offset:", "%" PRId64, h->dataoff);
	sif_fmt_size(h->datasize, buf, sizeof(buf));
	add_row(&t, "Data Size:", "%s", buf);
	print_rows(stdout, &t, "", 1);
	return 0;
}

/* The TYPE column of `list`. */
static void type_summary(const struct sif_descr *d, char *buf, size_t len)
{
	const char *dt = sif_datatype_name(d->datatype);
	switch (d->datatype) {
	case SIF_DT_PARTITION: {
		struct sif_partinfo p;
		sif_descr_partition(d, &p);
		snprintf(buf, len, "%s (%s/%s/%s)", dt, sif_fstype_name(p.fstype),
		         sif_parttype_name(p.parttype), sif_arch_goarch(p.arch));
		return;
	}
	case SIF_DT_SIGNATURE: {
		uint8_t fp[20];
		bool has;
		snprintf(buf, len, "%s (%s)", dt, sif_hash_name(sif_descr_signature(d, fp, &has)));
		return;
	}
	case SIF_DT_CRYPTO_MESSAGE: {
		int32_t f, m;
		sif_descr_crypto(d, &f, &m);
		snprintf(buf, len, "%s (%s/%s)", dt, sif_format_name(f), sif_message_name(m));
		return;
	}
	case SIF_DT_SBOM:
		snprintf(buf, len, "%s (%s)", dt, sif_sbom_name(sif_descr_sbom(d)));
		return;
	}
	snprintf(buf, len, "%s", dt);
}

static json_t *descr_json(const struct sif_descr *d)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_integer(d->id));
	uint32_t g = d->groupid & ~SIF_GROUP_MASK;
	json_object_set_new(o, "group_id", g ? json_integer(g) : json_null());
	uint32_t l = d->link & ~SIF_GROUP_MASK;
	json_object_set_new(o, "linked_id", d->link ? json_integer(l) : json_null());
	json_object_set_new(o, "linked_is_group",
	                    json_boolean(d->link && (d->link & SIF_GROUP_MASK) == SIF_GROUP_MASK));
	json_object_set_new(o, "offset", json_integer(d->offset));
	json_object_set_new(o, "size", json_integer(d->size));
	json_object_set_new(o, "data_type", json_string(sif_datatype_name(d->datatype)));
	json_object_set_new(o, "data_type_code", json_integer(d->datatype));
	json_object_set_new(o, "created_at",
	                    is_time_set(d->ctime) ? json_integer(d->ctime) : json_null());
	json_object_set_new(o, "modified_at",
	                    is_time_set(d->mtime) ? json_integer(d->mtime) : json_null());
	json_object_set_new(o, "name", jstr(d->name, strlen(d->name)));
	switch (d->datatype) {
	case SIF_DT_PARTITION: {
		struct sif_partinfo p;
		sif_descr_partition(d, &p);
		json_object_set_new(o, "fs_type", json_string(sif_fstype_name(p.fstype)));
		json_object_set_new(o, "partition_type",
		                    json_string(sif_parttype_name(p.parttype)));
		json_object_set_new(o, "primary", json_boolean(p.parttype == SIF_PART_PRIMSYS));
		json_object_set_new(o, "arch", json_string(sif_arch_goarch(p.arch)));
		break;
	}
	case SIF_DT_SIGNATURE: {
		uint8_t fp[20];
		bool has;
		int32_t ht = sif_descr_signature(d, fp, &has);
		json_object_set_new(o, "hash_type", json_string(sif_hash_name(ht)));
		if (has) {
			char hex[41];
			for (int i = 0; i < 20; i++)
				snprintf(hex + 2 * i, 3, "%02X", fp[i]);
			json_object_set_new(o, "entity", json_string(hex));
		}
		break;
	}
	case SIF_DT_CRYPTO_MESSAGE: {
		int32_t f, m;
		sif_descr_crypto(d, &f, &m);
		json_object_set_new(o, "format_type", json_string(sif_format_name(f)));
		json_object_set_new(o, "message_type", json_string(sif_message_name(m)));
		break;
	}
	case SIF_DT_SBOM:
		json_object_set_new(o, "format", json_string(sif_sbom_name(sif_descr_sbom(d))));
		break;
	case SIF_DT_OCI_BLOB:
	case SIF_DT_OCI_ROOT_INDEX: {
		char dig[400];
		sif_descr_oci_digest(d, dig, sizeof(dig));
		json_object_set_new(o, "digest", jstr(dig, strlen(dig)));
		break;
	}
	}
	return o;
}

static void dump_json(json_t *o)
{
	json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	putchar('\n');
	json_decref(o);
}

static int cmd_list(const struct sif_image *img, bool json)
{
	if (json) {
		json_t *a = json_array();
		for (int64_t i = 0; i < img->h.dtotal; i++)
			if (img->d[i].used)
				json_array_append_new(a, descr_json(&img->d[i]));
		json_t *o = json_object();
		json_object_set_new(o, "objects", a);
		dump_json(o);
		return 0;
	}
	static const char rule[] =
	    "------------------------------------------------------------------------------";
	printf("%s\n%-4s %-8s %-8s %-26s %s\n%s\n", rule, "ID", "|GROUP", "|LINK",
	       "|SIF POSITION (start-end)", "|TYPE", rule);
	for (int64_t i = 0; i < img->h.dtotal; i++) {
		const struct sif_descr *d = &img->d[i];
		if (!d->used)
			continue;
		char g[16], l[16], pos[64], type[256];
		printf("%-4u ", d->id);
		fmt_group(d->groupid, g, sizeof(g));
		printf("|%-7s ", g);
		uint32_t lid = d->link & ~SIF_GROUP_MASK;
		if (!lid)
			printf("|%-7s ", "NONE");
		else if ((d->link & SIF_GROUP_MASK) == SIF_GROUP_MASK)
			printf("|%-3u (G) ", lid);
		else
			printf("|%-7u ", lid);
		(void)l;
		snprintf(pos, sizeof(pos), "|%" PRId64 "-%" PRId64 " ", d->offset,
		         d->offset + d->size);
		printf("%-26s ", pos);
		type_summary(d, type, sizeof(type));
		printf("|%s\n", type);
	}
	return 0;
}

static void info_rows(const struct sif_descr *d, struct rows *t)
{
	char buf[512];
	add_row(t, "Data Type:", "%s", sif_datatype_name(d->datatype));
	add_row(t, "ID:", "%u", d->id);
	fmt_group(d->groupid, buf, sizeof(buf));
	add_row(t, "Group ID:", "%s", buf);
	uint32_t lid = d->link & ~SIF_GROUP_MASK;
	if (!lid)
		add_row(t, "Linked ID:", "NONE");
	else if ((d->link & SIF_GROUP_MASK) == SIF_GROUP_MASK)
		add_row(t, "Linked ID:", "%u (G)", lid);
	else
		add_row(t, "Linked ID:", "%u", lid);
	add_row(t, "Offset:", "%" PRId64, d->offset);
	add_row(t, "Size:", "%" PRId64, d->size);
	if (is_time_set(d->ctime)) {
		sif_fmt_time(d->ctime, buf, sizeof(buf));
		add_row(t, "Created At:", "%s", buf);
	}
	if (is_time_set(d->mtime)) {
		sif_fmt_time(d->mtime, buf, sizeof(buf));
		add_row(t, "Modified At:", "%s", buf);
	}
	if (d->name[0])
		add_row(t, "Name:", "%s", d->name);
	switch (d->datatype) {
	case SIF_DT_PARTITION: {
		struct sif_partinfo p;
		sif_descr_partition(d, &p);
		add_row(t, "Filesystem Type:", "%s", sif_fstype_name(p.fstype));
		add_row(t, "Partition Type:", "%s", sif_parttype_name(p.parttype));
		add_row(t, "Architecture:", "%s", sif_arch_goarch(p.arch));
		break;
	}
	case SIF_DT_SIGNATURE: {
		uint8_t fp[20];
		bool has;
		add_row(t, "Hash Type:", "%s", sif_hash_name(sif_descr_signature(d, fp, &has)));
		if (has) {
			for (int i = 0; i < 20; i++)
				snprintf(buf + 2 * i, 3, "%02X", fp[i]);
			add_row(t, "Entity:", "%s", buf);
		}
		break;
	}
	case SIF_DT_CRYPTO_MESSAGE: {
		int32_t f, m;
		sif_descr_crypto(d, &f, &m);
		add_row(t, "Format Type:", "%s", sif_format_name(f));
		add_row(t, "Message Type:", "%s", sif_message_name(m));
		break;
	}
	case SIF_DT_SBOM: add_row(t, "Format:", "%s", sif_sbom_name(sif_descr_sbom(d))); break;
	case SIF_DT_OCI_BLOB:
	case SIF_DT_OCI_ROOT_INDEX:
		sif_descr_oci_digest(d, buf, sizeof(buf));
		add_row(t, "Digest:", "%s", buf);
		break;
	}
}

/* ------------------------------------------------------------ arguments */

static int parse_u32(const char *what, const char *s, uint32_t *out, struct sifu_err *err)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!*s || *s == '-' || errno || *end || v > UINT32_MAX)
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		                    "sif: %s must be a number from 0 to %u, not '%s'", what,
		                    UINT32_MAX, s);
	*out = (uint32_t)v;
	return 0;
}

static int parse_id(const char *s, uint32_t *id, struct sifu_err *err)
{
	int r = parse_u32("the object ID", s, id, err);
	if (r == 0 && *id == 0)
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "sif: object IDs start at 1");
	return r;
}

static int need_args(const char *sub, const char *usage, const struct cli_args *a, int n,
                     struct sifu_err *err)
{
	if (a->npos - 1 == n)
		return 0;
	sifu_err_set(err, SIFU_E_USAGE, EINVAL, "sif %s: takes %d argument%s, got %d", sub, n,
	             n == 1 ? "" : "s", a->npos - 1);
	sifu_err_hint(err, "usage: sifu sif %s %s", sub, usage);
	return -EINVAL;
}

static int open_image(const char *path, struct sif_image **img, struct sifu_err *err)
{
	int r = sif_open_path(path, false, img, err);
	if (r < 0 && err->code == SIFU_E_CORRUPT)
		sifu_err_hint(err, "the image is damaged; fetch or build it again");
	return r;
}

static int sub_info_dump(const char *sub, struct cli_args *a, struct sifu_err *err)
{
	uint32_t id;
	int r = need_args(sub, "ID IMAGE", a, 2, err);
	if (r < 0 || (r = parse_id(a->pos[1], &id, err)) < 0)
		return r;
	_cleanup_sif_ struct sif_image *img = NULL;
	if ((r = open_image(a->pos[2], &img, err)) < 0)
		return r;
	const struct sif_descr *d = sif_get(img, id);
	if (!d) {
		sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT, "sif %s: %s has no object %u", sub,
		             a->pos[2], id);
		sifu_err_hint(err, "'sifu sif list %s' shows the objects", a->pos[2]);
		return -ENOENT;
	}
	if (!strcmp(sub, "info")) {
		if (a->set[O_JSON]) {
			dump_json(descr_json(d));
			return 0;
		}
		struct rows t = {0};
		info_rows(d, &t);
		print_rows(stdout, &t, "  ", 2);
		return 0;
	}
	/* dump: the object's bytes, streamed; never the whole thing in memory */
	fflush(stdout);
	_cleanup_free_ char *buf = sifu_xmalloc(1 << 20);
	for (int64_t done = 0; done < d->size;) {
		size_t want = (size_t)(d->size - done < (1 << 20) ? d->size - done : (1 << 20));
		ssize_t n = pread(img->fd, buf, want, (off_t)(d->offset + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? sifu_err_sys(err, "sif dump: read %s", a->pos[2])
			             : sifu_err_set(err, SIFU_E_RANGE, EIO, "sif dump: %s shrank",
			                            a->pos[2]);
		for (ssize_t w = 0; w < n;) {
			ssize_t m = write(STDOUT_FILENO, buf + w, (size_t)(n - w));
			if (m < 0 && errno == EINTR)
				continue;
			if (m < 0)
				return sifu_err_sys(err, "sif dump: write to standard output");
			w += m;
		}
		done += n;
	}
	return 0;
}

static int opt_i32(const struct cli_args *a, enum cli_opt_id o, const char *what, int32_t *out,
                   struct sifu_err *err)
{
	uint32_t v;
	if (!a->set[o])
		return 0;
	int r = parse_u32(what, a->val[o], &v, err);
	if (r < 0)
		return r;
	if (v > INT32_MAX)
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "sif add: --%s is too large", what);
	*out = (int32_t)v;
	return 0;
}

static int hex20(const char *s, uint8_t out[20], struct sifu_err *err)
{
	if (strlen(s) != 40)
		return sifu_err_set(
		    err, SIFU_E_USAGE, EINVAL,
		    "sif add: --signentity must be a 40-digit hex fingerprint, not '%s'", s);
	for (int i = 0; i < 20; i++) {
		char b[3] = {s[2 * i], s[2 * i + 1], 0}, *end;
		unsigned long v = strtoul(b, &end, 16);
		if (*end)
			return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
			                    "sif add: --signentity '%s' is not hexadecimal", s);
		out[i] = (uint8_t)v;
	}
	return 0;
}

static int add_options(const struct cli_args *a, struct sif_add_opts *o, struct sifu_err *err)
{
	int32_t dt = 0, pa = 0;
	int r;
	if (!a->set[O_SIF_DATATYPE])
		return sifu_err_set(
		    err, SIFU_E_USAGE, EINVAL,
		    "sif add: --datatype is required (1-11; see 'sifu sif --help')");
	if ((r = opt_i32(a, O_SIF_DATATYPE, "datatype", &dt, err)) < 0)
		return r;
	if (dt < 1 || dt > 11)
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		                    "sif add: --datatype %d is not one of 1-11", dt);
	o->datatype = 0x4000 + dt;
	if ((r = opt_i32(a, O_SIF_PARTTYPE, "parttype", &o->parttype, err)) < 0 ||
	    (r = opt_i32(a, O_SIF_PARTFS, "partfs", &o->fstype, err)) < 0 ||
	    (r = opt_i32(a, O_SIF_PARTARCH, "partarch", &pa, err)) < 0 ||
	    (r = opt_i32(a, O_SIF_SIGNHASH, "signhash", &o->hashtype, err)) < 0)
		return r;
	if (a->set[O_SIF_GROUPID] &&
	    (r = parse_u32("--groupid", a->val[O_SIF_GROUPID], &o->groupid, err)) < 0)
		return r;
	if (o->groupid & SIF_GROUP_MASK)
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "sif add: --groupid is too large");
	if (a->set[O_SIF_LINK] && (r = parse_u32("--link", a->val[O_SIF_LINK], &o->link, err)) < 0)
		return r;
	if (a->set[O_SIF_LINKGROUP]) {
		uint32_t g;
		if ((r = parse_u32("--linkgroup", a->val[O_SIF_LINKGROUP], &g, err)) < 0)
			return r;
		if (!g || (g & SIF_GROUP_MASK))
			return sifu_err_set(err, SIFU_E_USAGE, EINVAL, "sif add: bad --linkgroup");
		o->link = SIF_GROUP_MASK | g;
	}
	if (a->set[O_SIF_ALIGNMENT]) {
		uint32_t al;
		if ((r = parse_u32("--alignment", a->val[O_SIF_ALIGNMENT], &al, err)) < 0)
			return r;
		o->alignment = al;
	}
	if (a->set[O_SIF_FILENAME])
		o->name = a->val[O_SIF_FILENAME];
	switch (o->datatype) {
	case SIF_DT_PARTITION: {
		static const char *const archs[] = {
		    NULL,   "386",    "amd64",  "arm",      "arm64", "ppc64",  "ppc64le",
		    "mips", "mipsle", "mips64", "mips64le", "s390x", "riscv64"};
		if (!o->parttype || !o->fstype || !pa)
			return sifu_err_set(
			    err, SIFU_E_USAGE, EINVAL,
			    "sif add: a partition needs --partfs, --parttype and --partarch");
		if (pa < 1 || pa > 12)
			return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
			                    "sif add: --partarch %d is not one of 1-12", pa);
		o->arch = archs[pa];
		break;
	}
	case SIF_DT_SIGNATURE:
		if (o->hashtype < 1 || o->hashtype > 5)
			return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
			                    "sif add: a signature needs --signhash 1-5");
		if ((r = hex20(a->set[O_SIF_SIGNENTITY] ? a->val[O_SIF_SIGNENTITY] : "", o->entity,
		               err)) < 0)
			return r;
		break;
	case SIF_DT_SBOM:
		if (!a->set[O_SIF_SBOMFORMAT])
			return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
			                    "sif add: an SBOM needs --sbomformat");
		if (!(o->sbom = sif_sbom_parse(a->val[O_SIF_SBOMFORMAT])))
			return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
			                    "sif add: unknown SBOM format '%s'",
			                    a->val[O_SIF_SBOMFORMAT]);
		break;
	}
	return 0;
}

static int sub_add(struct cli_args *a, struct sifu_err *err)
{
	int r = need_args("add", "IMAGE OBJECT --datatype N [options]", a, 2, err);
	if (r < 0)
		return r;
	struct sif_add_opts o;
	sif_add_opts_init(&o);
	o.write = cli_sif_write();
	if ((r = add_options(a, &o, err)) < 0)
		return r;
	_cleanup_close_ int src = open(a->pos[2], O_RDONLY | O_CLOEXEC);
	if (src < 0)
		return sifu_err_sys(err, "sif add: open %s", a->pos[2]);
	uint32_t id;
	if ((r = sif_add_object(a->pos[1], src, &o, &id, err)) < 0)
		return sifu_err_wrap(err, "sif add");
	if (a->set[O_JSON])
		printf("{\"id\": %u}\n", id);
	return 0;
}

int cmd_sif(const struct cli_verb *v, struct cli_args *a, struct sifu_err *err)
{
	static const char *const subs[] = {"list", "info", "header",  "dump", "new",
	                                   "add",  "del",  "setprim", NULL};
	if (a->npos < 1) {
		sifu_err_set(err, SIFU_E_USAGE, EINVAL, "sif: which command?");
		sifu_err_hint(err, "one of list, info, header, dump, new, add, del, setprim; see "
		                   "'sifu sif --help'");
		return -EINVAL;
	}
	const char *sub = a->pos[0];
	bool json = a->set[O_JSON];
	int r;
	_cleanup_sif_ struct sif_image *img = NULL;
	uint32_t id;
	if (!strcmp(sub, "list") || !strcmp(sub, "header")) {
		if ((r = need_args(sub, "IMAGE", a, 1, err)) < 0 ||
		    (r = open_image(a->pos[1], &img, err)) < 0)
			return r;
		return !strcmp(sub, "list") ? cmd_list(img, json) : cmd_header(img, json);
	}
	if (!strcmp(sub, "info") || !strcmp(sub, "dump"))
		return sub_info_dump(sub, a, err);
	if (!strcmp(sub, "new")) {
		if ((r = need_args(sub, "IMAGE", a, 1, err)) < 0)
			return r;
		return sif_create_empty(a->pos[1], SIF_LAUNCH, cli_sif_write(), err);
	}
	if (!strcmp(sub, "add"))
		return sub_add(a, err);
	if (!strcmp(sub, "del") || !strcmp(sub, "setprim")) {
		if ((r = need_args(sub, "ID IMAGE", a, 2, err)) < 0 ||
		    (r = parse_id(a->pos[1], &id, err)) < 0)
			return r;
		r = !strcmp(sub, "del")
		        ? sif_delete_object(a->pos[2], id, false, false, cli_sif_write(), err)
		        : sif_set_primary(a->pos[2], id, cli_sif_write(), err);
		return r < 0 ? sifu_err_wrap(err, "sif %s", sub) : 0;
	}
	sifu_err_set(err, SIFU_E_USAGE, EINVAL, "sif: unknown command '%s'", sub);
	const char *s = cli_suggest(sub, subs);
	if (s)
		sifu_err_hint(err, "did you mean 'sifu sif %s'?", s);
	else
		sifu_err_hint(err, "one of list, info, header, dump, new, add, del, setprim");
	(void)v;
	return -EINVAL;
}
