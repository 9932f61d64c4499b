# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  signing_key:
    description:
      - The key that signs, as a path on the controller or an AWS KMS reference.
      - "A path may hold a cosign key file (C(ENCRYPTED SIGSTORE PRIVATE KEY) or C(ENCRYPTED COSIGN PRIVATE KEY),
        opened with O(signing_key_password)), or a PEM EC private key (PKCS#8, optionally encrypted, or SEC1)."
      - "C(awskms://[ENDPOINT]/KEY), where KEY is a key id, C(alias/NAME), a key ARN or an alias ARN in any partition
        (aws, aws-us-gov, aws-cn, aws-iso, aws-iso-b, ...). KMS signs the digest (C(MessageType=DIGEST));
        the private key never leaves KMS. The AWS connection options apply."
      - Only ECDSA P-256 (with SHA-256) and P-384 (with SHA-384) keys are accepted; every other key type is refused.
      - Exactly one of O(signing_key) and O(signing_key_content) is required.
    type: str
  signing_key_content:
    description:
      - The private key as PEM text, for keys kept in Ansible Vault or a secret store. Same formats as O(signing_key).
    type: str
  signing_key_password:
    description:
      - Password of an encrypted key file (cosign or encrypted PKCS#8).
    type: str
"""
