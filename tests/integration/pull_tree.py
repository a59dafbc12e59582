#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Print a canonical listing of a directory tree, one line per path:
type, mode, owner, size, content digest, link target, device numbers,
user.* xattrs and hard-link group, for comparing an unpacked image with
what sifu wrote.  Paths given with --exclude are left out.

    pull_tree.py DIR [--exclude NAME]... [--no-owner]
"""
import hashlib, os, stat, sys

root = sys.argv[1]
exclude = set()
owner = True
args = sys.argv[2:]
while args:
    a = args.pop(0)
    if a == "--exclude":
        exclude.add(args.pop(0))
    elif a == "--no-owner":
        owner = False

links = {}
out = []
for dirpath, dirnames, filenames in os.walk(root):
    rel_dir = os.path.relpath(dirpath, root)
    dirnames[:] = sorted(d for d in dirnames if not (rel_dir == "." and d in exclude))
    names = [n for n in filenames if not (rel_dir == "." and n in exclude)]
    for name in [""] + dirnames + sorted(names):
        p = os.path.join(dirpath, name) if name else dirpath
        rel = os.path.normpath(os.path.relpath(p, root))
        if name and name in dirnames:
            continue_listing = True
        st = os.lstat(p)
        if name and stat.S_ISDIR(st.st_mode):
            continue  # listed when walked into
        line = [rel, stat.filemode(st.st_mode)]
        if owner:
            line.append(f"{st.st_uid}:{st.st_gid}")
        if stat.S_ISREG(st.st_mode):
            h = hashlib.sha256(open(p, "rb").read()).hexdigest()[:16]
            line += [str(st.st_size), h, str(int(st.st_mtime))]
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                line.append("link-group=" + links.setdefault(key, rel))
        elif stat.S_ISLNK(st.st_mode):
            line.append("-> " + os.readlink(p))
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            line.append(f"{os.major(st.st_rdev)},{os.minor(st.st_rdev)}")
        try:
            xs = sorted(x for x in os.listxattr(p, follow_symlinks=False) if x.startswith("user."))
            for x in xs:
                line.append(f"{x}={os.getxattr(p, x, follow_symlinks=False)!r}")
        except OSError:
            pass
        out.append(" ".join(line))
print("\n".join(sorted(out)))
