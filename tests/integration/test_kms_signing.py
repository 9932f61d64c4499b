"""Bundles signed by AWS KMS (moto server on loopback), in the commercial and GovCloud partitions."""

import base64
import subprocess

import boto3
import pytest

from ansible_collections.petra.core.plugins.module_utils.aws.client import AWSConnection
from ansible_collections.petra.core.plugins.module_utils.bundle.create import create_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys, verify_bundle
from ansible_collections.petra.core.plugins.module_utils.oci.registry import ClientPool
from ansible_collections.petra.core.plugins.module_utils.signing.keys import SigningError, load_signer

CREDS = {"access_key": "testing", "secret_key": "testing"}


def make_key(moto, region, spec="ECC_NIST_P256", usage="SIGN_VERIFY", alias=None):
    client = boto3.client("kms", region_name=region, endpoint_url=moto.endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    key = client.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
    if alias:
        client.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    public = client.get_public_key(KeyId=key["KeyId"])["PublicKey"]
    pem = "-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n" % base64.encodebytes(public).decode().strip()
    return key, pem


def build_and_check(tmp_path, sources, signer, pem):
    spec = BundleSpec({"apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
                       "metadata": {"name": "kms", "version": "1.0.0"},
                       "files": [{"name": "k3s", "path": "bin/k3s"}]}, str(sources))
    result = create_bundle(spec, str(tmp_path / "kms.tar.zst"), signer, ClientPool(),
                           environ={"SOURCE_DATE_EPOCH": "1767225600"})
    pub = tmp_path / "kms.pub"
    pub.write_text(pem)
    assert verify_bundle(result["path"], load_public_keys([str(pub)]))["verified"]
    der = tmp_path / "sig.der"
    der.write_bytes(base64.b64decode(open(result["signature"], "rb").read()))
    digest = "-sha384" if signer.hash_name == "sha384" else "-sha256"
    check = subprocess.run(["openssl", "dgst", digest, "-verify", str(pub), "-signature", str(der), result["path"]],
                           capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0 and "Verified OK" in check.stdout
    return result


def test_alias_in_commercial_region(moto, tmp_path, sources):
    _key, pem = make_key(moto, "us-east-1", alias="alias/petra-bundle")
    signer = load_signer("awskms:///alias/petra-bundle", None,
                         AWSConnection(region="us-east-1", endpoint_url=moto.endpoint, **CREDS))
    build_and_check(tmp_path, sources, signer, pem)


def test_govcloud_arn_sets_the_region(moto, tmp_path, sources):
    key, pem = make_key(moto, "us-gov-west-1")
    assert key["Arn"].startswith("arn:aws-us-gov:kms:us-gov-west-1:")
    # No region given: it comes from the ARN.
    signer = load_signer("awskms:///" + key["Arn"], None, AWSConnection(endpoint_url=moto.endpoint, **CREDS))
    build_and_check(tmp_path, sources, signer, pem)


def test_p384_key(moto, tmp_path, sources):
    key, pem = make_key(moto, "us-east-1", spec="ECC_NIST_P384")
    signer = load_signer("awskms:///" + key["KeyId"], None,
                         AWSConnection(region="us-east-1", endpoint_url=moto.endpoint, **CREDS))
    assert signer.hash_name == "sha384"
    build_and_check(tmp_path, sources, signer, pem)


def test_rsa_kms_key_refused(moto):
    key, _pem = make_key(moto, "us-east-1", spec="RSA_2048")
    with pytest.raises(SigningError, match="ECDSA P-256 or P-384"):
        load_signer("awskms:///" + key["KeyId"], None,
                    AWSConnection(region="us-east-1", endpoint_url=moto.endpoint, **CREDS))


def test_unknown_key_is_named(moto):
    with pytest.raises(Exception) as info:
        load_signer("awskms:///alias/does-not-exist", None,
                    AWSConnection(region="us-east-1", endpoint_url=moto.endpoint, **CREDS))
    assert "alias/does-not-exist" in str(info.value) and "NotFoundException" in str(info.value)
