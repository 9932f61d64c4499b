# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The argument spec of petra_flatcar and what it does with validated parameters."""

from __future__ import annotations

import os

from ansible_collections.petra.core.plugins.module_utils.atomic import write_atomically
from ansible_collections.petra.core.plugins.module_utils.flatcar import ignition

FLATCAR_ARGUMENT_SPEC = dict(
    state=dict(type="str", default="rendered", choices=["rendered", "inspected"]),
    node_role=dict(type="str", choices=["server", "agent"]),
    cluster_init=dict(type="bool", default=False),
    server_url=dict(type="str"),
    token=dict(type="str", no_log=True),
    k3s=dict(type="dict",
             options=dict(url=dict(type="str", required=True), sha256=dict(type="str", required=True))),
    k3s_kind=dict(type="str", default="binary", choices=["binary", "sysext"]),
    registries=dict(type="dict"),
    registry_ca=dict(type="str"),
    manifests=dict(type="list", elements="dict", default=[]),
    airgap_images=dict(type="list", elements="dict", default=[]),
    ignition_version=dict(type="str", default="3.3.0", choices=list(ignition.SPEC_VERSIONS)),
    updates=dict(type="str", default="disabled"),
    host_fips=dict(type="bool", default=False),
    fips_go=dict(type="bool", default=True),
    k3s_config_extra=dict(type="dict", default={}),
    dest=dict(type="path"),
    binary=dict(type="path"),
    require_fips_module=dict(type="bool", default=False),
)
FLATCAR_REQUIRED_IF = [
    ("state", "rendered", ("node_role", "token", "k3s")),
    ("state", "inspected", ("binary",)),
]


def run_flatcar(params, check_mode):
    if params["state"] == "inspected":
        from ansible_collections.petra.core.plugins.module_utils.flatcar.buildinfo import inspect
        result = inspect(params["binary"], params["require_fips_module"])
        result["changed"] = False
        return result
    document = ignition.render(
        params["node_role"], params["token"], params["k3s"], cluster_init=params["cluster_init"],
        server_url=params.get("server_url"), k3s_kind=params["k3s_kind"], registries=params.get("registries"),
        registry_ca=params.get("registry_ca"), manifests=params["manifests"], airgap_images=params["airgap_images"],
        ignition_version=params["ignition_version"], updates=params["updates"], host_fips=params["host_fips"],
        fips_go=params["fips_go"], k3s_config_extra=params["k3s_config_extra"])
    data, digest = ignition.serialise(document)
    result = {"changed": False, "ignition": document, "sha256": digest, "size": len(data),
              "fits_user_data": len(data) <= ignition.USER_DATA_LIMIT}
    dest = params.get("dest")
    if dest:
        current = None
        if os.path.isfile(dest):
            with open(dest, "rb") as handle:
                current = handle.read()
        if current != data:
            result["changed"] = True
            if not check_mode:
                write_atomically(dest, lambda handle: handle.write(data), mode=0o600)
        result["dest"] = dest
    return result
