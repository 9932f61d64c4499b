# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""What a packaged Helm chart (.tgz) says about its images, without rendering it: the images its author lists in
Chart.yaml (``helm.sh/images``, or Artifact Hub's ``artifacthub.io/images``), the images of its ``values.yaml``
(values.py), and image references written literally in its templates.

Only the chart's own files are read (``<chart>/Chart.yaml``, ``<chart>/values.yaml``, ``<chart>/templates/``);
subcharts under ``<chart>/charts/`` are not looked into.
"""

from __future__ import annotations

import io
import re
import tarfile

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - reported at run time
    HAS_YAML = False

from ansible_collections.petra.core.plugins.module_utils.imagerefs.errors import ImageRefsError

ANNOTATIONS = ("helm.sh/images", "artifacthub.io/images")
MAX_MEMBER = 4 << 20
# The whole archive as it unpacks, every entry counted (those skipped are decompressed too): Helm's own limit on a
# decompressed chart; and entries, each of which the tar reader remembers. A gzip bomb stops here, memory flat.
MAX_TOTAL = 100 << 20
MAX_MEMBERS = 10000
# "image: <reference>" on one line, quoted or not, as a container or a list item writes it.
_TEMPLATE_IMAGE = re.compile(r"""^\s*(?:-\s*)?image:\s*["']?([^"'\s#]+)["']?\s*(?:#.*)?$""")


class ChartContent:
    """A chart's name, versions and what it says about images."""

    def __init__(self, name, version, app_version, annotated, values, literals):
        self.name = name
        self.version = version
        self.app_version = app_version
        self.annotated = annotated  # [(annotation, index, image text)]
        self.values = values  # the values.yaml mapping
        self.literals = literals  # [(template file, line, image text)]


def _load(text, where):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ImageRefsError("%s is not valid YAML: %s" % (where, exc), hint="Check the chart with 'helm lint'")


def _annotated(meta, where):
    found = []
    for annotation in ANNOTATIONS:
        text = ((meta.get("annotations") or {}) if isinstance(meta, dict) else {}).get(annotation)
        if not text:
            continue
        listed = _load(text, "the %s annotation of %s" % (annotation, where)) if isinstance(text, str) else text
        for index, item in enumerate(listed if isinstance(listed, list) else []):
            image = item.get("image") if isinstance(item, dict) else item
            if isinstance(image, str) and image.strip():
                found.append((annotation, index, image.strip()))
    return found


def read_chart(source, where):
    """ChartContent of a packaged chart: ``source`` is a path or the archive's bytes; ``where`` names it in errors."""
    if not HAS_YAML:
        raise ImageRefsError("the Python library 'PyYAML' is required to read charts")
    files = {}
    try:
        archive = tarfile.open(name=source, mode="r:gz") if isinstance(source, str) else \
            tarfile.open(fileobj=io.BytesIO(source), mode="r:gz")
        with archive:
            count = total = 0
            for member in archive:
                count, total = count + 1, total + member.size
                if count > MAX_MEMBERS or total > MAX_TOTAL:
                    raise ImageRefsError(
                        "the chart %s holds more than %s: it is not read, to keep memory bounded" % (
                            where, "%d entries" % MAX_MEMBERS if count > MAX_MEMBERS else "100 MiB unpacked"),
                        hint="Check that this is the chart meant: Helm itself refuses a chart that unpacks to more "
                             "than 100 MiB")
                parts = member.name.split("/")
                wanted = len(parts) == 2 and parts[1] in ("Chart.yaml", "values.yaml") or \
                    len(parts) >= 3 and parts[1] == "templates"
                if not (wanted and member.isfile()):
                    continue
                if member.size > MAX_MEMBER:
                    raise ImageRefsError("%s in the chart %s is larger than 4 MiB" % (member.name, where))
                files["/".join(parts[1:])] = archive.extractfile(member).read().decode("utf-8", "replace")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ImageRefsError("the chart %s is not a packaged chart (.tgz): %s" % (where, exc),
                             hint="Package it with 'helm package'")
    if "Chart.yaml" not in files:
        raise ImageRefsError("the chart %s has no <chart>/Chart.yaml" % where, hint="Package it with 'helm package'")
    meta = _load(files["Chart.yaml"], "Chart.yaml of %s" % where)
    values = _load(files.get("values.yaml") or "", "values.yaml of %s" % where) or {}
    literals = []
    for name in sorted(files):
        if not name.startswith("templates/"):
            continue
        for number, line in enumerate(files[name].splitlines(), 1):
            match = _TEMPLATE_IMAGE.match(line)
            # An image the template computes ({{ ... }}) comes from the values, which are read as values.
            if match and "{{" not in line:
                literals.append((name, number, match.group(1)))
    meta = meta if isinstance(meta, dict) else {}
    return ChartContent(str(meta.get("name") or ""), str(meta.get("version") or ""), meta.get("appVersion"),
                        _annotated(meta, where), values if isinstance(values, dict) else {}, literals)
