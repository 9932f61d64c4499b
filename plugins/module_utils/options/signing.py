# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Signing key options (documented once in the petra.core.signing_key doc fragment)."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.aws.client import AWSConnection
from ansible_collections.petra.core.plugins.module_utils.signing.keys import KMS_SCHEME, load_signer

SIGNING_ARGUMENT_SPEC = dict(
    signing_key=dict(type="str", no_log=False),
    signing_key_content=dict(type="str", no_log=True),
    signing_key_password=dict(type="str", no_log=True),
)
SIGNING_MUTUALLY_EXCLUSIVE = [("signing_key", "signing_key_content")]


def signer_from_params(params):
    key = params.get("signing_key_content") or params.get("signing_key")
    connection = AWSConnection.from_params(params) if (key or "").startswith(KMS_SCHEME) else None
    return load_signer(key, params.get("signing_key_password"), connection)
