# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Custody records: for every image, its source reference and digest, who vouched for the source, the bundle that
carried it and who signed that, and where it was loaded.

The per-image source verification (``sourceVerification``), SLSA provenance (``provenance``), countersignature
(``countersignature``) and SBOM origin (``sbom``: the source's or Petra's) are read from the signed metadata when
the bundle records them, and are null for bundles built without them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re

from ansible_collections.petra.core.plugins.module_utils.atomic import write_if_different

API_VERSION = "petra.dev/v1alpha1"
KIND = "CustodyRecord"
FORMAT_VERSION = 1
CUSTODY_DIRECTORY = "custody"
SOURCE_SIGNATURE_FIELDS = ("rule", "method", "keyId", "identity", "issuer", "format", "dockerReference",
                           "dockerReferenceMatch", "verifiedAt")
PROVENANCE_FIELDS = ("rule", "status", "method", "keyId", "identity", "issuer", "predicateType", "builderId",
                     "buildType", "source", "format", "attestation")
COUNTERSIGNATURE_FIELDS = ("tag", "digest")
SBOM_FIELDS = ("origin", "generator")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


def _pick(value, fields):
    if not isinstance(value, dict):
        return None
    return {field: value[field] for field in fields if field in value}


def _sbom(record):
    """Where the image's SBOM came from (``source`` or ``petra``) and the manifests that hold it."""
    picked = _pick(record, SBOM_FIELDS)
    if picked is None:
        return None
    items = record.get("documents") or record.get("attestations") or []
    picked["digests"] = [item.get("manifest") for item in items if isinstance(item, dict)]
    return picked


def image_sboms(record):
    """Per image of a custody record: reference, digest, and the origin and digests of its SBOM."""
    return [{"ref": image["source"], "digest": image["sourceDigest"],
             "sbom_origin": (image.get("sbom") or {}).get("origin"),
             "sbom_digests": (image.get("sbom") or {}).get("digests") or []} for image in record["images"]]


def custody_record(metadata, verification, targets=None, acceptance=None):
    """The custody record of a verified bundle.

    ``verification`` is the verification result, ``targets`` maps (source reference, digest) to the reference
    an image was loaded at, ``acceptance`` says how the trust state accepted the bundle (both only for a load).
    """
    targets = targets or {}
    signers = list(verification["signers"])
    images = []
    for image in metadata.get("images") or []:
        images.append({
            "source": image.get("ref"),
            "sourceDigest": image.get("digest"),
            "sourceSignature": _pick(image.get("sourceVerification"), SOURCE_SIGNATURE_FIELDS),
            "provenance": _pick(image.get("provenance"), PROVENANCE_FIELDS),
            "countersignature": _pick(image.get("countersignature"), COUNTERSIGNATURE_FIELDS),
            "sbom": _sbom(image.get("sbom")),
            "bundleSha256": verification["sha256"],
            "signers": signers,
            "target": targets.get((image.get("ref"), image.get("digest"))),
        })
    bundle = {"name": metadata["name"], "version": metadata["version"], "created": metadata.get("created"),
              "expires": metadata.get("expires"), "sha256": verification["sha256"], "size": verification["size"],
              "signer": verification["key_id"], "signers": signers, "threshold": verification["threshold"]}
    if metadata.get("delta"):
        # Only deltas name a base: the records of full bundles stay exactly as they were written.
        bundle["deltaBase"] = metadata["delta"]["base"]
    return {
        "apiVersion": API_VERSION, "kind": KIND, "formatVersion": FORMAT_VERSION,
        "bundle": bundle,
        "acceptance": acceptance,
        "images": images,
    }


def custody_path(trust_state_path, name, version):
    """``custody/<name>-<version>-<16 hex digits>.json`` beside the trust state.

    The readable part has unsafe characters replaced and cannot tell ``a-b``/``1`` from ``a``/``b-1`` or ``a/b``
    from ``a_b``; the suffix (the start of the SHA-256 of the exact ``name``, a NUL byte and ``version``) makes every
    name and version pair its own file."""
    directory = os.path.join(os.path.dirname(os.path.abspath(trust_state_path)), CUSTODY_DIRECTORY)
    suffix = hashlib.sha256(("%s\0%s" % (name, version)).encode("utf-8")).hexdigest()[:16]
    return os.path.join(directory, "%s-%s-%s.json" % (_UNSAFE.sub("_", name), _UNSAFE.sub("_", version), suffix))


def encode(record):
    return (json.dumps(record, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def write_custody(path, record, check_mode=False):
    """Write the record unless the file already holds exactly it; returns whether it was (or would be) written."""
    return write_if_different(path, encode(record), check_mode)
