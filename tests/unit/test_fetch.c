/* SPDX-License-Identifier: BSD-3-Clause */
/* fetch/: references, platforms, OCI JSON, the generated /.singularity.d
 * files, the blob cache and layer streams with their digests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>
#include <zstd.h>

#include "fetch.h"
#include "fetch_priv.h"

struct refcase {
	const char *uri, *registry, *repo, *tag, *digest;
};

static void test_refs(void **state)
{
	static const char D[] =
	    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	const struct refcase ok[] = {
	    {"docker://alpine", "registry-1.docker.io", "library/alpine", "latest", NULL},
	    {"docker://alpine:3.19", "registry-1.docker.io", "library/alpine", "3.19", NULL},
	    {"docker://docker.io/alpine", "registry-1.docker.io", "library/alpine", "latest", NULL},
	    {"docker://index.docker.io/user/img:t", "registry-1.docker.io", "user/img", "t", NULL},
	    {"docker://user/img", "registry-1.docker.io", "user/img", "latest", NULL},
	    {"docker://ghcr.io/org/team/img:v1.2_x", "ghcr.io", "org/team/img", "v1.2_x", NULL},
	    {"docker://localhost/img", "localhost", "img", "latest", NULL},
	    {"docker://localhost:5000/a/b", "localhost:5000", "a/b", "latest", NULL},
	    {"docker://127.0.0.1:5000/a:b", "127.0.0.1:5000", "a", "b", NULL},
	    {"docker://quay.io/a/b-c__d.e", "quay.io", "a/b-c__d.e", "latest", NULL},
	    {"docker://"
	     "alpine@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	     "registry-1.docker.io", "library/alpine", NULL, D},
	    {"docker://r.io:443/"
	     "x:t@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	     "r.io:443", "x", "t", D},
	};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		struct fetch_ref r;
		struct sifu_err err = {0};
		if (fetch_ref_parse(ok[i].uri, &r, &err) != 0)
			fail_msg("%s: %s", ok[i].uri, err.chain[0]);
		assert_int_equal(r.transport, FETCH_DOCKER);
		assert_string_equal(r.registry, ok[i].registry);
		assert_string_equal(r.repository, ok[i].repo);
		if (ok[i].tag)
			assert_string_equal(r.tag, ok[i].tag);
		else
			assert_null(r.tag);
		if (ok[i].digest)
			assert_string_equal(r.digest, ok[i].digest);
		fetch_ref_free(&r);
	}
	const char *bad[] = {
	    "docker://",      "docker://Alpine", "docker://a//b",          "docker://a/",
	    "docker://-a",    "docker://a:b:c",  "docker://a@sha256:1234", "docker://a@md5:x",
	    "docker://a:-x",  "foo://x",         "library/alpine",         "oci:",
	    "docker://a__-b",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct fetch_ref r;
		struct sifu_err err = {0};
		if (fetch_ref_parse(bad[i], &r, &err) == 0)
			fail_msg("accepted %s", bad[i]);
	}
}

static void test_local_refs_and_names(void **state)
{
	struct fetch_ref r;
	struct sifu_err err = {0};
	assert_int_equal(fetch_ref_parse("oci:/tmp/lay:v2", &r, &err), 0);
	assert_int_equal(r.transport, FETCH_OCI_DIR);
	assert_string_equal(r.path, "/tmp/lay");
	assert_string_equal(r.tag, "v2");
	char *n = fetch_ref_default_name(&r);
	assert_string_equal(n, "lay_v2.sif");
	free(n);
	fetch_ref_free(&r);
	assert_int_equal(fetch_ref_parse("oci-archive:./x.tar", &r, &err), 0);
	assert_int_equal(r.transport, FETCH_OCI_ARCHIVE);
	assert_string_equal(r.path, "./x.tar");
	assert_null(r.tag);
	fetch_ref_free(&r);
	assert_int_equal(fetch_ref_parse("docker-archive:/a:b/c.tar", &r, &err), 0);
	assert_string_equal(r.path, "/a:b/c.tar");
	fetch_ref_free(&r);
	assert_int_equal(fetch_ref_parse("oras://ghcr.io/me/tool:1.0", &r, &err), 0);
	assert_int_equal(r.transport, FETCH_ORAS);
	assert_string_equal(r.repository, "me/tool");
	n = fetch_ref_default_name(&r);
	assert_string_equal(n, "tool_1.0.sif");
	free(n);
	fetch_ref_free(&r);
	assert_int_equal(fetch_ref_parse("https://example.org/x/tool.sif?dl=1", &r, &err), 0);
	assert_int_equal(r.transport, FETCH_HTTP);
	n = fetch_ref_default_name(&r);
	assert_string_equal(n, "tool.sif");
	free(n);
	fetch_ref_free(&r);
	assert_int_equal(fetch_ref_parse("docker://ubuntu:24.04", &r, &err), 0);
	n = fetch_ref_default_name(&r);
	assert_string_equal(n, "ubuntu_24.04.sif");
	free(n);
	fetch_ref_free(&r);
}

static void test_platform(void **state)
{
	struct fetch_platform p;
	struct sifu_err err = {0};
	assert_int_equal(fetch_platform_parse("linux/arm64/v8", &p, &err), 0);
	assert_string_equal(p.os, "linux");
	assert_string_equal(p.arch, "arm64");
	assert_string_equal(p.variant, "v8");
	assert_int_equal(fetch_platform_parse("x86_64", &p, &err), 0);
	assert_string_equal(p.arch, "amd64");
	assert_true(fetch_platform_parse("a/b/c/d", &p, &err) < 0);
	assert_true(fetch_platform_parse("", &p, &err) < 0);
	fetch_platform_host(&p);
	assert_string_equal(p.os, "linux");
	assert_true(p.arch[0] != 0);
}

#define DG  "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define DG2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static void test_manifest_kinds(void **state)
{
	struct sifu_err err = {0};
	const char *idx = "{\"schemaVersion\":2,\"mediaType\":"
	                  "\"application/vnd.oci.image.index.v1+json\",\"manifests\":[]}";
	assert_int_equal(fetch_manifest_kind(idx, strlen(idx), &err), 1);
	const char *list = "{\"schemaVersion\":2,\"mediaType\":"
	                   "\"application/vnd.docker.distribution.manifest.list.v2+json\"}";
	assert_int_equal(fetch_manifest_kind(list, strlen(list), &err), 1);
	const char *man = "{\"schemaVersion\":2,\"layers\":[]}";
	assert_int_equal(fetch_manifest_kind(man, strlen(man), &err), 0);
	const char *s1 = "{\"schemaVersion\":1,\"fsLayers\":[]}";
	assert_true(fetch_manifest_kind(s1, strlen(s1), &err) < 0);
	assert_int_equal(err.code, SIFU_E_UNSUPPORTED);
	assert_non_null(strstr(err.chain[0], "schema 1"));
	const char *dup = "{\"a\":1,\"a\":2}";
	assert_true(fetch_manifest_kind(dup, strlen(dup), &err) < 0);
	assert_int_equal(err.code, SIFU_E_CORRUPT);
}

static void test_index_select(void **state)
{
	/* clang-format off: it does not settle on these concatenated strings */
	const char *idx =
	    "{\"manifests\":["
	    "{\"digest\":\"" DG "\",\"size\":10,\"platform\":{\"os\":\"linux\",\"architecture\":"
	    "\"arm\",\"variant\":\"v7\"}},"
	    "{\"digest\":\"" DG2 "\",\"size\":11,\"platform\":{\"os\":\"linux\",\"architecture\":"
	    "\"arm64\",\"variant\":\"v8\"}},"
	    "{\"digest\":\"" DG
	    "\",\"size\":12,\"platform\":{\"os\":\"unknown\",\"architecture\":\"unknown\"}},"
	    "{\"digest\":\"" DG
	    "\",\"size\":13,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}";
	/* clang-format on */
	struct fetch_platform p = {"linux", "arm64", ""};
	struct fetch_blob b = {0};
	struct sifu_err err = {0};
	assert_int_equal(fetch_index_select(idx, strlen(idx), &p, &b, &err), 0);
	assert_string_equal(b.digest, DG2);
	free(b.media_type);
	struct fetch_platform q = {"linux", "amd64", ""};
	assert_int_equal(fetch_index_select(idx, strlen(idx), &q, &b, &err), 0);
	assert_int_equal(b.size, 13);
	free(b.media_type);
	struct fetch_platform v6 = {"linux", "arm", "v6"};
	assert_true(fetch_index_select(idx, strlen(idx), &v6, &b, &err) < 0);
	assert_int_equal(err.code, SIFU_E_NOTFOUND);
	assert_non_null(strstr(err.hint, "linux/arm/v7, linux/arm64/v8, linux/amd64"));
}

/* A single-platform image against --arch/--platform, as Apptainer's
 * ociplatform.CheckImagePlatform: os, arch, and the variant when asked. */
static void test_config_check_platform(void **state)
{
	struct fetch_config c = {.os = "linux", .arch = "amd64"};
	struct fetch_platform amd = {"linux", "amd64", ""}, arm = {"linux", "arm64", ""};
	struct fetch_platform v8 = {"linux", "arm64", "v8"};
	struct sifu_err err = {0};
	assert_int_equal(fetch_config_check_platform(&c, &amd, &err), 0);
	assert_true(fetch_config_check_platform(&c, &arm, &err) < 0);
	assert_non_null(strstr(err.chain[0],
	                       "image (linux/amd64) does not satisfy required platform "
	                       "(linux/arm64)"));
	struct fetch_config a = {.os = "linux", .arch = "arm64"};
	assert_int_equal(fetch_config_check_platform(&a, &arm, &err), 0);
	assert_true(fetch_config_check_platform(&a, &v8, &err) < 0);
	snprintf(a.variant, sizeof(a.variant), "v8");
	assert_int_equal(fetch_config_check_platform(&a, &v8, &err), 0);
	struct fetch_config none = {0};
	assert_int_equal(fetch_config_check_platform(&none, &arm, &err), 1);
}

static void test_manifest_parse(void **state)
{
	struct fetch_manifest m;
	struct sifu_err err = {0};
	const char *ok =
	    "{\"schemaVersion\":2,\"config\":{\"digest\":\"" DG "\",\"size\":5},"
	    "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
	    "\"digest\":\"" DG2 "\",\"size\":7}]}";
	assert_int_equal(fetch_manifest_parse(ok, strlen(ok), &m, &err), 0);
	assert_int_equal(m.nlayers, 1);
	assert_string_equal(m.layers[0].digest, DG2);
	assert_int_equal(m.layers[0].size, 7);
	fetch_manifest_free(&m);
	const char *art =
	    "{\"config\":{\"digest\":\"" DG "\",\"size\":5},\"layers\":[{\"mediaType\":"
	    "\"application/vnd.sylabs.sif.layer.v1.sif\",\"digest\":\"" DG2 "\",\"size\":7}]}";
	assert_true(fetch_manifest_parse(art, strlen(art), &m, &err) < 0);
	assert_int_equal(err.code, SIFU_E_UNSUPPORTED);
	const char *baddg =
	    "{\"config\":{\"digest\":\"sha256:../../etc\",\"size\":5},\"layers\":[]}";
	assert_true(fetch_manifest_parse(baddg, strlen(baddg), &m, &err) < 0);
	const char *neg = "{\"config\":{\"digest\":\"" DG "\",\"size\":-5},\"layers\":[]}";
	assert_true(fetch_manifest_parse(neg, strlen(neg), &m, &err) < 0);
}

static void test_config_scripts(void **state)
{
	const char *cfg = "{\"architecture\":\"amd64\",\"config\":{"
	                  "\"Env\":[\"PATH=/usr/bin:/bin\",\"A=it's $x\",\"1BAD=x\",\"NOEQ\"],"
	                  "\"Entrypoint\":[\"/bin/tool\",\"--flag\"],\"Cmd\":[\"a b\"],"
	                  "\"Labels\":{\"b\":\"2\",\"a\":\"1\"}},"
	                  "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" DG "\"]}}";
	struct fetch_config c;
	struct sifu_err err = {0};
	assert_int_equal(fetch_config_parse(cfg, strlen(cfg), &c, &err), 0);
	assert_int_equal(c.ndiff_ids, 1);
	assert_string_equal(c.arch, "amd64");
	char *run = fetch_runscript(&c);
	assert_non_null(strstr(run, "\tset -- '/bin/tool' '--flag' \"$@\"\n"));
	assert_non_null(strstr(run, "\tset -- '/bin/tool' '--flag' 'a b'\n"));
	free(run);
	char *env = fetch_env_script(&c);
	assert_string_equal(env, "#!/bin/sh\n# Written by sifu from the image's Env.\n"
	                         "export PATH='/usr/bin:/bin'\n"
	                         "if [ -z \"${A+set}\" ]; then export A='it'\\''s $x'; fi\n");
	free(env);
	assert_string_equal(c.labels_json, "{\n \"a\": \"1\",\n \"b\": \"2\"\n}");
	fetch_config_free(&c);
	const char *nocfg = "{\"rootfs\":{\"diff_ids\":[]}}";
	assert_int_equal(fetch_config_parse(nocfg, strlen(nocfg), &c, &err), 0);
	run = fetch_runscript(&c);
	assert_non_null(strstr(run, "set -- /bin/sh"));
	free(run);
	fetch_config_free(&c);
	const char *nodiff = "{\"config\":{}}";
	assert_true(fetch_config_parse(nodiff, strlen(nodiff), &c, &err) < 0);
}

static void test_digest_parse(void **state)
{
	char hex[65];
	struct sifu_err err = {0};
	assert_int_equal(fetch_digest_parse(DG, hex, &err), 0);
	assert_true(fetch_digest_parse("sha512:11", hex, &err) < 0);
	assert_true(fetch_digest_parse("sha256:ABCD", hex, &err) < 0);
	assert_true(fetch_digest_parse(DG "0", hex, &err) < 0);
	assert_true(
	    fetch_digest_parse("sha256:../../../../../../../../../../../../../../../../../../etc/x",
	                       hex, &err) < 0);
}

static char tmpdir[64];

static void mk_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sifu-test-fetch-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
}

static void test_cache_commit(void **state)
{
	mk_tmpdir();
	struct fetch_cache c;
	struct sifu_err err = {0};
	struct fetch_cache_loc loc = {.dir = tmpdir};
	assert_int_equal(fetch_cache_open(&loc, false, &c, &err), 0);
	char good[65];
	fetch_sha256_buf("hello", 5, good);
	char *name;
	int fd = fetch_cache_tmp(&c, &name, &err);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hellO", 5), 5);
	assert_true(fetch_cache_commit(&c, name, fd, good, 5, &err) < 0);
	assert_int_equal(err.code, SIFU_E_VERIFY);
	assert_int_equal(access(name, F_OK), -1); /* the temporary is gone */
	assert_int_equal(fetch_cache_open_blob(&c, good), -ENOENT);
	close(fd);
	free(name);
	fd = fetch_cache_tmp(&c, &name, &err);
	assert_int_equal(write(fd, "hello", 5), 5);
	assert_true(fetch_cache_commit(&c, name, fd, good, 6, &err) < 0); /* wrong size */
	close(fd);
	free(name);
	fd = fetch_cache_tmp(&c, &name, &err);
	assert_int_equal(write(fd, "hello", 5), 5);
	assert_int_equal(fetch_cache_commit(&c, name, fd, good, 5, &err), 0);
	close(fd);
	free(name);
	int b = fetch_cache_open_blob(&c, good);
	assert_true(b >= 0);
	close(b);
	int lk = fetch_cache_lock(&c, good, &err);
	assert_true(lk >= 0);
	close(lk);
	struct fetch_cache_entry *e;
	size_t n;
	assert_int_equal(fetch_cache_list(&c, false, &e, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(e[0].name, good);
	free(e);
	assert_int_equal(fetch_cache_list(&c, true, &e, &n, &err), 0);
	assert_int_equal(n, 0);
	free(e);
	size_t removed;
	uint64_t bytes;
	/* --days: nothing as old as a day yet */
	struct fetch_clean_opts co = {.blobs = true, .sifs = true, .before = time(NULL) - 86400};
	assert_int_equal(fetch_cache_clean(&c, &co, &removed, &bytes, &err), 0);
	assert_int_equal(removed, 0);
	co.before = 0;
	assert_int_equal(fetch_cache_clean(&c, &co, &removed, &bytes, &err), 0);
	assert_int_equal(removed, 1);
	assert_int_equal(bytes, 5);
	fetch_cache_close(&c);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	assert_int_equal(system(cmd), 0);
}

/* a one-file ustar archive */
static size_t mk_tar(unsigned char *out, const char *name, const char *data)
{
	memset(out, 0, 2048);
	unsigned char *h = out;
	snprintf((char *)h, 100, "%s", name);
	snprintf((char *)h + 100, 8, "%07o", 0644);
	snprintf((char *)h + 108, 8, "%07o", 0);
	snprintf((char *)h + 116, 8, "%07o", 0);
	snprintf((char *)h + 124, 12, "%011o", (unsigned)strlen(data));
	snprintf((char *)h + 136, 12, "%011o", 1000);
	h[156] = '0';
	memcpy(h + 257,
	       "ustar\0"
	       "00",
	       8);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	memcpy(out + 512, data, strlen(data));
	return 512 + 512 + 1024;
}

static int mk_file(const void *p, size_t n)
{
	char path[] = "/tmp/sifu-test-layer-XXXXXX";
	int fd = mkostemp(path, O_CLOEXEC);
	unlink(path);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static int apply(const void *blob, size_t n, const char *digest, const char *diff_id,
                 struct sifu_err *err)
{
	int fd = mk_file(blob, n);
	char path[] = "/tmp/sifu-test-sq-XXXXXX";
	int out = mkostemp(path, O_CLOEXEC);
	unlink(path);
	struct sq_opts o = {.workers = 1};
	struct sq_image *img;
	assert_int_equal(sq_image_create(out, 0, &o, &img, err), 0);
	sq_image_next_layer(img);
	struct fetch_layer_stats st;
	int r = fetch_layer_apply(fd, digest, diff_id, img, NULL, NULL, &st, err);
	if (r == 0) {
		assert_int_equal(st.entries, 1);
		assert_int_equal(st.uncompressed, 2048);
	}
	sq_image_free(img);
	close(fd);
	close(out);
	return r;
}

static void test_layers(void **state)
{
	unsigned char tar[2048];
	size_t n = mk_tar(tar, "etc/hello", "hi there\n");
	char hex[65], dg[80], diff[80], bad[80];
	fetch_sha256_buf(tar, n, hex);
	snprintf(diff, sizeof(diff), "sha256:%s", hex);
	snprintf(bad, sizeof(bad), "sha256:%064d", 0);
	struct sifu_err err = {0};
	/* plain */
	assert_int_equal(apply(tar, n, diff, diff, &err), 0);
	assert_true(apply(tar, n, bad, diff, &err) < 0);
	assert_int_equal(err.code, SIFU_E_VERIFY);
	/* gzip */
	unsigned char gz[4096];
	z_stream z = {0};
	deflateInit2(&z, 9, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
	z.next_in = tar, z.avail_in = (uInt)n, z.next_out = gz, z.avail_out = sizeof(gz);
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	size_t gzn = sizeof(gz) - z.avail_out;
	deflateEnd(&z);
	fetch_sha256_buf(gz, gzn, hex);
	snprintf(dg, sizeof(dg), "sha256:%s", hex);
	assert_int_equal(apply(gz, gzn, dg, diff, &err), 0);
	assert_true(apply(gz, gzn, dg, bad, &err) < 0); /* the diff_id is checked */
	assert_int_equal(err.code, SIFU_E_VERIFY);
	assert_true(apply(gz, gzn - 10, NULL, NULL, &err) < 0); /* truncated */
	/* zstd */
	unsigned char zs[4096];
	size_t zn = ZSTD_compress(zs, sizeof(zs), tar, n, 3);
	assert_false(ZSTD_isError(zn));
	fetch_sha256_buf(zs, zn, hex);
	snprintf(dg, sizeof(dg), "sha256:%s", hex);
	assert_int_equal(apply(zs, zn, dg, diff, &err), 0);
	/* not a tar */
	assert_true(apply("BZh91AY", 7, NULL, NULL, &err) < 0);
	assert_int_equal(err.code, SIFU_E_UNSUPPORTED);
}

/* exec docker://…: one SIF per manifest in the cache, made once */
static void test_pull_cached(void **state)
{
	mk_tmpdir();
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "python3 %s/tests/integration/pull_image.py %s/img",
	         SIFU_SOURCE_ROOT, tmpdir);
	if (system(cmd) != 0)
		fail_msg("%s failed", cmd);
	char uri[128], cache[128];
	snprintf(uri, sizeof(uri), "oci:%s/img", tmpdir);
	snprintf(cache, sizeof(cache), "%s/cache", tmpdir);
	struct fetch_pull_opts o = {.cache = {.dir = cache}, .quiet = true};
	fetch_platform_host(&o.platform);
	struct sifu_err err = {0};
	char *p1 = NULL, *p2 = NULL;
	if (fetch_pull_cached(uri, &o, &p1, &err) != 0)
		fail_msg("%s", err.chain[0]);
	struct stat a, b;
	assert_int_equal(stat(p1, &a), 0);
	assert_non_null(strstr(p1, "/cache/sif/"));
	assert_int_equal(fetch_pull_cached(uri, &o, &p2, &err), 0);
	assert_string_equal(p1, p2);
	assert_int_equal(stat(p2, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino); /* not made again */
	free(p1);
	free(p2);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	assert_int_equal(system(cmd), 0);
}

/* An image config is read whole: a manifest announcing more than 16 MiB is
 * refused before anything is downloaded (issue 14, item 7). */
static void test_manifest_config_cap(void **state)
{
	(void)state;
	struct fetch_manifest m;
	struct sifu_err err = {0};
	const char *at = "{\"config\":{\"digest\":\"" DG "\",\"size\":16777216},\"layers\":[]}";
	assert_int_equal(fetch_manifest_parse(at, strlen(at), &m, &err), 0);
	fetch_manifest_free(&m);
	const char *over = "{\"config\":{\"digest\":\"" DG "\",\"size\":16777217},\"layers\":[]}";
	assert_true(fetch_manifest_parse(over, strlen(over), &m, &err) < 0);
	assert_int_equal(err.code, SIFU_E_UNSUPPORTED);
	assert_non_null(strstr(err.chain[0], "16 MiB"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_refs),
	    cmocka_unit_test(test_local_refs_and_names),
	    cmocka_unit_test(test_platform),
	    cmocka_unit_test(test_manifest_kinds),
	    cmocka_unit_test(test_index_select),
	    cmocka_unit_test(test_config_check_platform),
	    cmocka_unit_test(test_manifest_parse),
	    cmocka_unit_test(test_config_scripts),
	    cmocka_unit_test(test_digest_parse),
	    cmocka_unit_test(test_cache_commit),
	    cmocka_unit_test(test_layers),
	    cmocka_unit_test(test_pull_cached),
	    cmocka_unit_test(test_manifest_config_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
