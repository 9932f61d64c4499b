"""Start and stop real servers on loopback for tests, every wait bounded."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
import ssl


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, timeout=15.0, process=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError("the server exited early with code %s" % process.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("nothing listened on 127.0.0.1:%d within %.0fs" % (port, timeout))


class Registry:
    """Debian's docker-registry (CNCF distribution) on a loopback port, optionally with TLS and htpasswd."""

    def __init__(self, workdir, tls=None, users=None, auth_lines=None):
        self.workdir = workdir
        self.auth_lines = auth_lines  # a ready auth section (e.g. token auth) instead of htpasswd
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.tls = tls  # dict with ca.pem/server.pem/server.key paths
        self.users = users or {}
        self.process = None
        self.log_path = os.path.join(workdir, "registry.log")

    def _config(self):
        storage = os.path.join(self.workdir, "storage")
        os.makedirs(storage, exist_ok=True)
        lines = [
            "version: 0.1",
            "log: {level: warn}",
            "storage:",
            "  filesystem: {rootdirectory: %s}" % storage,
            "  delete: {enabled: true}",
            "http:",
            "  addr: 127.0.0.1:%d" % self.port,
            "  headers: {X-Content-Type-Options: [nosniff]}",
        ]
        if self.tls:
            lines += ["  tls:", "    certificate: %s" % self.tls["server.pem"], "    key: %s" % self.tls["server.key"]]
        if self.auth_lines:
            lines += self.auth_lines
        elif self.users:
            htpasswd = os.path.join(self.workdir, "htpasswd")
            with open(htpasswd, "w") as handle:
                for user, password in self.users.items():
                    out = subprocess.run(["htpasswd", "-nbB", user, password], check=True, capture_output=True,
                                         text=True, timeout=30).stdout.strip()
                    handle.write(out + "\n")
            lines += ["auth:", "  htpasswd: {realm: petra-test, path: %s}" % htpasswd]
        path = os.path.join(self.workdir, "config.yml")
        with open(path, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        return path

    def start(self):
        config = self._config()
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen([shutil.which("docker-registry") or "/usr/bin/docker-registry", "serve", config],
                                        stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, process=self.process)
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def catalog(self, user=None, password=None):
        scheme = "https" if self.tls else "http"
        request = urllib.request.Request("%s://%s/v2/_catalog" % (scheme, self.host))
        if user:
            import base64
            request.add_header("Authorization", "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode())
        context = ssl.create_default_context(cafile=self.tls["ca.pem"]) if self.tls else None
        import json
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return json.load(response)["repositories"]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
