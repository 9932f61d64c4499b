# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Validation of Kubernetes objects before anything ships: built-in kinds against the Kubernetes OpenAPI schemas of
one Kubernetes version (``kubernetes-validate``, strict: unknown fields are errors), custom resources against their
CRDs (see ``schemas.py``), their metadata against ObjectMeta. Every problem is a Finding naming the file and line,
the object (kind, namespace/name) and the field."""

from __future__ import annotations

import re

from ansible_collections.petra.core.plugins.module_utils.schema import HAS_JSONSCHEMA, jsonschema

from ansible_collections.petra.core.plugins.module_utils.manifests.documents import ManifestError, read_files
from ansible_collections.petra.core.plugins.module_utils.manifests.schemas import SchemaSet

# Kubernetes of k3s v1.33, the release Petra's nodes run.
KUBERNETES_VERSION = "1.33"
MAX_FINDINGS_PER_OBJECT = 20


def _kubernetes_validate():
    """The library, imported when first needed: it carries schemas for every Kubernetes release (100 MB)."""
    try:
        import kubernetes_validate
        import referencing
    except ImportError:
        raise ManifestError("the Python library 'kubernetes-validate' is required to validate Kubernetes objects",
                            hint="Install the collection's requirements.txt on the controller", reason="dependency")
    return kubernetes_validate, referencing


class CoreSchemas:
    """Validators for built-in kinds from kubernetes-validate's strict schemas of one Kubernetes minor version.

    ``kubernetes_validate.validate`` reads the 1.4 MB definitions file on every call; this keeps it, and a validator
    per kind, for the life of the process (same files, same Draft 2020-12 validation, same reference registry).
    """

    _cache = {}

    def __init__(self, version):
        library, referencing = _kubernetes_validate()
        utils = library.utils
        matching = [item for item in utils.all_versions() if utils.major_minor(item) == str(version)]
        if not matching:
            supported = sorted({utils.major_minor(item) for item in utils.all_versions()},
                               key=lambda text: [int(part) for part in text.split(".")])
            raise ManifestError("kubernetes_version %r is not one kubernetes-validate has schemas for" % (version,),
                                hint="Give MAJOR.MINOR, one of %s" % ", ".join(supported), reason="version")
        self.utils = utils
        self.referencing = referencing
        self.version = str(version)
        self.directory = "kubernetes-json-schema/v%s-local-strict" % matching[-1]
        key = ("definitions", self.directory)
        if key not in self._cache:
            self._cache[key] = referencing.Resource.from_contents(
                utils.schema_contents(self.directory + "/_definitions.json", self.version))
        self.definitions = self._cache[key]

    def validator(self, api_version, kind):
        """A validator for the kind, or None when Kubernetes has no such built-in kind."""
        key = (self.directory, api_version, kind)
        if key not in self._cache:
            # rbac.authorization.k8s.io/v1 -> rbac-v1, as kubernetes-validate names its files.
            name = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
            try:
                schema = self.utils.schema_contents("%s/%s-%s.json" % (self.directory, kind.lower(), name),
                                                    self.version)
            except FileNotFoundError:
                self._cache[key] = None
            else:
                registry = self.referencing.Resource.from_contents(schema) @ self.referencing.Registry()
                registry = self.definitions @ registry
                self._cache[key] = jsonschema.Draft202012Validator(schema, registry=registry)
        return self._cache[key]


def field_path(parts):
    text = ""
    for part in parts:
        text += "[%d]" % part if isinstance(part, int) else ("." if text else "") + str(part)
    return text


class Finding:
    """One problem: where (file:line), which object, which field, and what is wrong."""

    __slots__ = ("file", "line", "kind", "namespace", "name", "field", "message")

    def __init__(self, document, field, message):
        obj = document.obj if isinstance(document.obj, dict) else {}
        metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        self.file = document.path
        self.line = document.line
        self.kind = str(obj.get("kind") or "(no kind)")
        self.namespace = metadata.get("namespace") or ""
        self.name = metadata.get("name") or metadata.get("generateName") or "(no name)"
        self.field = field
        self.message = message

    @property
    def object(self):
        return "%s %s" % (self.kind, "%s/%s" % (self.namespace, self.name) if self.namespace else self.name)

    def as_dict(self):
        return {"file": self.file, "line": self.line, "object": self.object, "kind": self.kind,
                "namespace": self.namespace, "name": self.name, "field": self.field, "message": self.message}

    def __str__(self):
        return "%s:%d: %s: %s: %s" % (self.file, self.line, self.object, self.field or "(object)", self.message)


def _error_field(error):
    """The field an error is about; for an unexpected field, that field itself."""
    parts = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set((error.schema or {}).get("properties") or {})
        unexpected = sorted(key for key in error.instance if key not in allowed)
        if len(unexpected) == 1:
            parts.append(unexpected[0])
            return field_path(parts), "unknown field %r" % unexpected[0]
    return field_path(parts), error.message


class Validator:
    """Validates documents; custom resources need their schemas in ``schemas`` (a SchemaSet)."""

    def __init__(self, schemas, kubernetes_version=KUBERNETES_VERSION, allow_unknown_kinds=()):
        if not HAS_JSONSCHEMA:
            raise ManifestError("the Python library 'jsonschema' is required to validate manifests",
                                hint="Install the collection's requirements.txt on the controller", reason="dependency")
        self.schemas = schemas
        self.kubernetes_version = kubernetes_version
        self.allow_unknown_kinds = set(allow_unknown_kinds)
        self.core = CoreSchemas(kubernetes_version)
        self._validators = {}
        self.checked = 0
        self.skipped = []

    def _allowed_unknown(self, api_version, kind):
        return bool({"*", kind, "%s/%s" % (api_version, kind)} & self.allow_unknown_kinds)

    def _core(self, document, obj):
        """Findings of a built-in kind; None when Kubernetes has no schema for it."""
        validator = self.core.validator(obj["apiVersion"], obj["kind"])
        if validator is None:
            return None
        return self._errors(document, validator, obj)

    def _errors(self, document, validator, obj):
        errors = sorted(validator.iter_errors(obj), key=lambda error: [str(part) for part in error.absolute_path])
        return [Finding(document, *_error_field(error)) for error in errors[:MAX_FINDINGS_PER_OBJECT]]

    @staticmethod
    def _name(document, obj):
        """The API server refuses an object without a name (or generateName); the OpenAPI schemas do not."""
        metadata = obj.get("metadata")
        if isinstance(metadata, dict) and (metadata.get("name") or metadata.get("generateName")):
            return []
        return [Finding(document, "metadata.name", "a name is required")]

    def _metadata(self, document, obj):
        """ObjectMeta of a custom resource, checked with the core schema (through a ConfigMap around it)."""
        if self._name(document, obj):
            return self._name(document, obj)
        findings = self._core(document, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj["metadata"]})
        return findings or []

    def _custom(self, document, obj, key):
        schema, scope, _source = self.schemas.get(key)
        validator = self._validators.get(key)
        if validator is None:
            validator = jsonschema.Draft7Validator(schema)
            self._validators[key] = validator
        findings = self._metadata(document, obj)
        namespace = (obj.get("metadata") or {}).get("namespace") if isinstance(obj.get("metadata"), dict) else None
        if scope == "Cluster" and namespace:
            findings.append(Finding(document, "metadata.namespace",
                                    "%s is cluster-scoped and takes no namespace" % obj["kind"]))
        return findings + self._errors(document, validator, obj)

    def validate(self, document):
        """The findings for one document (an empty list when it is valid)."""
        obj = document.obj
        if not isinstance(obj, dict):
            return [Finding(document, "", "not a Kubernetes object (a YAML mapping with apiVersion and kind)")]
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not api_version or not isinstance(kind, str) or not kind:
            return [Finding(document, "apiVersion" if not api_version else "kind", "apiVersion and kind are required")]
        self.checked += 1
        key = (api_version, kind)
        if key in self.schemas:
            return self._custom(document, obj, key)
        findings = self._core(document, obj)
        if findings is not None:
            return findings + self._name(document, obj)
        if self._allowed_unknown(api_version, kind):
            self.skipped.append("%s %s" % (api_version, kind))
            return self._metadata(document, obj)
        return [Finding(document, "", "no schema for %s %s: not a Kubernetes %s kind and no CRD given for it" % (
            api_version, kind, self.kubernetes_version))]

    def validate_all(self, documents):
        findings = []
        for document in documents:
            findings.extend(self.validate(document))
        return findings


def check_manifests(paths, crds=(), kubernetes_version=KUBERNETES_VERSION, allow_unknown_kinds=()):
    """(files, documents, findings, validator) for the manifests at paths."""
    files, documents = read_files(paths)
    schemas = SchemaSet().load(crds)
    # CRDs and ConstraintTemplates shipped with the manifests define kinds for the rest of them.
    schemas.add_documents(documents)
    validator = Validator(schemas, kubernetes_version, allow_unknown_kinds)
    return files, documents, validator.validate_all(documents), validator
