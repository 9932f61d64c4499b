# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Bundle verification: the signatures over the whole file, every entry against the signed metadata, expiry.

The order of verdicts is fixed so that the operator hears the most fundamental problem first:
wrong key, then the structural problem that explains a broken signature, then the signature itself,
then too few distinct signers (the threshold), then expiry.
"""

from __future__ import annotations

import os
import time

from ansible_collections.petra.core.plugins.module_utils.bundle import delta_record
from ansible_collections.petra.core.plugins.module_utils.bundle import metadata as bundle_metadata
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError, VerificationError
from ansible_collections.petra.core.plugins.module_utils.bundle.reader import OBTAIN_AGAIN, BundleWalker
from ansible_collections.petra.core.plugins.module_utils.progress import or_null
from ansible_collections.petra.core.plugins.module_utils.signing import cosignature_file
from ansible_collections.petra.core.plugins.module_utils.signing import keys as signing_keys
from ansible_collections.petra.core.plugins.module_utils.signing import signatures


def default_signature_path(path):
    return path + ".sig"


def load_public_keys(items):
    if not items:
        raise BundleError("no public key was given", hint="Set public_key to the bundle signer's .pub file or PEM text")
    if isinstance(items, str):
        items = [items]
    return [signing_keys.load_public_key(item) for item in items]


def read_signature(signature_path):
    try:
        with open(signature_path, "rb") as handle:
            data = handle.read(signatures.MAX_SIGNATURE_FILE + 1)
    except OSError as exc:
        raise VerificationError("cannot read the signature %s: %s" % (signature_path, exc.strerror),
                                hint="The .sig file travels next to the bundle; give its path in 'signature'",
                                reason="signature-missing")
    try:
        return signatures.decode_signature(data, signature_path)
    except signing_keys.SigningError as exc:
        raise VerificationError(exc.message, hint=exc.hint, reason="signature-malformed")


def read_cosignatures(cosignature_path):
    try:
        return cosignature_file.read_document(cosignature_path)
    except signing_keys.SigningError as exc:
        raise VerificationError(exc.message, hint="Remove the damaged co-signature file or obtain it again with the "
                                "bundle; petra_bundle state=signed writes it", reason="cosignature-malformed")


def check_threshold(public_keys, threshold):
    """The distinct keys given; refuses a threshold that no set of them can meet."""
    keys = cosignature_file.distinct_keys(public_keys)
    if not 1 <= threshold <= len(keys):
        raise BundleError("threshold %d cannot be met with %d distinct public key(s)" % (threshold, len(keys)),
                          hint="Give at least as many different public keys as the threshold; the same key given "
                               "twice counts once")
    return keys


class Verification:
    """What a verification found: the result returned to the task, the signed metadata, and the file digests."""

    def __init__(self, result, metadata, digests):
        self.result = result
        self.metadata = metadata
        self.digests = digests


def verify_bundle(path, public_keys, signature_path=None, today=None, on_entry=None, **options):
    """Verify a bundle; returns a result dict, raises VerificationError naming the first problem.

    ``public_keys`` are cryptography public keys; ``on_entry`` lets a caller stream entries as they are
    checked (it must not act on them until this function returns without error). ``options`` are those of
    ``verify``: ``threshold``, ``cosignature_path``.
    """
    return verify(path, public_keys, signature_path, today, on_entry, **options).result


def verify_bundle_with_metadata(path, public_keys, signature_path=None, today=None, on_entry=None, **options):
    """Like verify_bundle, and also the complete signed metadata (with its entry list)."""
    verification = verify(path, public_keys, signature_path, today, on_entry, **options)
    return verification.result, verification.metadata


def verify(path, public_keys, signature_path=None, today=None, on_entry=None, threshold=1, cosignature_path=None,
           extra_hashes=(), progress=None, hash_entries=True):
    """The whole verification, in one read of the file: a Verification, or VerificationError naming the first problem.

    ``threshold`` distinct keys among ``public_keys`` must have signed the file, counting the primary signature
    and the co-signatures in ``cosignature_path`` (default: the bundle path plus ``.sigs.json``); the primary
    signature must be by one of them. Co-signatures are read only when they can matter, i.e. with a threshold
    above 1 or a ``cosignature_path`` given: otherwise a stray or damaged ``.sigs.json`` beside the bundle (which
    anyone able to drop a file there could place) cannot block a verification that the primary signature decides.
    ``extra_hashes`` are further digests of the file to compute on the way (a co-signer's hash). ``progress``
    (progress.Progress) gets a ``verify`` stage: the file's bytes read, and its entries checked.
    With ``hash_entries=False`` the entries' structure is checked but their digests are not: only for a caller that
    checks every entry's digest in a later pass before it relies on it (the loader, load/stream.py).
    """
    started = time.monotonic()
    signature_path = signature_path or default_signature_path(path)
    consulted = threshold > 1 or cosignature_path is not None
    cosignature_path = cosignature_path or cosignature_file.default_path(path)
    keys = check_threshold(public_keys, threshold)
    if not os.path.isfile(path):
        raise VerificationError("the bundle %s does not exist or is not a file" % path,
                                hint="Check 'path'; it is read on the Ansible controller", reason="missing")
    der = read_signature(signature_path)
    entries = read_cosignatures(cosignature_path) if consulted else []
    hash_names = sorted(set(signatures.needed_hashes(public_keys)) | {"sha256"} | set(extra_hashes))
    progress = or_null(progress)
    progress.stage("verify", os.path.getsize(path), unit="entries")
    result = BundleWalker(path, hash_names, hash_entries=hash_entries, progress=progress).walk(on_entry=on_entry)
    given_ids = list(keys)
    signer_id = None
    if result.metadata is not None:
        signer_id = (result.metadata.get("signer") or {}).get("keyId")
    tally = cosignature_file.Tally(public_keys, result.digests, der, entries) if result.digests else None
    valid_key = tally.primary if tally is not None else None

    if valid_key is None:
        if signer_id and signer_id not in given_ids:
            raise VerificationError(
                "the bundle names signer key %s, which is not among the %d public key(s) given (%s): wrong key" % (
                    signer_id, len(given_ids), ", ".join(given_ids)),
                hint="Give the public key of the key that signed the bundle, or refuse the bundle if that key is "
                     "not trusted", reason="wrong-key")
        if result.problem is not None:
            raise VerificationError("the signature does not verify, and %s" % result.problem.message,
                                    hint=result.problem.hint, reason=result.problem.reason, **result.problem.details)
        raise VerificationError(
            "the signature %s does not match the bundle %s: the signature file was swapped or altered, "
            "or the archive was changed after signing" % (signature_path, path),
            hint=OBTAIN_AGAIN, reason="bad-signature")
    if result.problem is not None:
        # Signed, yet malformed: the signer produced it this way. Refuse all the same.
        raise result.problem
    inconsistent = delta_record.problem(result.metadata)
    if inconsistent is not None:
        raise inconsistent
    if len(tally.signers) < threshold:
        raise VerificationError(
            "the bundle is signed by %d of the %d distinct public keys given (%s), and %d are required; "
            "no valid signature by %s" % (len(tally.signers), len(given_ids), ", ".join(tally.signers),
                                          threshold, ", ".join(tally.unsigned)),
            hint="Have further key holders co-sign the bundle (petra_bundle state=signed adds their signature to "
                 "%s), or refuse it" % cosignature_path,
            reason="threshold", signers=tally.signers, unsigned_keys=tally.unsigned,
            rejected_signatures=tally.rejected)
    expired = bundle_metadata.expiry_problem(result.metadata, today)
    if expired:
        raise VerificationError(expired, hint="Ask the sender for a current bundle; an expired one is never loaded",
                                reason="expired")
    return Verification({
        "verified": True,
        "key_id": valid_key,
        "signers": tally.signers,
        "signer_details": [{"key_id": identity, "primary": identity == tally.primary,
                            "reproduced": identity in tally.reproduced} for identity in tally.signers],
        "unsigned_keys": tally.unsigned,
        "rejected_signatures": tally.rejected,
        "threshold": threshold,
        "path": path,
        "signature": signature_path,
        "cosignatures": cosignature_path if consulted and os.path.isfile(cosignature_path) else None,
        "cosignatures_consulted": consulted,
        "sha256": result.digests["sha256"].hex(),
        "size": result.compressed_size,
        "entries_checked": result.entries_checked,
        "bytes_checked": result.bytes_checked,
        "duration": round(time.monotonic() - started, 3),
        "metadata": bundle_metadata.summary(result.metadata),
        "delta": delta_record.summary(result.metadata),
        # Where the Sigstore trusted roots of keyless sources are in the bundle (docs/platform.md, keyless admission).
        "trusted_roots": list(result.metadata.get("trustedRoots") or []),
    }, result.metadata, result.digests)
