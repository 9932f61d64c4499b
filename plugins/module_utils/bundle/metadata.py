# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The signed metadata document: the first entry of every bundle, and the list every entry is checked against."""

from __future__ import annotations

import datetime
import json

from ansible_collections.petra.core.plugins.module_utils.schema import HAS_JSONSCHEMA, jsonschema

from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError, VerificationError

METADATA_NAME = "petra-bundle.json"
FORMAT_VERSION = 1
MAX_METADATA_SIZE = 64 << 20
DIGEST_PATTERN = r"^sha256:[a-f0-9]{64}$"

_DIGEST = {"type": "string", "pattern": DIGEST_PATTERN}
_SIZE = {"type": "integer", "minimum": 0}
_ITEM = {
    "type": "object",
    "required": ["digest", "size"],
    "properties": {"digest": _DIGEST, "size": _SIZE},
}

_TIME = {"type": "string", "format": "date-time"}
# Custody fields (all optional, so bundles made before them stay valid): see docs/bundle-spec.md.
_SOURCE_VERIFICATION = {
    "type": "object",
    "required": ["rule", "method", "verifiedAt"],
    "properties": {
        "rule": {"type": "string"},
        "method": {"enum": ["key", "keyless", "none"]},
        "keyId": _DIGEST,
        "identity": {"type": "string"},
        "issuer": {"type": "string"},
        "format": {"enum": ["legacy-tag", "referrer"]},
        "dockerReference": {"type": "string"},
        "dockerReferenceMatch": {"enum": ["repository", "path", "glob", "none"]},
        "verifiedAt": _TIME,
    },
}
# The SLSA provenance a verify_images rule required: what it says (builder, build type, source) and which carried
# attestation said it; or, for a rule that tolerates its absence, that there was none.
_PROVENANCE = {
    "type": "object",
    "required": ["rule", "status"],
    "properties": {
        "rule": {"type": "string"},
        "status": {"enum": ["verified", "absent"]},
        "method": {"enum": ["key", "keyless"]},
        "keyId": _DIGEST,
        "identity": {"type": "string"},
        "issuer": {"type": "string"},
        "predicateType": {"enum": ["https://slsa.dev/provenance/v1", "https://slsa.dev/provenance/v0.2"]},
        "builderId": {"type": "string"},
        "buildType": {"type": "string"},
        "format": {"enum": ["legacy-tag", "referrer"]},
        "attestation": {"type": "object", "required": ["manifest", "digest"],
                        "properties": {"manifest": _DIGEST, "digest": _DIGEST}},
        "source": {"type": "object", "required": ["repository", "where"],
                   "properties": {"repository": {"type": "string"}, "ref": {"type": "string"},
                                  "where": {"type": "string"},
                                  "digest": {"type": "object", "additionalProperties": {"type": "string"}}}},
    },
    "if": {"properties": {"status": {"const": "verified"}}},
    "then": {"required": ["method", "predicateType", "builderId", "buildType", "format", "attestation"]},
}
# The Sigstore trusted roots that verified keyless signatures or provenance at build, carried as named entries for
# admission on the high side, with the identities each vouched for.
_TRUSTED_ROOTS = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["name", "digest", "size", "keyless"],
        "properties": {
            "name": {"type": "string", "pattern": r"^sigstore/trusted_root-[a-f0-9]{12}\.json$"},
            "digest": _DIGEST, "size": _SIZE, "mediaType": {"type": "string"},
            "keyless": {"type": "array", "items": {
                "type": "object", "required": ["glob", "identity", "issuer", "for"],
                "properties": {"glob": {"type": "string"}, "identity": {"type": "string"},
                               "issuer": {"type": "string"},
                               "for": {"type": "array", "items": {"enum": ["signature", "provenance"]}}}}},
        },
    },
}
_COUNTERSIGNATURE = {
    "type": "object",
    "required": ["tag", "digest"],
    "properties": {"tag": {"type": "string", "pattern": r"^sha256-[a-f0-9]{64}\.sig$"}, "digest": _DIGEST,
                   "signature": {"type": "string"}},
}
_ATTACHED = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["kind", "digest", "mediaType"],
        "properties": {"kind": {"enum": ["signature", "attestation", "sbom", "referrer"]}, "digest": _DIGEST,
                       "mediaType": {"type": "string"}, "tag": {"type": "string"}, "size": _SIZE,
                       "artifactType": {"type": "string"}},
    },
}
# Where an image's SBOM came from: the source's (``documents``: the manifests it came in) or Petra's (``attestations``
# it made with ``generator``: one per platform manifest, each a referrer of the image listed under ``attached``).
_IMAGE_SBOM = {
    "type": "object",
    "required": ["origin"],
    "properties": {
        "origin": {"enum": ["source", "petra"]},
        "generator": {"type": "string"},
        "documents": {"type": "array", "items": {"type": "object", "required": ["kind", "manifest"],
                                                 "properties": {"manifest": _DIGEST, "digest": _DIGEST}}},
        "attestations": {"type": "array", "items": {
            "type": "object", "required": ["manifest", "manifestSize", "digest", "size", "describes", "signature"],
            "properties": {"manifest": _DIGEST, "manifestSize": _SIZE, "digest": _DIGEST, "size": _SIZE,
                           "describes": _DIGEST, "sbomDigest": _DIGEST, "signature": {"type": "string"}}}},
    },
}
_COUNTERSIGNED_ITEM = dict(_ITEM, properties=dict(_ITEM["properties"], countersignature=_COUNTERSIGNATURE))
_SCAN = {
    "type": "object",
    "required": ["scanner", "failOn", "reports"],
    "properties": {
        "scanner": {"enum": ["trivy", "grype"]},
        "failOn": {"type": "string"},
        "ignoreFile": _DIGEST,
        "reports": {"type": "array", "items": {"type": "object", "required": ["manifest", "entry", "digest"],
                                               "properties": {"manifest": _DIGEST, "digest": _DIGEST,
                                                              "entry": {"type": "string"}}}},
    },
}
# A delta bundle (delta.py; optional, so full bundles stay as they were): its base, the bundles that carry what it
# leaves out (the base first), and every blob left out.
_BUNDLE_ID = {"type": "object", "additionalProperties": False, "required": ["name", "version", "sha256"],
              "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                             "sha256": {"type": "string", "pattern": "^[a-f0-9]{64}$"}}}
_DELTA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["base", "carriers", "omitted", "omittedSize"],
    "properties": {
        "base": _BUNDLE_ID,
        "carriers": {"type": "array", "minItems": 1, "items": _BUNDLE_ID},
        "omitted": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["digest", "size", "carrier"],
            "properties": {"digest": _DIGEST, "size": _SIZE, "carrier": {"type": "string", "pattern": "^[a-f0-9]{64}$"}}}},
        "omittedSize": _SIZE,
    },
}

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Petra bundle metadata",
    "type": "object",
    "required": ["apiVersion", "kind", "formatVersion", "name", "version", "created", "signer", "entries",
                 "images", "charts", "manifests", "files"],
    "properties": {
        "apiVersion": {"const": "petra.dev/v1alpha1"},
        "kind": {"const": "BundleMetadata"},
        "formatVersion": {"const": FORMAT_VERSION},
        "name": {"type": "string"},
        "version": {"type": "string"},
        "created": {"type": "string"},
        "expires": {"type": ["string", "null"], "format": "date"},
        "signer": {"type": "object", "required": ["keyId"], "properties": {"keyId": _DIGEST}},
        "images": {
            "type": "array",
            "items": {"type": "object", "required": ["ref", "digest", "mediaType"], "properties": {
                "digest": _DIGEST, "sourceVerification": _SOURCE_VERIFICATION, "countersignature": _COUNTERSIGNATURE,
                "attached": _ATTACHED, "provenance": _PROVENANCE, "sbom": _IMAGE_SBOM}},
        },
        "sbom": {"type": "object", "required": ["name", "digest"],
                 "properties": {"name": {"type": "string", "minLength": 1}, "digest": _DIGEST}},
        "scan": _SCAN,
        "trustedRoots": _TRUSTED_ROOTS,
        "delta": _DELTA,
        "charts": {"type": "array", "items": _COUNTERSIGNED_ITEM},
        "manifests": {"type": "array", "items": _COUNTERSIGNED_ITEM},
        "files": {"type": "array", "items": _COUNTERSIGNED_ITEM},
        "entries": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "digest", "size"],
                "properties": {"name": {"type": "string", "minLength": 1}, "digest": _DIGEST, "size": _SIZE},
            },
        },
    },
}


def encode(metadata):
    """Canonical bytes: the same metadata always serialises the same way."""
    return (json.dumps(metadata, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def decode(data):
    """Parse and check the metadata's form; raises VerificationError when it is not Petra metadata."""
    try:
        metadata = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise VerificationError("the bundle's %s is not valid JSON (%s)" % (METADATA_NAME, exc),
                                hint="The bundle is damaged or not a Petra bundle; obtain it again", reason="metadata")
    if not HAS_JSONSCHEMA:
        raise BundleError("the Python library 'jsonschema' is required to read bundle metadata",
                          hint="Install the collection's requirements.txt on the controller")
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    error = next(iter(sorted(validator.iter_errors(metadata), key=lambda e: [str(p) for p in e.absolute_path])), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        if error.validator == "const" and list(error.absolute_path) == ["formatVersion"]:
            raise VerificationError(
                "the bundle has format version %r; this Petra reads format version %d" % (error.instance, FORMAT_VERSION),
                hint="Use the petra.core release that created the bundle", reason="format")
        raise VerificationError("the bundle's %s is malformed at %s: %s" % (METADATA_NAME, where, error.message),
                                hint="The bundle is damaged or not a Petra bundle; obtain it again", reason="metadata")
    return metadata


def expiry_problem(metadata, today=None):
    """A message when the bundle is past its ``expires`` date (valid through that whole day, UTC), else None."""
    expires = metadata.get("expires")
    if not expires:
        return None
    today = today or datetime.datetime.now(datetime.timezone.utc).date()
    expiry = datetime.date.fromisoformat(expires)
    if today > expiry:
        return "the bundle %s %s expired on %s" % (metadata["name"], metadata["version"], expires)
    return None


def summary(metadata):
    """What verification returns: the metadata without the entry list (which can be very long)."""
    result = {key: value for key, value in metadata.items() if key != "entries"}
    result["entry_count"] = len(metadata["entries"])
    return result
