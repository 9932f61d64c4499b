# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The custody options of petra_bundle (state=present): verify_images, scan, sbom, sbom_generate."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.custody.scan import SCANNERS, THRESHOLDS, Scanner
from ansible_collections.petra.core.plugins.module_utils.custody.signed_reference import DEFAULT_MODE, MODES
from ansible_collections.petra.core.plugins.module_utils.custody.verification import METHODS, SourceVerifier

PROVENANCE_SPEC = dict(
    required=dict(type="bool", default=True),
    builder_id=dict(type="str"),
    builder_id_glob=dict(type="str"),
    build_type=dict(type="str"),
    source_repo=dict(type="str"),
    source_ref=dict(type="str"),
    key=dict(type="str", no_log=False),
    identity=dict(type="str"),
    issuer=dict(type="str"),
    trusted_root=dict(type="path"),
)
VERIFY_IMAGES_RULE_SPEC = dict(
    glob=dict(type="str", required=True),
    method=dict(type="str", choices=list(METHODS)),
    key=dict(type="str", no_log=False),
    identity=dict(type="str"),
    issuer=dict(type="str"),
    trusted_root=dict(type="path"),
    docker_reference=dict(type="str", default=DEFAULT_MODE, choices=list(MODES)),
    docker_reference_globs=dict(type="list", elements="str", default=[]),
    provenance=dict(type="dict", options=PROVENANCE_SPEC,
                    mutually_exclusive=[["builder_id", "builder_id_glob"], ["key", "identity"]],
                    required_one_of=[["builder_id", "builder_id_glob"]], required_by={"source_ref": "source_repo"}),
)
SCAN_SPEC = dict(
    scanner=dict(type="str", required=True, choices=list(SCANNERS)),
    fail_on=dict(type="str", default="high", choices=list(THRESHOLDS)),
    ignore_file=dict(type="path"),
    executable=dict(type="str"),
    args=dict(type="list", elements="str", default=[]),
    env=dict(type="dict", default={}, no_log=True),
    timeout=dict(type="int", default=1800),
)
CUSTODY_ARGUMENT_SPEC = dict(
    verify_images=dict(type="list", elements="dict", options=VERIFY_IMAGES_RULE_SPEC),
    scan=dict(type="dict", options=SCAN_SPEC),
    sbom=dict(type="bool", default=True),
    sbom_generate=dict(type="bool", default=True),
)


def custody_from_params(params, aws_connection=None):
    """Keyword arguments of create_bundle for the custody options (``aws_connection``: a callable for awskms://)."""
    rules = params.get("verify_images")
    return {
        "verifier": SourceVerifier(rules, aws_connection) if rules else None,
        "scanner": Scanner(params["scan"]) if params.get("scan") else None,
        "sbom": params.get("sbom", True),
        "sbom_generate": params.get("sbom_generate", True),
    }
