# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The help of each flag is the module's own documentation of the option: the DOCUMENTATION of
plugins/modules/<module>.py and the doc fragments it extends, read as text (the module files are not imported), so a
flag means what the option means and the two cannot drift apart.
"""

from __future__ import annotations

import ast
import os
import re

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - PyYAML comes with ansible-core
    HAS_YAML = False

PLUGINS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FRAGMENT_PREFIX = "petra.core."
# Ansible's documentation markup: O(option), O(option=value), V(value), C(code), RV(return value), I(italic), ...
_MARKUP = re.compile(r"\b(RV|[OVCIBMU])\(([^()]*)\)")


def _string_assignment(path, name, class_name=None):
    """The string assigned to ``name`` (at the top of the file, or in ``class_name``), without importing the file."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    body = tree.body
    if class_name is not None:
        body = next((node.body for node in body if isinstance(node, ast.ClassDef) and node.name == class_name), [])
    for node in body:
        if isinstance(node, ast.Assign) and any(getattr(target, "id", None) == name for target in node.targets):
            value = ast.literal_eval(node.value)
            if isinstance(value, str):
                return value
    return None


def _markup(text, states):
    def replace(match):
        kind, inner = match.groups()
        if kind == "O" and inner.startswith("state="):
            return "'%s'" % states.get(inner[len("state="):], inner)
        if kind == "O":
            option, _sep, value = inner.partition("=")
            return "--" + option.replace("_", "-") + (" " + value if value else "")
        return inner
    return _MARKUP.sub(replace, text)


def _fragment_options(name):
    module, _sep, part = name[len(FRAGMENT_PREFIX):].partition(".")
    path = os.path.join(PLUGINS, "doc_fragments", module + ".py")
    if not os.path.isfile(path):
        return {}
    text = _string_assignment(path, (part or "documentation").upper(), "ModuleDocFragment")
    return (yaml.safe_load(text) or {}).get("options") or {} if text else {}


def option_help(module_name, states=None):
    """{option name: its description as one line of help} for a module, doc fragments included; ``states`` names
    the command for each value of the module's ``state`` ("present": "petra bundle create")."""
    if not HAS_YAML:
        return {}
    path = os.path.join(PLUGINS, "modules", module_name + ".py")
    text = _string_assignment(path, "DOCUMENTATION") if os.path.isfile(path) else None
    if not text:
        return {}
    document = yaml.safe_load(text) or {}
    options = {}
    for fragment in document.get("extends_documentation_fragment") or []:
        if fragment.startswith(FRAGMENT_PREFIX):
            options.update(_fragment_options(fragment))
    options.update(document.get("options") or {})
    result = {}
    for name, option in options.items():
        description = option.get("description") or []
        if isinstance(description, str):
            description = [description]
        result[name] = " ".join(_markup(" ".join(str(line).split()), states or {}) for line in description)
    return result
