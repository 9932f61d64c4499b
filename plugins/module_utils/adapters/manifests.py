# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The argument spec of petra_manifests and what it does with validated parameters (it never changes anything)."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.manifests.documents import ManifestError
from ansible_collections.petra.core.plugins.module_utils.manifests.validate import KUBERNETES_VERSION, check_manifests

ARGUMENT_SPEC = dict(
    paths=dict(type="list", elements="path", required=True, aliases=["path", "src"]),
    crds=dict(type="list", elements="path", default=[]),
    kubernetes_version=dict(type="str", default=KUBERNETES_VERSION),
    allow_unknown_kinds=dict(type="list", elements="str", default=[]),
)
MUTUALLY_EXCLUSIVE = []
REQUIRED_IF = []
CONTROLLER_FILES = ("paths", "crds")
SHOWN_IN_MESSAGE = 10


def run(params, check_mode, playbook_dir=None):  # pylint: disable=unused-argument
    files, documents, findings, validator = check_manifests(
        params["paths"], params["crds"], params["kubernetes_version"], params["allow_unknown_kinds"])
    if findings:
        shown = "; ".join(str(finding) for finding in findings[:SHOWN_IN_MESSAGE])
        more = " (and %d more)" % (len(findings) - SHOWN_IN_MESSAGE) if len(findings) > SHOWN_IN_MESSAGE else ""
        raise ManifestError("%d problem(s) in %d object(s) of %d file(s): %s%s" % (
            len(findings), validator.checked, len(files), shown, more),
            hint="Fix the field named; the findings list has every problem", reason="invalid",
            findings=[finding.as_dict() for finding in findings])
    return {"changed": False, "files": len(files), "objects": validator.checked,
            "kinds": sorted({"%s %s" % (d.obj.get("apiVersion"), d.obj.get("kind")) for d in documents
                             if isinstance(d.obj, dict)}),
            "unknown_kinds_allowed": sorted(set(validator.skipped)), "kubernetes_version": params["kubernetes_version"]}
