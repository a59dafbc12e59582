#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A small, hostile OCI registry for sifu's hardening tests.

    fake_registry.py PORTFILE LOG

Listens on 127.0.0.1 (a free port, written to PORTFILE once it listens),
plain HTTP, and stops by itself after 60 s without a request or 5 minutes
in all.  Every image is one small, honest layer; each repository misbehaves
in one way (all under /v2/<repo>/img, tag 1):

  good          an honest image
  auth          the same, behind basic auth (alice / s3cret)
  baddigest     the manifest comes with a wrong Docker-Content-Digest
  bigblob       the layer's descriptor says 100 bytes; the blob endpoint
                streams 64 MiB with no Content-Length (close-delimited)
  biglen        the same, announced with a 64 MiB Content-Length
  bigconfig     the config's descriptor is right; its blob streams 64 MiB
  hugeconfig    the config's descriptor announces 100 GiB
  bigmanifest   a 5 MiB manifest, with its Content-Length
  bigmanifest-nolen  the same without a Content-Length (close-delimited)

and two plain files for https:// pulls (here http://): /file/big.sif, 4 MiB
with its Content-Length, and /file/big-nolen.sif, 4 MiB without one.

Every request is appended to LOG ("GET path"), and each stream that the
client cut short as "SENT path N" (N: bytes the server managed to write).
"""
import gzip, hashlib, http.server, io, json, os, platform, sys, tarfile, threading, time

portfile, logf = sys.argv[1], sys.argv[2]
lock = threading.Lock()
last = [time.monotonic()]
STREAM = 64 << 20


def log(s):
    with lock, open(logf, "a") as f:
        f.write(s + "\n")


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def layer():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        t = tarfile.TarInfo("hello.txt")
        data = b"hello from the fake registry\n"
        t.size, t.mode, t.mtime = len(data), 0o644, 1700000000
        tf.addfile(t, io.BytesIO(data))
    tar = buf.getvalue()
    return tar, gzip.compress(tar, mtime=0)


TAR, LAYER = layer()
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
CONFIG = json.dumps({
    "architecture": ARCH, "os": "linux", "config": {"Cmd": ["/bin/sh"]},
    "rootfs": {"type": "layers", "diff_ids": [sha(TAR)]},
}).encode()
HUNDRED = b"h" * 100  # what a lying descriptor claims to describe


def manifest(config=CONFIG, layer=LAYER, config_size=None):
    return json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha(config), "size": len(config) if config_size is None else config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha(layer), "size": len(layer)}],
    }).encode()


GOOD = manifest()
LYING = manifest(layer=HUNDRED)  # says 100 bytes, digest of those 100
BIG = json.dumps({"schemaVersion": 2, "pad": "x" * (5 << 20)}).encode()
BLOBS = {sha(CONFIG): CONFIG, sha(LAYER): LAYER}
MANIFESTS = {"good": GOOD, "auth": GOOD, "baddigest": GOOD, "bigblob": LYING, "biglen": LYING,
             "bigconfig": GOOD, "hugeconfig": manifest(config_size=100 << 30),
             "bigmanifest": BIG, "bigmanifest-nolen": BIG}
AUTH = "Basic YWxpY2U6czNjcmV0"  # alice:s3cret


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def send(self, code, body=b"", ctype="application/json", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def stream(self, n, length=None):
        """N bytes of junk, close-delimited or with LENGTH announced."""
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        chunk, sent = b"\0" * 65536, 0
        try:
            while sent < n:
                self.wfile.write(chunk)
                sent += len(chunk)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            log(f"SENT {self.path} {sent}")

    def do_GET(self):
        last[0] = time.monotonic()
        log(f"GET {self.path}")
        parts = self.path.split("/")  # '', 'v2', repo, 'img', kind, ref
        if self.path == "/v2/":
            return self.send(200, b"{}")
        if self.path in ("/file/big.sif", "/file/big-nolen.sif"):
            return self.stream(4 << 20, 4 << 20 if self.path == "/file/big.sif" else None)
        if len(parts) != 6 or parts[1] != "v2" or parts[2] not in MANIFESTS:
            return self.send(404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"no such repository"}]}')
        repo, kind, ref = parts[2], parts[4], parts[5]
        if repo == "auth" and self.headers.get("Authorization") != AUTH:
            return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"log in"}]}',
                             extra=[("WWW-Authenticate", 'Basic realm="fake"')])
        if kind == "manifests":
            body = MANIFESTS[repo]
            if repo == "bigmanifest-nolen":
                return self.stream(len(body))
            dcd = sha(body) if repo != "baddigest" else "sha256:" + "0" * 64
            return self.send(200, body, "application/vnd.oci.image.manifest.v1+json",
                             [("Docker-Content-Digest", dcd)])
        if kind == "blobs":
            if ref == sha(HUNDRED) and repo == "bigblob":
                return self.stream(STREAM)
            if ref == sha(HUNDRED) and repo == "biglen":
                return self.stream(STREAM, STREAM)
            if ref == sha(CONFIG) and repo == "bigconfig":
                return self.stream(STREAM)
            if ref in BLOBS:
                return self.send(200, BLOBS[ref], "application/octet-stream")
        return self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"unknown"}]}')

    def log_message(self, *a):
        pass


def watchdog(srv, start):
    # bounded: a test that forgets to stop the server does not leave it behind
    while time.monotonic() - last[0] < 60 and time.monotonic() - start < 300:
        time.sleep(1)
    os._exit(0)


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
threading.Thread(target=watchdog, args=(srv, time.monotonic()), daemon=True).start()
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
