# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Where two bundles differ, told as an operator can act on it: the first differing entry in archive order (path,
digest and size on each side), the first differing field of the signed metadata (which image, chart or setting),
and, when both hold the same entries, the first tar header that differs, or else the compression alone.

The entry list is the signed metadata's, which gives the archive order, so comparing it needs no second read; tar
headers are read with the bundle walker (reader.py) only when everything the metadata says is the same.
"""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.bundle.reader import BundleWalker

# The tar header fields Petra fixes (archive.py); a difference in one of them means another writer.
HEADER_FIELDS = ("type", "size", "mode", "uid", "gid", "uname", "gname", "mtime", "linkname", "pax_headers")


def _describe(entry):
    return "%s (%s, %d bytes)" % (entry["name"], entry["digest"], entry["size"]) if entry else "no entry"


def first_entry(expected, got):
    """The first differing entry as {index, expected, got} (each an entry of the metadata or None), or None."""
    for index in range(max(len(expected), len(got))):
        left = expected[index] if index < len(expected) else None
        right = got[index] if index < len(got) else None
        if left != right:
            return {"index": index, "expected": left, "got": right}
    return None


# What names a thing, and then its content, go first: a moved image tag shows as its digest, not as the
# countersignature over it that changed with it (the metadata's own keys are sorted).
_FIRST_KEYS = ("name", "version", "ref", "source", "digest", "size", "created")


def only_in(expected, got, shown=3):
    """Entries by name that one side holds and the other does not: {bundle_only, rebuild_only} with counts and the
    first ``shown`` names of each, in archive order."""
    left, right = {entry["name"] for entry in expected}, {entry["name"] for entry in got}
    result = {}
    for key, entries, other in (("bundle_only", expected, right), ("rebuild_only", got, left)):
        names = [entry["name"] for entry in entries if entry["name"] not in other]
        result[key] = {"count": len(names), "first": names[:shown]}
    return result


def _keys_in_order(left, right):
    keys = set(left) | set(right)
    return [key for key in _FIRST_KEYS if key in keys] + sorted(key for key in keys if key not in _FIRST_KEYS)


def first_field(expected, got, path=""):
    """The first field where two JSON values differ, names and digests before the rest: {path, expected, got,
    of (the reference or name of the image, chart, manifest set or file it belongs to, or None)}, or None."""
    if isinstance(expected, dict) and isinstance(got, dict):
        for key in _keys_in_order(expected, got):
            if key == "entries" and not path:
                continue  # told entry by entry instead
            where = "%s.%s" % (path, key) if path else key
            found = first_field(expected.get(key, _ABSENT), got.get(key, _ABSENT), where)
            if found:
                return found
        return None
    if isinstance(expected, list) and isinstance(got, list):
        for index in range(max(len(expected), len(got))):
            left = expected[index] if index < len(expected) else _ABSENT
            found = first_field(left, got[index] if index < len(got) else _ABSENT, "%s[%d]" % (path, index))
            if found:
                if found["of"] is None and isinstance(left, dict):
                    found["of"] = left.get("ref") or left.get("name")
                return found
        return None
    if expected == got and type(expected) is type(got):
        return None
    return {"path": path, "expected": _shown(expected), "got": _shown(got), "of": None}


class _Absent:
    def __repr__(self):
        return "(absent)"


_ABSENT = _Absent()


def _shown(value):
    return None if value is _ABSENT else value


def _text(value):
    return "(absent)" if value is None else str(value)


def headers(path):
    """[(name, {field: value})] of every tar header of a bundle, in order."""
    found = []

    def keep(member):
        found.append((member.name, {name: getattr(member, name) for name in HEADER_FIELDS}))

    result = BundleWalker(path, hash_entries=False).walk(on_member=keep)
    if result.problem is not None:
        raise result.problem
    return found


def first_header(expected_path, got_path):
    """The first tar header field that differs between two bundles: {entry, field, expected, got}, or None."""
    expected, got = headers(expected_path), headers(got_path)
    for (left_name, left), (right_name, right) in zip(expected, got):
        if left_name != right_name:
            return {"entry": left_name, "field": "name", "expected": left_name, "got": right_name}
        for field in HEADER_FIELDS:
            if left[field] != right[field]:
                return {"entry": left_name, "field": field, "expected": left[field], "got": right[field]}
    return None


def compare(expected_metadata, got_metadata, expected_path, got_path):
    """What differs between a bundle and its rebuild: a dict for the result, with ``summary``, one line to tell."""
    expected_entries, got_entries = expected_metadata.get("entries") or [], got_metadata.get("entries") or []
    entry = first_entry(expected_entries, got_entries)
    field = first_field(expected_metadata, got_metadata)
    difference = {"entry": entry, "field": field, "header": None}
    parts = []
    # What changed (which image, chart or setting) first, then where the archives part.
    if field is not None:
        parts.append("the signed metadata differs first at %s%s: the bundle has %s, the rebuild %s" % (
            field["path"], " (%s)" % field["of"] if field["of"] else "", _text(field["expected"]),
            _text(field["got"])))
    if entry is not None:
        parts.append("the first differing entry is #%d: the bundle has %s, the rebuild %s" % (
            entry["index"] + 1, _describe(entry["expected"]), _describe(entry["got"])))
        difference.update(only_in(expected_entries, got_entries))
        for key, side in (("bundle_only", "only the bundle"), ("rebuild_only", "only the rebuild")):
            if difference[key]["count"]:
                parts.append("%d entr%s in %s (%s%s)" % (
                    difference[key]["count"], "y" if difference[key]["count"] == 1 else "ies", side,
                    ", ".join(difference[key]["first"]), ", ..." if difference[key]["count"] > 3 else ""))
    if not parts:
        header = first_header(expected_path, got_path)
        difference["header"] = header
        if header is not None:
            parts.append("the entries are the same, but the tar header of %s differs in %s: the bundle has %r, the "
                         "rebuild %r" % (header["entry"], header["field"], header["expected"], header["got"]))
        else:
            parts.append("the entries and their tar headers are the same; only the zstd compression differs (a "
                         "different zstandard library or zstd version compresses the same input differently)")
    difference["summary"] = "; ".join(parts)
    return difference
