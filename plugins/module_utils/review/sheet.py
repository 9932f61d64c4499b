# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The transfer review sheet's data: what a person approving a crossing (or confirming an arrival) needs to see.

One JSON-able document per verification, the same for a verified bundle and a refused one (``verdict`` says which).
It is built from the verification result, the signed metadata, what ``collect.ReviewCollector`` saw during the same
read, the trust state's decision and the custody record. The HTML page is rendered from exactly this document
(``render.py``); nothing on the page comes from anywhere else. No time of the review is recorded, so the same bundle
and trust state always give the same sheet, and writing it again is no change.
"""

from __future__ import annotations

import os

from ansible_collections.petra.core.plugins.module_utils.bundle.reader import read_metadata
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import default_signature_path, verify
from ansible_collections.petra.core.plugins.module_utils.custody.sbom import ENTRY_NAME as SBOM_ENTRY
from ansible_collections.petra.core.plugins.module_utils.custody.sbom import is_sbom
from ansible_collections.petra.core.plugins.module_utils.custody.scan import SEVERITIES
from ansible_collections.petra.core.plugins.module_utils.errors import PetraError
from ansible_collections.petra.core.plugins.module_utils.review.collect import ReviewCollector, cyclonedx_summary
from ansible_collections.petra.core.plugins.module_utils.trust.custody import (
    COUNTERSIGNATURE_FIELDS,
    SOURCE_SIGNATURE_FIELDS,
    custody_record,
)

API_VERSION = "petra.dev/v1alpha1"
KIND = "ReviewSheet"
FORMAT_VERSION = 1
BLOB_PREFIX = "blobs/sha256/"
# Highest first, as a reviewer reads them.
SEVERITY_ORDER = tuple(reversed(SEVERITIES))
INTERNAL_ERROR = ("Petra could not finish the verification because of an unexpected %s; the task's own result "
                  "says more. Treat the bundle as not verified")


class Review:
    """One bundle's verification with the sheet's data gathered in the same read."""

    def __init__(self, path):
        self.path = path
        self.collector = ReviewCollector(keep=(SBOM_ENTRY,))
        self.verification = None
        self.signature_path = default_signature_path(path)

    def verify(self, public_keys, signature_path=None, today=None, around=None, **options):
        """bundle.verify.verify() with the collector on the way; the Verification (VerificationError as verify).
        ``around(collector)`` gives a hook that sees the entries before the collector (e.g. an EntryExtractor's)."""
        self.signature_path = signature_path or self.signature_path
        hook = around(self.collector) if around is not None else self.collector
        verification = verify(self.path, public_keys, signature_path, today, on_entry=hook, **options)
        self.verification = verification
        return verification

    def data(self, trust_state=None, custody=None, refusal=None):
        """The sheet: of the verified bundle (refused all the same when ``refusal``, the exception that refused it,
        came after the verification, e.g. the trust state's rollback rule), or of a bundle that failed verification."""
        if self.verification is None:
            return refused_data(self.path, refusal, self.signature_path)
        verification = self.verification
        if custody is None:
            custody = custody_record(verification.metadata, verification.result)
        return sheet_data(verification.result, verification.metadata, self.collector, trust_state, custody, refusal)


def review_bundle(path, public_keys, signature_path=None, gate=None, custody=None, today=None, **options):
    """Verify the bundle and return its sheet; a refusal is part of the sheet, never raised.

    ``public_keys`` are loaded keys (bundle.verify.load_public_keys); ``gate`` an optional trust.admission.TrustGate
    whose decision is applied as petra_verify applies it; ``custody`` an optional custody record (a load's, with
    targets) instead of the one this verification gives; ``options`` those of bundle.verify.verify (``threshold``,
    ``cosignature_path``)."""
    review = Review(path)
    trust_state = None
    try:
        verification = review.verify(public_keys, signature_path, today, **options)
        if gate is not None:
            gate.admit(verification.result, verification.metadata)
            trust_state = gate.preview()
    except PetraError as exc:
        return review.data(trust_state, custody, refusal=exc)
    return review.data(trust_state, custody)


def verdict(refusal):
    if refusal is None:
        return {"status": "verified", "reason": None, "message": None, "hint": None}
    if not isinstance(refusal, PetraError):
        return {"status": "refused", "reason": "internal-error", "message": INTERNAL_ERROR % type(refusal).__name__,
                "hint": None}
    return {"status": "refused", "reason": getattr(refusal, "reason", None) or "refused", "message": refusal.message,
            "hint": refusal.hint}


def _fields(value, names):
    """The named fields of a record, each present (null when the bundle has none), so the sheet has one shape."""
    if not isinstance(value, dict):
        return None
    return {name: value.get(name) for name in names}


def _entry_sizes(metadata):
    return {"sha256:" + entry["name"][len(BLOB_PREFIX):]: entry["size"] for entry in metadata.get("entries") or []
            if entry["name"].startswith(BLOB_PREFIX)}


def _bundle_sbom_components(document):
    """bom-ref -> the bundle SBOM's component (top level), when the bundle has an SBOM."""
    if not isinstance(document, dict) or not isinstance(document.get("components"), list):
        return {}
    return {component.get("bom-ref"): component for component in document["components"]
            if isinstance(component, dict) and isinstance(component.get("bom-ref"), str)}


class _Builder:
    """Builds the items of one sheet; ``claimed`` when the metadata was not verified (sizes and contents unknown)."""

    def __init__(self, metadata, collector, custody, claimed=False):
        self.metadata = metadata
        self.collector = collector
        self.claimed = claimed
        self.sizes = _entry_sizes(metadata)
        sbom = metadata.get("sbom") or {}
        self.sbom_components = _bundle_sbom_components(collector.documents.get(sbom.get("name")))
        self.custody = {(item.get("source"), item.get("sourceDigest")): item
                        for item in (custody or {}).get("images") or []}
        self.reports = (metadata.get("scan") or {}).get("reports") or []
        self.parts = []

    def blobs(self, roots):
        return self.collector.reachable(roots) if not self.claimed else set()

    def size(self, digests):
        return sum(self.sizes.get(digest, 0) for digest in digests) if digests else None

    def sbom(self, bom_ref, carried=()):
        """What the bundle's SBOM lists for an item (its component and those nested in it), and the SBOMs carried."""
        component = self.sbom_components.get(bom_ref)
        listed = cyclonedx_summary([component]) if component is not None else None
        return {"bomRef": bom_ref if component is not None else None,
                "components": listed["components"] if listed else 0,
                "licences": listed["licences"] if listed else [],
                "carried": [dict(self.collector.sboms.get(digest) or {"format": None, "components": None,
                                                                      "licences": [], "licencesNotListed": 0},
                                 digest=digest) for digest in carried]}

    def image(self, image):
        attached = [item for item in image.get("attached") or [] if isinstance(item, dict)]
        roots = [image["digest"]] + [item["digest"] for item in attached]
        blobs = self.blobs(roots)
        carried_sboms = []
        for item in attached:
            if is_sbom(item):
                carried_sboms.extend(digest for digest in sorted(self.collector.reachable([item["digest"]]))
                                     if digest in self.collector.sboms)
        children = image.get("manifests") or []
        if children:
            platforms = [{"platform": child.get("platform"), "digest": child.get("digest")} for child in children]
        else:
            platforms = [{"platform": self.collector.platform_of(image["digest"]), "digest": image["digest"]}]
        record = self.custody.get((image.get("ref"), image.get("digest"))) or {}
        scans = [{"platform": report.get("platform"), "manifest": report.get("manifest"),
                  "findings": _ordered(report.get("findings")), "ignored": report.get("ignored") or 0,
                  "entry": report.get("entry")}
                 for report in self.reports if report.get("image") == image.get("ref")]
        self.parts.append(("image", image.get("ref"), blobs))
        return {"ref": image.get("ref"), "name": image.get("name"), "tag": image.get("tag"),
                "digest": image["digest"], "mediaType": image.get("mediaType"), "platforms": platforms,
                "size": self.size(blobs),
                "sourceSignature": _fields(image.get("sourceVerification"), SOURCE_SIGNATURE_FIELDS),
                "countersignature": _fields(image.get("countersignature"), COUNTERSIGNATURE_FIELDS),
                "attached": [{"kind": item.get("kind"), "digest": item.get("digest"), "tag": item.get("tag"),
                              "type": item.get("artifactType") or item.get("mediaType")} for item in attached],
                "sbom": self.sbom("image:%s" % image.get("ref"), carried_sboms), "scan": scans,
                "custody": {"target": record.get("target"), "signers": record.get("signers"),
                            "bundleSha256": record.get("bundleSha256")} if record else None}

    def artifact(self, kind, item, roots, bom_ref, label, **fields):
        blobs = self.blobs([digest for digest in roots if digest])
        self.parts.append((kind, label, blobs))
        result = {"name": item.get("name"), "digest": item.get("digest"), "source": item.get("source"),
                  "size": self.size(blobs),
                  "countersignature": _fields(item.get("countersignature"), COUNTERSIGNATURE_FIELDS),
                  "sbom": self.sbom(bom_ref)}
        result.update(fields)
        return result

    def chart(self, item):
        return self.artifact("chart", item, [item.get("digest")], "chart:%s@%s" % (item.get("name"), item.get("version")),
                             "%s %s" % (item.get("name"), item.get("version")), version=item.get("version"),
                             chartDigest=item.get("chartDigest"))

    def manifest_set(self, item):
        return self.artifact("manifests", item, [item.get("digest")], "manifests:%s" % item.get("name"),
                             item.get("name"), contentDigest=item.get("contentDigest"), fileCount=item.get("fileCount"))

    def file(self, item):
        return self.artifact("file", item, [item.get("manifestDigest"), item.get("digest")],
                             "file:%s" % item.get("name"), item.get("name"), filename=item.get("filename"),
                             manifestDigest=item.get("manifestDigest"))

    def breakdown(self, compressed):
        """Where the bytes go: each blob counted once, under the first item that refers to it."""
        if self.claimed:
            return None
        counted, parts = set(), []
        for kind, label, blobs in self.parts:
            shared, own = blobs & counted, blobs - counted
            counted |= own
            parts.append({"kind": kind, "label": label, "bytes": self.size(own) or 0,
                          "shared": self.size(shared) or 0})
        total = sum(entry["size"] for entry in self.metadata.get("entries") or [])
        other = total - sum(part["bytes"] for part in parts)
        parts.sort(key=lambda part: -part["bytes"])
        parts.append({"kind": "other", "label": "signatures, SBOM, scan reports, index", "bytes": max(other, 0),
                      "shared": 0})
        return {"uncompressed": total, "compressed": compressed, "parts": parts}


def _ordered(findings):
    """Severity counts, highest first, as a list (JSON objects have no reliable order for a reader)."""
    findings = findings if isinstance(findings, dict) else {}
    return [{"severity": name, "count": findings[name]} for name in SEVERITY_ORDER if findings.get(name)]


def _signatures(result):
    signers = list(result.get("signers") or [])
    threshold = result.get("threshold")
    # Co-signers who rebuilt the bundle from its spec and sources and got the same bytes (a signed statement).
    reproduced = [item.get("key_id") for item in result.get("signer_details") or []
                  if isinstance(item, dict) and item.get("reproduced") and item.get("key_id") in signers]
    return {"threshold": threshold, "met": bool(threshold) and len(signers) >= threshold,
            "primary": result.get("key_id"), "signers": signers, "reproduced": reproduced,
            "unsignedKeys": list(result.get("unsigned_keys") or []),
            "rejected": [_fields(item, ("keyId", "reason")) for item in result.get("rejected_signatures") or []]}


def _trust(trust_state):
    if not trust_state:
        return None
    return {"path": trust_state.get("path"), "head": trust_state.get("head"),
            "decision": trust_state.get("decision"), "witness": trust_state.get("witness")}


def _scan_totals(metadata):
    scan = metadata.get("scan")
    if not isinstance(scan, dict):
        return None
    totals = {}
    for report in scan.get("reports") or []:
        for name, count in (report.get("findings") or {}).items():
            totals[name] = totals.get(name, 0) + count
    return {"scanner": scan.get("scanner"), "failOn": scan.get("failOn"), "ignoreFile": scan.get("ignoreFile"),
            "reports": len(scan.get("reports") or []), "findings": _ordered(totals)}


def sheet_data(result, metadata, collector, trust_state=None, custody=None, refusal=None, claimed=False):
    """The sheet document from a verification result, the (complete) signed metadata and the collector."""
    build = _Builder(metadata, collector, custody, claimed)
    images = [build.image(item) for item in metadata.get("images") or []]
    charts = [build.chart(item) for item in metadata.get("charts") or []]
    manifests = [build.manifest_set(item) for item in metadata.get("manifests") or []]
    files = [build.file(item) for item in metadata.get("files") or []]
    sbom = metadata.get("sbom")
    document = collector.documents.get(sbom.get("name")) if isinstance(sbom, dict) else None
    return {
        "apiVersion": API_VERSION, "kind": KIND, "formatVersion": FORMAT_VERSION,
        "verdict": verdict(refusal),
        "claimed": claimed,
        "bundle": {"path": result.get("path"), "file": os.path.basename(result.get("path") or ""),
                   "name": metadata.get("name"), "version": metadata.get("version"),
                   "created": metadata.get("created"), "expires": metadata.get("expires"),
                   "sha256": result.get("sha256"), "size": result.get("size"),
                   "signature": result.get("signature"), "entries": len(metadata.get("entries") or []),
                   "signer": (metadata.get("signer") or {}).get("keyId")},
        "signatures": _signatures(result),
        "trustState": _trust(trust_state),
        "acceptance": (custody or {}).get("acceptance"),
        "sbom": dict(cyclonedx_summary(document.get("components"), document.get("specVersion")),
                     entry=sbom.get("name"), digest=sbom.get("digest")) if isinstance(document, dict) else None,
        "scan": _scan_totals(metadata),
        "images": images, "charts": charts, "manifests": manifests, "files": files,
        "sizes": build.breakdown(result.get("size")),
        "unreadDocuments": len(collector.unread),
    }


def refused_data(path, refusal, signature_path=None):
    """The sheet of a bundle that failed verification: the refusal, the file, and what the bundle claims (its first
    entry, read again and marked as unverified), so that the reviewer knows what was refused."""
    details = getattr(refusal, "details", None) or {}
    result = {"path": path, "signature": signature_path, "signers": details.get("signers"), "unsigned_keys": details.get("unsigned_keys"),
              "rejected_signatures": details.get("rejected_signatures")}
    try:
        result["size"] = os.path.getsize(path)
    except OSError:
        result["size"] = None
    claimed = read_metadata(path) if result["size"] is not None else None
    if claimed is None:
        data = sheet_data(result, {}, ReviewCollector(), refusal=refusal, claimed=True)
        data["bundle"]["entries"] = None
        return data
    return sheet_data(result, claimed, ReviewCollector(), refusal=refusal, claimed=True)
