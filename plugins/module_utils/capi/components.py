# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""A provider's release files as clusterctl reads them: the components YAML (``core-components.yaml``,
``infrastructure-components.yaml``) and ``metadata.yaml``, checked on the connected side before they are bundled.

Read from them: every container image (so the bundle carries exactly what the controllers run), every clusterctl
variable (``${NAME}``, ``${NAME:=default}``, ``${NAME/#pattern/replacement}``: the envsubst grammar clusterctl and
Flux's post-build substitution share), and the release series of ``metadata.yaml`` (the version must be one of them;
its contract is reported).
"""

from __future__ import annotations

import re

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - reported at run time
    HAS_YAML = False

from ansible_collections.petra.core.plugins.module_utils.capi.errors import CapiError
from ansible_collections.petra.core.plugins.module_utils.errors import PetraError
from ansible_collections.petra.core.plugins.module_utils.oci.reference import ImageReference

# ${NAME}, ${NAME:=default}, ${NAME=default}, ${NAME:-default}, ${NAME/#pattern/replacement}, ...: the name, and
# whether the expression gives a value of its own when NAME is unset.
_VARIABLE_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}")
_VERSION_RE = re.compile(r"^v(\d+)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.+-]+)?$")
POD_TEMPLATE_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"), "DaemonSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"), "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"), "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def pod_specs(documents):
    """(object, pod spec) for every workload among the documents."""
    for document in documents:
        path = POD_TEMPLATE_PATHS.get((document or {}).get("kind"))
        if not path:
            continue
        spec = document
        for key in path:
            spec = (spec or {}).get(key)
        if isinstance(spec, dict):
            yield document, spec


def container_images(documents):
    """Every image a workload of the documents runs, as written, with the objects naming it."""
    found = {}
    for document, spec in pod_specs(documents):
        meta = document.get("metadata") or {}
        where = "%s %s/%s" % (document["kind"], meta.get("namespace") or "-", meta.get("name"))
        for key in ("initContainers", "containers", "ephemeralContainers"):
            for container in spec.get(key) or []:
                image = container.get("image")
                if image:
                    found.setdefault(image, []).append("%s container %s" % (where, container.get("name")))
    return found


def variables(text):
    """{name: True when some use of it has no default of its own} for every clusterctl variable in the text."""
    found = {}
    for name, rest in _VARIABLE_RE.findall(text):
        needs_value = not rest.startswith((":=", "=", ":-", "-"))
        found[name] = found.get(name, False) or needs_value
    return found


def image_name(text):
    """The image as kustomize's image transformer matches it: the reference as written, without tag or digest."""
    name = text.split("@", 1)[0]
    slash, colon = name.rfind("/"), name.rfind(":")
    return name[:colon] if colon > slash else name


class Components:
    """One provider release: its components file, ``metadata.yaml`` and version, checked."""

    def __init__(self, label, version, text, metadata_text, source="components"):
        if not HAS_YAML:
            raise CapiError("the Python library 'PyYAML' is required to read provider components",
                            hint="Install the collection's requirements.txt on the controller", reason="dependency")
        self.label = label
        self.source = source
        match = _VERSION_RE.match(version or "")
        if not match:
            raise CapiError("%s: version %r is not a release version such as v1.11.1" % (label, version),
                            reason="capi-components", hint="Give the release tag the files were downloaded from")
        self.version = version
        self.text = text
        try:
            self.documents = [doc for doc in yaml.safe_load_all(text) if doc]
        except yaml.YAMLError as exc:
            raise CapiError("%s: %s is not YAML: %s" % (label, source, exc), reason="capi-components")
        if not any(doc.get("kind") == "Deployment" for doc in self.documents if isinstance(doc, dict)):
            raise CapiError("%s: %s has no Deployment: it is not a provider's components file" % (label, source),
                            reason="capi-components",
                            hint="Give the release's core-components.yaml or infrastructure-components.yaml")
        self.images = container_images(self.documents)
        for image in self.images:
            try:
                ImageReference.parse(image)
            except PetraError as exc:
                raise CapiError("%s: %s" % (label, exc.message), reason="capi-components")
        self.variables = variables(text)
        self.contract = self._contract(metadata_text, int(match.group(1)), int(match.group(2)))

    def _contract(self, metadata_text, major, minor):
        try:
            metadata = yaml.safe_load(metadata_text) or {}
        except yaml.YAMLError as exc:
            raise CapiError("%s: metadata.yaml is not YAML: %s" % (self.label, exc), reason="capi-components")
        if metadata.get("kind") != "Metadata" or not str(metadata.get("apiVersion", "")).startswith(
                "clusterctl.cluster.x-k8s.io/"):
            raise CapiError("%s: metadata.yaml is not a clusterctl Metadata document" % self.label,
                            reason="capi-components", hint="Give the metadata.yaml of the same release")
        for series in metadata.get("releaseSeries") or []:
            if series.get("major") == major and series.get("minor") == minor:
                return series.get("contract")
        raise CapiError("%s: metadata.yaml lists no release series %d.%d for %s" % (
            self.label, major, minor, self.version), reason="capi-components",
            hint="The files come from different releases: download both from the same release tag")
