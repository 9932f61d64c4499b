# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The bundle's own SBOM: CycloneDX 1.6 JSON, one component per image, chart, manifest set and file.

Built with cyclonedx-python-lib from the plan's metadata, so it exists before any layer is fetched, and
deterministic (serial number derived from the content, timestamp = the bundle's creation time) so the
bundle stays reproducible. SBOMs carried with an image (cosign ``.sbom`` tags, SBOM referrers) are
referenced from the image's component by digest.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import uuid

from ansible_collections.petra.core.plugins.module_utils.custody.errors import CustodyError

ENTRY_NAME = "sbom.cdx.json"
MEDIA_TYPE = "application/vnd.cyclonedx+json"
SPEC_VERSION = "1.6"
_SBOM_ARTIFACT_HINTS = ("cyclonedx", "spdx", "sbom")


def _library():
    try:
        from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property, XsUri
        from cyclonedx.model.bom import Bom
        from cyclonedx.model.component import Component, ComponentType
        from cyclonedx.output.json import JsonV1Dot6
        from packageurl import PackageURL
    except ImportError:
        raise CustodyError("the bundle SBOM needs the Python library 'cyclonedx-python-lib'",
                           hint="Install the collection's requirements.txt on the controller", reason="dependency")
    return {"ExternalReference": ExternalReference, "ExternalReferenceType": ExternalReferenceType,
            "HashAlgorithm": HashAlgorithm, "HashType": HashType, "Property": Property, "XsUri": XsUri, "Bom": Bom,
            "Component": Component, "ComponentType": ComponentType, "JsonV1Dot6": JsonV1Dot6, "PackageURL": PackageURL}


def is_sbom(attached):
    """True for a carried artifact that is an SBOM (a cosign .sbom tag, or a referrer of an SBOM type)."""
    if attached["kind"] == "sbom":
        return True
    artifact_type = (attached.get("artifactType") or "").lower()
    return attached["kind"] == "referrer" and any(hint in artifact_type for hint in _SBOM_ARTIFACT_HINTS)


class _Builder:
    def __init__(self, lib):
        self.lib = lib

    def sha256(self, digest):
        return [self.lib["HashType"](alg=self.lib["HashAlgorithm"].SHA_256, content=digest.split(":", 1)[1])]

    def properties(self, **values):
        return [self.lib["Property"](name="petra:" + name, value=str(value))
                for name, value in sorted(values.items()) if value not in (None, "")]

    def image(self, image):
        lib = self.lib
        repository = image["name"].split("/", 1)[1] if "/" in image["name"] else image["name"]
        qualifiers = {"repository_url": image["name"]}
        if image.get("tag"):
            qualifiers["tag"] = image["tag"]
        references = [lib["ExternalReference"](
            type=lib["ExternalReferenceType"].BOM, url=lib["XsUri"]("oci://%s@%s" % (image["name"], item["digest"])),
            comment="%s carried with the image (%s)" % (item["kind"], item.get("artifactType") or item["mediaType"]),
            hashes=self.sha256(item["digest"])) for item in image.get("attached") or [] if is_sbom(item)]
        references += self.image_sboms(image, {item["digest"] for item in image.get("attached") or []
                                               if is_sbom(item)})
        platforms = ",".join(child["platform"] for child in image.get("manifests") or [] if child.get("platform"))
        return lib["Component"](
            type=lib["ComponentType"].CONTAINER, name=image["name"], version=image.get("tag") or image["digest"],
            bom_ref="image:%s" % image["ref"], hashes=self.sha256(image["digest"]),
            purl=lib["PackageURL"](type="oci", name=repository.rsplit("/", 1)[-1], version=image["digest"],
                                   qualifiers=qualifiers),
            external_references=references,
            properties=self.properties(ref=image["ref"], kind="image", mediaType=image["mediaType"],
                                       platforms=platforms, sbomOrigin=(image.get("sbom") or {}).get("origin"),
                                       countersignature=(image.get("countersignature") or {}).get("digest")))

    def image_sboms(self, image, referenced):
        """References to the image's SBOMs its ``sbom`` record names beyond the ``.sbom`` tags and SBOM referrers
        already referenced: SBOM attestations of the source, and those Petra generated."""
        lib, record = self.lib, image.get("sbom") or {}
        if record.get("origin") == "petra":
            items = [(item["manifest"], "CycloneDX SBOM of %s made by Petra with %s, in-toto attestation signed with "
                      "the bundle key" % (item["describes"], record.get("generator")))
                     for item in record["attestations"]]
        else:
            items = [(item["manifest"], "SBOM %s carried with the image (%s)" % (item["kind"], item.get("type")))
                     for item in record.get("documents") or [] if item["manifest"] not in referenced]
        return [lib["ExternalReference"](type=lib["ExternalReferenceType"].BOM,
                                         url=lib["XsUri"]("oci://%s@%s" % (image["name"], digest)), comment=comment,
                                         hashes=self.sha256(digest)) for digest, comment in items]

    def chart(self, chart):
        return self.lib["Component"](
            type=self.lib["ComponentType"].APPLICATION, name=chart["name"], version=chart["version"],
            bom_ref="chart:%s@%s" % (chart["name"], chart["version"]),
            hashes=self.sha256(chart.get("chartDigest") or chart["digest"]),
            properties=self.properties(kind="chart", manifestDigest=chart["digest"], source=chart.get("source")))

    def manifest_set(self, item):
        return self.lib["Component"](
            type=self.lib["ComponentType"].FILE, name="manifests/%s" % item["name"], bom_ref="manifests:%s" % item["name"],
            hashes=self.sha256(item["contentDigest"]),
            properties=self.properties(kind="manifests", manifestDigest=item["digest"], fileCount=item["fileCount"],
                                       source=item.get("source")))

    def file(self, item):
        return self.lib["Component"](
            type=self.lib["ComponentType"].FILE, name=item["filename"], bom_ref="file:%s" % item["name"],
            hashes=self.sha256(item["digest"]),
            properties=self.properties(kind="file", name=item["name"], manifestDigest=item["manifestDigest"],
                                       size=item["size"], source=item.get("source")))


def _content_fingerprint(images, charts, manifests, files):
    """What the SBOM describes, by digest (not when checks ran), so the serial number is stable across rebuilds."""
    content = [[item["ref"], item["digest"], [a["digest"] for a in item.get("attached") or []]] for item in images]
    content += [[section, item["name"], item["digest"]]
                for section, items in (("charts", charts), ("manifests", manifests), ("files", files))
                for item in items]
    return hashlib.sha256(json.dumps(content, separators=(",", ":")).encode("utf-8")).hexdigest()


def serial_number(name, version, fingerprint):
    """A UUID derived from what the SBOM describes: the first 16 bytes of a SHA-256 (not uuid5, which is SHA-1),
    with the version 4 and variant bits set as RFC 9562 requires, so the same content always gets the same one."""
    digest = hashlib.sha256(("%s@%s#%s" % (name, version, fingerprint)).encode("utf-8")).digest()
    return uuid.UUID(bytes=digest[:16], version=4)


def bundle_sbom(name, version, created, images, charts, manifests, files):
    """The SBOM document bytes (CycloneDX 1.6 JSON, canonical key order)."""
    lib = _library()
    build = _Builder(lib)
    moment = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
    fingerprint = _content_fingerprint(images, charts, manifests, files)
    bom = lib["Bom"](serial_number=serial_number(name, version, fingerprint))
    bom.metadata.timestamp = moment
    root = lib["Component"](type=lib["ComponentType"].APPLICATION, name=name, version=version,
                            bom_ref="bundle:%s@%s" % (name, version),
                            description="Petra bundle %s %s" % (name, version))
    bom.metadata.component = root
    components = [build.image(item) for item in images] + [build.chart(item) for item in charts] + \
        [build.manifest_set(item) for item in manifests] + [build.file(item) for item in files]
    for component in components:
        bom.components.add(component)
    bom.register_dependency(root, components)
    text = lib["JsonV1Dot6"](bom).output_as_string()
    # Canonical bytes: the library's own key order is stable, sorting makes that independent of its release.
    return json.dumps(json.loads(text), sort_keys=True, indent=1, ensure_ascii=False).encode("utf-8") + b"\n"
