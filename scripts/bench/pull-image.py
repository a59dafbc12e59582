#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Write an OCI layout from layer tars (bottom first), gzip-compressing them:

    pull-image.py OUTDIR LAYER.tar...
"""
import gzip, hashlib, json, os, shutil, subprocess, sys

out, layers = sys.argv[1], sys.argv[2:]
os.makedirs(out + "/blobs/sha256", exist_ok=True)


def put(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    d = h.hexdigest()
    shutil.move(path, f"{out}/blobs/sha256/{d}")
    return "sha256:" + d, os.path.getsize(f"{out}/blobs/sha256/{d}")


descs, diffs = [], []
for l in layers:
    h = hashlib.sha256()
    with open(l, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    diffs.append("sha256:" + h.hexdigest())
    subprocess.run(["gzip", "-6", "-n", "-k", "-f", l], check=True)
    d, n = put(l + ".gz")
    descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n})
cfg = json.dumps({"architecture": "amd64", "os": "linux",
                  "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                             "Cmd": ["python3"]},
                  "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
open(out + "/cfg.tmp", "wb").write(cfg)
cd, cn = put(out + "/cfg.tmp")
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
                  "layers": descs}).encode()
open(out + "/man.tmp", "wb").write(man)
md, mn = put(out + "/man.tmp")
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": md, "size": mn, "annotations": {"org.opencontainers.image.ref.name": "latest"}}]},
          open(out + "/index.json", "w"))
open(out + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
