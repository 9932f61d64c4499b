"""Bundles built from a real registry: Debian's docker-registry with TLS and htpasswd, images made by umoci."""

import base64
import json
import subprocess

import pytest

from ansible_collections.petra.core.plugins.module_utils.bundle.create import create_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys, verify_bundle
from ansible_collections.petra.core.plugins.module_utils.oci.auth import Credentials
from ansible_collections.petra.core.plugins.module_utils.oci.registry import ClientPool
from ansible_collections.petra.core.plugins.module_utils.signing.keys import load_signer
from ansible_collections.petra.core.tests.support import images

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
