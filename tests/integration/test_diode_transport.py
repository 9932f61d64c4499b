"""petra_diode through AWS Diode: moto S3 (two buckets, a KMS key) and Petra's emulator, over real HTTP."""

import json
import os
import threading
import time

import boto3
import pytest

from ansible_collections.petra.core.plugins.module_utils.bundle.create import create_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.diode.emulator import DiodeEmulator, Mapping, make_server
from ansible_collections.petra.core.plugins.module_utils.diode.errors import TransferError
from ansible_collections.petra.core.plugins.module_utils.diode.options import run_diode
from ansible_collections.petra.core.plugins.module_utils.oci.registry import ClientPool
from ansible_collections.petra.core.plugins.module_utils.signing.keys import load_signer

MAPPING = "0f5c3b2a-1d2e-4f60-8a9b-0c1d2e3f4a5b"
CREDS = dict(aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def world(moto, tmp_path, ec_key):
    key, pub = ec_key
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto.endpoint, **CREDS)
    kms = boto3.client("kms", region_name="us-east-1", endpoint_url=moto.endpoint, **CREDS)
    suffix = str(time.monotonic_ns())
    low, high = "low-" + suffix, "high-" + suffix
    s3.create_bucket(Bucket=low)
    s3.create_bucket(Bucket=high)
    kms_key = kms.create_key()["KeyMetadata"]["KeyId"]
    emulator = DiodeEmulator(s3, [Mapping(MAPPING, high, size_limit=2_000_000)], delay=0.1, rate_limit=100)
    server = make_server(emulator)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    (tmp_path / "payload").write_bytes(os.urandom(3_500_000))
    spec = BundleSpec({"apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
                       "metadata": {"name": "crossing", "version": "1.0.0"},
                       "files": [{"name": "payload", "path": "payload"}]}, str(tmp_path))
    bundle = create_bundle(spec, str(tmp_path / "crossing-1.0.0.tar.zst"), load_signer(key), ClientPool(),
                           environ={"SOURCE_DATE_EPOCH": "1767225600"})
    for name in ("outbox", "inbox"):
        (tmp_path / name).mkdir()
    yield {"s3": s3, "low": low, "high": high, "kms_key": kms_key, "emulator": emulator, "moto": moto,
           "diode_url": "http://127.0.0.1:%d" % server.server_address[1], "bundle": bundle["path"], "key": key,
           "pub": pub, "dir": tmp_path}
    server.shutdown()
    server.server_close()


def params(world, **extra):
    result = {"state": "sent", "transport": "diode", "src": world["bundle"], "signature": None, "dest": None,
              "directory": str(world["dir"] / "outbox"), "index": None, "public_key": None,
              "max_part_size": "1200KiB", "allowed_extensions": ["tar", "json"], "signing_key": world["key"],
              "signing_key_content": None, "signing_key_password": None, "region": "us-east-1", "profile": None,
              "access_key": "testing", "secret_key": "testing", "session_token": None,
              "endpoint_url": world["moto"].endpoint, "aws_ca_bundle": None, "validate_certs": True,
              "s3_bucket": world["low"], "s3_prefix": "bundles", "mapping_id": MAPPING,
              "kms_key_id": world["kms_key"], "diode_endpoint_url": world["diode_url"], "delivery_bucket": None,
              "wait": True, "wait_timeout": 30, "poll_interval": 0.1, "receipt": str(world["dir"] / "receipt.json")}
    result.update(extra)
    return result


def receive_params(world, **extra):
    return params(world, state="received", src=None, signing_key=None, dest=str(world["dir"] / "received.tar.zst"),
                  directory=str(world["dir"] / "inbox"), public_key=[world["pub"]], delivery_bucket=world["high"],
                  **extra)


def transfer_count(world):
    return len(world["emulator"].transfers)


def test_happy_path_and_rerun(world):
    sent = run_diode(params(world), check_mode=False)
    assert sent["changed"] is True and sent["part_count"] >= 3
    assert {t["status"] for t in sent["transfers"]} == {"SUCCEEDED"}
    receipt = json.loads((world["dir"] / "receipt.json").read_text())
    assert len(receipt["files"]) == sent["part_count"] + 1
    assert all(f["transferId"] and f["status"] == "SUCCEEDED" and f["checksumSHA256"] for f in receipt["files"])
    head = world["s3"].head_object(Bucket=world["low"], Key="bundles/" + sent["parts"][0])
    assert head["ServerSideEncryption"] == "aws:kms"
    tags = world["s3"].get_object_tagging(Bucket=world["low"], Key="bundles/" + sent["parts"][0])["TagSet"]
    assert {"Key": "petra-mapping-id", "Value": MAPPING} in tags
    count = transfer_count(world)
    again = run_diode(params(world), check_mode=False)
    assert again["changed"] is False and transfer_count(world) == count
    assert not any(t["uploaded"] for t in again["transfers"])
    received = run_diode(receive_params(world), check_mode=False)
    assert received["verification"]["verified"] is True
    assert open(world["bundle"], "rb").read() == (world["dir"] / "received.tar.zst").read_bytes()


def test_oversized_part_rejected(world):
    world["emulator"].mappings[MAPPING].size_limit = 500_000
    with pytest.raises(TransferError) as info:
        run_diode(params(world), check_mode=False)
    assert "REJECTED" in str(info.value) and "exceeds the mapping limit" in str(info.value)
    assert info.value.parts and info.value.details["receipt"]["files"]


def test_zst_name_rejected(world):
    outbox = world["dir"] / "outbox"
    (outbox / "loose.tar.zst").write_bytes(b"not allowed")
    from ansible_collections.petra.core.plugins.module_utils.diode import s3transport
    from ansible_collections.petra.core.plugins.module_utils.diode.service import diode_client
    sender = s3transport.DiodeSender(world["s3"], diode_client("us-east-1", endpoint_url=world["diode_url"],
                                                               access_key="testing", secret_key="testing"),
                                     world["low"], MAPPING)
    (outbox / "loose.parts.json").write_text("{}")
    records, _changed = sender.send(str(outbox), {"parts": ["loose.tar.zst"], "index": "loose.parts.json"})
    with pytest.raises(TransferError) as info:
        sender.wait(records, 10, 0.1)
    assert info.value.parts == ["loose.tar.zst"] and "'.zst' is not allowed" in str(info.value)


def test_failure_then_rerun_completes(world):
    world["emulator"].fail_rate = 1.0
    with pytest.raises(TransferError) as info:
        run_diode(params(world), check_mode=False)
    assert "FAILED" in str(info.value) and "injected" in str(info.value)
    world["emulator"].fail_rate = 0.0
    count = transfer_count(world)
    done = run_diode(params(world), check_mode=False)
    assert {t["status"] for t in done["transfers"]} == {"SUCCEEDED"}
    assert transfer_count(world) == count + len(done["transfers"])  # one new transfer per failed part, no more


def test_throttling_is_retried(world):
    world["emulator"].rate_limit = 3
    done = run_diode(params(world), check_mode=False)
    assert {t["status"] for t in done["transfers"]} == {"SUCCEEDED"}


def test_damaged_and_missing_parts_in_delivery_are_named(world):
    sent = run_diode(params(world), check_mode=False)
    prefix = "%s/bundles/" % MAPPING
    world["s3"].delete_object(Bucket=world["high"], Key=prefix + sent["parts"][0])
    world["s3"].put_object(Bucket=world["high"], Key=prefix + sent["parts"][1], Body=b"garbage")
    with pytest.raises(TransferError) as info:
        run_diode(receive_params(world), check_mode=False)
    assert info.value.parts == [sent["parts"][0], sent["parts"][1]]
    assert "missing: %s" % sent["parts"][0] in str(info.value) and "damaged: %s" % sent["parts"][1] in str(info.value)
