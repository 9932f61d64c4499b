# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""What is Diode's own about the AWS Diode client: the service model shipped in this collection (botocore ships
none) and the service's default endpoint. The client itself comes from ``aws.client.AWSConnection`` like every
other AWS client, so credentials, CA bundle and retries are the connection's.

The model lives in ``data/diode/2017-12-01/service-2.json`` beside this file; ``AWSConnection.client`` adds it to
that client's botocore loader only (``data_path``), so the installed botocore is never modified.
"""

from __future__ import annotations

import os

DATA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
SERVICE = "diode"
API_VERSION = "2017-12-01"


def default_endpoint(region):
    return "https://diode.%s.amazonaws.com" % region


def diode_client(connection, region=None, endpoint_url=None):
    """A Diode client from ``connection``; ``endpoint_url`` points it at the service, the AWS simulator, or
    Petra's emulator.

    The endpoint is always passed: the connection's own ``endpoint_url`` names S3 (moto, a VPC endpoint) and must
    not be taken for Diode's. botocore's standard retry mode, set on the connection, retries what the model marks
    retryable (``ResourceLimitExceededException`` is Diode's throttling, ``TransientFailureException``) and 5xx.
    """
    region = region or connection.region
    return connection.client(SERVICE, region=region, endpoint_url=endpoint_url or default_endpoint(region),
                             data_path=DATA_PATH, api_version=API_VERSION)
