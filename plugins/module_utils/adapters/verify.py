# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The adapter of petra_verify: its argument spec, and the verification it runs (it writes nothing but the review
sheet and the carried trusted roots, when asked for them)."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.adapters.bundle import bind_witness
from ansible_collections.petra.core.plugins.module_utils.bundle.delta_record import carried_blobs
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError
from ansible_collections.petra.core.plugins.module_utils.bundle.extract import EntryExtractor
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys
from ansible_collections.petra.core.plugins.module_utils.errors import PetraError
from ansible_collections.petra.core.plugins.module_utils.load.targets import TargetRegistry
from ansible_collections.petra.core.plugins.module_utils.options.aws import AWS_ARGUMENT_SPEC
from ansible_collections.petra.core.plugins.module_utils.options.registry import (
    REGISTRY_ARGUMENT_SPEC,
    client_pool_from_params,
)
from ansible_collections.petra.core.plugins.module_utils.options.specs import merged
from ansible_collections.petra.core.plugins.module_utils.options.trust import (
    TRUST_ARGUMENT_SPEC,
    gate_from_params,
    verify_options_from_params,
)
from ansible_collections.petra.core.plugins.module_utils.review.render import write_sheets
from ansible_collections.petra.core.plugins.module_utils.review.sheet import Review
from ansible_collections.petra.core.plugins.module_utils.trust.custody import custody_record, image_sboms

ARGUMENT_SPEC = merged(
    TRUST_ARGUMENT_SPEC,
    REGISTRY_ARGUMENT_SPEC,
    AWS_ARGUMENT_SPEC,
    registry=dict(type="str"),
    path=dict(type="path", required=True),
    public_keys=dict(type="list", elements="str", required=True, aliases=["public_key"], no_log=False),
    signature=dict(type="path"),
    review_html=dict(type="path"),
    review_json=dict(type="path"),
    extract_trusted_roots=dict(type="path"),
)

MUTUALLY_EXCLUSIVE = []
REQUIRED_IF = []
CONTROLLER_FILES = ("path", "public_keys", "signature", "cosignatures", "ca_file")
REPORTS_PROGRESS = True


def run(params, check_mode=False, playbook_dir=None, progress=None):  # pylint: disable=unused-argument
    """Verification reads only; the review sheet and the trusted roots, when asked for, are the things written (not
    in check mode)."""
    review = Review(params["path"])
    wanted = params.get("review_html") or params.get("review_json")
    extractor = None
    if params.get("extract_trusted_roots"):
        extractor = EntryExtractor(params["extract_trusted_roots"], check_mode=check_mode)
    try:
        result = _verify(params, review, progress, extractor)
    except Exception as exc:
        if extractor is not None:
            extractor.discard()
        # A refused bundle gets its sheet too, saying refused and why, and the task still fails; a sheet left from an
        # earlier run can never be mistaken for this one.
        if wanted:
            written = write_sheets(review.data(refusal=exc), params.get("review_html"), params.get("review_json"),
                                   check_mode)
            if isinstance(exc, PetraError):
                exc.details.setdefault("review", written)
        raise
    result["changed"] = extractor.commit() if extractor is not None else False
    if wanted:
        result["review"] = write_sheets(review.data(result.get("trust_state"), result["custody"]),
                                        params.get("review_html"), params.get("review_json"), check_mode)
        result["changed"] = result["changed"] or result["review"]["changed"]
    return result


def _verify(params, review, progress=None, extractor=None):
    keys = load_public_keys(params["public_keys"])
    gate = gate_from_params(params)
    if params.get("registry"):
        if gate is None:
            raise BundleError("registry needs trust_state: it names where the trust state's witness is kept",
                              hint="Give trust_state, or leave registry out")
        bind_witness(gate, client_pool_from_params(params), TargetRegistry(params["registry"]), check_mode=True)
    verification = review.verify(keys, params.get("signature"), progress=progress,
                                 around=extractor.around if extractor is not None else None,
                                 **verify_options_from_params(params))
    result = verification.result
    # What a later delta built on this bundle may leave out (petra_bundle base_verification takes this result).
    result["carried_blobs"] = carried_blobs(verification.metadata)
    if gate is not None:
        gate.admit(result, verification.metadata)
        result["trust_state"] = gate.preview()
    result["custody"] = custody_record(verification.metadata, result)
    result["images"] = image_sboms(result["custody"])
    if extractor is not None:
        result["trusted_roots"] = _extracted(result["trusted_roots"], extractor)
    return result


def _extracted(trusted_roots, extractor):
    """The carried trusted roots, each with the path it is (or, in check mode, would be) extracted to."""
    for item in trusted_roots:
        if item.get("name") not in extractor.paths:
            raise BundleError("the signed metadata names the trusted root %s, which the bundle does not hold" %
                              item.get("name"), hint="Ask the sender for a bundle built again; nothing was extracted",
                              reason="trusted-root")
    return [dict(item, path=extractor.paths[item["name"]]) for item in trusted_roots]
