# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Countersignatures: every image digest signed with the bundle key in cosign's ``.sig`` tag format.

The payload is cosign's simple-signing document with ``docker-reference`` set to the *source* repository
(the target repository is not known when the bundle is made); cosign, Sigstore policy-controller and Flux
check the ``docker-manifest-digest`` claim, which is what binds the signature to the image. When the image
came with legacy cosign signatures, their layers come first in the same manifest, so one ``.sig`` tag on
the high side carries the source signatures and the countersignature, each verifiable on its own.
"""

from __future__ import annotations

import base64
import hashlib

from ansible_collections.petra.core.plugins.module_utils.custody import image_signatures as cosign
from ansible_collections.petra.core.plugins.module_utils.custody.errors import CustodyError
from ansible_collections.petra.core.plugins.module_utils.signing import keys as signing_keys


class Countersignature:
    """The ``.sig`` manifest and the blobs it needs (payload and config; carried layers are added elsewhere)."""

    def __init__(self, manifest, payload, config, record):
        self.manifest = manifest
        self.payload = payload
        self.config = config
        self.record = record


def reusable_signature(previous, payload, signer):
    """The DER signature of a previous build's countersignature over the same payload, if it still verifies."""
    text = (previous or {}).get("signature")
    if not text:
        return None
    try:
        der = cosign.decode_b64(text, "a previous countersignature")
    except ValueError:
        return None
    digest = hashlib.new(signer.hash_name, payload).digest()
    return der if signing_keys.verify_digest(signer.public_key(), digest, der) else None


def countersign(signer, docker_reference, digest, carried=None, previous=None):
    """Sign ``digest`` as an image of ``docker_reference``; ``carried`` is the image's own legacy ``.sig``
    manifest (Attached) whose layers are kept first; ``previous`` is the countersignature record of an
    existing bundle, reused when it is valid for the same payload and key (so KMS keys stay idempotent)."""
    payload = cosign.simple_signing_payload(docker_reference, digest)
    der = reusable_signature(previous, payload, signer)
    if der is None:
        hashed = hashlib.new(signer.hash_name, payload).digest()
        der = signer.sign_digest(hashed)
        if not signing_keys.verify_digest(signer.public_key(), hashed, der):
            raise CustodyError("the countersignature of %s by %s does not verify with its own public key" % (
                digest, signer.description), hint="The signing backend is misbehaving; nothing was written",
                reason="countersignature")
    signature = base64.b64encode(der).decode("ascii")
    layers = []
    if carried is not None:
        layers = [(layer["digest"], layer["size"], layer.get("annotations")) for layer in carried.layers]
    payload_digest = "sha256:" + hashlib.sha256(payload).hexdigest()
    layers.append((payload_digest, len(payload), {
        cosign.ANNOTATION_SIGNATURE: signature,
        cosign.ANNOTATION_PETRA_SIGNER: signing_keys.key_id(signer.public_key()),
    }))
    config = cosign.signature_config([layer[0] for layer in layers])
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = cosign.signature_manifest(layers, config_digest, len(config))
    record = {"tag": cosign.tag_for(digest, cosign.SIGNATURE_SUFFIX),
              "digest": "sha256:" + hashlib.sha256(manifest).hexdigest(), "signature": signature}
    return Countersignature(manifest, payload, config, record)
