# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Registry connection options (documented once in the petra.core.registry doc fragment)."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.aws.client import AWSConnection
from ansible_collections.petra.core.plugins.module_utils.oci.auth import Credentials
from ansible_collections.petra.core.plugins.module_utils.oci.ecr import ECRCredentials
from ansible_collections.petra.core.plugins.module_utils.oci.registry import ClientPool

REGISTRY_ARGUMENT_SPEC = dict(
    ca_file=dict(type="path"),
    registry_username=dict(type="str"),
    registry_password=dict(type="str", no_log=True),
    insecure_registries=dict(type="list", elements="str", default=[]),
    registry_timeout=dict(type="float", default=60.0),
    registry_retries=dict(type="int", default=4),
    registry_ecr=dict(type="bool", default=False),
)


def client_pool_from_params(params):
    credentials = Credentials(params.get("registry_username"), params.get("registry_password"))
    if not params.get("registry_username"):
        # ECR hosts (or every registry, with registry_ecr) get a token from ECR; others read the auth files.
        credentials = ECRCredentials(credentials, _LazyAWS(params), force=bool(params.get("registry_ecr")))
    timeout = params.get("registry_timeout") or 60.0
    # Sending a request body waits as long as connecting does (urllib3), so a short timeout bounds both: a stalled
    # upload is noticed within registry_timeout, not only after the 10 s connect timeout.
    return ClientPool(credentials, ca_file=params.get("ca_file"), insecure_registries=params.get("insecure_registries"),
                      connect_timeout=min(10.0, timeout), read_timeout=timeout,
                      retries=params.get("registry_retries") or 0)


class _LazyAWS:
    """Creates the AWS connection only when an ECR registry is actually met (boto3 is optional otherwise)."""

    def __init__(self, params):
        self._params = params
        self._connection = None

    def client(self, service, region=None):
        if self._connection is None:
            self._connection = AWSConnection.from_params(self._params)
        return self._connection.client(service, region=region)
