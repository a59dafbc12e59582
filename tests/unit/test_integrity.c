/* SPDX-License-Identifier: BSD-3-Clause */
/* Signed metadata, DSSE and verification against the reference images in
 * tests/fixtures/sif (written by sylabs/sif, see its README). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>

#include "sif.h"

#define FIX SIFU_SOURCE_ROOT "/tests/fixtures/sif/"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = sifu_xmalloc((size_t)n + 1);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	b[n] = 0;
	fclose(f);
	*len = (size_t)n;
	return b;
}

static void spit(const char *path, const void *b, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, b, n), (ssize_t)n);
	close(fd);
}

/* The signature object's bytes of a fixture. */
static char *sig_object(const char *image, uint32_t id, size_t *len)
{
	struct sifu_err err = {0};
	struct sif_image *img = NULL;
	assert_int_equal(sif_open_path(image, false, &img, &err), 0);
	char *b = NULL;
	assert_int_equal(sif_read_object(img, sif_get(img, id), 1 << 20, &b, len, &err), 0);
	sif_close(img);
	return b;
}

static void test_pae(void **state)
{
	(void)state;
	size_t n;
	char *p = sif_dsse_pae("http://example.com/HelloWorld", "hello world", 11, &n);
	/* the example of the DSSE protocol document */
	const char want[] = "DSSEv1 29 http://example.com/HelloWorld 11 hello world";
	assert_int_equal(n, sizeof(want) - 1);
	assert_memory_equal(p, want, n);
	free(p);
}

static void test_keyids(void **state)
{
	(void)state;
	struct sifu_err err = {0};
	struct sif_pemkey *ed = NULL, *rsa = NULL, *edpriv = NULL;
	assert_int_equal(sif_pemkey_load(FIX "ed25519-public.pem", false, &ed, &err), 0);
	assert_int_equal(sif_pemkey_load(FIX "rsa-public.pem", false, &rsa, &err), 0);
	assert_int_equal(sif_pemkey_load(FIX "ed25519-private.pem", true, &edpriv, &err), 0);
	/* the key ids the reference wrote into one-group-signed-dsse.sif */
	assert_string_equal(sif_pemkey_id(ed),
	                    "SHA256:x6l8ZblpSSXGaPMCzySedWg88BwIFcz8jlPb6el0mFs");
	assert_string_equal(sif_pemkey_id(rsa),
	                    "SHA256:BhCwr7qZulYcOMSl2Jt2DuYHxHNnN6th4NdMqR/PGa4");
	assert_string_equal(sif_pemkey_id(edpriv), sif_pemkey_id(ed));
	/* a public key is not a private one */
	struct sif_pemkey *bad = NULL;
	assert_true(sif_pemkey_load(FIX "ed25519-public.pem", true, &bad, &err) < 0);
	sif_pemkey_free(ed);
	sif_pemkey_free(rsa);
	sif_pemkey_free(edpriv);
}

/* The metadata we compute for one-group.sif is the payload the reference signed. */
static void test_metadata_matches_reference(void **state)
{
	(void)state;
	struct sifu_err err = {0};
	struct sif_image *img = NULL;
	assert_int_equal(sif_open_path(FIX "one-group.sif", false, &img, &err), 0);
	char *md = NULL;
	size_t mdlen;
	assert_int_equal(sif_metadata_json(img, 1, NULL, 0, SIF_HASH_SHA256, &md, &mdlen, &err), 0);
	sif_close(img);

	size_t n;
	char *pgp = sig_object(FIX "one-group-signed-pgp.sif", 3, &n);
	/* clear-signed text: after the armor header's blank line, up to the newline */
	char *t = strstr(pgp, "\n\n");
	assert_non_null(t);
	t += 2;
	char *end = strstr(t, "\n-----BEGIN PGP SIGNATURE");
	assert_non_null(end);
	assert_int_equal((size_t)(end - t), mdlen);
	assert_memory_equal(t, md, mdlen);
	free(pgp);
	free(md);
}

/* Signing one-group.sif's metadata with both keys gives the reference envelope. */
static void test_dsse_envelope_bytes(void **state)
{
	(void)state;
	struct sifu_err err = {0};
	struct sif_pemkey *k[2] = {0};
	assert_int_equal(sif_pemkey_load(FIX "ed25519-private.pem", true, &k[0], &err), 0);
	assert_int_equal(sif_pemkey_load(FIX "rsa-private.pem", true, &k[1], &err), 0);
	struct sif_image *img = NULL;
	assert_int_equal(sif_open_path(FIX "one-group.sif", false, &img, &err), 0);
	char *md = NULL, *env = NULL;
	size_t mdlen, envlen, reflen;
	assert_int_equal(sif_metadata_json(img, 1, NULL, 0, 0, &md, &mdlen, &err), 0);
	sif_close(img);
	assert_int_equal(sif_dsse_sign(k, 2, md, mdlen, &env, &envlen, &err), 0);
	char *ref = sig_object(FIX "one-group-signed-dsse.sif", 3, &reflen);
	assert_int_equal(envlen, reflen);
	assert_memory_equal(env, ref, envlen);
	assert_true(sif_dsse_is_envelope(env, envlen));

	/* and it verifies, with either public key, and not with a stranger's */
	struct sif_pemkey *pub = NULL;
	assert_int_equal(sif_pemkey_load(FIX "rsa-public.pem", false, &pub, &err), 0);
	char *payload = NULL, *signers = NULL;
	size_t plen;
	assert_int_equal(sif_dsse_verify(env, envlen, &pub, 1, &payload, &plen, &signers, &err), 0);
	assert_int_equal(plen, mdlen);
	assert_memory_equal(payload, md, plen);
	assert_string_equal(signers, sif_pemkey_id(pub));
	free(payload);
	free(signers);
	/* a tampered payload does not verify */
	char *p = strstr(env, "\"payload\":\"") + 11;
	p[5] = p[5] == 'A' ? 'B' : 'A';
	signers = NULL;
	assert_true(sif_dsse_verify(env, envlen, &pub, 1, &payload, &plen, &signers, &err) < 0);
	free(signers);
	sif_pemkey_free(pub);
	sif_pemkey_free(k[0]);
	sif_pemkey_free(k[1]);
	free(md);
	free(env);
	free(ref);
}

static void test_clearsigned_detection(void **state)
{
	(void)state;
	size_t n;
	bool legacy;
	char *b = sig_object(FIX "one-group-signed-legacy.sif", 3, &n);
	assert_true(sif_pgp_is_clearsigned(b, n, &legacy));
	assert_true(legacy);
	free(b);
	b = sig_object(FIX "one-group-signed-pgp.sif", 3, &n);
	assert_true(sif_pgp_is_clearsigned(b, n, &legacy));
	assert_false(legacy);
	assert_false(sif_dsse_is_envelope(b, n));
	free(b);
	b = sig_object(FIX "one-group-signed-dsse.sif", 3, &n);
	assert_false(sif_pgp_is_clearsigned(b, n, &legacy));
	free(b);
}

static int verify_with(const char *path, struct sif_pemkey *k, struct sif_verify_report *rep)
{
	struct sif_verify_opts o = {.keys = &k, .nkeys = 1};
	struct sifu_err err = {0};
	return sif_verify_image(path, &o, rep, &err);
}

static void test_verify_fixture(void **state)
{
	(void)state;
	struct sifu_err err = {0};
	struct sif_pemkey *ed = NULL;
	assert_int_equal(sif_pemkey_load(FIX "ed25519-public.pem", false, &ed, &err), 0);
	struct sif_verify_report rep;
	assert_int_equal(verify_with(FIX "one-group-signed-dsse.sif", ed, &rep), 0);
	assert_int_equal(rep.nsigs, 1);
	assert_int_equal(rep.sigs[0].ncovered, 2);
	assert_int_equal(rep.sigs[0].covered[0], 1);
	assert_int_equal(rep.sigs[0].covered[1], 2);
	assert_true(rep.sigs[0].ok);
	sif_verify_report_free(&rep);
	/* an unsigned image does not verify */
	assert_true(verify_with(FIX "one-group.sif", ed, &rep) < 0);
	assert_true(rep.nproblems >= 1);
	assert_non_null(strstr(rep.problems[0], "not signed"));
	sif_verify_report_free(&rep);
	/* the group is signed, but group 2 of two-groups is not: covered set */
	sif_pemkey_free(ed);
}

/* Signed ranges of one-group-signed-dsse.sif: every byte, flipped, must make
 * verification fail; chosen unsigned bytes must not. */
struct range {
	size_t off, len;
};

static void flip_ranges(const char *src, const struct range *rs, size_t nr, bool must_fail,
                        struct sif_pemkey *k)
{
	size_t n;
	char *orig = slurp(src, &n);
	char tmpl[] = "/tmp/sifu-test-integrity-XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	char path[128];
	snprintf(path, sizeof(path), "%s/img.sif", tmpl);
	size_t tried = 0;
	for (size_t i = 0; i < nr; i++) {
		for (size_t off = rs[i].off; off < rs[i].off + rs[i].len; off++) {
			assert_true(off < n);
			orig[off] ^= (char)0xff;
			spit(path, orig, n);
			orig[off] ^= (char)0xff;
			struct sif_verify_report rep;
			int r = verify_with(path, k, &rep);
			sif_verify_report_free(&rep);
			if (must_fail && r == 0)
				fail_msg("flipping byte %zu still verifies", off);
			if (!must_fail && r != 0)
				fail_msg("flipping unsigned byte %zu breaks verification", off);
			tried++;
		}
	}
	assert_true(tried > 0);
	unlink(path);
	rmdir(tmpl);
	free(orig);
}

static void test_flip_every_signed_byte(void **state)
{
	(void)state;
	struct sifu_err err = {0};
	struct sif_pemkey *ed = NULL;
	assert_int_equal(sif_pemkey_load(FIX "ed25519-public.pem", false, &ed, &err), 0);
	const char *img = FIX "one-group-signed-dsse.sif";
	/* descriptors 1 and 2 are the first two entries of the table at 4096 */
	size_t d1 = 4096, d2 = 4096 + SIF_DESCR_SIZE;
	struct range sig[] = {
	    /* header: launch script, magic, version, image id */
	    {SIF_HDR_LAUNCH, 32},
	    {SIF_HDR_MAGIC, 10},
	    {SIF_HDR_VERSION, 3},
	    {SIF_HDR_ID, 16},
	    /* descriptor fields: datatype, used, id, link, size, ctime, uid, gid, name, extra */
	    {d1 + SIF_D_DATATYPE, 17 - 0},
	    {d1 + SIF_D_SIZE, 8},
	    {d1 + SIF_D_CTIME, 8},
	    {d1 + SIF_D_UID, 16 + SIF_NAME_LEN + SIF_EXTRA_LEN},
	    {d2 + SIF_D_DATATYPE, 17 - 0},
	    {d2 + SIF_D_SIZE, 8},
	    {d2 + SIF_D_CTIME, 8},
	    {d2 + SIF_D_UID, 16 + SIF_NAME_LEN + SIF_EXTRA_LEN},
	    /* the objects: 4 bytes at 32768, 4096 at 36864 */
	    {32768, 4},
	    {36864, 4096},
	};
	flip_ranges(img, sig, ARRAY_SIZE(sig), true, ed);
	struct range unsigned_bytes[] = {
	    {SIF_HDR_CTIME, 16},                          /* header times */
	    {d1 + SIF_D_MTIME, 8}, {d2 + SIF_D_MTIME, 8}, /* descriptor mtimes */
	    {32772, 64},           {36800, 64},           /* padding between the objects */
	};
	flip_ranges(img, unsigned_bytes, ARRAY_SIZE(unsigned_bytes), false, ed);
	sif_pemkey_free(ed);
}

/* Metadata digested with SHA-384 and SHA-512 is written and accepted. */
static void test_sign_verify_other_hashes(void **state)
{
	(void)state;
	struct sifu_err err = {0};
	struct sif_pemkey *priv = NULL, *pub = NULL;
	assert_int_equal(sif_pemkey_load(FIX "ed25519-private.pem", true, &priv, &err), 0);
	assert_int_equal(sif_pemkey_load(FIX "ed25519-public.pem", false, &pub, &err), 0);
	size_t n;
	char *orig = slurp(FIX "one-group.sif", &n);
	char tmpl[] = "/tmp/sifu-test-integrity-XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	char path[128];
	snprintf(path, sizeof(path), "%s/img.sif", tmpl);
	const int types[] = {SIF_HASH_SHA384, SIF_HASH_SHA512};
	const char *names[] = {"sha384:", "sha512:"};
	for (size_t i = 0; i < 2; i++) {
		spit(path, orig, n);
		struct sif_sign_opts o = {
		    .keys = &priv, .nkeys = 1, .hashtype = types[i], .time = INT64_MIN};
		uint32_t *ids = NULL;
		size_t nsig = 0;
		assert_int_equal(sif_sign_image(path, &o, &ids, &nsig, &err), 0);
		assert_int_equal(nsig, 1);
		assert_int_equal(ids[0], 3);
		free(ids);
		struct sif_verify_report rep;
		assert_int_equal(verify_with(path, pub, &rep), 0);
		assert_int_equal(rep.sigs[0].ncovered, 2);
		sif_verify_report_free(&rep);
		/* the payload names the algorithm */
		size_t el;
		char *env = sig_object(path, 3, &el);
		char *payload = NULL, *signers = NULL;
		size_t pl;
		assert_int_equal(sif_dsse_verify(env, el, &pub, 1, &payload, &pl, &signers, &err),
		                 0);
		assert_non_null(strstr(payload, names[i]));
		assert_null(strstr(payload, "sha256:"));
		free(payload);
		free(signers);
		free(env);
	}
	/* a hash the metadata cannot name is refused */
	struct sif_sign_opts bad = {
	    .keys = &priv, .nkeys = 1, .hashtype = SIF_HASH_BLAKE2B, .time = INT64_MIN};
	uint32_t *ids = NULL;
	size_t nsig = 0;
	spit(path, orig, n);
	assert_true(sif_sign_image(path, &bad, &ids, &nsig, &err) < 0);
	free(ids);
	unlink(path);
	rmdir(tmpl);
	free(orig);
	sif_pemkey_free(priv);
	sif_pemkey_free(pub);
}

/* `exec --verify`: the served partition's block digests come out of the
 * verification of the open file, and only when a signature covers it. */
static void test_verify_fd_served_part(void **state)
{
	(void)state;
	struct sifu_err err = {0};
	struct sif_pemkey *ed = NULL;
	assert_int_equal(sif_pemkey_load(FIX "ed25519-public.pem", false, &ed, &err), 0);
	struct sif_verify_opts o = {.keys = &ed, .nkeys = 1};
	int fd = open(FIX "one-group-signed-dsse.sif", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	struct sif_served_part p = {.block = 1024};
	assert_int_equal(sif_verify_fd(fd, "dsse", &o, NULL, &p, &err), 0);
	assert_int_equal(p.id, 2); /* the primary SquashFS partition */
	assert_int_equal(p.fstype, SIF_FS_SQUASH);
	assert_int_equal(p.offset, 36864);
	assert_int_equal(p.size, 4096);
	assert_int_equal(p.nblocks, 4);
	for (size_t i = 0; i < p.nblocks; i++) {
		uint8_t blk[1024], want[32];
		assert_int_equal(pread(fd, blk, sizeof(blk), (off_t)(p.offset + i * 1024)), 1024);
		sif_sha256(blk, sizeof(blk), want);
		assert_memory_equal(p.sha256[i], want, 32);
	}
	sif_served_part_free(&p);
	/* verifying only object 1 does not vouch for the partition */
	o.sif_id = 1;
	p = (struct sif_served_part){.block = 1024};
	struct sif_verify_report rep;
	assert_true(sif_verify_fd(fd, "dsse", &o, &rep, &p, &err) < 0);
	assert_int_equal(rep.nproblems, 1);
	assert_non_null(strstr(rep.problems[0], "primary partition (object 2) is not covered"));
	sif_verify_report_free(&rep);
	assert_null(p.sha256);
	close(fd);
	/* unsigned: refused, nothing left */
	o.sif_id = 0;
	fd = open(FIX "one-group.sif", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	p = (struct sif_served_part){.block = 1024};
	assert_true(sif_verify_fd(fd, "unsigned", &o, NULL, &p, &err) < 0);
	assert_null(p.sha256);
	close(fd);
	sif_pemkey_free(ed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pae),
	    cmocka_unit_test(test_keyids),
	    cmocka_unit_test(test_metadata_matches_reference),
	    cmocka_unit_test(test_dsse_envelope_bytes),
	    cmocka_unit_test(test_clearsigned_detection),
	    cmocka_unit_test(test_verify_fixture),
	    cmocka_unit_test(test_sign_verify_other_hashes),
	    cmocka_unit_test(test_flip_every_signed_byte),
	    cmocka_unit_test(test_verify_fd_served_part),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
