# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Co-signatures beside a bundle (``<bundle>.sigs.json``) and the M-of-N count of distinct signing keys.

The primary ``<bundle>.sig`` stays a plain cosign ``sign-blob`` signature. Every co-signature is the same kind
of signature (base64 of a DER ECDSA signature over the SHA-256, for P-384 keys the SHA-384, of the whole bundle
file), kept with the key id of its signer and the SHA-256 of the file it was made over, so each one can be
checked on its own with ``openssl`` or ``cosign verify-blob``.
"""

from __future__ import annotations

import base64
import binascii
import json

from ansible_collections.petra.core.plugins.module_utils.signing.keys import (
    SigningError,
    hash_name_for,
    key_id,
    verify_digest,
)

SUFFIX = ".sigs.json"
KIND = "BundleCoSignatures"
API_VERSION = "petra.dev/v1alpha1"
FORMAT_VERSION = 1
MAX_DOCUMENT = 1 << 20
_ENTRY_FIELDS = {"keyId", "bundleSha256", "signature", "signedAt"}
_HEX = frozenset("0123456789abcdef")


def default_path(bundle_path):
    return bundle_path + SUFFIX


def _is_key_id(value):
    return isinstance(value, str) and value.startswith("sha256:") and len(value) == 71 and set(value[7:]) <= _HEX


def _is_sha256(value):
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


def _check_entry(entry, number, source):
    where = "%s signature %d" % (source, number)
    if not isinstance(entry, dict):
        raise SigningError("%s is not an object" % where)
    unknown = sorted(set(entry) - _ENTRY_FIELDS)
    missing = sorted(_ENTRY_FIELDS - set(entry) - {"signedAt"})
    if unknown or missing:
        raise SigningError("%s has %s" % (where, "; ".join(
            (["unknown field(s) " + ", ".join(unknown)] if unknown else []) +
            (["no " + ", ".join(missing)] if missing else []))))
    if not _is_key_id(entry["keyId"]):
        raise SigningError("%s: keyId %r is not sha256:<64 hex digits>" % (where, entry["keyId"]))
    if not _is_sha256(entry["bundleSha256"]):
        raise SigningError("%s: bundleSha256 %r is not 64 lowercase hex digits" % (where, entry["bundleSha256"]))
    if not isinstance(entry.get("signedAt", ""), str):
        raise SigningError("%s: signedAt is not a string" % where)
    try:
        der = base64.b64decode(entry["signature"], validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise SigningError("%s: signature is not base64" % where)
    if not der or der[0] != 0x30:
        raise SigningError("%s: signature is not a DER ECDSA signature" % where)
    return der


def decode_document(data, source):
    """The entries of a co-signature document, each checked for form; raises SigningError naming the problem."""
    if len(data) > MAX_DOCUMENT:
        raise SigningError("%s is %d bytes, more than the %d a co-signature file may hold" % (
            source, len(data), MAX_DOCUMENT))
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SigningError("%s is not valid JSON (%s)" % (source, exc))
    if not isinstance(document, dict) or document.get("kind") != KIND or document.get("apiVersion") != API_VERSION:
        raise SigningError("%s is not a %s/%s document" % (source, API_VERSION, KIND))
    if document.get("formatVersion") != FORMAT_VERSION:
        raise SigningError("%s has format version %r; this Petra reads format version %d" % (
            source, document.get("formatVersion"), FORMAT_VERSION))
    entries = document.get("signatures")
    if not isinstance(entries, list):
        raise SigningError("%s has no list of signatures" % source)
    for number, entry in enumerate(entries, 1):
        _check_entry(entry, number, source)
    return entries


def read_document(path):
    """The entries of the co-signature file at path; an empty list when there is none."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_DOCUMENT + 1)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise SigningError("cannot read the co-signatures %s: %s" % (path, exc.strerror))
    return decode_document(data, path)


def encode_document(entries):
    """Canonical bytes of a co-signature file: entries sorted by key id, then by the bundle they sign."""
    ordered = sorted(entries, key=lambda entry: (entry["keyId"], entry["bundleSha256"]))
    document = {"apiVersion": API_VERSION, "kind": KIND, "formatVersion": FORMAT_VERSION, "signatures": ordered}
    return (json.dumps(document, indent=1, sort_keys=True) + "\n").encode("utf-8")


def make_entry(signer_key_id, bundle_sha256_hex, der, signed_at):
    return {"keyId": signer_key_id, "bundleSha256": bundle_sha256_hex,
            "signature": base64.b64encode(der).decode("ascii"), "signedAt": signed_at}


def entry_valid(entry, public_key, digests):
    """True when the entry is a valid signature by public_key over the file whose digests are given."""
    if entry["bundleSha256"] != digests["sha256"].hex():
        return False
    return verify_digest(public_key, digests[hash_name_for(public_key)], base64.b64decode(entry["signature"]))


def distinct_keys(public_keys):
    """{key id: key} in the order given; the same key given twice is one key."""
    result = {}
    for key in public_keys:
        result.setdefault(key_id(key), key)
    return result


class Tally:
    """Which of the given keys signed a file: the primary signature and the co-signatures, each key once."""

    def __init__(self, keys, digests, primary_der, entries):
        self.keys = distinct_keys(keys)
        self.primary = None
        for identity, key in self.keys.items():
            if verify_digest(key, digests[hash_name_for(key)], primary_der):
                self.primary = identity
                break
        self.signers = [self.primary] if self.primary else []
        self.rejected = []
        sha256_hex = digests["sha256"].hex()
        for entry in entries:
            identity = entry["keyId"]
            key = self.keys.get(identity)
            if key is None:
                self.rejected.append({"keyId": identity, "reason": "not among the public keys given"})
            elif entry["bundleSha256"] != sha256_hex:
                self.rejected.append({"keyId": identity, "reason": "made over another file (sha256 %s)" % (
                    entry["bundleSha256"])})
            elif not entry_valid(entry, key, digests):
                self.rejected.append({"keyId": identity, "reason": "does not verify with that key"})
            elif identity not in self.signers:
                self.signers.append(identity)

    @property
    def unsigned(self):
        return [identity for identity in self.keys if identity not in self.signers]
