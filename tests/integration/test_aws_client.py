"""The one AWS path (aws/client.py, aws/errors.py) against moto and Petra's Diode emulator: retries configured once,
clients for a service botocore ships no model for, expected-missing answers, failures in the caller's error class."""

import threading
import time

import boto3
import pytest

from ansible_collections.petra.core.plugins.module_utils.adapters.diode import diode_for
from ansible_collections.petra.core.plugins.module_utils.aws.client import CONNECTION_OPTIONS, AWSConnection
from ansible_collections.petra.core.plugins.module_utils.aws.errors import AWSCalls, AWSError, aws_errors
from ansible_collections.petra.core.plugins.module_utils.diode.emulator import DiodeEmulator, Mapping, make_server
from ansible_collections.petra.core.plugins.module_utils.diode.service import API_VERSION, DATA_PATH
from ansible_collections.petra.core.plugins.module_utils.errors import PetraError
from ansible_collections.petra.core.plugins.module_utils.options.aws import AWS_ARGUMENT_SPEC

REGION = "us-east-1"
CREDS = dict(aws_access_key_id="testing", aws_secret_access_key="testing")


class CallerError(PetraError):
    """Stands for a package's own error class."""


def connection(moto):
    return AWSConnection(region=REGION, endpoint_url=moto.endpoint, access_key="testing", secret_key="testing")


def test_a_connection_reads_every_aws_option():
    assert set(CONNECTION_OPTIONS) == set(AWS_ARGUMENT_SPEC)
    params = {name: None for name in AWS_ARGUMENT_SPEC}
    params.update(region="us-gov-west-1", validate_certs=False, state="present")
    made = AWSConnection.from_params(params)
    assert made.region == "us-gov-west-1" and made.verify is False


def test_every_client_retries_in_standard_mode(moto):
    for service in ("s3", "ec2", "iam", "kms"):
        retries = connection(moto).client(service).meta.config.retries
        # botocore counts the first attempt too: 8 retries are 9 attempts.
        assert retries == {"mode": "standard", "total_max_attempts": 9}, (service, retries)


def test_expected_missing_answers_give_none(moto):
    bucket = "missing-%d" % time.monotonic_ns()
    boto3.client("s3", region_name=REGION, endpoint_url=moto.endpoint, **CREDS).create_bucket(Bucket=bucket)
    aws = connection(moto)
    calls = AWSCalls(CallerError, reason="aws")
    s3, iam, ssm, ec2 = (aws.client(name) for name in ("s3", "iam", "ssm", "ec2"))
    assert calls("S3 HeadObject", s3.head_object, missing_ok=True, Bucket=bucket, Key="none") is None
    assert calls("S3 GetObject", s3.get_object, missing_ok=True, Bucket=bucket, Key="none") is None
    assert calls("IAM GetRole", iam.get_role, missing_ok=True, RoleName="petra-none") is None
    assert calls("SSM GetParameter", ssm.get_parameter, missing_ok=True, Name="/petra/none") is None
    assert calls("EC2 DescribeLaunchTemplates", ec2.describe_launch_templates, missing_ok=True,
                 LaunchTemplateNames=["petra-none"]) is None
    # Without missing_ok the same answer is a failure, in the caller's class.
    with pytest.raises(CallerError, match=r"IAM GetRole failed \(NoSuchEntity\)") as caught:
        calls("IAM GetRole", iam.get_role, RoleName="petra-none")
    assert caught.value.details == {"reason": "aws", "code": "NoSuchEntity"}


def test_a_failure_names_action_code_and_the_callers_hint(moto):
    s3 = connection(moto).client("s3")
    head = "unchanged"
    # A missing bucket is not an expected-missing answer: missing_ok does not hide it.
    with pytest.raises(CallerError) as caught:
        with aws_errors(CallerError, "S3 GetObject s3://petra-no-such-bucket/k", hint="Create the bucket first",
                        missing_ok=True):
            head = s3.get_object(Bucket="petra-no-such-bucket", Key="k")
    assert head == "unchanged"
    assert str(caught.value).startswith("S3 GetObject s3://petra-no-such-bucket/k failed (NoSuchBucket): ")
    assert caught.value.hint == "Create the bucket first" and caught.value.details["code"] == "NoSuchBucket"
    assert isinstance(caught.value.__cause__, Exception) and not isinstance(caught.value.__cause__, PetraError)


def test_petra_errors_pass_the_handler_unchanged():
    original = PetraError("the caller's own check failed", hint="fix it")
    with pytest.raises(PetraError) as caught:
        with aws_errors(CallerError, "S3 PutObject"):
            raise original
    assert caught.value is original


def test_settings_errors_are_aws_errors():
    with pytest.raises(AWSError, match="AWS profile not found"):
        AWSConnection(profile="petra-no-such-profile").client("s3")


@pytest.fixture
def diode(moto):
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto.endpoint, **CREDS)
    # Two requests a second: most of the calls below are throttled first.
    emulator = DiodeEmulator(s3, [Mapping("0f5c3b2a-1d2e-4f60-8a9b-0c1d2e3f4a5b", "high")], rate_limit=2)
    server = make_server(emulator)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_the_diode_client_comes_from_the_same_factory_and_retries(moto, diode):
    client = connection(moto).client("diode", endpoint_url=diode, data_path=DATA_PATH, api_version=API_VERSION)
    assert client.meta.service_model.service_name == "diode"
    retried = 0
    for _attempt in range(6):
        answer = client.list_account_mappings()
        assert [m["mappingId"] for m in answer["accountMappingList"]] == ["0f5c3b2a-1d2e-4f60-8a9b-0c1d2e3f4a5b"]
        retried += answer["ResponseMetadata"]["RetryAttempts"]
    # The emulator refused some calls (ResourceLimitExceededException); botocore retried them, nobody else did.
    assert retried > 0
    # The model directory was added to this client's loader only: botocore's own loader still knows no "diode".
    with pytest.raises(Exception, match="diode"):
        boto3.session.Session(region_name=REGION, **CREDS).client("diode", endpoint_url=diode)


def test_the_diode_client_of_petra_diode_has_the_connections_retries_and_the_diode_endpoint(moto, diode):
    """petra_diode makes its Diode client from the task's one connection, whose endpoint_url is S3's (moto here)."""
    params = {name: None for name in AWS_ARGUMENT_SPEC}
    params.update(region=REGION, access_key="testing", secret_key="testing", endpoint_url=moto.endpoint,
                  validate_certs=True, diode_endpoint_url=diode)
    aws = AWSConnection.from_params(params)
    s3 = aws.client("s3")
    client = diode_for(aws, s3, params)
    assert client.meta.endpoint_url == diode and s3.meta.endpoint_url == moto.endpoint
    assert client.meta.config.retries == s3.meta.config.retries == {"mode": "standard", "total_max_attempts": 9}
    assert client.meta.config.user_agent_extra == "petra.core" and client.meta.region_name == REGION
    retried = 0
    for _attempt in range(6):  # the emulator allows two calls a second: botocore retries the rest
        answer = client.list_account_mappings()
        assert [m["mappingId"] for m in answer["accountMappingList"]] == ["0f5c3b2a-1d2e-4f60-8a9b-0c1d2e3f4a5b"]
        retried += answer["ResponseMetadata"]["RetryAttempts"]
    assert retried > 0
    # Without diode_endpoint_url: Diode's own endpoint in the connection's region, never the S3 endpoint_url.
    params.update(region="us-gov-west-1", diode_endpoint_url=None)
    aws = AWSConnection.from_params(params)
    assert diode_for(aws, aws.client("s3"), params).meta.endpoint_url == "https://diode.us-gov-west-1.amazonaws.com"
