# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Co-signing an existing bundle (petra_bundle state=signed): the second person of the two-person rule.

The co-signer first verifies the bundle completely (primary signature by one of the given public keys, every
entry, expiry) in one read that also computes the digest to sign, so a co-signature always vouches for a bundle
that was checked, and names the SHA-256 of exactly the file it covers. The bundle and its primary ``.sig`` are
never rewritten; the co-signature is added to ``<bundle>.sigs.json`` (written atomically, under a lock).

With a rebuild (rebuild.py), the co-signer also rebuilds the bundle from its spec and sources and co-signs only when
the rebuild is byte-identical; the co-signature then carries a signed statement that it was reproduced. A rebuild
that differs raises before anything is written.
"""

from __future__ import annotations

import datetime
import os
import time

from ansible_collections.petra.core.plugins.module_utils.atomic import directory_lock, write_atomically
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import read_cosignatures, read_signature, verify
from ansible_collections.petra.core.plugins.module_utils.signing import cosignature_file
from ansible_collections.petra.core.plugins.module_utils.signing.keys import key_id, verify_digest


def _already_signed(signer, digests, primary_der, entries, reproduced=False):
    """(``primary``, ``cosignature`` or None, whether that signature records a valid reproduction): ``cosignature``
    when the signer's key already has a valid co-signature over this file (with ``reproduced``, one that also records
    a valid reproduction)."""
    public_key = signer.public_key()
    if verify_digest(public_key, digests[signer.hash_name], primary_der):
        return "primary", False
    identity = key_id(public_key)
    found = [cosignature_file.reproduced_valid(entry, public_key, digests) for entry in entries
             if entry["keyId"] == identity and cosignature_file.entry_valid(entry, public_key, digests)]
    if any(found) or (found and not reproduced):
        return "cosignature", any(found)
    return None, False


def cosign_bundle(path, signer, public_keys, signature_path=None, cosignature_path=None, check_mode=False,
                  mode=0o644, today=None, reproduce=None):
    """Add the signer's co-signature to a verified bundle; idempotent (a key that already signed adds nothing).

    ``reproduce(verification)``, when given, rebuilds the bundle and returns the reproduction record, or raises
    when the rebuild differs; it runs in check mode too (only the co-signature is not written there)."""
    started = time.monotonic()
    cosignature_path = cosignature_path or cosignature_file.default_path(path)
    if not os.path.isdir(os.path.dirname(os.path.abspath(cosignature_path))):
        raise BundleError("the directory of the co-signature file %s does not exist" % cosignature_path,
                          hint="Check 'cosignatures'; co-signatures are normally kept beside the bundle")
    verification = verify(path, public_keys, signature_path, today, cosignature_path=cosignature_path,
                          extra_hashes=[signer.hash_name])
    digests = verification.digests
    sha256_hex = digests["sha256"].hex()
    signer_id = key_id(signer.public_key())
    entries = read_cosignatures(cosignature_path)
    already, found_reproduced = _already_signed(signer, digests, read_signature(verification.result["signature"]),
                                                entries, reproduce is not None)
    result = {
        "path": path, "sha256": sha256_hex, "size": verification.result["size"], "key_id": signer_id,
        "primary_key_id": verification.result["key_id"], "signature": verification.result["signature"],
        "cosignatures": cosignature_path, "already_signed": already, "name": verification.metadata["name"],
        "version": verification.metadata["version"], "verified": True, "changed": already is None,
        "check_mode": check_mode, "removed_stale": 0 if already else sum(
            1 for item in entries if item["bundleSha256"] != sha256_hex),
    }
    reproduced = None
    if already is None and reproduce is not None:
        result["reproduction"] = reproduce(verification)
    if already is None and not check_mode:
        signed_at = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        if reproduce is not None:
            reproduced = cosignature_file.make_reproduced(signer, sha256_hex, signed_at)
        der = signer.sign_digest(digests[signer.hash_name])
        if not verify_digest(signer.public_key(), digests[signer.hash_name], der):
            raise BundleError("the signature %s returned does not verify with its own public key" % signer.description,
                              hint="The signing backend is misbehaving; nothing was written")
        entry = cosignature_file.make_entry(signer_id, sha256_hex, der, signed_at, reproduced)
        with directory_lock(cosignature_path):
            # Read again under the lock: another co-signer may have added a signature since the verification.
            current = read_cosignatures(cosignature_path)
            kept = [item for item in current if item["bundleSha256"] == sha256_hex and item["keyId"] != signer_id]
            result["removed_stale"] = sum(1 for item in current if item["bundleSha256"] != sha256_hex)
            entries = kept + [entry]
            data = cosignature_file.encode_document(entries)
            write_atomically(cosignature_path, lambda handle: handle.write(data), mode=mode)
        result["signed_at"] = signed_at
    # The key ids the co-signature file names for this file (as listed; verification checks them against keys).
    result["cosignature_keys"] = sorted({item["keyId"] for item in entries if item["bundleSha256"] == sha256_hex} |
                                        ({signer_id} if already is None else set()))
    # Whether this signer's co-signature (found: as its entry records; made now, or in check mode would be made:
    # reaching here with a rebuild asked means it matched) records a reproduction. The primary signer built the
    # bundle: nothing to reproduce.
    result["reproduced"] = found_reproduced if already else reproduce is not None
    result["duration"] = round(time.monotonic() - started, 3)
    return result
