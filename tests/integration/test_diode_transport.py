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
from ansible_collections.petra.core.plugins.module_utils.diode.parts import parse_size
from ansible_collections.petra.core.plugins.module_utils.adapters.diode import run as run_diode
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
    from ansible_collections.petra.core.plugins.module_utils.aws.client import AWSConnection
    from ansible_collections.petra.core.plugins.module_utils.diode.service import diode_client
    connection = AWSConnection(region="us-east-1", access_key="testing", secret_key="testing")
    sender = s3transport.DiodeSender(world["s3"], diode_client(connection, endpoint_url=world["diode_url"]),
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


def test_an_s3_failure_on_receive_names_the_action_and_the_aws_code(world):
    missing = "petra-no-such-bucket-%d" % time.monotonic_ns()
    settings = dict(receive_params(world), delivery_bucket=missing)
    with pytest.raises(TransferError) as info:
        run_diode(settings, check_mode=False)
    action = "S3 ListObjectsV2 s3://%s/%s/bundles/" % (missing, MAPPING)
    assert str(info.value).startswith(action + " failed (NoSuchBucket): ")
    assert info.value.details["code"] == "NoSuchBucket" and info.value.hint
    assert os.listdir(world["dir"] / "inbox") == []


def test_a_diode_failure_on_send_names_the_action_and_the_aws_code(world):
    unknown = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(TransferError) as info:
        run_diode(params(world, mapping_id=unknown), check_mode=False)
    assert str(info.value).startswith("Diode CreateTransfer for bundles/")
    assert "failed (ResourceNotFoundException): " in str(info.value) and unknown in str(info.value)
    assert info.value.details["code"] == "ResourceNotFoundException" and transfer_count(world) == 0


def test_damaged_and_missing_parts_in_delivery_are_named(world):
    sent = run_diode(params(world), check_mode=False)
    prefix = "%s/bundles/" % MAPPING
    world["s3"].delete_object(Bucket=world["high"], Key=prefix + sent["parts"][0])
    world["s3"].put_object(Bucket=world["high"], Key=prefix + sent["parts"][1], Body=b"garbage")
    with pytest.raises(TransferError) as info:
        run_diode(receive_params(world), check_mode=False)
    assert info.value.parts == [sent["parts"][0], sent["parts"][1]]
    assert "missing: %s" % sent["parts"][0] in str(info.value) and "damaged: %s" % sent["parts"][1] in str(info.value)


def delivered(world, name):
    return "%s/bundles/%s" % (MAPPING, name)


def test_resent_part_replaces_a_damaged_local_copy(world):
    """The CDS damages a part in flight (same size); the sender sends it again; receiving fetches it again."""
    sent = run_diode(params(world), check_mode=False)
    damaged = sent["parts"][1]
    body = bytearray(world["s3"].get_object(Bucket=world["high"], Key=delivered(world, damaged))["Body"].read())
    body[len(body) // 2] ^= 0x01
    world["s3"].put_object(Bucket=world["high"], Key=delivered(world, damaged), Body=bytes(body))
    with pytest.raises(TransferError) as info:
        run_diode(receive_params(world), check_mode=False)
    assert info.value.parts == [damaged] and "damaged: %s" % damaged in str(info.value)
    # Sending again: the source object goes, the part is uploaded and crosses once more.
    world["s3"].delete_object(Bucket=world["low"], Key="bundles/" + damaged)
    resent = run_diode(params(world), check_mode=False)
    assert [t["name"] for t in resent["transfers"] if t["uploaded"]] == [damaged]
    received = run_diode(receive_params(world), check_mode=False)
    assert received["fetched"] == [damaged] and received["verification"]["verified"] is True
    assert sorted(received["fetch_skipped"]) == sorted(n for n in sent["parts"] + [sent["index"]] if n != damaged)
    assert sorted(received["downloaded"]) == sorted(sent["parts"] + [sent["index"]])
    assert open(world["bundle"], "rb").read() == (world["dir"] / "received.tar.zst").read_bytes()
    # A damaged local index (same size) is fetched again too; intact copies are kept.
    index = world["dir"] / "inbox" / sent["index"]
    text = index.read_text()
    index.write_text(text.replace('"size"', '"sizf"', 1))
    again = run_diode(receive_params(world), check_mode=False)
    assert again["fetched"] == [sent["index"]] and again["changed"] is False
    assert index.read_text() == text


def test_zst_only_profile_is_served_end_to_end(world):
    mapping = world["emulator"].mappings[MAPPING]
    mapping.transfer_profile, mapping.extensions = "ZST_ONLY", ("zst",)
    sent = run_diode(params(world, allowed_extensions=["zst"]), check_mode=False)
    assert all(name.endswith(".zst") for name in sent["parts"]) and sent["index"] == "crossing-1.0.0.parts.zst"
    assert {t["status"] for t in sent["transfers"]} == {"SUCCEEDED"}
    received = run_diode(receive_params(world), check_mode=False)
    assert received["index"] == sent["index"] and received["verification"]["verified"] is True
    assert open(world["bundle"], "rb").read() == (world["dir"] / "received.tar.zst").read_bytes()


def test_part_the_diode_refuses_is_reported_rejected(world):
    """Sent as .tar to a profile that takes only .zst: every file is named REJECTED with Diode's own message."""
    mapping = world["emulator"].mappings[MAPPING]
    mapping.transfer_profile, mapping.extensions = "ZST_ONLY", ("zst",)
    with pytest.raises(TransferError) as info:
        run_diode(params(world), check_mode=False)
    message = str(info.value)
    names = sorted(os.listdir(world["dir"] / "outbox"))
    assert sorted(info.value.parts) == names and len(names) >= 4
    for name in names:
        extension = name.rsplit(".", 1)[-1]
        assert "%s REJECTED: file extension '.%s' is not allowed by transfer profile ZST_ONLY" % (
            name, extension) in message
    assert {f["status"] for f in info.value.details["receipt"]["files"]} == {"REJECTED"}


def test_forged_index_in_the_delivery_bucket_does_not_block_delivery(world, tmp_path):
    from ansible_collections.petra.core.plugins.module_utils.diode import parts
    from ansible_collections.petra.core.tests.support import pki
    sent = run_diode(params(world), check_mode=False)
    other = tmp_path / "attacker.pem"
    pki.write_ec_key(str(other))
    genuine = json.loads((world["dir"] / "outbox" / sent["index"]).read_text())
    forged = parts.signed_document(genuine["index"], load_signer(str(other)))
    world["s3"].put_object(Bucket=world["high"], Key=delivered(world, "aaa.parts.json"),
                           Body=json.dumps(forged).encode())
    received = run_diode(receive_params(world), check_mode=False)
    assert received["index"] == sent["index"] and received["verification"]["verified"] is True
    assert [entry["name"] for entry in received["indexes_ignored"]] == ["aaa.parts.json"]
    assert "not signed by any of the given keys" in received["indexes_ignored"][0]["reason"]
    assert "aaa.parts.json" in received["warnings"][0]


def test_unsafe_part_name_in_a_delivered_index_is_refused_before_any_download(world):
    from ansible_collections.petra.core.plugins.module_utils.diode import parts
    sent = run_diode(params(world), check_mode=False)
    genuine = json.loads((world["dir"] / "outbox" / sent["index"]).read_text())
    genuine["index"]["parts"][0]["name"] = "../escaped.tar"  # re-signed with the bundle key itself
    world["s3"].put_object(Bucket=world["high"], Key=delivered(world, sent["index"]),
                           Body=json.dumps(parts.signed_document(genuine["index"], load_signer(world["key"]))).encode())
    with pytest.raises(TransferError) as info:
        run_diode(receive_params(world), check_mode=False)
    assert "is refused" in str(info.value) and "'../escaped.tar'" in str(info.value)
    assert os.listdir(world["dir"] / "inbox") == [sent["index"]]
    assert not (world["dir"] / "escaped.tar").exists()


def test_parity_parts_cross_and_a_part_lost_in_delivery_is_rebuilt(world):
    """Parity parts cross like data parts (same extension, within the mapping's size limit); a data part lost in
    the delivery bucket and a damaged parity part are rebuilt on the far side, without sending anything again."""
    sent = run_diode(params(world, parity_parts="50%"), check_mode=False)
    assert sent["part_count"] == 3 and sent["parity_count"] == 2
    crossed = [t["name"] for t in sent["transfers"]]
    assert crossed == sent["parts"] + sent["parity_parts"] + [sent["index"]]
    assert {t["status"] for t in sent["transfers"]} == {"SUCCEEDED"}
    limit = parse_size("1200KiB")
    for name in sent["parity_parts"]:
        head = world["s3"].head_object(Bucket=world["high"], Key=delivered(world, name))
        assert name.endswith(".tar") and head["ContentLength"] <= limit
    lost, damaged = sent["parts"][1], sent["parity_parts"][0]
    world["s3"].delete_object(Bucket=world["high"], Key=delivered(world, lost))
    world["s3"].put_object(Bucket=world["high"], Key=delivered(world, damaged), Body=b"garbled in transit")
    received = run_diode(receive_params(world), check_mode=False)
    assert received["rebuilt"] == [lost, damaged] and received["verification"]["verified"] is True
    assert lost not in received["downloaded"]
    assert open(world["bundle"], "rb").read() == (world["dir"] / "received.tar.zst").read_bytes()
    for name in (lost, damaged):
        assert (world["dir"] / "inbox" / name).read_bytes() == (world["dir"] / "outbox" / name).read_bytes()
    # Three of the five unusable (two missing, one damaged): one must come again, and only one is named.
    for name in (lost, damaged, sent["parts"][0]):
        os.unlink(world["dir"] / "inbox" / name)
    world["s3"].delete_object(Bucket=world["high"], Key=delivered(world, sent["parts"][0]))
    with pytest.raises(TransferError) as info:
        run_diode(receive_params(world), check_mode=False)
    assert info.value.parts == [sent["parts"][0]] and "send again %s" % sent["parts"][0] in str(info.value)
