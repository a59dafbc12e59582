/* SPDX-License-Identifier: BSD-3-Clause */
/* `overlay create`: an ext3 file system with Apptainer's overlay layout
 * (/upper, /work, and directories under upper/).
 *
 * Two steps, each with the tool that does it best.  mke2fs (e2fsprogs)
 * makes the file system: block groups, inode tables, the journal, what
 * mke2fs.conf tunes; redoing that with ext2fs_initialize would copy a
 * large part of mke2fs for nothing.  The layout is then made in process
 * through libext2fs (the library that serves ext3 overlays), which sets
 * each directory's owner directly: the caller, or root for --fakeroot.
 * Apptainer instead fills a temporary directory and runs `mkfs.ext3 -d`,
 * re-running itself in a root-mapped user namespace for --fakeroot; here
 * no temporary tree, no namespace, and any mke2fs since 1.41 will do. */
#include "ext_priv.h"

#include <et/com_err.h>
#include <limits.h>
#include <sys/stat.h>

/* mke2fs reads and writes the image as its standard input: the temporary
 * file has a name only relative to a directory fd, and every fd sifu holds
 * is O_CLOEXEC.  -F: the file is ours and new, never ask.  nodiscard: a
 * discard would punch holes in a file the caller asked not to be sparse.
 * Its messages (stdout and stderr, see sifu_spawn's order of dups) are
 * kept for the error. */
static int run_mke2fs(int fd, const char *search, struct sifu_err *err)
{
	char exe[PATH_MAX];
	if (!sifu_find_exe("mke2fs", search, exe, sizeof(exe))) {
		sifu_err_set(err, SIFU_E_NOTFOUND, ENOENT,
		             "mke2fs was not found in PATH, /usr/sbin or /sbin: it makes the ext3 "
		             "file system");
		sifu_err_hint(err, "install e2fsprogs");
		return -ENOENT;
	}
	char *const argv[] = {exe, "-q", "-F", "-t", "ext3", "-E", "nodiscard", "/proc/self/fd/0",
	                      NULL};
	struct sifu_command c = {.argv = argv, .in = fd, .out = -1, .err = 1};
	_cleanup_free_ char *out = NULL;
	struct sifu_exit x;
	int r = sifu_spawn_capture(&c, 64 << 10, &out, NULL, &x, err);
	if (r < 0)
		return r;
	if (sifu_exit_ok(&x))
		return 0;
	char how[64];
	sifu_exit_describe(&x, how, sizeof(how));
	out[strcspn(out, "\n")] = '\0';
	return sifu_err_set(err, SIFU_E_SYS, EIO, "%s %s%s%s", exe, how, *out ? ": " : "", out);
}

static int ext_fail(errcode_t e, const char *what, const char *name, struct sifu_err *err)
{
	return sifu_err_set(err, SIFU_E_SYS, sqf_ext_errno(e), "%s %s: %s", what, name,
	                    error_message(e));
}

static int chown_ino(ext2_filsys fs, ext2_ino_t ino, uint32_t uid, uint32_t gid, const char *name,
                     struct sifu_err *err)
{
	struct ext2_inode in;
	errcode_t e = ext2fs_read_inode(fs, ino, &in);
	if (!e) {
		in.i_uid = (__u16)uid;
		ext2fs_set_i_uid_high(in, uid >> 16);
		in.i_gid = (__u16)gid;
		ext2fs_set_i_gid_high(in, gid >> 16);
		e = ext2fs_write_inode(fs, ino, &in);
	}
	return e ? ext_fail(e, "setting the owner of", name, err) : 0;
}

/* NAME in directory PARENT as a directory owned by UID:GID (mode 0755,
 * libext2fs's umask 022); an existing one is kept as it is.  Its inode in
 * *INO. */
static int mkdir_owned(ext2_filsys fs, ext2_ino_t parent, const char *name, uint32_t uid,
                       uint32_t gid, ext2_ino_t *ino, struct sifu_err *err)
{
	if (strlen(name) > EXT2_NAME_LEN)
		return sifu_err_set(err, SIFU_E_USAGE, ENAMETOOLONG, "%s: name too long", name);
	if (!ext2fs_lookup(fs, parent, name, (int)strlen(name), NULL, ino))
		return 0;
	errcode_t e = ext2fs_mkdir(fs, parent, 0, name);
	if (e == EXT2_ET_DIR_NO_SPACE && !(e = ext2fs_expand_dir(fs, parent)))
		e = ext2fs_mkdir(fs, parent, 0, name);
	if (!e)
		e = ext2fs_lookup(fs, parent, name, (int)strlen(name), NULL, ino);
	if (e)
		return ext_fail(e, "creating", name, err);
	return chown_ino(fs, *ino, uid, gid, name, err);
}

/* DIR (relative to upper/, made like `mkdir -p`) must stay inside upper/:
 * "a/../b" is b, "../x" is refused, as Apptainer's check after Join. */
static int mkdir_under(ext2_filsys fs, ext2_ino_t upper, const char *dir, uint32_t uid,
                       uint32_t gid, struct sifu_err *err)
{
	char norm[PATH_MAX];
	if (sifu_path_normalize(dir + strspn(dir, "/"), norm, sizeof(norm)) < 0)
		return sifu_err_set(err, SIFU_E_USAGE, EINVAL,
		                    "overlay directory %s created outside of overlay layout /upper",
		                    dir);
	ext2_ino_t at = upper;
	for (char *save = NULL, *c = strtok_r(norm, "/", &save); c; c = strtok_r(NULL, "/", &save))
		if (strcmp(c, ".") && mkdir_owned(fs, at, c, uid, gid, &at, err) < 0)
			return sifu_err_wrap(err, "--create-dir %s", dir);
	return 0;
}

static int layout(struct sqf_ext *x, const struct sqf_ext_mkfs_options *o, struct sifu_err *err)
{
	ext2_filsys fs = x->fs;
	ext2_ino_t upper, work;
	int r = chown_ino(fs, EXT2_ROOT_INO, o->uid, o->gid, "/", err);
	if (r == 0)
		r = mkdir_owned(fs, EXT2_ROOT_INO, "upper", o->uid, o->gid, &upper, err);
	if (r == 0)
		r = mkdir_owned(fs, EXT2_ROOT_INO, "work", o->uid, o->gid, &work, err);
	for (size_t i = 0; r == 0 && i < o->ndirs; i++)
		r = mkdir_under(fs, upper, o->dirs[i], o->uid, o->gid, err);
	return r;
}

int sqf_ext_mkfs_overlay(int fd, const struct sqf_ext_mkfs_options *o, struct sifu_err *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sifu_err_sys(err, "overlay image");
	int r = run_mke2fs(fd, o->search_path, err);
	if (r < 0)
		return r;
	struct sqf_ext *x;
	if ((r = sqf_ext_open(fd, 0, (uint64_t)st.st_size, true, NULL, &x, err)) < 0)
		return sifu_err_wrap(err, "the new file system");
	r = layout(x, o, err);
	int c = sqf_ext_close(x, r < 0 ? NULL : err);
	return r < 0 ? r : c;
}
