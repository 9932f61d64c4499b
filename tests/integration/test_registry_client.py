"""Registry client behaviour: bearer tokens from a token service, resumed downloads, bounded waits."""

import os
import socket
import threading

import pytest

from ansible_collections.petra.core.plugins.module_utils.oci.auth import Credentials
from ansible_collections.petra.core.plugins.module_utils.oci.errors import AuthenticationError, RegistryError
from ansible_collections.petra.core.plugins.module_utils.oci.registry import RegistryClient
from ansible_collections.petra.core.tests.support.fake_registry import FakeRegistry


def test_bearer_token_flow():
    with FakeRegistry() as fake:
        digest = fake.add_image("team/app", "1.0", [os.urandom(1000)])
        client = RegistryClient(fake.host, Credentials("robot", "pw"), insecure=True, retries=0)
        data, _media_type, got = client.get_manifest("team/app", "1.0")
        assert got == digest
        assert fake.token_requests[0]["scope"] == ["repository:team/app:pull"]
        assert fake.token_requests[0]["service"] == ["fake"]
        client.get_manifest("team/app", digest)
        assert len(fake.token_requests) == 1  # the token is reused for the same scope


def test_bearer_token_refused():
    with FakeRegistry() as fake:
        fake.add_image("team/app", "1.0", [b"x"])
        client = RegistryClient(fake.host, Credentials("robot", "wrong"), insecure=True, retries=0)
        with pytest.raises(AuthenticationError) as info:
            client.get_manifest("team/app", "1.0")
        assert "token service" in str(info.value) and "refused" in str(info.value)


def test_download_resumes_after_a_broken_connection():
    layer = os.urandom(3 * 1024 * 1024)
    with FakeRegistry(break_after=1024 * 1024 + 17) as fake:
        fake.add_image("team/app", "1.0", [layer])
        client = RegistryClient(fake.host, Credentials("robot", "pw"), insecure=True, retries=2, backoff=0.01)
        digest = [d for d, body in fake.blobs.items() if body == layer][0]
        received = b"".join(client.iter_blob("team/app", digest, len(layer)))
        assert received == layer
        ranges = [headers.get("Range") for path, headers in fake.requests if "/blobs/" in path and
                  headers.get("Authorization")]
        assert ranges[-1] is not None and ranges[-1].startswith("bytes=")
        assert int(ranges[-1].split("=")[1].rstrip("-")) > 0


def test_stalled_registry_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    accepted = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])  # accept, then never answer
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        client = RegistryClient("127.0.0.1:%d" % listener.getsockname()[1], insecure=True, read_timeout=0.5,
                                retries=1, backoff=0.01)
        with pytest.raises(RegistryError) as info:
            client.get_manifest("team/app", "1.0")
        assert "cannot reach registry" in str(info.value)
    finally:
        stop.set()
        thread.join()
        for sock in accepted:
            sock.close()
        listener.close()
