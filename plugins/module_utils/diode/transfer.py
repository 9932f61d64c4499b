# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Sending a bundle as parts and receiving it back: the directory transport (removable media, guard outboxes)."""

from __future__ import annotations

import glob
import os

from ansible_collections.petra.core.plugins.module_utils.bundle.errors import VerificationError
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import verify_bundle
from ansible_collections.petra.core.plugins.module_utils.diode import parts as part_files
from ansible_collections.petra.core.plugins.module_utils.diode.errors import TransferError
from ansible_collections.petra.core.plugins.module_utils.signing import cosignature_file


def send_to_directory(bundle, directory, signer, max_part_size, signature_path=None, allowed_extensions=None,
                      check_mode=False):
    if not os.path.isdir(directory):
        raise TransferError("the directory %s does not exist" % directory,
                            hint="Mount the removable medium or create the outbox directory first")
    result = part_files.split_bundle(bundle, directory, signer, max_part_size, signature_path, allowed_extensions,
                                     check_mode)
    result["directory"] = directory
    return result


def find_index(directory, index=None):
    if index:
        return os.path.join(directory, index)
    found = sorted(glob.glob(os.path.join(directory, "*.parts.json")))
    if len(found) != 1:
        raise TransferError("%s holds %d part indexes (%s); say which one to use in 'index'" % (
            directory, len(found), ", ".join(os.path.basename(f) for f in found) or "none"),
            hint="Each bundle travels as <name>.part-NNNN-of-NNNN.tar files and one <name>.parts.json")
    return found[0]


def receive_from_directory(directory, dest, public_keys, index=None, check_mode=False):
    index_path = find_index(directory, index)
    document = part_files.read_index(index_path, public_keys)
    missing, corrupt = part_files.check_parts(document, directory)
    if missing or corrupt:
        words = []
        if missing:
            words.append("missing: %s" % ", ".join(missing))
        if corrupt:
            words.append("damaged: %s" % ", ".join(corrupt))
        raise TransferError(
            "%d of %d parts cannot be used (%s)" % (len(missing) + len(corrupt), len(document["parts"]),
                                                    "; ".join(words)),
            hint="Ask the sender to send these parts again; the others are fine and are kept",
            parts=missing + corrupt)
    result = {"index": os.path.basename(index_path), "dest": dest, "signature": dest + ".sig",
              "parts": [p["name"] for p in document["parts"]], "part_count": len(document["parts"]),
              "bundle_sha256": document["bundle"]["sha256"], "size": document["bundle"]["size"]}
    if _already_there(dest, document):
        result["verification"] = verify_bundle(dest, public_keys)
        result["changed"] = False
        return result
    result["changed"] = True
    if check_mode:
        return result
    part_files.reassemble(document, directory, dest)
    try:
        result["verification"] = verify_bundle(dest, public_keys)
    except VerificationError:
        for path in (dest, dest + ".sig", cosignature_file.default_path(dest)):
            if os.path.exists(path):
                os.unlink(path)
        raise
    return result


def _already_there(dest, document):
    if not (os.path.isfile(dest) and os.path.isfile(dest + ".sig")):
        return False
    carried = part_files.cosignature_bytes(document)
    if carried is not None:
        try:
            with open(cosignature_file.default_path(dest), "rb") as handle:
                if handle.read(len(carried) + 1) != carried:
                    return False
        except OSError:
            return False
    if os.path.getsize(dest) != document["bundle"]["size"]:
        return False
    with open(dest + ".sig", "rb") as handle:
        if handle.read().decode("ascii", "replace").strip() != document["bundle"]["signature"]:
            return False
    return part_files.hash_file(dest) == document["bundle"]["sha256"]
