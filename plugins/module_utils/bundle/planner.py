# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The planner: resolves a bundle spec's images, charts, manifest sets and files into a BundlePlan and its signed
metadata, from manifests, image configs and local hashes only.

Planning never downloads a layer: image manifests give every blob's digest and size, so the metadata is complete
before the first layer byte is fetched, and a plan alone tells whether an existing bundle is already what these
inputs would produce.
"""

from __future__ import annotations

import json
import os

from ansible_collections.petra.core.plugins.module_utils.bundle import artifacts, completeness
from ansible_collections.petra.core.plugins.module_utils.bundle import metadata as bundle_metadata
from ansible_collections.petra.core.plugins.module_utils.bundle import timing
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError
from ansible_collections.petra.core.plugins.module_utils.bundle.plan import BundlePlan
from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes
from ansible_collections.petra.core.plugins.module_utils.oci.blobs import Blob
from ansible_collections.petra.core.plugins.module_utils.oci.errors import OCIError
from ansible_collections.petra.core.plugins.module_utils.oci.reference import ImageReference

MAX_INDEX_DEPTH = 2


class Planner:
    """Turns a BundleSpec into a BundlePlan."""

    def __init__(self, spec, pool, created, spool_dir=None, custody=None, image_completeness=None, high_side=None):
        self.spec = spec
        self.image_completeness = image_completeness  # completeness.MODES, or None: not checked
        self.high_side = high_side  # the load target whose names the manifests may use (completeness.check)
        self.completeness = None  # its report, once built
        self.pool = pool
        self.created = created  # timing.Created, or None: read from the image configs
        self.spool_dir = spool_dir
        self.custody = custody
        self.plan = BundlePlan()
        self._config_times = []

    def build(self, signer_key_id, level):
        for item in self.spec.images:
            self._add_image(item["ref"], item.get("platforms"))
        # Images come first because the time they give is needed from here on: manifest set archives carry it.
        if self.created is None:
            self.created = timing.from_sources(self._config_times)
        self.plan.created = self.created
        expires = timing.resolve_expires(self.spec.expires, self.created)
        for item in self.spec.charts:
            self._add_chart(item)
        for item in self.spec.manifests:
            self._add_manifest_set(item)
        for item in self.spec.files:
            self._add_file(item)
        if self.image_completeness:
            # After charts and manifest sets (their references), before the SBOM and metadata (images it adds).
            self.completeness = completeness.check(self.spec, self.plan, self.image_completeness,
                                                   self._add_discovered_image, self.pool, self.high_side)
        sbom = None
        if self.custody is not None and self.custody.sbom:
            sbom = self.custody.add_sbom(self.plan, self.spec.name, self.spec.version, self.created)
        self.plan.metadata = {
            "apiVersion": "petra.dev/v1alpha1",
            "kind": "BundleMetadata",
            "formatVersion": bundle_metadata.FORMAT_VERSION,
            "name": self.spec.name,
            "version": self.spec.version,
            "created": self.created.text,
            "expires": expires,
            "signer": {"keyId": signer_key_id},
            "compression": {"algorithm": "zstd", "level": level},
            "images": self.plan.images,
            "charts": self.plan.charts,
            "manifests": self.plan.manifests,
            "files": self.plan.files,
        }
        if sbom is not None:
            self.plan.metadata["sbom"] = sbom
        roots = self.custody.add_trusted_roots(self.plan) if self.custody is not None else []
        if roots:
            self.plan.metadata["trustedRoots"] = roots
        self.plan.list_entries()
        return self.plan

    # -- images ------------------------------------------------------------------------------------
    def _fetch_manifest(self, client, ref, reference, expected=None):
        try:
            data, media_type, digest = client.get_manifest(ref.repository, reference)
        except OCIError as exc:
            raise BundleError("cannot resolve %s: %s" % (ref, exc.message), hint=exc.hint)
        if expected is not None and (digest != expected["digest"] or len(data) != expected["size"]):
            raise BundleError("the manifest %s of %s does not match its index descriptor" % (expected["digest"], ref),
                              hint="The registry content is inconsistent; check the image")
        self.plan.add_blob(Blob(digest, len(data), media_type, data=data))
        return data, media_type, digest

    def _note_config_time(self, client, ref, manifest_data):
        """Remember the image config's ``created`` when the bundle's time is to come from its sources. The config is
        read here (it is small) and carried from memory, so it is still fetched only once."""
        if self.created is not None:
            return
        config = artifacts.image_blob_descriptors(manifest_data, str(ref))[0]
        if config.get("mediaType") not in mediatypes.IMAGE_CONFIG_TYPES or config["size"] > timing.MAX_CONFIG_SIZE:
            return
        known = self.plan.blobs.get(config["digest"])
        data = known.data if known is not None else None
        if data is None:
            try:
                data = client.read_blob(ref.repository, config["digest"], config["size"], timing.MAX_CONFIG_SIZE)
            except OCIError as exc:
                raise BundleError("cannot read the config %s of %s: %s" % (config["digest"], ref, exc.message),
                                  hint=exc.hint)
            self.plan.add_blob(Blob(config["digest"], config["size"], config["mediaType"], data=data))
        seconds = timing.config_time(data)
        if seconds is not None:
            self._config_times.append(seconds)

    def _add_index_children(self, client, ref, data, platforms, depth):
        index = json.loads(data)
        children = index.get("manifests") or []
        chosen = [child for child in children
                  if child.get("mediaType") in mediatypes.INDEX_TYPES
                  or platform_wanted(child, platforms)]
        if platforms and not any(child.get("mediaType") in mediatypes.MANIFEST_TYPES for child in chosen):
            offered = sorted({mediatypes.platform_string(c.get("platform")) for c in children if c.get("platform")})
            raise BundleError("%s offers no manifest for platforms %s (it offers %s)" % (
                ref, ", ".join(platforms), ", ".join(offered) or "none"), hint="Correct 'platforms' for this image")
        included = []
        for child in chosen:
            child_data, media_type, digest = self._fetch_manifest(client, ref, child["digest"], child)
            if media_type in mediatypes.INDEX_TYPES:
                if depth >= MAX_INDEX_DEPTH:
                    raise BundleError("%s nests indexes deeper than %d levels" % (ref, MAX_INDEX_DEPTH))
                included += self._add_index_children(client, ref, child_data, platforms, depth + 1)
            else:
                self.plan.add_image_blobs(client, ref, child_data)
                self._note_config_time(client, ref, child_data)
                included.append({"digest": digest, "platform": mediatypes.platform_string(child.get("platform"))})
        return included

    def _add_image(self, ref_text, platforms):
        ref = ImageReference.parse(ref_text)
        client = self.pool.for_host(ref.api_host)
        data, media_type, digest = self._fetch_manifest(client, ref, ref.digest or ref.tag)
        entry = {"ref": ref_text, "name": ref.name, "tag": ref.tag, "digest": digest, "mediaType": media_type}
        if media_type in mediatypes.INDEX_TYPES:
            entry["manifests"] = self._add_index_children(client, ref, data, platforms, 1)
            if platforms:
                entry["platforms"] = list(platforms)
        else:
            self.plan.add_image_blobs(client, ref, data)
            self._note_config_time(client, ref, data)
        if not any(existing["ref"] == ref_text for existing in self.plan.images):
            if self.custody is not None:
                self.custody.add_image(self.plan, client, ref, ref_text, entry)
            self.plan.images.append(entry)
            self.plan.index_manifests.append(mediatypes.descriptor(media_type, digest, len(data), {
                mediatypes.ANNOTATION_REF_NAME: ref_text,
                mediatypes.ANNOTATION_IMAGE_NAME: str(ref),
                mediatypes.ANNOTATION_PETRA_KIND: "image",
            }))

    def _add_discovered_image(self, ref_text):
        """An image the completeness check adds: for the platforms every image of the spec shares, if they agree."""
        chosen = {tuple(item.get("platforms") or ()) for item in self.spec.images}
        self._add_image(ref_text, list(chosen.pop()) if len(chosen) == 1 and () not in chosen else None)

    # -- charts, manifest sets, files -----------------------------------------------------------
    def _append(self, section, record, reference, digest):
        """Add an artifact's record, with the countersignature of its manifest when the build has custody."""
        if self.custody is not None:
            countersignature = self.custody.countersign(self.plan, reference, digest)
            if countersignature:
                record["countersignature"] = countersignature
        section.append(record)

    def _add_chart(self, item):
        if "path" in item:
            manifest, blobs, name, version = artifacts.chart_artifact(item["path"])
            source = item["path"]
            manifest_blob = self.plan.add_artifact(manifest, blobs, {
                mediatypes.ANNOTATION_REF_NAME: "charts/%s:%s" % (name, version),
                mediatypes.ANNOTATION_PETRA_KIND: "chart"})
            digest, size = manifest_blob.digest, manifest_blob.size
            chart_digest = blobs[1].digest
        else:
            ref = ImageReference.parse("%s:%s" % (item["ref"][len("oci://"):], item["version"].replace("+", "_")))
            client = self.pool.for_host(ref.api_host)
            data, media_type, digest = self._fetch_manifest(client, ref, ref.tag)
            descriptors = artifacts.image_blob_descriptors(data, str(ref))
            if descriptors[0].get("mediaType") != mediatypes.HELM_CONFIG:
                raise BundleError("%s is not a Helm chart (its config media type is %r)" % (
                    item["ref"], descriptors[0].get("mediaType")), hint="Check 'ref' and 'version' of the chart")
            self.plan.add_image_blobs(client, ref, data)
            name, version, source, size = ref.repository.rsplit("/", 1)[-1], item["version"], item["ref"], len(data)
            chart_digest = next((d["digest"] for d in descriptors if d.get("mediaType") == mediatypes.HELM_CHART_LAYER),
                                None)
            self.plan.index_manifests.append(mediatypes.descriptor(media_type, digest, size, {
                mediatypes.ANNOTATION_REF_NAME: "charts/%s:%s" % (name, version),
                mediatypes.ANNOTATION_PETRA_KIND: "chart"}))
        reference = item["ref"][len("oci://"):] if "ref" in item else "charts/%s" % name
        self._append(self.plan.charts, {"name": name, "version": version, "digest": digest, "size": size,
                                        "source": _display_source(source, self.spec.base_dir),
                                        "chartDigest": chart_digest}, reference, digest)

    def _add_manifest_set(self, item):
        manifest, blobs, count = artifacts.manifest_set_artifact(
            item["name"], item["path"], self.spec.version, self.created.epoch, self.spool_dir)
        manifest_blob = self.plan.add_artifact(manifest, blobs, {
            mediatypes.ANNOTATION_REF_NAME: "manifests/%s:%s" % (item["name"], self.spec.version),
            mediatypes.ANNOTATION_PETRA_KIND: "manifests"})
        self._append(self.plan.manifests, {"name": item["name"], "digest": manifest_blob.digest,
                                           "size": manifest_blob.size, "contentDigest": blobs[1].digest,
                                           "fileCount": count, "source": _display_source(item["path"],
                                                                                         self.spec.base_dir)},
                     "manifests/%s/%s" % (self.spec.name, item["name"]), manifest_blob.digest)

    def _add_file(self, item):
        manifest, blobs = artifacts.file_artifact(item["name"], item["path"])
        manifest_blob = self.plan.add_artifact(manifest, blobs, {
            mediatypes.ANNOTATION_REF_NAME: "files/%s:%s" % (item["name"], self.spec.version),
            mediatypes.ANNOTATION_PETRA_KIND: "file"})
        layer = blobs[1]
        self._append(self.plan.files, {"name": item["name"], "digest": layer.digest, "size": layer.size,
                                       "manifestDigest": manifest_blob.digest,
                                       "filename": os.path.basename(item["path"]),
                                       "source": _display_source(item["path"], self.spec.base_dir)},
                     "files/%s/%s" % (self.spec.name, item["name"]), manifest_blob.digest)


def platform_wanted(descriptor, platforms):
    return descriptor.get("mediaType") in mediatypes.MANIFEST_TYPES and \
        mediatypes.platform_matches(descriptor.get("platform") or {}, platforms)


def _display_source(path, base_dir):
    """Sources as written relative to the spec, so metadata does not depend on the build machine's paths."""
    if path.startswith("oci://"):
        return path
    relative = os.path.relpath(path, base_dir)
    return relative if not relative.startswith("..") else os.path.basename(path)
