# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Custody in the bundle plan: what comes with each image (signatures, attestations, SBOMs, referrers), its source
verification against verify_images (its signature, and its SLSA provenance where the rule asks for it), the bundle
key's countersignature of every digest, the SBOM of each image (the source's, or one Petra generates: see
image_sboms.py), the bundle's SBOM, and the Sigstore trusted roots that verified keyless signatures or provenance
(carried for admission on the high side).

All of it is decided while planning, so the signed metadata still exists before the first layer is fetched. The
custody formats themselves live in custody/; this file only puts their results into the plan.
"""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.custody import image_signatures as cosign
from ansible_collections.petra.core.plugins.module_utils.custody.attached import discover
from ansible_collections.petra.core.plugins.module_utils.custody import image_sbom
from ansible_collections.petra.core.plugins.module_utils.custody.countersign import countersign
from ansible_collections.petra.core.plugins.module_utils.custody.keyless import TRUSTED_ROOT_MEDIA_TYPE, CarriedRoots
from ansible_collections.petra.core.plugins.module_utils.custody.provenance import ProvenanceVerifier
from ansible_collections.petra.core.plugins.module_utils.custody.sbom import ENTRY_NAME as SBOM_NAME
from ansible_collections.petra.core.plugins.module_utils.custody.sbom import MEDIA_TYPE as SBOM_MEDIA_TYPE
from ansible_collections.petra.core.plugins.module_utils.custody.sbom import bundle_sbom
from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes
from ansible_collections.petra.core.plugins.module_utils.oci.blobs import EMPTY_JSON, Blob
from ansible_collections.petra.core.plugins.module_utils.signing import keys as signing_keys


class CreationCustody:
    """The custody settings of one build: the bundle signer (countersignatures), the verify_images policy,
    the scanner, whether to write the SBOM and to generate the SBOMs images lack, and the countersignatures and
    generated SBOMs of an existing bundle to reuse."""

    def __init__(self, signer, verifier=None, scanner=None, existing=None, sbom=True, sbom_generate=False):
        self.signer = signer
        self.verifier = verifier
        # Built here so that a wrong provenance option stops the build before any registry is asked.
        self.provenance = ProvenanceVerifier(verifier) if verifier is not None else None
        self.scanner = scanner
        self.sbom = sbom
        self.roots = CarriedRoots()
        self.syft = image_sbom.Syft() if sbom_generate else None
        self._previous = {}
        self._previous_sboms = {}
        # A KMS key signs with a random nonce, so a fresh countersignature would differ from the last one and a
        # rebuild of unchanged content would look changed: the existing bundle's, by the same key, are reused.
        if existing and (existing.get("signer") or {}).get("keyId") == signing_keys.key_id(signer.public_key()):
            for section, key in (("images", "digest"), ("charts", "digest"), ("manifests", "digest"),
                                 ("files", "manifestDigest")):
                for record in existing.get(section) or []:
                    if record.get("countersignature"):
                        self._previous[record[key]] = record["countersignature"]
            for record in existing.get("images") or []:
                if (record.get("sbom") or {}).get("origin") == "petra":
                    self._previous_sboms[(record["ref"], record["digest"])] = record["sbom"]

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
        sources = image_sbom.source_sboms(attached)
        if sources:
            entry["sbom"] = {"origin": "source", "documents": sources}
        elif self.syft is not None:
            entry["sbom"] = self._planned_sbom(plan, entry)

    def _planned_sbom(self, plan, entry):
        """Petra's SBOM record of an image that carries none. Generating it needs the layers, which planning never
        fetches: when the existing bundle holds one made from the same image by the same syft, its records stand in
        (and its blobs are named with their digests and sizes) so that an unchanged bundle is recognised without
        running syft; otherwise the list is empty. image_sboms.py generates them before the bundle is written."""
        previous = self._previous_sboms.get((entry["ref"], entry["digest"]))
        if previous is None or previous.get("generator") != self.syft.name:
            return {"origin": "petra", "generator": self.syft.name, "attestations": []}
        for record in previous["attestations"]:
            plan.add_blob(Blob(record["manifest"], record["manifestSize"], mediatypes.OCI_MANIFEST))
            plan.add_blob(Blob(record["digest"], record["size"], image_sbom.BUNDLE_TYPE))
            plan.add_blob(Blob.from_bytes(EMPTY_JSON, mediatypes.OCI_EMPTY))
            entry.setdefault("attached", []).append(image_sbom.attached_record(record))
        return {"origin": "petra", "generator": previous["generator"],
                "attestations": [dict(record) for record in previous["attestations"]]}

    def attest_sbom(self, image, subject_size, document, manifest_digest, platform):
        """The signed attestation of a generated SBOM (custody.image_sbom.Attestation), reusing the signature of the
        existing bundle's one when it is the same statement."""
        previous = next((record for record in (self._previous_sboms.get((image["ref"], image["digest"])) or {}).get(
            "attestations") or [] if record.get("describes") == manifest_digest), None)
        return image_sbom.attest(self.signer, image, subject_size, document, manifest_digest, platform, previous)

    def _note_roots(self, ref_text, ref, entry):
        """The trusted roots that accepted this image's keyless signature or provenance, to be carried."""
        rule = self.verifier.rule_for(ref_text, ref)
        if entry["sourceVerification"].get("method") == "keyless":
            self.roots.use(self.verifier.trusted_root_bytes(rule.trusted_root), rule.glob, rule.identity,
                           rule.issuer, "signature")
        provenance = entry.get("provenance") or {}
        if provenance.get("status") == "verified" and provenance.get("method") == "keyless":
            wanted = self.provenance.rules[rule.index]
            self.roots.use(self.verifier.trusted_root_bytes(wanted.trusted_root), rule.glob, wanted.identity,
                           wanted.issuer, "provenance")

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

    def add_sbom(self, plan, name, version, created):
        """The bundle's CycloneDX SBOM as a named entry; returns its metadata record. Called once the plan lists
        every image, chart, manifest set and file, since the SBOM describes them all (and again, replacing it,
        when the images' generated SBOMs changed)."""
        plan.named = [item for item in plan.named if item[0] != SBOM_NAME]
        data = bundle_sbom(name, version, created.text, plan.images, plan.charts, plan.manifests, plan.files)
        blob = Blob.from_bytes(data, SBOM_MEDIA_TYPE)
        plan.named.append((SBOM_NAME, blob))
        return {"name": SBOM_NAME, "digest": blob.digest}
