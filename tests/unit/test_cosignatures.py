"""The two-person rule: co-signatures beside a bundle, M-of-N distinct keys, each signature checked by openssl too."""

import base64
import hashlib
import json
import os
import subprocess

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.petra.core.plugins.module_utils.bundle.second_signature import cosign_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.create import create_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError, VerificationError
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.adapters.bundle import run as run_bundle
from ansible_collections.petra.core.plugins.module_utils.adapters.verify import run as run_verify
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys, verify_bundle
from ansible_collections.petra.core.plugins.module_utils.oci.registry import ClientPool
from ansible_collections.petra.core.plugins.module_utils.signing.keys import key_id, load_signer
from ansible_collections.petra.core.tests.support import pki


def build(sources, directory, key, version="1.0.0", name="twoperson"):
    spec = BundleSpec({"apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
                       "metadata": {"name": name, "version": version, "expires": "2099-01-01"},
                       "manifests": [{"name": "apps", "path": "manifests/apps"}],
                       "files": [{"name": "k3s", "path": "bin/k3s"}]}, str(sources))
    return create_bundle(spec, str(directory / ("%s-%s.tar.zst" % (name, version))), load_signer(key), ClientPool(),
                         environ={"SOURCE_DATE_EPOCH": "1767225600"})["path"]


@pytest.fixture
def keys(tmp_path):
    """Three P-256 key holders a, b, c: {name: (private key path, public key path, key id)}."""
    holders = {}
    for name in "abc":
        private = str(tmp_path / ("%s.pem" % name))
        public = pki.write_ec_key(private)
        holders[name] = (private, public, key_id(load_public_keys([public])[0]))
    return holders


@pytest.fixture
def bundle(sources, spool, keys):
    return build(sources, spool, keys["a"][0])


def pubs(keys, names):
    return load_public_keys([keys[name][1] for name in names])


def refused(path, public_keys, **options):
    with pytest.raises(VerificationError) as info:
        verify_bundle(path, public_keys, **options)
    return info.value


def openssl_verifies(path, public_key_path, signature_b64, digest="-sha256", tmp_dir=None):
    der = os.path.join(tmp_dir, "cosig.der")
    with open(der, "wb") as handle:
        handle.write(base64.b64decode(signature_b64))
    check = subprocess.run(["openssl", "dgst", digest, "-verify", public_key_path, "-signature", der, path],
                           capture_output=True, text=True, timeout=60, check=False)
    return check.returncode == 0 and "Verified OK" in check.stdout


def sha256_of(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def test_two_of_three(bundle, keys, tmp_path):
    # One signature (the primary, by a): refused, naming who signed and who did not.
    error = refused(bundle, pubs(keys, "abc"), threshold=2)
    assert error.reason == "threshold"
    assert error.details["signers"] == [keys["a"][2]]
    assert error.details["unsigned_keys"] == [keys["b"][2], keys["c"][2]]
    assert "signed by 1 of the 3" in error.message and "2 are required" in error.message

    added = cosign_bundle(bundle, load_signer(keys["b"][0]), pubs(keys, "a"))
    assert added["changed"] is True and added["already_signed"] is None
    assert added["sha256"] == sha256_of(bundle) and added["key_id"] == keys["b"][2]
    assert added["primary_key_id"] == keys["a"][2]

    # Two distinct keys: accepted, and the result says which keys signed.
    result = verify_bundle(bundle, pubs(keys, "abc"), threshold=2)
    assert result["verified"] and result["signers"] == [keys["a"][2], keys["b"][2]]
    assert result["unsigned_keys"] == [keys["c"][2]] and result["rejected_signatures"] == []
    assert result["cosignatures"] == bundle + ".sigs.json"
    assert refused(bundle, pubs(keys, "abc"), threshold=3).details["signers"] == [keys["a"][2], keys["b"][2]]

    # The co-signature is a plain sign-blob signature over the file: openssl accepts it with b's key only.
    document = json.loads(open(bundle + ".sigs.json").read())
    assert document["kind"] == "BundleCoSignatures" and len(document["signatures"]) == 1
    entry = document["signatures"][0]
    assert entry["keyId"] == keys["b"][2] and entry["bundleSha256"] == sha256_of(bundle)
    assert openssl_verifies(bundle, keys["b"][1], entry["signature"], tmp_dir=str(tmp_path))
    assert not openssl_verifies(bundle, keys["c"][1], entry["signature"], tmp_dir=str(tmp_path))
    # The primary .sig is untouched, and still the cosign-compatible signature by a.
    assert openssl_verifies(bundle, keys["a"][1], open(bundle + ".sig").read(), tmp_dir=str(tmp_path))


def test_the_same_key_counts_once(bundle, keys, tmp_path):
    # The same public key given twice is one key: a threshold of 2 over [a, a] can never be met.
    with pytest.raises(BundleError, match="cannot be met with 1 distinct"):
        verify_bundle(bundle, pubs(keys, "aa"), threshold=2)
    assert refused(bundle, pubs(keys, "aab"), threshold=2).details["signers"] == [keys["a"][2]]

    # a, the primary signer, co-signing again adds nothing.
    again = cosign_bundle(bundle, load_signer(keys["a"][0]), pubs(keys, "a"))
    assert again["changed"] is False and again["already_signed"] == "primary"
    assert not os.path.exists(bundle + ".sigs.json")

    # Two signature entries by b (a copied entry): b counts once.
    cosign_bundle(bundle, load_signer(keys["b"][0]), pubs(keys, "a"))
    path = bundle + ".sigs.json"
    document = json.loads(open(path).read())
    document["signatures"].append(dict(document["signatures"][0], signedAt="2026-01-02T00:00:00Z"))
    with open(path, "w") as handle:
        json.dump(document, handle)
    error = refused(bundle, pubs(keys, "abc"), threshold=3)
    assert error.details["signers"] == [keys["a"][2], keys["b"][2]] and "signed by 2 of the 3" in error.message

    # b co-signing a second time is idempotent.
    before = open(path, "rb").read()
    third = cosign_bundle(bundle, load_signer(keys["b"][0]), pubs(keys, "a"))
    assert third["changed"] is False and third["already_signed"] == "cosignature"
    assert open(path, "rb").read() == before


def test_check_mode_writes_nothing(bundle, keys):
    result = cosign_bundle(bundle, load_signer(keys["b"][0]), pubs(keys, "a"), check_mode=True)
    assert result["changed"] is True and result["cosignature_keys"] == [keys["b"][2]]
    assert not os.path.exists(bundle + ".sigs.json")


def test_forged_stale_and_unknown_cosignatures_do_not_count(sources, spool, keys, tmp_path):
    first = build(sources, spool, keys["a"][0], version="1.0.0")
    second = build(sources, spool, keys["a"][0], version="1.1.0")
    cosign_bundle(first, load_signer(keys["b"][0]), pubs(keys, "a"))
    document = json.loads(open(first + ".sigs.json").read())
    # b's signature over the first bundle, put beside the second: made over another file.
    with open(second + ".sigs.json", "w") as handle:
        json.dump(document, handle)
    error = refused(second, pubs(keys, "abc"), threshold=2)
    assert error.details["rejected_signatures"] == [
        {"keyId": keys["b"][2], "reason": "made over another file (sha256 %s)" % sha256_of(first)}]
    # b's signature relabelled as c's: does not verify with c's key.
    document["signatures"][0]["keyId"] = keys["c"][2]
    with open(first + ".sigs.json", "w") as handle:
        json.dump(document, handle)
    error = refused(first, pubs(keys, "abc"), threshold=2)
    assert error.details["rejected_signatures"] == [{"keyId": keys["c"][2], "reason": "does not verify with that key"}]
    # A signature by a key nobody trusts.
    outsider = str(tmp_path / "outsider.pem")
    pki.write_ec_key(outsider)
    os.unlink(first + ".sigs.json")
    cosign_bundle(first, load_signer(outsider), pubs(keys, "a"))
    error = refused(first, pubs(keys, "abc"), threshold=2)
    assert error.details["rejected_signatures"][0]["reason"] == "not among the public keys given"
    # Adding b's signature now keeps the outsider's entry (it is over this file) and meets the threshold.
    cosign_bundle(first, load_signer(keys["b"][0]), pubs(keys, "a"))
    assert verify_bundle(first, pubs(keys, "abc"), threshold=2)["signers"] == [keys["a"][2], keys["b"][2]]
    # A rebuild leaves co-signatures over the old file behind; co-signing drops them.
    with open(second + ".sigs.json", "w") as handle:
        handle.write(open(first + ".sigs.json").read())
    fresh = cosign_bundle(second, load_signer(keys["c"][0]), pubs(keys, "a"))
    assert fresh["removed_stale"] == 2 and fresh["cosignature_keys"] == [keys["c"][2]]


def test_malformed_cosignature_file_is_refused_where_it_counts(bundle, keys):
    """A damaged .sigs.json is refused when co-signatures are needed (threshold above 1) or named (cosignatures);
    beside a bundle verified by its primary signature alone it is not read, so a stray file blocks nothing."""
    path = bundle + ".sigs.json"
    with open(path, "w") as handle:
        handle.write('{"apiVersion": "petra.dev/v1alpha1", "kind": "BundleCoSignatures", "formatVersion": 1, '
                     '"signatures": [{"keyId": "sha256:12", "bundleSha256": "x", "signature": "AA=="}]}')
    error = refused(bundle, pubs(keys, "ab"), threshold=2)
    assert error.reason == "cosignature-malformed" and "keyId 'sha256:12'" in error.message
    with open(path, "w") as handle:
        handle.write("not json")
    assert refused(bundle, pubs(keys, "ab"), threshold=2).reason == "cosignature-malformed"
    assert refused(bundle, pubs(keys, "a"), cosignature_path=path).reason == "cosignature-malformed"
    result = verify_bundle(bundle, pubs(keys, "a"))
    assert result["verified"] and result["signers"] == [keys["a"][2]]
    assert result["cosignatures_consulted"] is False and result["cosignatures"] is None


def test_cosigning_refuses_a_bundle_that_does_not_verify(sources, spool, bundle, keys):
    data = bytearray(open(bundle, "rb").read())
    data[len(data) // 2] ^= 0x01
    with open(bundle, "wb") as handle:
        handle.write(bytes(data))
    with pytest.raises(VerificationError):
        cosign_bundle(bundle, load_signer(keys["b"][0]), pubs(keys, "a"))
    assert not os.path.exists(bundle + ".sigs.json")
    # Nor is anything signed when the primary signer is not among the keys the co-signer trusts.
    other = build(sources, spool, keys["a"][0], version="3.0.0")
    with pytest.raises(VerificationError) as info:
        cosign_bundle(other, load_signer(keys["b"][0]), pubs(keys, "c"))
    assert info.value.reason == "wrong-key" and not os.path.exists(other + ".sigs.json")


def test_p384_cosigner_through_the_task(bundle, keys, tmp_path):
    private = str(tmp_path / "p384.pem")
    public = pki.write_ec_key(private, curve=ec.SECP384R1())
    params = {"state": "signed", "src": bundle, "public_keys": [keys["a"][1]], "signature": None, "cosignatures": None,
              "signing_key": private, "signing_key_content": None, "signing_key_password": None, "mode": "0640"}
    result = run_bundle(params, check_mode=False)
    assert result["changed"] is True
    assert oct(os.stat(bundle + ".sigs.json").st_mode & 0o777) == "0o640"
    entry = json.loads(open(bundle + ".sigs.json").read())["signatures"][0]
    assert openssl_verifies(bundle, public, entry["signature"], digest="-sha384", tmp_dir=str(tmp_path))
    assert run_bundle(params, check_mode=False)["changed"] is False
    verified = run_verify({"path": bundle, "public_keys": [keys["a"][1], public], "signature": None, "threshold": 2,
                           "cosignatures": None, "trust_state": None, "trust_state_anchor": None,
                           "allow_downgrade": False})
    assert verified["signers"] == [keys["a"][2], result["key_id"]] and verified["changed"] is False


def test_cosignatures_cross_the_diode_in_the_signed_index(bundle, keys, tmp_path):
    from ansible_collections.petra.core.plugins.module_utils.diode.transfer import (
        receive_from_directory,
        send_to_directory,
    )
    cosign_bundle(bundle, load_signer(keys["b"][0]), pubs(keys, "a"))
    (tmp_path / "outbox").mkdir()
    (tmp_path / "inbox").mkdir()
    sent = send_to_directory(bundle, str(tmp_path / "outbox"), load_signer(keys["a"][0]), "2MiB")
    # Only .tar parts and the .json index cross: the co-signatures ride inside the index the bundle key signs.
    assert all(name.endswith((".tar", ".parts.json")) for name in os.listdir(tmp_path / "outbox"))
    index = json.loads((tmp_path / "outbox" / sent["index"]).read_text())["index"]
    assert [entry["keyId"] for entry in index["bundle"]["cosignatures"]] == [keys["b"][2]]
    dest = str(tmp_path / "inbox" / "received.tar.zst")
    received = receive_from_directory(str(tmp_path / "outbox"), dest, pubs(keys, "a"))
    assert received["changed"] is True
    assert open(dest + ".sigs.json", "rb").read() == open(bundle + ".sigs.json", "rb").read()
    assert verify_bundle(dest, pubs(keys, "abc"), threshold=2)["signers"] == [keys["a"][2], keys["b"][2]]
    assert receive_from_directory(str(tmp_path / "outbox"), dest, pubs(keys, "a"))["changed"] is False
    # A receiving side that lost the co-signatures gets them back from the index.
    os.unlink(dest + ".sigs.json")
    assert receive_from_directory(str(tmp_path / "outbox"), dest, pubs(keys, "a"))["changed"] is True
    assert os.path.exists(dest + ".sigs.json")
