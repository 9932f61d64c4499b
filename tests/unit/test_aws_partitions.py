import pytest

from ansible_collections.petra.core.plugins.module_utils.aws.client import parse_arn
from ansible_collections.petra.core.plugins.module_utils.aws.errors import AWSError


@pytest.mark.parametrize("arn, partition, region", [
    ("arn:aws:kms:us-east-1:111122223333:key/abc", "aws", "us-east-1"),
    ("arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/petra", "aws-us-gov", "us-gov-west-1"),
    ("arn:aws-iso:kms:us-iso-east-1:111122223333:key/abc", "aws-iso", "us-iso-east-1"),
    ("arn:aws-iso-b:kms:us-isob-east-1:111122223333:key/abc", "aws-iso-b", "us-isob-east-1"),
    ("arn:aws-cn:kms:cn-north-1:111122223333:key/abc", "aws-cn", "cn-north-1"),
])
def test_partitions(arn, partition, region):
    parts = parse_arn(arn)
    assert parts["partition"] == partition and parts["region"] == region and parts["service"] == "kms"


def test_unknown_partition():
    with pytest.raises(AWSError, match="unknown partition"):
        parse_arn("arn:aws-moon:kms:m-1:111122223333:key/abc")


def test_not_an_arn():
    with pytest.raises(AWSError, match="is not an ARN"):
        parse_arn("alias/petra")
