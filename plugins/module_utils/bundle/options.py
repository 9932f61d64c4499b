# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Argument specs of petra_bundle and petra_verify, shared by each module file and its action plugin."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.custody.options import CUSTODY_ARGUMENT_SPEC
from ansible_collections.petra.core.plugins.module_utils.oci.options import REGISTRY_ARGUMENT_SPEC
from ansible_collections.petra.core.plugins.module_utils.options.aws import AWS_ARGUMENT_SPEC
from ansible_collections.petra.core.plugins.module_utils.options.kube import KUBE_ARGUMENT_SPEC
from ansible_collections.petra.core.plugins.module_utils.signing.options import (
    SIGNING_ARGUMENT_SPEC,
    SIGNING_MUTUALLY_EXCLUSIVE,
)
from ansible_collections.petra.core.plugins.module_utils.trust.options import TRUST_ARGUMENT_SPEC


def _merged(*specs, **own):
    result = {}
    for spec in specs:
        result.update(spec)
    result.update(own)
    return result


BUNDLE_ARGUMENT_SPEC = _merged(
    REGISTRY_ARGUMENT_SPEC,
    SIGNING_ARGUMENT_SPEC,
    AWS_ARGUMENT_SPEC,
    TRUST_ARGUMENT_SPEC,
    CUSTODY_ARGUMENT_SPEC,
    KUBE_ARGUMENT_SPEC,
    state=dict(type="str", default="present", choices=["present", "loaded", "signed"]),
    spec=dict(type="path"),
    definition=dict(type="dict"),
    base_dir=dict(type="path"),
    dest=dict(type="path"),
    signature=dict(type="path"),
    compression_level=dict(type="int", default=3),
    force=dict(type="bool", default=False),
    mode=dict(type="raw", default="0644"),
    src=dict(type="path"),
    public_keys=dict(type="list", elements="str", aliases=["public_key"], no_log=False),
    registry=dict(type="str"),
    parallel=dict(type="int", default=4),
    registries_dest=dict(type="path"),
    registries_ca_path=dict(type="str", default="/etc/rancher/k3s/petra-registry-ca.pem"),
    flux_namespace=dict(type="str", default="flux-system"),
    flux_interval=dict(type="str", default="10m"),
    flux_secret_ref=dict(type="str", no_log=False),
    flux_cert_secret_ref=dict(type="str", no_log=False),
    flux_verify_secret_ref=dict(type="str", no_log=False),
    flux_wait=dict(type="bool", default=False),
    flux_timeout=dict(type="int", default=300),
)
BUNDLE_MUTUALLY_EXCLUSIVE = [("spec", "definition")] + SIGNING_MUTUALLY_EXCLUSIVE
BUNDLE_REQUIRED_IF = [
    ("state", "present", ("spec", "definition"), True),
    ("state", "present", ("signing_key", "signing_key_content"), True),
    ("state", "present", ("dest",)),
    ("state", "loaded", ("src", "public_keys", "registry")),
    ("state", "signed", ("src", "public_keys")),
    ("state", "signed", ("signing_key", "signing_key_content"), True),
]

VERIFY_ARGUMENT_SPEC = _merged(
    TRUST_ARGUMENT_SPEC,
    path=dict(type="path", required=True),
    public_keys=dict(type="list", elements="str", required=True, aliases=["public_key"], no_log=False),
    signature=dict(type="path"),
)
