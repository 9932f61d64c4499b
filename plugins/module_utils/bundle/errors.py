# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Errors of the bundle package: spec, archive writing, and verification."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.errors import PetraError


class BundleError(PetraError):
    """A bundle could not be built or read."""


class SpecError(BundleError):
    """The bundle spec is invalid; the message names the field."""


class VerificationError(BundleError):
    """A bundle failed verification; ``reason`` is a short machine-readable cause."""

    def __init__(self, message, hint=None, reason="invalid", **details):
        super().__init__(message, hint=hint, **details)
        self.reason = reason


class NotReproducedError(BundleError):
    """A rebuild of a bundle from its spec and sources did not give the same bytes (details: what differs)."""

    reason = "not-reproduced"
