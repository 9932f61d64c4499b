# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The trust state: an append-only, hash-chained log of the bundles accepted on the high side.

Every entry records one acceptance (name, version, bundle SHA-256, signers, time, registry) and the hash of the
entry before it; its own hash covers all of that. The head (entry count and last hash) closes the log. An entry
changed, removed, inserted or moved breaks the chain, and the break is named. The current version of a bundle
name is the version of its latest entry: a bundle below it is a rollback, refused unless a downgrade is asked for
explicitly, and then recorded as one.
"""

from __future__ import annotations

import datetime
import hashlib
import json

from ansible_collections.petra.core.plugins.module_utils.schema import HAS_JSONSCHEMA, jsonschema

from ansible_collections.petra.core.plugins.module_utils.atomic import write_atomically
from ansible_collections.petra.core.plugins.module_utils.trust.errors import TrustError
from ansible_collections.petra.core.plugins.module_utils.trust.versions import compare_versions

API_VERSION = "petra.dev/v1alpha1"
KIND = "TrustState"
FORMAT_VERSION = 1
GENESIS = "sha256:" + "0" * 64
MAX_STATE_SIZE = 64 << 20
KEEP_HISTORY = ("Restore the trust state from a backup you trust, or find out who changed it; never edit it by hand")
INITIALISE = ("Restore it from a backup you trust, or find out who removed it; before the very first load, create it as "
              "an empty log (see 'Initialising the trust state' in docs/bundle-spec.md)")

_HASH = {"type": "string", "pattern": "^sha256:[a-f0-9]{64}$"}
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Petra trust state",
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "formatVersion", "head", "entries"],
    "properties": {
        "apiVersion": {"const": API_VERSION},
        "kind": {"const": KIND},
        "formatVersion": {"const": FORMAT_VERSION},
        "head": {"type": "object", "additionalProperties": False, "required": ["entries", "hash"],
                 "properties": {"entries": {"type": "integer", "minimum": 0}, "hash": _HASH}},
        "entries": {"type": "array", "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "version", "sha256", "signers", "acceptedAt", "registry", "downgrade", "replaces",
                         "previous", "hash"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "version": {"type": "string", "minLength": 1},
                "sha256": {"type": "string", "pattern": "^[a-f0-9]{64}$"},
                "signers": {"type": "array", "items": _HASH},
                "acceptedAt": {"type": "string"},
                "registry": {"type": ["string", "null"]},
                "downgrade": {"type": "boolean"},
                "replaces": {"type": ["string", "null"]},
                # Deltas only (entries of full bundles have no such field, so logs written before it stay valid).
                "base": {"type": "object", "additionalProperties": False, "required": ["name", "version", "sha256"],
                         "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                                        "sha256": {"type": "string", "pattern": "^[a-f0-9]{64}$"}}},
                "previous": _HASH,
                "hash": _HASH,
            },
        }},
    },
}


def canonical(document):
    """The bytes an entry's hash is computed over: sorted keys, no white space, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def entry_hash(entry):
    return "sha256:" + hashlib.sha256(canonical({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _label(number, entry):
    return "entry %d (%s %s)" % (number, entry.get("name"), entry.get("version"))


def check_chain(entries, head, path):
    """Raises TrustError naming the first break in the chain of entries and head."""
    previous = GENESIS
    for number, entry in enumerate(entries, 1):
        recomputed = entry_hash(entry)
        if recomputed != entry["hash"]:
            raise TrustError("the trust state %s was edited: %s was changed after it was recorded (its content hashes "
                             "to %s, the entry says %s)" % (path, _label(number, entry), recomputed, entry["hash"]),
                             hint=KEEP_HISTORY, reason="trust-state-tampered", entry=number)
        if entry["previous"] != previous:
            where = "does not start the log" if number == 1 else "does not follow entry %d" % (number - 1)
            raise TrustError("the trust state %s was edited: %s %s: entries were removed, inserted or reordered" % (
                path, _label(number, entry), where), hint=KEEP_HISTORY, reason="trust-state-tampered", entry=number)
        previous = entry["hash"]
    if head["entries"] != len(entries) or head["hash"] != previous:
        raise TrustError("the trust state %s was edited: its head names %d entries ending in %s, but the log holds %d "
                         "ending in %s: entries were removed from the end or the head was changed" % (
                             path, head["entries"], head["hash"], len(entries), previous),
                         hint=KEEP_HISTORY, reason="trust-state-tampered")


class Decision:
    """What accepting a bundle means for the trust state."""

    def __init__(self, action, current, record):
        self.action = action  # new, upgrade, reload, same-version, downgrade
        self.current = current  # the latest entry of that name, or None
        self.record = record  # whether an entry is appended

    def summary(self):
        current = self.current
        return {"action": self.action, "recorded": self.record,
                "current": None if current is None else {
                    "version": current["version"], "sha256": current["sha256"], "acceptedAt": current["acceptedAt"]}}


class TrustState:
    """The log as read (and proven) from its file; an absent file is an empty log, unless it is required."""

    def __init__(self, path, entries=None, exists=False):
        self.path = path
        self.entries = list(entries or [])
        self.exists = exists

    @classmethod
    def load(cls, path, anchor=None, required=False):
        """Read and prove the log; ``anchor`` is an entry hash recorded earlier, which the log must still hold;
        ``required`` refuses a missing file instead of reading it as an empty log."""
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_STATE_SIZE + 1)
        except FileNotFoundError:
            if required:
                raise TrustError("the trust state %s does not exist, and trust_state_required is set: a deleted trust "
                                 "state would otherwise read as an empty log and admit any version" % path,
                                 hint=INITIALISE, reason="trust-state-missing")
            state = cls(path)
        except OSError as exc:
            raise TrustError("cannot read the trust state %s: %s" % (path, exc.strerror),
                             hint="Check the path and its permissions on the controller", reason="trust-state")
        else:
            state = cls(path, cls._decode(data, path), exists=True)
        state.check_anchor(anchor)
        return state

    @staticmethod
    def _decode(data, path):
        if len(data) > MAX_STATE_SIZE:
            raise TrustError("the trust state %s is larger than %d bytes" % (path, MAX_STATE_SIZE),
                             reason="trust-state-malformed")
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise TrustError("the trust state %s is not valid JSON (%s)" % (path, exc), hint=KEEP_HISTORY,
                             reason="trust-state-malformed")
        if not HAS_JSONSCHEMA:
            raise TrustError("the Python library 'jsonschema' is required to read the trust state",
                             hint="Install the collection's requirements.txt on the controller")
        validator = jsonschema.Draft202012Validator(SCHEMA)
        error = next(iter(sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])),
                     None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
            raise TrustError("the trust state %s is malformed at %s: %s" % (path, where, error.message),
                             hint=KEEP_HISTORY, reason="trust-state-malformed")
        check_chain(document["entries"], document["head"], path)
        return document["entries"]

    def check_anchor(self, anchor):
        if anchor and not any(entry["hash"] == anchor for entry in self.entries):
            raise TrustError(
                "the trust state %s does not hold the entry %s that trust_state_anchor names: its history was rewritten, "
                "truncated or replaced" % (self.path, anchor) if self.exists else
                "the trust state %s does not exist, but trust_state_anchor names entry %s of it" % (self.path, anchor),
                hint=KEEP_HISTORY, reason="trust-state-anchor")

    @property
    def head(self):
        return {"entries": len(self.entries), "hash": self.entries[-1]["hash"] if self.entries else GENESIS}

    def current(self, name):
        for entry in reversed(self.entries):
            if entry["name"] == name:
                return entry
        return None

    def decide(self, name, version, sha256_hex, allow_downgrade=False):
        """The Decision for a verified bundle; raises TrustError (reason ``rollback``) for an unasked downgrade, and
        (reason ``same-version``) for another file under the current version (a replay of another build of it)."""
        current = self.current(name)
        if current is None:
            return Decision("new", None, True)
        order = compare_versions(version, current["version"])
        if order > 0:
            return Decision("upgrade", current, True)
        if order == 0:
            if current["sha256"] == sha256_hex:
                return Decision("reload", current, False)
            if not allow_downgrade:
                raise TrustError(
                    "bundle %s %s (sha256 %s) is not the file accepted as %s %s on %s (sha256 %s) according to the "
                    "trust state %s: refusing another build of an accepted version, which could be an older signed "
                    "build replayed" % (name, version, sha256_hex, name, current["version"], current["acceptedAt"],
                                        current["sha256"], self.path),
                    hint="Load the accepted file again, or a bundle with a higher version; if replacing the accepted "
                         "build is intended, run again with allow_downgrade: true (the replacement is recorded as a "
                         "downgrade)", reason="same-version", current_version=current["version"],
                    current_sha256=current["sha256"])
            return Decision("same-version", current, True)
        if not allow_downgrade:
            raise TrustError(
                "bundle %s %s is older than %s (sha256 %s), accepted on %s according to the trust state %s: "
                "refusing a rollback" % (name, version, current["version"], current["sha256"], current["acceptedAt"],
                                         self.path),
                hint="Load %s %s or later; if going back is intended, run again with allow_downgrade: true (the "
                     "downgrade is recorded)" % (name, current["version"]),
                reason="rollback", current_version=current["version"])
        return Decision("downgrade", current, True)

    def require_base(self, name, version, base):
        """A delta (``base``: the name, version and SHA-256 of the bundle it rests on) is admitted only when this log
        accepted its base: raises TrustError (reason ``delta-base-not-accepted``) otherwise."""
        if any(entry["sha256"] == base["sha256"] for entry in self.entries):
            return
        raise TrustError(
            "bundle %s %s is a delta on %s %s (sha256 %s), which the trust state %s never accepted: the layers the "
            "delta leaves out were never loaded through it" % (
                name, version, base["name"], base["version"], base["sha256"], self.path),
            hint="Load %s %s (and its own base if it is a delta) first, or ask for the full bundle of %s %s" % (
                base["name"], base["version"], name, version), reason="delta-base-not-accepted", base=base)

    def append(self, name, version, sha256_hex, signers, registry=None, decision=None, accepted_at=None, base=None):
        """Add an acceptance to the log (in memory; ``save`` writes it) and return the new entry; ``base`` names the
        base of a delta."""
        downgrade = decision is not None and decision.action in ("downgrade", "same-version")
        entry = {"name": name, "version": version, "sha256": sha256_hex, "signers": sorted(signers),
                 "acceptedAt": accepted_at or utc_now(), "registry": registry, "downgrade": downgrade,
                 "replaces": decision.current["version"] if decision is not None and decision.current else None,
                 "previous": self.head["hash"]}
        if base is not None:
            entry["base"] = dict(base)
        entry["hash"] = entry_hash(entry)
        self.entries.append(entry)
        return entry

    def encode(self):
        document = {"apiVersion": API_VERSION, "kind": KIND, "formatVersion": FORMAT_VERSION, "head": self.head,
                    "entries": self.entries}
        return (json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")

    def save(self):
        data = self.encode()
        write_atomically(self.path, lambda handle: handle.write(data))
        self.exists = True

    def summary(self):
        bundles = {}
        for entry in self.entries:
            bundles[entry["name"]] = {"version": entry["version"], "sha256": entry["sha256"],
                                      "acceptedAt": entry["acceptedAt"]}
        return {"path": self.path, "exists": self.exists, "chain": "valid", "head": self.head, "bundles": bundles}
