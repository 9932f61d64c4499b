# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The AWS Diode transport: parts into the source bucket, one transfer per part, and back out of the delivery bucket.

Re-runs are cheap and safe: an object already uploaded with the same SHA-256 (kept in its metadata, since the
S3 checksum of a multipart object is not a whole-object digest) is not uploaded again, and a transfer already
made for that object is not created again (and the deterministic ``clientRequestToken`` makes a retried
CreateTransfer idempotent on Diode's side too).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import re
import time
import uuid

from ansible_collections.petra.core.plugins.module_utils.atomic import write_atomically
from ansible_collections.petra.core.plugins.module_utils.aws.errors import AWSCalls
from ansible_collections.petra.core.plugins.module_utils.diode import parity
from ansible_collections.petra.core.plugins.module_utils.diode import parts as part_files
from ansible_collections.petra.core.plugins.module_utils.diode import transfer as directory_transport
from ansible_collections.petra.core.plugins.module_utils.diode.errors import TransferError

SHA256_METADATA = "petra-sha256"
UPLOAD_METADATA = "petra-upload"  # one value per upload: S3 times have one-second resolution, versions may be off
TERMINAL = ("SUCCEEDED", "FAILED", "REJECTED")
# Failed S3 and Diode calls become TransferErrors naming the action and AWS's error code. Nothing here retries:
# the clients' standard retry mode (aws/client.py) retries throttling (Diode's ResourceLimitExceededException is
# modelled as such), transient failures and 5xx. S3 is strongly read-after-write consistent, so an object just
# uploaded can be read back and handed to CreateTransfer at once: no eventual-consistency retry is needed either.
_aws = AWSCalls(TransferError, hint="Check the mapping, the buckets and the caller's permissions")


def client_request_token(mapping_id, key, sha256, attempt=0, upload=""):
    """The same object, sent again after ``attempt`` failed transfers, gets the same token: no duplicates.

    ``upload`` tells uploads of the same bytes apart (S3 version or upload time): a part uploaded again, because the
    far side received it damaged, must cross again, not get the earlier transfer back for the same token.
    """
    text = "%s|%s|%s|%d|%s" % (mapping_id, key, sha256, attempt, upload)
    return "petra:" + hashlib.sha256(text.encode()).hexdigest()[:58]


def describe(bundle_name, name):
    text = "petra %s %s" % (bundle_name, name)
    return text if len(text) <= 100 else text[:97].rstrip() + "..."


def _head(s3, bucket, key):
    """The object's HeadObject answer (with its checksum), or None when there is no such object."""
    return _aws("S3 HeadObject s3://%s/%s" % (bucket, key), s3.head_object, missing_ok=True,
                Bucket=bucket, Key=key, ChecksumMode="ENABLED")


def _upload_id(head, since):
    return (head.get("Metadata") or {}).get(UPLOAD_METADATA) or head.get("VersionId") or "%.0f" % since


class DiodeSender:
    def __init__(self, s3, diode, bucket, mapping_id, prefix="", kms_key_id=None):
        self.s3 = s3
        self.diode = diode
        self.bucket = bucket
        self.mapping_id = mapping_id
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.kms_key_id = kms_key_id

    def _uploaded(self, key, sha256):
        head = _head(self.s3, self.bucket, key)
        return head if head is not None and (head.get("Metadata") or {}).get(SHA256_METADATA) == sha256 else None

    def upload(self, path, key, sha256, bundle_name):
        metadata = {SHA256_METADATA: sha256, UPLOAD_METADATA: uuid.uuid4().hex}
        extra = {"ChecksumAlgorithm": "SHA256", "Metadata": metadata,
                 "Tagging": "petra-mapping-id=%s&petra-bundle=%s" % (self.mapping_id, bundle_name)}
        if self.kms_key_id:
            extra.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=self.kms_key_id)
        with _aws.errors("S3 upload of %s to s3://%s/%s" % (os.path.basename(path), self.bucket, key)):
            self.s3.upload_file(path, self.bucket, key, ExtraArgs=extra)
        return self._uploaded(key, sha256)

    def _existing_transfer(self, key, since):
        """(a live or successful transfer of this upload, the number of failed or rejected ones)."""
        s3_uri = "s3://%s/%s" % (self.bucket, key)
        found, failed = None, 0
        request = {"filter": {"mappingId": self.mapping_id, "s3Uri": s3_uri}}
        while True:
            answer = _aws("Diode ListTransfers", self.diode.list_transfers, **request)
            for transfer in answer.get("transferList") or []:
                sent = transfer.get("dateSent")
                sent = sent.timestamp() if hasattr(sent, "timestamp") else float(sent or 0)
                if sent < since - 1:
                    continue
                if transfer.get("status") in ("IN_TRANSIT", "SUCCEEDED"):
                    found = transfer
                else:
                    failed += 1
            if not answer.get("nextToken"):
                return found, failed
            request["nextToken"] = answer["nextToken"]

    def send(self, directory, sent, check_mode=False):
        """Upload the part files and index in ``sent`` (a split result) and create their transfers."""
        records = []
        changed = False
        names = sent["parts"] + sent.get("parity_parts", []) + [sent["index"]]
        bundle_name = part_files.index_stem(sent["index"])
        for name in names:
            path = os.path.join(directory, name)
            sha256 = part_files.hash_file(path)
            key = self.prefix + name
            head = self._uploaded(key, sha256)
            uploaded = head is None
            if uploaded:
                changed = True
                if check_mode:
                    records.append({"name": name, "key": key, "sha256": sha256, "uploaded": True, "transfer": None})
                    continue
                head = self.upload(path, key, sha256, bundle_name)
            since = head["LastModified"].timestamp() if hasattr(head["LastModified"], "timestamp") else 0
            transfer, failed = (None, 0) if uploaded else self._existing_transfer(key, since)
            created = transfer is None
            if created:
                changed = True
                if not check_mode:
                    token = client_request_token(self.mapping_id, key, sha256, failed, _upload_id(head, since))
                    transfer = _aws("Diode CreateTransfer for %s" % key, self.diode.create_transfer,
                                    description=describe(bundle_name, name.rsplit(".", 1)[0].rsplit(".", 1)[-1]),
                                    s3Bucket=self.bucket, s3Key=key, mappingId=self.mapping_id,
                                    clientRequestToken=token, tags={"petra-bundle": bundle_name})["transfer"]
            records.append({"name": name, "key": key, "sha256": sha256, "uploaded": uploaded,
                            "s3VersionId": head.get("VersionId"), "checksumSHA256": head.get("ChecksumSHA256"),
                            "transferCreated": created, "transfer": transfer})
        return records, changed

    def wait(self, records, timeout, poll=2.0):
        deadline = time.monotonic() + timeout
        pending = [r for r in records if r.get("transfer") and r["transfer"].get("status") not in TERMINAL]
        delay = poll
        while pending:
            still = []
            for record in pending:
                transfer_id = record["transfer"]["transferId"]
                record["transfer"] = _aws("Diode DescribeTransfer %s" % transfer_id, self.diode.describe_transfer,
                                          transferId=transfer_id)["transfer"]
                if record["transfer"].get("status") not in TERMINAL:
                    still.append(record)
            pending = still
            if pending:
                if time.monotonic() >= deadline:
                    raise TransferError("%d transfer(s) still in transit after %ds: %s" % (
                        len(pending), timeout, ", ".join(r["name"] for r in pending)),
                        hint="Run again with wait: the parts and transfers are kept", parts=[r["name"] for r in pending])
                time.sleep(delay)
                delay = min(delay * 1.5, 30)
        bad = [r for r in records if r.get("transfer") and r["transfer"].get("status") in ("FAILED", "REJECTED")]
        if bad:
            raise TransferError("%d part(s) did not cross: %s" % (len(bad), "; ".join(
                "%s %s: %s" % (r["name"], r["transfer"]["status"], r["transfer"].get("errorMessage") or "no message")
                for r in bad)), hint="Fix what Diode reports (extension, size, mapping), then run again",
                parts=[r["name"] for r in bad])


def receipt(records, mapping_id, bucket):
    """Custody evidence for the CDS hop: every object, its checksum and version, and its transfer."""
    items = []
    for record in records:
        transfer = record.get("transfer") or {}
        items.append({"file": record["name"], "s3Uri": "s3://%s/%s" % (bucket, record["key"]),
                      "sha256": record["sha256"], "s3VersionId": record.get("s3VersionId"),
                      "checksumSHA256": record.get("checksumSHA256"), "transferId": transfer.get("transferId"),
                      "status": transfer.get("status"), "errorMessage": transfer.get("errorMessage"),
                      "dateSent": _time(transfer.get("dateSent")), "dateReceived": _time(transfer.get("dateReceived"))})
    return {"kind": "PetraDiodeReceipt", "mappingId": mapping_id, "written": _time(time.time()), "files": items}


def _time(value):
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return datetime.datetime.fromtimestamp(float(value), datetime.timezone.utc).isoformat()


def write_receipt(document, path):
    text = json.dumps(document, indent=1, sort_keys=True).encode("utf-8") + b"\n"
    write_atomically(path, lambda handle: handle.write(text))


def download_delivery(s3, bucket, mapping_id, prefix, directory, public_keys, index=None):
    """Bring the delivery (``<mappingId>/<prefix>...``) into directory, streaming, and say what was fetched and
    what was already there.

    A local copy is kept only when its content is right, never for its size: a re-sent part has the size of the
    damaged copy it replaces. Index files are compared with the object's SHA-256; parts with the SHA-256 the
    verified index lists, and only the parts that index names are fetched.
    """
    root = "%s/%s" % (mapping_id, prefix.strip("/") + "/" if prefix.strip("/") else "")
    keys = {}
    with _aws.errors("S3 ListObjectsV2 s3://%s/%s" % (bucket, root)):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=root):
            for item in page.get("Contents") or []:
                name = item["Key"][len(root):]
                if not part_files.unsafe_name(name):
                    keys[name] = item["Key"]
    fetched, skipped = [], []

    def fetch(name, sha256):
        target = os.path.join(directory, name)
        if sha256 and os.path.isfile(target) and part_files.hash_file(target) == sha256:
            skipped.append(name)
            return
        with _aws.errors("S3 download of s3://%s/%s" % (bucket, keys[name])):
            s3.download_file(bucket, keys[name], target)
        fetched.append(name)

    for name in sorted(name for name in keys if part_files.is_index_name(name)):
        fetch(name, _object_sha256(s3, bucket, keys[name]))
    index_path, document, passed_over = directory_transport.find_index(directory, public_keys, index)
    for part in parity.shares(document):
        if part["name"] in keys:  # a part not delivered is named as missing when the parts are proven
            fetch(part["name"], part["sha256"])
    return {"index": os.path.basename(index_path), "fetched": fetched, "skipped": skipped,
            "indexes_ignored": passed_over}


def _object_sha256(s3, bucket, key):
    """The whole-object SHA-256 (hex) S3 keeps for an object, or None: the S3 checksum when it is over the whole
    object, else the digest the sender put in the metadata (copied with the object on delivery)."""
    head = _head(s3, bucket, key)
    if head is None:  # the object is then fetched, and proven afterwards
        return None
    checksum = head.get("ChecksumSHA256") or ""
    if checksum and "-" not in checksum and head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
        try:
            return base64.b64decode(checksum, validate=True).hex()
        except ValueError:
            return None
    stated = (head.get("Metadata") or {}).get(SHA256_METADATA) or ""
    return stated if re.match(r"^[0-9a-f]{64}$", stated) else None
