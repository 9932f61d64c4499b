# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Blobs and OCI artifact manifests as bytes: canonical JSON, digests, and where a blob's bytes come from.

Used by the bundle writer, the trust witness and the countersignatures alike, so it sits with the other OCI
formats rather than in any one of them.
"""

from __future__ import annotations

import hashlib
import json

from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes

READ_CHUNK = 1 << 20
EMPTY_JSON = b"{}"


def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def digest_of(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def iter_file(path, chunk_size=READ_CHUNK):
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(chunk_size)
            if not chunk:
                return
            yield chunk


class Blob:
    """A blob to put into the bundle: its descriptor values and where its bytes come from."""

    __slots__ = ("digest", "size", "media_type", "data", "path", "remote")

    def __init__(self, digest, size, media_type, data=None, path=None, remote=None):
        self.digest = digest
        self.size = size
        self.media_type = media_type
        self.data = data
        self.path = path
        self.remote = remote  # (RegistryClient, repository)

    @classmethod
    def from_bytes(cls, data, media_type):
        return cls(digest_of(data), len(data), media_type, data=data)

    def descriptor(self, annotations=None):
        return mediatypes.descriptor(self.media_type, self.digest, self.size, annotations)

    def chunks(self):
        if self.data is not None:
            return iter([self.data])
        if self.path is not None:
            return iter_file(self.path)
        client, repository = self.remote
        # The archive writer checks digest and size of every entry; no need to hash twice.
        return client.iter_blob(repository, self.digest, self.size, verify=False)


def artifact_manifest(config, layers, annotations=None, artifact_type=None):
    """Manifest bytes of an OCI image manifest carrying an artifact."""
    manifest = {"schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST}
    if artifact_type:
        manifest["artifactType"] = artifact_type
    manifest["config"] = config.descriptor()
    manifest["layers"] = [layer.descriptor(ann) for layer, ann in layers]
    if annotations:
        manifest["annotations"] = dict(sorted(annotations.items()))
    return canonical_json(manifest)
