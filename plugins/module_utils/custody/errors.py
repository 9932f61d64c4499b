# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Errors of the custody package: source signatures, SBOM, vulnerability gate."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.errors import PetraError


class CustodyError(PetraError):
    """A custody check could not run or refused; ``reason`` is a short machine-readable cause."""

    def __init__(self, message, hint=None, reason="custody", **details):
        super().__init__(message, hint=hint, **details)
        self.reason = reason


class SourceSignatureError(CustodyError):
    """An image does not carry the source signature its verify_images rule requires."""


class ScanError(CustodyError):
    """The vulnerability scanner could not run, or its findings stop the build."""


class ProvenanceError(SourceSignatureError):
    """An image does not carry the SLSA provenance its verify_images rule requires."""
