# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Kubernetes objects read from YAML files and directories, each with the file and line it starts on."""

from __future__ import annotations

import os

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - reported at run time
    HAS_YAML = False

from ansible_collections.petra.core.plugins.module_utils.errors import PetraError

YAML_SUFFIXES = (".yaml", ".yml")


class ManifestError(PetraError):
    """Manifests could not be read or do not validate; ``reason`` is a short machine-readable cause."""

    def __init__(self, message, hint=None, reason="invalid", **details):
        super().__init__(message, hint=hint, **details)
        self.reason = reason


class Document:
    """One YAML document: where it is (file, line, position in the file) and what it holds."""

    __slots__ = ("path", "line", "index", "obj")

    def __init__(self, path, line, index, obj):
        self.path = path
        self.line = line
        self.index = index
        self.obj = obj

    @property
    def location(self):
        return "%s:%d" % (self.path, self.line)


def require_yaml():
    if not HAS_YAML:
        raise ManifestError("the Python library 'PyYAML' is required to read manifests", reason="dependency",
                            hint="Install the collection's requirements.txt on the controller")


def parse_text(text, path):
    """Documents of one YAML text (empty documents are skipped)."""
    require_yaml()
    # libyaml, when PyYAML has it, reads CRDs of hundreds of kilobytes fifty times faster.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    documents = []
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            obj = loader.construct_document(node)
            if obj is not None:
                documents.append(Document(path, node.start_mark.line + 1, index, obj))
            index += 1
    except yaml.YAMLError as exc:
        raise ManifestError("%s is not valid YAML: %s" % (path, exc), reason="yaml", file=path)
    finally:
        loader.dispose()
    return documents


def yaml_files(paths):
    """Every .yaml/.yml file of the given files and directories (directories recursively, sorted, hidden skipped)."""
    found = []
    for given in paths:
        path = os.path.expanduser(given)
        if os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(name for name in dirs if not name.startswith("."))
                found.extend(os.path.join(root, name) for name in sorted(names)
                             if name.endswith(YAML_SUFFIXES) and not name.startswith("."))
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise ManifestError("%s does not exist" % given, reason="missing", file=given,
                                hint="Give files or directories of Kubernetes YAML on the controller")
    return found


def read_files(paths):
    """(files read, documents) for the given files and directories."""
    files = yaml_files(paths)
    documents = []
    for path in files:
        try:
            with open(path, "r", encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ManifestError("cannot read %s: %s" % (path, getattr(exc, "strerror", None) or exc), reason="io",
                                file=path)
        documents.extend(parse_text(text, path))
    return files, documents
