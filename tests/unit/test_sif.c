/* SPDX-License-Identifier: BSD-3-Clause */
/* sif/: the pure functions (encoders, names, formatting, validation) and the
 * writer and in-place edits through the library, checked against the
 * reference images in tests/fixtures/sif. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>

#include "sif.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#define FIX SIFU_SOURCE_ROOT "/tests/fixtures/sif/"

static char tmpdir[256];

static int setup_tmp(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sifu-test-sif.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown_tmp(void **state)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	uint8_t *buf = malloc((size_t)st.st_size);
	assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static void test_fmt_size(void **state)
{
	char b[32];
	struct {
		int64_t in;
		const char *out;
	} cases[] = {
	    {0, "0 B"},
	    {4, "4 B"},
	    {1023, "1023 B"},
	    {1024, "1 KiB"},
	    {1535, "1 KiB"},
	    {1536, "2 KiB"},
	    {28080, "27 KiB"},
	    {5592, "5 KiB"},
	    {271360, "265 KiB"},
	    {1048576, "1 MiB"},
	    {1073741824LL * 3, "3 GiB"},
	    {-1023, "-1023 B"},
	    {-2048, "-2 KiB"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		sif_fmt_size(cases[i].in, b, sizeof(b));
		assert_string_equal(b, cases[i].out);
	}
}

static void test_fmt_time_uuid(void **state)
{
	char b[64];
	sif_fmt_time(1590175859, b, sizeof(b));
	assert_string_equal(b, "2020-05-22 19:30:59 +0000 UTC");
	sif_fmt_time(0, b, sizeof(b));
	assert_string_equal(b, "1970-01-01 00:00:00 +0000 UTC");
	uint8_t id[16], back[16];
	char s[37];
	assert_int_equal(sif_uuid_parse("6ecc76b7-a497-4f7f-9ebd-8da2a04c6be1", id), 0);
	sif_fmt_uuid(id, s);
	assert_string_equal(s, "6ecc76b7-a497-4f7f-9ebd-8da2a04c6be1");
	assert_int_equal(sif_uuid_parse("6ECC76B7-A497-4F7F-9EBD-8DA2A04C6BE1", back), 0);
	assert_memory_equal(id, back, 16);
	assert_int_equal(sif_uuid_parse("6ecc76b7a4974f7f9ebd8da2a04c6be1", id), -EINVAL);
	assert_int_equal(sif_uuid_parse("6ecc76b7-a497-4f7f-9ebd-8da2a04c6bx1", id), -EINVAL);
	memset(id, 0, 16);
	assert_true(sif_uuid_is_nil(id));
	id[15] = 1;
	assert_false(sif_uuid_is_nil(id));
}

static void test_names(void **state)
{
	assert_string_equal(sif_datatype_name(SIF_DT_DEFFILE), "Def.FILE");
	assert_string_equal(sif_datatype_name(SIF_DT_OCI_BLOB), "OCI.Blob");
	assert_string_equal(sif_datatype_name(SIF_DT_OCI_ROOT_INDEX), "OCI.RootIndex");
	assert_string_equal(sif_datatype_name(0x4100), "Unknown");
	assert_string_equal(sif_fstype_name(SIF_FS_ENCRYPTED_SQUASH), "Encrypted squashfs");
	assert_string_equal(sif_fstype_name(9), "Unknown");
	assert_string_equal(sif_parttype_name(SIF_PART_PRIMSYS), "*System");
	assert_string_equal(sif_hash_name(SIF_HASH_SHA384), "SHA-384");
	assert_string_equal(sif_hash_name(SIF_HASH_BLAKE2B), "BLAKE2b-256");
	assert_string_equal(sif_message_name(0x200), "RSA-OAEP");
	assert_string_equal(sif_sbom_name(8), "syft-json");
	assert_string_equal(sif_sbom_name(9), "unknown");
	assert_int_equal(sif_sbom_parse("github"), 3);
	assert_int_equal(sif_sbom_parse("spdx-yaml"), 7);
	assert_int_equal(sif_sbom_parse("nope"), 0);
	assert_string_equal(sif_arch_goarch("02"), "amd64");
	assert_string_equal(sif_arch_goarch("12"), "riscv64");
	assert_string_equal(sif_arch_goarch("00"), "unknown");
	assert_string_equal(sif_arch_goarch("amd"), "unknown");
	assert_string_equal(sif_arch_code("s390x"), "11");
	assert_null(sif_arch_code("amd"));
	assert_non_null(sif_arch_code(sif_host_goarch()));
}

static void test_header_roundtrip(void **state)
{
	size_t len;
	_cleanup_free_ uint8_t *buf = slurp(FIX "one-group-signed-legacy.sif", &len);
	struct sif_header h;
	sif_header_decode(buf, &h);
	assert_string_equal(h.launch, SIF_LAUNCH);
	assert_string_equal(h.version, "01");
	assert_string_equal(h.arch, "01");
	assert_int_equal(h.dtotal, 48);
	assert_int_equal(h.dfree, 45);
	assert_int_equal(h.doff, 4096);
	assert_int_equal(h.dataoff, 32768);
	uint8_t out[SIF_HDR_SIZE];
	sif_header_encode(&h, out);
	assert_memory_equal(out, buf, SIF_HDR_SIZE);
	for (int i = 0; i < 3; i++) {
		struct sif_descr d;
		uint8_t dout[SIF_DESCR_SIZE];
		const uint8_t *raw = buf + 4096 + i * SIF_DESCR_SIZE;
		sif_descr_decode(raw, &d);
		assert_int_equal(d.id, (uint32_t)i + 1);
		sif_descr_encode(&d, dout);
		assert_memory_equal(dout, raw, SIF_DESCR_SIZE);
	}
	struct sif_descr sig;
	sif_descr_decode(buf + 4096 + 2 * SIF_DESCR_SIZE, &sig);
	uint8_t fp[20];
	bool has;
	assert_int_equal(sif_descr_signature(&sig, fp, &has), SIF_HASH_SHA384);
	assert_true(has);
	assert_int_equal(fp[0], 0x12);
	assert_string_equal(sig.name, "part-signature");
}

/* a minimal valid header/table pair for the validation cases */
static void make_valid(struct sif_header *h, struct sif_descr d[4])
{
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, "SIF_MAGIC", 10);
	memcpy(h->version, "01", 3);
	h->dtotal = 4;
	h->dfree = 2;
	h->doff = 4096;
	h->dsize = 4 * SIF_DESCR_SIZE;
	h->dataoff = 4096 + 4 * SIF_DESCR_SIZE;
	h->datasize = 200;
	memset(d, 0, 4 * sizeof(*d));
	for (int i = 0; i < 2; i++) {
		d[i].used = 1;
		d[i].id = (uint32_t)i + 1;
		d[i].groupid = SIF_GROUP_MASK | 1;
		d[i].offset = h->dataoff + 100 * i;
		d[i].size = d[i].padded = 100;
		d[i].datatype = SIF_DT_GENERIC;
	}
}

static void expect_bad(const struct sif_header *h, const struct sif_descr *d, uint64_t size,
                       const char *want)
{
	struct sifu_err err = {0};
	int r = sif_check_header(h, size, &err);
	if (r == 0)
		r = sif_check_descriptors(h, d, size, &err);
	assert_true(r < 0);
	if (!strstr(err.chain[0], want))
		fail_msg("want '%s' in '%s'", want, err.chain[0]);
}

static void test_validation(void **state)
{
	struct sif_header h;
	struct sif_descr d[4];
	uint64_t size = 4096 + 4 * SIF_DESCR_SIZE + 200;
	struct sifu_err err = {0};
	make_valid(&h, d);
	assert_int_equal(sif_check_header(&h, size, &err), 0);
	assert_int_equal(sif_check_descriptors(&h, d, size, &err), 0);

	make_valid(&h, d), h.magic[0] = 'X';
	expect_bad(&h, d, size, "no SIF_MAGIC at offset 32");
	make_valid(&h, d), h.version[1] = '2';
	expect_bad(&h, d, size, "SIF version '02'");
	make_valid(&h, d);
	expect_bad(&h, d, size - 1, "DataSize (offset 120)");
	make_valid(&h, d), h.dfree = 3;
	expect_bad(&h, d, size, "says 3 free, but 2 of 4");
	make_valid(&h, d), d[1].offset = d[0].offset + 50;
	expect_bad(&h, d, size, "overlap object 1");
	make_valid(&h, d), d[1].id = 1;
	expect_bad(&h, d, size, "object id 1 is used twice");
	make_valid(&h, d), d[0].link = 5;
	expect_bad(&h, d, size, "links to object 5, which does not exist");
	make_valid(&h, d), d[0].link = SIF_GROUP_MASK | 1; /* its own group: fine */
	assert_int_equal(sif_check_descriptors(&h, d, size, &err), 0);
	make_valid(&h, d), d[0].link = SIF_GROUP_MASK;
	expect_bad(&h, d, size, "link to group 0");
	make_valid(&h, d), d[0].size = INT64_MAX;
	expect_bad(&h, d, size, "field Size");
	make_valid(&h, d), d[0].offset = INT64_MIN;
	expect_bad(&h, d, size, "field Offset");
	make_valid(&h, d), h.dsize = INT64_MAX, h.dataoff = INT64_MAX;
	expect_bad(&h, d, size, "DataOffset (offset 112)");
	/* an empty object may sit anywhere in the data section, even on another */
	make_valid(&h, d), d[1].offset = d[0].offset, d[1].size = d[1].padded = 0;
	assert_int_equal(sif_check_descriptors(&h, d, size, &err), 0);
	/* unused descriptors are not looked at */
	make_valid(&h, d), d[3].id = 1, d[3].offset = -5;
	assert_int_equal(sif_check_descriptors(&h, d, size, &err), 0);
}

static void test_fixtures_open(void **state)
{
	static const char *const names[] = {
	    "empty.sif",
	    "empty-id.sif",
	    "empty-launch-script.sif",
	    "one-group.sif",
	    "two-groups.sif",
	    "one-group-signed-pgp.sif",
	    "one-group-signed-dsse.sif",
	    "one-group-signed-legacy.sif",
	    "one-group-signed-legacy-all.sif",
	    "one-group-signed-legacy-group.sif",
	    "one-object-crypt-message.sif",
	    "one-object-generic-json.sif",
	    "one-object-oci-blob.sif",
	    "one-object-oci-root-index.sif",
	    "one-object-sbom.sif",
	    "one-object-time.sif",
	};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		char p[512];
		snprintf(p, sizeof(p), FIX "%s", names[i]);
		struct sifu_err err = {0};
		_cleanup_sif_ struct sif_image *img = NULL;
		if (sif_open_path(p, false, &img, &err) < 0)
			fail_msg("%s: %s", names[i], err.chain[0]);
		/* the same bytes from memory give the same answer */
		size_t len;
		_cleanup_free_ uint8_t *buf = slurp(p, &len);
		_cleanup_sif_ struct sif_image *mem = NULL;
		assert_int_equal(sif_open_mem(buf, len, &mem, &err), 0);
		assert_int_equal(mem->h.dfree, img->h.dfree);
	}
}

static void test_find_rootfs(void **state)
{
	struct sifu_err err = {0};
	struct sif_rootfs_loc loc;
	int fd = open(FIX "two-groups.sif", O_RDONLY | O_CLOEXEC);
	assert_true(sif_fd_is_sif(fd));
	assert_int_equal(sif_find_rootfs(fd, &loc, &err), 0);
	assert_int_equal(loc.offset, 36864);
	assert_int_equal(loc.size, 4096);
	assert_int_equal(loc.fstype, SIF_FS_SQUASH);
	close(fd);
	fd = open(FIX "one-object-sbom.sif", O_RDONLY | O_CLOEXEC);
	assert_true(sif_find_rootfs(fd, &loc, &err) < 0);
	assert_int_equal(err.code, SIFU_E_NOTFOUND);
	close(fd);
	fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	assert_false(sif_fd_is_sif(fd));
	assert_true(sif_find_rootfs(fd, &loc, &err) < 0);
	assert_int_equal(err.code, SIFU_E_UNSUPPORTED);
	close(fd);
}

static void test_writer(void **state)
{
	char path[512], root[4096 * 3];
	snprintf(path, sizeof(path), "%s/w.sif", tmpdir);
	struct sifu_err err = {0};
	struct sif_writer *w;
	assert_int_equal(sif_writer_create(path, NULL, &w, &err), 0);
	sif_writer_set_time(w, 1600000000);
	const char def[] = "Bootstrap: docker\nFrom: alpine\n";
	assert_int_equal(sif_writer_add_data(w, SIF_DT_DEFFILE, def, strlen(def), 1, 0, NULL, &err),
	                 0);
	int fd;
	uint64_t off;
	assert_int_equal(sif_writer_begin_partition(w, &fd, &off, &err), 0);
	assert_int_equal(off % 4096, 0);
	assert_int_equal(off, 32768);
	for (size_t i = 0; i < sizeof(root); i++)
		root[i] = (char)i;
	assert_int_equal(pwrite(fd, root, sizeof(root), (off_t)off), (ssize_t)sizeof(root));
	assert_int_equal(sif_writer_end_partition(w, sizeof(root), SIF_FS_SQUASH, SIF_PART_SYSTEM,
	                                          "amd64", true, &err),
	                 0);
	/* nothing under the final name until commit */
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(sif_writer_commit(w, &err), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(st.st_size, 32768 + sizeof(root));

	_cleanup_sif_ struct sif_image *img = NULL;
	assert_int_equal(sif_open_path(path, false, &img, &err), 0);
	assert_string_equal(img->h.arch, "02");
	assert_int_equal(img->h.ctime, 1600000000);
	assert_int_equal(img->h.dfree, 46);
	const struct sif_descr *p = sif_primary(img);
	assert_non_null(p);
	assert_int_equal(p->id, 2);
	assert_int_equal(p->padded, 32768 - (32176 + (int64_t)strlen(def)) + (int64_t)sizeof(root));
	char *obj;
	size_t len;
	assert_int_equal(sif_read_object(img, sif_get(img, 1), 1024, &obj, &len, &err), 0);
	assert_string_equal(obj, def);
	free(obj);
	assert_true(sif_read_object(img, p, 16, &obj, &len, &err) < 0);

	/* abort leaves nothing behind */
	snprintf(path, sizeof(path), "%s/gone.sif", tmpdir);
	assert_int_equal(sif_writer_create(path, NULL, &w, &err), 0);
	assert_int_equal(sif_writer_add_data(w, SIF_DT_GENERIC, "x", 1, 0, 0, "x", &err), 0);
	sif_writer_abort(w);
	DIR *dir = opendir(tmpdir);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(dir)))
		n += e->d_name[0] != '.' || (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."));
	closedir(dir);
	assert_int_equal(n, 1); /* w.sif only */

	/* misuse is an error, not a broken image */
	assert_int_equal(sif_writer_create(path, NULL, &w, &err), 0);
	assert_true(sif_writer_add_data(w, SIF_DT_PARTITION, "x", 1, 1, 0, NULL, &err) < 0);
	assert_true(sif_writer_end_partition(w, 1, 1, 1, "amd64", false, &err) < 0);
	assert_int_equal(sif_writer_begin_partition(w, &fd, &off, &err), 0);
	assert_true(sif_writer_end_partition(w, 100, 1, 1, "amd64", false, &err) <
	            0); /* not written */
	assert_true(sif_writer_set_launch(w, "#!/a/launch/line/that/is/far/too/long\n", &err) < 0);
	sif_writer_abort(w);
}

static void test_edit(void **state)
{
	char path[512], obj[512];
	struct sifu_err err = {0};
	snprintf(path, sizeof(path), "%s/e.sif", tmpdir);
	snprintf(obj, sizeof(obj), "%s/o.bin", tmpdir);
	assert_int_equal(sif_create_empty(path, SIF_LAUNCH, NULL, &err), 0);
	int ofd = open(obj, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_int_equal(write(ofd, "hello", 5), 5);

	struct sif_add_opts o;
	uint32_t id;
	sif_add_opts_init(&o);
	o.datatype = SIF_DT_PARTITION, o.fstype = SIF_FS_SQUASH, o.parttype = SIF_PART_SYSTEM;
	o.arch = "arm64", o.groupid = 1;
	lseek(ofd, 0, SEEK_SET);
	assert_int_equal(sif_add_object(path, ofd, &o, &id, &err), 0);
	assert_int_equal(id, 1);
	sif_add_opts_init(&o);
	o.datatype = SIF_DT_OCI_BLOB;
	lseek(ofd, 0, SEEK_SET);
	assert_int_equal(sif_add_object(path, ofd, &o, &id, &err), 0);
	assert_int_equal(id, 2);
	assert_int_equal(sif_set_primary(path, 1, NULL, &err), 0);
	assert_true(sif_set_primary(path, 2, NULL, &err) < 0);

	struct sif_image *img;
	assert_int_equal(sif_open_path(path, false, &img, &err), 0);
	assert_string_equal(img->h.arch, "04");
	char dig[128];
	sif_descr_oci_digest(sif_get(img, 2), dig, sizeof(dig));
	assert_string_equal(
	    dig, "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
	assert_int_equal(sif_get(img, 1)->offset, 32768);
	sif_close(img);

	/* a link to nothing is refused and the file is left as it was */
	struct stat before, after;
	assert_int_equal(stat(path, &before), 0);
	sif_add_opts_init(&o);
	o.datatype = SIF_DT_GENERIC, o.link = 9;
	lseek(ofd, 0, SEEK_SET);
	assert_true(sif_add_object(path, ofd, &o, &id, &err) < 0);
	assert_int_equal(stat(path, &after), 0);
	assert_int_equal(before.st_size, after.st_size);

	/* delete the last object with compaction: the file shrinks back */
	assert_int_equal(sif_delete_object(path, 2, true, true, NULL, &err), 0);
	assert_int_equal(stat(path, &after), 0);
	assert_int_equal(after.st_size, 32768 + 5);
	assert_int_equal(sif_delete_object(path, 1, false, false, NULL, &err), 0);
	assert_int_equal(sif_open_path(path, false, &img, &err), 0);
	assert_string_equal(img->h.arch, "00");
	assert_int_equal(img->h.dfree, 48);
	assert_null(sif_primary(img));
	sif_close(img);
	assert_true(sif_delete_object(path, 1, false, false, NULL, &err) < 0);
	assert_int_equal(err.code, SIFU_E_NOTFOUND);
	close(ofd);
}

/* A commit whose final rename fails (here: the name became a directory
 * after the writer started, as a race or another process could make it)
 * removes its temporary file and reports the name.  Fails on a60965e: the
 * temporary ".r.sif.XXXXXX" stayed unless the caller also aborted, and
 * neither pull nor build did. */
static void test_commit_failure_leaves_nothing(void **state)
{
	char dir[512], path[600];
	snprintf(dir, sizeof(dir), "%s/commit-fail", tmpdir);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/r.sif", dir);
	struct sif_writer *w;
	struct sifu_err err = {0};
	assert_int_equal(sif_writer_create(path, NULL, &w, &err), 0);
	assert_int_equal(sif_writer_add_data(w, SIF_DT_GENERIC, "x", 1, 0, 0, "x", &err), 0);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_true(sif_writer_commit(w, &err) < 0); /* consumed: no abort */
	assert_non_null(strstr(err.chain[0], "r.sif"));
	DIR *d = opendir(dir);
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "r.sif"))
			fail_msg("left behind: %s", e->d_name);
	closedir(d);
	assert_int_equal(rmdir(path), 0);
	/* and a directory is refused before anything is written */
	assert_int_equal(mkdir(path, 0755), 0);
	assert_true(sif_writer_create(path, NULL, &w, &err) < 0);
	assert_int_equal(err.code, SIFU_E_USAGE);
	assert_true(sif_create_empty(path, SIF_LAUNCH, NULL, &err) < 0);
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fmt_size),
	    cmocka_unit_test(test_fmt_time_uuid),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_header_roundtrip),
	    cmocka_unit_test(test_validation),
	    cmocka_unit_test(test_fixtures_open),
	    cmocka_unit_test(test_find_rootfs),
	    cmocka_unit_test(test_writer),
	    cmocka_unit_test(test_edit),
	    cmocka_unit_test(test_commit_failure_leaves_nothing),
	};
	return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
