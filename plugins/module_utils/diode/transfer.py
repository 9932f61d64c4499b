# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Sending a bundle as parts and receiving it back: the directory transport (removable media, guard outboxes)."""

from __future__ import annotations

import os

from ansible_collections.petra.core.plugins.module_utils.bundle.errors import VerificationError
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import verify_bundle
from ansible_collections.petra.core.plugins.module_utils.diode import parity
from ansible_collections.petra.core.plugins.module_utils.diode import parts as part_files
from ansible_collections.petra.core.plugins.module_utils.diode.errors import TransferError
from ansible_collections.petra.core.plugins.module_utils.signing import cosignature_file


def send_to_directory(bundle, directory, signer, max_part_size, signature_path=None, allowed_extensions=None,
                      check_mode=False, parity_parts=0, progress=None):
    if not os.path.isdir(directory):
        raise TransferError("the directory %s does not exist" % directory,
                            hint="Mount the removable medium or create the outbox directory first")
    result = part_files.split_bundle(bundle, directory, signer, max_part_size, signature_path, allowed_extensions,
                                     check_mode, parity_parts, progress)
    result["directory"] = directory
    return result


def find_index(directory, public_keys, index=None):
    """(path, verified index, the indexes passed over as [{name, reason}]).

    Anyone who can write to the inbox can add a signed-looking index: with several, the one that verifies with
    the given keys is used when it is the only one; the others are named, never read further.
    """
    if index:
        path = os.path.join(directory, index)
        return path, part_files.read_index(path, public_keys), []
    found = sorted(name for name in os.listdir(directory)
                   if part_files.is_index_name(name) and os.path.isfile(os.path.join(directory, name)))
    if not found:
        raise TransferError("%s holds no part index (<name>.parts.json)" % directory,
                            hint="The index travels with the parts; it must arrive too")
    if len(found) == 1:
        path = os.path.join(directory, found[0])
        return path, part_files.read_index(path, public_keys), []
    verified, refused = [], []
    for name in found:
        try:
            verified.append((name, part_files.read_index(os.path.join(directory, name), public_keys)))
        except TransferError as exc:
            refused.append({"name": name, "reason": exc.message})
    if len(verified) == 1:
        return os.path.join(directory, verified[0][0]), verified[0][1], refused
    if verified:
        why = "%d of them verify with the given keys (%s)" % (len(verified), ", ".join(n for n, _i in verified))
    else:
        why = "none verifies with the given keys (%s)" % "; ".join("%s: %s" % (r["name"], r["reason"]) for r in refused)
    raise TransferError("%s holds %d part indexes (%s) and %s; say which one to use in 'index'" % (
        directory, len(found), ", ".join(found), why),
        hint="Each bundle travels as <name>.part-NNNN-of-NNNN.<ext> files and one <name>.parts.<ext> index, "
             "signed with the bundle key", parts=[r["name"] for r in refused])


def receive_from_directory(directory, dest, public_keys, index=None, check_mode=False, progress=None):
    """Prove the parts, reassemble and verify; ``progress`` (progress.Progress) gets a stage for each step."""
    index_path, document, passed_over = find_index(directory, public_keys, index)
    missing, corrupt = part_files.check_parts(document, directory, progress)
    resend = parity.resend_needed(document, missing + corrupt)
    if resend:
        raise _unusable(document, missing, corrupt, resend)
    rebuilt = parity.rebuild(document, directory, missing + corrupt, check_mode) if missing or corrupt else []
    block = document.get("parity")
    result = {"index": os.path.basename(index_path), "dest": dest, "signature": dest + ".sig",
              "parts": [p["name"] for p in document["parts"]], "part_count": len(document["parts"]),
              "parity_parts": [p["name"] for p in block["parts"]] if block else [],
              "parity_count": block["m"] if block else 0, "rebuilt": rebuilt,
              "bundle_sha256": document["bundle"]["sha256"], "size": document["bundle"]["size"]}
    if passed_over:
        result["indexes_ignored"] = passed_over
        ignored = "; ".join("%s (%s)" % (r["name"], r["reason"]) for r in passed_over)
        result["warnings"] = ["used %s, the only part index in %s that verifies; ignored %s" % (
            os.path.basename(index_path), directory, ignored)]
    if _already_there(dest, document):
        result["verification"] = verify_bundle(dest, public_keys, progress=progress)
        result["changed"] = bool(rebuilt)
        return result
    result["changed"] = True
    if check_mode:
        return result
    part_files.reassemble(document, directory, dest, progress=progress)
    try:
        result["verification"] = verify_bundle(dest, public_keys, progress=progress)
    except VerificationError:
        for path in (dest, dest + ".sig", cosignature_file.default_path(dest)):
            if os.path.exists(path):
                os.unlink(path)
        raise
    return result


def _unusable(document, missing, corrupt, resend):
    """The refusal when too few parts are intact: names the fewest parts that must come again."""
    words = []
    if missing:
        words.append("missing: %s" % ", ".join(missing))
    if corrupt:
        words.append("damaged: %s" % ", ".join(corrupt))
    shares = parity.shares(document)
    unusable = len(missing) + len(corrupt)
    message = "%d of %d parts cannot be used (%s)" % (unusable, len(shares), "; ".join(words))
    if len(resend) == unusable:
        return TransferError(message, hint="Ask the sender to send these parts again; the others are fine and are "
                                           "kept", parts=resend)
    return TransferError(
        "%s, and the %d parity parts rebuild at most %d: send again %s" % (
            message, document["parity"]["m"], document["parity"]["m"], ", ".join(resend)),
        hint="Any %d of the %d unusable parts will do; with them, every other part is rebuilt here and the intact "
             "ones are kept" % (len(resend), unusable), parts=resend)


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
