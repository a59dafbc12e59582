#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Write a small multi-layer OCI image layout for sifu's pull tests.

    pull_image.py OUTDIR [--busybox /bin/busybox] [--hostile KIND]

Three layers over busybox-static, one per compression sifu must sniff (gzip,
plain, zstd), exercising whiteouts, an opaque directory, hard links, a setuid
file, a fifo, a device node, xattrs, a symlink chain and files owned by
other users.  --hostile replaces the top layer with a malicious one.
"""
import gzip, hashlib, io, json, os, random, subprocess, sys, tarfile

T0 = 1700000000


def ti(name, kind=tarfile.REGTYPE, mode=0o644, uid=0, gid=0, data=b"", **kw):
    t = tarfile.TarInfo(name)
    t.type, t.mode, t.uid, t.gid, t.mtime = kind, mode, uid, gid, T0
    t.uname = t.gname = ""
    for k, v in kw.items():
        setattr(t, k, v)
    t.size = len(data) if kind == tarfile.REGTYPE else 0
    return t, data


def tar_bytes(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for t, data in entries:
            tf.addfile(t, io.BytesIO(data) if t.type == tarfile.REGTYPE else None)
    return buf.getvalue()


def layer1(busybox):
    bb = open(busybox, "rb").read()
    e = [ti("./", tarfile.DIRTYPE, 0o755)]
    for d in ["bin", "etc", "a", "a/b", "opq", "opq/sub", "gone", "home", "home/user", "tmp"]:
        e.append(ti(d + "/", tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755))
    e[-2] = ti("home/user/", tarfile.DIRTYPE, 0o700, 1000, 1000)
    e.append(ti("bin/busybox", data=bb, mode=0o755))
    for app in ["sh", "ls", "cat", "echo", "id", "true", "env", "stat"]:
        e.append(ti("bin/" + app, tarfile.SYMTYPE, 0o777, linkname="busybox"))
    e.append(ti("etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n"))
    e.append(ti("etc/group", data=b"root:x:0:\nuser:x:1000:\n"))
    e.append(ti("etc/os-release", data=b"NAME=sifutest\nID=sifutest\n"))
    e.append(ti("a/b/del", data=b"to be deleted\n"))
    e.append(ti("a/b/stay", data=b"stays\n"))
    e.append(ti("a/keep", data=b"version 1\n"))
    e.append(ti("opq/x", data=b"x\n"))
    e.append(ti("opq/sub/y", data=b"y\n"))
    e.append(ti("gone/deep", data=b"deep\n"))
    e.append(ti("hl1", data=b"hard linked content\n", mode=0o640, uid=7, gid=8))
    e.append(ti("hl2", tarfile.LNKTYPE, linkname="hl1"))
    e.append(ti("hl3", data=b"three and four\n", mode=0o640, uid=7, gid=8))
    e.append(ti("hl4", tarfile.LNKTYPE, linkname="hl3"))
    e.append(ti("bin/suid", data=b"#!/bin/sh\necho suid\n", mode=0o4755))
    e.append(ti("bin/sgid", data=b"#!/bin/sh\n", mode=0o2755, gid=50))
    e.append(ti("fifo", tarfile.FIFOTYPE, 0o600))
    e.append(ti("fifo2", tarfile.FIFOTYPE, 0o644))
    e.append(ti("dev-null", tarfile.CHRTYPE, 0o666, devmajor=1, devminor=3))
    e.append(ti("dev-blk", tarfile.BLKTYPE, 0o660, devmajor=8, devminor=300))
    t, d = ti("xattrfile", data=b"with xattrs\n")
    t.pax_headers = {"SCHILY.xattr.user.sifu": "hello", "SCHILY.xattr.user.two": "second"}
    e.append((t, d))
    e.append(ti("l1", tarfile.SYMTYPE, 0o777, linkname="l2"))
    e.append(ti("l2", tarfile.SYMTYPE, 0o777, linkname="l3"))
    e.append(ti("l3", tarfile.SYMTYPE, 0o777, linkname="/etc/os-release"))
    e.append(ti("abs-out", tarfile.SYMTYPE, 0o777, linkname="../../../../etc/shadow"))
    e.append(ti("owned", data=b"mine\n", uid=1000, gid=1000, mode=0o600))
    e.append(ti("big", data=random.Random(1).randbytes(300000) + b"z" * 700000))
    return e


def layer2():
    return [
        ti("a/", tarfile.DIRTYPE, 0o750),
        ti("a/b/", tarfile.DIRTYPE, 0o755),
        ti("a/b/.wh.del"),
        ti("a/keep", data=b"version 2\n", mode=0o600),
        ti("opq/", tarfile.DIRTYPE, 0o755),
        ti("opq/.wh..wh..opq"),
        ti("opq/z", data=b"z\n"),
        ti(".wh.gone"),
        ti(".wh.fifo2"),
        ti("etc/", tarfile.DIRTYPE, 0o755),
        ti("etc/motd", data=b"layer two\n"),
    ]


def layer3():
    return [
        ti("new/", tarfile.DIRTYPE, 0o755),
        ti("new/file", data=b"from the zstd layer\n", uid=1000, gid=100),
        ti("gone", data=b"gone is a file now\n"),
        ti("etc/motd", data=b"layer three\n"),
        ti(".wh.owned"),
        ti("hl1", data=b"hl1 replaced; hl2 keeps the old content\n"),
    ]


HOSTILE = {
    "dotdot": lambda: [ti("../../escape", data=b"x")],
    "dotdot-mid": lambda: [ti("a/../../escape", data=b"x")],
    "hardlink-out": lambda: [ti("hlx", tarfile.LNKTYPE, linkname="../../etc/passwd")],
    "whiteout-out": lambda: [ti("../.wh.etc")],
    "longname": lambda: [ti("x" * 300, data=b"x")],
    "dup": lambda: [ti("dup", data=b"one\n"), ti("dup", data=b"two\n"),
                    ti("dupdir/", tarfile.DIRTYPE), ti("dupdir/f", data=b"f"),
                    ti("dupdir", data=b"now a file\n")],
    "absolute": lambda: [ti("/abs/file", data=b"absolute\n")],
    "symlink-dir": lambda: [ti("sl", tarfile.SYMTYPE, linkname="/etc"),
                            ti("sl/passwd", data=b"through a symlink\n")],
}


def compress(raw, how):
    if how == "gzip":
        return gzip.compress(raw, mtime=0)
    if how == "zstd":
        return subprocess.run(["zstd", "-q", "-c"], input=raw, check=True,
                              stdout=subprocess.PIPE).stdout
    return raw


def main():
    out = sys.argv[1]
    busybox = "/bin/busybox"
    hostile = None
    nozstd = False
    args = sys.argv[2:]
    while args:
        a = args.pop(0)
        if a == "--busybox":
            busybox = args.pop(0)
        elif a == "--hostile":
            hostile = args.pop(0)
        elif a == "--no-zstd":  # umoci 0.4 cannot read zstd layers
            nozstd = True
        elif a == "--bad-digest":
            hostile = "bad-digest"
    os.makedirs(out + "/blobs/sha256", exist_ok=True)

    def blob(data):
        h = hashlib.sha256(data).hexdigest()
        with open(f"{out}/blobs/sha256/{h}", "wb") as f:
            f.write(data)
        return "sha256:" + h, len(data)

    layers = [(layer1(busybox), "gzip"), (layer2(), "none"), (layer3(), "gzip" if nozstd else "zstd")]
    if hostile and hostile in HOSTILE:
        layers.append((HOSTILE[hostile](), "gzip"))
    descs, diff_ids = [], []
    for entries, how in layers:
        raw = tar_bytes(entries)
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        d, n = blob(compress(raw, how))
        mt = "application/vnd.oci.image.layer.v1.tar" + {"gzip": "+gzip", "zstd": "+zstd", "none": ""}[how]
        descs.append({"mediaType": mt, "digest": d, "size": n})
    config = {
        "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine),
        "os": "linux",
        "config": {"Env": ["PATH=/bin:/usr/bin", "GREETING=hello world", "QUOTE=it's \"quoted\" $HOME"],
                   "Entrypoint": ["/bin/echo", "entry"], "Cmd": ["default", "args"],
                   "Labels": {"org.example.name": "sifu test", "maintainer": "tests"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [],
    }
    cd, cn = blob(json.dumps(config).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
                "layers": descs}
    if hostile == "bad-digest":
        # the layer's bytes change after its digest was recorded
        h = descs[0]["digest"][7:]
        p = f"{out}/blobs/sha256/{h}"
        data = bytearray(open(p, "rb").read())
        data[len(data) // 2] ^= 0xff
        open(p, "wb").write(bytes(data))
    md, mn = blob(json.dumps(manifest).encode())
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
                            "size": mn, "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}
    open(out + "/index.json", "w").write(json.dumps(index))
    open(out + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')


main()
