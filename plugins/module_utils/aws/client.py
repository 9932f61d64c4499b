# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""One way to build AWS clients: region, profile, keys, endpoint, CA bundle, retries, partitions.

Every AWS client Petra makes comes from ``AWSConnection.client``, including clients of services botocore ships
no model for (AWS Diode: ``data_path`` names the directory holding the model). Retries are configured here and
nowhere else: botocore's standard mode retries throttling, transient errors and 5xx answers with backoff. Failed
calls are turned into Petra errors by ``errors.py``.
"""

from __future__ import annotations

import re

try:
    import boto3
    import botocore.config
    import botocore.exceptions
    import botocore.loaders
    import botocore.session
    HAS_BOTO3 = True
except ImportError:  # pragma: no cover - reported at run time
    HAS_BOTO3 = False

from ansible_collections.petra.core.plugins.module_utils.aws.errors import AWSError

PARTITIONS = ("aws", "aws-us-gov", "aws-cn", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f")
_ARN_RE = re.compile(r"^arn:(?P<partition>[a-z-]+):(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):"
                     r"(?P<account>\d{12})?:(?P<resource>.+)$")
# The module options (options/aws.py) a connection is made from; the same names as the constructor's arguments.
CONNECTION_OPTIONS = ("region", "profile", "access_key", "secret_key", "session_token", "endpoint_url",
                      "aws_ca_bundle", "validate_certs")
MAX_ATTEMPTS = 8


def parse_arn(arn):
    """The parts of an ARN as a dict, accepting every AWS partition including the isolated ones."""
    match = _ARN_RE.match(arn or "")
    if not match:
        raise AWSError("%r is not an ARN" % (arn,), hint="An ARN reads arn:<partition>:<service>:<region>:<account>:<resource>")
    parts = match.groupdict()
    if parts["partition"] not in PARTITIONS:
        raise AWSError("ARN %s names the unknown partition %r" % (arn, parts["partition"]),
                       hint="Known partitions: %s" % ", ".join(PARTITIONS))
    return parts


class AWSConnection:
    """Connection settings shared by every AWS call a task makes."""

    def __init__(self, region=None, profile=None, access_key=None, secret_key=None, session_token=None,
                 endpoint_url=None, aws_ca_bundle=None, validate_certs=True, max_attempts=MAX_ATTEMPTS):
        if not HAS_BOTO3:
            raise AWSError("the Python libraries boto3 and botocore are required for AWS access",
                           hint="Install the collection's requirements.txt on the controller")
        self.region = region
        self.profile = profile
        self.access_key = access_key
        self.secret_key = secret_key
        self.session_token = session_token
        self.endpoint_url = endpoint_url
        self.verify = aws_ca_bundle if aws_ca_bundle else validate_certs
        self.config = botocore.config.Config(retries={"mode": "standard", "max_attempts": max_attempts},
                                             connect_timeout=10, read_timeout=60, user_agent_extra="petra.core")

    @classmethod
    def from_params(cls, params):
        return cls(**{name: params.get(name) for name in CONNECTION_OPTIONS if name in params})

    def client(self, service, region=None, endpoint_url=None, data_path=None, api_version=None):
        """A boto3 client; ``data_path`` adds a directory of botocore models (``<service>/<api_version>/``)."""
        try:
            core = botocore.session.Session()
            if data_path:
                # A loader of its own, so the installed botocore is never modified.
                core.register_component("data_loader", botocore.loaders.Loader(extra_search_paths=[data_path]))
            session = boto3.session.Session(
                profile_name=self.profile or None,
                aws_access_key_id=self.access_key or None,
                aws_secret_access_key=self.secret_key or None,
                aws_session_token=self.session_token or None,
                botocore_session=core,
            )
            return session.client(service, region_name=region or self.region or session.region_name,
                                  endpoint_url=endpoint_url or self.endpoint_url or None, api_version=api_version,
                                  verify=self.verify, config=self.config)
        except botocore.exceptions.ProfileNotFound as exc:
            raise AWSError("AWS profile not found: %s" % exc, hint="Check 'profile' or AWS_PROFILE")
        except botocore.exceptions.BotoCoreError as exc:
            raise AWSError("cannot create an AWS %s client: %s" % (service, exc),
                           hint="Set 'region' (or AWS_REGION) and valid credentials")
