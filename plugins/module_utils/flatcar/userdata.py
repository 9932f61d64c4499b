# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""How a rendered Ignition config reaches its node: as EC2 user data when it fits in 16 KB, else as an S3 object
behind a small stub that replaces itself from it (pinned by SHA-256); optionally also as a file (mode 0600).

The S3 object carries the config's SHA-256 in its metadata, so a re-run uploads nothing when it is already there.
"""

from __future__ import annotations

import os

from ansible_collections.petra.core.plugins.module_utils.atomic import write_atomically
from ansible_collections.petra.core.plugins.module_utils.aws.errors import aws_errors
from ansible_collections.petra.core.plugins.module_utils.flatcar import ignition
from ansible_collections.petra.core.plugins.module_utils.flatcar.errors import IgnitionError

SHA256_METADATA = "petra-sha256"


def deliver(document, ignition_version, check_mode, dest=None, s3_uri=None, s3_always=False, kms_key_id=None,
            connect=None):
    """The task result for ``document``; ``connect()`` gives the AWSConnection, asked for only to publish to S3."""
    data, digest = ignition.serialise(document)
    result = {"changed": False, "ignition": document, "sha256": digest, "size": len(data),
              "fits_user_data": len(data) <= ignition.USER_DATA_LIMIT, "user_data": data.decode("utf-8")}
    if s3_uri and (s3_always or not result["fits_user_data"]):
        result["changed"] = publish(connect(), s3_uri, data, digest, kms_key_id, check_mode) or result["changed"]
        stub = ignition.replace_stub(ignition_version, s3_uri, "sha256-" + digest)
        result["user_data"] = ignition.serialise(stub)[0].decode("utf-8")
        result["config_s3_uri"] = s3_uri
    elif not result["fits_user_data"]:
        result["warnings"] = ["the config is %d bytes, over the 16 KB EC2 user-data limit: give config_s3_uri so "
                              "user data can carry a stub that replaces itself from S3" % len(data)]
    if dest:
        current = None
        if os.path.isfile(dest):
            with open(dest, "rb") as handle:
                current = handle.read()
        if current != data:
            result["changed"] = True
            if not check_mode:
                write_atomically(dest, lambda handle: handle.write(data), mode=0o600)
        result["dest"] = dest
    return result


def publish(connection, uri, data, digest, kms_key_id, check_mode):
    """Upload the full config to s3://bucket/key unless it is already there; True when it was (or would be)."""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise IgnitionError("config_s3_uri %r is not s3://bucket/key" % uri)
    bucket, key = uri[5:].split("/", 1)
    s3 = connection.client("s3")
    head = None
    with aws_errors(IgnitionError, "S3 HeadObject %s" % uri, missing_ok=True):
        head = s3.head_object(Bucket=bucket, Key=key)
    if head is not None and (head.get("Metadata") or {}).get(SHA256_METADATA) == digest:
        return False
    if check_mode:
        return True
    extra = {"ChecksumAlgorithm": "SHA256", "Metadata": {SHA256_METADATA: digest}, "ContentType": "application/json"}
    if kms_key_id:
        extra.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key_id)
    with aws_errors(IgnitionError, "S3 PutObject %s" % uri,
                    hint="The node role needs s3:GetObject on it too, to fetch the config at boot"):
        s3.put_object(Bucket=bucket, Key=key, Body=data, **extra)
    return True
