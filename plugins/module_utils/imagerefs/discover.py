# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The image references of a chart as it is installed: its values.yaml merged with the values of each installer
found in the manifest sets (a value the installer sets replaces the chart's default, which is then not needed),
the images its Chart.yaml lists, and literal references in its templates.
"""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.imagerefs import values as chart_values
from ansible_collections.petra.core.plugins.module_utils.imagerefs.objects import Reference


def _from_value(item, why):
    return Reference("image", item.text, why, maybe=item.maybe, disabled=item.disabled)


def _installer_why(installer, path):
    return dict(installer.why, field="%s.%s" % (installer.why["field"], path))


def installer_references(installer):
    """The images an installer's values set, when the chart itself is not at hand to merge them with."""
    return [_from_value(item, _installer_why(installer, item.path))
            for item in chart_values.find(installer.values, installer.chart)]


def chart_references(content, installers, source):
    """References of one chart (charts.ChartContent) and the installers of it; ``source`` names the chart."""
    label = "Chart %s %s" % (content.name, content.version)

    def chart_why(file, field):
        return {"source": source, "file": file, "object": label, "field": field}

    found = []
    defaults = {item.path: item for item in chart_values.find(content.values, content.name, content.app_version)}
    replaced = {}  # values path -> how many installers replace the default there
    if not installers:
        found += [_from_value(item, chart_why("values.yaml", item.path)) for item in defaults.values()]
    for installer in installers:
        effective = chart_values.merged(content.values, installer.values)
        seen = set()
        for item in chart_values.find(effective, content.name, content.app_version):
            seen.add(item.path)
            default = defaults.get(item.path)
            if default is not None and (default.text, default.disabled) == (item.text, item.disabled):
                found.append(_from_value(item, chart_why("values.yaml", item.path)))
            else:
                found.append(_from_value(item, _installer_why(installer, item.path)))
                if default is not None:
                    replaced[item.path] = replaced.get(item.path, 0) + 1
        for path in set(defaults) - seen:
            replaced[path] = replaced.get(path, 0) + 1
    # A default replaced by every installer is not deployed; listed so that a reader sees it was considered.
    unused = {defaults[path].text for path, count in replaced.items() if installers and count == len(installers)}
    for path, count in sorted(replaced.items()):
        if count == len(installers):
            found.append(Reference("image", defaults[path].text, chart_why("values.yaml", path),
                                   maybe=defaults[path].maybe, disabled="the installers' values replace it"))
    for annotation, index, text in content.annotated:
        found.append(Reference("image", text, chart_why("Chart.yaml", "annotations.%s[%d]" % (annotation, index)),
                               disabled="the installers' values replace it" if text in unused else None))
    for file, line, text in content.literals:
        found.append(Reference("image", text, chart_why(file, "line %d" % line)))
    return found
