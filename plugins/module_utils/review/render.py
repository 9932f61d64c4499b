# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The review sheet as files: canonical JSON for machines, and one self-contained HTML page rendered from that same
document with Jinja2 (autoescaping on), written only when their content changes."""

from __future__ import annotations

import json

from ansible_collections.petra.core.plugins.module_utils.atomic import write_if_different
from ansible_collections.petra.core.plugins.module_utils.errors import PetraError
from ansible_collections.petra.core.plugins.module_utils.review.template import TEMPLATE

CHART_WIDTH = 900
LABEL_WIDTH = 330
VALUE_ROOM = 150
ROW = 24
MAX_BARS = 16


class ReviewError(PetraError):
    """The review sheet cannot be made or written."""

    reason = "review"


def _environment():
    try:
        import jinja2
    except ImportError:
        raise ReviewError("the review sheet needs the Python library 'Jinja2'",
                          hint="Install the collection's requirements.txt where the task runs (Ansible's controller "
                               "has it already)")
    # Lenient undefined: optional fields absent from a bundle's metadata show as empty, never break the sheet of a
    # refusal (which must be written whatever the bundle holds).
    environment = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    environment.filters["size"] = human_size
    return environment


def human_size(value):
    if value is None:
        return "-"
    amount = float(value)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return "%d bytes" % value if unit == "bytes" else "%.1f %s" % (amount, unit)
        amount /= 1024.0
    return "%d bytes" % value  # pragma: no cover - the loop always returns


def size_chart(sizes):
    """Bar geometry for the size breakdown: the largest items, the rest summed in one bar, widths in pixels."""
    parts = [part for part in sizes["parts"] if part["bytes"]]
    if len(parts) > MAX_BARS:
        rest = parts[MAX_BARS - 1:]
        parts = parts[:MAX_BARS - 1] + [{"kind": "other", "label": "%d more items" % len(rest),
                                         "bytes": sum(part["bytes"] for part in rest),
                                         "shared": sum(part["shared"] for part in rest)}]
    total = sizes["uncompressed"] or 1
    largest = max([part["bytes"] for part in parts] or [1])
    room = CHART_WIDTH - LABEL_WIDTH - VALUE_ROOM
    bars = []
    for number, part in enumerate(parts):
        bars.append(dict(part, y=number * ROW, width=max(1, int(round(room * part["bytes"] / float(largest)))),
                         percent="%.1f" % (100.0 * part["bytes"] / total)))
    return {"width": CHART_WIDTH, "height": max(ROW, len(bars) * ROW), "label_width": LABEL_WIDTH, "bars": bars}


def render_html(data):
    """The page (text) for a sheet document from sheet.py."""
    context = {
        "sheet": data, "verdict": data["verdict"], "refused": data["verdict"]["status"] != "verified",
        "bundle": data["bundle"], "signatures": data["signatures"], "trust": data["trustState"],
        "sizes": data["sizes"], "chart": size_chart(data["sizes"]) if data["sizes"] else None,
        "images": data["images"], "charts": data["charts"], "manifests": data["manifests"], "files": data["files"],
        "sbom": data["sbom"], "scan": data["scan"],
    }
    return _environment().from_string(TEMPLATE).render(**context)


def encode_json(data):
    """Canonical bytes: the same sheet always serialises the same way."""
    return (json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def write_sheets(data, html_path=None, json_path=None, check_mode=False):
    """Write the sheet where asked; returns {html, json, verdict, changed}. A file already holding exactly the new
    content is left alone; check mode writes nothing and says whether it would have."""
    changed = False
    try:
        if json_path:
            changed |= write_if_different(json_path, encode_json(data), check_mode)
        if html_path:
            changed |= write_if_different(html_path, render_html(data).encode("utf-8"), check_mode)
    except OSError as exc:
        raise ReviewError("cannot write the review sheet %s: %s" % (exc.filename, exc.strerror),
                          hint="Give review_html and review_json paths in a directory this user can write")
    return {"html": html_path or None, "json": json_path or None, "verdict": data["verdict"]["status"],
            "changed": changed}
