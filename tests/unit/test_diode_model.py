"""The shipped botocore model of AWS Diode: what the reference facts say, and a client built from it."""

import http.server
import json
import os
import threading

import pytest

from ansible_collections.petra.core.plugins.module_utils.aws.client import AWSConnection
from ansible_collections.petra.core.plugins.module_utils.diode.service import DATA_PATH, diode_client

MODEL = json.load(open(os.path.join(DATA_PATH, "diode", "2017-12-01", "service-2.json")))


def test_metadata():
    meta = MODEL["metadata"]
    assert meta["protocol"] == "json" and meta["jsonVersion"] == "1.1"
    assert meta["targetPrefix"] == "AWSDiodeFrontendService"
    assert meta["endpointPrefix"] == meta["signingName"] == "diode"
    assert meta["signatureVersion"] == "v4" and meta["serviceId"] == "Diode" and meta["apiVersion"] == "2017-12-01"


@pytest.mark.parametrize("operation, required", [
    ("CreateTransfer", ["description", "s3Bucket", "s3Key", "mappingId"]),
    ("DescribeTransfer", ["transferId"]),
    ("ListTransfers", []),
    ("ListAccountMappings", []),
    ("DescribeAccountMapping", ["mappingId"]),
])
def test_operations(operation, required):
    op = MODEL["operations"][operation]
    assert op["http"] == {"method": "POST", "requestUri": "/"}
    assert MODEL["shapes"][op["input"]["shape"]].get("required", []) == required


def test_shapes_and_patterns():
    shapes = MODEL["shapes"]
    assert shapes["Description"]["max"] == 100
    assert shapes["S3Key"]["min"] == 1 and shapes["S3Key"]["max"] == 905
    assert shapes["ClientRequestToken"]["max"] == 64 and shapes["ClientRequestToken"]["pattern"] == r"^[\w:/-]+$"
    assert set(shapes["TransferStatus"]["enum"]) == {"IN_TRANSIT", "SUCCEEDED", "FAILED", "REJECTED"}
    assert set(shapes["MappingStatus"]["enum"]) == {
        "PENDING_ACCEPTANCE", "ACCEPTED", "DELETED", "REJECTED", "DEACTIVATED", "FAILED", "EXPIRED"}
    assert set(shapes["Transfer"]["members"]) == {
        "transferId", "transferArn", "mappingArn", "mappingId", "s3Uri", "status", "dateSent", "dateReceived",
        "description", "errorMessage", "fileSizeInBytes"}
    assert set(shapes["AccountMapping"]["members"]) == {
        "mappingId", "mappingArn", "mappingAlias", "sendingRegion", "receivingRegion", "mappingStatus",
        "sendingAccountId", "remoteAccountId", "remoteAccountReceiving", "dateMappingCreated",
        "deliveryS3BucketName", "transferProfile", "roleArn"}
    for error in ("InvalidRequestException", "ResourceNotFoundException", "ResourceAlreadyExistsException",
                  "ResourceLimitExceededException", "TransientFailureException", "OperationInvalidInRegionException",
                  "MappingFailedException"):
        assert shapes[error]["exception"] is True and "message" in shapes[error]["members"]
    assert "retryable" in shapes["ResourceLimitExceededException"] and "retryable" in shapes["TransientFailureException"]


def test_client_serialises_create_transfer():
    """A real HTTP round trip on loopback: target header, JSON 1.1 body, and the response parsed by the model."""
    captured = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            captured["target"] = self.headers.get("X-Amz-Target")
            captured["type"] = self.headers.get("Content-Type")
            captured["body"] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            body = json.dumps({"transfer": {"transferId": "t-1", "status": "IN_TRANSIT",
                                            "mappingId": captured["body"]["mappingId"]}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = diode_client(AWSConnection(region="us-gov-west-1", access_key="a", secret_key="b"),
                              endpoint_url="http://127.0.0.1:%d" % server.server_address[1])
        answer = client.create_transfer(description="platform 1.4.0 part 1/3", s3Bucket="low-side",
                                        s3Key="platform/p1.tar", mappingId="0f5c3b2a-1d2e-4f60-8a9b-0c1d2e3f4a5b",
                                        clientRequestToken="petra:abc")
    finally:
        server.shutdown()
        server.server_close()
    assert captured["target"] == "AWSDiodeFrontendService.CreateTransfer"
    assert captured["type"] == "application/x-amz-json-1.1"
    assert captured["body"]["s3Key"] == "platform/p1.tar" and captured["body"]["clientRequestToken"] == "petra:abc"
    assert answer["transfer"]["status"] == "IN_TRANSIT"


def test_client_validates_against_the_model():
    import botocore.exceptions
    client = diode_client(AWSConnection(region="us-east-1", access_key="a", secret_key="b"),
                          endpoint_url="http://127.0.0.1:9")
    # botocore checks required members and minimum lengths (maximums and patterns are the service's to check).
    with pytest.raises(botocore.exceptions.ParamValidationError, match="mappingId"):
        client.create_transfer(description="x", s3Bucket="b", s3Key="k")
    with pytest.raises(botocore.exceptions.ParamValidationError, match="s3Key"):
        client.create_transfer(description="x", s3Bucket="b", s3Key="", mappingId="0f5c3b2a-1d2e-4f60-8a9b-0c1d2e3f4a5b")
