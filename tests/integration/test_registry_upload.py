"""Chunked, resumable uploads and mounts against Debian's docker-registry (TLS + htpasswd)."""

import hashlib
import os

import pytest

from ansible_collections.petra.core.plugins.module_utils.oci.auth import Credentials
from ansible_collections.petra.core.plugins.module_utils.oci.errors import RegistryError, UploadInterrupted
from ansible_collections.petra.core.plugins.module_utils.oci.registry import RegistryClient
from ansible_collections.petra.core.plugins.module_utils.oci.writer import RegistryWriter
from ansible_collections.petra.core.tests.support import servers
from ansible_collections.petra.core.tests.support.proxy import FaultyProxy

USER = ("uploader", "Upl0ad-pass")


@pytest.fixture
def target(tmp_path, tls_material):
    with servers.Registry(str(tmp_path), tls=tls_material, users=dict([USER])) as server:
        yield server


def client_for(server, **kwargs):
    return RegistryClient(server.host, Credentials(*USER), ca_file=server.tls["ca.pem"], backoff=0.01, **kwargs)


def pieces(data, size):
    for start in range(0, len(data), size):
        yield data[start:start + size]


def test_chunked_upload_and_mount(target):
    data = os.urandom(5 * 1024 * 1024 + 123)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    writer = RegistryWriter(client_for(target), chunk_size=1024 * 1024, monolithic_limit=64 * 1024)
    assert not writer.blob_exists("team/a", digest)
    writer.upload("team/a", digest, len(data), pieces(data, 300_000))
    assert writer.blob_exists("team/a", digest)
    assert b"".join(client_for(target).iter_blob("team/a", digest, len(data))) == data
    assert writer.mount("team/b", digest, "team/a") is True
    assert writer.blob_exists("team/b", digest)


def test_streamed_upload_broken_mid_stream(target):
    """The connection breaks after the registry stored part of what was sent. distribution then refuses to resume
    the session (its state token no longer matches), so the writer reports UploadInterrupted for the loader to
    send the blob again; nothing half-written is left as a blob."""
    data = os.urandom(4 * 1024 * 1024)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    client = client_for(target, retries=3)
    real_request = client.request
    broken = []

    def flaky(method, path, repository, **kwargs):
        if method == "PATCH" and not broken:
            stream = kwargs.pop("data")
            consumed = b"".join(next(stream) for _chunk in range(6))  # 3 MiB left the source...
            broken.append(len(consumed))
            real_request(method, path, repository, data=consumed[:2_500_000], **kwargs)  # ...2.5 MB arrived
            raise RegistryError("connection reset by peer (injected)")
        return real_request(method, path, repository, **kwargs)

    client.request = flaky
    writer = RegistryWriter(client, chunk_size=1024 * 1024, monolithic_limit=0)
    with pytest.raises(UploadInterrupted) as info:
        writer.upload("team/resume", digest, len(data), pieces(data, 512 * 1024))
    assert "cannot resume" in str(info.value) and "Run again" in str(info.value)
    assert broken == [3 * 1024 * 1024]
    assert not writer.blob_exists("team/resume", digest)
    writer.upload("team/resume", digest, len(data), pieces(data, 512 * 1024))
    assert b"".join(client_for(target).iter_blob("team/resume", digest, len(data))) == data


def test_chunked_upload_resumes_a_broken_chunk(target):
    """Several repositories at once (no mount) go chunk by chunk; a failed chunk resumes from what is confirmed."""
    data = os.urandom(3 * 1024 * 1024)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    client = client_for(target, retries=3)
    real_request = client.request
    patches = []

    def flaky(method, path, repository, **kwargs):
        if method == "PATCH":
            patches.append(kwargs["headers"]["Content-Range"])
            if len(patches) == 2:
                raise RegistryError("connection reset by peer (injected)")
        return real_request(method, path, repository, **kwargs)

    client.request = flaky
    writer = RegistryWriter(client, chunk_size=1024 * 1024, monolithic_limit=0)
    writer.upload_many(["team/one", "team/two"], digest, len(data), pieces(data, 256 * 1024))
    assert patches[1] == patches[2]  # the failed chunk was sent again from the confirmed offset
    for repository in ("team/one", "team/two"):
        assert b"".join(client_for(target).iter_blob(repository, digest, len(data))) == data


def test_upload_with_wrong_digest_is_refused(target):
    data = os.urandom(100_000)
    writer = RegistryWriter(client_for(target, retries=0))
    with pytest.raises(RegistryError) as info:
        writer.upload("team/bad", "sha256:" + "0" * 64, len(data), [data])
    assert "400" in str(info.value) or "DIGEST_INVALID" in str(info.value)
    assert not writer.blob_exists("team/bad", "sha256:" + "0" * 64)


def test_manifest_head_and_put(target):
    config = b"{}"
    writer = RegistryWriter(client_for(target))
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    writer.upload("team/m", config_digest, len(config), [config])
    manifest = ('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":'
                '{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":2},"layers":[]}'
                % config_digest).encode()
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    assert writer.manifest_digest("team/m", "v1") is None
    assert writer.put_manifest("team/m", "v1", manifest, "application/vnd.oci.image.manifest.v1+json") == digest
    assert writer.manifest_digest("team/m", "v1") == digest


# -- through a proxy that stalls or resets connections (tests/support/proxy.py) -------------------------------------
MIB = 1024 * 1024


def proxied_writer(target, proxy, retries=2, **kwargs):
    """A writer reaching the registry through the proxy, with a 1 s timeout so stalls cost seconds."""
    client = RegistryClient(proxy.host, Credentials(*USER), ca_file=target.tls["ca.pem"], connect_timeout=1.0,
                            read_timeout=1.0, retries=retries, backoff=0.2)
    return RegistryWriter(client, chunk_size=kwargs.pop("chunk_size", 32 * MIB), **kwargs)


def blob(size):
    data = os.urandom(size)
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("mode", ["stall", "reset"])
@pytest.mark.parametrize("size", [3 * MIB, 10 * MIB], ids=["single-put", "streamed-patch"])
def test_interrupted_upload_completes_in_a_new_session(target, mode, size):
    """The first connection that carries 1 MiB stalls (or is reset). distribution drops that session (its stored
    size no longer matches the state token: BLOB_UPLOAD_INVALID), so the writer opens a new one and sends the bytes
    it still holds: the whole blob for a single PUT, the replay window for a streamed PATCH."""
    data, digest = blob(size)
    with FaultyProxy(target.port, mode, after=MIB, faults=1) as proxy:
        writer = proxied_writer(target, proxy)
        writer.upload("acc/one", digest, len(data), pieces(data, 256 * 1024))
        assert proxy.faulted == 1
    assert b"".join(client_for(target).iter_blob("acc/one", digest, len(data))) == data


def test_interrupted_chunked_upload_starts_over_in_a_new_session(target):
    """Several repositories at once (no mount), chunk by chunk: a reset inside the first chunk loses the session,
    and the chunk still at hand goes again into a new one."""
    data, digest = blob(6 * MIB)
    with FaultyProxy(target.port, "reset", after=MIB, faults=1) as proxy:
        writer = proxied_writer(target, proxy, chunk_size=4 * MIB, monolithic_limit=0)
        writer.upload_many(["acc/one", "acc/two"], digest, len(data), pieces(data, 256 * 1024))
        assert proxy.faulted == 1
    for repository in ("acc/one", "acc/two"):
        assert b"".join(client_for(target).iter_blob(repository, digest, len(data))) == data


@pytest.mark.parametrize("mode,size", [("stall", 3 * MIB), ("reset", 10 * MIB)])
def test_unreachable_registry_is_an_interrupted_upload(target, mode, size):
    """Every connection that carries 1 MiB stalls or is reset: after the bounded retries the upload reports an
    interruption naming the registry and the blob, with the advice to run again, never a missing repository."""
    data, digest = blob(size)
    with FaultyProxy(target.port, mode, after=MIB) as proxy:
        writer = proxied_writer(target, proxy, retries=1)
        with pytest.raises(UploadInterrupted) as info:
            writer.upload("acc/one", digest, len(data), pieces(data, 256 * 1024))
        assert proxy.faulted == 2
    message = str(info.value)
    assert proxy.host in message and digest in message and "Run again" in message
    assert "has no" not in message and "_state=" not in message
    assert not RegistryWriter(client_for(target)).blob_exists("acc/one", digest)


def test_mount_that_cannot_get_through_is_an_interrupted_upload(target):
    """A mount is an upload that sends no bytes: when every connection is reset it reports an interruption naming
    the blob (the loader then sends the blob instead), not a TLS or repository problem."""
    data, digest = blob(100_000)
    RegistryWriter(client_for(target)).upload("acc/one", digest, len(data), [data])
    with FaultyProxy(target.port, "reset", after=0) as proxy:
        writer = proxied_writer(target, proxy, retries=1)
        with pytest.raises(UploadInterrupted) as info:
            writer.mount("acc/two", digest, "acc/one")
        assert proxy.faulted >= 2
    assert digest in str(info.value) and "acc/two" in str(info.value) and proxy.host in str(info.value)
    with FaultyProxy(target.port, "reset", after=0, faults=1) as proxy:
        assert proxied_writer(target, proxy).mount("acc/two", digest, "acc/one") is True
