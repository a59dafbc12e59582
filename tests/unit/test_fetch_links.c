/* SPDX-License-Identifier: BSD-3-Clause */
/* fetch/layer.c + squash/: hard links of a layer whose targets an upper layer
 * replaced or deleted, through real tar streams and two passes, read back
 * with libsquashfs's own reader.  (A file of its own so that it merges apart
 * from test_fetch.c.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <sqfs/compressor.h>
#include <sqfs/data_reader.h>
#include <sqfs/dir_reader.h>
#include <sqfs/id_table.h>
#include <sqfs/inode.h>
#include <sqfs/io.h>
#include <sqfs/super.h>

#include "fetch.h"

/* ------------------------------------------------------------ ustar out -- */

struct tar {
	unsigned char *p;
	size_t len, cap;
};

static void tar_room(struct tar *t, size_t n)
{
	if (t->len + n > t->cap) {
		t->cap = (t->len + n) * 2;
		t->p = realloc(t->p, t->cap);
		assert_non_null(t->p);
	}
}

/* One member: TYPE '0' (file with DATA), '1' (hard link to LINK), '5' (dir). */
static void tar_add(struct tar *t, const char *name, char type, const char *data, const char *link)
{
	size_t dlen = type == '0' && data ? strlen(data) : 0;
	size_t pad = (dlen + 511) / 512 * 512;
	tar_room(t, 512 + pad);
	unsigned char *h = t->p + t->len;
	memset(h, 0, 512 + pad);
	assert_true(strlen(name) < 100 && (!link || strlen(link) < 100));
	memcpy(h, name, strlen(name));
	snprintf((char *)h + 100, 8, "%07o", type == '5' ? 0755 : 0640);
	snprintf((char *)h + 108, 8, "%07o", 7);
	snprintf((char *)h + 116, 8, "%07o", 0);
	snprintf((char *)h + 124, 12, "%011o", (unsigned)dlen);
	snprintf((char *)h + 136, 12, "%011o", 1000);
	h[156] = (unsigned char)type;
	if (link)
		memcpy(h + 157, link, strlen(link));
	memcpy(h + 257,
	       "ustar\0"
	       "00",
	       8);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	memcpy(h + 512, data ? data : "", dlen);
	t->len += 512 + pad;
}

static void tar_end(struct tar *t)
{
	tar_room(t, 1024);
	memset(t->p + t->len, 0, 1024);
	t->len += 1024;
}

static int mem_fd(const struct tar *t)
{
	char path[] = "/tmp/sifu-test-links-XXXXXX";
	int fd = mkostemp(path, O_CLOEXEC);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, t->p, t->len), (ssize_t)t->len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* ---------------------------------------------------------------- image -- */

struct img {
	char path[64];
	int fd;
	struct sq_image *sq;
};

static void img_new(struct img *m)
{
	snprintf(m->path, sizeof(m->path), "/tmp/sifu-test-links-sq-XXXXXX");
	m->fd = mkostemp(m->path, O_CLOEXEC);
	assert_true(m->fd >= 0);
	struct sq_opts o = {.workers = 2};
	struct sifu_err err = {0};
	assert_int_equal(sq_image_create(m->fd, 0, &o, &m->sq, &err), 0);
}

static void img_free(struct img *m)
{
	sq_image_free(m->sq);
	close(m->fd);
	unlink(m->path);
}

/* Applies the layers, the topmost first (as fetch/pull.c does). */
static int apply(struct img *m, struct tar *layers, size_t n, struct sifu_err *err)
{
	for (size_t i = 0; i < n; i++) {
		sq_image_next_layer(m->sq);
		tar_end(&layers[i]);
		int fd = mem_fd(&layers[i]);
		int r = fetch_layer_apply(fd, NULL, NULL, m->sq, NULL, NULL, NULL, err);
		close(fd);
		free(layers[i].p);
		if (r < 0)
			return r;
	}
	uint64_t size;
	return sq_image_finish(m->sq, &size, err);
}

struct reader {
	sqfs_file_t *file;
	sqfs_super_t super;
	sqfs_compressor_t *cmp;
	sqfs_dir_reader_t *dr;
	sqfs_data_reader_t *data;
	sqfs_inode_generic_t *root;
};

static void reader_open(struct reader *r, const char *path)
{
	memset(r, 0, sizeof(*r));
	r->file = sqfs_open_file(path, SQFS_FILE_OPEN_READ_ONLY);
	assert_non_null(r->file);
	assert_int_equal(sqfs_super_read(&r->super, r->file), 0);
	sqfs_compressor_config_t cfg;
	sqfs_compressor_config_init(&cfg, r->super.compression_id, r->super.block_size,
	                            SQFS_COMP_FLAG_UNCOMPRESS);
	assert_int_equal(sqfs_compressor_create(&cfg, &r->cmp), 0);
	r->dr = sqfs_dir_reader_create(&r->super, r->cmp, r->file, 0);
	assert_non_null(r->dr);
	r->data = sqfs_data_reader_create(r->file, r->super.block_size, r->cmp, 0);
	assert_int_equal(sqfs_data_reader_load_fragment_table(r->data, &r->super), 0);
	assert_int_equal(sqfs_dir_reader_get_root_inode(r->dr, &r->root), 0);
}

static void reader_close(struct reader *r)
{
	sqfs_free(r->root);
	sqfs_destroy(r->data);
	sqfs_destroy(r->dr);
	sqfs_destroy(r->cmp);
	sqfs_destroy(r->file);
}

/* PATH's content (or "<none>"), and its inode number in *INO. */
static const char *cat(struct reader *r, const char *path, uint32_t *ino)
{
	static char buf[128];
	sqfs_inode_generic_t *in = NULL;
	if (sqfs_dir_reader_find_by_path(r->dr, r->root, path, &in) != 0)
		return "<none>";
	sqfs_u64 size;
	if (sqfs_inode_get_file_size(in, &size) != 0 || size >= sizeof(buf)) {
		sqfs_free(in);
		return "<not a small file>";
	}
	assert_int_equal(sqfs_data_reader_read(r->data, in, 0, buf, size), (sqfs_s32)size);
	buf[size] = 0;
	if (ino)
		*ino = in->base.inode_number;
	sqfs_free(in);
	return buf;
}

/* ---------------------------------------------------------------- tests -- */

/* Links whose target an upper layer replaced (or whited out), links to such
 * links and to links an upper layer hides, and a later entry of the link's
 * name.  Fails on a60965e: "c" (a link to a deferred link) and "c2" (a link
 * to a hidden link) were refused, and the deferred "x" overwrote the later
 * regular file "x". */
static void test_deferred_chains(void **state)
{
	struct tar l[2] = {{0}};
	tar_add(&l[0], "t", '0', "new", NULL);
	tar_add(&l[0], ".wh.w", '0', "", NULL);
	tar_add(&l[0], "hl", '0', "top", NULL);
	tar_add(&l[1], "./", '5', NULL, NULL);
	tar_add(&l[1], "t", '0', "old t", NULL);
	tar_add(&l[1], "w", '0', "old w", NULL);
	tar_add(&l[1], "hl", '1', NULL, "w");  /* hidden by the upper hl */
	tar_add(&l[1], "l1", '1', NULL, "t");  /* deferred */
	tar_add(&l[1], "l2", '1', NULL, "/t"); /* absolute: the tree's /t */
	tar_add(&l[1], "c", '1', NULL, "l1");  /* a link to a deferred link */
	tar_add(&l[1], "c2", '1', NULL, "hl"); /* a link to a hidden link */
	tar_add(&l[1], "l3", '1', NULL, "w");  /* whited out above */
	tar_add(&l[1], "x", '1', NULL, "t");   /* deferred, then replaced */
	tar_add(&l[1], "x", '0', "later x", NULL);
	struct img m;
	img_new(&m);
	struct sifu_err err = {0};
	int r = apply(&m, l, 2, &err);
	if (r < 0)
		fail_msg("%s", err.chain[0]);
	struct reader rd;
	reader_open(&rd, m.path);
	uint32_t t = 1, w = 2, i = 3; /* distinct: a cat() that sets nothing fails */
	assert_string_equal(cat(&rd, "t", NULL), "new");
	assert_string_equal(cat(&rd, "w", NULL), "<none>");
	assert_string_equal(cat(&rd, "hl", NULL), "top");
	assert_string_equal(cat(&rd, "l1", &t), "old t");
	assert_string_equal(cat(&rd, "l2", &i), "old t");
	assert_int_equal(i, t);
	assert_string_equal(cat(&rd, "c", &i), "old t");
	assert_int_equal(i, t);
	assert_string_equal(cat(&rd, "l3", &w), "old w");
	assert_string_equal(cat(&rd, "c2", &i), "old w");
	assert_int_equal(i, w);
	assert_int_not_equal(w, t);
	assert_string_equal(cat(&rd, "x", NULL), "later x");
	reader_close(&rd);
	img_free(&m);
}

/* A deferred link whose target is not in the layer, and one whose target
 * climbs out through a path an upper layer replaced: one clear error each,
 * naming the link. */
static void test_deferred_refused(void **state)
{
	struct tar l[2] = {{0}};
	tar_add(&l[0], "t", '0', "new", NULL);
	tar_add(&l[1], "l", '1', NULL, "t"); /* the layer has no t */
	tar_add(&l[1], "u", '0', "u", NULL);
	struct img m;
	img_new(&m);
	struct sifu_err err = {0};
	assert_true(apply(&m, l, 2, &err) < 0);
	assert_non_null(strstr(err.chain[0], "hard link \"l\" points to \"t\""));
	img_free(&m);

	struct tar k[2] = {{0}};
	tar_add(&k[0], "f", '0', "a file above", NULL);
	tar_add(&k[1], "esc", '1', NULL, "f/../../etc/passwd");
	img_new(&m);
	err = (struct sifu_err){0};
	assert_true(apply(&m, k, 2, &err) < 0);
	assert_int_equal(err.code, SIFU_E_CORRUPT);
	assert_non_null(strstr(err.chain[0], "\"esc\""));
	img_free(&m);
}

/* 20k links whose targets an upper layer replaced: the link table looks at
 * a bounded number of slots per entry over both passes (a60965e compared
 * each file of the second pass with each deferred link: N * N).  Counted,
 * not timed. */
static void test_deferred_many(void **state)
{
	enum { N = 20000 };
	struct tar l[2] = {{0}};
	char p[32], t[32];
	for (int i = 0; i < N; i++) {
		snprintf(t, sizeof(t), "f%d", i);
		tar_add(&l[0], t, '0', "new", NULL);
		tar_add(&l[1], t, '0', "old", NULL);
		snprintf(p, sizeof(p), "l%d", i);
		tar_add(&l[1], p, '1', NULL, t);
	}
	struct img m;
	img_new(&m);
	struct sifu_err err = {0};
	sq_image_next_layer(m.sq);
	tar_end(&l[0]);
	int fd = mem_fd(&l[0]);
	assert_int_equal(fetch_layer_apply(fd, NULL, NULL, m.sq, NULL, NULL, NULL, &err), 0);
	close(fd);
	sq_image_next_layer(m.sq);
	tar_end(&l[1]);
	fd = mem_fd(&l[1]);
	struct fetch_layer_stats st;
	assert_int_equal(fetch_layer_apply(fd, NULL, NULL, m.sq, NULL, NULL, &st, &err), 0);
	close(fd);
	free(l[0].p);
	free(l[1].p);
	assert_int_equal(st.entries, 2 * N);
	struct sq_stats sst;
	sq_image_stats(m.sq, &sst);
	if (sst.link_probes > 16 * (uint64_t)N)
		fail_msg("%llu probes for %d links: not linear",
		         (unsigned long long)sst.link_probes, N);
	assert_int_equal(sst.files, 2 * N); /* N new files, N links' old data */
	uint64_t size;
	assert_int_equal(sq_image_finish(m.sq, &size, &err), 0);
	struct reader rd;
	reader_open(&rd, m.path);
	assert_string_equal(cat(&rd, "l12345", NULL), "old");
	assert_string_equal(cat(&rd, "f12345", NULL), "new");
	reader_close(&rd);
	img_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_deferred_chains),
	    cmocka_unit_test(test_deferred_refused),
	    cmocka_unit_test(test_deferred_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
