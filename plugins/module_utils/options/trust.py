# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""What the high side trusts: how many keys must sign, and the trust state (documented once in the
petra.core.trust doc fragment)."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.trust.admission import TrustGate
from ansible_collections.petra.core.plugins.module_utils.trust.errors import TrustError

TRUST_ARGUMENT_SPEC = dict(
    threshold=dict(type="int", default=1),
    cosignatures=dict(type="path"),
    trust_state=dict(type="path"),
    trust_state_anchor=dict(type="str"),
    trust_state_required=dict(type="bool", default=False),
    allow_downgrade=dict(type="bool", default=False),
)
# Loads only: the break glass for a trust state that is behind its witness in the target registry.
WITNESS_ARGUMENT_SPEC = dict(
    trust_witness_reset=dict(type="str"),
)


def verify_options_from_params(params):
    """The keyword options of bundle verification these parameters ask for."""
    threshold = params.get("threshold")
    return {"threshold": 1 if threshold is None else threshold, "cosignature_path": params.get("cosignatures")}


def gate_from_params(params):
    """A TrustGate when a trust state is given (proving it now, before the bundle is read), else None."""
    if not params.get("trust_state"):
        for name in ("trust_state_anchor", "allow_downgrade", "trust_state_required", "trust_witness_reset"):
            if params.get(name):
                raise TrustError("%s needs trust_state" % name,
                                 hint="Give trust_state, the file that records the accepted bundles")
        return None
    return TrustGate(params["trust_state"], params.get("trust_state_anchor"), params.get("allow_downgrade"),
                     params.get("trust_state_required"))
