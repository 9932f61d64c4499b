"""Create and verify bundles from local content (files, manifest sets, packaged charts): no registry needed."""

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile

import pytest

from ansible_collections.petra.core.plugins.module_utils.bundle.create import create_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys, verify_bundle
from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes
from ansible_collections.petra.core.plugins.module_utils.oci.registry import ClientPool
from ansible_collections.petra.core.plugins.module_utils.signing.keys import load_signer

PINNED = {"SOURCE_DATE_EPOCH": "1767225600"}


def make_chart(path, name="podinfo", version="6.5.0"):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        for member, text in (("%s/Chart.yaml" % name, "apiVersion: v2\nname: %s\nversion: %s\n" % (name, version)),
                             ("%s/values.yaml" % name, "replicas: 1\n")):
            data = text.encode()
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(raw.getvalue(), mtime=0))


def local_spec(root, **metadata):
    make_chart(root / "podinfo-6.5.0.tgz")
    meta = {"name": "local", "version": "1.0.0"}
    meta.update(metadata)
    return BundleSpec({
        "apiVersion": "petra.dev/v1alpha1", "kind": "Bundle", "metadata": meta,
        "charts": [{"path": "podinfo-6.5.0.tgz"}],
        "manifests": [{"name": "apps", "path": "manifests/apps"}],
        "files": [{"name": "k3s", "path": "bin/k3s"}],
    }, str(root))


def build(sources, spool, key, name="b.tar.zst", environ=None, **kwargs):
    spec = local_spec(sources, **kwargs.pop("metadata", {}))
    environ = PINNED if environ is None else environ
    return create_bundle(spec, str(spool / name), load_signer(key), ClientPool(), environ=environ, **kwargs)


def test_create_and_verify(sources, spool, ec_key):
    key, pub = ec_key
    result = build(sources, spool, key)
    assert result["changed"] is True
    assert os.path.getsize(result["path"]) == result["size"]
    with open(result["path"], "rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == result["sha256"]
    verified = verify_bundle(result["path"], load_public_keys([pub]))
    meta = verified["metadata"]
    assert verified["verified"] is True
    assert meta["name"] == "local" and meta["created"] == "2026-01-01T00:00:00Z"
    assert [c["name"] for c in meta["charts"]] == ["podinfo"] and meta["charts"][0]["version"] == "6.5.0"
    assert [m["name"] for m in meta["manifests"]] == ["apps"] and meta["manifests"][0]["fileCount"] == 2
    assert meta["files"][0]["size"] == 200_000
    assert verified["entries_checked"] == meta["entry_count"]


def test_gnu_tar_and_openssl_accept_it(sources, spool, ec_key, tmp_path):
    key, pub = ec_key
    result = build(sources, spool, key)
    listing = subprocess.run("zstd -dc %s | tar -tvf -" % result["path"], shell=True, capture_output=True, text=True,
                             timeout=60, check=True).stdout.splitlines()
    names = [line.split()[-1] for line in listing]
    assert names[:4] == ["petra-bundle.json", "oci-layout", "index.json", "sbom.cdx.json"]
    assert names[4:] == sorted(names[4:]) and all(n.startswith("blobs/sha256/") for n in names[4:])
    assert all(line.startswith("-rw-r--r-- 0/0") and "2026-01-01 00:00" in line for line in listing)
    extract = tmp_path / "x"
    extract.mkdir()
    subprocess.run("zstd -dc %s | tar -xf - -C %s" % (result["path"], extract), shell=True, check=True, timeout=60)
    index = json.loads((extract / "index.json").read_text())
    kinds = sorted(m["annotations"][mediatypes.ANNOTATION_PETRA_KIND] for m in index["manifests"])
    assert kinds == ["chart", "file", "manifests"]
    for digest_file in (extract / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(digest_file.read_bytes()).hexdigest() == digest_file.name
    chart_manifest = next(m for m in index["manifests"] if m["annotations"][mediatypes.ANNOTATION_PETRA_KIND] == "chart")
    manifest = json.loads((extract / "blobs" / "sha256" / chart_manifest["digest"].split(":")[1]).read_bytes())
    assert manifest["config"]["mediaType"] == mediatypes.HELM_CONFIG
    assert manifest["layers"][0]["mediaType"] == mediatypes.HELM_CHART_LAYER
    der = tmp_path / "sig.der"
    der.write_bytes(__import__("base64").b64decode(open(result["signature"], "rb").read()))
    check = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pub, "-signature", str(der), result["path"]],
                           capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0 and "Verified OK" in check.stdout


def test_deterministic(sources, spool, ec_key):
    key, _pub = ec_key
    first = build(sources, spool, key, name="one.tar.zst")
    second = build(sources, spool, key, name="two.tar.zst")
    assert first["sha256"] == second["sha256"]
    with open(first["path"], "rb") as a, open(second["path"], "rb") as b:
        assert a.read() == b.read()


def test_content_change_changes_the_bundle(sources, spool, ec_key):
    key, _pub = ec_key
    first = build(sources, spool, key, name="one.tar.zst")
    (sources / "manifests" / "apps" / "namespace.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n")
    assert build(sources, spool, key, name="two.tar.zst")["sha256"] != first["sha256"]


def test_idempotent_and_check_mode(sources, spool, ec_key):
    key, _pub = ec_key
    first = build(sources, spool, key)
    mtime = os.stat(first["path"]).st_mtime_ns
    again = build(sources, spool, key)
    assert again["changed"] is False and again["sha256"] == first["sha256"]
    assert os.stat(first["path"]).st_mtime_ns == mtime
    assert build(sources, spool, key, check_mode=True)["changed"] is False
    (sources / "bin" / "k3s").write_bytes(os.urandom(1000))
    checked = build(sources, spool, key, check_mode=True)
    assert checked["changed"] is True and checked["sha256"] is None
    assert os.stat(first["path"]).st_mtime_ns == mtime
    assert build(sources, spool, key)["changed"] is True


def test_unpinned_creation_time_is_idempotent(sources, spool, ec_key):
    key, _pub = ec_key
    first = build(sources, spool, key, environ={})
    again = build(sources, spool, key, environ={})
    assert again["changed"] is False and again["created"] == first["created"]


def test_new_signing_key_rebuilds(sources, spool, ec_key, tmp_path):
    key, _pub = ec_key
    build(sources, spool, key)
    other = tmp_path / "other.pem"
    from ansible_collections.petra.core.tests.support import pki
    pki.write_ec_key(str(other))
    assert build(sources, spool, str(other))["changed"] is True


def test_check_mode_writes_nothing(sources, spool, ec_key):
    key, _pub = ec_key
    result = build(sources, spool, key, check_mode=True)
    assert result["changed"] is True
    assert os.listdir(spool) == []


def test_failure_leaves_nothing_behind(sources, spool, ec_key, monkeypatch):
    key, _pub = ec_key
    from ansible_collections.petra.core.plugins.module_utils.bundle import artifacts

    real = artifacts.iter_file

    def changing(path, chunk_size=1 << 20):
        for chunk in real(path, chunk_size):
            yield chunk[:-1] + bytes([chunk[-1] ^ 1])

    monkeypatch.setattr(artifacts, "iter_file", changing)
    with pytest.raises(BundleError, match="changed while the bundle was written"):
        build(sources, spool, key)
    assert os.listdir(spool) == []


def test_missing_source_is_named(sources, spool, ec_key):
    key, _pub = ec_key
    (sources / "bin" / "k3s").unlink()
    with pytest.raises(BundleError, match="bin/k3s"):
        build(sources, spool, key)


def test_manifest_link_refused(sources, spool, ec_key):
    key, _pub = ec_key
    os.symlink("/etc/passwd", sources / "manifests" / "apps" / "passwd.yaml")
    with pytest.raises(BundleError, match="links and special files are not carried"):
        build(sources, spool, key)


def test_invalid_manifest_yaml_refused(sources, spool, ec_key):
    key, _pub = ec_key
    (sources / "manifests" / "apps" / "bad.yaml").write_text("a: [unclosed\n")
    with pytest.raises(BundleError, match="bad.yaml is not valid YAML"):
        build(sources, spool, key)
