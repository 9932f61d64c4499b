# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""AWS failures in the caller's words: the one handler that turns a failed AWS call into the caller's PetraError.

Every package names its own error class, so a failure reads as that package's (a cluster, an import, a signature),
while the message always carries the action, the AWS error code and what AWS said. Retrying is not done here:
botocore retries throttling and transient errors once, as configured in ``client.py``.

    calls = AWSCalls(ClusterError, reason="aws")
    group = calls("EC2 DescribeSecurityGroups", ec2.describe_security_groups, GroupIds=[group_id])
    profile = calls("IAM GetInstanceProfile", iam.get_instance_profile, missing_ok=True, InstanceProfileName=name)
    with calls.errors("S3 upload s3://%s/%s" % (bucket, key), hint="The caller needs s3:PutObject"):
        s3.upload_fileobj(body, bucket, key)
"""

from __future__ import annotations

try:
    import botocore.exceptions
    HAS_BOTOCORE = True
except ImportError:  # pragma: no cover - aws/client.py reports it when a client is made
    HAS_BOTOCORE = False

from ansible_collections.petra.core.plugins.module_utils.errors import PetraError

# The answers that mean "there is no such thing (yet)" wherever Petra asks whether something exists; a call made
# with missing_ok gives None for them. One list, so no caller forgets a spelling (S3 answers HEAD with a bare 404).
MISSING_CODES = frozenset((
    "404", "NoSuchKey", "NotFound",  # S3 HeadObject / GetObject
    "NoSuchEntity",  # IAM
    "ParameterNotFound",  # SSM
    "InvalidLaunchTemplateName.NotFoundException", "InvalidLaunchTemplateId.NotFound",  # EC2 launch templates
))
_ACCESS_CODES = ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "InvalidSignatureException")


class AWSError(PetraError):
    """An AWS call failed, or the AWS settings are unusable; the message carries the service's error code."""


def error_code(exc):
    """The AWS error code of a botocore ClientError, else None."""
    response = getattr(exc, "response", None) or {}
    return (response.get("Error") or {}).get("Code")


def is_missing(exc):
    """Whether AWS answered that the object, entity, parameter or template asked for does not exist."""
    return error_code(exc) in MISSING_CODES


def _aws_hint(exc, code):
    if code in _ACCESS_CODES:
        return "Check the AWS credentials and the IAM policy of the caller for this action"
    if HAS_BOTOCORE and isinstance(exc, botocore.exceptions.NoCredentialsError):
        return "Give access_key/secret_key, a profile, or run where an instance role provides credentials"
    if HAS_BOTOCORE and isinstance(exc, botocore.exceptions.NoRegionError):
        return "Set 'region' or AWS_REGION"
    return None


def wrap_client_error(exc, action, error_class=AWSError, hint=None, **details):
    """``error_class`` for a failed call: the action, the error code, what AWS said; the caller's hint, else AWS's."""
    code = error_code(exc) or type(exc).__name__
    details.setdefault("code", code)
    return error_class("%s failed (%s): %s" % (action, code, exc), hint=hint or _aws_hint(exc, code), **details)


class AWSErrorHandler:
    """Within the block, a failing AWS call raises ``error_class`` (see ``wrap_client_error``); Petra's own errors pass.

    With ``missing_ok``, an expected-missing answer (``MISSING_CODES``) ends the block quietly instead: assign a
    default before it. Every other exception type counts as the call's failure, since botocore, boto3 and
    s3transfer raise many unrelated ones (ClientError, BotoCoreError, S3UploadFailedError, WaiterError, ...).
    """

    def __init__(self, error_class=AWSError, action="AWS call", hint=None, missing_ok=False, **details):
        self.error_class = error_class
        self.action = action
        self.hint = hint
        self.missing_ok = missing_ok
        self.details = details

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, traceback):
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, PetraError):
            return False
        if self.missing_ok and is_missing(exc):
            return True
        raise wrap_client_error(exc, self.action, self.error_class, self.hint, **self.details) from exc


def aws_errors(error_class=AWSError, action="AWS call", hint=None, missing_ok=False, **details):
    """The handler for a block of AWS calls: ``with aws_errors(TransferError, "S3 HeadObject ...", missing_ok=True):``."""
    return AWSErrorHandler(error_class, action, hint=hint, missing_ok=missing_ok, **details)


class AWSCalls:
    """The AWS calls of one package: failures become ``error_class`` with ``details`` (a reason code, say)."""

    def __init__(self, error_class=AWSError, hint=None, **details):
        self.error_class = error_class
        self.hint = hint
        self.details = details

    def errors(self, action, hint=None, missing_ok=False):
        """The handler for a block of calls (a paginator, an upload): ``with calls.errors("S3 upload ..."):``."""
        return aws_errors(self.error_class, action, hint=hint or self.hint, missing_ok=missing_ok, **self.details)

    def __call__(self, action, function, missing_ok=False, hint=None, **kwargs):
        """``function(**kwargs)``; None when ``missing_ok`` and AWS answers that the thing does not exist."""
        with self.errors(action, hint=hint, missing_ok=missing_ok):
            return function(**kwargs)
        return None
