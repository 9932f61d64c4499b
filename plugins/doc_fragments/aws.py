# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations


class ModuleDocFragment:
    # The names follow amazon.aws, so playbooks that already set them read the same.
    DOCUMENTATION = r"""
options:
  region:
    description:
      - The AWS region. When not given, C(AWS_REGION)/C(AWS_DEFAULT_REGION) or the profile's region is used;
        for a KMS key given as an ARN, the ARN's region wins.
    type: str
    aliases: [aws_region]
  profile:
    description:
      - A named profile from the AWS shared configuration files.
    type: str
    aliases: [aws_profile]
  access_key:
    description:
      - AWS access key id. When not given, the usual boto3 credential chain is used
        (environment, profile, instance or task role).
    type: str
    aliases: [aws_access_key_id, aws_access_key]
  secret_key:
    description:
      - AWS secret access key.
    type: str
    aliases: [aws_secret_access_key, aws_secret_key]
  session_token:
    description:
      - AWS session token for temporary credentials.
    type: str
    aliases: [aws_session_token]
  endpoint_url:
    description:
      - A different endpoint for AWS calls, for example a VPC endpoint in an isolated region or a local emulator.
    type: str
    aliases: [aws_endpoint_url]
  aws_ca_bundle:
    description:
      - A CA bundle to verify AWS endpoints with.
    type: path
  validate_certs:
    description:
      - Whether to verify the TLS certificates of AWS endpoints. Only ever disable it against a local emulator.
    type: bool
    default: true
requirements:
  - boto3 (for AWS access)
"""
