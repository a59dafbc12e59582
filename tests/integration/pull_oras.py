#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Wrap a SIF file as an ORAS artifact in an OCI layout, as `oras push` /
`apptainer push oras://` store it (config application/vnd.sylabs.sif.config.v1+json,
one layer application/vnd.sylabs.sif.layer.v1.sif):

    pull_oras.py IMAGE.sif OUTDIR
"""
import hashlib, json, os, shutil, sys

sif, out = sys.argv[1], sys.argv[2]
os.makedirs(out + "/blobs/sha256", exist_ok=True)


def blob(data):
    h = hashlib.sha256(data).hexdigest()
    open(f"{out}/blobs/sha256/{h}", "wb").write(data)
    return {"digest": "sha256:" + h, "size": len(data)}


layer = blob(open(sif, "rb").read())
layer.update(mediaType="application/vnd.sylabs.sif.layer.v1.sif",
             annotations={"org.opencontainers.image.title": os.path.basename(sif)})
cfg = blob(b"{}")
cfg["mediaType"] = "application/vnd.sylabs.sif.config.v1+json"
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": cfg, "layers": [layer]}).encode()
m = blob(man)
m.update(mediaType="application/vnd.oci.image.manifest.v1+json",
         annotations={"org.opencontainers.image.ref.name": "latest"})
json.dump({"schemaVersion": 2, "manifests": [m]}, open(out + "/index.json", "w"))
open(out + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
