/* SPDX-License-Identifier: BSD-3-Clause */
/* The I/O backends under the chunk cache: each reads bytes of the image
 * (offset 0 = superblock) from somewhere - a file descriptor, memory (tests,
 * the fuzz target), or another backend whose bytes it checks against
 * recorded digests (`exec --verify`). */
#include "fuse_priv.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

/* ------------------------------------------------------------ fd backend */

struct fd_backend {
	struct sqf_backend b;
	int fd;
	uint64_t base;
};

static int fd_pread(struct sqf_backend *b, void *buf, size_t len, uint64_t off)
{
	struct fd_backend *f = (struct fd_backend *)b;
	uint8_t *p = buf;
	if (off > b->size || len > b->size - off)
		return -EIO;
	while (len > 0) {
		ssize_t n = pread(f->fd, p, len, (off_t)(f->base + off));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* file shrank under us */
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static void fd_advise(struct sqf_backend *b, uint64_t off, uint64_t len)
{
	struct fd_backend *f = (struct fd_backend *)b;
	posix_fadvise(f->fd, (off_t)(f->base + off), (off_t)len, POSIX_FADV_WILLNEED);
}

static void fd_own_readahead(struct sqf_backend *b, bool ours)
{
	struct fd_backend *f = (struct fd_backend *)b;
	posix_fadvise(f->fd, (off_t)f->base, (off_t)b->size,
	              ours ? POSIX_FADV_RANDOM : POSIX_FADV_NORMAL);
}

/* File systems on a local disk (or in memory), where the page cache serves
 * small reads in microseconds.  Everything else - NFS, Lustre, GPFS, CIFS,
 * CephFS, BeeGFS, FUSE, 9p (WSL2's Windows drives) - keeps the chunk cache,
 * which turns many small reads into few large ones.  overlayfs counts as
 * local: inside a container it almost always stacks local disks (an NFS
 * lower can ask for --image-io chunks). */
static bool fs_is_local(int fd)
{
	static const long local[] = {
	    EXT4_SUPER_MAGIC, /* also ext2/ext3 */
	    XFS_SUPER_MAGIC,       BTRFS_SUPER_MAGIC,       TMPFS_MAGIC,
	    F2FS_SUPER_MAGIC,      0x2fc12fc1 /* zfs */,    0x4244 /* hfs */,
	    0x5346544e /* ntfs */, 0x4d44 /* vfat */,       0x2011bab0 /* exfat */,
	    RAMFS_MAGIC,           0x58295829 /* zonefs */, 0x24051905 /* ubifs */,
	    OVERLAYFS_SUPER_MAGIC, SQUASHFS_MAGIC,          EROFS_SUPER_MAGIC_V1,
	};
	struct statfs sf;
	if (fstatfs(fd, &sf) < 0)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(local); i++)
		if ((long)sf.f_type == local[i])
			return true;
	return false;
}

static void fd_destroy(struct sqf_backend *b)
{
	struct fd_backend *f = (struct fd_backend *)b;
	close(f->fd);
	free(f);
}

int sqf_backend_fd(int fd, uint64_t offset, uint64_t size, struct sqf_backend **out,
                   struct sifu_err *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sifu_err_sys(err, "cannot stat the image");
	if (size == 0 && (uint64_t)st.st_size > offset)
		size = (uint64_t)st.st_size - offset;
	if (S_ISREG(st.st_mode) &&
	    (offset > (uint64_t)st.st_size || size > (uint64_t)st.st_size - offset))
		return sifu_err_set(err, SIFU_E_RANGE, EINVAL,
		                    "image range %" PRIu64 "+%" PRIu64
		                    " is past the end of the file (%" PRIu64 " bytes)",
		                    offset, size, (uint64_t)st.st_size);
	int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (nfd < 0)
		return sifu_err_sys(err, "cannot duplicate the image fd");
	struct fd_backend *f = sifu_xcalloc(1, sizeof(*f));
	f->b.pread = fd_pread;
	f->b.destroy = fd_destroy;
	f->b.advise = fd_advise;
	f->b.own_readahead = fd_own_readahead;
	f->b.size = size;
	f->b.local = S_ISREG(st.st_mode) && fs_is_local(nfd);
	f->fd = nfd;
	f->base = offset;
	*out = &f->b;
	return 0;
}

/* -------------------------------------------------------- memory backend */

struct mem_backend {
	struct sqf_backend b;
	const uint8_t *data;
};

static int mem_pread(struct sqf_backend *b, void *buf, size_t len, uint64_t off)
{
	struct mem_backend *m = (struct mem_backend *)b;
	if (off > b->size || len > b->size - off)
		return -EIO;
	memcpy(buf, m->data + off, len);
	return 0;
}

static void mem_destroy(struct sqf_backend *b)
{
	free(b);
}

struct sqf_backend *sqf_backend_mem(const void *data, size_t size)
{
	struct mem_backend *m = sifu_xcalloc(1, sizeof(*m));
	m->b.pread = mem_pread;
	m->b.destroy = mem_destroy;
	m->b.size = size;
	m->data = data;
	return &m->b;
}

/* ------------------------------------------------------ checking backend
 * `exec --verify` serves what it verified, or nothing (see struct
 * sqf_verity).  Why a layer here rather than a check at open: the server
 * reads the file lazily for as long as the container runs, and any process
 * of the caller's (or the file's owner) may write into it meanwhile; why
 * under the chunk cache: every path to the bytes - chunks, page-cache mode's
 * exact reads, the pinned metadata, read-ahead, extraction - goes through a
 * backend's pread, so nothing can bypass the check.  A block is checked
 * whole, so a read of part of one fetches all of it (64 KiB: a few tens of
 * microseconds of SHA-256); whole blocks in the middle of a read land in the
 * caller's buffer directly. */

struct verity_backend {
	struct sqf_backend b;
	struct sqf_backend *inner;
	const struct sqf_verity *v;
	int warned;
};

/* Is [p, p+len) block I as verified? */
static int verity_check(struct verity_backend *vb, uint64_t i, const uint8_t *p, size_t len)
{
	uint8_t got[32];
	vb->v->hash(p, len, got);
	if (!memcmp(got, vb->v->sha256[i], sizeof(got)))
		return 0;
	uint64_t bs = vb->v->block_size;
	if (!__atomic_exchange_n(&vb->warned, 1, __ATOMIC_RELAXED))
		sifu_log(SIFU_LOG_WARN,
		         "the image changed after verification: bytes %" PRIu64 "-%" PRIu64
		         " of its partition differ from the verified ones; they are not served "
		         "(reads of them fail with an I/O error)",
		         i * bs, i * bs + len - 1);
	else
		sifu_debug("fuse: block %" PRIu64 " differs from the verified image", i);
	return -EIO;
}

static int verity_pread(struct sqf_backend *b, void *buf, size_t len, uint64_t off)
{
	struct verity_backend *vb = (struct verity_backend *)b;
	const uint64_t bs = vb->v->block_size, size = b->size;
	if (off > size || len > size - off)
		return -EIO;
	uint8_t *p = buf, *tmp = NULL;
	const uint64_t end = off + len;
	int r = 0;
	while (r == 0 && off < end) {
		uint64_t i = off / bs, bstart = i * bs;
		uint64_t bend = size - bstart < bs ? size : bstart + bs;
		if (off == bstart && bend <= end) {
			/* a run of whole blocks: read in place, then check each */
			uint64_t last = end == size ? end : bstart + (end - bstart) / bs * bs;
			size_t n = (size_t)(last - off);
			r = vb->inner->pread(vb->inner, p, n, off);
			for (uint64_t at = 0; r == 0 && at < n; at += bs)
				r = verity_check(vb, i + at / bs, p + at,
				                 (size_t)(n - at < bs ? n - at : bs));
			p += n;
			off = last;
			continue;
		}
		/* the part of one block this read needs: check the block whole */
		if (!tmp && !(tmp = malloc((size_t)bs)))
			r = -ENOMEM;
		if (r == 0)
			r = vb->inner->pread(vb->inner, tmp, (size_t)(bend - bstart), bstart);
		if (r == 0)
			r = verity_check(vb, i, tmp, (size_t)(bend - bstart));
		uint64_t n = (bend < end ? bend : end) - off;
		if (r == 0)
			memcpy(p, tmp + (off - bstart), (size_t)n);
		p += n;
		off += n;
	}
	free(tmp);
	if (r < 0)
		memset(buf, 0, len); /* no unchecked byte is left for a careless caller */
	return r;
}

static void verity_advise(struct sqf_backend *b, uint64_t off, uint64_t len)
{
	struct verity_backend *vb = (struct verity_backend *)b;
	if (vb->inner->advise)
		vb->inner->advise(vb->inner, off, len);
}

static void verity_own_readahead(struct sqf_backend *b, bool ours)
{
	struct verity_backend *vb = (struct verity_backend *)b;
	if (vb->inner->own_readahead)
		vb->inner->own_readahead(vb->inner, ours);
}

static void verity_destroy(struct sqf_backend *b)
{
	struct verity_backend *vb = (struct verity_backend *)b;
	vb->inner->destroy(vb->inner);
	free(vb);
}

int sqf_backend_verity(struct sqf_backend *inner, const struct sqf_verity *v,
                       struct sqf_backend **out, struct sifu_err *err)
{
	uint64_t bs = v->block_size;
	if (!bs || (bs & (bs - 1)) || bs > (64u << 20) || !v->hash || !v->sha256 ||
	    v->nblocks != (inner->size + bs - 1) / bs) {
		inner->destroy(inner);
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		                    "the verified block digests do not fit the image range");
	}
	struct verity_backend *vb = sifu_xcalloc(1, sizeof(*vb));
	vb->b.pread = verity_pread;
	vb->b.destroy = verity_destroy;
	vb->b.advise = verity_advise;
	vb->b.own_readahead = verity_own_readahead;
	vb->b.size = inner->size;
	vb->b.local = inner->local;
	vb->inner = inner;
	vb->v = v;
	*out = &vb->b;
	return 0;
}
