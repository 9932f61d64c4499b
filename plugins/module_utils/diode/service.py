# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The AWS Diode client: boto3 with the service model shipped in this collection (botocore ships none).

The model lives in ``data/diode/2017-12-01/service-2.json`` beside this file and is found through a botocore
``Loader`` search path, so the installed botocore is never modified.
"""

from __future__ import annotations

import os

try:
    import botocore.config
    import botocore.loaders
    import botocore.session
    import boto3
    HAS_BOTO3 = True
except ImportError:  # pragma: no cover - reported at run time
    HAS_BOTO3 = False

from ansible_collections.petra.core.plugins.module_utils.diode.errors import TransferError

DATA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
SERVICE = "diode"
API_VERSION = "2017-12-01"


def diode_session(profile=None, access_key=None, secret_key=None, session_token=None):
    """A boto3 session whose loader also searches Petra's data directory."""
    if not HAS_BOTO3:
        raise TransferError("the Python libraries boto3 and botocore are required for AWS Diode",
                            hint="Install the collection's requirements.txt on the controller")
    core = botocore.session.Session(profile=profile)
    loader = botocore.loaders.Loader(extra_search_paths=[DATA_PATH])
    core.register_component("data_loader", loader)
    if access_key:
        core.set_credentials(access_key, secret_key, session_token)
    return boto3.session.Session(botocore_session=core)


def diode_client(region, endpoint_url=None, verify=True, **credentials):
    """A Diode client; ``endpoint_url`` points it at the service, the AWS simulator, or Petra's emulator.

    Standard retry mode retries the errors the model marks retryable (throttling, transient failures).
    """
    session = diode_session(**credentials)
    endpoint = endpoint_url or "https://diode.%s.amazonaws.com" % region
    config = botocore.config.Config(retries={"mode": "standard", "max_attempts": 8}, connect_timeout=10,
                                    read_timeout=60, user_agent_extra="petra.core")
    return session.client(SERVICE, region_name=region, endpoint_url=endpoint, api_version=API_VERSION,
                          verify=verify, config=config)
