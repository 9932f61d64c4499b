# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The root of every error Petra raises on purpose: what went wrong, and what the operator should do."""

from __future__ import annotations


class PetraError(Exception):
    """An error with a plain-words message and, where one exists, the operator's next step."""

    def __init__(self, message, hint=None, **details):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details

    def __str__(self):
        if self.hint:
            return "%s. %s" % (self.message.rstrip("."), self.hint)
        return self.message


def failure_result(exc):
    """A task's failure result for a PetraError: the message, the short reason code, and the error's details."""
    result = {"msg": str(exc)}
    reason = getattr(exc, "reason", None)
    if reason:
        result["reason"] = reason
    for key, value in exc.details.items():
        result.setdefault(key, value)
    return result
