# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Container image references (the distribution reference grammar, as docker and skopeo parse it)."""

from __future__ import annotations

import re

from ansible_collections.petra.core.plugins.module_utils.oci.errors import InvalidReference

DEFAULT_REGISTRY = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"

_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_PATH_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_HOST_RE = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$")
_IPV6_HOST_RE = re.compile(r"^\[[0-9a-fA-F:.]+\](?::[0-9]+)?$")


def is_digest(value):
    return bool(_DIGEST_RE.match(value or ""))


class ImageReference:
    """A parsed reference: registry host, repository path, and a tag and/or a digest."""

    __slots__ = ("registry", "repository", "tag", "digest")

    def __init__(self, registry, repository, tag=None, digest=None):
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest

    @classmethod
    def parse(cls, text):
        if not isinstance(text, str) or not text or text != text.strip():
            raise InvalidReference("image reference %r is empty or has surrounding spaces" % (text,))
        remainder = text
        digest = None
        if "@" in remainder:
            remainder, digest = remainder.split("@", 1)
            if not is_digest(digest):
                raise InvalidReference(
                    "image reference %r: the digest %r is not of the form sha256:<64 hex digits> "
                    "(only SHA-256 digests are accepted)" % (text, digest))
        tag = None
        last_slash = remainder.rfind("/")
        last_colon = remainder.rfind(":")
        if last_colon > last_slash:
            remainder, tag = remainder[:last_colon], remainder[last_colon + 1:]
            if not _TAG_RE.match(tag):
                raise InvalidReference("image reference %r: %r is not a valid tag" % (text, tag))
        parts = remainder.split("/")
        if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost" or parts[0].startswith("[")):
            registry, path_parts = parts[0], parts[1:]
            if not (_HOST_RE.match(registry) or _IPV6_HOST_RE.match(registry)):
                raise InvalidReference("image reference %r: %r is not a valid registry host" % (text, registry))
        else:
            registry, path_parts = DEFAULT_REGISTRY, parts
            if len(path_parts) == 1:
                path_parts = ["library"] + path_parts
        for component in path_parts:
            if not _PATH_COMPONENT_RE.match(component):
                raise InvalidReference(
                    "image reference %r: repository path component %r must be lowercase letters, digits "
                    "and single separators (. _ __ -)" % (text, component))
        if tag is None and digest is None:
            tag = "latest"
        return cls(registry, "/".join(path_parts), tag, digest)

    @property
    def api_host(self):
        """The host to speak the registry API to (Docker Hub serves its API on another name)."""
        return DOCKER_HUB_API_HOST if self.registry == DEFAULT_REGISTRY else self.registry

    @property
    def name(self):
        return "%s/%s" % (self.registry, self.repository)

    def __str__(self):
        text = self.name
        if self.tag:
            text += ":" + self.tag
        if self.digest:
            text += "@" + self.digest
        return text

    def __repr__(self):
        return "ImageReference(%s)" % self

    def __eq__(self, other):
        return isinstance(other, ImageReference) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))

    def with_digest(self, digest):
        return ImageReference(self.registry, self.repository, self.tag, digest)
