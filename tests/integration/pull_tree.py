#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Print a canonical listing of a directory tree, one line per path:
type, mode, owner, size, content digest, link target, device numbers,
user.* xattrs and hard-link group, for comparing an unpacked image with
what sifu wrote.  Paths given with --exclude are left out.

    pull_tree.py DIR [--exclude NAME]... [--no-owner] [--rootless] [--lln FILE]

--rootless: DIR was unpacked by `umoci unpack --rootless`, which keeps the
image's owners in the user.rootlesscontainers xattr (absent: 0:0).
--lln FILE: take modes and owners from `unsquashfs -lln` output, for a tree
an unprivileged unsquashfs extracted (it can neither chown nor keep setuid).
"""
import re
import hashlib, os, stat, sys

root = sys.argv[1]
exclude = set()
owner = True
rootless = False
lln = {}
args = sys.argv[2:]
while args:
    a = args.pop(0)
    if a == "--exclude":
        exclude.add(args.pop(0))
    elif a == "--no-owner":
        owner = False
    elif a == "--rootless":
        rootless = True
    elif a == "--lln":
        for l in open(args.pop(0)):
            m = re.match(r"^(\S+) +(\d+)/(\d+) .*? \d{4}-\d\d-\d\d \d\d:\d\d squashfs-root(/.*?)?(?: -> .*)?$", l.rstrip("\n"))
            if m:
                lln[os.path.normpath((m.group(4) or "/")[1:] or ".")] = (m.group(1), int(m.group(2)), int(m.group(3)))

ROOTLESS = "user.rootlesscontainers"


def rootless_owner(p):
    """umoci --rootless keeps the image's owner in this xattr: a protobuf
    with field 1 = uid and field 2 = gid (varints; absent means 0, and
    4294967295 means "unchanged", i.e. the unpacking user: 0 in the image)."""
    try:
        b = os.getxattr(p, ROOTLESS, follow_symlinks=False)
    except OSError:
        return None
    vals, i = {1: 0, 2: 0}, 0
    while i < len(b):
        key = b[i]; i += 1
        v = shift = 0
        while True:
            c = b[i]; i += 1
            v |= (c & 0x7F) << shift; shift += 7
            if not c & 0x80:
                break
        vals[key >> 3] = v
    noop = 0xFFFFFFFF  # "unchanged": the unpacking user, i.e. 0 in the image
    return tuple(0 if vals[k] == noop else vals[k] for k in (1, 2))


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
        uid, gid = st.st_uid, st.st_gid
        if rootless:
            uid, gid = rootless_owner(p) or (0, 0)
        if rel in lln:
            line[1], uid, gid = lln[rel]
        if owner:
            line.append(f"{uid}:{gid}")
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
            xs = sorted(x for x in os.listxattr(p, follow_symlinks=False)
                        if x.startswith("user.") and x != ROOTLESS)
            for x in xs:
                line.append(f"{x}={os.getxattr(p, x, follow_symlinks=False)!r}")
        except OSError:
            pass
        out.append(" ".join(line))
print("\n".join(sorted(out)))
