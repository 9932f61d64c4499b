# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The root of every error Petra raises on purpose: what went wrong, and what the operator should do."""

from __future__ import annotations

import traceback


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
    """A task's failure result: for a PetraError its message, short reason code and details; for any other exception
    (a fault in Petra or a library) its message and traceback, so that both reach the operator through the same
    masking of secrets instead of Ansible's raw error report."""
    if not isinstance(exc, PetraError):
        return {"msg": "%s: %s. Petra did not expect this error: ANSIBLE_DISPLAY_TRACEBACK=error shows where it came "
                       "from; unless the system caused it (a full disk, a permission), please report it"
                       % (type(exc).__name__, str(exc).rstrip(".")),
                "reason": "internal-error",
                "exception": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))}
    result = {"msg": str(exc)}
    reason = getattr(exc, "reason", None)
    if reason:
        result["reason"] = reason
    for key, value in exc.details.items():
        result.setdefault(key, value)
    return result
