# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""One way to build AWS clients: region, profile, endpoint, CA bundle, retries, partitions, error wrapping."""

from __future__ import annotations

import re

try:
    import boto3
    import botocore.config
    import botocore.exceptions
    HAS_BOTO3 = True
except ImportError:  # pragma: no cover - reported at run time
    HAS_BOTO3 = False

from ansible_collections.petra.core.plugins.module_utils.errors import PetraError

PARTITIONS = ("aws", "aws-us-gov", "aws-cn", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f")
_ARN_RE = re.compile(r"^arn:(?P<partition>[a-z-]+):(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):"
                     r"(?P<account>\d{12})?:(?P<resource>.+)$")

# The option names follow amazon.aws so playbooks read the same; the doc fragment petra.core.aws
# documents them.
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


class AWSError(PetraError):
    """An AWS call failed; the message carries the service's error code."""


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


def error_code(exc):
    """The AWS error code of a botocore ClientError, else None."""
    response = getattr(exc, "response", None) or {}
    return (response.get("Error") or {}).get("Code")


class AWSConnection:
    """Connection settings shared by every AWS call a task makes."""

    def __init__(self, region=None, profile=None, access_key=None, secret_key=None, session_token=None,
                 endpoint_url=None, aws_ca_bundle=None, validate_certs=True, max_attempts=8):
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
        self.max_attempts = max_attempts

    @classmethod
    def from_params(cls, params):
        return cls(**{name: params.get(name) for name in AWS_ARGUMENT_SPEC if name in params})

    def client(self, service, region=None, endpoint_url=None):
        try:
            session = boto3.session.Session(
                profile_name=self.profile or None,
                aws_access_key_id=self.access_key or None,
                aws_secret_access_key=self.secret_key or None,
                aws_session_token=self.session_token or None,
            )
            config = botocore.config.Config(
                retries={"max_attempts": self.max_attempts, "mode": "adaptive"},
                connect_timeout=10, read_timeout=60, user_agent_extra="petra.core")
            return session.client(service, region_name=region or self.region or session.region_name,
                                  endpoint_url=endpoint_url or self.endpoint_url or None,
                                  verify=self.verify, config=config)
        except botocore.exceptions.ProfileNotFound as exc:
            raise AWSError("AWS profile not found: %s" % exc, hint="Check 'profile' or AWS_PROFILE")
        except botocore.exceptions.BotoCoreError as exc:
            raise AWSError("cannot create an AWS %s client: %s" % (service, exc),
                           hint="Set 'region' (or AWS_REGION) and valid credentials")


def wrap_client_error(exc, action):
    """An AWSError for a failed call, naming the action, the error code and what AWS said."""
    code = error_code(exc) or type(exc).__name__
    message = str(exc)
    hint = None
    if code in ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "InvalidSignatureException"):
        hint = "Check the AWS credentials and the IAM policy of the caller for this action"
    elif isinstance(exc, getattr(botocore.exceptions, "NoCredentialsError", ())):
        hint = "Give access_key/secret_key, a profile, or run where an instance role provides credentials"
    elif isinstance(exc, getattr(botocore.exceptions, "NoRegionError", ())):
        hint = "Set 'region' or AWS_REGION"
    return AWSError("%s failed (%s): %s" % (action, code, message), hint=hint, code=code)
