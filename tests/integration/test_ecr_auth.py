"""ECR registry tokens from moto's ECR (GetAuthorizationToken), used against a real registry."""

import boto3
import pytest

from ansible_collections.petra.core.plugins.module_utils.aws.client import AWSConnection
from ansible_collections.petra.core.plugins.module_utils.oci.auth import Credentials
from ansible_collections.petra.core.plugins.module_utils.oci.ecr import ECRCredentials, parse_ecr_host
from ansible_collections.petra.core.plugins.module_utils.oci.registry import RegistryClient
from ansible_collections.petra.core.tests.support import servers


@pytest.mark.parametrize("host, expected", [
    ("111122223333.dkr.ecr.us-east-1.amazonaws.com", ("111122223333", "us-east-1")),
    ("111122223333.dkr.ecr-fips.us-gov-west-1.amazonaws.com", ("111122223333", "us-gov-west-1")),
    ("111122223333.dkr.ecr.cn-north-1.amazonaws.com.cn", ("111122223333", "cn-north-1")),
    ("111122223333.dkr.ecr.us-iso-east-1.c2s.ic.gov", ("111122223333", "us-iso-east-1")),
    ("111122223333.dkr.ecr.us-isob-east-1.sc2s.sgov.gov", ("111122223333", "us-isob-east-1")),
    ("registry.example:5000", None),
])
def test_ecr_host_names(host, expected):
    assert parse_ecr_host(host) == expected


def test_ecr_token_against_a_registry(tmp_path, moto):
    connection = AWSConnection(region="us-east-1", endpoint_url=moto.endpoint, access_key="testing",
                               secret_key="testing")
    token = boto3.client("ecr", region_name="us-east-1", endpoint_url=moto.endpoint, aws_access_key_id="testing",
                         aws_secret_access_key="testing").get_authorization_token()
    import base64
    user, password = base64.b64decode(token["authorizationData"][0]["authorizationToken"]).decode().split(":", 1)
    # A registry that only accepts the ECR token, standing in for ECR (forced: its name is not an ECR name).
    with servers.Registry(str(tmp_path), users={user: password}) as registry:
        credentials = ECRCredentials(Credentials(), connection, force=True)
        client = RegistryClient(registry.host, credentials, insecure=True, retries=0)
        response = client.request("GET", "", None, ok=(200,))
        response.close()
        assert credentials.for_registry(registry.host) == (user, password)
    # Registries that are not ECR still use the fallback (auth files, explicit credentials).
    fallback = ECRCredentials(Credentials("u", "p"), connection)
    assert fallback.for_registry("registry.example:5000") == ("u", "p")
