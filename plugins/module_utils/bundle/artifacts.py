# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Packaging of non-image content as OCI artifacts: Helm charts, Flux manifest sets, named files.

Every artifact is built deterministically (sorted entries, fixed times and owners, gzip without a
name or time stamp), so that the same inputs give the same digests and the same bundle.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
import tarfile
import tempfile

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - reported at run time
    HAS_YAML = False

from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError
from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes
from ansible_collections.petra.core.plugins.module_utils.oci.blobs import (
    EMPTY_JSON,
    READ_CHUNK,
    Blob,
    artifact_manifest,
    canonical_json,
)

MAX_CHART_YAML = 1 << 20


def hash_file(path):
    """(digest, size) of a file, read in chunks."""
    hasher = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as handle:
            while True:
                chunk = handle.read(READ_CHUNK)
                if not chunk:
                    break
                hasher.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise BundleError("cannot read %s: %s" % (path, exc.strerror), hint="Check the path in the bundle spec")
    return "sha256:" + hasher.hexdigest(), size


def _read_chart_metadata(path):
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            for member in archive:
                parts = member.name.split("/")
                if len(parts) == 2 and parts[1] == "Chart.yaml" and member.isfile():
                    if member.size > MAX_CHART_YAML:
                        raise BundleError("Chart.yaml in %s is larger than 1 MiB" % path)
                    return yaml.safe_load(archive.extractfile(member).read())
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleError("the chart %s is not a packaged chart (.tgz): %s" % (path, exc),
                          hint="Package it with 'helm package'")
    except yaml.YAMLError as exc:
        raise BundleError("Chart.yaml in %s is not valid YAML: %s" % (path, exc))
    raise BundleError("the chart %s has no <chart>/Chart.yaml" % path, hint="Package it with 'helm package'")


def chart_artifact(path):
    """(manifest bytes, [blobs], chart name, chart version) of a packaged chart file."""
    if not HAS_YAML:
        raise BundleError("the Python library 'PyYAML' is required to read charts")
    meta = _read_chart_metadata(path)
    if not isinstance(meta, dict) or not meta.get("name") or not meta.get("version"):
        raise BundleError("Chart.yaml in %s lacks a name or a version" % path)
    config = Blob.from_bytes(canonical_json(meta), mediatypes.HELM_CONFIG)
    digest, size = hash_file(path)
    layer = Blob(digest, size, mediatypes.HELM_CHART_LAYER, path=path)
    manifest = artifact_manifest(config, [(layer, None)], annotations={
        mediatypes.ANNOTATION_TITLE: str(meta["name"]),
        mediatypes.ANNOTATION_VERSION: str(meta["version"]),
    })
    return manifest, [config, layer], str(meta["name"]), str(meta["version"])


def _walk_manifest_dir(root):
    """Sorted relative paths of the regular files below root, refusing links and special files."""
    if not os.path.isdir(root):
        raise BundleError("the manifest directory %s does not exist" % root, hint="Check the path in the bundle spec")
    found = []
    for current, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith("."):
                continue
            full = os.path.join(current, name)
            mode = os.lstat(full).st_mode
            if not stat.S_ISREG(mode):
                raise BundleError("%s is not a regular file (links and special files are not carried)" % full,
                                  hint="Replace the link with the file it points to")
            found.append(os.path.relpath(full, root))
        for name in dirs:
            if os.path.islink(os.path.join(current, name)):
                raise BundleError("%s is a link to a directory; links are not carried" % os.path.join(current, name))
    return sorted(found)


def _check_yaml(path, relative):
    if not relative.endswith((".yaml", ".yml")):
        return
    try:
        with open(path, "rb") as handle:
            list(yaml.safe_load_all(handle))
    except yaml.YAMLError as exc:
        raise BundleError("the manifest file %s is not valid YAML: %s" % (path, exc))


def deterministic_tgz(root, relative_paths, mtime, spool_dir=None):
    """A spooled file holding a reproducible tar.gz of the given files."""
    out = tempfile.SpooledTemporaryFile(max_size=64 << 20, dir=spool_dir)
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for relative in relative_paths:
                full = os.path.join(root, relative)
                info = tarfile.TarInfo(relative.replace(os.sep, "/"))
                info.size = os.path.getsize(full)
                info.mtime = int(mtime)
                info.mode = 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with open(full, "rb") as handle:
                    archive.addfile(info, handle)
    out.seek(0)
    return out


def manifest_set_artifact(name, root, version, mtime, spool_dir=None):
    """(manifest bytes, [blobs], file count) of a directory of YAML packed as a Flux OCI artifact."""
    if not HAS_YAML:
        raise BundleError("the Python library 'PyYAML' is required to read manifests")
    relative_paths = _walk_manifest_dir(root)
    if not relative_paths:
        raise BundleError("the manifest directory %s holds no files" % root)
    for relative in relative_paths:
        _check_yaml(os.path.join(root, relative), relative)
    spooled = deterministic_tgz(root, relative_paths, mtime, spool_dir)
    data = spooled.read()
    spooled.close()
    layer = Blob.from_bytes(data, mediatypes.FLUX_CONTENT_LAYER)
    config = Blob.from_bytes(EMPTY_JSON, mediatypes.FLUX_CONFIG)
    manifest = artifact_manifest(config, [(layer, None)], annotations={
        "org.opencontainers.image.revision": "%s@%s" % (version, layer.digest),
        "org.opencontainers.image.source": "petra://%s" % name,
        mediatypes.ANNOTATION_TITLE: name,
    })
    return manifest, [config, layer], len(relative_paths)


def file_artifact(name, path):
    """(manifest bytes, [blobs]) of one named file, carried as an OCI artifact."""
    if not os.path.isfile(path):
        raise BundleError("the file %s for %r does not exist or is not a regular file" % (path, name),
                          hint="Check the path in the bundle spec")
    digest, size = hash_file(path)
    layer = Blob(digest, size, "application/octet-stream", path=path)
    config = Blob.from_bytes(EMPTY_JSON, mediatypes.OCI_EMPTY)
    manifest = artifact_manifest(config, [(layer, {mediatypes.ANNOTATION_TITLE: os.path.basename(path)})],
                                 annotations={mediatypes.ANNOTATION_TITLE: name},
                                 artifact_type=mediatypes.PETRA_FILE)
    return manifest, [config, layer]


def image_blob_descriptors(manifest_bytes, source):
    """The config and layer descriptors of an image manifest, checked for form."""
    try:
        manifest = json.loads(manifest_bytes)
        descriptors = [manifest["config"]] + list(manifest.get("layers") or [])
        for item in descriptors:
            if not (isinstance(item.get("digest"), str) and item["digest"].startswith("sha256:")
                    and len(item["digest"]) == 71 and isinstance(item.get("size"), int) and item["size"] >= 0):
                raise ValueError("descriptor %r" % (item,))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BundleError("the manifest of %s is not a valid image manifest (%s)" % (source, exc),
                          hint="Only sha256 digests are carried; re-push the image with a current tool")
    return descriptors
