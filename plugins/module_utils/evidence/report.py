# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The report a person reads: one self-contained HTML page (no script, no external resource) made from the same
verdicts and outcomes as the OSCAL document. Jinja2 autoescapes everything: names from the cluster (a pod called
``<script>``) are text, never markup."""

from __future__ import annotations

import os

try:
    import jinja2
    HAS_JINJA2 = True
except ImportError:  # pragma: no cover - reported at run time
    HAS_JINJA2 = False

from ansible_collections.petra.core.plugins.module_utils.evidence.errors import EvidenceError

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
COLOURS = (("satisfied", "#2e7d32"), ("failed", "#c62828"), ("not collected", "#ef6c00"), ("manual", "#546e7a"))


def _bucket(verdict):
    if verdict.state == "satisfied":
        return "satisfied"
    if verdict.manual:
        return "manual"
    return "failed" if verdict.reason == "fail" else "not collected"


def controls_view(catalog, verdicts):
    view = []
    for control_id, control in catalog.controls.items():
        mine = [verdict for verdict in verdicts if verdict.control["id"] == control_id]
        counts = {name: 0 for name, _colour in COLOURS}
        for verdict in mine:
            counts[_bucket(verdict)] += 1
        verdict = "satisfied" if counts["satisfied"] == len(mine) else "not satisfied"
        view.append({"id": control_id, "label": control["label"], "title": control["title"], "verdict": verdict,
                     "counts": counts, "objectives": [dict(v.summary(), bucket=_bucket(v), prose=v.objective["prose"],
                                                           outcomes=[o.summary() for o in v.outcomes]) for v in mine]})
    return view


def chart(view, width=560, row=26):
    """Bars of an inline SVG: per control, objectives by bucket."""
    longest = max([sum(item["counts"].values()) for item in view] + [1])
    scale = (width - 120) / float(longest)
    bars = []
    for index, item in enumerate(view):
        x = 110.0
        for name, colour in COLOURS:
            count = item["counts"][name]
            if count:
                bars.append({"x": x, "y": index * row + 4, "w": count * scale, "h": row - 8, "colour": colour,
                             "title": "%s: %d %s" % (item["label"], count, name)})
                x += count * scale
    return {"width": width, "height": len(view) * row + 8, "bars": bars,
            "labels": [{"x": 4, "y": index * row + row / 2 + 5, "text": item["label"]} for index, item in enumerate(view)]}


def render(catalog, run, verdicts, outcomes, seal, comparison=None):
    if not HAS_JINJA2:
        raise EvidenceError("the Python library Jinja2 is required for the HTML report",
                            hint="Install the collection's requirements.txt on the controller", reason="dependency")
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                     undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    view = controls_view(catalog, verdicts)
    return environment.get_template("report.html.j2").render(
        run=run, controls=view, chart=chart(view), colours=COLOURS, seal=seal, comparison=comparison,
        checks=sorted((outcome.summary() for outcome in outcomes), key=lambda item: item["check"]))
