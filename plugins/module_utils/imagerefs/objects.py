# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""What Kubernetes objects reference: the images of every pod spec (Pod, Deployment, StatefulSet, DaemonSet,
ReplicaSet, Job, CronJob, and any custom resource that embeds a pod template: found by its ``containers``,
``initContainers`` and ``ephemeralContainers`` lists wherever they are), the charts and values of the installers
Petra renders (k3s ``HelmChart``, Flux ``HelmRelease``), and the OCI artifacts of Flux ``OCIRepository`` objects.

Each reference carries its why: the file, the object (kind, namespace, name) and the field path.
"""

from __future__ import annotations

import os

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - reported at run time
    HAS_YAML = False

from ansible_collections.petra.core.plugins.module_utils.imagerefs.errors import ImageRefsError

CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
YAML_SUFFIXES = (".yaml", ".yml")


class Reference:
    """One reference: ``kind`` image (``text`` a reference) or artifact (``text`` an ``oci://`` URL, ``version`` a
    tag, digest or semver), and why it is needed; ``maybe`` says why it cannot be known for certain."""

    __slots__ = ("kind", "text", "version", "why", "maybe", "disabled")

    def __init__(self, kind, text, why, version=None, maybe=None, disabled=None):
        self.kind = kind
        self.text = text
        self.version = version
        self.why = why
        self.maybe = maybe
        self.disabled = disabled


class Installer:
    """An object that installs a chart with values: which chart (its name), the values, and where they are."""

    __slots__ = ("chart", "values", "why")

    def __init__(self, chart, values, why):
        self.chart = chart
        self.values = values
        self.why = why


def why(source, file, obj, field):
    metadata = obj.get("metadata") or {}
    name = "/".join(str(part) for part in (metadata.get("namespace"), metadata.get("name")) if part)
    return {"source": source, "file": file, "object": "%s %s" % (obj.get("kind"), name or "(unnamed)"),
            "field": field}


def read_set(root):
    """[(relative file, object)] of every YAML document in a manifest directory, files sorted."""
    if not HAS_YAML:
        raise ImageRefsError("the Python library 'PyYAML' is required to read manifests")
    found = []
    for current, dirs, names in os.walk(root):
        dirs[:] = sorted(name for name in dirs if not name.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or not name.endswith(YAML_SUFFIXES):
                continue
            path = os.path.join(current, name)
            try:
                with open(path, "rb") as handle:
                    documents = list(yaml.safe_load_all(handle))
            except (OSError, yaml.YAMLError) as exc:
                raise ImageRefsError("cannot read %s for its image references: %s" % (path, exc))
            found.extend((os.path.relpath(path, root), obj) for obj in documents if isinstance(obj, dict))
    return found


def _containers(node, path, found):
    """(field path, image) of every container of every pod spec below node."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            _containers(item, "%s[%d]" % (path, index), found)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        child = "%s.%s" % (path, key) if path else key
        if key in CONTAINER_LISTS and isinstance(value, list):
            for index, container in enumerate(value):
                if isinstance(container, dict) and "image" in container:
                    found.append(("%s[%d].image" % (child, index), container["image"]))
        else:
            _containers(value, child, found)


def _group(obj):
    return str(obj.get("apiVersion") or "").split("/", 1)[0]


def _chart_name(url):
    return url.rstrip("/").rsplit("/", 1)[-1].split(":", 1)[0]


def scan(documents, source):
    """(references, installers) of a manifest set's [(file, object)]; ``source`` names the set in the whys."""
    references, installers = [], []
    repositories = {}
    for _file, obj in documents:
        if obj.get("kind") == "OCIRepository" and _group(obj) == "source.toolkit.fluxcd.io":
            metadata = obj.get("metadata") or {}
            repositories[(metadata.get("namespace"), metadata.get("name"))] = (obj.get("spec") or {}).get("url")
    for file, obj in documents:
        kind, group, spec = obj.get("kind"), _group(obj), obj.get("spec") or {}
        if not isinstance(spec, dict):
            continue
        searched = obj
        if kind == "HelmChart" and group == "helm.cattle.io":
            searched = None  # its values are the chart's, read as values
            chart = spec.get("chart")
            if isinstance(chart, str) and chart.startswith("oci://"):
                references.append(Reference("artifact", chart, why(source, file, obj, "spec.chart"),
                                            version=str(spec.get("version") or "") or None))
            elif chart:
                references.append(Reference("artifact", str(chart), why(source, file, obj, "spec.chart"),
                                            maybe="not an oci:// chart: Petra cannot tell whether the bundle carries "
                                                  "it (the high side cannot reach a chart repository)"))
            if chart:
                values = _values_content(spec.get("valuesContent"), file, obj)
                installers.append(Installer(_chart_name(str(chart)), values,
                                            why(source, file, obj, "spec.valuesContent")))
        elif kind == "HelmRelease" and group == "helm.toolkit.fluxcd.io":
            searched = None
            chart = _release_chart(obj, spec, repositories)
            if chart:
                installers.append(Installer(chart, spec.get("values") or {}, why(source, file, obj, "spec.values")))
        elif kind == "OCIRepository" and group == "source.toolkit.fluxcd.io":
            searched = None
            ref = spec.get("ref") or {}
            version = ref.get("digest") or ref.get("tag") or ref.get("semver")
            if isinstance(spec.get("url"), str):
                references.append(Reference("artifact", spec["url"], why(source, file, obj, "spec.url"),
                                            version=version))
        if searched is not None:
            found = []
            _containers(searched, "", found)
            references.extend(Reference("image", image if isinstance(image, str) else None,
                                        why(source, file, obj, field),
                                        maybe=None if isinstance(image, str) else "the image field is not a string")
                              for field, image in found)
    return references, installers


def _values_content(text, file, obj):
    if not text:
        return {}
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ImageRefsError("spec.valuesContent of %s in %s is not valid YAML: %s" % (
            why("", file, obj, "")["object"], file, exc))
    return values if isinstance(values, dict) else {}


def _release_chart(obj, spec, repositories):
    """The chart name a HelmRelease installs: through its chartRef's OCIRepository, or its chart template."""
    namespace = (obj.get("metadata") or {}).get("namespace")
    chart_ref = spec.get("chartRef") or {}
    if chart_ref.get("kind") == "OCIRepository":
        url = repositories.get((chart_ref.get("namespace") or namespace, chart_ref.get("name")))
        return _chart_name(url) if url else chart_ref.get("name")
    template = ((spec.get("chart") or {}).get("spec") or {})
    return _chart_name(str(template["chart"])) if template.get("chart") else None
