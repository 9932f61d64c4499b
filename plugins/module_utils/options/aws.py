# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The AWS connection options of every module that calls AWS; documented by the doc fragment petra.core.aws.

The names follow amazon.aws so playbooks read the same; ``aws.client.AWSConnection.from_params`` reads them.
"""

from __future__ import annotations

AWS_ARGUMENT_SPEC = dict(
    region=dict(type="str", aliases=["aws_region"]),
    profile=dict(type="str", aliases=["aws_profile"]),
    access_key=dict(type="str", aliases=["aws_access_key_id", "aws_access_key"], no_log=True),
    secret_key=dict(type="str", aliases=["aws_secret_access_key", "aws_secret_key"], no_log=True),
    session_token=dict(type="str", aliases=["aws_session_token"], no_log=True),
    endpoint_url=dict(type="str", aliases=["aws_endpoint_url"]),
    aws_ca_bundle=dict(type="path"),
    validate_certs=dict(type="bool", default=True),
)
