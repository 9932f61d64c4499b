# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""What the review sheet needs from inside the bundle, gathered during the verification's one read.

The sheet needs which blobs each manifest refers to (for sizes), the platform of each image config, and what every
SBOM carried in the bundle says. None of that is in the signed metadata, and a second read of a bundle of tens of
gigabytes is not acceptable, so this hook looks at each entry as the verifier streams it past. Blobs are in digest
order, so a manifest may pass after its layers: every small JSON entry is read and classified, everything else is
left to the verifier after its first chunk. Nothing gathered here may be used unless the verification succeeded.
"""

from __future__ import annotations

import json
import re

# Manifests, configs and SBOM documents are JSON; larger JSON entries are named as unread, never read whole.
MAX_JSON = 32 << 20
MAX_LICENCES = 100
MAX_TEXT = 300
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_NO_LICENCE = ("NOASSERTION", "NONE", "")


def text(value, limit=MAX_TEXT):
    """A value from a document as a bounded string (documents are untrusted: any type, any length)."""
    value = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return value if len(value) <= limit else value[:limit] + "…"


def manifest_links(document):
    """(config digest or None, every digest a manifest or index refers to) or None when it is neither.

    ``subject`` is left out: an attached artifact points back at its image, and the image owns the artifact, not the
    other way round."""
    if document.get("schemaVersion") != 2:
        return None
    descriptors = []
    config = document.get("config")
    if isinstance(config, dict):
        descriptors.append(config)
    for key in ("layers", "manifests", "blobs"):
        items = document.get(key)
        if isinstance(items, list):
            descriptors.extend(item for item in items if isinstance(item, dict))
    if not descriptors:
        return None
    digests = [item["digest"] for item in descriptors
               if isinstance(item.get("digest"), str) and _DIGEST.match(item["digest"])]
    config_digest = config.get("digest") if isinstance(config, dict) else None
    return (config_digest if config_digest in digests else None), digests


def config_platform(document):
    """``os/architecture[/variant]`` of an image config, or None for anything else."""
    if not isinstance(document.get("rootfs"), dict):
        return None
    parts = [document.get("os"), document.get("architecture"), document.get("variant")]
    if not all(isinstance(part, str) for part in parts[:2]):
        return None
    return text("/".join(part for part in parts if isinstance(part, str) and part))


def _licence_names(values):
    """Licence names of one CycloneDX ``licenses`` list (ids, names or expressions)."""
    names = []
    for item in values if isinstance(values, list) else []:
        if not isinstance(item, dict):
            continue
        licence = item.get("license") if isinstance(item.get("license"), dict) else {}
        name = item.get("expression") or licence.get("id") or licence.get("name")
        if name:
            names.append(text(name))
    return names


def _cyclonedx_components(components):
    """Every component, nested ones included, depth first."""
    stack = list(reversed(components)) if isinstance(components, list) else []
    while stack:
        component = stack.pop()
        if not isinstance(component, dict):
            continue
        yield component
        nested = component.get("components")
        if isinstance(nested, list):
            stack.extend(reversed(nested))


def licence_table(names):
    """[{name, components}] most used first, at most MAX_LICENCES, and how many more there were."""
    counts = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    ranked = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
    return [{"name": name, "components": count} for name, count in ranked[:MAX_LICENCES]], \
        max(0, len(ranked) - MAX_LICENCES)


def cyclonedx_summary(components, spec_version=None):
    """Component count and licences of a CycloneDX component list."""
    names, count = [], 0
    for component in _cyclonedx_components(components):
        count += 1
        names.extend(_licence_names(component.get("licenses")))
    licences, more = licence_table(names)
    return {"format": "CycloneDX", "specVersion": text(spec_version) if spec_version else None,
            "components": count, "licences": licences, "licencesNotListed": more}


def sbom_summary(document):
    """What an SBOM document says (CycloneDX or SPDX JSON), or None when the document is not one."""
    if document.get("bomFormat") == "CycloneDX":
        return cyclonedx_summary(document.get("components"), document.get("specVersion"))
    if isinstance(document.get("spdxVersion"), str):
        packages = [item for item in document.get("packages") or [] if isinstance(item, dict)] \
            if isinstance(document.get("packages"), list) else []
        names = []
        for package in packages:
            for key in ("licenseConcluded", "licenseDeclared"):
                value = package.get(key)
                if isinstance(value, str) and value.strip() not in _NO_LICENCE:
                    names.append(text(value.strip()))
                    break
        licences, more = licence_table(names)
        return {"format": "SPDX", "specVersion": text(document["spdxVersion"]), "components": len(packages),
                "licences": licences, "licencesNotListed": more}
    return None


class ReviewCollector:
    """The ``on_entry`` hook of a verification: links between manifests, config platforms, SBOM summaries."""

    def __init__(self, max_json=MAX_JSON, keep=()):
        self.max_json = max_json
        self.keep = set(keep)  # entry names whose parsed document is kept whole (the bundle's own SBOM)
        self.links = {}  # manifest digest -> every digest it refers to
        self.configs = {}  # manifest digest -> its config digest
        self.platforms = {}  # config digest -> os/architecture
        self.sboms = {}  # digest -> sbom_summary()
        self.documents = {}  # entry name -> parsed document, for the names in keep
        self.unread = set()  # digests of JSON entries too large to read

    def __call__(self, name, declared, chunks):
        first = next(chunks, b"")
        if first.lstrip()[:1] != b"{":
            return
        digest = declared["digest"]
        if declared["size"] > self.max_json:
            self.unread.add(digest)
            return
        try:
            document = json.loads(first + b"".join(chunks))
        except (ValueError, RecursionError):
            # Not JSON after all, or nested deeper than the parser goes: not a document the sheet reads.
            return
        if not isinstance(document, dict):
            return
        if name in self.keep:
            self.documents[name] = document
        links = manifest_links(document)
        if links is not None:
            self.links[digest] = links[1]
            if links[0]:
                self.configs[digest] = links[0]
            return
        platform = config_platform(document)
        if platform:
            self.platforms[digest] = platform
            return
        summary = sbom_summary(document)
        if summary is not None:
            self.sboms[digest] = summary

    def reachable(self, roots):
        """Every digest reachable from ``roots`` through the manifests read (the roots included)."""
        seen, stack = set(), list(roots)
        while stack:
            digest = stack.pop()
            if digest in seen:
                continue
            seen.add(digest)
            stack.extend(self.links.get(digest, ()))
        return seen

    def platform_of(self, manifest_digest):
        return self.platforms.get(self.configs.get(manifest_digest))
