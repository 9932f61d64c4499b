"""Create and verify bundles from local content (files, manifest sets, packaged charts): no registry needed."""

import datetime
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import time

import pytest

from ansible_collections.petra.core.plugins.module_utils.bundle.create import create_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError, SpecError
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys, verify_bundle
from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes
from ansible_collections.petra.core.plugins.module_utils.oci.registry import ClientPool
from ansible_collections.petra.core.plugins.module_utils.signing.keys import load_signer
from ansible_collections.petra.core.tests.support.module_process import run_module

PINNED = {"SOURCE_DATE_EPOCH": "1767225600"}


def epoch_of(text):
    """Seconds of a recorded creation time (always whole seconds, UTC, with Z)."""
    moment = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    return int(moment.timestamp())


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
    from ansible_collections.petra.core.plugins.module_utils.oci import blobs

    real = blobs.iter_file

    def changing(path, chunk_size=1 << 20):
        for chunk in real(path, chunk_size):
            yield chunk[:-1] + bytes([chunk[-1] ^ 1])

    monkeypatch.setattr(blobs, "iter_file", changing)
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


SPEC_FILE = """apiVersion: petra.dev/v1alpha1
kind: Bundle
metadata: {name: local, version: 1.0.0}
charts: [{path: podinfo-6.5.0.tgz}]
manifests: [{name: apps, path: manifests/apps}]
files: [{name: k3s, path: bin/k3s}]
"""


def checkout(sources, target, mtime):
    """A copy of the sources elsewhere, every file with another modification time (as a fresh clone has)."""
    shutil.copytree(sources, target)
    for current, _dirs, files in os.walk(target):
        for name in files:
            os.utime(os.path.join(current, name), (mtime, mtime))
    return target


def test_unpinned_builds_are_byte_identical_anywhere_anytime(sources, tmp_path, ec_key):
    """Nothing pinned: two builds in two directories (different depth and file times), 2 s apart, in different time
    zones and locales, on different CPU counts and host names, through the module as Ansible runs it."""
    key, pub = ec_key
    make_chart(sources / "podinfo-6.5.0.tgz")
    (sources / "bundle.yaml").write_text(SPEC_FILE)
    cpus = sorted(os.sched_getaffinity(0))
    runs = []
    for index, (root, env, cpu_list) in enumerate((
            (tmp_path / "a", {"TZ": "UTC", "LC_ALL": "C", "LANG": "C"}, str(cpus[0])),
            (tmp_path / "b" / "deeper" / "still", {"TZ": "Pacific/Chatham", "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"},
             ",".join(str(cpu) for cpu in cpus)))):
        if index:
            time.sleep(2.1)
        checkout(sources, root / "src", 1_000_000_000 * (index + 1))
        env["SOURCE_DATE_EPOCH"] = None
        runs.append(run_module("petra_bundle", {"spec": str(root / "src" / "bundle.yaml"),
                                                "dest": str(root / "bundle.tar.zst"), "signing_key": key},
                               cwd=str(root), env=env, cpus=cpu_list, hostname="petra-build-%d" % index))
    first, second = runs
    assert first["sha256"] == second["sha256"]
    with open(first["path"], "rb") as one, open(second["path"], "rb") as two:
        assert one.read() == two.read()
    assert first["created"] == second["created"] == "1970-01-01T00:00:00Z"
    assert first["created_from"] == "fixed epoch"
    assert verify_bundle(second["path"], load_public_keys([pub]))["metadata"]["created"] == "1970-01-01T00:00:00Z"


def test_wall_clock_time_is_opt_in(sources, spool, ec_key):
    key, _pub = ec_key
    now = {"metadata": {"created": "now"}, "environ": {}}
    before = int(time.time())
    first = build(sources, spool, key, name="one.tar.zst", **now)
    assert first["created_from"] == "now" and before <= epoch_of(first["created"]) <= int(time.time())
    time.sleep(1.1)
    second = build(sources, spool, key, name="two.tar.zst", **now)
    assert second["created"] > first["created"] and second["sha256"] != first["sha256"]
    # Rebuilding the same content keeps the time the existing bundle recorded: nothing to rewrite.
    again = build(sources, spool, key, name="one.tar.zst", **now)
    assert again["changed"] is False and again["created"] == first["created"]
    # SOURCE_DATE_EPOCH stands in for the clock, as the reproducible-builds convention says.
    pinned = build(sources, spool, key, name="three.tar.zst", metadata={"created": "now"})
    assert (pinned["created"], pinned["created_from"]) == ("2026-01-01T00:00:00Z", "SOURCE_DATE_EPOCH")


def test_created_precedence(sources, spool, ec_key):
    key, _pub = ec_key
    stated = {"created": "2025-06-01T12:00:00.75+02:00"}
    from_spec = build(sources, spool, key, name="spec.tar.zst", environ={}, metadata=stated)
    assert (from_spec["created"], from_spec["created_from"]) == ("2025-06-01T10:00:00Z", "metadata.created")
    from_environment = build(sources, spool, key, name="env.tar.zst", metadata=stated)
    assert (from_environment["created"], from_environment["created_from"]) == ("2026-01-01T00:00:00Z",
                                                                               "SOURCE_DATE_EPOCH")
    derived = build(sources, spool, key, name="derived.tar.zst", environ={"SOURCE_DATE_EPOCH": ""})
    assert (derived["created"], derived["created_from"]) == ("1970-01-01T00:00:00Z", "fixed epoch")
    listing = subprocess.run("zstd -dc %s | tar -tvf -" % derived["path"], shell=True, capture_output=True,
                             text=True, timeout=60, env=dict(os.environ, TZ="UTC"), check=True).stdout.splitlines()
    assert listing and all("1970-01-01 00:00" in line for line in listing)
    with pytest.raises(BundleError, match="SOURCE_DATE_EPOCH='yesterday' is not a whole number"):
        build(sources, spool, key, name="bad.tar.zst", environ={"SOURCE_DATE_EPOCH": "yesterday"})


def recorded_expiry(result, pub):
    # Verification at a date before any of these expiries: the signed metadata holds what was recorded.
    verified = verify_bundle(result["path"], load_public_keys([pub]), today=datetime.date(2026, 1, 1))
    return verified["metadata"]["expires"]


def test_expires_is_a_date_or_counts_from_a_stated_time(sources, spool, ec_key):
    key, pub = ec_key
    cases = [
        ({}, {"expires": "2027-06-30"}, "2027-06-30"),  # a date stays as written, whatever the creation time
        ({}, {"created": "2026-01-01T23:30:00Z", "expires": "P30D"}, "2026-01-31"),
        ({}, {"created": "2026-01-01T23:30:00-05:00", "expires": "P1D"}, "2026-01-03"),  # the UTC day counts
        (PINNED, {"expires": "P2W"}, "2026-01-15"),
    ]
    for index, (environ, metadata, expected) in enumerate(cases):
        result = build(sources, spool, key, name="%d.tar.zst" % index, environ=environ, metadata=metadata)
        assert recorded_expiry(result, pub) == expected, metadata
    result = build(sources, spool, key, name="now.tar.zst", environ={}, metadata={"created": "now", "expires": "P90D"})
    created = datetime.datetime.fromtimestamp(epoch_of(result["created"]), datetime.timezone.utc).date()
    assert recorded_expiry(result, pub) == (created + datetime.timedelta(days=90)).isoformat()


def test_relative_expiry_needs_a_stated_time(sources, spool, ec_key):
    key, _pub = ec_key
    with pytest.raises(BundleError) as info:
        build(sources, spool, key, environ={}, metadata={"expires": "P30D"})
    assert "counts from the creation time, but none is stated" in info.value.message
    assert "metadata.created" in info.value.hint and "SOURCE_DATE_EPOCH" in info.value.hint
    with pytest.raises(SpecError, match=r"metadata.expires: '30 days' is neither a date YYYY-MM-DD nor a period"):
        build(sources, spool, key, metadata={"expires": "30 days"})
    with pytest.raises(SpecError, match=r"metadata.created: 'yesterday' is neither an RFC 3339 date-time nor 'now'"):
        build(sources, spool, key, metadata={"created": "yesterday"})
    assert os.listdir(spool) == []


def test_bundle_and_signature_names_are_synced(sources, spool, ec_key, tmp_path, monkeypatch):
    """The archive and its signature are renamed into place and then each directory is synced, so the new names
    survive a crash (the same writer as every other file Petra writes)."""
    key, _pub = ec_key
    signatures = tmp_path / "signatures"
    signatures.mkdir()
    dest, signature = spool / "b.tar.zst", signatures / "b.tar.zst.sig"
    synced = []
    real = os.fsync

    def fsync(descriptor):
        info = os.fstat(descriptor)
        synced.append((stat.S_ISDIR(info.st_mode), info.st_ino, dest.exists(), signature.exists()))
        real(descriptor)
    monkeypatch.setattr(os, "fsync", fsync)
    build(sources, spool, key, signature_path=str(signature))
    directories = [(inode, both) for is_dir, inode, *present in synced if is_dir for both in [all(present)]]
    assert (os.stat(spool).st_ino, True) in directories
    assert (os.stat(signatures).st_ino, True) in directories
    files = [present for is_dir, _inode, *present in synced if not is_dir]
    assert files and not any(any(present) for present in files)  # file contents synced before any rename
