# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The SBOMs Petra generates, put into the plan before it is written: every image planned with ``sbom.origin: petra``
(it carries no SBOM of its own) is staged as an OCI layout (scan_staging.py), described by syft, and its SBOM
attested with the bundle key (custody/image_sbom.py), one attestation per platform manifest, each a referrer of the
image. The records made while planning (empty, or the existing bundle's) are replaced by what was made; when that
differs, the bundle's SBOM, which references them, is made again.
"""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.bundle.scan_staging import stage_targets
from ansible_collections.petra.core.plugins.module_utils.custody import image_sbom
from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes
from ansible_collections.petra.core.plugins.module_utils.oci.blobs import EMPTY_JSON, Blob


def generating(plan):
    """The planned images whose SBOM Petra makes."""
    return [image for image in plan.images if (image.get("sbom") or {}).get("origin") == "petra"]


def generate_sboms(plan, custody, staging):
    """Generate, attest and add the SBOMs of ``generating(plan)``; returns how many attestations were made."""
    images = generating(plan)
    made = {}
    for image, manifest_digest, platform, work, layout in stage_targets(plan, staging, images, "sbom"):
        document = custody.syft.generate(layout, work, image["name"], manifest_digest)
        made.setdefault(image["ref"], []).append(custody.attest_sbom(
            image, plan.blobs[image["digest"]].size, document, manifest_digest, platform))
    changed = False
    for image in images:
        attestations = made.get(image["ref"], [])
        planned = image["sbom"]["attestations"]
        records = [item.record for item in attestations]
        if records != planned:
            # The existing bundle's records stood in for these: their blobs were named, never fetched.
            stale = {record[key] for record in planned for key in ("manifest", "digest")}
            for digest in stale:
                plan.blobs.pop(digest, None)
            image["attached"] = [item for item in image.get("attached") or [] if item["digest"] not in stale] + \
                [item.attached() for item in attestations]
            image["sbom"]["attestations"] = records
            changed = True
        for item in attestations:
            plan.blobs.pop(item.record["manifest"], None)
            plan.blobs.pop(item.record["digest"], None)
            plan.add_blob(Blob.from_bytes(item.manifest, mediatypes.OCI_MANIFEST))
            plan.add_blob(Blob.from_bytes(item.bundle, image_sbom.BUNDLE_TYPE))
            plan.add_blob(Blob.from_bytes(EMPTY_JSON, mediatypes.OCI_EMPTY))
    if changed and plan.metadata.get("sbom"):
        plan.metadata["sbom"] = custody.add_sbom(plan, plan.metadata["name"], plan.metadata["version"], plan.created)
    plan.list_entries()
    return sum(len(items) for items in made.values())
