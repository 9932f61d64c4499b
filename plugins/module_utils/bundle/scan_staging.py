# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The scan gate in the bundle plan: every planned image is staged on disk as an OCI layout, scanned
(custody/scan.py runs the scanner and judges its findings), and its report added as a named entry. The SBOM
generation (image_sboms.py) stages the images it needs the same way, into the same store.

The plan's layers are then taken from the staged files, so the bundle carries exactly the bytes that were scanned,
fetched from the registry once.
"""

from __future__ import annotations

import hashlib
import os

from ansible_collections.petra.core.plugins.module_utils.bundle import artifacts
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError
from ansible_collections.petra.core.plugins.module_utils.bundle.prefetch import prefetched
from ansible_collections.petra.core.plugins.module_utils.custody import scan as custody_scan
from ansible_collections.petra.core.plugins.module_utils.oci.blobs import Blob, digest_of
from ansible_collections.petra.core.plugins.module_utils.oci.errors import OCIError


def _stage_blob(blob, store):
    """Write a blob to the staging store (checking digest and size) and return its path."""
    path = os.path.join(store, blob.digest.split(":", 1)[1])
    # Layers shared by several images are staged once. The name appears only after the bytes were checked; the
    # store is scratch space removed after the build, so nothing here needs atomic.py's syncs.
    if os.path.exists(path):
        return path
    hasher = hashlib.sha256()
    size = 0
    with open(path + ".part", "wb") as handle:
        for chunk in prefetched(blob.chunks()):
            hasher.update(chunk)
            size += len(chunk)
            handle.write(chunk)
    if "sha256:" + hasher.hexdigest() != blob.digest or size != blob.size:
        raise BundleError("blob %s arrived with %d bytes hashing to sha256:%s" % (blob.digest, size, hasher.hexdigest()),
                          hint="The registry content is corrupt or was tampered with")
    os.replace(path + ".part", path)
    return path


def stage_targets(plan, staging, images, prefix):
    """Stage each image's platform manifests (or its one manifest) as OCI layouts in ``staging``: yields (image,
    manifest digest, platform, work directory, layout). Blobs go to one store, shared by the scan and the SBOM
    generation, so each is fetched once; the plan's blobs are switched to the staged files."""
    store = os.path.join(staging, "blobs")
    os.makedirs(store, exist_ok=True)
    count = 0
    for image in images:
        targets = [(child["digest"], child.get("platform") or "") for child in image.get("manifests") or []] or \
            [(image["digest"], "")]
        for manifest_digest, platform in targets:
            data = plan.blobs[manifest_digest].data
            blob_paths = {}
            for descriptor in artifacts.image_blob_descriptors(data, image["ref"]):
                blob = plan.blobs[descriptor["digest"]]
                try:
                    blob_paths[blob.digest] = path = _stage_blob(blob, store)
                except OCIError as exc:
                    raise BundleError("fetching %s of %s failed: %s" % (blob.digest, image["ref"], exc.message),
                                      hint=exc.hint)
                plan.blobs[blob.digest] = Blob(blob.digest, blob.size, blob.media_type, path=path)
            work = os.path.join(staging, "%s-%d" % (prefix, count))
            count += 1
            layout = custody_scan.stage_layout(os.path.join(work, "layout"), manifest_digest, data, blob_paths)
            yield image, manifest_digest, platform, work, layout


def scan_plan(plan, scanner, staging):
    """Stage every image (one OCI layout per platform manifest, layers on disk in ``staging``), scan it, add the
    reports as entries, and stop the build on findings at or above the threshold that are not ignored.

    The plan's layers are switched to the staged files, so the bundle carries exactly what was scanned."""
    executable = scanner.resolve()
    reports, blocked = [], []
    for image, manifest_digest, platform, work, layout in stage_targets(plan, staging, plan.images, "scan"):
        report_path = os.path.join(work, "report.json")
        raw = scanner.scan(executable, layout, report_path)
        counts, blocking, ignored = custody_scan.evaluate(scanner.parse(raw), scanner.ignore_rules,
                                                          scanner.fail_on)
        label = image["ref"] + (" (%s)" % platform if platform else "")
        if blocking:
            blocked.append((label, blocking))
        name = custody_scan.report_entry_name(scanner.name, manifest_digest)
        report = Blob(digest_of(raw), len(raw), "application/json", path=report_path)
        plan.named.append((name, report))
        reports.append({"image": image["ref"], "manifest": manifest_digest, "platform": platform, "entry": name,
                        "digest": report.digest, "findings": counts, "ignored": ignored})
    if blocked:
        raise custody_scan.ScanError(
            custody_scan.gate_message(blocked, scanner.fail_on),
            hint="Rebuild with fixed images, or record accepted findings in scan.ignore_file", reason="vulnerabilities",
            findings=[{"image": label, "id": f.id, "package": f.package, "version": f.version, "severity": f.severity,
                       "fixed": f.fixed} for label, findings in blocked for f in findings])
    summary = {"scanner": scanner.name, "failOn": scanner.fail_on, "reports": reports}
    if scanner.ignore_digest:
        summary["ignoreFile"] = scanner.ignore_digest
    plan.metadata["scan"] = summary
    plan.list_entries()
    return summary
