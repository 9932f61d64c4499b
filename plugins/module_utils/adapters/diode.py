# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The adapter of petra_diode: its argument spec, and what it does with validated parameters."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.aws.client import AWSConnection
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys
from ansible_collections.petra.core.plugins.module_utils.diode import s3transport, transfer
from ansible_collections.petra.core.plugins.module_utils.diode.errors import TransferError
from ansible_collections.petra.core.plugins.module_utils.diode.parts import DEFAULT_ALLOWED_EXTENSIONS
from ansible_collections.petra.core.plugins.module_utils.diode.service import diode_client
from ansible_collections.petra.core.plugins.module_utils.options.aws import AWS_ARGUMENT_SPEC
from ansible_collections.petra.core.plugins.module_utils.options.signing import (
    SIGNING_ARGUMENT_SPEC,
    SIGNING_MUTUALLY_EXCLUSIVE,
    signer_from_params,
)

ARGUMENT_SPEC = dict(SIGNING_ARGUMENT_SPEC, **AWS_ARGUMENT_SPEC)
ARGUMENT_SPEC.update(
    state=dict(type="str", default="sent", choices=["sent", "received"]),
    transport=dict(type="str", default="directory", choices=["directory", "diode"]),
    s3_bucket=dict(type="str"),
    s3_prefix=dict(type="str", default=""),
    mapping_id=dict(type="str"),
    kms_key_id=dict(type="str", no_log=False),
    diode_endpoint_url=dict(type="str"),
    delivery_bucket=dict(type="str"),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=3600),
    poll_interval=dict(type="float", default=5.0),
    receipt=dict(type="path"),
    src=dict(type="path"),
    signature=dict(type="path"),
    dest=dict(type="path"),
    directory=dict(type="path", required=True),
    index=dict(type="str"),
    public_key=dict(type="list", elements="str"),
    max_part_size=dict(type="str", default="100MB"),
    allowed_extensions=dict(type="list", elements="str", default=list(DEFAULT_ALLOWED_EXTENSIONS)),
    parity_parts=dict(type="raw", default=0),
)
MUTUALLY_EXCLUSIVE = SIGNING_MUTUALLY_EXCLUSIVE
CONTROLLER_FILES = ("src", "signature", "signing_key", "public_key")
REPORTS_PROGRESS = True  # splitting, proving parts, reassembling and verifying; not the S3 uploads and downloads
REQUIRED_IF = [
    ("state", "sent", ("src",)),
    ("state", "sent", ("signing_key", "signing_key_content"), True),
    ("state", "received", ("dest", "public_key")),
    ("transport", "diode", ("mapping_id",)),
]


def run(params, check_mode, playbook_dir=None, progress=None):  # pylint: disable=unused-argument
    if params["transport"] == "diode":
        return run_aws_diode(params, check_mode, progress)
    if params["state"] == "sent":
        return transfer.send_to_directory(params["src"], params["directory"], signer_from_params(params),
                                          params["max_part_size"], params.get("signature"),
                                          params["allowed_extensions"], check_mode, params.get("parity_parts"), progress)
    return transfer.receive_from_directory(params["directory"], params["dest"], load_public_keys(params["public_key"]),
                                           params.get("index"), check_mode, progress)


def diode_for(connection, s3, params):
    """The Diode client of a send, from the task's one connection (credentials, CA bundle, retries), in the
    region of its S3 client; the Diode endpoint is its own option, since the connection's endpoint_url is S3's."""
    return diode_client(connection, region=connection.region or s3.meta.region_name,
                        endpoint_url=params.get("diode_endpoint_url"))


def run_aws_diode(params, check_mode, progress=None):
    connection = AWSConnection.from_params(params)
    s3 = connection.client("s3")
    if params["state"] == "received":
        if not params.get("delivery_bucket"):
            raise TransferError("receiving from AWS Diode needs delivery_bucket", hint="Set the mapping's delivery bucket")
        public_keys = load_public_keys(params["public_key"])
        delivery = s3transport.download_delivery(s3, params["delivery_bucket"], params["mapping_id"],
                                                 params["s3_prefix"], params["directory"], public_keys,
                                                 params.get("index"))
        result = transfer.receive_from_directory(params["directory"], params["dest"], public_keys,
                                                 params.get("index"), check_mode, progress)
        result.update(downloaded=delivery["fetched"] + delivery["skipped"], fetched=delivery["fetched"],
                      fetch_skipped=delivery["skipped"])
        return result
    if not params.get("s3_bucket"):
        raise TransferError("sending through AWS Diode needs s3_bucket", hint="Set the mapping's source bucket")
    split = transfer.send_to_directory(params["src"], params["directory"], signer_from_params(params),
                                       params["max_part_size"], params.get("signature"), params["allowed_extensions"],
                                       check_mode, params.get("parity_parts"), progress)
    sender = s3transport.DiodeSender(s3, diode_for(connection, s3, params), params["s3_bucket"], params["mapping_id"],
                                     params["s3_prefix"], params.get("kms_key_id"))
    if check_mode and split["changed"]:
        records, changed = [{"name": name, "key": name, "uploaded": True} for name in split["written"]], True
    else:
        records, changed = sender.send(params["directory"], split, check_mode)
    failure = None
    if params["wait"] and not check_mode:
        try:
            sender.wait(records, params["wait_timeout"], params["poll_interval"])
        except TransferError as exc:
            failure = exc
    document = s3transport.receipt(records, params["mapping_id"], params["s3_bucket"]) if not check_mode else None
    if params.get("receipt") and document is not None:
        s3transport.write_receipt(document, params["receipt"])
    if failure is not None:
        failure.details["receipt"] = document
        raise failure
    split.update(changed=changed or split["changed"], receipt=document,
                 transfers=[{"name": r["name"], "key": r["key"], "uploaded": r["uploaded"],
                             "transfer_id": (r.get("transfer") or {}).get("transferId"),
                             "status": (r.get("transfer") or {}).get("status")} for r in records])
    return split
