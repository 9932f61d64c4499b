"""A scripted registry for client behaviour the real one cannot be made to show on demand:
the bearer-token flow with a token service, and a connection that breaks in the middle of a blob.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
import urllib.parse

from ansible_collections.petra.core.tests.support.servers import free_port


class FakeRegistry:
    def __init__(self, user="robot", password="pw", break_after=None):
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.user, self.password = user, password
        self.token = "token-%d" % self.port
        self.manifests = {}
        self.blobs = {}
        self.break_after = break_after  # bytes of a blob sent before the first response is cut off
        self.requests = []
        self.token_requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, code, body=b"", headers=None):
                self.send_response(code)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                server.requests.append((self.path, dict(self.headers)))
                parsed = urllib.parse.urlparse(self.path)
                if parsed.path == "/token":
                    server.token_requests.append(urllib.parse.parse_qs(parsed.query))
                    expected = "Basic " + base64.b64encode(("%s:%s" % (server.user, server.password)).encode()).decode()
                    if self.headers.get("Authorization") != expected:
                        return self._send(401, b'{"details":"bad credentials"}')
                    return self._send(200, json.dumps({"token": server.token}).encode(),
                                      {"Content-Type": "application/json"})
                if self.headers.get("Authorization") != "Bearer " + server.token:
                    repository = parsed.path.split("/v2/", 1)[-1].rsplit("/", 2)[0]
                    challenge = 'Bearer realm="http://%s/token",service="fake",scope="repository:%s:pull"' % (
                        server.host, repository)
                    return self._send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"auth"}]}',
                                      {"WWW-Authenticate": challenge, "Content-Type": "application/json"})
                if "/manifests/" in parsed.path:
                    reference = parsed.path.rsplit("/", 1)[-1]
                    if reference not in server.manifests:
                        return self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}')
                    body, media_type = server.manifests[reference]
                    return self._send(200, body, {"Content-Type": media_type,
                                                  "Docker-Content-Digest": "sha256:" + hashlib.sha256(body).hexdigest()})
                if "/blobs/" in parsed.path:
                    digest = parsed.path.rsplit("/", 1)[-1]
                    body = server.blobs[digest]
                    start = 0
                    if self.headers.get("Range"):
                        start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    if server.break_after is not None and start == 0:
                        # Promise the whole blob, send part of it, and hang up.
                        server.break_after, cut = None, server.break_after
                        self.send_response(200)
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body[:cut])
                        self.wfile.flush()
                        self.close_connection = True
                        return None
                    if start:
                        self.send_response(206)
                        self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(body) - 1, len(body)))
                        self.send_header("Content-Length", str(len(body) - start))
                        self.end_headers()
                        self.wfile.write(body[start:])
                        return None
                    return self._send(200, body)
                return self._send(404)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def add_image(self, repository, tag, layers):
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
        descriptors = []
        for data in [config] + layers:
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            self.blobs[digest] = data
            descriptors.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest,
                                "size": len(data)})
        descriptors[0]["mediaType"] = "application/vnd.oci.image.config.v1+json"
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": descriptors[0], "layers": descriptors[1:]}).encode()
        self.manifests[tag] = (manifest, "application/vnd.oci.image.manifest.v1+json")
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        self.manifests[digest] = self.manifests[tag]
        return digest

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
