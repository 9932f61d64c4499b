# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Where bundle content lands in the target registry, and the push plan derived from verified metadata.

Images keep their source identity below the target: ``<registry>[/<prefix>]/<source host>/<source path>``,
so a k3s mirror with a rewrite rule can serve the original references unchanged. A source host's port
becomes ``-<port>`` because ``:`` is not allowed in a repository path.
"""

from __future__ import annotations

import json
import re

from ansible_collections.petra.core.plugins.module_utils.load.errors import LoadError
from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes

_TARGET_RE = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\](?::\d+)?|[A-Za-z0-9.-]+(?::\d+)?)(?P<prefix>(?:/[a-z0-9._-]+)*)/?$")
_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")


class TargetRegistry:
    """The ``registry`` option: ``host[:port][/path/prefix]``."""

    def __init__(self, text):
        match = _TARGET_RE.match(text or "")
        if not match:
            raise LoadError("registry %r is not host[:port] with an optional /path prefix" % (text,),
                            hint="For example registry.high.example:5000/petra")
        self.host = match.group("host")
        self.prefix = match.group("prefix").strip("/")
        for component in self.prefix.split("/") if self.prefix else ():
            if not _COMPONENT_RE.match(component):
                raise LoadError("registry %r: path component %r must be lowercase letters, digits and separators"
                                % (text, component))

    def repository(self, *parts):
        return "/".join([self.prefix] + list(parts) if self.prefix else list(parts))

    def __str__(self):
        return self.host + ("/" + self.prefix if self.prefix else "")


def host_component(source_registry):
    """A source registry host as one repository path component (``registry.example:5000`` → ``registry.example-5000``)."""
    component = source_registry.lower().strip("[]").replace("]:", "-").replace(":", "-")
    if not _COMPONENT_RE.match(component):
        raise LoadError("the source registry %r cannot be written as a repository path component" % source_registry)
    return component


class PushItem:
    """One thing to make available: a repository, the manifests to put (children first), and a tag."""

    __slots__ = ("kind", "name", "source", "repository", "tag", "digest", "media_type", "manifests", "blobs", "subject")

    def __init__(self, kind, source, repository, tag, digest, media_type, name=None, subject=None):
        self.kind = kind
        self.subject = subject  # for what is attached to pushed content (signatures, referrers): its digest
        self.name = name or repository.rsplit("/", 1)[-1]
        self.source = source
        self.repository = repository
        self.tag = tag
        self.digest = digest
        self.media_type = media_type
        self.manifests = []  # (digest, media type), children before parents
        self.blobs = {}  # digest -> size

    def target(self, host):
        text = "%s/%s" % (host, self.repository)
        return text + (":" + self.tag if self.tag else "") + "@" + self.digest


def _parse(manifests, digest):
    try:
        return json.loads(manifests[digest])
    except KeyError:
        raise LoadError("the verified bundle lacks manifest %s that its metadata names" % digest,
                        hint="The bundle was built by a different Petra release or is malformed; rebuild it")


def _walk_manifest(item, manifests, entries, digest, depth=0):
    """Add a manifest (and, for indexes, the children carried in the bundle) to the item, children first."""
    document = _parse(manifests, digest)
    media_type = document.get("mediaType") or (mediatypes.OCI_INDEX if "manifests" in document else mediatypes.OCI_MANIFEST)
    if "manifests" in document:
        if depth > 2:
            raise LoadError("manifest %s nests indexes deeper than Petra carries" % digest)
        for child in document.get("manifests") or []:
            if child.get("digest") in manifests:
                _walk_manifest(item, manifests, entries, child["digest"], depth + 1)
    else:
        for descriptor in [document.get("config")] + list(document.get("layers") or []):
            if not descriptor:
                continue
            if descriptor["digest"] not in entries:
                raise LoadError("manifest %s references blob %s, which the bundle does not carry" % (
                    digest, descriptor["digest"]), hint="Rebuild the bundle")
            item.blobs[descriptor["digest"]] = descriptor["size"]
    item.manifests.append((digest, media_type))


def _blob_entries(metadata):
    """The metadata's blob entries by digest, and the blobs a delta leaves out (load/delta.py proves them present)."""
    entries = {"sha256:" + entry["name"].split("/")[-1]: entry for entry in metadata["entries"]
               if entry["name"].startswith("blobs/")}
    entries.update((item["digest"], item) for item in (metadata.get("delta") or {}).get("omitted") or [])
    return entries


def plan_push(metadata, manifests, target):
    """PushItems for every image, chart, manifest set and file of a verified bundle.

    ``manifests`` maps digest to manifest bytes, captured from the verified archive.
    """
    entries = _blob_entries(metadata)
    items = []
    for image in metadata["images"]:
        source_registry, _sep, source_repository = image["name"].partition("/")
        item = PushItem("image", image["ref"], target.repository(host_component(source_registry), source_repository),
                        image.get("tag"), image["digest"], image["mediaType"])
        _walk_manifest(item, manifests, entries, image["digest"])
        items.append(item)
    bundle = metadata["name"]
    for chart in metadata["charts"]:
        source = chart.get("source") or ""
        if source.startswith("oci://"):
            host, _sep, path = source[len("oci://"):].partition("/")
            repository = target.repository(host_component(host), path)
        else:
            repository = target.repository("charts", chart["name"])
        # Helm finds a chart version by its tag, so a chart keeps its own version as tag.
        item = PushItem("chart", source or chart["name"], repository, chart["version"].replace("+", "_"),
                        chart["digest"], mediatypes.OCI_MANIFEST, name=chart["name"])
        _walk_manifest(item, manifests, entries, chart["digest"])
        items.append(item)
    for manifest_set in metadata["manifests"]:
        item = PushItem("manifests", manifest_set["name"], target.repository("manifests", bundle, manifest_set["name"]),
                        metadata["version"].replace("+", "_"), manifest_set["digest"], mediatypes.OCI_MANIFEST,
                        name=manifest_set["name"])
        _walk_manifest(item, manifests, entries, manifest_set["digest"])
        items.append(item)
    for file_entry in metadata["files"]:
        item = PushItem("file", file_entry["name"], target.repository("files", bundle, file_entry["name"]),
                        metadata["version"].replace("+", "_"), file_entry["manifestDigest"], mediatypes.OCI_MANIFEST)
        _walk_manifest(item, manifests, entries, file_entry["manifestDigest"])
        items.append(item)
    return items


def plan_custody_push(metadata, manifests, target, items):
    """PushItems for what travels with the bundle's content, to push after it: for images, the carried source
    signatures, attestations, SBOMs and referrers (by digest; ``.att``/``.sbom`` keep their tags); for every
    image, chart, manifest set and file, its countersignature under ``sha256-<hex>.sig`` (for images it also holds
    the carried legacy signatures' layers). ``items`` are the PushItems of plan_push."""
    entries = _blob_entries(metadata)
    records = {}
    # Keyed as plan_push names its items: the same image may come from several repositories.
    for section, kind, key, source in (("images", "image", "digest", "ref"), ("charts", "chart", "digest", "source"),
                                       ("manifests", "manifests", "digest", "name"),
                                       ("files", "file", "manifestDigest", "name")):
        for record in metadata[section]:
            records[(kind, record.get(source) or record["name"], record[key])] = record
    custody = []
    for pushed in items:
        record = records.get((pushed.kind, pushed.source, pushed.digest)) or {}
        wanted = [(attached["kind"], attached["digest"], attached["mediaType"],
                   # The carried .sig keeps its digest; the tag goes to the countersignature, which includes it.
                   attached.get("tag") if attached["kind"] in ("attestation", "sbom") else None)
                  for attached in record.get("attached") or []]
        if record.get("countersignature"):
            wanted.append(("countersignature", record["countersignature"]["digest"], mediatypes.OCI_MANIFEST,
                           record["countersignature"]["tag"]))
        for kind, digest, media_type, tag in wanted:
            item = PushItem(kind, pushed.source, pushed.repository, tag, digest, media_type, subject=pushed.digest)
            _walk_manifest(item, manifests, entries, digest)
            custody.append(item)
    return custody


def manifest_candidates(metadata):
    """Digests that are certainly manifests (roots); index children are found from the index bytes."""
    roots = {image["digest"] for image in metadata["images"]}
    for image in metadata["images"]:
        roots.update(child["digest"] for child in image.get("manifests") or [])
    roots.update(chart["digest"] for chart in metadata["charts"])
    roots.update(item["digest"] for item in metadata["manifests"])
    roots.update(item["manifestDigest"] for item in metadata["files"])
    return roots


def looks_like_manifest(data):
    """True for a manifest or index document (configs and other JSON blobs are not)."""
    if not data.startswith(b"{"):
        return False
    try:
        document = json.loads(data)
    except ValueError:
        return False
    if not isinstance(document, dict) or document.get("schemaVersion") != 2:
        return False
    media_type = document.get("mediaType")
    if media_type:
        return media_type in mediatypes.ACCEPTED_MANIFEST_TYPES
    return "manifests" in document or ("config" in document and "layers" in document)
