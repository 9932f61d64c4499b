"""A token issuer for distribution's token authentication (the WWW-Authenticate: Bearer flow), for tests.

It checks basic credentials and answers with an ES256 JWT whose x5c header carries the signing certificate;
the registry trusts that certificate through its rootcertbundle.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import os
import threading
import time
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.x509.oid import NameOID

from ansible_collections.petra.core.tests.support.servers import free_port

SERVICE = "petra-test-registry"
ISSUER = "petra-test-issuer"


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    def __init__(self, workdir, users):
        self.port = free_port()
        self.realm = "http://127.0.0.1:%d/token" % self.port
        self.users = users
        self.issued = []
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "petra test token signer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self._cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                      .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
                      .not_valid_before(now - datetime.timedelta(minutes=5))
                      .not_valid_after(now + datetime.timedelta(days=1))
                      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                      .sign(self._key, hashes.SHA256()))
        self.rootcertbundle = os.path.join(workdir, "token-signer.pem")
        with open(self.rootcertbundle, "wb") as handle:
            handle.write(self._cert.public_bytes(serialization.Encoding.PEM))
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                parsed = urllib.parse.urlparse(self.path)
                query = urllib.parse.parse_qs(parsed.query)
                header = self.headers.get("Authorization", "")
                user = None
                if header.startswith("Basic "):
                    name, _sep, password = base64.b64decode(header[6:]).decode().partition(":")
                    if server.users.get(name) == password:
                        user = name
                if user is None:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                token = server.token(user, query.get("scope", []))
                body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def token(self, user, scopes):
        access = []
        for scope in scopes:
            for item in scope.split(" "):
                kind, _sep, rest = item.partition(":")
                name, _sep, actions = rest.rpartition(":")
                access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]})
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": user, "aud": SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": _b64(os.urandom(12)), "access": access}
        header = {"typ": "JWT", "alg": "ES256",
                  "x5c": [base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()]}
        signing_input = (_b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())).encode()
        r, s = utils.decode_dss_signature(self._key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        self.issued.append(claims)
        return signing_input.decode() + "." + _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def registry_auth(self):
        """The auth section of a docker-registry configuration that trusts this issuer."""
        return ["auth:", "  token:", "    realm: %s" % self.realm, "    service: %s" % SERVICE,
                "    issuer: %s" % ISSUER, "    rootcertbundle: %s" % self.rootcertbundle]

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
