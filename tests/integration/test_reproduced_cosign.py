"""Reproduced, then co-signed (issue 16 §4): petra_bundle state=signed rebuild=true against the real registry.

The builder (key a) builds a bundle of an image from docker-registry and a local file; the co-signer (key b)
rebuilds it from the same spec on the same sources and co-signs only a byte-identical rebuild. A tag moved to another
image after the build, or a changed spec, is refused naming what differs, and writes nothing."""

import base64
import hashlib
import json
import os
import subprocess

import pytest
import yaml

from ansible_collections.petra.core.plugins.module_utils.adapters.bundle import ARGUMENT_SPEC
from ansible_collections.petra.core.plugins.module_utils.adapters.bundle import run as run_bundle
from ansible_collections.petra.core.plugins.module_utils.adapters.verify import run as run_verify
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import NotReproducedError
from ansible_collections.petra.core.tests.conftest import REGISTRY_USER
from ansible_collections.petra.core.tests.support import images, pki, servers

HIGH_USER = ("loader", "high-Side-Passw0rd")


def params_for(**given):
    """petra_bundle parameters as the argument validator would give them: every default, then ``given``."""
    params = {name: option.get("default") for name, option in ARGUMENT_SPEC.items()}
    params.update(given)
    return params


@pytest.fixture
def keys(tmp_path):
    holders = {}
    for name in "ab":
        private = str(tmp_path / ("%s.pem" % name))
        holders[name] = (private, pki.write_ec_key(private))
    return holders


def push_image(registry, tmp_path, repository, seed):
    """A fresh single-layer image pushed to <repository>:1.0; returns its digest."""
    layout = str(tmp_path / ("layout-" + seed))
    digest = images.build_image(layout, "img", [seed], layer_size=20_000, created="2026-01-01T00:00:00Z")
    images.push(layout, "img", registry.registry, repository, "1.0", creds=REGISTRY_USER)
    return digest


class Setup:
    """A bundle built by key a from a spec file: one image from the registry, one local file."""


@pytest.fixture
def built(registry, tmp_path, keys):
    s = Setup()
    s.repository = "repro/" + tmp_path.name.lower().replace("_", "-")[:40]
    s.digest = push_image(registry, tmp_path, s.repository, "repro-first")
    s.image = "%s/%s:1.0" % (registry.registry.host, s.repository)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "k3s").write_bytes(os.urandom(50_000))
    s.spec = tmp_path / "src" / "bundle.yml"
    s.spec.write_text(yaml.safe_dump({
        "apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
        "metadata": {"name": "repro", "version": "1.0.0", "created": "2026-01-02T00:00:00Z"},
        "images": [{"ref": s.image}], "files": [{"name": "k3s", "path": "k3s"}]}))
    (tmp_path / "out").mkdir()
    s.dest = str(tmp_path / "out" / "repro-1.0.0.tar.zst")
    s.registry_params = {"registry_username": REGISTRY_USER[0], "registry_password": REGISTRY_USER[1],
                         "ca_file": registry.registry.tls["ca.pem"]}
    s.result = run_bundle(params_for(spec=str(s.spec), dest=s.dest, signing_key=keys["a"][0], **s.registry_params),
                          check_mode=False)
    s.cosign = params_for(state="signed", src=s.dest, public_keys=[keys["a"][1]], signing_key=keys["b"][0],
                          rebuild=True, spec=str(s.spec), **s.registry_params)
    return s


def openssl_verifies(tmp_path, public_key, data, signature_b64):
    (tmp_path / "signed.data").write_bytes(data)
    (tmp_path / "signed.der").write_bytes(base64.b64decode(signature_b64))
    check = subprocess.run(["openssl", "dgst", "-sha256", "-verify", public_key, "-signature",
                            str(tmp_path / "signed.der"), str(tmp_path / "signed.data")],
                           capture_output=True, text=True, timeout=60, check=False)
    return check.returncode == 0 and "Verified OK" in check.stdout


def verify_both(built, keys):
    return run_verify({"path": built.dest, "public_keys": [keys["a"][1], keys["b"][1]], "signature": None,
                       "threshold": 2, "cosignatures": None, "trust_state": None, "trust_state_anchor": None,
                       "allow_downgrade": False})


def leftovers(built):
    return sorted(name for name in os.listdir(os.path.dirname(built.dest)) if name.startswith("."))


def test_reproduced_rebuild_is_cosigned_and_verify_reports_it(built, keys, tmp_path):
    checked = run_bundle(built.cosign, check_mode=True)
    # Check mode rebuilds and compares, and writes no co-signature.
    assert checked["changed"] is True and checked["reproduced"] is True and checked["check_mode"] is True
    assert checked["reproduction"]["sha256"] == built.result["sha256"]
    assert not os.path.exists(built.dest + ".sigs.json")

    result = run_bundle(built.cosign, check_mode=False)
    assert result["changed"] is True and result["reproduced"] is True
    assert result["reproduction"]["sha256"] == result["sha256"] == built.result["sha256"]
    assert result["reproduction"]["entries"] > 3 and leftovers(built) == []
    document = json.loads(open(built.dest + ".sigs.json").read())
    assert document["formatVersion"] == 2
    (entry,) = document["signatures"]
    statement = base64.b64decode(entry["reproduced"]["statement"])
    assert json.loads(statement) == {"_type": "https://petra.dev/ReproducedBundle/v1", "keyId": result["key_id"],
                                     "bundleSha256": built.result["sha256"], "reproduced": True,
                                     "rebuiltAt": result["signed_at"]}
    # Both signatures of the entry check with openssl alone: over the bundle, and over the reproduction statement.
    with open(built.dest, "rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == entry["bundleSha256"]
    assert openssl_verifies(tmp_path, keys["b"][1], open(built.dest, "rb").read(), entry["signature"])
    assert openssl_verifies(tmp_path, keys["b"][1], statement, entry["reproduced"]["signature"])

    verified = verify_both(built, keys)
    assert verified["signers"] == [built.result["key_id"], result["key_id"]]
    assert verified["signer_details"] == [
        {"key_id": built.result["key_id"], "primary": True, "reproduced": False},
        {"key_id": result["key_id"], "primary": False, "reproduced": True}]

    again = run_bundle(built.cosign, check_mode=False)
    assert again["changed"] is False and again["already_signed"] == "cosignature" and again["reproduced"] is True
    assert "reproduction" not in again


def test_tampered_reproduction_claim_is_rejected(built, keys):
    run_bundle(built.cosign, check_mode=False)
    path = built.dest + ".sigs.json"
    document = json.loads(open(path).read())
    statement = json.loads(base64.b64decode(document["signatures"][0]["reproduced"]["statement"]))
    statement["rebuiltAt"] = "2020-01-01T00:00:00Z"
    document["signatures"][0]["reproduced"]["statement"] = base64.b64encode(
        json.dumps(statement).encode()).decode()
    with open(path, "w") as handle:
        json.dump(document, handle)
    verified = run_verify({"path": built.dest, "public_keys": [keys["a"][1], keys["b"][1]], "signature": None,
                           "threshold": 1, "cosignatures": path, "trust_state": None, "trust_state_anchor": None,
                           "allow_downgrade": False})
    assert verified["signers"] == [built.result["key_id"]]
    assert "reproduction statement does not verify" in verified["rejected_signatures"][0]["reason"]


def test_source_image_moved_is_refused_naming_the_first_difference(built, registry, keys, tmp_path):
    plain = params_for(state="signed", src=built.dest, public_keys=[keys["a"][1]], signing_key=keys["a"][0])
    before = os.path.exists(built.dest + ".sigs.json")
    moved = push_image(registry, tmp_path, built.repository, "repro-second")
    assert moved != built.digest
    for check_mode in (True, False):
        with pytest.raises(NotReproducedError) as info:
            run_bundle(built.cosign, check_mode=check_mode)
        error = info.value
        assert error.reason == "not-reproduced"
        difference = error.details["difference"]
        assert difference["field"] == {"path": "images[0].digest", "expected": built.digest, "got": moved,
                                       "of": built.image}
        # index.json lists the image manifests: it is the first entry to differ; the manifests themselves are
        # entries that only one side holds.
        first = difference["entry"]
        assert first["index"] == 1 and first["expected"]["name"] == first["got"]["name"] == "index.json"
        assert first["expected"]["digest"] != first["got"]["digest"]
        assert "the first differing entry is #2: the bundle has index.json (%s" % first["expected"]["digest"] \
            in error.message
        # The old image (manifest, config, layer, countersignature) is only in the bundle, the new only in the rebuild.
        assert difference["bundle_only"]["count"] >= 4 and difference["rebuild_only"]["count"] >= 4
        assert "entries in only the bundle (blobs/sha256/" in error.message
        assert "entries in only the rebuild (blobs/sha256/" in error.message
        assert "images[0].digest (%s)" % built.image in error.message
        assert built.digest in error.message and moved in error.message
        assert "source digests" in error.hint and "tool versions" in error.hint
        assert os.path.exists(built.dest + ".sigs.json") is before is False and leftovers(built) == []
    assert run_bundle(plain, check_mode=False)["already_signed"] == "primary"


def test_changed_spec_is_refused(built, keys):
    built.spec.write_text(built.spec.read_text().replace("version: 1.0.0", "version: 1.0.1"))
    with pytest.raises(NotReproducedError) as info:
        run_bundle(built.cosign, check_mode=False)
    assert info.value.details["difference"]["field"] == {"path": "version", "expected": "1.0.0", "got": "1.0.1",
                                                         "of": None}
    assert "the signed metadata differs first at version" in info.value.message
    assert not os.path.exists(built.dest + ".sigs.json") and leftovers(built) == []


@pytest.fixture
def high(tmp_path, tls_material):
    with servers.Registry(str(tmp_path / "high"), tls=tls_material, users=dict([HIGH_USER])) as server:
        yield server


def test_two_of_two_with_a_reproduced_cosignature_loads(built, keys, high):
    run_bundle(built.cosign, check_mode=False)
    loaded = run_bundle(params_for(
        state="loaded", src=built.dest, public_keys=[keys["a"][1], keys["b"][1]], threshold=2,
        registry=high.host + "/mirror", ca_file=high.tls["ca.pem"], registry_username=HIGH_USER[0],
        registry_password=HIGH_USER[1]), check_mode=False)
    assert loaded["changed"] is True and loaded["threshold"] == 2 and len(loaded["signers"]) == 2
    assert [item["reproduced"] for item in loaded["signer_details"]] == [False, True]
