# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""From check outcomes to a verdict per assessment objective, and the objectives no tool can prove.

An objective with checks is satisfied only when every one of its checks passed; one failure makes it
``not-satisfied`` (reason ``fail``); evidence that could not be collected makes it ``not-satisfied`` (reason
``other``). An objective in ``MANUAL`` is always ``not-satisfied`` (reason ``other``) with what a person has to
examine or ask: Petra never passes what it cannot see. Its ``supporting`` checks are attached as evidence only.
"""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.evidence import (
    checks_aws,
    checks_cluster,
    checks_custody,
    checks_nodes,
    checks_running,
)
from ansible_collections.petra.core.plugins.module_utils.evidence.checks import FAIL, NOT_COLLECTED, PASS, REGISTRY

# Importing the check modules registers their checks; this names them so that nothing reads the imports as unused.
CHECK_MODULES = (checks_aws, checks_cluster, checks_custody, checks_nodes, checks_running)

SATISFIED, NOT_SATISFIED = "satisfied", "not-satisfied"

# objective id -> (methods, what a person has to do, supporting check ids)
MANUAL = {
    "au-2_obj.a": (["EXAMINE"], "Whether the event types found (CloudTrail selectors, the k3s audit policy, Tetragon "
                   "TracingPolicies; attached) are the types the organization identified (AU-02_ODP[01]) is a document "
                   "review",
                   ["aws.cloudtrail.selected", "nodes.audit-logging", "nodes.running.audit-logging",
                    "cluster.tetragon.policies"]),
    "au-2_obj.b": (["INTERVIEW", "EXAMINE"], "Coordination of event logging with other organizational entities is "
                   "an organizational act no system state shows", []),
    "au-2_obj.d": (["EXAMINE"], "The rationale for the selected event types is a document", []),
    "au-2_obj.e": (["EXAMINE"], "Review and update of the selected event types at the defined frequency "
                   "(AU-02_ODP[04]) is a process; with a previous assessment given, changes of the event-type evidence "
                   "since then are listed (supporting, not proving, the review)",
                   []),
    "sc-13_obj.a": (["EXAMINE", "INTERVIEW"], "Which cryptographic uses exist (SC-13_ODP[01]) is determined by the "
                    "organization; Petra checks the uses it knows (sc-13_obj.b)", []),
    "si-7_obj.a-2": (["EXAMINE"], "Firmware integrity on EC2 is the provider's (Nitro); Petra reads nothing that "
                     "proves it", []),
    "si-7_obj.b-2": (["EXAMINE"], "Actions on firmware changes are the provider's; Petra reads nothing that proves "
                     "them", []),
    "si-7_obj.b-3": (["EXAMINE", "INTERVIEW"], "Changes to information are detected (si-7_obj.a-3: CloudTrail log "
                     "validation, Tetragon file integrity, the trust state's chain), but the actions taken on them "
                     "(SI-07_ODP[06]) are the organization's response process",
                     ["custody.trust-state", "cluster.tetragon.policies"]),
}


class Verdict:
    __slots__ = ("objective", "control", "state", "reason", "outcomes", "manual", "remarks")

    def __init__(self, objective, control, state, reason, outcomes, manual=None, remarks=""):
        self.objective, self.control, self.state, self.reason = objective, control, state, reason
        self.outcomes, self.manual, self.remarks = outcomes, manual, remarks

    def summary(self):
        return {"objective": self.objective["id"], "control": self.control["id"], "state": self.state,
                "reason": self.reason, "checks": [outcome.check.id for outcome in self.outcomes],
                "remarks": self.remarks, "manual": self.manual[0] if self.manual else None}


def checks_for(objective_id):
    return [item for item in REGISTRY.values() if objective_id in item.objectives]


def verdicts(catalog, outcomes):
    """A Verdict for every objective of the catalog, in catalog order; ``outcomes`` maps check id to Outcome."""
    result = []
    for control, objective in catalog.objectives():
        oid = objective["id"]
        if oid in MANUAL:
            methods, why, supporting = MANUAL[oid]
            result.append(Verdict(objective, control, NOT_SATISFIED, "other",
                                  [outcomes[name] for name in supporting if name in outcomes], MANUAL[oid],
                                  "Petra cannot prove this objective (%s): %s." % (" and ".join(methods), why)))
            continue
        mine = [outcomes[item.id] for item in checks_for(oid) if item.id in outcomes]
        if not mine:
            result.append(Verdict(objective, control, NOT_SATISFIED, "other", [],
                                  remarks="No check of Petra covers this objective."))
            continue
        states = {outcome.state for outcome in mine}
        if FAIL in states:
            state, reason = NOT_SATISFIED, "fail"
            remarks = "; ".join(dict.fromkeys(p for o in mine if o.state == FAIL for p in o.problems))
        elif NOT_COLLECTED in states:
            state, reason = NOT_SATISFIED, "other"
            remarks = "Evidence could not be collected: " + "; ".join(dict.fromkeys(
                p for o in mine if o.state == NOT_COLLECTED for p in o.problems))
        else:
            state, reason = SATISFIED, PASS
            remarks = ("Every check passed (SP 800-53A TEST method over the mechanisms named); the EXAMINE and "
                       "INTERVIEW methods remain for the assessor.")
        result.append(Verdict(objective, control, state, reason, mine, remarks=remarks))
    return result
