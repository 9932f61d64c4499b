# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The trust witness: a second copy of the trust state's head, kept in the target registry beside the content.

The trust state file proves its own consistency, not its freshness: an older copy put back, a log cut short with a
matching head, or a deleted file (read as an empty log) are all valid chains. The witness is a small OCI artifact at
``<registry>[/<prefix>]/petra/trust-witness:head`` holding the head (entry count and hash) and the entry it closes.
It is bound to the chain: the trust state must hold, as its entry number ``entries``, an entry with exactly that
hash, which covers every entry before it. So whoever can write only the file cannot go back behind the witness, and
whoever can write only the registry can make loads refuse, never admit a rollback.

A load reads the witness before the bundle, refuses a trust state that is behind it or does not hold its head,
proves it may write it before pushing anything, and moves it to the new head only after the load succeeded and the
trust state was saved. Check mode and petra_verify only read it.
"""

from __future__ import annotations

import json
import re

from ansible_collections.petra.core.plugins.module_utils.oci.blobs import (
    EMPTY_JSON,
    Blob,
    artifact_manifest,
    canonical_json,
)
from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes
from ansible_collections.petra.core.plugins.module_utils.oci.errors import RegistryError
from ansible_collections.petra.core.plugins.module_utils.trust.errors import TrustError
from ansible_collections.petra.core.plugins.module_utils.trust.state import API_VERSION

KIND = "TrustWitness"
ARTIFACT_TYPE = "application/vnd.petra.trust-witness.v1+json"
REPOSITORY = ("petra", "trust-witness")
TAG = "head"
MAX_WITNESS_BYTES = 64 << 10
_HASH = re.compile(r"^sha256:[a-f0-9]{64}$")
RESTORE = ("Restore the newest trust state (a backup taken after that acceptance) and run again. If it is lost for "
           "good, follow 'Break glass' in docs/bundle-spec.md: review the trust state, then run once with "
           "trust_witness_reset: %s")


def witness_document(state, registry):
    """What the witness holds for a trust state: its head and the entry that closes it (deterministic, so that an
    unchanged head writes the same artifact)."""
    last = state.entries[-1]
    return {"apiVersion": API_VERSION, "kind": KIND, "registry": registry, "head": state.head,
            "entry": {key: last[key] for key in ("name", "version", "sha256", "acceptedAt")}}


def _label(witnessed):
    entry = witnessed["entry"]
    return "entry %d (%s %s, sha256 %s, accepted %s) with hash %s" % (
        witnessed["head"]["entries"], entry["name"], entry["version"], entry["sha256"], entry["acceptedAt"],
        witnessed["head"]["hash"])


def compare(state, witnessed, reference, reset=None):
    """How the trust state stands to the witness: ``none`` (no witness yet), ``equal``, ``ahead`` (the state extends
    it) or ``reset`` (break glass); raises TrustError when the state is behind it or does not hold its head."""
    if reset:
        held = witnessed["head"]["hash"] if witnessed else None
        if reset != held:
            raise TrustError("trust_witness_reset names %s, but the witness %s holds %s" % (
                reset, reference, held or "nothing (it does not exist)"),
                hint="Break glass only against the head the refusal named; once a load has moved the witness, remove "
                     "trust_witness_reset", reason="trust-witness-reset")
        return "reset"
    if witnessed is None:
        return "none"
    count, head = witnessed["head"]["entries"], witnessed["head"]["hash"]
    held = len(state.entries)
    if held < count:
        what = ("does not exist (a missing file reads as an empty log)" if not state.exists else
                "holds %d entr%s" % (held, "y" if held == 1 else "ies"))
        raise TrustError(
            "the trust state %s is behind its witness: it %s, but the witness %s records %s: the file was replaced by "
            "an older copy, cut short or deleted, which would re-admit versions already superseded" % (
                state.path, what, reference, _label(witnessed)),
            hint=RESTORE % head, reason="trust-state-behind", witness=witnessed["head"])
    if state.entries[count - 1]["hash"] != head:
        raise TrustError(
            "the trust state %s does not hold the head its witness %s records, %s (its entry %d has hash %s): its "
            "history was rewritten, or another trust state loads into this registry" % (
                state.path, reference, _label(witnessed), count, state.entries[count - 1]["hash"]),
            hint=RESTORE % head + "; every load into one registry prefix must use the same trust state",
            reason="trust-state-forked", witness=witnessed["head"])
    return "equal" if held == count else "ahead"


def _parse(data, reference):
    try:
        document = json.loads(data.decode("utf-8"))
        head, entry = document["head"], document["entry"]
        valid = (document.get("kind") == KIND and isinstance(head.get("entries"), int) and head["entries"] >= 1
                 and isinstance(head.get("hash"), str) and _HASH.match(head["hash"])
                 and all(isinstance(entry.get(key), str) for key in ("name", "version", "sha256", "acceptedAt")))
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        valid = False
    if not valid:
        raise TrustError("the trust witness %s is not a Petra trust witness" % reference,
                         hint="Find out who wrote it; if the trust state is known good, see 'Break glass' in "
                              "docs/bundle-spec.md", reason="trust-witness")
    return document


class TrustWitness:
    """The witness of one target registry (host and prefix), read and written through a RegistryWriter."""

    def __init__(self, writer, target):
        self.writer = writer
        self.registry = str(target)
        self.repository = target.repository(*REPOSITORY)
        self.reference = "%s/%s:%s" % (target.host, self.repository, TAG)

    def _failed(self, doing, exc, hint):
        return TrustError("cannot %s the trust witness %s: %s" % (doing, self.reference, exc.message), hint=hint,
                          reason="trust-witness")

    def read(self):
        """The witness document, or None when there is none yet."""
        client = self.writer.client
        try:
            found = client.get_manifest(self.repository, TAG, allow_missing=True)
            if found is None:
                return None
            manifest = json.loads(found[0])
            layers = [layer for layer in manifest.get("layers") or [] if layer.get("mediaType") == ARTIFACT_TYPE]
            if len(layers) != 1:
                return _parse(b"", self.reference)
            data = client.read_blob(self.repository, layers[0]["digest"], layers[0]["size"], MAX_WITNESS_BYTES)
        except RegistryError as exc:
            raise self._failed("read", exc, "The witness is checked before every load with a trust state: give "
                                            "credentials that can pull from %s" % self.repository)
        return _parse(data, self.reference)

    def _blobs(self, state):
        config = Blob.from_bytes(EMPTY_JSON, mediatypes.OCI_EMPTY)
        if state is None:
            return config, None
        return config, Blob.from_bytes(canonical_json(witness_document(state, self.registry)), ARTIFACT_TYPE)

    def _unwritable(self, exc):
        return self._failed("write", exc, "A load with a trust state keeps a witness of it in the target registry: "
                                          "give the loading account push rights on %s (create that repository "
                                          "first where the registry needs it), then run again" % self.repository)

    def preflight(self):
        """Prove, before anything is pushed, that the witness can be written (uploads its small config blob)."""
        config, _layer = self._blobs(None)
        try:
            if not self.writer.blob_exists(self.repository, config.digest):
                self.writer.upload(self.repository, config.digest, config.size, config.chunks())
        except RegistryError as exc:
            raise self._unwritable(exc)

    def write(self, state):
        """Point the witness at the trust state's head; returns the manifest digest. Blobs first, the tag last."""
        config, layer = self._blobs(state)
        manifest = artifact_manifest(config, [(layer, None)], artifact_type=ARTIFACT_TYPE)
        try:
            for blob in (config, layer):
                if not self.writer.blob_exists(self.repository, blob.digest):
                    self.writer.upload(self.repository, blob.digest, blob.size, blob.chunks())
            return self.writer.put_manifest(self.repository, TAG, manifest, mediatypes.OCI_MANIFEST)
        except RegistryError as exc:
            raise self._unwritable(exc)
