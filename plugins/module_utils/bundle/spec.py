# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The bundle spec (``kind: Bundle``): its JSON Schema, loading, and path resolution."""

from __future__ import annotations

import datetime
import os

from ansible_collections.petra.core.plugins.module_utils.schema import HAS_JSONSCHEMA, jsonschema

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - reported at run time
    HAS_YAML = False

from ansible_collections.petra.core.plugins.module_utils.bundle.errors import SpecError
from ansible_collections.petra.core.plugins.module_utils.bundle.timing import NOW, RELATIVE_EXPIRY
from ansible_collections.petra.core.plugins.module_utils.oci.errors import InvalidReference
from ansible_collections.petra.core.plugins.module_utils.oci.reference import ImageReference

API_VERSION = "petra.dev/v1alpha1"
KIND = "Bundle"
NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
SEMVER_PATTERN = (r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                  r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
                  r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$")
PLATFORM_PATTERN = r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$"
ENTRY_NAME_PATTERN = r"^[a-z0-9]([a-z0-9._-]{0,126}[a-z0-9])?$"

# A manifest set or a file: a name for the bundle and a path on the controller.
NAMED_PATH = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "path"],
    "properties": {
        "name": {"type": "string", "pattern": ENTRY_NAME_PATTERN},
        "path": {"type": "string", "minLength": 1},
    },
}

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Petra bundle spec",
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata"],
    "properties": {
        "apiVersion": {"const": API_VERSION},
        "kind": {"const": KIND},
        "metadata": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "version"],
            "properties": {
                "name": {"type": "string", "pattern": NAME_PATTERN},
                "version": {"type": "string", "pattern": SEMVER_PATTERN},
                "expires": {"type": "string", "anyOf": [{"format": "date"}, {"pattern": RELATIVE_EXPIRY}]},
                "created": {"type": "string", "anyOf": [{"format": "date-time"}, {"const": NOW}]},
                "description": {"type": "string", "maxLength": 1024},
            },
        },
        "images": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["ref"],
                "properties": {
                    "ref": {"type": "string", "minLength": 1},
                    "platforms": {"type": "array", "minItems": 1, "uniqueItems": True,
                                  "items": {"type": "string", "pattern": PLATFORM_PATTERN}},
                },
            },
        },
        "charts": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "oneOf": [{"required": ["path"]}, {"required": ["ref", "version"]}],
                "properties": {
                    "path": {"type": "string", "minLength": 1},
                    "ref": {"type": "string", "pattern": r"^oci://[^\s]+$"},
                    "version": {"type": "string", "pattern": SEMVER_PATTERN},
                },
            },
        },
        "manifests": {
            "type": "array",
            "items": NAMED_PATH,
        },
        "files": {
            "type": "array",
            "items": NAMED_PATH,
        },
    },
}

_FRIENDLY = {
    "pattern": {
        NAME_PATTERN: "must be lowercase letters, digits and '-' (at most 63, starting and ending with a letter or digit)",
        SEMVER_PATTERN: "must be a semantic version such as 1.4.0",
        PLATFORM_PATTERN: "must read os/arch or os/arch/variant, e.g. linux/amd64",
        ENTRY_NAME_PATTERN: "must be lowercase letters, digits, '.', '_' and '-'",
        r"^oci://[^\s]+$": "must start with oci://",
    },
}


def _field_path(error):
    text = ""
    for part in error.absolute_path:
        text += "[%d]" % part if isinstance(part, int) else ("." if text else "") + str(part)
    return text or "(the spec)"


def _describe(error):
    if error.validator == "pattern":
        return "%r %s" % (error.instance, _FRIENDLY["pattern"].get(error.validator_value, "has the wrong form"))
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown field")
    if error.validator == "anyOf" and _field_path(error) == "metadata.expires":
        return "%r is neither a date YYYY-MM-DD nor a period P<n>D or P<n>W after created" % (error.instance,)
    if error.validator == "anyOf" and _field_path(error) == "metadata.created":
        return "%r is neither an RFC 3339 date-time nor %r" % (error.instance, NOW)
    if error.validator == "oneOf" and _field_path(error).startswith("charts"):
        return "give either 'path' (a packaged chart) or 'ref' (oci://...) with 'version', not both or neither"
    if error.validator == "const":
        return "must be %r, not %r" % (error.validator_value, error.instance)
    if error.validator == "format":
        return "%r is not a valid %s" % (error.instance, error.validator_value)
    return error.message


def validate(document):
    """Raise SpecError naming the first invalid field (in document order)."""
    if not HAS_JSONSCHEMA:
        raise SpecError("the Python library 'jsonschema' is required to validate bundle specs",
                        hint="Install the collection's requirements.txt on the controller")
    if not isinstance(document, dict):
        raise SpecError("the bundle spec must be a mapping (apiVersion, kind, metadata, images, ...)")
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        first = errors[0]
        raise SpecError("bundle spec field %s: %s" % (_field_path(first), _describe(first)),
                        hint="See docs/bundle-spec.md for the fields and their forms", field=_field_path(first))
    for index, image in enumerate(document.get("images") or []):
        try:
            ImageReference.parse(image["ref"])
        except InvalidReference as exc:
            raise SpecError("bundle spec field images[%d].ref: %s" % (index, exc.message), field="images[%d].ref" % index)
    for section in ("manifests", "files"):
        seen = set()
        for index, item in enumerate(document.get(section) or []):
            if item["name"] in seen:
                raise SpecError("bundle spec field %s[%d].name: %r is used twice" % (section, index, item["name"]))
            seen.add(item["name"])


def _normalise_dates(document):
    """YAML reads bare dates as date objects; the schema speaks strings."""
    metadata = document.get("metadata")
    if isinstance(metadata, dict):
        for key in ("expires", "created"):
            value = metadata.get(key)
            if isinstance(value, datetime.datetime):
                if value.tzinfo is None:
                    value = value.replace(tzinfo=datetime.timezone.utc)
                metadata[key] = value.isoformat().replace("+00:00", "Z")
            elif isinstance(value, datetime.date):
                metadata[key] = value.isoformat()
    return document


class BundleSpec:
    """A validated spec with every relative path resolved against ``base_dir``."""

    def __init__(self, document, base_dir):
        document = _normalise_dates(_copy(document))
        validate(document)
        self.document = document
        self.base_dir = base_dir
        meta = document["metadata"]
        self.name = meta["name"]
        self.version = meta["version"]
        self.expires = meta.get("expires")
        self.created = meta.get("created")
        self.images = [dict(item) for item in document.get("images") or []]
        self.charts = [self._resolved(item) for item in document.get("charts") or []]
        self.manifests = [self._resolved(item) for item in document.get("manifests") or []]
        self.files = [self._resolved(item) for item in document.get("files") or []]
        if not (self.images or self.charts or self.manifests or self.files):
            raise SpecError("the bundle spec lists no images, charts, manifests or files",
                            hint="Add at least one item; an empty bundle carries nothing")

    def _resolved(self, item):
        result = dict(item)
        if "path" in result:
            result["path"] = os.path.normpath(os.path.join(self.base_dir, os.path.expanduser(result["path"])))
        return result

    @classmethod
    def from_file(cls, path):
        if not HAS_YAML:
            raise SpecError("the Python library 'PyYAML' is required to read bundle specs")
        try:
            with open(path, "rb") as handle:
                document = yaml.safe_load(handle)
        except OSError as exc:
            raise SpecError("cannot read the bundle spec %s: %s" % (path, exc.strerror),
                            hint="Check 'spec'; it is read on the Ansible controller")
        except yaml.YAMLError as exc:
            raise SpecError("the bundle spec %s is not valid YAML: %s" % (path, exc))
        return cls(document, os.path.dirname(os.path.abspath(path)))

    @classmethod
    def from_definition(cls, definition, base_dir):
        return cls(definition, base_dir)


def _copy(value):
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
