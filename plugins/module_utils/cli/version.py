# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Which Petra this is: the collection's version, read from the collection itself (galaxy.yml in a checkout,
MANIFEST.json in a built collection) or, for a pip installation, from the installed distribution's metadata. One
version, stated once in galaxy.yml (setup.py reads it too).
"""

from __future__ import annotations

import json
import os
import platform
import re

COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DISTRIBUTION = "petra-core"


def collection_version(root=COLLECTION_ROOT):
    """The version in galaxy.yml or MANIFEST.json at ``root``, or None."""
    try:
        with open(os.path.join(root, "galaxy.yml"), encoding="utf-8") as handle:
            match = re.search(r"^version:\s*['\"]?([^'\"\s]+)", handle.read(), re.MULTILINE)
            if match:
                return match.group(1)
    except OSError:
        pass
    try:
        with open(os.path.join(root, "MANIFEST.json"), encoding="utf-8") as handle:
            return json.load(handle)["collection_info"]["version"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _distribution_version(name):
    try:
        from importlib import metadata
        return metadata.version(name)
    except Exception:  # not installed with pip, or metadata unreadable: no version to report from there
        return None


def versions():
    try:
        from ansible.module_utils.ansible_release import __version__ as ansible_core
    except ImportError:
        ansible_core = None
    return {"petra": collection_version() or _distribution_version(DISTRIBUTION) or "unknown",
            "ansible_core": ansible_core, "python": platform.python_version(),
            "rich": _distribution_version("rich")}
