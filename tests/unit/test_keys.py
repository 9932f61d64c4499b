import base64
import hashlib
import os
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ansible_collections.petra.core.plugins.module_utils.signing import keys, signatures
from ansible_collections.petra.core.tests.conftest import COSIGN_VECTORS
from ansible_collections.petra.core.tests.support import pki

VECTORS = COSIGN_VECTORS
COSIGN_FILES = ["sigstore-labeled.key", "cosign-labeled-rsa.key", "cosign-labeled-sec1.key"]


def _openssl_verify(tmp_path, public_key, data, der):
    pub = tmp_path / "k.pub"
    pub.write_text(keys.public_key_pem(public_key))
    (tmp_path / "data").write_bytes(data)
    (tmp_path / "sig.der").write_bytes(der)
    digest = "-sha384" if isinstance(public_key.curve, ec.SECP384R1) else "-sha256"
    return subprocess.run(["openssl", "dgst", digest, "-verify", str(pub), "-signature", str(tmp_path / "sig.der"),
                           str(tmp_path / "data")], capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize("name", COSIGN_FILES)
def test_cosign_vectors_load_and_sign(tmp_path, name):
    signer = keys.load_signer(os.path.join(VECTORS, name), "hello")
    assert signer.hash_name == "sha256"
    data = b"petra bundle bytes"
    der = signer.sign_digest(hashlib.sha256(data).digest())
    result = _openssl_verify(tmp_path, signer.public_key(), data, der)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verified OK" in result.stdout


@pytest.mark.parametrize("name", COSIGN_FILES)
def test_cosign_vectors_wrong_password(name):
    with pytest.raises(keys.SigningError) as info:
        keys.load_signer(os.path.join(VECTORS, name), "wrong")
    assert "wrong password" in str(info.value)
    assert name in str(info.value)


def test_cosign_vector_without_password():
    with pytest.raises(keys.SigningError, match="no password was given"):
        keys.load_signer(os.path.join(VECTORS, COSIGN_FILES[0]), None)


@pytest.mark.parametrize("sec1", [False, True])
def test_plain_pem_keys(tmp_path, sec1):
    path = tmp_path / "k.pem"
    pki.write_ec_key(str(path), sec1=sec1)
    signer = keys.load_signer(str(path))
    der = signer.sign_digest(hashlib.sha256(b"x").digest())
    assert _openssl_verify(tmp_path, signer.public_key(), b"x", der).returncode == 0


def test_encrypted_pkcs8(tmp_path):
    path = tmp_path / "k.pem"
    pki.write_ec_key(str(path), password="pw")
    assert keys.load_signer(str(path), "pw").hash_name == "sha256"
    with pytest.raises(keys.SigningError, match="wrong password"):
        keys.load_signer(str(path), "nope")
    with pytest.raises(keys.SigningError, match="no password was given"):
        keys.load_signer(str(path))


def test_p384_uses_sha384(tmp_path):
    path = tmp_path / "k.pem"
    pki.write_ec_key(str(path), curve=ec.SECP384R1())
    signer = keys.load_signer(str(path))
    assert signer.hash_name == "sha384"
    der = signer.sign_digest(hashlib.sha384(b"y").digest())
    assert _openssl_verify(tmp_path, signer.public_key(), b"y", der).returncode == 0


@pytest.mark.parametrize("make, words", [
    (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "RSA"),
    (ed25519.Ed25519PrivateKey.generate, "Ed25519"),
    (lambda: ec.generate_private_key(ec.SECP256K1()), "secp256k1"),
])
def test_non_fips_keys_refused(tmp_path, make, words):
    path = tmp_path / "k.pem"
    path.write_bytes(make().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    with pytest.raises(keys.SigningError) as info:
        keys.load_signer(str(path))
    assert words in str(info.value)
    assert "P-256" in str(info.value)


def test_inline_key_content(tmp_path):
    path = tmp_path / "k.pem"
    pki.write_ec_key(str(path))
    assert keys.load_signer(path.read_text()).description == "the signing key given inline"


def test_missing_key_file_is_named(tmp_path):
    with pytest.raises(keys.SigningError, match="cannot read the signing key .*nope.pem"):
        keys.load_signer(str(tmp_path / "nope.pem"))


def test_signature_file_round_trip_and_refusals():
    der = ec.generate_private_key(ec.SECP256R1()).sign(b"m", ec.ECDSA(__import__("cryptography").hazmat.primitives.hashes.SHA256()))
    assert signatures.decode_signature(signatures.encode_signature(der) + b"\n", "s.sig") == der
    with pytest.raises(keys.SigningError, match="not a base64"):
        signatures.decode_signature(b"%%%", "s.sig")
    with pytest.raises(keys.SigningError, match="DER"):
        signatures.decode_signature(base64.b64encode(b"hello"), "s.sig")


@pytest.mark.parametrize("reference, endpoint, key", [
    ("awskms:///alias/petra", None, "alias/petra"),
    ("awskms://kms.us-gov-west-1.amazonaws.com/1234abcd-12ab-34cd-56ef-1234567890ab", "kms.us-gov-west-1.amazonaws.com",
     "1234abcd-12ab-34cd-56ef-1234567890ab"),
    ("awskms:///arn:aws-iso-b:kms:us-isob-east-1:111122223333:alias/petra", None,
     "arn:aws-iso-b:kms:us-isob-east-1:111122223333:alias/petra"),
])
def test_kms_reference(reference, endpoint, key):
    assert keys.parse_kms_reference(reference) == (endpoint, key)


def test_kms_reference_without_key():
    with pytest.raises(keys.SigningError, match="names no key"):
        keys.parse_kms_reference("awskms://")
