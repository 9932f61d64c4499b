# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The argument spec of petra_diode and what it does with validated parameters."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.aws.client import AWS_ARGUMENT_SPEC
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys
from ansible_collections.petra.core.plugins.module_utils.diode import transfer
from ansible_collections.petra.core.plugins.module_utils.diode.parts import DEFAULT_ALLOWED_EXTENSIONS
from ansible_collections.petra.core.plugins.module_utils.signing.options import (
    SIGNING_ARGUMENT_SPEC,
    SIGNING_MUTUALLY_EXCLUSIVE,
    signer_from_params,
)

DIODE_ARGUMENT_SPEC = dict(SIGNING_ARGUMENT_SPEC, **AWS_ARGUMENT_SPEC)
DIODE_ARGUMENT_SPEC.update(
    state=dict(type="str", default="sent", choices=["sent", "received"]),
    transport=dict(type="str", default="directory", choices=["directory"]),
    src=dict(type="path"),
    signature=dict(type="path"),
    dest=dict(type="path"),
    directory=dict(type="path", required=True),
    index=dict(type="str"),
    public_key=dict(type="list", elements="str"),
    max_part_size=dict(type="str", default="100MB"),
    allowed_extensions=dict(type="list", elements="str", default=list(DEFAULT_ALLOWED_EXTENSIONS)),
)
DIODE_MUTUALLY_EXCLUSIVE = SIGNING_MUTUALLY_EXCLUSIVE
DIODE_REQUIRED_IF = [
    ("state", "sent", ("src",)),
    ("state", "sent", ("signing_key", "signing_key_content"), True),
    ("state", "received", ("dest", "public_key")),
]


def run_diode(params, check_mode):
    if params["state"] == "sent":
        return transfer.send_to_directory(params["src"], params["directory"], signer_from_params(params),
                                          params["max_part_size"], params.get("signature"),
                                          params["allowed_extensions"], check_mode)
    return transfer.receive_from_directory(params["directory"], params["dest"], load_public_keys(params["public_key"]),
                                           params.get("index"), check_mode)
