# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Registry connection options (documented once in the petra.core.registry doc fragment)."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.oci.auth import Credentials
from ansible_collections.petra.core.plugins.module_utils.oci.registry import ClientPool

REGISTRY_ARGUMENT_SPEC = dict(
    ca_file=dict(type="path"),
    registry_username=dict(type="str"),
    registry_password=dict(type="str", no_log=True),
    insecure_registries=dict(type="list", elements="str", default=[]),
    registry_timeout=dict(type="float", default=60.0),
    registry_retries=dict(type="int", default=4),
)


def client_pool_from_params(params):
    credentials = Credentials(params.get("registry_username"), params.get("registry_password"))
    return ClientPool(credentials, ca_file=params.get("ca_file"), insecure_registries=params.get("insecure_registries"),
                      read_timeout=params.get("registry_timeout") or 60.0, retries=params.get("registry_retries") or 0)
