# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""What petra_bundle and petra_verify do with validated parameters; shared by module and action plugin."""

from __future__ import annotations

import os

from ansible_collections.petra.core.plugins.module_utils.bundle.create import create_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys, verify_bundle
from ansible_collections.petra.core.plugins.module_utils.oci.options import client_pool_from_params
from ansible_collections.petra.core.plugins.module_utils.signing.options import signer_from_params


def parse_mode(value):
    if isinstance(value, int):
        return value
    try:
        mode = int(str(value), 8)
    except ValueError:
        raise BundleError("mode %r is not an octal file mode such as '0644'" % (value,))
    if mode & ~0o777:
        raise BundleError("mode %r sets bits beyond rwx for user, group and other" % (value,))
    return mode


def run_create(params, check_mode, default_base_dir=None):
    level = params["compression_level"]
    if not 1 <= level <= 19:
        raise BundleError("compression_level %d is outside 1..19" % level,
                          hint="3 is fast and close to the best ratio for already-compressed layers")
    if params.get("spec"):
        spec = BundleSpec.from_file(params["spec"])
    else:
        spec = BundleSpec.from_definition(params["definition"], params.get("base_dir") or default_base_dir or os.getcwd())
    signer = signer_from_params(params)
    pool = client_pool_from_params(params)
    return create_bundle(spec, params["dest"], signer, pool, signature_path=params.get("signature"), level=level,
                         check_mode=check_mode, force=params["force"], mode=parse_mode(params["mode"]))


def run_verify(params):
    keys = load_public_keys(params["public_key"])
    result = verify_bundle(params["path"], keys, params.get("signature"))
    result["changed"] = False
    return result
