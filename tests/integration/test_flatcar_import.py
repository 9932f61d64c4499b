"""Flatcar AMI import (state=imported) against moto: digest and OpenPGP checks, S3 upload, snapshot import, AMI, SSM.

moto lacks ImportSnapshot; tests/support/moto_server.py fills it in the harness with a real EBS snapshot made only
when the uploaded disk image is in S3.
"""

import bz2
import hashlib
import os
import subprocess

import boto3
import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.petra.core.plugins.module_utils.errors import PetraError
from ansible_collections.petra.core.plugins.module_utils.adapters import flatcar

REGION = "us-east-1"
CREDS = dict(aws_access_key_id="testing", aws_secret_access_key="testing")


def gpg(home, *args, data=None):
    return subprocess.run(["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
                          + list(args), input=data, capture_output=True, timeout=120, check=True).stdout


@pytest.fixture(scope="module")
def signing_keys(tmp_path_factory):
    """Two OpenPGP signing keys (ECDSA P-256), as (gnupg home, armored public key)."""
    keys = []
    for index in range(2):
        home = tmp_path_factory.mktemp("gnupg%d" % index)
        os.chmod(home, 0o700)
        gpg(home, "--quick-gen-key", "Image Signing %d <images-%d@petra.invalid>" % (index, index), "nistp256", "sign", "never")
        keys.append((home, gpg(home, "--armor", "--export").decode()))
    return keys


@pytest.fixture
def image(tmp_path, signing_keys):
    """A disk image, its .bz2 release form, and a detached signature of the .bz2 by the first key."""
    raw = os.urandom(3 << 20)
    plain = tmp_path / "flatcar_production_ami_vmdk_image.vmdk"
    plain.write_bytes(raw)
    packed = tmp_path / "flatcar_production_ami_vmdk_image.vmdk.bz2"
    packed.write_bytes(bz2.compress(raw, 1))
    signature = tmp_path / (packed.name + ".sig")
    gpg(signing_keys[0][0], "--digest-algo", "SHA256", "--detach-sign", "--output", str(signature), str(packed))
    return {"raw": raw, "plain": plain, "packed": packed, "signature": signature,
            "sha512": hashlib.sha512(packed.read_bytes()).hexdigest()}


@pytest.fixture
def aws(moto, request):
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto.endpoint, **CREDS)
    bucket = "imports-" + hashlib.sha256(request.node.name.encode()).hexdigest()[:12]
    s3.create_bucket(Bucket=bucket)
    kms = boto3.client("kms", region_name=REGION, endpoint_url=moto.endpoint, **CREDS)
    return {"s3": s3, "bucket": bucket, "kms_key": kms.create_key(Description="ebs")["KeyMetadata"]["Arn"],
            "ec2": boto3.client("ec2", region_name=REGION, endpoint_url=moto.endpoint, **CREDS),
            "ssm": boto3.client("ssm", region_name=REGION, endpoint_url=moto.endpoint, **CREDS),
            "name": "flatcar-stable-4230-2-3-" + bucket[-6:], "endpoint": moto.endpoint}


def params(aws, image, signing_keys, **extra):
    base = {"state": "imported", "region": REGION, "access_key": "testing", "secret_key": "testing",
            "endpoint_url": aws["endpoint"], "image_file": str(image["packed"]), "image_checksum": "sha512:" + image["sha512"],
            "image_signature": str(image["signature"]), "gpg_public_key": signing_keys[0][1], "image_name": aws["name"],
            "import_bucket": aws["bucket"], "kms_key_id": aws["kms_key"], "ssm_parameter": "/petra/%s" % aws["name"],
            "poll_interval": 0.05, "tags": {"team": "platform"}}
    base.update(extra)
    result = ArgumentSpecValidator(flatcar.ARGUMENT_SPEC).validate(base)
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


def uploaded(aws):
    return aws["s3"].list_objects_v2(Bucket=aws["bucket"]).get("Contents") or []


def test_import_verifies_uploads_registers_and_publishes(aws, image, signing_keys):
    planned = flatcar.run(params(aws, image, signing_keys), check_mode=True)
    assert [a["action"] for a in planned["actions"]] == ["upload", "import-snapshot", "register-image", "put-parameter"]
    assert planned["verified"] == "sha512 digest and OpenPGP signature" and uploaded(aws) == []

    result = flatcar.run(params(aws, image, signing_keys), check_mode=False)
    assert result["changed"] is True
    key = "petra/flatcar-import/flatcar_production_ami_vmdk_image.vmdk"
    assert result["s3_uri"] == "s3://%s/%s" % (aws["bucket"], key)
    stored = aws["s3"].get_object(Bucket=aws["bucket"], Key=key)
    assert stored["Body"].read() == image["raw"]  # the .bz2 was decompressed on the way up
    assert stored["ServerSideEncryption"] == "aws:kms" and stored["SSEKMSKeyId"] == aws["kms_key"]

    described = aws["ec2"].describe_images(ImageIds=[result["image_id"]])["Images"][0]
    assert described["Name"] == aws["name"]  # moto ignores RootDeviceName (always /dev/sda1); not asserted
    tags = {tag["Key"]: tag["Value"] for tag in described.get("Tags") or []}
    assert tags["petra:source-digest"] == "sha512:" + image["sha512"] and tags["team"] == "platform"
    snapshot = aws["ec2"].describe_snapshots(SnapshotIds=[result["snapshot_id"]])["Snapshots"][0]
    assert snapshot["Encrypted"] is True
    # moto's RegisterImage makes a snapshot of its own instead of using the mapping's; the mapping is not asserted.
    parameter = aws["ssm"].get_parameter(Name="/petra/%s" % aws["name"])["Parameter"]
    assert parameter["Value"] == result["image_id"]

    again = flatcar.run(params(aws, image, signing_keys), check_mode=False)
    assert again["changed"] is False and again["image_id"] == result["image_id"] and again["actions"] == []


def test_plain_vmdk_with_sha256_and_no_signature(aws, image, signing_keys):
    result = flatcar.run(params(aws, image, signing_keys, image_file=str(image["plain"]), image_signature=None,
                                gpg_public_key=None, image_checksum="sha256:" + hashlib.sha256(image["raw"]).hexdigest(), ssm_parameter=None),
                         check_mode=False)
    assert result["verified"] == "sha256 digest" and "ssm_parameter" not in result
    assert aws["s3"].get_object(Bucket=aws["bucket"], Key="petra/flatcar-import/" + image["plain"].name)[
        "Body"].read() == image["raw"]


def test_a_staged_object_is_never_trusted(aws, image, signing_keys):
    """Someone with PutObject on the bucket stages other bytes under the import key, with matching metadata."""
    key = "petra/flatcar-import/flatcar_production_ami_vmdk_image.vmdk"
    aws["s3"].put_object(Bucket=aws["bucket"], Key=key, Body=b"not the image",
                         Metadata={"petra-source-digest": "sha512:" + image["sha512"]})
    result = flatcar.run(params(aws, image, signing_keys), check_mode=False)
    assert "upload" in [a["action"] for a in result["actions"]]
    assert aws["s3"].get_object(Bucket=aws["bucket"], Key=key)["Body"].read() == image["raw"]


def test_key_and_signature_go_together(aws, image, signing_keys):
    for missing in ("image_signature", "gpg_public_key"):
        with pytest.raises(PetraError, match="go together"):
            flatcar.run(params(aws, image, signing_keys, **{missing: None}), check_mode=False)
    assert uploaded(aws) == []


def test_wrong_digest_stops_before_upload(aws, image, signing_keys):
    with pytest.raises(PetraError, match="not the expected") as caught:
        flatcar.run(params(aws, image, signing_keys, image_checksum="sha512:" + "0" * 128), check_mode=False)
    assert caught.value.details["reason"] == "digest-mismatch"
    assert uploaded(aws) == []


def test_signature_by_another_key_stops_before_upload(aws, image, signing_keys):
    with pytest.raises(PetraError, match="does not verify") as caught:
        flatcar.run(params(aws, image, signing_keys, gpg_public_key=signing_keys[1][1]), check_mode=False)
    assert caught.value.details["reason"] == "bad-signature"
    image["packed"].write_bytes(image["packed"].read_bytes() + b"\0")
    with pytest.raises(PetraError):
        flatcar.run(params(aws, image, signing_keys, image_checksum="sha512:" + hashlib.sha512(
            image["packed"].read_bytes()).hexdigest()), check_mode=False)
    assert uploaded(aws) == []


def test_unapproved_digests_and_name_clashes_are_refused(aws, image, signing_keys):
    for checksum in ("md5:" + "0" * 32, "sha1:" + "0" * 40):
        with pytest.raises(PetraError, match="not a FIPS-approved digest"):
            flatcar.run(params(aws, image, signing_keys, image_checksum=checksum), check_mode=False)
    flatcar.run(params(aws, image, signing_keys), check_mode=False)
    other = hashlib.sha256(image["raw"]).hexdigest()
    with pytest.raises(PetraError, match="already exists from another image"):
        flatcar.run(params(aws, image, signing_keys, image_file=str(image["plain"]), image_signature=None,
                           gpg_public_key=None, image_checksum="sha256:" + other), check_mode=False)
