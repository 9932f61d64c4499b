# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The bundle plan: every entry the archive will hold, in archive order, known before any layer is fetched.

The planner (planner.py) and custody (custody_plan.py, scan_staging.py) fill it; the writer (writer.py) streams it.
Archive order is fixed here and nowhere else, because the bytes of the archive depend on it.
"""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.bundle import artifacts
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError
from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes
from ansible_collections.petra.core.plugins.module_utils.oci.blobs import Blob, canonical_json

OCI_LAYOUT = canonical_json({"imageLayoutVersion": "1.0.0"})


class BundlePlan:
    """Everything the archive will hold, known before any layer is fetched."""

    def __init__(self):
        self.blobs = {}
        self.index_manifests = []
        self.images = []
        self.charts = []
        self.manifests = []
        self.files = []
        self.named = []  # (entry name, Blob): the SBOM and scan reports, between index.json and the blobs
        self.metadata = None
        self.created = None  # timing.Created
        self.omitted = set()  # digests of a delta's blobs that its base provides (delta.py): planned, not written

    def add_blob(self, blob):
        known = self.blobs.get(blob.digest)
        if known is None:
            self.blobs[blob.digest] = blob
        elif known.size != blob.size:
            raise BundleError("blob %s is referenced with sizes %d and %d" % (blob.digest, known.size, blob.size),
                              hint="A source manifest is inconsistent; check the image")
        elif known.remote is not None and blob.remote is None:
            self.blobs[blob.digest] = blob  # a local copy is cheaper than a download

    def add_image_blobs(self, client, ref, manifest_data):
        """The config and layers an image manifest references, to be fetched from its repository when written."""
        for item in artifacts.image_blob_descriptors(manifest_data, str(ref)):
            self.add_blob(Blob(item["digest"], item["size"], item.get("mediaType", ""),
                               remote=(client, ref.repository)))

    def add_artifact(self, manifest_bytes, blobs, annotations):
        manifest = Blob.from_bytes(manifest_bytes, mediatypes.OCI_MANIFEST)
        self.add_blob(manifest)
        for blob in blobs:
            self.add_blob(blob)
        self.index_manifests.append(manifest.descriptor(annotations))
        return manifest

    def list_entries(self):
        """(Re)compute the metadata's entry list from what the plan holds."""
        self.metadata["entries"] = [{"name": name, "digest": blob.digest, "size": blob.size}
                                    for name, blob in self.entries()]

    def entries(self):
        """(name, Blob) in archive order: layout file, index, named entries by name, then blobs by digest (those a
        delta omits left out)."""
        index = canonical_json({
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_INDEX,
            "manifests": self.index_manifests,
        })
        result = [("oci-layout", Blob.from_bytes(OCI_LAYOUT, "application/json")),
                  ("index.json", Blob.from_bytes(index, mediatypes.OCI_INDEX))]
        result += sorted(self.named, key=lambda item: item[0])
        for digest in sorted(self.blobs):
            if digest in self.omitted:
                continue
            result.append(("blobs/sha256/" + digest.split(":", 1)[1], self.blobs[digest]))
        return result
