"""The push pass of a load: every entry proven while it streams into the registry, uploads in parallel.

The signature pass hashes only the compressed file; a bundle re-signed after one of its entries was changed passes
it, and the push pass must stop at that entry before any manifest or tag is written, without storing the entry.
"""

import os
import subprocess
import tarfile
import threading

import pytest
from cryptography.hazmat.primitives import serialization

from ansible_collections.petra.core.plugins.module_utils.adapters.bundle import run_load
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import VerificationError
from ansible_collections.petra.core.plugins.module_utils.oci import writer as writer_module
from ansible_collections.petra.core.plugins.module_utils.oci.auth import Credentials
from ansible_collections.petra.core.plugins.module_utils.oci.registry import ClientPool
# bundle and high are pytest fixtures, used by name.
from ansible_collections.petra.core.tests.integration.test_load import (  # noqa: F401  pylint: disable=unused-import
    HIGH_USER,
    assert_no_dangling_tags,
    bundle,
    high,
    params_for,
)
from ansible_collections.petra.core.tests.support import craft, images

# (chunk_size, monolithic_limit) of RegistryWriter: the defaults send these small blobs in one PUT each; a limit of
# 0 streams every blob through the bounded queue to its upload worker and a streamed PATCH.
WHOLE, STREAMED = (32 << 20, 8 << 20), (1 << 20, 0)


@pytest.fixture(params=[WHOLE, STREAMED], ids=["whole", "streamed"])
def upload_mode(request, monkeypatch):
    monkeypatch.setattr(writer_module.RegistryWriter.__init__, "__defaults__", request.param)
    return request.param


def altered_and_resigned(bundle, tmp_path):
    """A copy of the bundle with one byte of one layer changed, signed again by the bundle's own key: its signature
    is valid, its metadata still names the layer's original digest. Returns (path, entry name, original digest)."""
    plain = tmp_path / "plain.tar"
    subprocess.run("zstd -q -dc %s > %s" % (bundle["path"], plain), shell=True, check=True, timeout=60)
    with tarfile.open(plain) as archive:
        layer = [m for m in archive.getmembers() if m.name.startswith("blobs/") and m.size > 100_000][-1]
    with open(plain, "r+b") as handle:
        handle.seek(layer.offset_data + 1000)
        byte = handle.read(1)
        handle.seek(layer.offset_data + 1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    path = tmp_path / "altered.tar.zst"
    subprocess.run(["zstd", "-q", "-f", str(plain), "-o", str(path)], check=True, timeout=60)
    with open(bundle["key"], "rb") as handle:
        craft.sign_file(str(path), serialization.load_pem_private_key(handle.read(), None))
    return str(path), layer.name, "sha256:" + layer.name.rsplit("/", 1)[-1]


def test_entry_altered_after_signing_stops_the_push_before_any_manifest(high, bundle, registry, tmp_path,
                                                                        upload_mode):
    path, entry, digest = altered_and_resigned(bundle, tmp_path)
    with pytest.raises(VerificationError) as info:
        run_load(params_for(high, dict(bundle, path=path)), check_mode=False)
    error = info.value
    assert error.reason == "altered", error.message
    assert entry in error.message and "was altered" in error.message
    assert "found while streaming the bundle into the registry" in error.message
    assert "stopped before writing any manifest or tag" in error.message

    client = ClientPool(Credentials(*HIGH_USER), ca_file=high.tls["ca.pem"]).new_client(high.host)
    writer = writer_module.RegistryWriter(client)
    repositories = high.catalog(*HIGH_USER)
    # The push pass had begun (blobs before the altered one are stored) ...
    assert repositories, "the push pass never started: the alteration was found in the signature pass"
    for repository in repositories:
        # ... but no manifest, by tag or by digest, and not the altered entry under its signed digest.
        for reference in ("1.0", "2.0", "3.0", registry.app_digest, registry.tools_digest, registry.multi_digest):
            assert writer.manifest_digest(repository, reference) is None, (repository, reference)
        assert not writer.blob_exists(repository, digest), repository
    assert_no_dangling_tags(high)
    # The intact bundle then loads completely into the same registry.
    assert run_load(params_for(high, bundle), check_mode=False)["changed"] is True
    reference = "mirror/%s/team/app:1.0" % registry.registry.host.replace(":", "-")
    assert images.skopeo_inspect_digest(high, reference, HIGH_USER) == registry.app_digest


def test_parallel_push_matches_a_sequential_one(high, bundle, registry, tls_material, tmp_path, monkeypatch,
                                                upload_mode):
    """Uploads overlap (never more than ``parallel``) and the registry ends up exactly as after a one-at-a-time load."""
    real = writer_module.RegistryWriter.upload_many
    lock = threading.Lock()
    running = {"now": 0, "most": 0}

    def counted(self, repositories, digest, size, chunks):
        with lock:
            running["now"] += 1
            running["most"] = max(running["most"], running["now"])
        try:
            return real(self, repositories, digest, size, chunks)
        finally:
            with lock:
                running["now"] -= 1

    monkeypatch.setattr(writer_module.RegistryWriter, "upload_many", counted)
    parallel = run_load(params_for(high, bundle, parallel=3), check_mode=False)
    most_parallel = running["most"]
    running["most"] = 0
    from ansible_collections.petra.core.tests.support import servers
    os.makedirs(str(tmp_path / "sequential"))
    with servers.Registry(str(tmp_path / "sequential"), tls=tls_material, users=dict([HIGH_USER])) as other:
        sequential = run_load(params_for(other, bundle, parallel=1), check_mode=False)
        assert running["most"] == 1
        assert 2 <= most_parallel <= 3
        for key in ("blobs", "bytes", "manifests_pushed", "tags_pushed"):
            assert parallel[key] == sequential[key], key
        assert parallel["blobs"]["pushed"] + parallel["blobs"]["mounted"] > 0
        assert [(i["target"].split("/", 1)[1], i["digest"]) for i in parallel["images"]] == \
            [(i["target"].split("/", 1)[1], i["digest"]) for i in sequential["images"]]
        assert sorted(high.catalog(*HIGH_USER)) == sorted(other.catalog(*HIGH_USER))
        for item in parallel["images"]:
            reference = item["target"].split("/", 1)[1].split("@")[0]
            assert images.skopeo_inspect_digest(high, reference, HIGH_USER) == item["digest"]
            assert images.skopeo_inspect_digest(other, reference, HIGH_USER) == item["digest"]
    assert_no_dangling_tags(high)
    again = run_load(params_for(high, bundle, parallel=3), check_mode=False)
    assert again["changed"] is False and again["blobs"]["pushed"] == 0
