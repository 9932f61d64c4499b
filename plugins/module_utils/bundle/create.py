# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Bundle creation: plan from the spec (manifests, image configs and local hashes only), then stream every blob
once into a deterministic, signed archive written beside ``dest`` and committed with atomic.py.

Planning never downloads a layer: image manifests give every blob's digest and size, so the signed
metadata (the archive's first entry) is complete before the first layer byte is fetched, and a plan
alone tells whether an existing bundle is already what these inputs would produce. The creation time is
stated by the user or read from the sources (timing.py), never taken from the clock unasked.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import tempfile
import threading
import time

from ansible_collections.petra.core.plugins.module_utils.atomic import PendingFile, commit
from ansible_collections.petra.core.plugins.module_utils.bundle import artifacts
from ansible_collections.petra.core.plugins.module_utils.oci.blobs import Blob, canonical_json, digest_of
from ansible_collections.petra.core.plugins.module_utils.bundle import metadata as bundle_metadata
from ansible_collections.petra.core.plugins.module_utils.bundle import timing
from ansible_collections.petra.core.plugins.module_utils.bundle.archive import DEFAULT_LEVEL, ArchiveWriter
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError
from ansible_collections.petra.core.plugins.module_utils.bundle.reader import read_metadata
from ansible_collections.petra.core.plugins.module_utils.custody import image_signatures as cosign
from ansible_collections.petra.core.plugins.module_utils.custody import scan as custody_scan
from ansible_collections.petra.core.plugins.module_utils.custody.attached import discover
from ansible_collections.petra.core.plugins.module_utils.custody.countersign import countersign
from ansible_collections.petra.core.plugins.module_utils.custody.sbom import ENTRY_NAME as SBOM_NAME
from ansible_collections.petra.core.plugins.module_utils.custody.sbom import MEDIA_TYPE as SBOM_MEDIA_TYPE
from ansible_collections.petra.core.plugins.module_utils.custody.sbom import bundle_sbom
from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes
from ansible_collections.petra.core.plugins.module_utils.oci.errors import OCIError, RegistryError
from ansible_collections.petra.core.plugins.module_utils.oci.reference import ImageReference
from ansible_collections.petra.core.plugins.module_utils.signing import keys as signing_keys
from ansible_collections.petra.core.plugins.module_utils.signing import signatures

OCI_LAYOUT = canonical_json({"imageLayoutVersion": "1.0.0"})
MAX_INDEX_DEPTH = 2


class BundlePlan:
    """Everything the archive will hold, known before any layer is fetched."""

    def __init__(self):
        self.blobs = {}
        self.index_manifests = []
        self.images = []
        self.charts = []
        self.manifests = []
        self.files = []
        self.named = []  # (entry name, Blob): the SBOM and scan reports, between index.json and the blobs
        self.metadata = None
        self.created = None  # timing.Created

    def add_blob(self, blob):
        known = self.blobs.get(blob.digest)
        if known is None:
            self.blobs[blob.digest] = blob
        elif known.size != blob.size:
            raise BundleError("blob %s is referenced with sizes %d and %d" % (blob.digest, known.size, blob.size),
                              hint="A source manifest is inconsistent; check the image")
        elif known.remote is not None and blob.remote is None:
            self.blobs[blob.digest] = blob  # a local copy is cheaper than a download

    def add_artifact(self, manifest_bytes, blobs, annotations):
        manifest = Blob.from_bytes(manifest_bytes, mediatypes.OCI_MANIFEST)
        self.add_blob(manifest)
        for blob in blobs:
            self.add_blob(blob)
        self.index_manifests.append(manifest.descriptor(annotations))
        return manifest

    def list_entries(self):
        """(Re)compute the metadata's entry list from what the plan holds."""
        self.metadata["entries"] = [{"name": name, "digest": blob.digest, "size": blob.size}
                                    for name, blob in self.entries()]

    def entries(self):
        """(name, Blob) in archive order: layout file, index, named entries by name, then blobs by digest."""
        index = canonical_json({
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_INDEX,
            "manifests": self.index_manifests,
        })
        result = [("oci-layout", Blob.from_bytes(OCI_LAYOUT, "application/json")),
                  ("index.json", Blob.from_bytes(index, mediatypes.OCI_INDEX))]
        result += sorted(self.named, key=lambda item: item[0])
        for digest in sorted(self.blobs):
            result.append(("blobs/sha256/" + digest.split(":", 1)[1], self.blobs[digest]))
        return result


class Planner:
    """Turns a BundleSpec into a BundlePlan."""

    def __init__(self, spec, pool, created, spool_dir=None, custody=None):
        self.spec = spec
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
        sbom = self._add_sbom() if self.custody is not None and self.custody.sbom else None
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
        self.plan.list_entries()
        return self.plan

    # -- custody: what comes with each image, its source verification, the countersignature, the SBOM --------
    def _add_custody(self, client, ref, ref_text, entry):
        digest = entry["digest"]
        attached = discover(client, ref.repository, digest, ref_text)
        for item in attached:
            self.plan.add_blob(Blob(item.digest, len(item.data), item.media_type, data=item.data))
            self._add_image_manifest(client, ref, item.data)
        if attached:
            entry["attached"] = [item.record() for item in attached]
        if self.custody.verifier is not None:
            entry["sourceVerification"] = self.custody.verifier.verify(client, ref_text, ref, digest, attached)
        carried = next((item for item in attached if item.kind == "signature"), None)
        entry["countersignature"] = self._countersign(ref.name, digest, carried)

    def _countersign(self, reference, digest, carried=None):
        """The countersignature of a manifest digest (an image, or a chart, manifest set or file artifact, which
        Flux verifies), its blobs added to the plan; returns its metadata record."""
        if self.custody is None:
            return None
        signed = countersign(self.custody.signer, reference, digest, carried, self.custody.previous(digest))
        for data, media_type in ((signed.payload, cosign.SIMPLE_SIGNING),
                                 (signed.config, mediatypes.OCI_CONFIG), (signed.manifest, mediatypes.OCI_MANIFEST)):
            self.plan.add_blob(Blob.from_bytes(data, media_type))
        return signed.record

    def _append(self, section, record, reference, digest):
        countersignature = self._countersign(reference, digest)
        if countersignature:
            record["countersignature"] = countersignature
        section.append(record)

    def _add_sbom(self):
        data = bundle_sbom(self.spec.name, self.spec.version, self.created.text, self.plan.images, self.plan.charts,
                           self.plan.manifests, self.plan.files)
        blob = Blob.from_bytes(data, SBOM_MEDIA_TYPE)
        self.plan.named.append((SBOM_NAME, blob))
        return {"name": SBOM_NAME, "digest": blob.digest}

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

    def _add_image_manifest(self, client, ref, data):
        for item in artifacts.image_blob_descriptors(data, str(ref)):
            self.plan.add_blob(Blob(item["digest"], item["size"], item.get("mediaType", ""),
                                              remote=(client, ref.repository)))

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
                self._add_image_manifest(client, ref, child_data)
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
            self._add_image_manifest(client, ref, data)
            self._note_config_time(client, ref, data)
        if not any(existing["ref"] == ref_text for existing in self.plan.images):
            if self.custody is not None:
                self._add_custody(client, ref, ref_text, entry)
            self.plan.images.append(entry)
            self.plan.index_manifests.append(mediatypes.descriptor(media_type, digest, len(data), {
                mediatypes.ANNOTATION_REF_NAME: ref_text,
                mediatypes.ANNOTATION_IMAGE_NAME: str(ref),
                mediatypes.ANNOTATION_PETRA_KIND: "image",
            }))

    # -- charts, manifest sets, files -----------------------------------------------------------
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
            self._add_image_manifest(client, ref, data)
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


def file_digests(path, hash_names):
    hashers = {name: hashlib.new(name) for name in hash_names}
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(1 << 20)
            if not chunk:
                break
            for hasher in hashers.values():
                hasher.update(chunk)
    return {name: hasher.digest() for name, hasher in hashers.items()}


def existing_signature_valid(dest, signature_path, signer):
    """True when dest's .sig is a valid signature over dest by the signer's key."""
    if not (os.path.isfile(dest) and os.path.isfile(signature_path)):
        return False
    try:
        with open(signature_path, "rb") as handle:
            der = signatures.decode_signature(handle.read(signatures.MAX_SIGNATURE_FILE + 1), signature_path)
    except (OSError, signing_keys.SigningError):
        return False
    digests = file_digests(dest, [signer.hash_name])
    return signing_keys.verify_digest(signer.public_key(), digests[signer.hash_name], der)


class _Prefetch(threading.Thread):
    """Pulls chunks from a (network or disk) iterator ahead of the consumer, through a bounded queue."""

    _DONE = object()

    def __init__(self, iterator, depth):
        super().__init__(name="petra-prefetch", daemon=True)
        self._iterator = iterator
        self.queue = queue.Queue(maxsize=depth)
        self.stop = threading.Event()

    def _offer(self, item):
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def run(self):
        try:
            for chunk in self._iterator:
                if not self._offer(chunk):
                    return
            item = self._DONE
        except BaseException as exc:  # handed to the consumer, which raises it in its own thread
            item = exc
        self._offer(item)


def prefetched(iterator, depth=8):
    """Iterate ``iterator`` with its work (downloads, reads) overlapping the consumer's."""
    worker = _Prefetch(iterator, depth)
    worker.start()
    try:
        while True:
            item = worker.queue.get()
            if item is _Prefetch._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        worker.stop.set()
        worker.join()


def write_bundle(plan, dest, signature_path, signer, mtime, level=DEFAULT_LEVEL, mode=0o644):
    """Write archive and signature to temporary files beside their targets, check the signature, then commit both
    (synced, renamed, their directories synced)."""
    directory = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(directory):
        raise BundleError("the directory %s for dest does not exist" % directory, hint="Create it first")
    archive = signature = None
    try:
        archive = PendingFile(dest, mode)
        writer = ArchiveWriter(archive.handle, mtime, hash_names=sorted({"sha256", signer.hash_name}), level=level)
        writer.add_bytes(bundle_metadata.METADATA_NAME, bundle_metadata.encode(plan.metadata))
        try:
            for name, blob in plan.entries():
                try:
                    writer.add_chunks(name, blob.size, blob.digest, prefetched(blob.chunks()))
                except OCIError as exc:
                    raise BundleError("fetching %s for the bundle failed: %s" % (blob.digest, exc.message),
                                      hint=exc.hint)
            digests = writer.close()
        except BaseException:
            writer.abandon()
            raise
        der = signer.sign_digest(digests[signer.hash_name])
        if not signing_keys.verify_digest(signer.public_key(), digests[signer.hash_name], der):
            raise BundleError("the signature %s returned does not verify with its own public key" % signer.description,
                              hint="The signing backend is misbehaving; nothing was written")
        signature = PendingFile(signature_path, mode)
        signature.handle.write(signatures.encode_signature(der))
        # Both are synced before either is renamed: a crash between the renames leaves a bundle that fails
        # verification until it is rebuilt, never a partial file under either name.
        commit(archive, signature)
        return {"sha256": digests["sha256"].hex(), "size": writer.compressed_size}
    except BaseException:
        for item in (archive, signature):
            if item is not None:
                item.discard()
        raise


class CreationCustody:
    """The custody settings of one build: the bundle signer (countersignatures), the verify_images policy,
    the scanner, whether to write the SBOM, and the countersignatures of an existing bundle to reuse."""

    def __init__(self, signer, verifier=None, scanner=None, existing=None, sbom=True):
        self.signer = signer
        self.verifier = verifier
        self.scanner = scanner
        self.sbom = sbom
        self._previous = {}
        if existing and (existing.get("signer") or {}).get("keyId") == signing_keys.key_id(signer.public_key()):
            for section, key in (("images", "digest"), ("charts", "digest"), ("manifests", "digest"),
                                 ("files", "manifestDigest")):
                for record in existing.get(section) or []:
                    if record.get("countersignature"):
                        self._previous[record[key]] = record["countersignature"]

    def previous(self, digest):
        return self._previous.get(digest)

    def scan_settled(self, existing):
        """True when the existing bundle was scanned as this build would scan it (or neither scans)."""
        recorded = existing.get("scan")
        if self.scanner is None or recorded is None:
            return self.scanner is None and recorded is None
        return (recorded.get("scanner"), recorded.get("failOn"), recorded.get("ignoreFile")) == (
            self.scanner.name, self.scanner.fail_on, self.scanner.ignore_digest)


def stable_metadata(metadata):
    """The metadata without what records when and how checks ran (verification times, scan reports): two builds
    of the same content compare equal on this."""
    copy = json.loads(json.dumps(metadata))
    for image in copy.get("images") or []:
        (image.get("sourceVerification") or {}).pop("verifiedAt", None)
    copy.pop("scan", None)
    copy["entries"] = [entry for entry in copy.get("entries") or []
                       if not entry["name"].startswith(custody_scan.REPORT_PREFIX)]
    return copy


def _stage_blob(blob, store):
    """Write a blob to the staging store (checking digest and size) and return its path."""
    path = os.path.join(store, blob.digest.split(":", 1)[1])
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


def scan_plan(plan, scanner, staging):
    """Stage every image (one OCI layout per platform manifest, layers on disk in ``staging``), scan it, add the
    reports as entries, and stop the build on findings at or above the threshold that are not ignored.

    The plan's layers are switched to the staged files, so the bundle carries exactly what was scanned."""
    executable = scanner.resolve()
    store = os.path.join(staging, "blobs")
    os.makedirs(store)
    reports, blocked = [], []
    for image in plan.images:
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
                    raise BundleError("fetching %s of %s for the scan failed: %s" % (blob.digest, image["ref"],
                                                                                     exc.message), hint=exc.hint)
                plan.blobs[blob.digest] = Blob(blob.digest, blob.size, blob.media_type, path=path)
            work = os.path.join(staging, "scan-%d" % len(reports))
            layout = custody_scan.stage_layout(os.path.join(work, "layout"), manifest_digest, data, blob_paths)
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


def _image_result(item):
    result = {"ref": item["ref"], "digest": item["digest"]}
    if item.get("sourceVerification"):
        result["source_verification"] = item["sourceVerification"]
    return result


def create_bundle(spec, dest, signer, pool, signature_path=None, level=DEFAULT_LEVEL, check_mode=False,
                  force=False, environ=None, mode=0o644, verifier=None, scanner=None, sbom=True):
    """Create (or confirm) the bundle; returns the module result without ``changed`` semantics lost.

    ``verifier`` (custody.verification.SourceVerifier) applies the verify_images policy; ``scanner``
    (custody.scan.Scanner) is the vulnerability gate; ``sbom`` adds the bundle's CycloneDX SBOM."""
    started = time.monotonic()
    signature_path = signature_path or dest + ".sig"
    created = timing.stated_created(spec.created, os.environ if environ is None else environ)
    signer_id = signing_keys.key_id(signer.public_key())
    spool_dir = os.path.dirname(os.path.abspath(dest))
    spool_dir = spool_dir if os.path.isdir(spool_dir) else None
    existing = read_metadata(dest) if (os.path.isfile(dest) and not force) else None
    custody = CreationCustody(signer, verifier, scanner, existing, sbom)

    def make_plan(moment):
        try:
            return Planner(spec, pool, moment, spool_dir, custody).build(signer_id, level)
        except RegistryError as exc:
            raise BundleError(exc.message, hint=exc.hint)

    plan = None
    if existing is not None and created is not None and created.source == timing.FROM_CLOCK:
        # A wall-clock time was asked for: the existing bundle's time is the one to reproduce. If the content is
        # unchanged, the plan made with it is identical and nothing needs rewriting.
        try:
            moment = timing.recorded(existing["created"])
        except ValueError:
            moment = None
        plan = make_plan(moment) if moment is not None else None
        if plan is not None and stable_metadata(plan.metadata) != stable_metadata(existing):
            plan = None
    if plan is None:
        plan = make_plan(created)
    result = {
        "path": dest,
        "signature": signature_path,
        "key_id": signer_id,
        "name": spec.name,
        "version": spec.version,
        "images": [_image_result(item) for item in plan.images],
        "charts": [{"name": c["name"], "version": c["version"], "digest": c["digest"]} for c in plan.charts],
        "manifests": [{"name": m["name"], "digest": m["digest"]} for m in plan.manifests],
        "files": [{"name": f["name"], "digest": f["digest"], "size": f["size"]} for f in plan.files],
        "blob_count": len(plan.blobs),
        "content_size": sum(blob.size for blob in plan.blobs.values()),
        "created_from": plan.created.source,
    }
    if plan.metadata.get("sbom"):
        document = next(blob.data for name, blob in plan.named if name == SBOM_NAME)
        result["sbom"] = dict(plan.metadata["sbom"], document=json.loads(document))
    if existing is not None and stable_metadata(existing) == stable_metadata(plan.metadata) and \
            custody.scan_settled(existing) and existing_signature_valid(dest, signature_path, signer):
        digests = file_digests(dest, ["sha256"])
        result.update(changed=False, sha256=digests["sha256"].hex(), size=os.path.getsize(dest),
                      created=existing["created"], duration=round(time.monotonic() - started, 3))
        if existing.get("scan"):
            result["scan"] = existing["scan"]
        return result
    result["created"] = plan.created.text
    if check_mode:
        if scanner is not None:
            scanner.resolve()
            result["scan"] = {"scanner": scanner.name, "failOn": scanner.fail_on, "reports": None}
        result.update(changed=True, sha256=None, size=None, duration=round(time.monotonic() - started, 3))
        return result
    staging = tempfile.mkdtemp(dir=spool_dir, prefix=".petra-scan-") if scanner is not None else None
    try:
        if scanner is not None:
            result["scan"] = scan_plan(plan, scanner, staging)
        written = write_bundle(plan, dest, signature_path, signer, plan.created.epoch, level, mode)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    result.update(changed=True, duration=round(time.monotonic() - started, 3), **written)
    return result
