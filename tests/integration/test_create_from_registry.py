"""Bundles built from a real registry: Debian's docker-registry with TLS and htpasswd, images made by umoci."""

import base64
import hashlib
import json
import os
import subprocess
import time

import pytest

from ansible_collections.petra.core.plugins.module_utils.bundle.create import create_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys, verify_bundle
from ansible_collections.petra.core.plugins.module_utils.oci.auth import Credentials
from ansible_collections.petra.core.plugins.module_utils.oci.registry import ClientPool
from ansible_collections.petra.core.plugins.module_utils.signing.keys import load_signer
from ansible_collections.petra.core.tests.support import images
from ansible_collections.petra.core.tests.support.module_process import run_module

PINNED = {"SOURCE_DATE_EPOCH": "1767225600"}
USER = ("petra", "s3cret-Passw0rd")


def pool_for(registry, credentials=USER, ca=True):
    return ClientPool(Credentials(*credentials) if credentials else Credentials(),
                      ca_file=registry.registry.tls["ca.pem"] if ca else None, retries=1)


def spec_for(root, image_items, **extra):
    document = {"apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
                "metadata": {"name": "from-registry", "version": "1.0.0"}, "images": image_items}
    document.update(extra)
    return BundleSpec(document, str(root))


def build(registry, tmp_path, key, items, name="b.tar.zst", pool=None, **kwargs):
    return create_bundle(spec_for(tmp_path, items), str(tmp_path / name), load_signer(key), pool or pool_for(registry),
                         environ=PINNED, **kwargs)


def extract(path, target):
    target.mkdir()
    subprocess.run("zstd -q -dc '%s' | tar -xf - -C '%s'" % (path, target), shell=True, check=True, timeout=120)
    return target


def test_images_digests_and_dedup(registry, tmp_path, ec_key):
    key, pub = ec_key
    items = [{"ref": registry.app}, {"ref": registry.tools}, {"ref": registry.multi}]
    result = build(registry, tmp_path, key, items)
    by_ref = {item["ref"]: item["digest"] for item in result["images"]}
    # Independent client: skopeo reads the same digests from the registry.
    creds = USER
    assert by_ref[registry.app] == images.skopeo_inspect_digest(registry.registry, "team/app:1.0", creds) == \
        registry.app_digest
    assert by_ref[registry.tools] == registry.tools_digest
    assert by_ref[registry.multi] == registry.multi_digest
    verified = verify_bundle(result["path"], load_public_keys([pub]))
    multi = next(i for i in verified["metadata"]["images"] if i["ref"] == registry.multi)
    assert {m["platform"]: m["digest"] for m in multi["manifests"]} == registry.multi_children
    # app and tools share their "base" layer: stored once.
    names = [e["name"] for e in json.loads(_metadata_text(result["path"]))["entries"]]
    assert len(names) == len(set(names))
    assert result["blob_count"] == len([n for n in names if n.startswith("blobs/")])


def _metadata_text(path):
    return subprocess.run("zstd -q -dc '%s' | tar -xOf - petra-bundle.json" % path, shell=True, check=True,
                          capture_output=True, text=True, timeout=60).stdout


def test_layout_is_readable_by_skopeo_and_bytes_are_unchanged(registry, tmp_path, ec_key):
    key, _pub = ec_key
    result = build(registry, tmp_path, key, [{"ref": registry.app}, {"ref": registry.multi}])
    layout = extract(result["path"], tmp_path / "layout")
    for ref, digest in ((registry.app, registry.app_digest), (registry.multi, registry.multi_digest)):
        raw = subprocess.run(["skopeo", "inspect", "--raw", "oci:%s:%s" % (layout, ref)], check=True,
                             capture_output=True, timeout=60).stdout
        import hashlib
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
    copied = tmp_path / "copied"
    subprocess.run(["skopeo", "copy", "--all", "--preserve-digests", "oci:%s:%s" % (layout, registry.multi),
                    "oci:%s:multi" % copied], check=True, capture_output=True, timeout=120)


def test_platform_filter(registry, tmp_path, ec_key):
    key, pub = ec_key
    result = build(registry, tmp_path, key, [{"ref": registry.multi, "platforms": ["linux/arm64"]}])
    assert result["images"][0]["digest"] == registry.multi_digest  # the index itself is unchanged
    meta = verify_bundle(result["path"], load_public_keys([pub]))["metadata"]
    assert [m["platform"] for m in meta["images"][0]["manifests"]] == ["linux/arm64"]
    names = {e["name"] for e in json.loads(_metadata_text(result["path"]))["entries"]}
    assert "blobs/sha256/" + registry.multi_children["linux/arm64"].split(":")[1] in names
    assert "blobs/sha256/" + registry.multi_children["linux/amd64"].split(":")[1] not in names


def test_platform_filter_without_match(registry, tmp_path, ec_key):
    key, _pub = ec_key
    with pytest.raises(BundleError) as info:
        build(registry, tmp_path, key, [{"ref": registry.multi, "platforms": ["linux/s390x"]}])
    assert "linux/s390x" in str(info.value) and "linux/amd64, linux/arm64" in str(info.value)


def test_digest_reference(registry, tmp_path, ec_key):
    key, _pub = ec_key
    ref = "%s/team/app@%s" % (registry.registry.host, registry.app_digest)
    assert build(registry, tmp_path, key, [{"ref": ref}])["images"][0]["digest"] == registry.app_digest


def test_deterministic_and_idempotent(registry, tmp_path, ec_key):
    key, _pub = ec_key
    items = [{"ref": registry.app}, {"ref": registry.multi}]
    first = build(registry, tmp_path, key, items, name="one.tar.zst")
    second = build(registry, tmp_path, key, items, name="two.tar.zst")
    assert first["sha256"] == second["sha256"]
    again = build(registry, tmp_path, key, items, name="one.tar.zst")
    assert again["changed"] is False


@pytest.fixture(scope="module")
def dated(registry, tmp_path_factory):
    """Images whose configs carry known creation times: one image, and a two-platform index whose arm64 image is
    newer than everything else."""
    workdir = tmp_path_factory.mktemp("dated")
    layout = str(workdir / "layout")
    images.build_image(layout, "single", ["d-single"], created="2025-03-04T05:06:07.891234567Z")
    images.build_image(layout, "m-amd64", ["d-amd64"], arch="amd64", created="2025-05-06T09:08:09+02:00")
    images.build_image(layout, "m-arm64", ["d-arm64"], arch="arm64", created="2025-09-10T11:12:13Z")
    images.add_multiarch_index(layout, "multi", {"linux/amd64": "m-amd64", "linux/arm64": "m-arm64"})
    images.push(layout, "single", registry.registry, "dated/single", "1", creds=USER)
    images.push(layout, "multi", registry.registry, "dated/multi", "1", creds=USER, all_platforms=True)
    host = registry.registry.host
    return {"single": "%s/dated/single:1" % host, "multi": "%s/dated/multi:1" % host}


def test_unpinned_builds_from_a_registry_are_byte_identical(registry, dated, tmp_path, ec_key):
    """Nothing pinned: the time comes from the newest config among the images carried (the arm64 image is filtered
    out), and two builds in two directories, 2 s apart, in other time zones and locales, give the same bytes."""
    key, pub = ec_key
    spec = ("apiVersion: petra.dev/v1alpha1\nkind: Bundle\nmetadata: {name: dated, version: 1.0.0}\n"
            "images:\n  - ref: %s\n  - ref: %s\n    platforms: [linux/amd64]\n" % (dated["single"], dated["multi"]))
    connection = {"ca_file": registry.registry.tls["ca.pem"], "registry_username": USER[0],
                  "registry_password": USER[1], "signing_key": key}
    runs = []
    for index, (root, env) in enumerate(((tmp_path / "one", {"TZ": "Asia/Kathmandu", "LC_ALL": "C"}),
                                         (tmp_path / "two" / "other", {"TZ": "America/St_Johns",
                                                                       "LC_ALL": "C.UTF-8"}))):
        if index:
            time.sleep(2.1)
        os.makedirs(root)
        (root / "bundle.yaml").write_text(spec)
        env["SOURCE_DATE_EPOCH"] = None
        runs.append(run_module("petra_bundle", dict(connection, spec=str(root / "bundle.yaml"),
                                                    dest=str(root / "dated.tar.zst")),
                               cwd=str(root), env=env, hostname="petra-registry-build-%d" % index))
    first, second = runs
    assert first["sha256"] == second["sha256"]
    for result in runs:
        with open(result["path"], "rb") as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == first["sha256"]
    assert (first["created"], first["created_from"]) == ("2025-05-06T07:08:09Z", "image configs")
    metadata = verify_bundle(first["path"], load_public_keys([pub]))["metadata"]
    assert metadata["created"] == "2025-05-06T07:08:09Z"
    listing = subprocess.run("zstd -q -dc '%s' | tar -tvf -" % first["path"], shell=True, check=True, timeout=60,
                             capture_output=True, text=True, env=dict(os.environ, TZ="UTC")).stdout.splitlines()
    assert listing and all("2025-05-06 07:08" in line for line in listing)
    # Every platform carried: the arm64 image's newer time is the bundle's.
    everything = create_bundle(spec_for(tmp_path, [{"ref": dated["single"]}, {"ref": dated["multi"]}]),
                               str(tmp_path / "all.tar.zst"), load_signer(key), pool_for(registry), environ={})
    assert (everything["created"], everything["created_from"]) == ("2025-09-10T11:12:13Z", "image configs")


def test_wrong_password(registry, tmp_path, ec_key):
    key, _pub = ec_key
    with pytest.raises(BundleError) as info:
        build(registry, tmp_path, key, [{"ref": registry.app}], pool=pool_for(registry, ("petra", "wrong")))
    assert "refused access" in str(info.value) and "registry_username" in str(info.value)
    assert not any(p.name.endswith((".tar.zst", ".sig", ".tmp")) for p in tmp_path.iterdir())


def test_auth_file(registry, tmp_path, ec_key, monkeypatch):
    key, _pub = ec_key
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"auths": {registry.registry.host: {
        "auth": base64.b64encode(("%s:%s" % USER).encode()).decode()}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth))
    result = build(registry, tmp_path, key, [{"ref": registry.app}], pool=pool_for(registry, credentials=None))
    assert result["images"][0]["digest"] == registry.app_digest


def test_untrusted_tls(registry, tmp_path, ec_key):
    key, _pub = ec_key
    with pytest.raises(BundleError) as info:
        build(registry, tmp_path, key, [{"ref": registry.app}], pool=pool_for(registry, ca=False))
    assert "TLS" in str(info.value) and "ca_file" in str(info.value)


@pytest.mark.parametrize("reference,missing", [
    ("team/app:9.9", "has no tag 9.9 in repository team/app"),
    ("team/app@sha256:" + "0" * 64, "has no manifest sha256:%s in repository team/app" % ("0" * 64)),
    ("team/nothing:1.0", "has no repository team/nothing"),
], ids=["tag", "digest", "repository"])
def test_missing_reference_names_what_is_missing(registry, tmp_path, ec_key, reference, missing):
    """distribution answers MANIFEST_UNKNOWN whether the tag, the digest or the whole repository is missing: the
    message says which one, and what to check."""
    key, _pub = ec_key
    with pytest.raises(BundleError) as info:
        build(registry, tmp_path, key, [{"ref": "%s/%s" % (registry.registry.host, reference)}])
    assert reference in str(info.value) and missing in str(info.value)
    assert ("list-tags" in str(info.value)) == reference.endswith(":9.9")


def test_registry_down(registry, tmp_path, ec_key):
    key, _pub = ec_key
    from ansible_collections.petra.core.tests.support.servers import free_port
    with pytest.raises(BundleError) as info:
        build(registry, tmp_path, key, [{"ref": "127.0.0.1:%d/team/app:1.0" % free_port()}])
    assert "cannot reach registry" in str(info.value)
