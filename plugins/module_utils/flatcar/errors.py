# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Errors of the flatcar package: one family, one class per job. A short cause, where there is one, is the
``reason`` detail (``aws``, ``quorum``, ``instance-timeout``, ``digest-mismatch``, ...)."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.errors import PetraError


class FlatcarError(PetraError):
    """Anything petra_flatcar could not do."""


class IgnitionError(FlatcarError):
    """The node's options cannot make a valid, hardened config, or the config cannot be published."""


class BuildInfoError(FlatcarError):
    """A binary has no readable Go build information, or fails the FIPS requirement."""


class ClusterError(FlatcarError):
    """The cluster could not be brought to the requested state; details say where a roll stopped."""


class AMIImportError(FlatcarError):
    """The image could not be verified or imported."""
