# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Errors of the evidence package: an assessment that cannot run at all (a source that cannot be read is a finding,
not an error)."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.errors import PetraError


class EvidenceError(PetraError):
    """The assessment could not be made or written; ``reason`` says which step."""

    def __init__(self, message, hint=None, reason="evidence", **details):
        super().__init__(message, hint=hint, **details)
        self.reason = reason
