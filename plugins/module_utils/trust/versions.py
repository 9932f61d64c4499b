# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Ordering bundle versions: semantic versioning precedence, with a documented fallback for other strings.

When both versions are semantic versions (``MAJOR.MINOR.PATCH[-pre][+build]``, an optional leading ``v``), they
compare by SemVer 2.0.0 precedence: numbers numerically, a pre-release below its release, pre-release
identifiers one by one (numeric ones numerically and below alphanumeric ones, which compare in ASCII order),
build metadata ignored. Otherwise both compare as sequences of numbers and words (``2024.10.3`` is above
``2024.9.12``): numbers numerically, words in ASCII order, a number above a word, and when one sequence is the
start of the other, the longer one is higher. Separators do not count, so ``1.0`` and ``1-0`` are equal.
"""

from __future__ import annotations

import re

_SEMVER = re.compile(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                     r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
                     r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$")
_TOKEN = re.compile(r"\d+|[A-Za-z]+")


def _identifier(text):
    # Numeric identifiers sort below alphanumeric ones.
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def _semver_key(match):
    release = tuple(int(match.group(number)) for number in (1, 2, 3))
    pre = match.group(4)
    if pre is None:
        return release, (1,)
    return release, (0,) + tuple(_identifier(part) for part in pre.split("."))


def _fallback_key(text):
    # A number sorts above a word; a longer sequence above its own start.
    return [(1, int(token), "") if token.isdigit() else (0, 0, token) for token in _TOKEN.findall(text)]


def compare_versions(left, right):
    """-1, 0 or 1 as ``left`` is lower than, equal to or higher than ``right``."""
    left_match, right_match = _SEMVER.match(left), _SEMVER.match(right)
    if left_match and right_match:
        left_key, right_key = _semver_key(left_match), _semver_key(right_match)
    else:
        left_key, right_key = _fallback_key(left), _fallback_key(right)
    return (left_key > right_key) - (left_key < right_key)


def is_semver(text):
    return _SEMVER.match(text) is not None
