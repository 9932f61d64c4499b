# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Media types Petra reads and writes, and the descriptors that reference content."""

from __future__ import annotations

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

INDEX_TYPES = frozenset((OCI_INDEX, DOCKER_MANIFEST_LIST))
MANIFEST_TYPES = frozenset((OCI_MANIFEST, DOCKER_MANIFEST))
IMAGE_CONFIG_TYPES = frozenset((OCI_CONFIG, DOCKER_CONFIG))
ACCEPTED_MANIFEST_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST)

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
FLUX_CONFIG = "application/vnd.cncf.flux.config.v1+json"
FLUX_CONTENT_LAYER = "application/vnd.cncf.flux.content.v1.tar+gzip"
PETRA_FILE = "application/vnd.petra.file.v1"

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_TITLE = "org.opencontainers.image.title"
ANNOTATION_VERSION = "org.opencontainers.image.version"
ANNOTATION_PETRA_KIND = "dev.petra.bundle.kind"


def descriptor(media_type, digest, size, annotations=None, platform=None, artifact_type=None):
    """An OCI content descriptor with keys in a stable order."""
    result = {"mediaType": media_type, "digest": digest, "size": size}
    if artifact_type:
        result["artifactType"] = artifact_type
    if platform:
        result["platform"] = platform
    if annotations:
        result["annotations"] = dict(sorted(annotations.items()))
    return result


def platform_string(platform):
    """``os/arch[/variant]`` of a descriptor's platform object."""
    if not platform:
        return ""
    text = "%s/%s" % (platform.get("os", ""), platform.get("architecture", ""))
    if platform.get("variant"):
        text += "/" + platform["variant"]
    return text


def platform_matches(platform, wanted):
    """True when a manifest's platform is one of ``wanted`` (``os/arch`` matches any variant)."""
    if not wanted:
        return True
    full = platform_string(platform)
    base = "%s/%s" % (platform.get("os", ""), platform.get("architecture", "")) if platform else ""
    return any(want == full or want == base for want in wanted)
