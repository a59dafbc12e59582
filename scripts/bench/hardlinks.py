#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Write the layers and OCI archives of the hard-link benchmark.

    hardlinks.py OUTDIR N

N regular files d*/fNNNNNN in directories of 1000, each with one hard link
d*/lNNNNNN, as uncompressed ustar (what the layer step parses, without the
decompression cost):
  links.tar     the N files and their N hard links
  plain.tar     the same tree with the links as N more regular files (the
                baseline: the same entries with no link to resolve)
  upper.tar     new content for the N files (an upper layer that replaces
                every link target: each link of links.tar is then deferred to
                the second pass, the quadratic case of a60965e)
  flat.tar      what links.tar under upper.tar looks like flattened (for
                tar2sqfs, which knows no layers)
and the oci-archive tarballs links.oci.tar, plain.oci.tar (one layer each) and
deferred.oci.tar (links.tar under upper.tar).
"""
import hashlib, io, json, os, sys, tarfile

T0 = 1700000000


def info(name, kind=tarfile.REGTYPE, size=0, link=""):
    t = tarfile.TarInfo(name)
    t.type, t.mode, t.mtime, t.size, t.linkname = kind, 0o644, T0, size, link
    if kind == tarfile.DIRTYPE:
        t.mode = 0o755
    t.uname = t.gname = ""
    return t


def write_tar(path, n, links, content):
    with open(path, "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        tf.addfile(info("./", tarfile.DIRTYPE))
        for i in range(n):
            d = "d%04d" % (i // 1000)
            if i % 1000 == 0:
                tf.addfile(info(d + "/", tarfile.DIRTYPE))
            f_ = "%s/f%06d" % (d, i)
            data = content(i)
            tf.addfile(info(f_, size=len(data)), io.BytesIO(data))
            if links is None:
                continue
            name = "%s/l%06d" % (d, i)
            if links:
                tf.addfile(info(name, tarfile.LNKTYPE, link=f_))
            else:
                tf.addfile(info(name, size=len(data)), io.BytesIO(data))
            # for flat.tar the links keep the old content (see main)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest(), os.path.getsize(path)


def oci_archive(out, layers):
    """LAYERS: uncompressed tar files, the bottom one first (OCI order)."""
    blobs = []
    diff_ids = []
    layer_desc = []
    for p in layers:
        dg, size = sha256_file(p)
        diff_ids.append("sha256:" + dg)
        layer_desc.append({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                           "digest": "sha256:" + dg, "size": size})
        blobs.append((dg, p))
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "config": {"Cmd": ["/bin/sh"]},
                      "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    cdg = hashlib.sha256(cfg).hexdigest()
    man = json.dumps({"schemaVersion": 2,
                      "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": "sha256:" + cdg, "size": len(cfg)},
                      "layers": layer_desc}).encode()
    mdg = hashlib.sha256(man).hexdigest()
    index = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json",
         "digest": "sha256:" + mdg, "size": len(man),
         "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}).encode()
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
        def mem(name, data):
            tf.addfile(info(name, size=len(data)), io.BytesIO(data))
        mem("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        mem("index.json", index)
        mem("blobs/sha256/" + cdg, cfg)
        mem("blobs/sha256/" + mdg, man)
        for dg, p in blobs:
            tf.add(p, "blobs/sha256/" + dg, filter=lambda t: (setattr(t, "mtime", T0), t)[1])


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    os.makedirs(out, exist_ok=True)
    old = lambda i: b"old %d\n" % i
    new = lambda i: b"new %d\n" % i
    j = lambda name: os.path.join(out, name)
    write_tar(j("links.tar"), n, True, old)
    write_tar(j("plain.tar"), n, False, old)
    write_tar(j("upper.tar"), n, None, new)
    # flattened: the files' new content, the links as files with the old one
    with open(j("flat.tar"), "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        tf.addfile(info("./", tarfile.DIRTYPE))
        for i in range(n):
            d = "d%04d" % (i // 1000)
            if i % 1000 == 0:
                tf.addfile(info(d + "/", tarfile.DIRTYPE))
            for name, data in (("%s/f%06d" % (d, i), new(i)), ("%s/l%06d" % (d, i), old(i))):
                tf.addfile(info(name, size=len(data)), io.BytesIO(data))
    oci_archive(j("links.oci.tar"), [j("links.tar")])
    oci_archive(j("plain.oci.tar"), [j("plain.tar")])
    oci_archive(j("deferred.oci.tar"), [j("links.tar"), j("upper.tar")])


if __name__ == "__main__":
    main()
