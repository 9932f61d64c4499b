# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Whether a bundle carries what its manifests and charts reference, and the report of it.

An image reference is satisfied by a bundle image of the same repository (Docker Hub short names normalised:
``nginx`` is ``docker.io/library/nginx``) and the same tag, or the same digest (the image's own, or one of its
index's manifests). The name may also be the one the load step gives the image on the high side,
``<registry>[/<prefix>]/<source host>/<source path>``, since manifests rendered for the high side use it, but only
below the high-side registry the build was told (``high_side``): any other registry's name is taken as written, so
``evil.example/x/cgr.dev/chainguard/nginx`` is not ``cgr.dev/chainguard/nginx``.
An artifact (an ``oci://`` URL) is satisfied by a chart, a manifest set or an image of the bundle under its source
name or its loaded name (``charts/<name>``, ``manifests/<bundle>/<set>``) and version.
"""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.oci.errors import InvalidReference
from ansible_collections.petra.core.plugins.module_utils.oci.reference import ImageReference

PRESENT, MISSING, MAYBE, UNUSED = "present", "missing", "maybe", "unused"


def host_component(registry):
    """A registry host as the load step writes it in a repository path (load/targets.py: ``host:5000`` becomes
    ``host-5000``)."""
    return registry.lower().strip("[]").replace("]:", "-").replace(":", "-")


def high_side_name(high_side, name):
    """The part of ``name`` below the high-side registry and prefix ``high_side`` (``host[:port][/prefix]``), or
    None when ``name`` is not below it (or no high side is known)."""
    if not high_side:
        return None
    below = high_side.strip("/").lower() + "/"
    return name[len(below):] if name.lower().startswith(below) else None


class Carried:
    """What a bundle carries, as the plan's metadata records it."""

    def __init__(self, images, charts, manifests, bundle_name, bundle_version, high_side=None):
        self.high_side = high_side  # the load target (host[:port][/prefix]) the manifests may name, or None
        self.images = []
        for entry in images:
            ref = ImageReference.parse(entry["ref"])
            digests = {entry["digest"]} | {child["digest"] for child in entry.get("manifests") or []}
            self.images.append((ref, host_component(ref.registry) + "/" + ref.repository, digests, entry))
        self.charts = charts
        self.manifests = manifests
        self.bundle_name = bundle_name
        self.bundle_version = bundle_version

    def _named(self, name, wanted):
        """``name`` is ``wanted`` itself or ``wanted`` below the high-side registry and prefix."""
        return name == wanted or high_side_name(self.high_side, name) == wanted

    def image(self, ref):
        """The bundle image entry that satisfies an ImageReference, or None."""
        for carried, loaded_name, digests, entry in self.images:
            if ref.name != carried.name and not self._named(ref.name, loaded_name):
                continue
            if ref.digest in digests if ref.digest else (ref.tag is not None and ref.tag == carried.tag):
                return entry
        return None

    def artifact(self, url, version):
        """True when an ``oci://`` URL (with a tag, digest or version from its object) is in the bundle."""
        name = url[len("oci://"):] if url.startswith("oci://") else url
        if "@" in name:
            name, version = name.split("@", 1)
        elif ":" in name.rsplit("/", 1)[-1]:
            name, version = name.rsplit(":", 1)
        for chart in self.charts:
            source = chart.get("source") or ""
            wanted = source[len("oci://"):] if source.startswith("oci://") else "charts/" + chart["name"]
            if not self._named(name, wanted) and not (source.startswith("oci://") and
                                                      self._named(name, _loaded(wanted))):
                continue
            if not version or version in (chart["version"], chart["version"].replace("+", "_"), chart["digest"]):
                return True
        for item in self.manifests:
            if self._named(name, "manifests/%s/%s" % (self.bundle_name, item["name"])):
                if not version or version in (self.bundle_version, self.bundle_version.replace("+", "_"),
                                              item["digest"]):
                    return True
        try:
            ref = ImageReference.parse("%s%s" % (name, ("@" if version.startswith("sha256:") else ":") + version
                                                 if version else ""))
        except InvalidReference:
            return False
        return self.image(ref) is not None


def _loaded(source_name):
    host, _sep, path = source_name.partition("/")
    return host_component(host) + "/" + path


def classify(reference, carried):
    """(status, normalised key, detail) of one objects.Reference against what the bundle carries."""
    if reference.kind == "artifact":
        key = reference.text + ("@" + reference.version if reference.version else "")
        if reference.maybe:
            return MAYBE, key, reference.maybe
        if reference.disabled:
            return UNUSED, key, reference.disabled
        return (PRESENT if carried.artifact(reference.text, reference.version) else MISSING), key, None
    if reference.text is None:
        return MAYBE, "(unknown)", reference.maybe
    try:
        ref = ImageReference.parse(reference.text)
    except InvalidReference as exc:
        return MAYBE, reference.text, "not a valid image reference: %s" % exc.message
    key = str(ref)
    if reference.maybe:
        return MAYBE, key, reference.maybe
    entry = carried.image(ref)
    if entry is not None:
        return PRESENT, key, entry["ref"]
    if reference.disabled:
        return UNUSED, key, reference.disabled
    return MISSING, key, None


# When one image is referenced several times, the strongest status speaks for it.
_RANK = {PRESENT: 3, MISSING: 2, MAYBE: 1, UNUSED: 0}


def report(references, carried):
    """``{"discovered": [...], "missing": [...], "maybe": [...]}``; each item ``{ref, kind, status, why: [...]}``
    (``reason`` for maybe and unused, ``image`` for a present image: the bundle's reference that satisfies it)."""
    items = {}
    for reference in references:
        status, key, detail = classify(reference, carried)
        item = items.setdefault((reference.kind, key), {"ref": key, "kind": reference.kind, "status": status,
                                                        "why": []})
        if _RANK[status] > _RANK[item["status"]]:
            item["status"] = status
            item.pop("reason", None)
            item.pop("image", None)
        if status == item["status"] and detail is not None:
            item.setdefault("image" if status == PRESENT and reference.kind == "image" else "reason", detail)
        if reference.why not in item["why"]:
            item["why"].append(reference.why)
    discovered = sorted(items.values(), key=lambda item: (item["kind"], item["ref"]))
    return {"discovered": discovered,
            "missing": [item for item in discovered if item["status"] == MISSING],
            "maybe": [item for item in discovered if item["status"] == MAYBE]}


def describe(item):
    """One line per missing or maybe item: the reference and each why, like ``zarf dev find-images --why``."""
    whys = "; ".join("%s %s, %s, %s" % (why["source"], why["file"], why["object"], why["field"])
                     for why in item["why"])
    text = "%s (%s)" % (item["ref"], whys)
    return text + (": " + item["reason"] if item.get("reason") else "")
