# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Bundle creation, start to end: plan from the spec (planner.py, custody_plan.py), confirm an existing bundle that
already is what these inputs produce, otherwise scan (scan_staging.py) and write the signed archive beside ``dest``
(writer.py).

The creation time is stated by the user or read from the sources (timing.py), never taken from the clock unasked.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time

from ansible_collections.petra.core.plugins.module_utils.bundle import delta as bundle_delta
from ansible_collections.petra.core.plugins.module_utils.bundle import delta_record
from ansible_collections.petra.core.plugins.module_utils.bundle import timing
from ansible_collections.petra.core.plugins.module_utils.bundle.archive import DEFAULT_LEVEL
from ansible_collections.petra.core.plugins.module_utils.bundle.completeness import warnings as image_completeness_warnings
from ansible_collections.petra.core.plugins.module_utils.bundle.custody_plan import CreationCustody
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError
from ansible_collections.petra.core.plugins.module_utils.bundle.image_sboms import generate_sboms, generating
from ansible_collections.petra.core.plugins.module_utils.bundle.planner import Planner
from ansible_collections.petra.core.plugins.module_utils.bundle.reader import read_metadata
from ansible_collections.petra.core.plugins.module_utils.bundle.scan_staging import scan_plan
from ansible_collections.petra.core.plugins.module_utils.bundle.writer import (
    existing_signature_valid, file_digests, write_bundle)
from ansible_collections.petra.core.plugins.module_utils.custody import image_sbom
from ansible_collections.petra.core.plugins.module_utils.custody import scan as custody_scan
from ansible_collections.petra.core.plugins.module_utils.custody.sbom import ENTRY_NAME as SBOM_NAME
from ansible_collections.petra.core.plugins.module_utils.oci.errors import RegistryError
from ansible_collections.petra.core.plugins.module_utils.progress import or_null
from ansible_collections.petra.core.plugins.module_utils.signing import keys as signing_keys


def stable_metadata(metadata):
    """The metadata without what records when and how checks ran (verification times, scan reports): two builds
    of the same content compare equal on this."""
    copy = json.loads(json.dumps(metadata))
    for image in copy.get("images") or []:
        (image.get("sourceVerification") or {}).pop("verifiedAt", None)
    copy.pop("scan", None)
    copy["entries"] = [entry for entry in copy.get("entries") or []
                       if not entry["name"].startswith(custody_scan.REPORT_PREFIX)]
    return copy


def plan_bundle(spec, pool, created, spool_dir, custody, signer_id, level, base=None, image_completeness=None,
                high_side=None):
    """The plan of a bundle (a delta on ``base`` when given) and the image completeness report (None when not
    asked for); a registry failure is reported as a BundleError."""
    try:
        planner = Planner(spec, pool, created, spool_dir, custody, image_completeness, high_side)
        built = planner.build(signer_id, level)
        return (built if base is None else bundle_delta.apply(built, base)), planner.completeness
    except RegistryError as exc:
        raise BundleError(exc.message, hint=exc.hint)


def _image_result(item):
    result = {"ref": item["ref"], "digest": item["digest"]}
    if item.get("sourceVerification"):
        result["source_verification"] = item["sourceVerification"]
    if item.get("provenance"):
        result["provenance"] = item["provenance"]
    if item.get("sbom"):
        result["sbom_origin"] = item["sbom"]["origin"]
        result["sbom_digests"] = image_sbom.record_digests(item["sbom"])
    return result


def _content(plan):
    """What the bundle carries (a delta: without what it leaves out); generated SBOMs add to it once made."""
    carried = [blob.size for digest, blob in plan.blobs.items() if digest not in plan.omitted]
    return {"blob_count": len(carried), "content_size": sum(carried)}


def _sbom_result(plan):
    document = next(blob.data for name, blob in plan.named if name == SBOM_NAME)
    return dict(plan.metadata["sbom"], document=json.loads(document))


def create_bundle(spec, dest, signer, pool, signature_path=None, level=DEFAULT_LEVEL, check_mode=False,
                  force=False, environ=None, mode=0o644, verifier=None, scanner=None, sbom=True, base=None,
                  progress=None, sbom_generate=False, image_completeness=None, high_side=None):
    """Create (or confirm) the bundle; returns the module result without ``changed`` semantics lost.

    ``verifier`` (custody.verification.SourceVerifier) applies the verify_images policy; ``scanner``
    (custody.scan.Scanner) is the vulnerability gate; ``sbom`` adds the bundle's CycloneDX SBOM; ``sbom_generate``
    has syft describe each image that carries no SBOM, attested with the bundle key (image_sboms.py); ``base``
    (delta.DeltaBase) makes it a delta that leaves out the layers the base provides; ``progress``
    (progress.Progress) counts what is written, or skipped when the bundle is already there;
    ``image_completeness`` (completeness.MODES) checks that every image the manifests and charts reference is
    carried (None: not checked); ``high_side`` (``host[:port][/prefix]``, the load target) is the registry whose
    names the manifests may use for carried images (None: references are matched and resolved as written)."""
    started = time.monotonic()
    progress = or_null(progress)
    signature_path = signature_path or dest + ".sig"
    created = timing.stated_created(spec.created, os.environ if environ is None else environ)
    signer_id = signing_keys.key_id(signer.public_key())
    spool_dir = os.path.dirname(os.path.abspath(dest))
    spool_dir = spool_dir if os.path.isdir(spool_dir) else None
    existing = read_metadata(dest) if (os.path.isfile(dest) and not force) else None
    custody = CreationCustody(signer, verifier, scanner, existing, sbom, sbom_generate)

    completeness = []

    def make_plan(moment):
        built, report = plan_bundle(spec, pool, moment, spool_dir, custody, signer_id, level, base,
                                    image_completeness, high_side)
        completeness[:] = [report]
        return built

    plan = None
    if existing is not None and created is not None and created.source == timing.FROM_CLOCK:
        # A wall-clock time was asked for: the existing bundle's time is the one to reproduce. If the content is
        # unchanged, the plan made with it is identical and nothing needs rewriting.
        try:
            moment = timing.recorded(existing["created"])
        except ValueError:
            moment = None
        plan = make_plan(moment) if moment is not None else None
        if plan is not None and stable_metadata(plan.metadata) != stable_metadata(existing):
            plan = None
    if plan is None:
        plan = make_plan(created)
    result = {
        "path": dest,
        "signature": signature_path,
        "key_id": signer_id,
        "name": spec.name,
        "version": spec.version,
        "images": [_image_result(item) for item in plan.images],
        "charts": [{"name": c["name"], "version": c["version"], "digest": c["digest"]} for c in plan.charts],
        "manifests": [{"name": m["name"], "digest": m["digest"]} for m in plan.manifests],
        "files": [{"name": f["name"], "digest": f["digest"], "size": f["size"]} for f in plan.files],
        "created_from": plan.created.source,
        "delta": delta_record.summary(plan.metadata),
    }
    result.update(_content(plan))
    if image_completeness:
        result["image_completeness"] = completeness[0]
        warnings = image_completeness_warnings(completeness[0])
        if warnings:
            result["warnings"] = warnings
    if plan.metadata.get("sbom"):
        result["sbom"] = _sbom_result(plan)
    if existing is not None and stable_metadata(existing) == stable_metadata(plan.metadata) and \
            custody.scan_settled(existing) and existing_signature_valid(dest, signature_path, signer):
        digests = file_digests(dest, ["sha256"])
        entries = plan.entries()
        progress.stage("write", sum(blob.size for _name, blob in entries), len(entries), unit="entries")
        progress.advance(sum(blob.size for _name, blob in entries), len(entries), skipped=True)
        result.update(changed=False, sha256=digests["sha256"].hex(), size=os.path.getsize(dest),
                      created=existing["created"], duration=round(time.monotonic() - started, 3))
        if existing.get("scan"):
            result["scan"] = existing["scan"]
        return result
    result["created"] = plan.created.text
    if check_mode:
        if scanner is not None:
            scanner.resolve()
            result["scan"] = {"scanner": scanner.name, "failOn": scanner.fail_on, "reports": None}
        result.update(changed=True, sha256=None, size=None, duration=round(time.monotonic() - started, 3))
        return result
    staged = scanner is not None or generating(plan)
    staging = tempfile.mkdtemp(dir=spool_dir, prefix=".petra-scan-") if staged else None
    try:
        if staging and generate_sboms(plan, custody, staging):
            # What was generated is now known: the images' records and the bundle SBOM that references them.
            result["images"] = [_image_result(item) for item in plan.images]
            result.update(_content(plan))
            if plan.metadata.get("sbom"):
                result["sbom"] = _sbom_result(plan)
        if scanner is not None:
            result["scan"] = scan_plan(plan, scanner, staging)
        written = write_bundle(plan, dest, signature_path, signer, plan.created.epoch, level, mode, progress)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    result.update(changed=True, duration=round(time.monotonic() - started, 3), **written)
    return result
