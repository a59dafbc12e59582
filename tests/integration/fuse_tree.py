#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Helpers for tests/integration/fuse.bats.

  mktree DIR          build a tree with every file type SquashFS can hold
  listing DIR [opts]  print one line per path: type, mode, owner, mtime, size,
                      link target, device, hard-link group, xattrs, sha256;
                      opts leave out what a writer or reader cannot keep:
                      no-owner no-links no-xattr no-dir-mtime no-empty-xattr
                      user-xattr-only
  hammer MNT SRC SECS N   N processes read random ranges of random files
                      under MNT for SECS seconds, comparing with SRC
"""
import errno
import hashlib
import os
import random
import socket
import stat
import sys
import time

BLOCK = 131072


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def mktree(root):
    rnd = random.Random(42)
    os.makedirs(root)
    j = lambda *p: os.path.join(root, *p)
    # regular files at block and fragment boundaries
    for name, size in [("empty", 0), ("one", 1), ("frag-4095", 4095), ("frag-4096", 4096),
                       ("block-1", BLOCK - 1), ("block", BLOCK), ("block+1", BLOCK + 1),
                       ("three-blocks", 3 * BLOCK), ("three-blocks+7", 3 * BLOCK + 7)]:
        write(j(name), bytes(rnd.getrandbits(8) for _ in range(min(size, 64))) * (size // 64)
              + bytes(rnd.getrandbits(8) for _ in range(size % 64)))
    write(j("random-1M"), rnd.randbytes(1 << 20) if hasattr(rnd, "randbytes") else os.urandom(1 << 20))
    write(j("text"), b"".join(b"line %d of some compressible text\n" % i for i in range(20000)))
    # a large sparse file with data in the middle and at the end
    with open(j("sparse"), "wb") as f:
        f.truncate(130 << 20)
        f.seek(100 << 20)
        f.write(b"middle" * 1000)
        f.seek((130 << 20) - 5)
        f.write(b"tail!")
    # hard links, also across directories
    os.makedirs(j("d1", "d2", "d3"))
    write(j("hard-a"), b"shared by three names\n" * 100)
    os.link(j("hard-a"), j("hard-b"))
    os.link(j("hard-a"), j("d1", "d2", "hard-c"))
    # symlinks: relative, absolute, dangling, long, to a dir
    os.symlink("text", j("sym-rel"))
    os.symlink("/etc/passwd", j("sym-abs"))
    os.symlink("does/not/exist", j("sym-dangling"))
    os.symlink("x" * 1000, j("sym-long"))
    os.symlink("d1/d2", j("sym-dir"))
    # fifo, socket, devices (root only)
    os.mkfifo(j("fifo"))
    s = socket.socket(socket.AF_UNIX)
    s.bind(j("socket"))
    s.close()
    if os.getuid() == 0:
        os.mknod(j("char-dev"), 0o620 | stat.S_IFCHR, os.makedev(1, 3))
        os.mknod(j("block-dev"), 0o660 | stat.S_IFBLK, os.makedev(259, 70000))
    # odd names
    for name in ["with space", "tab\there", "new\nline", "ünïcödé ☃", "-dash", "*star?",
                 "back\\slash", "quote'\"", ".hidden", "a" * 255, "%s%d"]:
        write(j(name), name.encode("utf-8", "surrogateescape") + b"\n")
    # empty dirs, deep nesting
    os.makedirs(j("empty-dir"))
    deep = j(*["deep"] * 40)
    os.makedirs(deep)
    write(os.path.join(deep, "bottom"), b"bottom\n")
    # a 10k-entry directory
    big = j("big-dir")
    os.makedirs(big)
    for i in range(10000):
        write(os.path.join(big, "entry-%05d" % i), b"%d\n" % i if i % 7 else b"")
    # modes
    write(j("mode-4755"), b"#!/bin/sh\n")
    os.chmod(j("mode-4755"), 0o4755)
    write(j("mode-0600"), b"private\n")
    os.chmod(j("mode-0600"), 0o600)
    os.makedirs(j("sticky"))
    os.chmod(j("sticky"), 0o1777)
    # xattrs
    os.setxattr(j("text"), "user.comment", b"hello")
    os.setxattr(j("text"), "user.empty", b"")
    os.setxattr(j("d1"), "user.dir", b"on a directory")
    os.setxattr(j("random-1M"), "user.big", bytes(range(256)) * 8)
    if os.getuid() == 0:
        os.setxattr(j("one"), "trusted.t", b"trusted value")
        os.setxattr(j("one"), "security.s", b"security value")
        os.chown(j("one"), 1234, 5678)
        os.chown(j("d1"), 4321, 8765)
        os.chown(j("sym-rel"), 99, 98, follow_symlinks=False)
    # distinct mtimes, children first
    paths = []
    for dirpath, dirs, files in os.walk(root):
        paths += [os.path.join(dirpath, n) for n in dirs + files]
    paths.sort(key=lambda p: -p.count("/"))
    for i, p in enumerate(paths + [root]):
        t = 1000000000 + (i * 7919) % 500000000
        os.utime(p, (t, t), follow_symlinks=False)


def listing(root, opts):
    out = []
    groups = {}
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files) + ([] if dirpath != root else ["."]):
            p = os.path.join(dirpath, name) if name != "." else root
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            fmt = stat.S_IFMT(st.st_mode)
            f = [repr(rel), "%o" % st.st_mode]
            if "no-owner" not in opts:
                f.append("%d:%d" % (st.st_uid, st.st_gid))
            if not (stat.S_ISDIR(st.st_mode) and "no-dir-mtime" in opts):
                f.append("m%d" % int(st.st_mtime))
            if stat.S_ISREG(fmt) or stat.S_ISLNK(fmt):
                f.append("s%d" % st.st_size)
            if stat.S_ISLNK(fmt):
                f.append("->" + repr(os.readlink(p)))
            if stat.S_ISCHR(fmt) or stat.S_ISBLK(fmt):
                f.append("dev%d,%d" % (os.major(st.st_rdev), os.minor(st.st_rdev)))
            if stat.S_ISREG(fmt) and "no-links" not in opts:
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1:
                    groups.setdefault(key, rel)
                    f.append("n%d=%r" % (st.st_nlink, groups[key]))
            if not stat.S_ISLNK(fmt) and "no-xattr" not in opts:
                try:
                    names = sorted(os.listxattr(p, follow_symlinks=False))
                except OSError:
                    names = []
                for x in names:
                    if x.startswith("security.selinux") or x.startswith("system."):
                        continue
                    if "user-xattr-only" in opts and not x.startswith("user."):
                        continue
                    try:
                        v = os.getxattr(p, x, follow_symlinks=False)
                    except OSError as e:
                        # squashfuse_ll lists an empty value but cannot get it
                        if "no-empty-xattr" in opts and e.errno == errno.ENODATA:
                            continue
                        raise
                    if v == b"" and "no-empty-xattr" in opts:
                        continue  # gensquashfs drops empty values
                    f.append("x%s=%s" % (x, v.hex()))
            if stat.S_ISREG(fmt) and os.access(p, os.R_OK):
                h = hashlib.sha256()
                with open(p, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
                f.append(h.hexdigest()[:16])
            out.append(" ".join(f))
    sys.stdout.write("\n".join(out) + "\n")


def hammer_one(mnt, src, secs, seed, files):
    rnd = random.Random(seed)
    end = time.monotonic() + secs
    n = 0
    while time.monotonic() < end:
        rel = rnd.choice(files)
        size = os.path.getsize(os.path.join(src, rel))
        off = rnd.randrange(0, max(size, 1))
        ln = rnd.choice([1, 4096, 65536, 131072, 1 << 20, 3 << 20])
        fd = os.open(os.path.join(mnt, rel), os.O_RDONLY)
        try:
            # drop our cached pages so the server, not the page cache, answers
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            got = os.pread(fd, ln, off)
        finally:
            os.close(fd)
        with open(os.path.join(src, rel), "rb") as f:
            f.seek(off)
            want = f.read(ln)
        if got != want:
            print("MISMATCH %s off=%d len=%d" % (rel, off, ln), flush=True)
            os._exit(1)
        n += 1
    print("reader %d: %d reads ok" % (seed, n), flush=True)
    os._exit(0)


def hammer(mnt, src, secs, nproc):
    files = []
    for dirpath, dirs, names in os.walk(src):
        for n in names:
            p = os.path.join(dirpath, n)
            if stat.S_ISREG(os.lstat(p).st_mode) and os.access(p, os.R_OK):
                files.append(os.path.relpath(p, src))
    pids = []
    for i in range(nproc):
        pid = os.fork()
        if pid == 0:
            hammer_one(mnt, src, secs, i, files)
        pids.append(pid)
    bad = 0
    for pid in pids:
        _, st = os.waitpid(pid, 0)
        bad += st != 0
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "mktree":
        mktree(sys.argv[2])
    elif cmd == "listing":
        listing(sys.argv[2], set(sys.argv[3:]))
    elif cmd == "hammer":
        hammer(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit("unknown command " + cmd)
