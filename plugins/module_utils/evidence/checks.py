# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Checks: each reads named evidence and the assessment's parameters and returns the problems it found.

A check is registered with the assessment objectives it gives evidence for (NIST's ids). Its outcome is ``pass``
(no problem), ``fail`` (each problem says what and where), or ``not-collected`` when evidence it needs could not be
read: then the check does not run, and the reason is the collection error. Nothing is skipped silently.

Evidence gathered per node can be partly missing (one instance did not answer): the check then returns a third
list, what it could not see. A problem found elsewhere still fails the check (the missing parts are listed too);
with no problem, the check is ``not-collected``, never a pass.
"""

from __future__ import annotations

PASS, FAIL, NOT_COLLECTED = "pass", "fail", "not-collected"
REGISTRY = {}


class Check:
    __slots__ = ("id", "title", "objectives", "needs", "function", "method")

    def __init__(self, check_id, title, objectives, needs, function, method="TEST"):
        self.id, self.title, self.objectives, self.needs = check_id, title, tuple(objectives), tuple(needs)
        self.function, self.method = function, method

    def run(self, store, params):
        evidence = [store.get(key) for key in self.needs]
        missing = [item for item in evidence if not item.collected]
        if missing:
            return Outcome(self, NOT_COLLECTED, ["%s could not be collected: %s" % (item.title, item.error)
                                                 for item in missing], evidence)
        answer = self.function(*[item.data for item in evidence], params)
        problems, notes, unseen = (tuple(answer) + ([], []))[:3] if isinstance(answer, tuple) else (answer, [], [])
        if problems:
            return Outcome(self, FAIL, list(problems) + list(unseen), evidence, list(notes))
        return Outcome(self, NOT_COLLECTED if unseen else PASS, list(unseen), evidence, list(notes))


class Outcome:
    __slots__ = ("check", "state", "problems", "evidence", "notes")

    def __init__(self, check, state, problems, evidence, notes=()):
        self.check, self.state, self.problems = check, state, problems
        self.evidence, self.notes = evidence, list(notes)

    def summary(self):
        return {"check": self.check.id, "title": self.check.title, "state": self.state,
                "objectives": list(self.check.objectives), "problems": self.problems, "notes": self.notes,
                "evidence": [item.path for item in self.evidence if item.collected]}


def check(check_id, title, objectives, needs):
    """Register ``function(*evidence data, params)`` returning problems, (problems, notes), or (problems, notes,
    what could not be seen)."""
    def register(function):
        if check_id in REGISTRY:
            raise ValueError("check %s registered twice" % check_id)
        REGISTRY[check_id] = Check(check_id, title, objectives, needs, function)
        return function
    return register


def tags_of(item):
    return {tag["Key"]: tag["Value"] for tag in item.get("Tags") or []}
