# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The platform as a directory tree: the bootstrap for k3s's auto-deploy directory, one manifest set per Flux
Kustomization, and the bundle spec that carries them with every chart and image across the air gap.

Rendering is a pure function from settings to ``{relative path: bytes}``; writing compares with what is on disk,
replaces only files whose bytes differ (each atomically), and removes files an earlier render wrote that are no
longer part of the platform (listed in ``.petra-platform.json``).
"""

from __future__ import annotations

import hashlib
import json
import os

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - reported at run time
    HAS_YAML = False

from ansible_collections.petra.core.plugins.module_utils.atomic import write_atomically
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import API_VERSION as BUNDLE_API, KIND as BUNDLE_KIND
from ansible_collections.petra.core.plugins.module_utils.platform import (
    benchmark,
    catalog,
    certs,
    flux,
    gatekeeper,
    imagepolicy,
    keyless,
    network,
    runtime,
)
from ansible_collections.petra.core.plugins.module_utils.platform.errors import PlatformError

INDEX = ".petra-platform.json"
BOOTSTRAP = "bootstrap"
BUNDLE_SPEC = "bundle.yml"
HEADER = ("# Rendered by petra.core.petra_platform for cluster %s. Do not edit: change the variables of the\n"
          "# petra.core.platform role (or the module's options) and render again.\n")
# Charts Flux installs (each into catalog.NAMESPACES[<chart>]) and their values.
FLUX_CHARTS = (("gatekeeper", gatekeeper.values), ("tetragon", runtime.values), ("cert-manager", certs.values),
               ("policy-controller", imagepolicy.values))


class ManifestSet:
    """A directory carried as one Flux artifact, applied by the Kustomization ``petra-<name>``."""

    def __init__(self, name, files, wait=False, depends_on=()):
        self.name = name
        self.files = files
        self.wait = wait
        self.depends_on = tuple(depends_on)


class _Dumper(yaml.SafeDumper if HAS_YAML else object):
    """Block style for multi-line text (Rego, PEM, scripts, values), and no anchors for shared dicts."""

    def ignore_aliases(self, data):
        return True


def _represent_text(dumper, data):
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


if HAS_YAML:
    _Dumper.add_representer(str, _represent_text)


def dump(documents, header):
    text = yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100000,
                         explicit_start=True, allow_unicode=True)
    return (header + text).encode("utf-8")


def manifest_sets(settings):
    templates = gatekeeper.templates(settings)
    image_files = {"cluster-image-policy.yaml": [imagepolicy.cluster_image_policy(settings)]}
    signed = imagepolicy.namespaces(settings)
    if signed:
        image_files["namespaces.yaml"] = signed
    if settings.trusted_root is not None:
        image_files["trust-root.yaml"] = [keyless.trust_root(settings)]
        image_files["keyless-policies.yaml"] = keyless.cluster_image_policies(settings)
    return [
        ManifestSet("network-policies", {"default-deny.yaml": [network.default_deny(settings)],
                                         "allow-lists.yaml": network.allow_lists(settings)}),
        ManifestSet("gatekeeper-templates", {"%s.yaml" % doc["metadata"]["name"]: [doc] for doc in templates},
                    wait=True),
        ManifestSet("gatekeeper-constraints", {"constraints.yaml": gatekeeper.constraints(settings)},
                    depends_on=["gatekeeper-templates"]),
        ManifestSet("runtime-policies", {"%s.yaml" % doc["metadata"]["name"]: [doc]
                                         for doc in runtime.tracing_policies(settings)}),
        ManifestSet("cert-issuers", {"issuers.yaml": certs.issuers(settings)}),
        ManifestSet("image-policies", image_files),
        ManifestSet("kube-bench", {"kube-bench.yaml": benchmark.objects(settings)}),
    ]


def bootstrap(settings, sets):
    sources = [flux.oci_repository(settings, "chart", chart, settings.chart_url(chart), settings.charts[chart].version)
               for chart, _values in FLUX_CHARTS]
    sources += [flux.oci_repository(settings, "manifests", item.name, settings.manifests_url(item.name),
                                    settings.bundle_version) for item in sets]
    addons = [flux.helm_release(settings, chart, catalog.NAMESPACES[chart], values(settings))
              for chart, values in FLUX_CHARTS]
    addons += [flux.kustomization(settings, item.name, wait=item.wait, depends_on=item.depends_on) for item in sets]
    return {
        "00-base.yaml": flux.namespaces(settings) + flux.trust_objects(settings),
        "10-cilium.yaml": [flux.helm_chart(settings, "cilium", catalog.NAMESPACES["cilium"],
                                           network.values(settings), bootstrap=True)],
        "20-flux.yaml": [flux.helm_chart(settings, "flux2", catalog.NAMESPACES["flux"], flux.flux_values(settings))],
        "30-sources.yaml": sources,
        "40-addons.yaml": addons,
    }


def bundle_spec(settings, sets):
    """The petra_bundle spec of this platform: every image, chart and manifest set, paths relative to the tree."""
    return {
        "apiVersion": BUNDLE_API,
        "kind": BUNDLE_KIND,
        "metadata": {"name": settings.bundle_name, "version": settings.bundle_version,
                     "description": "Petra platform for cluster %s" % settings.cluster_name},
        "images": [{"ref": text, "platforms": list(settings.image_platforms)}
                   for text, _ref in settings.images.values()],
        "charts": [settings.charts[name].bundle_entry() for name in catalog.CHARTS],
        "manifests": [{"name": name, "path": name} for name in [BOOTSTRAP] + [item.name for item in sets]],
    }


def render(settings):
    """``{relative path: bytes}`` of the whole tree."""
    if not HAS_YAML:
        raise PlatformError("the Python library 'PyYAML' is required to render the platform",
                            hint="Install the collection's requirements.txt on the controller", reason="dependency")
    header = HEADER % settings.cluster_name
    sets = manifest_sets(settings)
    files = {}
    for name, documents in bootstrap(settings, sets).items():
        files["%s/%s" % (BOOTSTRAP, name)] = dump(documents, header)
    for item in sets:
        for name, documents in item.files.items():
            files["%s/%s" % (item.name, name)] = dump(documents, header)
    spec_header = header + ("# Charts without an oci:// ref are fetched first: helm pull <repo>/<chart> --version <v> "
                            "--destination charts/\n")
    files[BUNDLE_SPEC] = dump([bundle_spec(settings, sets)], spec_header)
    return files


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PlatformError("cannot read %s: %s" % (path, exc.strerror), reason="io")


def _previous_files(dest):
    data = _read(os.path.join(dest, INDEX))
    if data is None:
        return []
    try:
        return [str(item) for item in json.loads(data.decode("utf-8")).get("files", [])]
    except (ValueError, AttributeError, UnicodeDecodeError):
        return []


def write_tree(dest, files, check_mode=False):
    """Write what differs; returns (changed, [{path, sha256, changed}], [removed paths])."""
    dest = os.path.abspath(dest)
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise PlatformError("dest %s exists and is not a directory" % dest, reason="dest")
    report = []
    for relpath in sorted(files):
        data = files[relpath]
        path = os.path.join(dest, relpath)
        differs = _read(path) != data
        if differs and not check_mode:
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                write_atomically(path, lambda handle, data=data: handle.write(data))
            except OSError as exc:
                raise PlatformError("cannot write %s: %s" % (path, exc.strerror), reason="io",
                                    hint="Check that dest is writable on the controller")
        report.append({"path": relpath, "sha256": _sha256(data), "changed": differs})
    removed = []
    for relpath in sorted(set(_previous_files(dest)) - set(files)):
        path = os.path.normpath(os.path.join(dest, relpath))
        if not path.startswith(dest + os.sep) or not os.path.isfile(path):
            continue
        removed.append(relpath)
        if not check_mode:
            os.unlink(path)
            directory = os.path.dirname(path)
            while directory != dest and not os.listdir(directory):
                os.rmdir(directory)
                directory = os.path.dirname(directory)
    index = json.dumps({"files": sorted(files)}, indent=1, sort_keys=True).encode("utf-8") + b"\n"
    index_changed = _read(os.path.join(dest, INDEX)) != index
    if index_changed and not check_mode:
        write_atomically(os.path.join(dest, INDEX), lambda handle: handle.write(index))
    changed = any(item["changed"] for item in report) or bool(removed) or index_changed
    return changed, report, removed
