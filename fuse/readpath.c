/* SPDX-License-Identifier: BSD-3-Clause */
/* Read one file or list one directory of an image by its path, without
 * mounting it: what `sifu inspect` needs for the metadata that lives in
 * /.singularity.d and for the apps in /scif/apps. */
#include "fuse_priv.h"

#define MAX_LINKS 40
#define MAX_DEPTH 256

static bool is_link(const sqfs_inode_generic_t *ino)
{
	return ino->base.type == SQFS_INODE_SLINK || ino->base.type == SQFS_INODE_EXT_SLINK;
}

/* Resolve PATH from the image root (symlinks followed inside the image, an
 * absolute target meaning the image's root, ".." never above it); *REF: the
 * inode's reference. */
static int resolve(struct sqf_image *img, const char *path, sqfs_inode_generic_t **out,
                   uint64_t *ref)
{
	uint64_t stack[MAX_DEPTH];
	size_t depth = 0;
	int links = 0;
	stack[depth++] = sqf_root_ref(img);
	_cleanup_free_ char *rest = sifu_xstrdup(path);
	for (;;) {
		char *p = rest;
		while (*p == '/')
			p++;
		if (!*p) {
			*ref = stack[depth - 1];
			return sqf_inode_read(img, stack[depth - 1], out);
		}
		size_t n = strcspn(p, "/");
		char name[256];
		if (n >= sizeof(name))
			return -ENAMETOOLONG;
		memcpy(name, p, n);
		name[n] = '\0';
		memmove(rest, p + n, strlen(p + n) + 1);
		if (!strcmp(name, "."))
			continue;
		if (!strcmp(name, "..")) {
			if (depth > 1)
				depth--;
			continue;
		}
		uint64_t child;
		int r = sqf_lookup(img, stack[depth - 1], name, &child);
		if (r < 0)
			return r;
		sqfs_inode_generic_t *ino;
		if ((r = sqf_inode_read(img, child, &ino)) < 0)
			return r;
		if (is_link(ino)) {
			char *target = NULL;
			r = sqf_readlink(ino, &target);
			sqfs_free(ino);
			if (r < 0)
				return r;
			if (++links > MAX_LINKS) {
				free(target);
				return -ELOOP;
			}
			if (target[0] == '/')
				depth = 1;
			char *joined = sifu_xasprintf("%s/%s", target, rest);
			free(target);
			free(rest);
			rest = joined;
			continue;
		}
		bool dir = sqf_inode_is_dir(ino);
		if (!dir) {
			/* only the last component may be something else */
			const char *q = rest;
			while (*q == '/')
				q++;
			if (*q) {
				sqfs_free(ino);
				return -ENOTDIR;
			}
			*out = ino;
			*ref = child;
			return 0;
		}
		sqfs_free(ino);
		if (depth == MAX_DEPTH)
			return -ELOOP;
		stack[depth++] = child;
	}
}

int sqf_read_path(struct sqf_image *img, const char *path, size_t max, char **data, size_t *len,
                  struct sifu_err *err)
{
	sqfs_inode_generic_t *ino = NULL;
	uint64_t ref;
	int r = resolve(img, path, &ino, &ref);
	if (r < 0) {
		sifu_err_set(err, r == -ENOENT ? SIFU_E_NOTFOUND : SIFU_E_SYS, -r, "%s", path);
		return r;
	}
	if (!sqf_inode_is_file(ino)) {
		sqfs_free(ino);
		return sifu_err_set(err, SIFU_E_UNSUPPORTED, EINVAL, "%s: not a regular file",
		                    path);
	}
	sqfs_u64 size = 0;
	sqfs_inode_get_file_size(ino, &size);
	if (size > max) {
		sqfs_free(ino);
		return sifu_err_set(err, SIFU_E_RANGE, EFBIG, "%s: larger than %zu bytes", path,
		                    max);
	}
	char *buf = sifu_xmalloc((size_t)size + 1);
	size_t done = 0;
	while (done < size) {
		ssize_t n = sqf_read(img, ino, done, buf + done, (size_t)size - done);
		if (n <= 0) {
			free(buf);
			sqfs_free(ino);
			return sifu_err_set(err, SIFU_E_CORRUPT, n < 0 ? (int)-n : EIO,
			                    "%s: cannot read its data (the image is damaged)",
			                    path);
		}
		done += (size_t)n;
	}
	buf[size] = '\0';
	sqfs_free(ino);
	*data = buf;
	*len = (size_t)size;
	return 0;
}

int sqf_list_dir(struct sqf_image *img, const char *path, char ***names, size_t *n,
                 struct sifu_err *err)
{
	*names = NULL;
	*n = 0;
	sqfs_inode_generic_t *ino = NULL;
	uint64_t ref;
	int r = resolve(img, path, &ino, &ref);
	if (r < 0)
		return sifu_err_set(err, r == -ENOENT ? SIFU_E_NOTFOUND : SIFU_E_SYS, -r, "%s",
		                    path);
	bool dir = sqf_inode_is_dir(ino);
	sqfs_free(ino);
	if (!dir)
		return sifu_err_set(err, SIFU_E_NOTFOUND, ENOTDIR, "%s: not a directory", path);
	struct sqf_dir *d;
	if ((r = sqf_dir_get(img, ref, &d)) < 0)
		return sifu_err_set(err, SIFU_E_CORRUPT, -r,
		                    "%s: cannot read its listing (the image is damaged)", path);
	*names = sifu_xcalloc(d->n + 1, sizeof(char *));
	for (size_t i = 0; i < d->n; i++)
		(*names)[i] = sifu_xstrndup(d->ents[i].name, d->ents[i].namelen);
	*n = d->n;
	sqf_dir_put(img, d);
	return 0;
}
