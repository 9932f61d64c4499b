# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Errors of the load package: pushing a verified bundle into a registry and the cluster."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.errors import PetraError


class LoadError(PetraError):
    """A verified bundle could not be loaded; what was pushed so far is complete and safe to build on."""
