"""The Diode emulator over real HTTP, moving objects between two moto S3 buckets, driven by a boto3 client
built from the shipped model."""

import threading
import time

import boto3
import botocore.exceptions
import pytest

from ansible_collections.petra.core.plugins.module_utils.diode.emulator import DiodeEmulator, Mapping, make_server
from ansible_collections.petra.core.plugins.module_utils.aws.client import AWSConnection
from ansible_collections.petra.core.plugins.module_utils.diode.service import diode_client

MAPPING = "0f5c3b2a-1d2e-4f60-8a9b-0c1d2e3f4a5b"
CREDS = dict(aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def world(moto):
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto.endpoint, **CREDS)
    suffix = str(int(time.time() * 1000))
    low, high = "low-" + suffix, "high-" + suffix
    s3.create_bucket(Bucket=low)
    s3.create_bucket(Bucket=high)
    emulator = DiodeEmulator(s3, [Mapping(MAPPING, high, size_limit=2000)], delay=0.2, rate_limit=50)
    server = make_server(emulator)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    connection = AWSConnection(region="us-east-1", access_key="testing", secret_key="testing", max_attempts=6)
    client = diode_client(connection, endpoint_url="http://127.0.0.1:%d" % server.server_address[1])
    yield {"s3": s3, "low": low, "high": high, "client": client, "emulator": emulator}
    server.shutdown()
    server.server_close()


def wait(client, transfer_id, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        transfer = client.describe_transfer(transferId=transfer_id)["transfer"]
        if transfer["status"] != "IN_TRANSIT":
            return transfer
        time.sleep(0.1)
    raise AssertionError("transfer still in transit")


def send(world, key, body, token=None):
    world["s3"].put_object(Bucket=world["low"], Key=key, Body=body)
    kwargs = {"clientRequestToken": token} if token else {}
    return world["client"].create_transfer(description="test " + key, s3Bucket=world["low"], s3Key=key,
                                           mappingId=MAPPING, **kwargs)["transfer"]


def test_delivery(world):
    created = send(world, "bundle/part-1.tar", b"x" * 100)
    assert created["status"] == "IN_TRANSIT"
    done = wait(world["client"], created["transferId"])
    assert done["status"] == "SUCCEEDED" and done["fileSizeInBytes"] == 100
    delivered = world["s3"].get_object(Bucket=world["high"], Key="%s/bundle/part-1.tar" % MAPPING)["Body"].read()
    assert delivered == b"x" * 100


def test_rejections(world):
    zst = wait(world["client"], send(world, "bundle/b.tar.zst", b"x")["transferId"])
    assert zst["status"] == "REJECTED" and "'.zst' is not allowed" in zst["errorMessage"]
    big = wait(world["client"], send(world, "bundle/big.tar", b"x" * 5000)["transferId"])
    assert big["status"] == "REJECTED" and "exceeds the mapping limit" in big["errorMessage"]


def test_idempotent_token(world):
    first = send(world, "bundle/i.tar", b"y", token="petra:abc")
    second = send(world, "bundle/i.tar", b"y", token="petra:abc")
    assert first["transferId"] == second["transferId"]
    assert len(world["client"].list_transfers(filter={"mappingId": MAPPING})["transferList"]) == 1


def test_mappings(world):
    mappings = world["client"].list_account_mappings()["accountMappingList"]
    assert [m["mappingId"] for m in mappings] == [MAPPING]
    described = world["client"].describe_account_mapping(mappingId=MAPPING)["accountMapping"]
    assert described["deliveryS3BucketName"] == world["high"] and described["transferProfile"] == "CDS_1"
    with pytest.raises(botocore.exceptions.ClientError) as info:
        world["client"].describe_account_mapping(mappingId="00000000-0000-0000-0000-000000000000")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_throttling_is_retried_by_the_modelled_client(world):
    world["emulator"].rate_limit = 2
    for _attempt in range(6):  # more than the limit within a second: botocore retries the modelled throttling error
        world["client"].list_account_mappings()
    strict = AWSConnection(region="us-east-1", access_key="testing", secret_key="testing", max_attempts=1)
    strict = diode_client(strict, endpoint_url=world["client"].meta.endpoint_url)
    codes = set()
    for _attempt in range(5):
        try:
            strict.list_account_mappings()
        except botocore.exceptions.ClientError as exc:
            codes.add(exc.response["Error"]["Code"])
    assert codes == {"ResourceLimitExceededException"}


def test_injected_failures(world):
    world["emulator"].fail_rate = 1.0
    failed = wait(world["client"], send(world, "bundle/f.tar", b"z")["transferId"])
    assert failed["status"] == "FAILED" and "injected" in failed["errorMessage"]
