# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The cross-domain hop as evidence: the signed part indexes and the AWS Diode receipts petra_diode wrote, read
from a directory (an inbox kept after receiving, or an archive of them).

Every part index (``<name>.parts.<ext>``) is verified with the bundle signers' keys, with the same code that
receives parts (``diode/parts.py``): a verified index names the bundle's SHA-256 that crossed, which the custody
check joins to the custody records. Receipts (``kind: PetraDiodeReceipt``) name every file sent through AWS Diode
with its SHA-256 and the transfer's status and times. Parts themselves are not read: their hashes are in the index.
"""

from __future__ import annotations

import json
import os

from ansible_collections.petra.core.plugins.module_utils.diode import parts as part_files
from ansible_collections.petra.core.plugins.module_utils.diode.errors import TransferError
from ansible_collections.petra.core.plugins.module_utils.diode.tarpart import hash_file
from ansible_collections.petra.core.plugins.module_utils.evidence.errors import EvidenceError

RECEIPT = "PetraDiodeReceipt"
MAX_RECEIPT = 16 << 20


def _index(path, public_keys):
    entry = {"file": os.path.basename(path), "kind": "part-index", "sha256": hash_file(path)}
    try:
        index = part_files.read_index(path, public_keys)
    except TransferError as exc:
        entry.update(verified=False, error=exc.message)
        return entry
    bundle = index.get("bundle") or {}
    entry.update(verified=True, bundle={"name": bundle.get("name"), "size": bundle.get("size"),
                                        "sha256": bundle.get("sha256")},
                 signer=(index.get("signer") or {}).get("keyId"), parts=len(index.get("parts") or []),
                 parityParts=len((index.get("parity") or {}).get("parts") or []),
                 cosignatures=len(bundle.get("cosignatures") or []))
    return entry


def _receipt(path):
    """A Diode receipt's entry, or None for a JSON file that is not one."""
    with open(path, "rb") as handle:
        data = handle.read(MAX_RECEIPT + 1)
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("kind") != RECEIPT:
        return None
    files = [{key: item.get(key) for key in ("file", "sha256", "status", "transferId", "dateSent", "dateReceived",
                                             "errorMessage")} for item in document.get("files") or []]
    return {"file": os.path.basename(path), "kind": "receipt", "sha256": hash_file(path),
            "mappingId": document.get("mappingId"), "written": document.get("written"), "files": files}


def read_transfers(directory, public_keys):
    """The evidence document of ``directory``; raises EvidenceError when it cannot be read at all."""
    if not directory:
        raise EvidenceError("no transfer_records was given, so how the bundles crossed was not read",
                            hint="Give transfer_records: the directory of part indexes and receipts petra_diode wrote",
                            reason="no-transfer-records")
    if not public_keys:
        raise EvidenceError("no transfer_public_key was given, so the part indexes in %s could not be verified" %
                            directory, hint="Give the bundle signers' public keys", reason="no-transfer-keys")
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        raise EvidenceError("cannot read transfer_records %s: %s" % (directory, exc.strerror),
                            reason="transfer-records")
    records = []
    for name in names:
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            continue
        if part_files.is_index_name(name):
            records.append(_index(path, public_keys))
        elif name.endswith(".json"):
            receipt = _receipt(path)
            if receipt is not None:
                records.append(receipt)
    return {"directory": os.path.basename(os.path.normpath(directory)), "records": records}
