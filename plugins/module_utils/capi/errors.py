# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Errors of Cluster API mode. A short cause is the ``reason`` detail (``capi-timeout``, ``capi-spec``, ...)."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.flatcar.errors import ClusterError


class CapiError(ClusterError):
    """A workload cluster could not be brought to the requested state through Cluster API objects."""
