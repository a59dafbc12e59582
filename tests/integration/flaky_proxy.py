#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""An HTTP proxy in front of a test registry that misbehaves once, for
sifu's fault tests:

    flaky_proxy.py PORT UPSTREAM_HOST:PORT LOG

- the first manifest request is answered 503 with Retry-After: 1;
- the first GET of each blob over 64 KiB sends half the body and then drops
  the connection, as a registry killed mid-transfer does.
Every request line (with its Range header) is appended to LOG.
"""
import http.client, http.server, sys, threading

port, upstream, logf = int(sys.argv[1]), sys.argv[2], sys.argv[3]
lock = threading.Lock()
seen = set()


def log(s):
    with lock, open(logf, "a") as f:
        f.write(s + "\n")


class P(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        rng = self.headers.get("Range")
        log(f"GET {self.path} range={rng}")
        if "/manifests/" in self.path:
            with lock:
                first = "manifest" not in seen
                seen.add("manifest")
            if first:
                self.send_response(503)
                self.send_header("Retry-After", "1")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        c = http.client.HTTPConnection(upstream)
        hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        c.request("GET", self.path, headers=hdrs)
        r = c.getresponse()
        body = r.read()
        cut = False
        if "/blobs/" in self.path and r.status == 200 and len(body) > 65536:
            with lock:
                cut = self.path not in seen
                seen.add(self.path)
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("connection", "transfer-encoding"):
                self.send_header(k, v)
        self.send_header("Connection", "close")
        self.end_headers()
        if cut:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            log(f"CUT {self.path} after {len(body) // 2} of {len(body)}")
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *a):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", port), P).serve_forever()
