# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Loading a delta bundle: before anything is pushed, every blob it leaves out must already be in the target
registry, in each repository that needs it or in another repository it can be mounted from.

Nothing can travel back to the low side, so a missing blob is refused up front with what to bring instead: the
bundle that carries it (the delta's base, or a bundle further down its chain), named by name, version and SHA-256.
"""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.load.errors import LoadError

SHOWN = 5  # missing blobs named in the message; the rest are counted


def omitted(metadata):
    """{digest: omitted record} of a delta's metadata; empty for a full bundle."""
    return {item["digest"]: item for item in (metadata.get("delta") or {}).get("omitted") or []}


def check_present(metadata, pending, presence, items, blob_exists, target):
    """Make sure every blob the delta leaves out is where the pending items need it, or mountable there.

    ``presence`` ({(repository, digest): bool}, from HEAD requests) gains the other repositories where an omitted
    blob was found, so the upload mounts it from there. Raises LoadError, before anything is pushed, naming the
    missing blobs and the bundles that carry them."""
    left_out = omitted(metadata)
    if not left_out:
        return presence
    needed = {}
    for item in pending:
        for digest in item.blobs:
            if digest in left_out:
                needed.setdefault(digest, set()).add(item.repository)
    absent = {digest for digest, repositories in needed.items()
              if not any(presence.get((repository, digest)) for repository in repositories)}
    # Not where it is needed: perhaps in another repository of this bundle's content (the base loaded it there).
    elsewhere = sorted({(item.repository, digest) for item in items for digest in item.blobs
                        if digest in absent and (item.repository, digest) not in presence})
    for pair in elsewhere:
        if blob_exists(*pair):
            presence[pair] = True
            absent.discard(pair[1])
    if absent:
        raise missing_error(metadata, sorted(absent), target)
    return presence


def refuse_unmountable(metadata, unmounted, target):
    """After mounting: an omitted blob the registry would not mount cannot be sent from the bundle instead."""
    left_out = omitted(metadata)
    stuck = sorted(digest for digest in unmounted if digest in left_out)
    if stuck:
        raise LoadError(
            "registry %s would not mount blob%s %s, which the delta %s %s leaves out: it is in the registry, but not "
            "in the repositor%s that need it, and the bundle does not carry it; manifests and tags were not pushed" % (
                target.host, "s" if len(stuck) > 1 else "", ", ".join(stuck), metadata["name"], metadata["version"],
                "ies" if len(stuck) > 1 else "y"),
            hint="Allow cross-repository mounts for the loading user on %s, or load the full bundle" % target.host)


def missing_error(metadata, missing, target):
    delta = metadata["delta"]
    left_out = omitted(metadata)
    carriers = {item["sha256"]: item for item in delta["carriers"]}
    by_carrier = {}
    for digest in missing:
        by_carrier.setdefault(left_out[digest]["carrier"], []).append(digest)
    size = sum(left_out[digest]["size"] for digest in missing)
    shown = ", ".join("%s (%d bytes)" % (digest, left_out[digest]["size"]) for digest in missing[:SHOWN])
    if len(missing) > SHOWN:
        shown += " and %d more" % (len(missing) - SHOWN)
    carried = "; ".join("%d carried by %s %s (sha256 %s)" % (
        len(digests), carriers[sha256]["name"], carriers[sha256]["version"], sha256)
        for sha256, digests in sorted(by_carrier.items(), key=lambda pair: pair[0] != delta["base"]["sha256"]))
    base = delta["base"]
    return LoadError(
        "the delta bundle %s %s leaves out %d blob%s (%d bytes) that registry %s does not hold: %s; %s. A delta "
        "loads only where its base %s %s (sha256 %s) was loaded before; nothing was pushed" % (
            metadata["name"], metadata["version"], len(missing), "s" if len(missing) > 1 else "", size, target, shown,
            carried, base["name"], base["version"], base["sha256"]),
        hint="Load the bundle(s) named as carrying them into %s first (a delta's base, and its own base if it is a "
             "delta too), then this delta again; or ask for the full bundle of %s %s. Nothing needs to travel back "
             "to the low side" % (target, metadata["name"], metadata["version"]),
        reason="delta-base-missing", missing_blobs=missing, carriers=[carriers[sha256] for sha256 in by_carrier])
