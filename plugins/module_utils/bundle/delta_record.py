# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The signed ``delta`` record of a delta bundle (see delta.py and docs/bundle-spec.md, "Delta bundles"): what
verification reports about it and checks in it, and the carried blobs a later delta may rest on."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.bundle.errors import VerificationError

BLOB_PREFIX = "blobs/sha256/"
REBUILD = "Do not use this bundle: rebuild the delta from its base bundle, or from what petra_verify returned for it"


def carried_blobs(metadata):
    """[{digest, size}] of every blob a verified bundle carries (what petra_verify returns as ``carried_blobs``)."""
    return [{"digest": "sha256:" + entry["name"][len(BLOB_PREFIX):], "size": entry["size"]}
            for entry in metadata["entries"] if entry["name"].startswith(BLOB_PREFIX)]


def summary(metadata):
    """What verification and load report about a delta: its base and what it leaves out; None for a full bundle."""
    delta = metadata.get("delta")
    if not delta:
        return None
    return {"base": delta["base"], "omitted_blobs": len(delta["omitted"]), "omitted_bytes": delta["omittedSize"],
            "carriers": delta["carriers"]}


def problem(metadata):
    """A VerificationError when the signed delta record contradicts itself or the entries, else None."""
    delta = metadata.get("delta")
    if not delta:
        return None
    carried = {"sha256:" + entry["name"][len(BLOB_PREFIX):] for entry in metadata["entries"]
               if entry["name"].startswith(BLOB_PREFIX)}
    carriers = {item["sha256"] for item in delta["carriers"]}
    message = None
    if not delta["carriers"] or delta["carriers"][0] != delta["base"]:
        message = "its carriers do not start with its base"
    elif sum(item["size"] for item in delta["omitted"]) != delta["omittedSize"]:
        message = "omittedSize is not the sum of the omitted blobs' sizes"
    for item in delta["omitted"]:
        if message:
            break
        if item["digest"] in carried:
            message = "blob %s is both carried and listed as omitted" % item["digest"]
        elif item["carrier"] not in carriers:
            message = "omitted blob %s names carrier %s, which the carriers do not list" % (item["digest"],
                                                                                            item["carrier"])
    if message is None:
        return None
    return VerificationError("the bundle's delta record is inconsistent: %s" % message, hint=REBUILD,
                             reason="metadata")
