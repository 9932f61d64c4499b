# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Checks over custody: the trust state's chain, complete custody records, the registry still holding exactly what
was loaded (SI-7), and every running container traced to a custody record (SR-4)."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.errors import PetraError
from ansible_collections.petra.core.plugins.module_utils.evidence.checks import check
from ansible_collections.petra.core.plugins.module_utils.oci.reference import ImageReference

STATE = "custody/trust-state.json"
RECORDS = "custody/records.json"
TRANSFERS = "custody/transfers.json"
REQUIRED = ("source", "sourceDigest", "bundleSha256", "signers")


def repository_name(text):
    """``host/path`` of an image reference or a running container's imageID, or None when it names no repository."""
    text = (text or "").split("://", 1)[-1]
    try:
        reference = ImageReference.parse(text)
    except PetraError:
        return None
    return "%s/%s" % (reference.registry, reference.repository)


def _records(document):
    return [entry["record"] for entry in document.get("records") or [] if "record" in entry]


@check("custody.trust-state", "The trust state's hash chain holds", ["sr-4_obj-3", "si-7_obj.a-3"], [STATE])
def trust_state(state, params):
    if state["chain"] != "valid":
        return ["the trust state %s does not prove: %s" % (state["file"], state["error"])]
    return [] if state["entries"] else ["the trust state %s records no accepted bundle" % state["file"]]


@check("custody.records-documented", "Every loaded bundle has a custody record naming source, digest, signers and "
       "the verified source signature of each image", ["sr-4_obj-1"], [STATE, RECORDS])
def records_documented(state, records, params):
    problems = ["%s is unreadable: %s" % (entry["file"], entry["error"]) for entry in records.get("records") or []
                if "error" in entry]
    found = _records(records)
    if not found:
        problems.append("no custody record exists beside the trust state")
    accepted = {(entry["name"], entry["version"], entry["sha256"]) for entry in state.get("entries") or []}
    for record in found:
        bundle = record.get("bundle") or {}
        label = "%s %s" % (bundle.get("name"), bundle.get("version"))
        if accepted and (bundle.get("name"), bundle.get("version"), bundle.get("sha256")) not in accepted:
            problems.append("the custody record of %s names a bundle the trust state never accepted" % label)
        for image in record.get("images") or []:
            missing = [field for field in REQUIRED if not image.get(field)]
            if missing:
                problems.append("%s: image %s lacks %s" % (label, image.get("source"), ", ".join(missing)))
            signature = image.get("sourceSignature") or {}
            if signature.get("method") in (None, "none"):
                problems.append("%s: the source signature of %s was not verified when the bundle was built" % (
                    label, image.get("source")))
    return problems


@check("custody.registry-intact", "The registry serves every loaded image unchanged, with all its blobs",
       ["si-7_obj.a-1", "sr-4_obj-3"], [RECORDS, "custody/registry.json"])
def registry_intact(records, registry, params):
    problems = [] if registry.get("images") else ["no custody record names an image loaded into a registry"]
    for item in registry.get("images") or []:
        target = item["target"]
        if item.get("error"):
            problems.append("%s could not be checked: %s" % (target, item["error"]))
            continue
        if item["manifest"] != "present":
            problems.append("%s: the loaded manifest %s is %s" % (target, item["digest"], item["manifest"]))
        if item.get("tagDigest") and item["tagDigest"] != item["digest"]:
            problems.append("%s: the tag now points at %s, not the loaded %s (replaced after the load)" % (
                target, item["tagDigest"], item["digest"]))
        elif item.get("tagDigest") is None and ":" in target.split("@")[0].rsplit("/", 1)[-1]:
            problems.append("%s: the tag no longer exists" % target)
        if item["missingBlobs"]:
            problems.append("%s: %d blob(s) are gone: %s" % (target, len(item["missingBlobs"]),
                                                             ", ".join(item["missingBlobs"])))
        problems.extend("%s: index child %s is served with another digest" % (target, child["digest"])
                        for child in item["children"] if child["manifest"] == "mismatch")
    return problems


@check("custody.running-images", "Every running container's image digest is in a custody record and comes from the "
       "high-side registry", ["sr-4_obj-2", "si-7_obj.a-1", "cm-7_obj.b-4"], ["cluster/pods.json", RECORDS])
def running_images(pods, records, params):
    digests, names = set(), set()
    for record in _records(records):
        for image in record.get("images") or []:
            digests.add(image.get("sourceDigest"))
            for reference in (image.get("source"), image.get("target")):
                name = repository_name(reference)
                if name:
                    names.add(name)
    registries = set(params.get("registries") or [])
    problems, notes = [], []
    for pod in pods.get("pods") or []:
        for status in (pod.get("initContainerStatuses") or []) + (pod.get("containerStatuses") or []):
            where = "namespace %s, pod %s, container %s" % (pod["namespace"], pod["name"], status["name"])
            image_id = status.get("imageID") or ""
            if not image_id:
                notes.append("%s has not started (no image digest yet): image %s" % (where, status.get("image")))
                continue
            digest = image_id.rsplit("@", 1)[-1] if "@" in image_id else None
            name = repository_name(image_id) if digest else None
            if digest is None or name is None:
                problems.append("%s runs %s (%s), which names no repository digest to trace" % (
                    where, status.get("image"), image_id))
            elif digest not in digests:
                problems.append("%s runs %s (%s), which no bundle carried" % (where, status.get("image"), digest))
            elif name not in names and name.split("/", 1)[0] not in registries:
                problems.append("%s runs %s from %s, not from the high-side registry or a source a bundle named" % (
                    where, digest, name))
    return problems, notes


@check("custody.transfer-records", "Every loaded bundle crossed with a signed part index naming its SHA-256 (and, "
       "through AWS Diode, a receipt of that index)", ["sr-4_obj-1", "si-7_obj.a-1"], [RECORDS, TRANSFERS])
def transfer_records(records, transfers, params):
    indexes = [item for item in transfers.get("records") or [] if item["kind"] == "part-index"]
    receipts = [item for item in transfers.get("records") or [] if item["kind"] == "receipt"]
    crossed = {}
    for item in indexes:
        if item["verified"]:
            crossed.setdefault(item["bundle"]["sha256"], []).append(item)
    refused = ["%s (%s)" % (item["file"], item["error"]) for item in indexes if not item["verified"]]
    problems, notes = [], []
    for record in _records(records):
        bundle = record.get("bundle") or {}
        label = "%s %s (sha256 %s)" % (bundle.get("name"), bundle.get("version"), bundle.get("sha256"))
        found = crossed.get(bundle.get("sha256"))
        if not found:
            problems.append("bundle %s has no transfer record: no part index that verifies names it%s" % (
                label, "; refused: " + ", ".join(refused) if refused else ""))
            continue
        for index in found:
            problems += _receipt_problems(index, receipts, label)
            if not any(entry["file"] == index["file"] for receipt in receipts for entry in receipt["files"]):
                notes.append("bundle %s crossed with %s; no Diode receipt names it (a directory transport)" % (
                    label, index["file"]))
    return problems, notes


def _receipt_problems(index, receipts, label):
    problems = []
    for receipt in receipts:
        for entry in receipt["files"]:
            if entry["file"] != index["file"]:
                continue
            if entry["sha256"] != index["sha256"]:
                problems.append("bundle %s: receipt %s records %s with sha256 %s, the index kept hashes to %s" % (
                    label, receipt["file"], index["file"], entry["sha256"], index["sha256"]))
            failed = ["%s %s" % (item["file"], item["status"]) for item in receipt["files"]
                      if item["status"] != "SUCCEEDED"]
            if failed:
                problems.append("bundle %s: receipt %s records transfers that did not succeed: %s" % (
                    label, receipt["file"], ", ".join(failed)))
    return problems
