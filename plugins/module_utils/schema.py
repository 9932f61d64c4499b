# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""jsonschema for every package, imported without the IRI grammar that costs seconds per process.

Where ``jsonschema[format]`` is installed (ansible-lint and other tools pull it in), importing jsonschema also
imports ``rfc3987_syntax``, which compiles a full grammar at import time: about 3 s for every module run, every
task's action plugin and every ``petra`` command. Petra's schemas use only the ``date`` and ``date-time`` formats,
so jsonschema is imported with that one optional package hidden, which jsonschema treats as absent (it then only
skips its ``iri`` format checks). The package stays importable for anyone else afterwards.
"""

from __future__ import annotations

import sys

_SLOW_OPTIONAL = "rfc3987_syntax"

try:
    _hide = "jsonschema" not in sys.modules and _SLOW_OPTIONAL not in sys.modules
    if _hide:
        sys.modules[_SLOW_OPTIONAL] = None  # an import of it now raises ImportError
    try:
        import jsonschema  # pylint: disable=unused-import
    finally:
        if _hide:
            del sys.modules[_SLOW_OPTIONAL]
    HAS_JSONSCHEMA = True
except ImportError:  # pragma: no cover - reported at run time by each caller
    jsonschema = None
    HAS_JSONSCHEMA = False
