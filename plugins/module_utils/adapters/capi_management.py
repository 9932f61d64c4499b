# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The argument spec of petra_capi_management and what it does with validated parameters."""

from __future__ import annotations

import os
import re

from ansible_collections.petra.core.plugins.module_utils.bundle.spec import SEMVER_PATTERN
from ansible_collections.petra.core.plugins.module_utils.capi import management
from ansible_collections.petra.core.plugins.module_utils.capi.components import Components
from ansible_collections.petra.core.plugins.module_utils.capi.errors import CapiError
from ansible_collections.petra.core.plugins.module_utils.platform.render import dump, write_tree

ARGUMENT_SPEC = dict(
    state=dict(type="str", required=True, choices=["bundled", "rendered"]),
    dest=dict(type="path", required=True),
    core_components=dict(type="path"),
    core_metadata=dict(type="path"),
    core_version=dict(type="str"),
    infrastructure_components=dict(type="path"),
    infrastructure_metadata=dict(type="path"),
    infrastructure_version=dict(type="str"),
    bundle_name=dict(type="str", default="capi-management"),
    bundle_version=dict(type="str", default="1.0.0"),
    image_platforms=dict(type="list", elements="str", default=["linux/amd64"]),
    variables=dict(type="dict", default={}),
    loaded=dict(type="dict"),
    region=dict(type="str"),
    service_endpoints=dict(type="list", elements="dict", default=[],
                           options=dict(service=dict(type="str", required=True), url=dict(type="str", required=True))),
    namespace=dict(type="str", default="flux-system"),
    interval=dict(type="str", default="10m"),
    timeout=dict(type="str", default="10m"),
    verify_secret_ref=dict(type="str", default="petra-bundle-key", no_log=False),
    secret_ref=dict(type="str", no_log=False),
    cert_secret_ref=dict(type="str", no_log=False),
    insecure=dict(type="bool", default=False),
)

MUTUALLY_EXCLUSIVE = []
REQUIRED_IF = [
    ("state", "bundled", ["core_components", "core_metadata", "core_version", "infrastructure_components",
                          "infrastructure_metadata", "infrastructure_version"]),
    ("state", "rendered", ["loaded", "region"]),
]
CONTROLLER_FILES = ("core_components", "core_metadata", "infrastructure_components", "infrastructure_metadata")
INSTALL_FILE = "capi-management.yaml"
HEADER = ("# Rendered by petra.core.petra_capi_management from the load of bundle %s. Do not edit: render again.\n"
          "# Apply to the management cluster (Flux installs Cluster API core and CAPA from it).\n")


def _read(path, option):
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise CapiError("%s: cannot read %s: %s" % (option, path, getattr(exc, "strerror", None) or exc),
                        reason="capi-components", hint="Give the file downloaded from the provider's release")


def _components(params, label):
    return Components(label, params[label + "_version"], _read(params[label + "_components"], label + "_components"),
                      _read(params[label + "_metadata"], label + "_metadata"), source=params[label + "_components"])


def bundled(params, check_mode):
    if not re.match(SEMVER_PATTERN, params["bundle_version"] or ""):
        raise CapiError("bundle_version %r is not a semantic version such as 1.4.0" % params["bundle_version"],
                        reason="capi-spec")
    core, infrastructure = _components(params, "core"), _components(params, "infrastructure")
    files, spec, images = management.bundle_tree(core, infrastructure, params["bundle_name"], params["bundle_version"],
                                                 params["image_platforms"], params["variables"])
    files["bundle.yml"] = dump([spec], "# The management bundle: Cluster API core and CAPA, for "
                                       "petra.core.petra_bundle. Rendered by petra_capi_management.\n")
    changed, report, removed = write_tree(params["dest"], files, check_mode)
    return {"changed": changed, "dest": params["dest"], "files": report, "removed": removed,
            "bundle_spec": os.path.join(params["dest"], "bundle.yml"), "images": images,
            "providers": {component.label: {"version": component.version, "contract": component.contract,
                                            "manifest_set": management.PROVIDERS[component.label][0]}
                          for component in (core, infrastructure)}}


def rendered(params, check_mode):
    objects = management.install_objects(params["loaded"], params)
    data = dump(objects, HEADER % (params["loaded"].get("name") or "?"))
    changed, report, removed = write_tree(params["dest"], {INSTALL_FILE: data}, check_mode)
    kustomizations = [obj for obj in objects if obj["kind"] == "Kustomization"]
    return {"changed": changed, "dest": params["dest"], "files": report, "removed": removed,
            "install": os.path.join(params["dest"], INSTALL_FILE),
            "manifests": [{"name": "petra-" + INSTALL_FILE, "content": data.decode("utf-8")}],
            "objects": ["%s/%s/%s" % (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])
                        for obj in objects],
            "images": kustomizations[0]["spec"]["images"]}


def run(params, check_mode, playbook_dir=None):  # pylint: disable=unused-argument
    return (bundled if params["state"] == "bundled" else rendered)(params, check_mode)
