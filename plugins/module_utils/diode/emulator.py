# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""An AWS Diode emulator for development and staging accounts, where there is no Diode.

It speaks the same JSON 1.1 protocol (``X-Amz-Target: AWSDiodeFrontendService.<Operation>``) for
CreateTransfer, DescribeTransfer, ListTransfers, ListAccountMappings and DescribeAccountMapping, and moves
objects between S3 buckets (moto locally, or real S3) with the rules of the AWS-provided simulator:
delivery at ``<mappingId>/<key>``, an extension allow-list per transfer profile (``REJECTED``), a size limit
per mapping (``REJECTED``), a request rate limit (``ResourceLimitExceededException``), optional random
``FAILED`` results from a seed, and ``IN_TRANSIT`` until a transfer's delay has passed.

Run it with ``python -m ansible_collections.petra.core.plugins.module_utils.diode.emulator --config FILE``
(see docs/diode.md); requests are not signature-checked.
"""

from __future__ import annotations

import argparse
import datetime
import http.server
import json
import random
import sys
import threading
import time
import uuid

TARGET_PREFIX = "AWSDiodeFrontendService."
PROFILE_EXTENSIONS = {
    # The simulator's default profile; .zst, .sig, .pub and .pem are on no list.
    "CDS_1": ("tar", "tgz", "gz", "zip", "json", "yaml", "txt"),
}
DEFAULT_SIZE_LIMIT = 100 * 1000 * 1000


class DiodeError(Exception):
    def __init__(self, code, message, status=400):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class Mapping:
    def __init__(self, mapping_id, delivery_bucket, transfer_profile="CDS_1", size_limit=DEFAULT_SIZE_LIMIT,
                 alias=None, sending_region="us-east-1", receiving_region="us-gov-west-1", extensions=None):
        self.mapping_id = mapping_id
        self.delivery_bucket = delivery_bucket
        self.transfer_profile = transfer_profile
        self.size_limit = size_limit
        self.alias = alias or mapping_id
        self.sending_region = sending_region
        self.receiving_region = receiving_region
        self.extensions = tuple(extensions or PROFILE_EXTENSIONS.get(transfer_profile, PROFILE_EXTENSIONS["CDS_1"]))

    def describe(self, account="111122223333"):
        arn = "arn:aws:diode:%s:%s:account-mapping/%s" % (self.sending_region, account, self.mapping_id)
        return {"mappingId": self.mapping_id, "mappingArn": arn,
                "mappingAlias": self.alias, "sendingRegion": self.sending_region,
                "receivingRegion": self.receiving_region, "mappingStatus": "ACCEPTED", "sendingAccountId": account,
                "remoteAccountId": account, "remoteAccountReceiving": True,
                "deliveryS3BucketName": self.delivery_bucket, "transferProfile": self.transfer_profile,
                "dateMappingCreated": 0}


class DiodeEmulator:
    """The emulator's state and rules; ``s3`` is a boto3 S3 client for both sides."""

    def __init__(self, s3, mappings, delay=1.0, rate_limit=10.0, fail_rate=0.0, seed=None, account="111122223333"):
        self.s3 = s3
        self.mappings = {mapping.mapping_id: mapping for mapping in mappings}
        self.delay = delay
        self.rate_limit = rate_limit
        self.fail_rate = fail_rate
        self.random = random.Random(seed)
        self.account = account
        self.transfers = {}
        self.tokens = {}
        self._lock = threading.Lock()
        self._recent = []

    # -- protocol --------------------------------------------------------------------------------
    def handle(self, operation, body):
        self._throttle()
        handler = {
            "CreateTransfer": self.create_transfer, "DescribeTransfer": self.describe_transfer,
            "ListTransfers": self.list_transfers, "ListAccountMappings": self.list_account_mappings,
            "DescribeAccountMapping": self.describe_account_mapping,
        }.get(operation)
        if handler is None:
            raise DiodeError("InvalidRequestException", "operation %s is not emulated" % operation)
        return handler(body)

    def _throttle(self):
        now = time.monotonic()
        with self._lock:
            self._recent = [t for t in self._recent if now - t < 1.0]
            if self.rate_limit and len(self._recent) >= self.rate_limit:
                raise DiodeError("ResourceLimitExceededException", "Rate exceeded for this mapping", 429)
            self._recent.append(now)

    def _mapping(self, mapping_id):
        mapping = self.mappings.get(mapping_id)
        if mapping is None:
            raise DiodeError("ResourceNotFoundException", "account mapping %s not found" % mapping_id, 404)
        return mapping

    def create_transfer(self, body):
        for member in ("description", "s3Bucket", "s3Key", "mappingId"):
            if not body.get(member):
                raise DiodeError("InvalidRequestException", "%s is required" % member)
        description = body["description"]
        if len(description) > 100 or description != description.strip():
            raise DiodeError("InvalidRequestException", "description must be 1-100 characters without outer spaces")
        mapping = self._mapping(body["mappingId"])
        token = body.get("clientRequestToken")
        with self._lock:
            if token and token in self.tokens:
                return {"transfer": self._view(self.transfers[self.tokens[token]])}
        transfer_id = str(uuid.uuid4())
        transfer = {"transferId": transfer_id, "mappingId": mapping.mapping_id, "description": description,
                    "s3Bucket": body["s3Bucket"], "s3Key": body["s3Key"], "status": "IN_TRANSIT",
                    "dateSent": time.time(), "ready_at": time.monotonic() + self.delay, "tags": body.get("tags") or {},
                    "includeTags": bool(body.get("includeS3ObjectTags")), "fileSizeInBytes": None}
        with self._lock:
            self.transfers[transfer_id] = transfer
            if token:
                self.tokens[token] = transfer_id
        return {"transfer": self._view(transfer)}

    def _settle(self, transfer):
        """Move a transfer whose time has come to its terminal state (and its object to the delivery bucket)."""
        if transfer["status"] != "IN_TRANSIT" or time.monotonic() < transfer["ready_at"]:
            return
        mapping = self.mappings[transfer["mappingId"]]
        key = transfer["s3Key"]
        try:
            head = self.s3.head_object(Bucket=transfer["s3Bucket"], Key=key)
        except Exception as exc:  # botocore errors of any kind end as FAILED with the reason
            transfer.update(status="FAILED", errorMessage="cannot read s3://%s/%s: %s" % (
                transfer["s3Bucket"], key, exc))
            return
        transfer["fileSizeInBytes"] = head["ContentLength"]
        extension = key.rsplit(".", 1)[-1].lower() if "." in key.rsplit("/", 1)[-1] else ""
        if extension not in mapping.extensions:
            transfer.update(status="REJECTED", errorMessage="file extension '.%s' is not allowed by transfer profile "
                            "%s" % (extension, mapping.transfer_profile))
        elif head["ContentLength"] > mapping.size_limit:
            transfer.update(status="REJECTED", errorMessage="object size %d exceeds the mapping limit of %d bytes" % (
                head["ContentLength"], mapping.size_limit))
        elif self.fail_rate and self.random.random() < self.fail_rate:
            transfer.update(status="FAILED", errorMessage="transfer failed in the cross-domain solution (injected)")
        else:
            extra = {}
            if transfer["includeTags"]:
                tags = self.s3.get_object_tagging(Bucket=transfer["s3Bucket"], Key=key)["TagSet"]
                extra = {"Tagging": "&".join("%s=%s" % (t["Key"], t["Value"]) for t in tags), "TaggingDirective": "REPLACE"}
            self.s3.copy_object(Bucket=mapping.delivery_bucket, Key="%s/%s" % (mapping.mapping_id, key),
                                CopySource={"Bucket": transfer["s3Bucket"], "Key": key}, **extra)
            transfer.update(status="SUCCEEDED", dateReceived=time.time())

    def _view(self, transfer):
        view = {key: transfer[key] for key in ("transferId", "mappingId", "description", "status", "dateSent")}
        view["s3Uri"] = "s3://%s/%s" % (transfer["s3Bucket"], transfer["s3Key"])
        view["transferArn"] = "arn:aws:diode:us-east-1:%s:transfer/%s" % (self.account, transfer["transferId"])
        view["mappingArn"] = "arn:aws:diode:us-east-1:%s:account-mapping/%s" % (self.account, transfer["mappingId"])
        for key in ("dateReceived", "errorMessage", "fileSizeInBytes"):
            if transfer.get(key) is not None:
                view[key] = transfer[key]
        return view

    def describe_transfer(self, body):
        transfer = self.transfers.get(body.get("transferId") or "")
        if transfer is None:
            raise DiodeError("ResourceNotFoundException", "transfer %s not found" % body.get("transferId"), 404)
        with self._lock:
            self._settle(transfer)
        return {"transfer": self._view(transfer)}

    def list_transfers(self, body):
        wanted = body.get("filter") or {}
        with self._lock:
            items = []
            for transfer in self.transfers.values():
                self._settle(transfer)
                view = self._view(transfer)
                filters = {key: value for key, value in wanted.items()
                           if key in ("mappingId", "s3Uri", "status", "description")}
                if all(view.get(key) == value for key, value in filters.items()):
                    items.append(view)
        return {"transferList": items}

    def list_account_mappings(self, body):
        return {"accountMappingList": [m.describe(self.account) for m in self.mappings.values()]}

    def describe_account_mapping(self, body):
        return {"accountMapping": self._mapping(body.get("mappingId")).describe(self.account)}


def make_server(emulator, host="127.0.0.1", port=0):
    """A threading HTTP server speaking Diode's JSON 1.1 protocol in front of the emulator."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _answer(self, status, document):
            body = json.dumps(document, default=_json_default).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            target = self.headers.get("X-Amz-Target", "")
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                if not target.startswith(TARGET_PREFIX):
                    raise DiodeError("InvalidRequestException", "unknown target %r" % target)
                self._answer(200, emulator.handle(target[len(TARGET_PREFIX):], body))
            except DiodeError as exc:
                self._answer(exc.status, {"__type": exc.code, "message": exc.message})
            except ValueError:
                self._answer(400, {"__type": "InvalidRequestException", "message": "the body is not JSON"})

    return http.server.ThreadingHTTPServer((host, port), Handler)


def _json_default(value):
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    raise TypeError(repr(value))


def main(argv=None):
    parser = argparse.ArgumentParser(description="AWS Diode emulator (JSON 1.1 protocol over S3 buckets)")
    parser.add_argument("--config", required=True, help="JSON file: {s3_endpoint_url, region, mappings: [...]}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8088)
    args = parser.parse_args(argv)
    import boto3
    with open(args.config) as handle:
        config = json.load(handle)
    s3 = boto3.client("s3", endpoint_url=config.get("s3_endpoint_url"), region_name=config.get("region", "us-east-1"))
    mappings = [Mapping(**item) for item in config["mappings"]]
    emulator = DiodeEmulator(s3, mappings, delay=config.get("delay", 1.0), rate_limit=config.get("rate_limit", 10),
                             fail_rate=config.get("fail_rate", 0.0), seed=config.get("seed"))
    server = make_server(emulator, args.host, args.port)
    sys.stdout.write("Diode emulator on http://%s:%d\n" % server.server_address[:2])
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
