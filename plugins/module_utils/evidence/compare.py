# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Comparison with a previous assessment: what changed per objective since an earlier run's results.

The earlier document is read only after its signature verifies (the ``.sig`` beside it, cosign ``sign-blob``
format) with the Petra key: a comparison with an edited document would report changes that never happened. Per
objective it says whether the objective is newly failing (was satisfied), newly satisfied, changed its status
otherwise (``fail`` became ``other``: evidence no longer collected), or kept its status while the evidence behind it
changed (a file with another SHA-256, or a check that went from one state to another).
"""

from __future__ import annotations

import hashlib
import json
import os

from ansible_collections.petra.core.plugins.module_utils.errors import PetraError
from ansible_collections.petra.core.plugins.module_utils.evidence.errors import EvidenceError
from ansible_collections.petra.core.plugins.module_utils.signing.keys import hash_name_for, key_id, verify_digest
from ansible_collections.petra.core.plugins.module_utils.signing.signatures import decode_signature

AR_FILE = "assessment-results.json"
MAX_DOCUMENT = 64 << 20
NEWLY_FAILING, NEWLY_SATISFIED = "newly-failing", "newly-satisfied"
STATUS_CHANGED, EVIDENCE_CHANGED = "status-changed", "evidence-changed"


def _read(path, what):
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_DOCUMENT + 1)
    except OSError as exc:
        raise EvidenceError("cannot read the %s of the previous assessment %s: %s" % (what, path, exc.strerror),
                            hint="Give previous: an earlier run's directory or its assessment-results.json, with "
                                 "its .sig beside it", reason="previous")
    if len(data) > MAX_DOCUMENT:  # said as such: a cut document would only fail its signature, a wrong reason
        raise EvidenceError("the %s of the previous assessment %s is too large: more than %d MiB" % (
            what, path, MAX_DOCUMENT >> 20), hint="Give the assessment-results.json of an earlier Petra run",
            reason="previous")
    return data


def load(path, public_key):
    """The previous assessment results and what identifies them; refuses a document whose signature does not verify."""
    if os.path.isdir(path):
        path = os.path.join(path, AR_FILE)
    data, signature = _read(path, "results"), _read(path + ".sig", "signature")
    try:
        der = decode_signature(signature, path + ".sig")
        verified = verify_digest(public_key, hashlib.new(hash_name_for(public_key), data).digest(), der)
    except PetraError as exc:
        raise EvidenceError("the signature of the previous assessment %s is unusable: %s" % (path, exc),
                            reason="previous-signature")
    if not verified:
        raise EvidenceError("the previous assessment %s does not verify with the key %s: it was edited after it was "
                            "signed, or another key signed it; no comparison was made" % (path, key_id(public_key)),
                            hint="Give the untouched results of an earlier run, or previous_public_key when another "
                                 "key signed them", reason="previous-signature")
    try:
        document = json.loads(data.decode("utf-8"))["assessment-results"]
        view = _view(document)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise EvidenceError("the previous assessment %s is signed but is not Petra's assessment results (%s)" % (
            path, exc), reason="previous")
    info = {"path": path, "sha256": hashlib.sha256(data).hexdigest(), "uuid": document["uuid"],
            "run": document["metadata"].get("version"), "signer": key_id(public_key)}
    return info, view


def _view(document):
    """objective id -> {state, reason, checks: {check id: state}, evidence: {path: sha256}}."""
    resources = {item["uuid"]: {link["href"]: next((h["value"] for h in link.get("hashes") or []
                                                    if h["algorithm"] == "SHA-256"), None)
                                for link in item.get("rlinks") or []}
                 for item in (document.get("back-matter") or {}).get("resources") or []}
    result = document["results"][0]
    observations = {}
    for item in result.get("observations") or []:
        props = {prop["name"]: prop["value"] for prop in item.get("props") or []}
        evidence = {}
        for link in item.get("relevant-evidence") or []:
            evidence.update(resources.get(link["href"].lstrip("#"), {}))
        observations[item["uuid"]] = (props.get("check-id"), props.get("check-state"), evidence)
    view = {}
    for finding in result.get("findings") or []:
        checks, evidence = {}, {}
        for related in finding.get("related-observations") or []:
            check, state, files = observations.get(related["observation-uuid"], (None, None, {}))
            if check:
                checks[check] = state
            evidence.update(files)
        status = finding["target"]["status"]
        view[finding["target"]["target-id"]] = {"state": status["state"], "reason": status.get("reason"),
                                                "checks": checks, "evidence": evidence}
    return view


def _current(verdict):
    return {"state": verdict.state, "reason": verdict.reason,
            "checks": {outcome.check.id: outcome.state for outcome in verdict.outcomes},
            "evidence": {item.path: item.sha256 for outcome in verdict.outcomes for item in outcome.evidence
                         if item.collected}}


def changes(view, verdicts):
    """The objectives that changed since ``view`` (see ``load``), in catalog order."""
    found = []
    for verdict in verdicts:
        oid, now = verdict.objective["id"], _current(verdict)
        before = view.get(oid)
        if before is None:
            found.append({"objective": oid, "control": verdict.control["id"], "change": STATUS_CHANGED,
                          "before": None, "after": "%s (%s)" % (now["state"], now["reason"]),
                          "evidence": [], "checks": []})
            continue
        was, is_ = "%s (%s)" % (before["state"], before["reason"]), "%s (%s)" % (now["state"], now["reason"])
        evidence = sorted(path for path in set(before["evidence"]) | set(now["evidence"])
                          if before["evidence"].get(path) != now["evidence"].get(path))
        checks = ["%s: %s -> %s" % (name, before["checks"].get(name, "absent"), now["checks"].get(name, "absent"))
                  for name in sorted(set(before["checks"]) | set(now["checks"]))
                  if before["checks"].get(name) != now["checks"].get(name)]
        if before["state"] == "satisfied" and now["state"] != "satisfied":
            change = NEWLY_FAILING
        elif before["state"] != "satisfied" and now["state"] == "satisfied":
            change = NEWLY_SATISFIED
        elif was != is_:
            change = STATUS_CHANGED
        elif evidence or checks:
            change = EVIDENCE_CHANGED
        else:
            continue
        found.append({"objective": oid, "control": verdict.control["id"], "change": change, "before": was,
                      "after": is_, "evidence": evidence, "checks": checks})
    return found


def digest_of(comparison):
    """What of a comparison enters the findings' digest: the status changes only. Not the evidence changes (API
    answers carry times, so those differ between any two runs), and not which document was compared with: with
    ``previous`` pointing at ``latest`` that changes at every run, and an unchanged re-run must write nothing."""
    if not comparison:
        return []
    return sorted((item["objective"], item["change"]) for item in comparison["changes"]
                  if item["change"] != EVIDENCE_CHANGED)
