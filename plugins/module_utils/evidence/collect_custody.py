# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Custody evidence: the trust state (its hash chain proven), the custody record of every loaded bundle, and the
high-side registry asked, for every image a record names, whether its tag still points at the loaded digest, the
manifest is served with that digest and every blob it names is there.

Index children the registry does not hold are listed, not counted as missing: a bundle may carry only some
platforms of an index.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os

from ansible_collections.petra.core.plugins.module_utils.errors import PetraError
from ansible_collections.petra.core.plugins.module_utils.evidence.errors import EvidenceError
from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes
from ansible_collections.petra.core.plugins.module_utils.oci.errors import DigestMismatch
from ansible_collections.petra.core.plugins.module_utils.oci.reference import ImageReference
from ansible_collections.petra.core.plugins.module_utils.oci.writer import RegistryWriter
from ansible_collections.petra.core.plugins.module_utils.trust.custody import CUSTODY_DIRECTORY, KIND
from ansible_collections.petra.core.plugins.module_utils.trust.state import TrustState

MAX_RECORD = 16 << 20


class CustodyCollector:
    def __init__(self, store, trust_state, pool=None):
        self.store, self.trust_state, self.pool = store, trust_state, pool
        self.records = []

    def collect(self):
        self.store.gather("custody/trust-state.json", "The trust state and whether its hash chain holds", self._state)
        self.store.gather("custody/records.json", "Custody records of the loaded bundles", self._records)
        self.store.gather("custody/registry.json", "The registry compared with every image of the custody records",
                          self._registry)
        return self

    def _state(self):
        if not self.trust_state:
            raise EvidenceError("no trust_state was given", hint="Give trust_state, the file the loads keep",
                                reason="no-trust-state")
        try:
            state = TrustState.load(self.trust_state, required=True)
        except PetraError as exc:
            return {"file": os.path.basename(self.trust_state), "chain": "broken", "error": str(exc),
                    "reason": getattr(exc, "reason", None)}
        return {"file": os.path.basename(self.trust_state), "chain": "valid", "head": state.head,
                "entries": state.entries}

    def _records(self):
        if not self.trust_state:
            raise EvidenceError("no trust_state was given, so no custody records were read", reason="no-trust-state")
        directory = os.path.join(os.path.dirname(os.path.abspath(self.trust_state)), CUSTODY_DIRECTORY)
        records = []
        for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
            with open(path, "rb") as handle:
                data = handle.read(MAX_RECORD + 1)
            entry = {"file": os.path.basename(path), "sha256": hashlib.sha256(data).hexdigest()}
            try:
                record = json.loads(data.decode("utf-8"))
                if record.get("kind") != KIND:
                    raise ValueError("kind %r" % record.get("kind"))
                entry["record"] = record
                self.records.append(record)
            except (UnicodeDecodeError, ValueError, AttributeError) as exc:
                entry["error"] = "not a custody record: %s" % exc
            records.append(entry)
        return {"directory": CUSTODY_DIRECTORY, "records": records}

    def _registry(self):
        if self.pool is None:
            raise EvidenceError("no registry connection was given, so the registry was not compared with custody",
                                reason="no-registry")
        images = []
        for record in self.records:
            for image in record.get("images") or []:
                if image.get("target"):
                    images.append(self._image(image["target"]))
        return {"images": sorted(images, key=lambda item: item["target"])}

    def _image(self, target):
        reference = ImageReference.parse(target)
        entry = {"target": target, "digest": reference.digest, "manifest": None, "tagDigest": None,
                 "missingBlobs": [], "children": [], "error": None}
        try:
            client = self.pool.for_host(reference.registry)
            writer = RegistryWriter(client)
            if reference.tag:
                entry["tagDigest"] = writer.manifest_digest(reference.repository, reference.tag)
            self._manifest(writer, reference.repository, reference.digest, entry, top=True)
        except PetraError as exc:
            entry["error"] = str(exc)
        return entry

    def _manifest(self, writer, repository, digest, entry, top=False):
        try:
            answer = writer.client.get_manifest(repository, digest, allow_missing=True)
        except DigestMismatch:
            if top:
                entry["manifest"] = "mismatch"
            else:
                entry["children"].append({"digest": digest, "manifest": "mismatch"})
            return
        if answer is None:
            if top:
                entry["manifest"] = "missing"
            else:
                entry["children"].append({"digest": digest, "manifest": "not-held"})
            return
        data, media_type, _digest = answer
        if top:
            entry["manifest"] = "present"
        else:
            entry["children"].append({"digest": digest, "manifest": "present"})
        document = json.loads(data)
        if media_type in mediatypes.INDEX_TYPES:
            for child in document.get("manifests") or []:
                self._manifest(writer, repository, child["digest"], entry)
            return
        for blob in [document.get("config")] + list(document.get("layers") or []):
            if blob and not writer.blob_exists(repository, blob["digest"]):
                entry["missingBlobs"].append(blob["digest"])
