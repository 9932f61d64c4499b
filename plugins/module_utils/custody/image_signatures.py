# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Cosign's container image signature formats, read and written byte for byte.

- The legacy tag format: tag ``sha256-<hex>.sig`` in the image's repository, an OCI manifest with one
  layer per signature; each layer blob is a simple-signing payload, its annotation
  ``dev.cosignproject.cosign/signature`` the base64 DER ECDSA signature over the exact payload bytes.
  ``.att`` (attestations) and ``.sbom`` (SBOMs) tags sit beside it.
- cosign v3 referrers: an OCI 1.1 manifest whose ``subject`` is the image and whose one layer is a
  Sigstore bundle v0.3 holding a DSSE envelope over an in-toto statement about the image digest.

Payloads are never re-serialised: signatures are checked over the bytes as received.
"""

from __future__ import annotations

import base64
import binascii
import json

from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes

SIGNATURE_SUFFIX = ".sig"
ATTESTATION_SUFFIX = ".att"
SBOM_SUFFIX = ".sbom"
LEGACY_KINDS = ((SIGNATURE_SUFFIX, "signature"), (ATTESTATION_SUFFIX, "attestation"), (SBOM_SUFFIX, "sbom"))

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_TYPE = "cosign container image signature"
ANNOTATION_SIGNATURE = "dev.cosignproject.cosign/signature"
ANNOTATION_CERTIFICATE = "dev.sigstore.cosign/certificate"
ANNOTATION_CHAIN = "dev.sigstore.cosign/chain"
ANNOTATION_REKOR_BUNDLE = "dev.sigstore.cosign/bundle"
ANNOTATION_PETRA_SIGNER = "dev.petra.bundle/signer"

SIGSTORE_BUNDLE_TYPES = ("application/vnd.dev.sigstore.bundle.v0.3+json",
                         "application/vnd.dev.sigstore.bundle+json;version=0.3")
IN_TOTO_PAYLOAD = "application/vnd.in-toto+json"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
ANNOTATION_PREDICATE_TYPE = "predicateType"
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
MAX_SIGNATURE_BLOB = 1 << 20


def digest_hex(digest):
    return digest.split(":", 1)[1]


def tag_for(digest, suffix=""):
    """``sha256-<hex>`` plus a suffix: the tag cosign (and the referrers tag schema) derive from a digest."""
    return "sha256-%s%s" % (digest_hex(digest), suffix)


def simple_signing_payload(docker_reference, digest):
    """The payload bytes cosign writes for an image signature (Go's encoding/json field order, no spaces)."""
    return ('{"critical":{"identity":{"docker-reference":%s},"image":{"docker-manifest-digest":%s},"type":%s},'
            '"optional":null}' % (json.dumps(docker_reference), json.dumps(digest), json.dumps(SIGNATURE_TYPE))
            ).encode("utf-8")


def signed_claims(payload):
    """The ``docker-manifest-digest`` and ``docker-reference`` (None when absent) a simple-signing payload names;
    ValueError when it is not one."""
    try:
        document = json.loads(payload)
        critical = document["critical"]
        if critical.get("type") != SIGNATURE_TYPE:
            raise ValueError("type %r is not %r" % (critical.get("type"), SIGNATURE_TYPE))
        digest = critical["image"]["docker-manifest-digest"]
        identity = critical.get("identity")
        reference = identity.get("docker-reference") if isinstance(identity, dict) else None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError("not a cosign simple-signing payload (%s)" % exc)
    if not isinstance(digest, str):
        raise ValueError("docker-manifest-digest is not a string")
    return digest, reference


def signed_digest(payload):
    """The ``docker-manifest-digest`` a simple-signing payload names; ValueError when it is not one."""
    return signed_claims(payload)[0]


def decode_b64(text, what):
    try:
        return base64.b64decode("".join(str(text).split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("%s is not base64" % what)


def signature_config(layer_digests):
    """The config blob cosign pushes with a signature manifest: an empty image whose diff_ids are the payloads."""
    return json.dumps({
        "architecture": "", "config": {}, "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
        "rootfs": {"diff_ids": list(layer_digests), "type": "layers"},
    }, sort_keys=True, separators=(",", ":")).encode("utf-8")


def signature_manifest(layers, config_digest, config_size):
    """Manifest bytes of a ``.sig`` manifest: ``layers`` are (digest, size, annotations) of payload blobs."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "config": mediatypes.descriptor(mediatypes.OCI_CONFIG, config_digest, config_size),
        "layers": [mediatypes.descriptor(SIMPLE_SIGNING, digest, size, annotations)
                   for digest, size, annotations in layers],
    }
    return json.dumps(manifest, separators=(",", ":")).encode("utf-8")


def pae(payload_type, payload):
    """DSSE pre-authentication encoding: what a DSSE signature covers."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def statement_digests(payload):
    """The sha256 subject digests (``sha256:<hex>``) of an in-toto statement, and its predicate type."""
    try:
        statement = json.loads(payload)
        subjects = statement["subject"]
        found = {"sha256:" + subject["digest"]["sha256"] for subject in subjects if "sha256" in subject.get("digest", {})}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError("not an in-toto statement (%s)" % exc)
    return found, statement.get("predicateType")


def envelope_parts(envelope):
    """(payload type, payload bytes, DER signatures) of a DSSE envelope document; ValueError when malformed."""
    try:
        payload_type = envelope["payloadType"]
        payload = decode_b64(envelope["payload"], "the DSSE payload")
        signatures = [decode_b64(item["sig"], "a DSSE signature") for item in envelope["signatures"]]
    except (KeyError, TypeError) as exc:
        raise ValueError("the DSSE envelope is malformed (%s)" % exc)
    if not signatures:
        raise ValueError("the DSSE envelope holds no signature")
    return payload_type, payload, signatures


class SigstoreBundle:
    """The parts of a Sigstore bundle (v0.3) that key-based checks need; keyless checks use the sigstore library."""

    def __init__(self, raw):
        self.raw = raw
        try:
            document = json.loads(raw)
            self.media_type = document["mediaType"]
            material = document.get("verificationMaterial") or {}
            self.key_hint = (material.get("publicKey") or {}).get("hint")
            self.has_certificate = bool(material.get("certificate") or material.get("x509CertificateChain"))
            envelope = document.get("dsseEnvelope")
            message = document.get("messageSignature")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError("not a Sigstore bundle (%s)" % exc)
        if self.media_type not in SIGSTORE_BUNDLE_TYPES:
            raise ValueError("Sigstore bundle media type %r is not v0.3" % self.media_type)
        if envelope is None:
            kind = "a message signature" if message is not None else "no signature"
            raise ValueError("the Sigstore bundle holds %s, not the DSSE envelope cosign writes for images" % kind)
        self.payload_type, self.payload, self.signatures = envelope_parts(envelope)

    def subject_digests(self):
        if self.payload_type != IN_TOTO_PAYLOAD:
            raise ValueError("the DSSE payload type is %r, not %r" % (self.payload_type, IN_TOTO_PAYLOAD))
        return statement_digests(self.payload)
