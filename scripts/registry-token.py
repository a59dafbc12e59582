#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A minimal token issuer for Docker's token auth, for tests only.

    registry-token.py PORT KEY.pem CERT.pem USER:PASS

GET /token?service=…&scope=repository:NAME:pull,push answers
{"token": JWT, "expires_in": 300}: anonymous callers get pull rights only,
USER (basic auth) gets pull and push.  The JWT is RS256, signed with KEY and
carrying CERT in x5c, which the registry checks against its rootcertbundle.
"""
import base64, http.server, json, subprocess, sys, time, urllib.parse

port, key, cert, cred = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], check=True,
                     stdout=subprocess.PIPE).stdout


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(claims):
    head = {"alg": "RS256", "typ": "JWT", "x5c": [base64.b64encode(der).decode()]}
    msg = (b64u(json.dumps(head).encode()) + "." + b64u(json.dumps(claims).encode())).encode()
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=msg, check=True,
                         stdout=subprocess.PIPE).stdout
    return msg.decode() + "." + b64u(sig)


class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        user = None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            if base64.b64decode(auth[6:]).decode() != cred:
                self.send_response(401)
                self.end_headers()
                return
            user = cred.split(":")[0]
        access = []
        for s in q.get("scope", []):
            parts = s.split(":")
            if len(parts) == 3 and parts[0] == "repository":
                acts = [a for a in parts[2].split(",") if a == "pull" or (user and a == "push")]
                access.append({"type": "repository", "name": parts[1], "actions": acts})
        now = int(time.time())
        tok = jwt({"iss": "sifu-test-issuer", "sub": user or "", "aud": q.get("service", [""])[0],
                   "exp": now + 300, "nbf": now - 10, "iat": now, "jti": str(time.time_ns()),
                   "access": access})
        body = json.dumps({"token": tok, "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
