"""Delta bundles of local content (a chart, a manifest set, a file): what is left out and what always travels, the
two forms of the base, and a signed but self-contradicting delta record. No registry needed (see
tests/integration/test_delta.py for images, loads and chains)."""

import hashlib

import pytest
from cryptography.hazmat.primitives import serialization

from ansible_collections.petra.core.plugins.module_utils.adapters.verify import run as run_verify
from ansible_collections.petra.core.plugins.module_utils.bundle.delta import DeltaBase
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError, VerificationError
from ansible_collections.petra.core.plugins.module_utils.bundle.reader import read_metadata
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys, verify_bundle
from ansible_collections.petra.core.plugins.module_utils.signing.keys import key_id
from ansible_collections.petra.core.tests.support import craft
from ansible_collections.petra.core.tests.unit.test_bundle_local import build


def verify_params(path, pub):
    return {"path": path, "public_keys": [pub], "signature": None, "threshold": 1, "cosignatures": None,
            "trust_state": None, "trust_state_anchor": None, "allow_downgrade": False, "trust_state_required": False}


def test_local_delta_leaves_out_the_unchanged_file_and_keeps_the_chart(sources, spool, ec_key):
    key, pub = ec_key
    full = build(sources, spool, key, name="full.tar.zst")
    (sources / "manifests" / "apps" / "config.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                                                "  name: cfg\n  namespace: apps\ndata:\n  a: c\n")
    base = DeltaBase.from_bundle(full["path"], load_public_keys([pub]))
    delta = build(sources, spool, key, name="delta.tar.zst", metadata={"version": "1.1.0"}, base=base)
    metadata = read_metadata(delta["path"])
    record = metadata["delta"]
    file_digest = full["files"][0]["digest"]
    # Only the unchanged file's layer stays behind: the chart travels although its layer is unchanged, the
    # changed manifest set travels, and so do all manifests and configs.
    assert [item["digest"] for item in record["omitted"]] == [file_digest]
    assert record["omitted"][0] == {"digest": file_digest, "size": full["files"][0]["size"],
                                    "carrier": full["sha256"]}
    assert record["base"] == {"name": "local", "version": "1.0.0", "sha256": full["sha256"]}
    assert record["carriers"] == [record["base"]]
    carried = {entry["digest"] for entry in metadata["entries"]}
    chart = read_metadata(full["path"])["charts"][0]
    assert chart["chartDigest"] in carried and chart["digest"] in carried and file_digest not in carried
    assert delta["size"] < full["size"] - 150_000  # the 200 kB random file
    assert delta["delta"]["omitted_bytes"] == full["files"][0]["size"]

    verified = run_verify(verify_params(delta["path"], pub))
    assert verified["delta"]["base"] == record["base"] and verified["delta"]["omitted_blobs"] == 1
    # What petra_verify returned for the base builds the same delta, byte for byte.
    again = build(sources, spool, key, name="again.tar.zst", metadata={"version": "1.1.0"},
                  base=DeltaBase.from_verification(run_verify(verify_params(full["path"], pub))))
    assert again["sha256"] == delta["sha256"]


def test_base_with_another_key_is_refused(sources, spool, ec_key, tmp_path):
    key, _pub = ec_key
    full = build(sources, spool, key, name="full.tar.zst")
    from ansible_collections.petra.core.tests.support import pki
    other = pki.write_ec_key(str(tmp_path / "other.pem"))
    with pytest.raises(VerificationError) as info:
        DeltaBase.from_bundle(full["path"], load_public_keys([other]))
    assert info.value.reason == "wrong-key"
    with pytest.raises(BundleError) as info:
        DeltaBase.from_verification({"verified": True, "sha256": full["sha256"]})
    assert "petra_verify" in info.value.message


def _private(path):
    with open(path, "rb") as handle:
        return serialization.load_pem_private_key(handle.read(), password=None)


@pytest.mark.parametrize("flaw", ["carried-and-omitted", "unknown-carrier", "wrong-total"])
def test_signed_but_inconsistent_delta_record_is_refused(tmp_path, ec_key, flaw):
    key, pub = ec_key
    blob = b"layer bytes"
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    entries = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", b"{}")]
    if flaw == "carried-and-omitted":
        entries.append(("blobs/sha256/" + digest.split(":")[1], blob))
    metadata = craft.metadata_for(entries, key_id=key_id(load_public_keys([pub])[0]))
    base = {"name": "crafted", "version": "0.9.0", "sha256": "a" * 64}
    metadata["delta"] = {"base": base, "carriers": [base], "omittedSize": 5 if flaw == "wrong-total" else len(blob),
                         "omitted": [{"digest": digest, "size": len(blob),
                                      "carrier": "b" * 64 if flaw == "unknown-carrier" else "a" * 64}]}
    path = str(tmp_path / "crafted.tar.zst")
    craft.write_archive(path, [("petra-bundle.json", craft.metadata_bytes(metadata))] + entries)
    craft.sign_file(path, _private(key))
    with pytest.raises(VerificationError) as info:
        verify_bundle(path, load_public_keys([pub]))
    assert info.value.reason == "metadata" and "delta record is inconsistent" in info.value.message
