# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Building a module's argument spec from the shared option sets."""

from __future__ import annotations


def merged(*specs, **own):
    """One argument spec from option sets (later ones win) and the module's own options."""
    result = {}
    for spec in specs:
        result.update(spec)
    result.update(own)
    return result
