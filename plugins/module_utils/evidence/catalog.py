# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The six NIST SP 800-53 Rev 5 controls Petra assesses: statements, parameters, assessment objectives and methods.

``data/nist-800-53-petra.json`` is a subset of NIST's OSCAL catalogs (public domain; its ``source`` block names the
commits, paths and SHA-256 of the files it was taken from). Ids and prose are NIST's, unmodified; only SR-4's objective
ids are Petra's, because the draft SP 800-53A catalog it comes from gives them labels but no ids.
"""

from __future__ import annotations

import json
import os

from ansible_collections.petra.core.plugins.module_utils.evidence.errors import EvidenceError

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "nist-800-53-petra.json")
CONTROL_IDS = ("ac-6", "au-2", "cm-7", "sc-13", "si-7", "sr-4")


def load(path=DATA):
    try:
        with open(path, "r", encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, ValueError) as exc:
        raise EvidenceError("cannot read the control catalog %s: %s" % (path, exc),
                            hint="It ships in the collection's plugins/module_utils/evidence/data; reinstall petra.core",
                            reason="catalog")
    return Catalog(document)


class Catalog:
    def __init__(self, document):
        self.source = document["source"]
        self.controls = {control["id"]: control for control in document["controls"]}

    def objectives(self):
        """(control, objective) for every leaf objective, in catalog order."""
        return [(control, objective) for control in self.controls.values() for objective in control["objectives"]]

    def objective_ids(self):
        return [objective["id"] for _control, objective in self.objectives()]

    def methods(self, control_id, method):
        """The 800-53A assessment objects of one method (EXAMINE, INTERVIEW, TEST) of a control."""
        return [item["objects"] for item in self.controls[control_id]["methods"] if item["method"] == method]
