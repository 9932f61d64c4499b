# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Schemas of custom resources: from CustomResourceDefinitions (files, directories, the ``crds/`` of packaged Helm
charts, or CRDs among the manifests themselves) and from Gatekeeper ConstraintTemplates, which define constraint kinds.

A CRD's ``openAPIV3Schema`` is made strict the way the API server treats a request under kubectl's default strict
field validation: an object schema with properties and neither ``additionalProperties`` nor
``x-kubernetes-preserve-unknown-fields`` refuses unknown fields, ``nullable`` admits null, and
``x-kubernetes-int-or-string`` admits both. Only served versions are used.
"""

from __future__ import annotations

import os
import tarfile

from ansible_collections.petra.core.plugins.module_utils.manifests.documents import (
    YAML_SUFFIXES,
    ManifestError,
    parse_text,
    yaml_files,
)

CONSTRAINT_GROUP = "constraints.gatekeeper.sh"
CONSTRAINT_VERSIONS = ("v1", "v1beta1", "v1alpha1")
TEMPLATE_GROUP = "templates.gatekeeper.sh"
_STRINGS = {"type": "array", "items": {"type": "string"}}
_SELECTOR = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
# The ``match`` of every Gatekeeper constraint (the fields Gatekeeper documents).
CONSTRAINT_MATCH = {
    "type": "object",
    "properties": {
        "kinds": {"type": "array", "items": {"type": "object", "properties": {
            "apiGroups": _STRINGS, "kinds": _STRINGS}}},
        "scope": {"type": "string", "enum": ["*", "Cluster", "Namespaced"]},
        "namespaces": _STRINGS,
        "excludedNamespaces": _STRINGS,
        "labelSelector": _SELECTOR,
        "namespaceSelector": _SELECTOR,
        "name": {"type": "string"},
        "source": {"type": "string", "enum": ["All", "Generated", "Original"]},
    },
}


def strict(schema, junctor=False):
    """A JSON Schema from a structural OpenAPI v3 schema, refusing unknown fields where the API server would.

    Inside allOf/anyOf/oneOf/not, ``properties`` only constrain values (structural schemas declare fields outside
    them), so nothing is made strict there.
    """
    if not isinstance(schema, dict):
        return schema
    result = {}
    for key, value in schema.items():
        if key in ("properties", "patternProperties", "definitions"):
            result[key] = {name: strict(item, junctor) for name, item in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            result[key] = strict(value, junctor)
        elif key == "not" and isinstance(value, dict):
            result[key] = strict(value, True)
        elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
            result[key] = [strict(item, True) for item in value]
        else:
            result[key] = value
    if result.get("nullable") is True and isinstance(result.get("type"), str):
        result["type"] = [result["type"], "null"]
    if result.get("x-kubernetes-int-or-string") is True and "type" not in result and "anyOf" not in result:
        result["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if "properties" in result and "additionalProperties" not in result and not junctor \
            and not result.get("x-kubernetes-preserve-unknown-fields"):
        result["additionalProperties"] = False
    return result


def _root(spec_schema_properties):
    """An object's root schema: apiVersion, kind and metadata (checked separately) and the CRD's own fields."""
    properties = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}}
    properties.update(spec_schema_properties)
    return properties


class SchemaSet:
    """(apiVersion, kind) -> (strict JSON Schema, scope, where it came from)."""

    def __init__(self):
        self.schemas = {}

    def __contains__(self, key):
        return key in self.schemas

    def get(self, key):
        return self.schemas.get(key)

    def add_crd(self, crd, source):
        spec = crd.get("spec") if isinstance(crd, dict) else None
        try:
            group, kind, scope = spec["group"], spec["names"]["kind"], spec.get("scope", "Namespaced")
            versions = spec["versions"]
        except (KeyError, TypeError):
            raise ManifestError("%s: a CustomResourceDefinition without group, names.kind and versions" % source,
                                reason="crd")
        for version in versions:
            if not version.get("served", True):
                continue
            schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or spec.get("validation", {}).get(
                "openAPIV3Schema")
            if not isinstance(schema, dict):
                schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
            root = dict(schema)
            root["properties"] = _root(schema.get("properties") or {})
            self.schemas[("%s/%s" % (group, version["name"]), kind)] = (strict(root), scope, source)

    def add_constraint_template(self, template, source):
        """The constraint kind a ConstraintTemplate defines, with its parameters schema."""
        names = (((template.get("spec") or {}).get("crd") or {}).get("spec") or {})
        kind = (names.get("names") or {}).get("kind")
        if not kind:
            return
        validation = names.get("validation") or {}
        parameters = validation.get("openAPIV3Schema") or {"type": "object",
                                                           "x-kubernetes-preserve-unknown-fields": True}
        spec = {"type": "object", "properties": {
            "enforcementAction": {"type": "string"},
            "scopedEnforcementActions": {"type": "array", "items": {"type": "object",
                                                                    "x-kubernetes-preserve-unknown-fields": True}},
            "match": CONSTRAINT_MATCH,
            "parameters": parameters,
        }}
        root = {"type": "object", "properties": _root({
            "spec": spec, "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}})}
        for version in CONSTRAINT_VERSIONS:
            self.schemas[("%s/%s" % (CONSTRAINT_GROUP, version), kind)] = (strict(root), "Cluster", source)

    def add_documents(self, documents):
        """CRDs and ConstraintTemplates among already-read documents."""
        for document in documents:
            obj = document.obj
            if not isinstance(obj, dict):
                continue
            if obj.get("kind") == "CustomResourceDefinition" and str(obj.get("apiVersion", "")).startswith(
                    "apiextensions.k8s.io/"):
                self.add_crd(obj, document.location)
            elif obj.get("kind") == "ConstraintTemplate" and str(obj.get("apiVersion", "")).startswith(
                    TEMPLATE_GROUP + "/"):
                self.add_constraint_template(obj, document.location)

    def load(self, paths):
        """CRDs from YAML files, directories and packaged charts (``.tgz``: the YAML under ``<chart>/crds/``)."""
        for given in paths:
            path = os.path.expanduser(given)
            if os.path.isfile(path) and path.endswith((".tgz", ".tar.gz")):
                self.add_documents(_chart_crds(path))
            else:
                for name in yaml_files([path]):
                    self.schemas.update(_file_schemas(name))
        return self


# CRD files are large (hundreds of kilobytes each) and read again by every validation in one process (a playbook
# validating several trees, the tests): their schemas are kept per file, as long as the file is unchanged.
_FILE_CACHE = {}


def _file_schemas(name):
    try:
        stat = os.stat(name)
        key = (os.path.abspath(name), stat.st_mtime_ns, stat.st_size)
        if key not in _FILE_CACHE:
            with open(name, "r", encoding="utf-8") as handle:
                text = handle.read()
            found = SchemaSet()
            found.add_documents(parse_text(text, name))
            _FILE_CACHE[key] = found.schemas
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError("cannot read %s: %s" % (name, getattr(exc, "strerror", None) or exc), reason="io",
                            file=name)
    return _FILE_CACHE[key]


def _chart_crds(path):
    """Documents of the ``crds/`` directory of a packaged chart, read from the archive as it streams."""
    documents = []
    try:
        with tarfile.open(path, mode="r|gz") as archive:
            for member in archive:
                parts = member.name.split("/")
                if member.isfile() and len(parts) >= 3 and parts[1] == "crds" and member.name.endswith(YAML_SUFFIXES):
                    handle = archive.extractfile(member)
                    text = handle.read().decode("utf-8")
                    documents.extend(parse_text(text, "%s!%s" % (path, member.name)))
    except (OSError, tarfile.TarError, UnicodeDecodeError) as exc:
        raise ManifestError("cannot read the chart %s: %s" % (path, exc), reason="io", file=path)
    return documents
