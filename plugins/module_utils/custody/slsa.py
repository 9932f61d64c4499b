# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""What a SLSA provenance predicate says: the builder, the build type and the source the build was made from.

Two predicate versions are in use:
- v1 (``https://slsa.dev/provenance/v1``): ``runDetails.builder.id``, ``buildDefinition.buildType``; the source is
  in ``buildDefinition.externalParameters`` (its shape belongs to the build type: GitHub Actions writes
  ``workflow.repository`` and ``workflow.ref``, others a ``source`` URI) and in ``resolvedDependencies``.
- v0.2 (``https://slsa.dev/provenance/v0.2``, older images): ``builder.id``, ``buildType``; the source is
  ``invocation.configSource`` and ``materials``.
Source URIs are SPDX download locations, ``git+https://host/org/repo@refs/heads/main``: the repository before the
``@`` in the path, the ref after it.
"""

from __future__ import annotations

import fnmatch
import json
from urllib.parse import urlsplit, urlunsplit

PREDICATE_V1 = "https://slsa.dev/provenance/v1"
PREDICATE_V02 = "https://slsa.dev/provenance/v0.2"
PREDICATE_TYPES = (PREDICATE_V1, PREDICATE_V02)


def split_uri(uri):
    """(normalised repository, ref or None) of a source URI: ``git+`` dropped, scheme and host lower case, a
    trailing ``.git`` or ``/`` dropped, the ref taken from after the ``@`` in the path (a user in the host part,
    ``git@host``, is not a ref)."""
    if not isinstance(uri, str) or not uri:
        return None, None
    text = uri[len("git+"):] if uri.startswith("git+") else uri
    parts = urlsplit(text)
    if not parts.scheme or not parts.netloc:
        path, _sep, ref = text.partition("@")
        return path.rstrip("/"), ref or None
    path, _sep, ref = parts.path.partition("@")
    path = path.rstrip("/")
    path = path[:-len(".git")] if path.endswith(".git") else path
    repository = urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, "", ""))
    return repository, ref or None


class Source:
    """One place the provenance names a source: repository, ref, digest, and where in the predicate it was."""

    def __init__(self, uri, ref, digest, where, primary):
        self.repository, uri_ref = split_uri(uri)
        self.ref = ref if isinstance(ref, str) and ref else uri_ref
        digest = digest if isinstance(digest, dict) else {}
        self.digest = {name: value for name, value in sorted(digest.items()) if isinstance(value, str)}
        self.where = where
        self.primary = primary  # what the build was asked to build, not something it happened to read

    def record(self):
        entry = {"repository": self.repository, "where": self.where}
        if self.ref:
            entry["ref"] = self.ref
        if self.digest:
            entry["digest"] = self.digest
        return entry

    def describe(self):
        return "%s%s (%s)" % (self.repository, "@" + self.ref if self.ref else "", self.where)


class Provenance:
    """The parts of a SLSA provenance statement a rule can ask about; ValueError when it is not one."""

    def __init__(self, predicate_type, predicate):
        if predicate_type not in PREDICATE_TYPES:
            raise ValueError("predicate type %r is not SLSA provenance (%s)" % (
                predicate_type, ", ".join(PREDICATE_TYPES)))
        if not isinstance(predicate, dict):
            raise ValueError("the SLSA predicate is not an object")
        self.predicate_type = predicate_type
        try:
            if predicate_type == PREDICATE_V1:
                self.builder_id = predicate["runDetails"]["builder"]["id"]
                definition = predicate["buildDefinition"]
                self.build_type = definition["buildType"]
                self.sources = _v1_sources(definition)
            else:
                self.builder_id = predicate["builder"]["id"]
                self.build_type = predicate["buildType"]
                self.sources = _v02_sources(predicate)
        except (KeyError, TypeError) as exc:
            raise ValueError("the SLSA %s predicate lacks %s" % (predicate_type.rsplit("/", 1)[-1], exc))
        if not isinstance(self.builder_id, str) or not isinstance(self.build_type, str):
            raise ValueError("the SLSA predicate's builder id and build type are not strings")

    @classmethod
    def from_statement(cls, payload):
        """The provenance of an in-toto statement's bytes."""
        try:
            statement = json.loads(payload)
            return cls(statement["predicateType"], statement.get("predicate"))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError("not an in-toto statement with a SLSA predicate (%s)" % exc)

    def builder_problem(self, builder_id=None, builder_id_glob=None, build_type=None):
        """Text saying how the builder or build type differs from what is wanted, or None."""
        if builder_id is not None and self.builder_id != builder_id:
            return "was built by %s, not by %s" % (self.builder_id, builder_id)
        if builder_id_glob is not None and not fnmatch.fnmatchcase(self.builder_id, builder_id_glob):
            return "was built by %s, which does not match %s" % (self.builder_id, builder_id_glob)
        if build_type is not None and self.build_type != build_type:
            return "has build type %s, not %s" % (self.build_type, build_type)
        return None

    def matching_source(self, repository=None, ref=None):
        """The first source with that repository (normalised like the predicate's) and a ref matching the ``ref``
        pattern, primary sources first; None when none does. With neither given, the first primary source."""
        if repository is None and ref is None:
            return next((source for source in self.sources if source.primary), None)
        wanted = split_uri(repository)[0] if repository is not None else None
        for source in sorted(self.sources, key=lambda item: not item.primary):
            if wanted is not None and source.repository != wanted:
                continue
            if ref is not None and not (source.ref and fnmatch.fnmatchcase(source.ref, ref)):
                continue
            return source
        return None


def _v1_sources(definition):
    found = []
    external = definition.get("externalParameters") or {}
    if not isinstance(external, dict):
        external = {}
    workflow = external.get("workflow")
    if isinstance(workflow, dict) and workflow.get("repository"):
        found.append(Source(workflow["repository"], workflow.get("ref"), None, "externalParameters.workflow", True))
    source = external.get("source")
    if isinstance(source, str):
        found.append(Source(source, None, None, "externalParameters.source", True))
    elif isinstance(source, dict) and source.get("uri"):
        found.append(Source(source["uri"], source.get("ref"), source.get("digest"), "externalParameters.source", True))
    if isinstance(external.get("repository"), str):
        found.append(Source(external["repository"], external.get("ref"), None, "externalParameters.repository",
                            True))
    for position, dependency in enumerate(definition.get("resolvedDependencies") or []):
        if isinstance(dependency, dict) and dependency.get("uri"):
            found.append(Source(dependency["uri"], None, dependency.get("digest"),
                                "resolvedDependencies[%d]" % position, False))
    return found


def _v02_sources(predicate):
    found = []
    config = (predicate.get("invocation") or {}).get("configSource")
    if isinstance(config, dict) and config.get("uri"):
        found.append(Source(config["uri"], None, config.get("digest"), "invocation.configSource", True))
    for position, material in enumerate(predicate.get("materials") or []):
        if isinstance(material, dict) and material.get("uri"):
            found.append(Source(material["uri"], None, material.get("digest"), "materials[%d]" % position, False))
    return found
