# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The bundle's ``created`` time and the ``expires`` date that may count from it.

Two builds of one spec from the same sources must give the same bytes on any host, in any directory, at any time,
so ``created`` (the metadata field, every tar header's mtime, the SBOM timestamp) never comes from the clock unless
the user asks for it. In order: ``SOURCE_DATE_EPOCH`` (the reproducible-builds convention: it stands in for the
current time), ``metadata.created`` (an RFC 3339 time, or ``now`` for the wall clock), else a time read from the
sources: the newest ``created`` among the configs of the images carried, or the Unix epoch when none has one. File
modification times are never used: they depend on the checkout, not on the content.
"""

from __future__ import annotations

import datetime
import json
import re
import time

from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError

NOW = "now"
RELATIVE_EXPIRY = r"^P([1-9][0-9]{0,4})([DW])$"
MAX_CONFIG_SIZE = 4 << 20  # image configs are a few KB; a larger one is carried but not read for its time
LATEST = 253402300799  # 9999-12-31T23:59:59Z: beyond it no RFC 3339 text exists

# Where the time came from (the result's created_from); the first three are stated by the user.
FROM_ENVIRONMENT = "SOURCE_DATE_EPOCH"
FROM_SPEC = "metadata.created"
FROM_CLOCK = "now"
FROM_IMAGES = "image configs"
FROM_EPOCH = "fixed epoch"
STATED = (FROM_ENVIRONMENT, FROM_SPEC, FROM_CLOCK)

_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:([Zz])|([+-])(\d{2}):(\d{2}))$")


class Created:
    """A creation time in whole seconds since the epoch, and where it came from."""

    __slots__ = ("epoch", "source")

    def __init__(self, epoch, source):
        self.epoch = int(epoch)
        self.source = source

    @property
    def text(self):
        return datetime.datetime.fromtimestamp(self.epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    @property
    def date(self):
        return datetime.datetime.fromtimestamp(self.epoch, datetime.timezone.utc).date()

    @property
    def stated(self):
        return self.source in STATED


def parse_rfc3339(text):
    """Whole seconds since the epoch (fractions dropped) of an RFC 3339 date-time; ValueError if it is none."""
    match = _RFC3339.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError("%r is not an RFC 3339 date-time" % (text,))
    year, month, day, hour, minute, second = (int(part) for part in match.group(1, 2, 3, 4, 5, 6))
    offset = datetime.timedelta(0)
    if match.group(9):
        offset = datetime.timedelta(hours=int(match.group(10)), minutes=int(match.group(11)))
        offset = -offset if match.group(9) == "-" else offset
    try:
        moment = datetime.datetime(year, month, day, hour, minute, second, tzinfo=datetime.timezone(offset))
        return int(moment.timestamp())
    except OverflowError:  # year 1 with a positive offset falls before datetime's range
        raise ValueError("%r is outside the range of dates" % (text,))


def _checked(epoch, source, what):
    if not 0 <= epoch <= LATEST:
        raise BundleError("%s gives a creation time outside 1970-01-01 .. 9999-12-31" % what,
                          hint="Give a time from 1970 on (tar headers cannot hold earlier ones)")
    return Created(epoch, source)


def stated_created(spec_created, environ, now=None):
    """The creation time the user stated (SOURCE_DATE_EPOCH, then metadata.created), or None when it is to be read
    from the sources once the images are known."""
    value = (environ.get("SOURCE_DATE_EPOCH") or "").strip()
    if value:
        if not value.isdigit():
            raise BundleError("SOURCE_DATE_EPOCH=%r is not a whole number of seconds" % value,
                              hint="Set it to seconds since 1970-01-01 UTC, e.g. git log -1 --format=%ct")
        return _checked(int(value), FROM_ENVIRONMENT, "SOURCE_DATE_EPOCH=%s" % value)
    if spec_created == NOW:
        return Created(int(time.time() if now is None else now), FROM_CLOCK)
    if spec_created:
        try:
            epoch = parse_rfc3339(spec_created)
        except ValueError:
            raise BundleError("metadata.created %r is neither an RFC 3339 date-time nor %r" % (spec_created, NOW),
                              hint="Write e.g. 2026-11-23T00:00:00Z, or 'now' for the build's wall-clock time")
        return _checked(epoch, FROM_SPEC, "metadata.created %s" % spec_created)
    return None


def recorded(text):
    """The time an existing bundle recorded, to reproduce it when the content is unchanged (``created: now``)."""
    return Created(parse_rfc3339(text), FROM_CLOCK)


def config_time(data):
    """The ``created`` of an image config, in seconds, or None when it has none usable (absent, malformed, before
    1970: reproducible image builders often write the epoch or year 1)."""
    try:
        created = json.loads(data).get("created")
        epoch = parse_rfc3339(created)
    except (ValueError, AttributeError):
        return None
    return epoch if 0 <= epoch <= LATEST else None


def from_sources(config_times):
    """The creation time read from the sources: the newest image config time, else the Unix epoch."""
    if config_times:
        return Created(max(config_times), FROM_IMAGES)
    return Created(0, FROM_EPOCH)


def resolve_expires(expires, created):
    """The ``expires`` date to record: a date as given, or ``P<n>D`` / ``P<n>W`` counted from a stated creation
    time."""
    if not expires:
        return None
    match = re.match(RELATIVE_EXPIRY, expires)
    if match is None:
        try:
            date = datetime.date.fromisoformat(expires)
        except ValueError:
            raise BundleError("metadata.expires %r is neither a date YYYY-MM-DD nor P<n>D / P<n>W" % expires)
    else:
        if not created.stated:
            raise BundleError(
                "metadata.expires %s counts from the creation time, but none is stated: it would be %s, taken from "
                "the %s, which says when the content was made, not when the bundle was" % (
                    expires, created.text, created.source),
                hint="Give expires as a date (YYYY-MM-DD), or state the time it counts from: metadata.created "
                     "(an RFC 3339 time, or 'now' for the wall clock) or SOURCE_DATE_EPOCH")
        days = int(match.group(1)) * (7 if match.group(2) == "W" else 1)
        date = created.date + datetime.timedelta(days=days)
    # A date before ``created`` is recorded as given: verification refuses such a bundle, and building one on purpose
    # (to test that refusal, or to reproduce an old bundle byte for byte) must stay possible.
    return date.isoformat()
