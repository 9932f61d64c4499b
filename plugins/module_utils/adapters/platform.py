# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The argument spec of petra_platform and what it does with validated parameters."""

from __future__ import annotations

import re

from ansible_collections.petra.core.plugins.module_utils.bundle.spec import SEMVER_PATTERN
from ansible_collections.petra.core.plugins.module_utils.platform import render
from ansible_collections.petra.core.plugins.module_utils.platform.errors import PlatformError
from ansible_collections.petra.core.plugins.module_utils.platform.settings import PlatformSettings

ARGUMENT_SPEC = dict(
    state=dict(type="str", default="rendered", choices=["rendered"]),
    dest=dict(type="path", required=True),
    registry=dict(type="str", required=True),
    public_key=dict(type="str", required=True, no_log=False),
    cluster_name=dict(type="str", required=True),
    bundle_name=dict(type="str", default="platform"),
    bundle_version=dict(type="str", default="1.0.0"),
    allowed_registries=dict(type="list", elements="str", default=[]),
    required_labels=dict(type="list", elements="dict", default=[{"key": "app.kubernetes.io/name"}],
                         options=dict(key=dict(type="str", required=True, no_log=False),
                                      allowed_regex=dict(type="str"))),
    exempt_namespaces=dict(type="list", elements="str"),
    signed_namespaces=dict(type="list", elements="str", default=[]),
    kube_proxy_replacement=dict(type="bool", default=False),
    api_server_host=dict(type="str"),
    api_server_port=dict(type="int", default=6443),
    images=dict(type="dict", default={}),
    charts=dict(type="dict", default={}),
    image_platforms=dict(type="list", elements="str", default=["linux/amd64"]),
    registry_ca=dict(type="str"),
    registry_pull_secret=dict(type="str", no_log=False),
    ca_secret=dict(type="str", no_log=False),
    network_allow=dict(type="list", elements="dict", default=[]),
    helm_values=dict(type="dict", default={}),
    kube_bench_schedule=dict(type="str", default="0 3 * * *"),
    kube_bench_benchmark=dict(type="str", default="k3s-cis-1.8"),
    flux_interval=dict(type="str", default="10m"),
    trusted_root=dict(type="path"),
    trusted_root_digest=dict(type="str"),
    keyless=dict(type="list", elements="dict", default=[], no_log=False, options=dict(
        glob=dict(type="str", required=True),
        name=dict(type="str"),
        identity=dict(type="str"),
        identity_regexp=dict(type="str"),
        issuer=dict(type="str"),
        issuer_regexp=dict(type="str"),
    ), mutually_exclusive=[["identity", "identity_regexp"], ["issuer", "issuer_regexp"]]),
)

MUTUALLY_EXCLUSIVE = []
REQUIRED_IF = []
CONTROLLER_FILES = ("public_key", "trusted_root")


def run(params, check_mode, playbook_dir=None):  # pylint: disable=unused-argument
    if not re.match(SEMVER_PATTERN, params["bundle_version"] or ""):
        raise PlatformError("bundle_version %r is not a semantic version such as 1.4.0" % params["bundle_version"])
    settings = PlatformSettings(params)
    files = render.render(settings)
    changed, report, removed = render.write_tree(params["dest"], files, check_mode)
    bootstrap = [{"name": "petra-" + path.split("/", 1)[1], "content": files[path].decode("utf-8")}
                 for path in sorted(files) if path.startswith(render.BOOTSTRAP + "/")]
    return {
        "changed": changed,
        "dest": params["dest"],
        "files": report,
        "removed": removed,
        "bundle_spec": "%s/%s" % (params["dest"].rstrip("/"), render.BUNDLE_SPEC),
        "manifest_sets": sorted({path.split("/", 1)[0] for path in files if "/" in path}),
        "bootstrap_manifests": bootstrap,
        "images": {role: settings.image(role) for role in sorted(settings.images)},
        "public_key_id": settings.public_key_id,
        "trusted_root_digest": settings.trusted_root.digest if settings.trusted_root is not None else None,
    }
