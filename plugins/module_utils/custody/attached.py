# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""What comes with an image in its registry: cosign ``.sig``/``.att``/``.sbom`` tags and OCI 1.1 referrers.

Referrers are listed through the referrers API where the registry has one, else through the referrers
tag schema (an index tagged ``sha256-<hex>``), which cosign and other clients maintain on registries
without the API (CNCF distribution 2.x among them).
"""

from __future__ import annotations

import json

from ansible_collections.petra.core.plugins.module_utils.custody import image_signatures as cosign
from ansible_collections.petra.core.plugins.module_utils.custody.errors import CustodyError
from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes
from ansible_collections.petra.core.plugins.module_utils.oci.errors import OCIError


class Attached:
    """One manifest attached to an image: its bytes, its blobs' descriptors, and how it was found."""

    def __init__(self, kind, data, media_type, digest, tag=None, artifact_type=None):
        self.kind = kind
        self.data = data
        self.media_type = media_type
        self.digest = digest
        self.tag = tag
        self.artifact_type = artifact_type
        self.document = json.loads(data)

    @property
    def layers(self):
        return list(self.document.get("layers") or [])

    def record(self):
        """The metadata entry for ``images[].attached``."""
        entry = {"kind": self.kind, "digest": self.digest, "mediaType": self.media_type, "size": len(self.data)}
        if self.tag:
            entry["tag"] = self.tag
        if self.artifact_type:
            entry["artifactType"] = self.artifact_type
        return entry

    def is_sigstore_bundle(self):
        return self.artifact_type in cosign.SIGSTORE_BUNDLE_TYPES


def _artifact_type(document):
    return document.get("artifactType") or (document.get("config") or {}).get("mediaType")


def referrer_descriptor(data, media_type, digest):
    """The descriptor of a referrer manifest as the referrers API (and its tag schema index) lists it."""
    document = json.loads(data)
    descriptor = {"mediaType": media_type, "digest": digest, "size": len(data)}
    if _artifact_type(document):
        descriptor["artifactType"] = _artifact_type(document)
    if document.get("annotations"):
        descriptor["annotations"] = document["annotations"]
    return descriptor


def _referrer_index(client, repository, digest):
    index = client.referrers(repository, digest)
    if index is not None:
        return index
    found = client.get_manifest(repository, cosign.tag_for(digest), allow_missing=True)
    if found is None or found[1] != mediatypes.OCI_INDEX:
        return None
    return json.loads(found[0])


def discover(client, repository, digest, source):
    """Every manifest attached to ``digest`` in ``repository``, in a stable order (legacy tags, then referrers)."""
    found = []
    try:
        for suffix, kind in cosign.LEGACY_KINDS:
            tag = cosign.tag_for(digest, suffix)
            fetched = client.get_manifest(repository, tag, allow_missing=True)
            if fetched is not None:
                data, media_type, manifest_digest = fetched
                if media_type not in mediatypes.MANIFEST_TYPES:
                    raise CustodyError("%s:%s (the %s of %s) is an index; cosign writes a manifest there" % (
                        repository, tag, kind, source), hint="Re-sign the image with cosign", reason="attached")
                found.append(Attached(kind, data, media_type, manifest_digest, tag=tag,
                                      artifact_type=_artifact_type(json.loads(data))))
        index = _referrer_index(client, repository, digest) or {}
        listed = sorted(index.get("manifests") or [], key=lambda item: item.get("digest", ""))
        for descriptor in listed:
            if descriptor.get("mediaType") not in mediatypes.MANIFEST_TYPES:
                raise CustodyError("a referrer of %s (%s) is an index; Petra carries manifest referrers" % (
                    source, descriptor.get("digest")), reason="attached")
            data, media_type, manifest_digest = client.get_manifest(repository, descriptor["digest"])
            document = json.loads(data)
            if (document.get("subject") or {}).get("digest") != digest:
                raise CustodyError("the referrer %s listed for %s names another subject (%s)" % (
                    manifest_digest, source, (document.get("subject") or {}).get("digest")),
                    hint="The registry's referrers list is inconsistent; check it", reason="attached")
            found.append(Attached("referrer", data, media_type, manifest_digest,
                                  artifact_type=_artifact_type(document)))
    except OCIError as exc:
        raise CustodyError("cannot read what is attached to %s: %s" % (source, exc.message), hint=exc.hint,
                           reason="attached")
    return found
