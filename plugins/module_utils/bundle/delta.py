# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Layer-level delta bundles: what a base bundle provides, which layers a new bundle may leave out because of it,
and the signed ``delta`` record that names the base and every blob left out.

A base *provides* the blobs it carries and the blobs it omits itself: its own load proved those present in the
registry. So a chain (1.0 full, 1.1 on 1.0, 1.2 on 1.1) works, and every omitted blob names the bundle that really
carries it (its *carrier*), which is what a refused load tells the operator to bring.

Only layers of images, manifest sets and files are ever left out; manifests, indexes, configs, charts and what is
carried for custody (signatures, attestations, SBOMs, referrers, countersignatures) always travel, so a delta can be
verified, inspected and planned for loading on its own.
"""

from __future__ import annotations

import datetime
import json

from ansible_collections.petra.core.plugins.module_utils.bundle.delta_record import carried_blobs
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import verify


class DeltaBase:
    """The base of a delta: its identity and every blob it provides, with the bundle that carries each."""

    def __init__(self, name, version, sha256, provided, carriers):
        self.name = name
        self.version = version
        self.sha256 = sha256
        self.provided = provided  # digest -> (size, carrier sha256)
        self.carriers = carriers  # carrier sha256 -> {"name", "version", "sha256"}

    @property
    def identity(self):
        return {"name": self.name, "version": self.version, "sha256": self.sha256}

    @classmethod
    def from_bundle(cls, path, public_keys, signature_path=None):
        """A base read from its bundle file, fully verified with ``public_keys`` first. Its expiry is not enforced:
        the base says what the high side holds, not what it may still load."""
        verification = verify(path, public_keys, signature_path, today=datetime.date.min)
        return cls.from_metadata(verification.metadata, verification.result["sha256"], carried_blobs(
            verification.metadata))

    @classmethod
    def from_verification(cls, result):
        """A base from what petra_verify returned for it (its ``sha256``, ``metadata`` and ``carried_blobs``)."""
        if not isinstance(result, dict) or result.get("verified") is not True:
            raise BundleError("base_verification is not a successful petra_verify result",
                              hint="Register the petra_verify task of the base and pass it as is")
        try:
            metadata = result["metadata"]
            return cls.from_metadata(metadata, result["sha256"], result["carried_blobs"])
        except (KeyError, TypeError) as exc:
            raise BundleError("base_verification lacks %s: it must be the whole result petra_verify returned for the "
                              "base bundle" % exc, hint="Register the petra_verify task of the base and pass it as is")

    @classmethod
    def from_metadata(cls, metadata, sha256, carried):
        identity = {"name": metadata["name"], "version": metadata["version"], "sha256": sha256}
        provided = {item["digest"]: (item["size"], sha256) for item in carried}
        carriers = {sha256: identity}
        delta = metadata.get("delta")
        if delta:
            named = {item["sha256"]: item for item in delta["carriers"]}
            for item in delta["omitted"]:
                provided.setdefault(item["digest"], (item["size"], item["carrier"]))
                carriers.setdefault(item["carrier"], named[item["carrier"]])
        return cls(metadata["name"], metadata["version"], sha256, provided, carriers)


def _document(blob):
    if blob is None or blob.data is None:
        return None
    try:
        document = json.loads(blob.data)
    except ValueError:
        return None
    return document if isinstance(document, dict) and document.get("schemaVersion") == 2 else None


def _descriptors(document):
    return [item["digest"] for item in [document.get("config") or {}] + list(document.get("layers") or [])
            if isinstance(item, dict) and "digest" in item]


def omittable_layers(plan):
    """Digests the plan may leave out: layers of its images, manifest sets and files, unless anything else (a
    config, a chart, a carried signature or referrer) refers to the same blob."""
    eligible = [leaf["digest"] for image in plan.images for leaf in image.get("manifests") or [image]]
    eligible += [item["digest"] for item in plan.manifests] + [item["manifestDigest"] for item in plan.files]
    layers = set()
    for digest in eligible:
        document = _document(plan.blobs.get(digest)) or {}
        layers.update(item["digest"] for item in document.get("layers") or [])
    elsewhere = set()
    eligible = set(eligible)
    for digest, blob in plan.blobs.items():
        document = _document(blob)
        if document is None:
            continue
        references = _descriptors(document)
        # An eligible manifest's config always travels; everything any other manifest refers to does too.
        elsewhere.update(references[:1] if digest in eligible else references)
    return layers - elsewhere


def apply(plan, base):
    """Leave out of the plan every layer the base provides (same digest and size) and record it in the metadata."""
    omitted = []
    for digest in sorted(omittable_layers(plan)):
        provided = base.provided.get(digest)
        if provided is not None and provided[0] == plan.blobs[digest].size:
            omitted.append({"digest": digest, "size": provided[0], "carrier": provided[1]})
    plan.omitted = {item["digest"] for item in omitted}
    used = {item["carrier"] for item in omitted}
    # The base first, then the bundles further down the chain, in the order the base lists them.
    carriers = [base.identity] + [identity for sha256, identity in base.carriers.items()
                                  if sha256 != base.sha256 and sha256 in used]
    plan.metadata["delta"] = {"base": base.identity, "carriers": carriers, "omitted": omitted,
                              "omittedSize": sum(item["size"] for item in omitted)}
    plan.list_entries()
    return plan
