/* SPDX-License-Identifier: BSD-3-Clause */
/* fuse/: the chunk cache and the decoder layer, without FUSE.  Images come
 * from tests/fuzz/corpus/squashfs (made by make_squashfs_corpus.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "fuse_priv.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define CORPUS SIFU_SOURCE_ROOT "/tests/fuzz/corpus/squashfs/"

static uint8_t *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	uint8_t *p = sifu_xmalloc((size_t)st.st_size);
	assert_int_equal(pread(fd, p, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return p;
}

/* ---------------------------------------------------------- the cache */

struct counting {
	struct sqf_backend b;
	uint8_t *data;
	unsigned reads;
	int fail_next; /* fail this many reads */
	pthread_mutex_t lock;
};

static int counting_pread(struct sqf_backend *b, void *buf, size_t len, uint64_t off)
{
	struct counting *c = (struct counting *)b;
	pthread_mutex_lock(&c->lock);
	c->reads++;
	bool fail = c->fail_next > 0 && c->fail_next--;
	pthread_mutex_unlock(&c->lock);
	if (fail)
		return -EIO;
	if (off > b->size || len > b->size - off)
		return -EIO;
	usleep(200); /* let threads pile up on a chunk in flight */
	memcpy(buf, c->data + off, len);
	return 0;
}

static void counting_init(struct counting *c, size_t size)
{
	memset(c, 0, sizeof(*c));
	c->b.pread = counting_pread;
	c->b.size = size;
	c->data = sifu_xmalloc(size);
	for (size_t i = 0; i < size; i++)
		c->data[i] = (uint8_t)(i * 7 + i / 4096);
	pthread_mutex_init(&c->lock, NULL);
}

static void test_cache_reads_and_bounds(void **state)
{
	struct counting be;
	counting_init(&be, 10 * 4096 + 123);
	struct sqf_chunkcache *c = sqf_chunkcache_new(&be.b, 4096, 4 * 4096, 0);
	uint8_t buf[3 * 4096 + 10];
	/* across chunk edges, up to the last odd-sized chunk */
	for (uint64_t off = 0; off + sizeof(buf) <= be.b.size; off += 1000) {
		assert_int_equal(sqf_chunkcache_read(c, buf, sizeof(buf), off), 0);
		assert_memory_equal(buf, be.data + off, sizeof(buf));
		assert_true(sqf_chunkcache_bytes(c) <= 4 * 4096 + 4096); /* bound (+ one in use) */
	}
	assert_int_equal(sqf_chunkcache_read(c, buf, 200, be.b.size - 123),
	                 -EIO); /* past the end */
	assert_int_equal(sqf_chunkcache_read(c, buf, 123, be.b.size - 123), 0);
	assert_memory_equal(buf, be.data + be.b.size - 123, 123);
	struct sqf_stats st;
	sqf_chunkcache_stats(c, &st);
	assert_true(st.cache_hits > 0 && st.cache_misses > 0);
	assert_int_equal(st.backend_requests, be.reads);
	sqf_chunkcache_free(c);
	free(be.data);
}

static void test_cache_failure_is_not_sticky(void **state)
{
	struct counting be;
	counting_init(&be, 8192);
	struct sqf_chunkcache *c = sqf_chunkcache_new(&be.b, 4096, 1 << 20, 0);
	uint8_t buf[100];
	be.fail_next = 1;
	assert_int_equal(sqf_chunkcache_read(c, buf, sizeof(buf), 10), -EIO);
	assert_int_equal(sqf_chunkcache_read(c, buf, sizeof(buf), 10), 0);
	assert_memory_equal(buf, be.data + 10, sizeof(buf));
	sqf_chunkcache_free(c);
	free(be.data);
}

static unsigned advised;
static uint64_t advised_off, advised_len;
static void counting_advise(struct sqf_backend *b, uint64_t off, uint64_t len)
{
	advised++;
	advised_off = off;
	advised_len = len;
}

/* Page-cache mode: every read goes to the backend at its exact range, no
 * chunk is kept, read-ahead is a hint, the pin is one exact read. */
static void test_cache_direct_mode(void **state)
{
	struct counting be;
	counting_init(&be, 10 * 4096 + 123);
	be.b.advise = counting_advise;
	struct sqf_chunkcache *c = sqf_chunkcache_new(&be.b, 4096, 4 * 4096, 4);
	sqf_chunkcache_set_direct(c);
	assert_true(sqf_chunkcache_is_direct(c));
	uint8_t buf[5000];
	assert_int_equal(sqf_chunkcache_read(c, buf, 100, 4000), 0);
	assert_memory_equal(buf, be.data + 4000, 100);
	assert_int_equal(sqf_chunkcache_read(c, buf, sizeof(buf), 4000), 0); /* again: no cache */
	assert_memory_equal(buf, be.data + 4000, sizeof(buf));
	assert_int_equal(be.reads, 2);
	assert_int_equal(sqf_chunkcache_bytes(c), 0);
	assert_int_equal(sqf_chunkcache_read(c, buf, 200, be.b.size - 123), -EIO);
	advised = 0;
	sqf_chunkcache_prefetch(c, 8192, 1 << 20); /* clipped to the end */
	assert_int_equal(advised, 1);
	assert_int_equal(advised_off, 8192);
	assert_int_equal(advised_len, be.b.size - 8192);
	assert_int_equal(sqf_chunkcache_pin(c, 9 * 4096, 4096 + 123), 0);
	assert_int_equal(be.reads, 3);
	assert_int_equal(sqf_chunkcache_read(c, buf, 50, 9 * 4096 + 10), 0); /* from the pin */
	assert_memory_equal(buf, be.data + 9 * 4096 + 10, 50);
	assert_int_equal(be.reads, 3);
	struct sqf_stats st;
	sqf_chunkcache_stats(c, &st);
	assert_true(st.pagecache);
	assert_int_equal(st.backend_requests, 3);
	assert_int_equal(st.backend_bytes, 100 + sizeof(buf) + 4096 + 123);
	sqf_chunkcache_free(c);
	free(be.data);
}

struct reader_arg {
	struct sqf_chunkcache *c;
	struct counting *be;
	unsigned seed;
	int bad;
};

static void *reader(void *p)
{
	struct reader_arg *a = p;
	uint8_t buf[9000];
	for (int i = 0; i < 300; i++) {
		uint64_t off = (uint64_t)rand_r(&a->seed) % (a->be->b.size - sizeof(buf));
		size_t len = 1 + (size_t)rand_r(&a->seed) % sizeof(buf);
		if (sqf_chunkcache_read(a->c, buf, len, off) != 0 ||
		    memcmp(buf, a->be->data + off, len))
			a->bad++;
	}
	return NULL;
}

static void test_cache_threads_one_fetch_per_chunk(void **state)
{
	struct counting be;
	counting_init(&be, 64 * 4096);
	/* big enough to hold everything: every chunk must be fetched once */
	struct sqf_chunkcache *c = sqf_chunkcache_new(&be.b, 4096, 1 << 20, 2);
	pthread_t th[8];
	struct reader_arg args[8];
	for (int i = 0; i < 8; i++) {
		args[i] = (struct reader_arg){c, &be, (unsigned)i + 1, 0};
		pthread_create(&th[i], NULL, reader, &args[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].bad, 0);
	}
	assert_true(be.reads <= 64);
	sqf_chunkcache_free(c);

	/* and a tiny cache: constant eviction, still the right bytes */
	c = sqf_chunkcache_new(&be.b, 4096, 4 * 4096, 2);
	for (int i = 0; i < 8; i++) {
		args[i] = (struct reader_arg){c, &be, (unsigned)i + 100, 0};
		pthread_create(&th[i], NULL, reader, &args[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].bad, 0);
	}
	sqf_chunkcache_free(c);
	free(be.data);
}

static void test_cache_readahead_and_pin(void **state)
{
	struct counting be;
	counting_init(&be, 32 * 4096);
	struct sqf_chunkcache *c = sqf_chunkcache_new(&be.b, 4096, 1 << 20, 2);
	sqf_chunkcache_prefetch(c, 0, 8 * 4096);
	uint8_t buf[4096];
	for (int i = 0; i < 8; i++) {
		assert_int_equal(sqf_chunkcache_read(c, buf, sizeof(buf), (uint64_t)i * 4096), 0);
		assert_memory_equal(buf, be.data + i * 4096, sizeof(buf));
	}
	struct sqf_stats st;
	sqf_chunkcache_stats(c, &st);
	/* each chunk was either read ahead or stolen from the queue */
	assert_int_equal(st.readahead_hits + st.cache_misses, 8);
	assert_int_equal(be.reads, 8);
	/* a pinned region: served from memory, no more backend reads */
	assert_int_equal(sqf_chunkcache_pin(c, 16 * 4096, 10 * 4096 + 5), 0);
	unsigned before = be.reads;
	assert_int_equal(sqf_chunkcache_read(c, buf, 100, 20 * 4096 + 7), 0);
	assert_memory_equal(buf, be.data + 20 * 4096 + 7, 100);
	assert_int_equal(be.reads, before);
	sqf_chunkcache_free(c);
	free(be.data);
}

/* ----------------------------------------------------------- the image */

static struct sqf_image *open_fixture(const char *name, uint8_t **data, enum sqf_prefetch pf)
{
	size_t len;
	char path[512];
	snprintf(path, sizeof(path), CORPUS "%s", name);
	*data = slurp(path, &len);
	struct sqf_options o;
	sqf_options_default(&o);
	o.prefetch = pf;
	o.chunk_size = 4096;
	struct sqf_image *img = NULL;
	struct sifu_err err = {0};
	assert_int_equal(sqf_image_open_backend(sqf_backend_mem(*data, len), &o, &img, &err), 0);
	return img;
}

static uint64_t lookup_path(struct sqf_image *img, const char *path)
{
	uint64_t ref = sqf_root_ref(img);
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *save = NULL, *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save))
		assert_int_equal(sqf_lookup(img, ref, c, &ref), 0);
	return ref;
}

static sqfs_inode_generic_t *inode_at(struct sqf_image *img, const char *path)
{
	sqfs_inode_generic_t *ino;
	assert_int_equal(sqf_inode_read(img, lookup_path(img, path), &ino), 0);
	return ino;
}

static void check_tree(struct sqf_image *img, bool xattrs)
{
	/* root listing, sorted */
	struct sqf_dir *d;
	assert_int_equal(sqf_dir_get(img, sqf_root_ref(img), &d), 0);
	assert_int_equal(d->n, 4);
	assert_true(d->sorted);
	const char *names[] = {"dir", "empty", "hello", "zeros"};
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(d->ents[i].name, names[i]);
	assert_int_equal(sqf_dir_find(d, "hello", 5), 2);
	assert_int_equal(sqf_dir_find(d, "hell", 4), -1);
	sqf_dir_put(img, d);
	uint64_t ref;
	assert_int_equal(sqf_lookup(img, sqf_root_ref(img), "nope", &ref), -ENOENT);
	assert_int_equal(sqf_lookup(img, sqf_root_ref(img), "..", &ref), -ENOENT);
	assert_int_equal(sqf_lookup(img, lookup_path(img, "hello"), "x", &ref), -ENOTDIR);

	/* a small file in a fragment, its hard link, stat */
	sqfs_inode_generic_t *ino = inode_at(img, "hello");
	struct stat st;
	assert_int_equal(sqf_inode_stat(img, ino, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 13);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mtime, 1700000000);
	char buf[20000];
	assert_int_equal(sqf_read(img, ino, 0, buf, sizeof(buf)), 13);
	assert_memory_equal(buf, "hello, world\n", 13);
	assert_int_equal(sqf_read(img, ino, 7, buf, 3), 3);
	assert_memory_equal(buf, "wor", 3);
	assert_int_equal(sqf_read(img, ino, 13, buf, 3), 0);
	ssize_t n = sqf_listxattr(img, ino, buf, sizeof(buf));
	if (xattrs) {
		assert_int_equal(n, sizeof("user.greeting"));
		assert_string_equal(buf, "user.greeting");
		assert_int_equal(sqf_getxattr(img, ino, "user.greeting", buf, sizeof(buf)), 2);
		assert_memory_equal(buf, "hi", 2);
		assert_int_equal(sqf_getxattr(img, ino, "user.greeting", NULL, 0), 2);
		assert_int_equal(sqf_getxattr(img, ino, "user.greeting", buf, 1), -ERANGE);
		assert_int_equal(sqf_listxattr(img, ino, buf, 3), -ERANGE);
	} else {
		assert_int_equal(n, 0);
	}
	assert_int_equal(sqf_getxattr(img, ino, "user.other", buf, sizeof(buf)), -ENODATA);
	uint32_t inum = (uint32_t)st.st_ino;
	sqfs_free(ino);
	ino = inode_at(img, "dir/hello-link");
	assert_int_equal(sqf_inode_stat(img, ino, &st), 0);
	assert_int_equal(st.st_ino, inum);
	sqfs_free(ino);

	/* blocks plus a tail, read at odd offsets */
	ino = inode_at(img, "dir/numbers");
	assert_int_equal(sqf_inode_stat(img, ino, &st), 0);
	assert_int_equal(st.st_size, 13893);
	static char want[14000];
	size_t w = 0;
	for (int i = 1; i <= 3000; i++)
		w += (size_t)snprintf(want + w, sizeof(want) - w, "%d\n", i);
	assert_int_equal(w, 13893);
	for (uint64_t off = 0; off < 13893; off += 1111) {
		ssize_t got = sqf_read(img, ino, off, buf, 5000);
		assert_int_equal(got, off + 5000 <= 13893 ? 5000 : 13893 - off);
		assert_memory_equal(buf, want + off, (size_t)got);
	}
	sqf_readahead(img, ino, 0, 13893); /* harmless without workers or with */
	sqfs_free(ino);

	/* zeros (sparse blocks) */
	ino = inode_at(img, "zeros");
	assert_int_equal(sqf_read(img, ino, 0, buf, 5000), 5000);
	for (int i = 0; i < 5000; i++)
		assert_int_equal(buf[i], 0);
	sqfs_free(ino);

	/* symlink */
	ino = inode_at(img, "dir/sym");
	char *target;
	assert_int_equal(sqf_readlink(ino, &target), 0);
	assert_string_equal(target, "../hello");
	assert_int_equal(sqf_inode_stat(img, ino, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(st.st_size, 8);
	free(target);
	sqfs_free(ino);

	/* empty dir */
	assert_int_equal(sqf_dir_get(img, lookup_path(img, "empty"), &d), 0);
	assert_int_equal(d->n, 0);
	sqf_dir_put(img, d);
}

static void test_image_every_compressor(void **state)
{
	const char *imgs[] = {"tree-gzip.sqfs", "tree-xz.sqfs",   "tree-lzo.sqfs",
	                      "tree-lz4.sqfs",  "tree-zstd.sqfs", "tree-nofrag.sqfs"};
	for (size_t i = 0; i < ARRAY_SIZE(imgs); i++) {
		for (int pf = SQF_PREFETCH_NONE; pf <= SQF_PREFETCH_ALL; pf++) {
			uint8_t *data;
			struct sqf_image *img = open_fixture(imgs[i], &data, (enum sqf_prefetch)pf);
			check_tree(img, strcmp(imgs[i], "tree-nofrag.sqfs") != 0);
			struct sqf_stats st;
			sqf_image_stats(img, &st);
			assert_true(st.backend_requests > 0);
			sqf_image_close(img);
			free(data);
		}
	}
}

static void test_image_owner_self(void **state)
{
	size_t len;
	uint8_t *data = slurp(CORPUS "tree-zstd.sqfs", &len);
	struct sqf_options o;
	sqf_options_default(&o);
	o.owner_self = true;
	o.uid = 4242;
	o.gid = 4343;
	struct sqf_image *img;
	struct sifu_err err = {0};
	assert_int_equal(sqf_image_open_backend(sqf_backend_mem(data, len), &o, &img, &err), 0);
	sqfs_inode_generic_t *ino = inode_at(img, "hello");
	struct stat st;
	assert_int_equal(sqf_inode_stat(img, ino, &st), 0);
	assert_int_equal(st.st_uid, 4242);
	assert_int_equal(st.st_gid, 4343);
	sqfs_free(ino);
	sqf_image_close(img);
	free(data);
}

static void test_image_rejects_garbage(void **state)
{
	size_t len;
	uint8_t *data = slurp(CORPUS "tree-gzip.sqfs", &len);
	struct sqf_image *img;
	struct sifu_err err = {0};
	/* truncated */
	assert_true(sqf_image_open_backend(sqf_backend_mem(data, 200), NULL, &img, &err) < 0);
	assert_int_equal(err.code, SIFU_E_RANGE);
	/* bad magic */
	uint8_t *bad = sifu_xmalloc(len);
	memcpy(bad, data, len);
	bad[0] ^= 1;
	sifu_err_clear(&err);
	assert_true(sqf_image_open_backend(sqf_backend_mem(bad, len), NULL, &img, &err) < 0);
	assert_int_equal(err.code, SIFU_E_CORRUPT);
	/* root inode reference out of range */
	memcpy(bad, data, len);
	/* a loop, not memset: gcc 12 with UBSan's nonnull-attribute check
	 * warns of an out-of-bounds memset here (a false -Warray-bounds) */
	for (size_t k = 32; k < 40; k++)
		bad[k] = 0x7f;
	sifu_err_clear(&err);
	assert_true(sqf_image_open_backend(sqf_backend_mem(bad, len), NULL, &img, &err) < 0);
	/* unknown compressor */
	memcpy(bad, data, len);
	bad[20] = 42;
	sifu_err_clear(&err);
	assert_true(sqf_image_open_backend(sqf_backend_mem(bad, len), NULL, &img, &err) < 0);
	free(bad);
	free(data);
}

/* ------------------------------------------------------ the block cache */

/* Open the fixture NAME from its file with the block cache in DIRFD, read
 * the whole tree, close; the block cache's counters in *ST. */
static struct sqf_image *kept_open(const char *name, int dirfd, uint64_t max)
{
	int fd = open(name, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	struct stat fst;
	assert_int_equal(fstat(fd, &fst), 0);
	struct sqf_options o;
	sqf_options_default(&o);
	o.block_cache_dir = dirfd;
	o.block_cache_max = max;
	struct sqf_image *img = NULL;
	struct sifu_err err = {0};
	assert_int_equal(sqf_image_open(fd, 0, (uint64_t)fst.st_size, &o, &img, &err), 0);
	close(fd);
	return img;
}

static void kept_run(const char *name, int dirfd, uint64_t max, struct sqf_stats *st)
{
	struct sqf_image *img = kept_open(name, dirfd, max);
	check_tree(img, true);
	sqf_image_stats(img, st);
	sqf_image_close(img);
}

/* The one cache file in DIRFD: its name into NAME, its size returned. */
static off_t kept_file(int dirfd, char *name, size_t len)
{
	DIR *d = fdopendir(fcntl(dirfd, F_DUPFD_CLOEXEC, 0));
	assert_non_null(d);
	rewinddir(d); /* the duplicate shares the last listing's offset */
	struct dirent *de;
	int n = 0;
	off_t size = -1;
	while ((de = readdir(d))) {
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		assert_int_equal(fstatat(dirfd, de->d_name, &st, 0), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		snprintf(name, len, "%.*s", (int)len - 1, de->d_name);
		size = st.st_size;
		n++;
	}
	closedir(d);
	assert_int_equal(n, 1);
	return size;
}

static int truncate_at(int dirfd, const char *name, off_t len)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);
	int r = fd >= 0 ? ftruncate(fd, len) : -1;
	if (fd >= 0)
		close(fd);
	return r;
}

static void test_block_cache(void **state)
{
	char dir[] = "/tmp/sifu-test-kept.XXXXXX";
	assert_non_null(mkdtemp(dir));
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dirfd >= 0);
	const char *img = CORPUS "tree-gzip.sqfs";
	struct sqf_stats st;
	char name[64];

	/* first open: every block decompressed, and kept */
	kept_run(img, dirfd, 1 << 20, &st);
	assert_int_equal(st.kept_hits, 0);
	assert_true(st.kept_misses > 0);
	assert_true(st.kept_added > 0);
	off_t size = kept_file(dirfd, name, sizeof(name));
	assert_int_equal(size, 128 + (off_t)st.kept_added);

	/* the next: found, nothing added, the same data (check_tree) */
	uint64_t blocks = st.kept_misses;
	kept_run(img, dirfd, 1 << 20, &st);
	assert_int_equal(st.kept_hits, blocks);
	assert_int_equal(st.kept_misses, 0);
	assert_int_equal(st.kept_added, 0);
	assert_int_equal(kept_file(dirfd, name, sizeof(name)), size);

	/* a damaged block is not used: its CRC fails, it is decompressed
	 * again, the data read stays right, and the file is dropped */
	int fd = openat(dirfd, name, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	uint8_t byte;
	assert_int_equal(pread(fd, &byte, 1, 128 + 32 + 3), 1);
	byte ^= 0x40;
	assert_int_equal(pwrite(fd, &byte, 1, 128 + 32 + 3), 1);
	close(fd);
	kept_run(img, dirfd, 1 << 20, &st);
	assert_int_equal(st.kept_hits, blocks - 1);
	assert_int_equal(st.kept_misses, 1);
	assert_int_equal(st.kept_added, 0);
	assert_int_equal(faccessat(dirfd, name, F_OK, 0), -1);
	/* the next start makes a new one */
	kept_run(img, dirfd, 1 << 20, &st);
	assert_int_equal(st.kept_misses, blocks);
	assert_int_equal(kept_file(dirfd, name, sizeof(name)), size);

	/* a torn last record (a write cut short) is ignored */
	assert_int_equal(truncate_at(dirfd, name, size - 5), 0);
	kept_run(img, dirfd, 1 << 20, &st);
	assert_int_equal(st.kept_hits, blocks - 1);
	assert_int_equal(st.kept_misses, 1);

	/* the bound holds: a cache already at it takes nothing more */
	assert_int_equal(unlinkat(dirfd, name, 0), 0);
	kept_run(img, dirfd, 200, &st);
	assert_int_equal(st.kept_added, 0);
	assert_int_equal(kept_file(dirfd, name, sizeof(name)), 128);

	/* a file in the cache's name that is not this image's is left alone */
	assert_int_equal(unlinkat(dirfd, name, 0), 0);
	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	static const char junk[256] = "SIFUBLK1 but not this image";
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	kept_run(img, dirfd, 1 << 20, &st);
	assert_int_equal(st.kept_hits + st.kept_added, 0);
	assert_int_equal(kept_file(dirfd, name, sizeof(name)), 256);

	assert_int_equal(unlinkat(dirfd, name, 0), 0);

	/* two starts at once: the second finds what the first added after it
	 * opened the file, instead of inflating (and adding) it again */
	struct sqf_image *a = kept_open(img, dirfd, 1 << 20);
	struct sqf_image *b = kept_open(img, dirfd, 1 << 20);
	check_tree(a, true);
	check_tree(b, true);
	struct sqf_stats sb;
	sqf_image_stats(a, &st);
	sqf_image_stats(b, &sb);
	assert_int_equal(st.kept_misses, blocks);
	assert_int_equal(sb.kept_hits, blocks);
	assert_int_equal(sb.kept_added, 0);
	sqf_image_close(a);
	sqf_image_close(b);
	assert_int_equal(kept_file(dirfd, name, sizeof(name)), size);

	assert_int_equal(unlinkat(dirfd, name, 0), 0);
	close(dirfd);
	assert_int_equal(rmdir(dir), 0);
}

/* A block cache made for other bytes than the image now holds (an image
 * rewritten in place, same size, mtime put back) is not used: here the
 * first record's copy of its source differs from the image (its data still
 * passes its CRC, as after a rewrite), so that block is inflated from
 * the image, the others still come from the cache, and the file is
 * dropped for the next start to make anew. */
static void test_block_cache_stale(void **state)
{
	char dir[] = "/tmp/sifu-test-kept.XXXXXX";
	assert_non_null(mkdtemp(dir));
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dirfd >= 0);
	const char *img = CORPUS "tree-gzip.sqfs";
	struct sqf_stats st;
	char name[64];
	kept_run(img, dirfd, 1 << 20, &st);
	uint64_t blocks = st.kept_misses;
	assert_true(blocks > 1);
	kept_file(dirfd, name, sizeof(name));

	int fd = openat(dirfd, name, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	uint8_t rec[32];
	assert_int_equal(pread(fd, rec, sizeof(rec), 128), (ssize_t)sizeof(rec));
	uint32_t len, csize;
	memcpy(&len, rec + 4, 4);
	memcpy(&csize, rec + 16, 4);
	uint32_t slen = csize & ((1u << 24) - 1);
	off_t at = 128 + 32 + (off_t)((len + 7) & ~7u) + slen / 2; /* in its source */
	uint8_t *body = sifu_xmalloc(1);
	assert_int_equal(pread(fd, body, 1, at), 1);
	body[0] ^= 0x01;
	assert_int_equal(pwrite(fd, body, 1, at), 1);
	free(body);
	close(fd);

	kept_run(img, dirfd, 1 << 20, &st); /* check_tree: the image's bytes */
	assert_int_equal(st.kept_hits, blocks - 1);
	assert_int_equal(st.kept_misses, 1);
	assert_int_equal(st.kept_added, 0);
	assert_int_equal(faccessat(dirfd, name, F_OK, 0), -1);
	kept_run(img, dirfd, 1 << 20, &st);
	assert_int_equal(st.kept_misses, blocks);
	kept_run(img, dirfd, 1 << 20, &st);
	assert_int_equal(st.kept_hits, blocks);

	assert_int_equal(unlinkat(dirfd, name, 0), 0);
	close(dirfd);
	assert_int_equal(rmdir(dir), 0);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	chmod(p, 0700);
	return remove(p);
}

static void test_extract(void **state)
{
	uint8_t *data;
	struct sqf_image *img = open_fixture("tree-lz4.sqfs", &data, SQF_PREFETCH_META);
	char dir[] = "/tmp/sifu-test-fuse-XXXXXX";
	assert_non_null(mkdtemp(dir));
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	struct sifu_err err = {0};
	assert_int_equal(sqf_extract(img, dfd, &err), 0);
	struct stat a, b;
	assert_int_equal(fstatat(dfd, "hello", &a, 0), 0);
	assert_int_equal(fstatat(dfd, "dir/hello-link", &b, 0), 0);
	assert_int_equal(a.st_ino, b.st_ino); /* hard link kept */
	assert_int_equal(a.st_mtime, 1700000000);
	char buf[64];
	ssize_t n = readlinkat(dfd, "dir/sym", buf, sizeof(buf));
	assert_int_equal(n, 8);
	assert_memory_equal(buf, "../hello", 8);
	assert_int_equal(fstatat(dfd, "dir/numbers", &a, 0), 0);
	assert_int_equal(a.st_size, 13893);
	assert_int_equal(fstatat(dfd, "zeros", &a, 0), 0);
	assert_int_equal(a.st_size, 5000);
	/* a second extraction onto existing files must not overwrite them */
	assert_true(sqf_extract(img, dfd, &err) < 0);
	close(dfd);
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	sqf_image_close(img);
	free(data);
}

/* The launcher's contract: it mounts a /dev/fuse fd itself with mount(2)
 * inside a user namespace, then hands the fd to sqf_server_start.  Done in a
 * child (unshare needs a single-threaded process); skipped where the kernel
 * does not allow unprivileged user namespaces or FUSE mounts in them. */
static int serve_in_userns(bool stop_first)
{
	uid_t uid = getuid();
	gid_t gid = getgid();
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
		return 77;
	char map[64];
	int fd = open("/proc/self/setgroups", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "deny", 4) < 0)
			return 77;
		close(fd);
	}
	snprintf(map, sizeof(map), "0 %u 1", uid);
	fd = open("/proc/self/uid_map", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, map, strlen(map)) < 0)
		return 77;
	close(fd);
	snprintf(map, sizeof(map), "0 %u 1", gid);
	fd = open("/proc/self/gid_map", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, map, strlen(map)) < 0)
		return 77;
	close(fd);
	if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return 77;
	char dir[] = "/tmp/sifu-test-fuse-mnt-XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	int fusefd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fusefd < 0)
		return 77;
	char opts[128];
	snprintf(opts, sizeof(opts),
	         "fd=%d,rootmode=40000,user_id=0,group_id=0,default_permissions", fusefd);
	if (mount("sifu", dir, "fuse.sifu", MS_NOSUID | MS_NODEV | MS_RDONLY, opts) < 0)
		return 77;
	int imgfd = open(CORPUS "tree-zstd.sqfs", O_RDONLY | O_CLOEXEC);
	struct sqf_image *img;
	struct sqf_server *srv;
	struct sifu_err err = {0};
	if (imgfd < 0 || sqf_image_open(imgfd, 0, 0, NULL, &img, &err) < 0 ||
	    sqf_server_start(img, fusefd, &srv, &err) < 0)
		return 2;
	char path[256], buf[64] = {0};
	snprintf(path, sizeof(path), "%s/dir/hello-link", dir);
	int f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0 || read(f, buf, sizeof(buf)) != 13 || memcmp(buf, "hello, world\n", 13))
		return 3;
	close(f);
	if (stop_first) {
		sqf_server_stop(srv); /* the caller still holds its fd and the mount */
		if (umount2(dir, MNT_DETACH) < 0)
			return 4;
	} else {
		/* the kernel side goes first: the server must notice by itself */
		if (umount2(dir, MNT_DETACH) < 0)
			return 4;
		close(fusefd);
		struct pollfd p = {.fd = sqf_server_done_fd(srv), .events = POLLIN};
		if (poll(&p, 1, 10000) != 1)
			return 5;
		sqf_server_stop(srv);
	}
	sqf_image_close(img);
	rmdir(dir);
	return 0;
}

static void test_server_on_callers_fd(void **state)
{
	for (int stop_first = 0; stop_first < 2; stop_first++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			_exit(serve_in_userns(stop_first));
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st));
		if (WEXITSTATUS(st) == 77)
			skip();
		assert_int_equal(WEXITSTATUS(st), 0);
	}
}

static void test_name_ok(void **state)
{
	assert_true(sqf_name_ok("a", 1));
	assert_true(sqf_name_ok("...", 3));
	assert_false(sqf_name_ok(".", 1));
	assert_false(sqf_name_ok("..", 2));
	assert_false(sqf_name_ok("a/b", 3));
	assert_false(sqf_name_ok("a\0b", 3));
	assert_false(sqf_name_ok("", 0));
}

/* --------------------------------------------- the checking layer (--verify)
 * A fault-injecting backend returns altered bytes where the image differs
 * from what was verified: the layer must answer EIO, never the bytes. */

/* Any 32-byte digest will do for the layer; the real one is SHA-256. */
static void test_hash(const void *data, size_t len, uint8_t out[32])
{
	const uint8_t *p = data;
	for (unsigned lane = 0; lane < 4; lane++) {
		uint64_t h = 0xcbf29ce484222325ull ^ lane;
		for (size_t i = 0; i < len; i++)
			h = (h ^ p[i]) * 0x100000001b3ull;
		h ^= len;
		memcpy(out + 8 * lane, &h, 8);
	}
}

struct altering {
	struct sqf_backend b;
	const uint8_t *data;
	int64_t alter_at; /* this byte is served flipped (-1: none) */
	unsigned reads;
};

static int altering_pread(struct sqf_backend *b, void *buf, size_t len, uint64_t off)
{
	struct altering *a = (struct altering *)b;
	if (off > b->size || len > b->size - off)
		return -EIO;
	__atomic_add_fetch(&a->reads, 1, __ATOMIC_RELAXED);
	memcpy(buf, a->data + off, len);
	int64_t at = __atomic_load_n(&a->alter_at, __ATOMIC_RELAXED);
	if (at >= 0 && (uint64_t)at >= off && (uint64_t)at < off + len)
		((uint8_t *)buf)[at - (int64_t)off] ^= 0x5a;
	return 0;
}

static void altering_destroy(struct sqf_backend *b)
{
	free(b);
}

static struct altering *altering_new(const uint8_t *data, size_t size)
{
	struct altering *a = sifu_xcalloc(1, sizeof(*a));
	a->b.pread = altering_pread;
	a->b.destroy = altering_destroy;
	a->b.size = size;
	a->data = data;
	a->alter_at = -1;
	return a;
}

static struct sqf_verity *verity_of(const uint8_t *data, size_t size, uint64_t bs)
{
	struct sqf_verity *v = sifu_xcalloc(1, sizeof(*v));
	v->block_size = bs;
	v->nblocks = (size + bs - 1) / bs;
	uint8_t(*d)[32] = sifu_xcalloc(v->nblocks, 32);
	for (size_t i = 0; i < v->nblocks; i++)
		test_hash(data + i * bs, size - i * bs < bs ? size - i * bs : bs, d[i]);
	v->sha256 = (const uint8_t(*)[32])d;
	v->hash = test_hash;
	return v;
}

static void verity_free(struct sqf_verity *v)
{
	free((void *)v->sha256);
	free(v);
}

static void test_verity_backend(void **state)
{
	(void)state;
	enum { SIZE = 10000, BS = 1024 }; /* ten blocks, the last one short */
	uint8_t *data = sifu_xmalloc(SIZE);
	for (size_t i = 0; i < SIZE; i++)
		data[i] = (uint8_t)(i * 131 + (i >> 8));
	struct sqf_verity *v = verity_of(data, SIZE, BS);
	struct altering *a = altering_new(data, SIZE);
	struct sqf_backend *be = NULL;
	struct sifu_err err = {0};
	assert_int_equal(sqf_backend_verity(&a->b, v, &be, &err), 0);
	static uint8_t buf[SIZE];
	/* reads of every shape: inside a block, across blocks, whole runs,
	 * the short last block, all of it */
	static const uint64_t cases[][2] = {{0, 1},      {5, 100},     {1000, 48},  {1023, 2},
	                                    {0, 1024},   {1024, 4096}, {100, 5000}, {9000, 1000},
	                                    {9216, 784}, {9999, 1},    {0, SIZE},   {2048, 0}};
	for (size_t c = 0; c < ARRAY_SIZE(cases); c++) {
		memset(buf, 0xee, sizeof(buf));
		assert_int_equal(be->pread(be, buf, cases[c][1], cases[c][0]), 0);
		assert_memory_equal(buf, data + cases[c][0], cases[c][1]);
	}
	assert_int_equal(be->pread(be, buf, 2, SIZE - 1), -EIO); /* past the end */
	/* one byte of block 4 changes after verification */
	a->alter_at = 4 * BS + 77;
	for (size_t c = 0; c < ARRAY_SIZE(cases); c++) {
		uint64_t off = cases[c][0], len = cases[c][1];
		bool touches = len && off / BS <= 4 && (off + len - 1) / BS >= 4;
		memset(buf, 0xee, sizeof(buf));
		int r = be->pread(be, buf, len, off);
		if (touches) {
			assert_int_equal(r, -EIO);
			for (size_t i = 0; i < len; i++)
				assert_int_equal(buf[i], 0); /* nothing unchecked left behind */
		} else {
			assert_int_equal(r, 0);
			assert_memory_equal(buf, data + off, len);
		}
	}
	/* the check is per read: the verified bytes back, and all is well */
	a->alter_at = -1;
	assert_int_equal(be->pread(be, buf, SIZE, 0), 0);
	assert_memory_equal(buf, data, SIZE);
	be->destroy(be);

	/* digests that do not fit the range are refused (and INNER freed) */
	struct sqf_verity bad = *v;
	bad.nblocks--;
	assert_true(sqf_backend_verity(&altering_new(data, SIZE)->b, &bad, &be, &err) < 0);
	verity_free(v);
	free(data);
}

/* The whole server path, page-cache and chunk mode: the metadata preload
 * and the data reads go through the check. */
static void test_verity_image(void **state)
{
	(void)state;
	size_t len;
	uint8_t *data = slurp(CORPUS "tree-nofrag.sqfs", &len);
	struct sqf_verity *v = verity_of(data, len, 512);
	for (int io = SQF_IO_PAGECACHE; io <= SQF_IO_CHUNKS; io++) {
		struct sqf_options o;
		sqf_options_default(&o);
		o.io = (enum sqf_io)io;
		o.chunk_size = 512;
		o.verity = v;
		struct altering *a = altering_new(data, len);
		struct sqf_backend *be = NULL;
		struct sifu_err err = {0};
		assert_int_equal(sqf_backend_verity(&a->b, v, &be, &err), 0);
		struct sqf_image *img = NULL;
		assert_int_equal(sqf_image_open_backend(be, &o, &img, &err), 0);
		assert_int_equal(sqf_chunkcache_is_direct(img->chunks), io == SQF_IO_PAGECACHE);
		check_tree(img, false);
		sqf_image_close(img);

		/* the last byte of dir/numbers' data altered from the start: the
		 * open (superblock, preloaded tables) is clean, the file is not */
		a = altering_new(data, len);
		assert_int_equal(sqf_backend_verity(&a->b, v, &be, &err), 0);
		assert_int_equal(sqf_image_open_backend(be, &o, &img, &err), 0);
		sqfs_inode_generic_t *ino = inode_at(img, "dir/numbers");
		sqfs_u64 end = 0;
		assert_int_equal(sqfs_inode_get_file_block_start(ino, &end), 0);
		for (size_t i = 0; i < sqfs_inode_get_file_block_count(ino); i++)
			end += ino->extra[i] & 0xffffff;
		assert_true(end > 512 && end <= len); /* past the superblock's block */
		a->alter_at = (int64_t)end - 1;
		static char buf[14000];
		assert_int_equal(sqf_read(img, ino, 0, buf, sizeof(buf)), -EIO);
		sqfs_free(ino);
		/* files elsewhere are still served */
		ino = inode_at(img, "zeros");
		assert_int_equal(sqf_read(img, ino, 0, buf, 5000), 5000);
		sqfs_free(ino);
		sqf_image_close(img);
	}
	verity_free(v);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cache_reads_and_bounds),
	    cmocka_unit_test(test_cache_failure_is_not_sticky),
	    cmocka_unit_test(test_cache_direct_mode),
	    cmocka_unit_test(test_cache_threads_one_fetch_per_chunk),
	    cmocka_unit_test(test_cache_readahead_and_pin),
	    cmocka_unit_test(test_image_every_compressor),
	    cmocka_unit_test(test_image_owner_self),
	    cmocka_unit_test(test_image_rejects_garbage),
	    cmocka_unit_test(test_block_cache),
	    cmocka_unit_test(test_extract),
	    cmocka_unit_test(test_server_on_callers_fd),
	    cmocka_unit_test(test_name_ok),
	    cmocka_unit_test(test_verity_backend),
	    cmocka_unit_test(test_verity_image),
	    cmocka_unit_test(test_block_cache_stale),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
