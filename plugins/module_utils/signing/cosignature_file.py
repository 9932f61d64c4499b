# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Co-signatures beside a bundle (``<bundle>.sigs.json``) and the M-of-N count of distinct signing keys.

The primary ``<bundle>.sig`` stays a plain cosign ``sign-blob`` signature. Every co-signature is the same kind
of signature (base64 of a DER ECDSA signature over the SHA-256, for P-384 keys the SHA-384, of the whole bundle
file), kept with the key id of its signer and the SHA-256 of the file it was made over, so each one can be
checked on its own with ``openssl`` or ``cosign verify-blob``.

A co-signer who rebuilt the bundle and got the same bytes (petra_bundle state=signed rebuild=true) adds a
``reproduced`` record to their entry: a small JSON statement (bundle SHA-256, key id, ``reproduced: true``, when)
and the same key's signature over it, so the claim is signed too, and checkable with ``openssl`` like the rest.
Documents holding such a record are format version 2; version 1 documents (no such record) are read as before.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
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
# Written only when an entry carries a reproduction record, so an older Petra refuses it by its version number
# ("reads format version 1") rather than by an unknown field, and every file it could read stays version 1.
REPRODUCED_FORMAT_VERSION = 2
MAX_DOCUMENT = 1 << 20
REPRODUCED_TYPE = "https://petra.dev/ReproducedBundle/v1"
_ENTRY_FIELDS = {"keyId", "bundleSha256", "signature", "signedAt"}
_FIELDS_OF_VERSION = {FORMAT_VERSION: _ENTRY_FIELDS, REPRODUCED_FORMAT_VERSION: _ENTRY_FIELDS | {"reproduced"}}
_STATEMENT_FIELDS = {"_type", "bundleSha256", "keyId", "reproduced", "rebuiltAt"}
_HEX = frozenset("0123456789abcdef")


def default_path(bundle_path):
    return bundle_path + SUFFIX


def _is_key_id(value):
    return isinstance(value, str) and value.startswith("sha256:") and len(value) == 71 and set(value[7:]) <= _HEX


def _is_sha256(value):
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


def _decode_der(text, what):
    try:
        der = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise SigningError("%s is not base64" % what)
    if not der or der[0] != 0x30:
        raise SigningError("%s is not a DER ECDSA signature" % what)
    return der


def _statement(record, where):
    """The decoded reproduction statement of a ``reproduced`` record, checked for form."""
    if not isinstance(record, dict) or set(record) != {"statement", "signature"}:
        raise SigningError("%s: reproduced is not an object of statement and signature" % where)
    _decode_der(record["signature"], "%s: the reproduction signature" % where)
    try:
        statement = json.loads(base64.b64decode(record["statement"], validate=True).decode("utf-8"))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise SigningError("%s: the reproduction statement is not base64 of a JSON document" % where)
    if not isinstance(statement, dict) or statement.get("_type") != REPRODUCED_TYPE or \
            set(statement) != _STATEMENT_FIELDS:
        raise SigningError("%s: the reproduction statement is not a %s statement" % (where, REPRODUCED_TYPE))
    return statement


def _check_entry(entry, number, source, fields=None):
    where = "%s signature %d" % (source, number)
    fields = fields or _ENTRY_FIELDS
    if not isinstance(entry, dict):
        raise SigningError("%s is not an object" % where)
    unknown = sorted(set(entry) - fields)
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
    if "reproduced" in entry:
        _statement(entry["reproduced"], where)
    return _decode_der(entry["signature"], "%s: signature" % where)


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
    fields = _FIELDS_OF_VERSION.get(document.get("formatVersion"))
    if fields is None:
        raise SigningError("%s has format version %r; this Petra reads format versions %s" % (
            source, document.get("formatVersion"), " and ".join(str(item) for item in sorted(_FIELDS_OF_VERSION))))
    entries = document.get("signatures")
    if not isinstance(entries, list):
        raise SigningError("%s has no list of signatures" % source)
    for number, entry in enumerate(entries, 1):
        _check_entry(entry, number, source, fields)
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
    version = REPRODUCED_FORMAT_VERSION if any("reproduced" in entry for entry in entries) else FORMAT_VERSION
    document = {"apiVersion": API_VERSION, "kind": KIND, "formatVersion": version, "signatures": ordered}
    return (json.dumps(document, indent=1, sort_keys=True) + "\n").encode("utf-8")


def make_entry(signer_key_id, bundle_sha256_hex, der, signed_at, reproduced=None):
    """A co-signature entry; ``reproduced`` is the record of make_reproduced when the signer rebuilt the bundle."""
    entry = {"keyId": signer_key_id, "bundleSha256": bundle_sha256_hex,
             "signature": base64.b64encode(der).decode("ascii"), "signedAt": signed_at}
    if reproduced is not None:
        entry["reproduced"] = reproduced
    return entry


def make_reproduced(signer, bundle_sha256_hex, rebuilt_at):
    """The signed statement that ``signer`` rebuilt the file with this SHA-256 and got the same bytes."""
    statement = json.dumps({"_type": REPRODUCED_TYPE, "bundleSha256": bundle_sha256_hex,
                            "keyId": key_id(signer.public_key()), "reproduced": True, "rebuiltAt": rebuilt_at},
                           sort_keys=True, separators=(",", ":")).encode("utf-8")
    der = signer.sign_digest(hashlib.new(signer.hash_name, statement).digest())
    if not verify_digest(signer.public_key(), hashlib.new(signer.hash_name, statement).digest(), der):
        raise SigningError("the signature %s returned does not verify with its own public key" % signer.description,
                           hint="The signing backend is misbehaving; nothing was written")
    return {"statement": base64.b64encode(statement).decode("ascii"),
            "signature": base64.b64encode(der).decode("ascii")}


def reproduced_valid(entry, public_key, digests):
    """True when the entry's reproduction record is signed by public_key and names this file and this key."""
    record = entry.get("reproduced")
    if record is None:
        return False
    statement_bytes = base64.b64decode(record["statement"])
    statement = json.loads(statement_bytes.decode("utf-8"))
    if statement["bundleSha256"] != digests["sha256"].hex() or statement["keyId"] != key_id(public_key) or \
            statement["reproduced"] is not True:
        return False
    digest = hashlib.new(hash_name_for(public_key), statement_bytes).digest()
    return verify_digest(public_key, digest, base64.b64decode(record["signature"]))


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
        self.reproduced = []  # the co-signers whose signed statement says they rebuilt this very file
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
            elif "reproduced" in entry and not reproduced_valid(entry, key, digests):
                # A claim of reproduction that its key did not sign for this file: the entry was tampered with.
                self.rejected.append({"keyId": identity, "reason": "its reproduction statement does not verify "
                                                                   "with that key for this file"})
            else:
                if identity not in self.signers:
                    self.signers.append(identity)
                if "reproduced" in entry and identity not in self.reproduced:
                    self.reproduced.append(identity)

    @property
    def unsigned(self):
        return [identity for identity in self.keys if identity not in self.signers]
