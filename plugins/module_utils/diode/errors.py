# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Errors of the diode package: parts, the signed part index, transports."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.errors import PetraError


class TransferError(PetraError):
    """Parts could not be made, sent, received, or proven; ``parts`` names the ones concerned."""

    def __init__(self, message, hint=None, parts=None, **details):
        super().__init__(message, hint=hint, **details)
        self.parts = list(parts or [])
        if self.parts:
            self.details["parts_failed"] = self.parts
