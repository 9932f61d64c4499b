# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Custody in the bundle plan: what comes with each image (signatures, attestations, SBOMs, referrers), its source
verification against verify_images (its signature, and its SLSA provenance where the rule asks for it), the bundle
key's countersignature of every digest, the bundle's SBOM, and the Sigstore trusted roots that verified keyless
signatures or provenance (carried for admission on the high side).

All of it is decided while planning, so the signed metadata still exists before the first layer is fetched. The
custody formats themselves live in custody/; this file only puts their results into the plan.
"""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.custody import image_signatures as cosign
from ansible_collections.petra.core.plugins.module_utils.custody.attached import discover
from ansible_collections.petra.core.plugins.module_utils.custody.countersign import countersign
from ansible_collections.petra.core.plugins.module_utils.custody.keyless import TRUSTED_ROOT_MEDIA_TYPE, CarriedRoots
from ansible_collections.petra.core.plugins.module_utils.custody.provenance import ProvenanceVerifier
from ansible_collections.petra.core.plugins.module_utils.custody.sbom import ENTRY_NAME as SBOM_NAME
from ansible_collections.petra.core.plugins.module_utils.custody.sbom import MEDIA_TYPE as SBOM_MEDIA_TYPE
from ansible_collections.petra.core.plugins.module_utils.custody.sbom import bundle_sbom
from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes
from ansible_collections.petra.core.plugins.module_utils.oci.blobs import Blob
from ansible_collections.petra.core.plugins.module_utils.signing import keys as signing_keys


class CreationCustody:
    """The custody settings of one build: the bundle signer (countersignatures), the verify_images policy,
    the scanner, whether to write the SBOM, and the countersignatures of an existing bundle to reuse."""

    def __init__(self, signer, verifier=None, scanner=None, existing=None, sbom=True):
        self.signer = signer
        self.verifier = verifier
        # Built here so that a wrong provenance option stops the build before any registry is asked.
        self.provenance = ProvenanceVerifier(verifier) if verifier is not None else None
        self.scanner = scanner
        self.sbom = sbom
        self.roots = CarriedRoots()
        self._previous = {}
        # A KMS key signs with a random nonce, so a fresh countersignature would differ from the last one and a
        # rebuild of unchanged content would look changed: the existing bundle's, by the same key, are reused.
        if existing and (existing.get("signer") or {}).get("keyId") == signing_keys.key_id(signer.public_key()):
            for section, key in (("images", "digest"), ("charts", "digest"), ("manifests", "digest"),
                                 ("files", "manifestDigest")):
                for record in existing.get(section) or []:
                    if record.get("countersignature"):
                        self._previous[record[key]] = record["countersignature"]

    def previous(self, digest):
        return self._previous.get(digest)

    def scan_settled(self, existing):
        """True when the existing bundle was scanned as this build would scan it (or neither scans)."""
        recorded = existing.get("scan")
        if self.scanner is None or recorded is None:
            return self.scanner is None and recorded is None
        return (recorded.get("scanner"), recorded.get("failOn"), recorded.get("ignoreFile")) == (
            self.scanner.name, self.scanner.fail_on, self.scanner.ignore_digest)

    def add_image(self, plan, client, ref, ref_text, entry):
        """Carry what comes with the image, verify its source and countersign it; records go into ``entry``."""
        digest = entry["digest"]
        attached = discover(client, ref.repository, digest, ref_text)
        for item in attached:
            plan.add_blob(Blob(item.digest, len(item.data), item.media_type, data=item.data))
            plan.add_image_blobs(client, ref, item.data)
        if attached:
            entry["attached"] = [item.record() for item in attached]
        if self.verifier is not None:
            entry["sourceVerification"] = self.verifier.verify(client, ref_text, ref, digest, attached)
            provenance = self.provenance.verify(client, ref_text, ref, digest, attached)
            if provenance is not None:
                entry["provenance"] = provenance
            self._note_roots(ref_text, ref, entry)
        carried = next((item for item in attached if item.kind == "signature"), None)
        entry["countersignature"] = self.countersign(plan, ref.name, digest, carried)

    def _note_roots(self, ref_text, ref, entry):
        """The trusted roots that accepted this image's keyless signature or provenance, to be carried."""
        rule = self.verifier.rule_for(ref_text, ref)
        if entry["sourceVerification"].get("method") == "keyless":
            self.roots.use(rule.trusted_root, rule.glob, rule.identity, rule.issuer, "signature")
        provenance = entry.get("provenance") or {}
        if provenance.get("status") == "verified" and provenance.get("method") == "keyless":
            wanted = self.provenance.rules[rule.index]
            self.roots.use(wanted.trusted_root, rule.glob, wanted.identity, wanted.issuer, "provenance")

    def add_trusted_roots(self, plan):
        """The trusted roots as named entries; returns their metadata records (empty when nothing was keyless)."""
        records = []
        for name, data, record in self.roots.entries():
            plan.named.append((name, Blob.from_bytes(data, TRUSTED_ROOT_MEDIA_TYPE)))
            records.append(record)
        return records

    def countersign(self, plan, reference, digest, carried=None):
        """The countersignature of a manifest digest (an image, or a chart, manifest set or file artifact, which
        Flux verifies), its blobs added to the plan; returns its metadata record."""
        signed = self.signed(reference, digest, carried)
        for data, media_type in ((signed.payload, cosign.SIMPLE_SIGNING),
                                 (signed.config, mediatypes.OCI_CONFIG), (signed.manifest, mediatypes.OCI_MANIFEST)):
            plan.add_blob(Blob.from_bytes(data, media_type))
        return signed.record

    def signed(self, reference, digest, carried=None):
        """The Countersignature of a digest by the bundle key (a previous one reused when still valid)."""
        return countersign(self.signer, reference, digest, carried, self.previous(digest))

    def add_sbom(self, plan, spec, created):
        """The bundle's CycloneDX SBOM as a named entry; returns its metadata record. Called once the plan lists
        every image, chart, manifest set and file, since the SBOM describes them all."""
        data = bundle_sbom(spec.name, spec.version, created.text, plan.images, plan.charts, plan.manifests,
                           plan.files)
        blob = Blob.from_bytes(data, SBOM_MEDIA_TYPE)
        plan.named.append((SBOM_NAME, blob))
        return {"name": SBOM_NAME, "digest": blob.digest}
