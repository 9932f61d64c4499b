# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Errors of the platform package: rendering the addons and policies of a Petra cluster."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.errors import PetraError


class PlatformError(PetraError):
    """The platform cannot be rendered from the options given; ``reason`` is a short machine-readable cause."""

    def __init__(self, message, hint=None, reason="invalid-option", **details):
        super().__init__(message, hint=hint, **details)
        self.reason = reason
