# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The OSCAL assessment-results document of one run, its schema check, and the link and hash check OSCAL tools do
not make.

One result: the tool (Petra) and the cluster as components, an inventory item per evidence source, an observation per
check (method TEST, relevant evidence ``#<uuid>`` of a back-matter resource whose rlink names the evidence file with
its SHA-256) and per objective a person must complete (EXAMINE/INTERVIEW), and a finding per objective (target type
``objective-id``, NIST's id). UUIDs are derived from the cluster and what they name, so re-runs give the same ones;
only the document's own UUID is per run. compliance-trestle's models (OSCAL 1.2.1, which reads 1.1.x) check the
document's structure; ``verify_links`` checks that every reference resolves and every hash matches.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid

from ansible_collections.petra.core.plugins.module_utils.evidence.errors import EvidenceError

OSCAL_VERSION = "1.1.3"
NAMESPACE = uuid.UUID("7a1f3c2e-5b8d-4e6a-9c0f-2d4b6e8a1c3f")
PETRA_NS = "https://petra.dev/ns/oscal"
IMPORT_AP = "urn:petra:assessment-plan:compliance-assess"
SOURCES = {
    "aws": "AWS resources of the cluster (EC2, IAM, CloudTrail)",
    "nodes": "Node configurations as launched (Ignition) and the k3s binary they pin",
    "nodes-running": "The nodes as running, read with SSM Run Command (AWS-RunShellScript)",
    "cluster": "Kubernetes API of the cluster",
    "custody": "Trust state, custody records and the high-side registry",
}


def stable_uuid(*parts):
    return str(uuid.uuid5(NAMESPACE, "\0".join(str(part) for part in parts)))


def _prop(name, value, **extra):
    return dict({"name": name, "ns": PETRA_NS, "value": str(value)}, **extra)


def _text(lines):
    return "\n".join("- %s" % line for line in lines)


class Builder:
    def __init__(self, catalog, run, store, comparison=None):
        self.catalog, self.run, self.store = catalog, run, store
        self.comparison = comparison
        self.changes = {item["objective"]: item for item in (comparison or {}).get("changes") or []}
        self.cluster = run["cluster"]
        self.tool = stable_uuid(self.cluster, "component", "petra")
        self.system = stable_uuid(self.cluster, "component", "cluster")
        self.resources = {}

    def _resource(self, item):
        if item.key not in self.resources:
            self.resources[item.key] = {
                "uuid": stable_uuid(self.cluster, "evidence", item.key), "title": item.title,
                "rlinks": [{"href": item.path, "media-type": "application/json",
                            "hashes": [{"algorithm": "SHA-256", "value": item.sha256}]}]}
        return self.resources[item.key]["uuid"]

    def _subject(self, source):
        return {"subject-uuid": stable_uuid(self.cluster, "source", source), "type": "inventory-item"}

    def observation(self, outcome):
        check = outcome.check
        evidence = [{"href": "#" + self._resource(item), "description": item.title}
                    for item in outcome.evidence if item.collected]
        lines = {"pass": ["passed"], "fail": outcome.problems, "not-collected": outcome.problems}[outcome.state]
        observation = {
            "uuid": stable_uuid(self.cluster, "check", check.id), "title": check.title,
            "description": "Check %s: %s\n\n%s" % (check.id, outcome.state, _text(lines)),
            "props": [_prop("check-id", check.id), _prop("check-state", outcome.state)],
            "methods": [check.method], "types": ["control-objective"],
            "origins": [{"actors": [{"type": "tool", "actor-uuid": self.tool}]}],
            "subjects": [self._subject(source) for source in sorted({key.split("/", 1)[0] for key in check.needs})],
            "collected": self.run["started"],
        }
        if evidence:
            observation["relevant-evidence"] = evidence
        if outcome.notes:
            observation["remarks"] = _text(outcome.notes)
        return observation

    def manual_observation(self, verdict):
        methods, why, _supporting = verdict.manual
        control = verdict.control["id"]
        objects = ["%s: %s" % (method, text.replace("\n\n", "; ")) for method in methods
                   for text in self.catalog.methods(control, method)]
        return {
            "uuid": stable_uuid(self.cluster, "manual", verdict.objective["id"]),
            "title": "%s: to be completed by the assessor" % verdict.objective["id"],
            "description": "%s. A person completes this objective (%s).\n\n%s" % (why, " and ".join(methods),
                                                                                  _text(objects)),
            "methods": list(methods), "types": ["control-objective"],
            "origins": [{"actors": [{"type": "tool", "actor-uuid": self.tool}]}],
            "subjects": [{"subject-uuid": self.system, "type": "component"}],
            "collected": self.run["started"],
        }

    def finding(self, verdict, observations):
        objective = verdict.objective
        finding = {
            "uuid": stable_uuid(self.cluster, "finding", objective["id"]),
            "title": "%s %s" % (verdict.control["label"], objective.get("label") or objective["id"]),
            "description": objective.get("prose") or verdict.control["title"],
            "origins": [{"actors": [{"type": "tool", "actor-uuid": self.tool}]}],
            "target": {"type": "objective-id", "target-id": objective["id"],
                       "status": {"state": verdict.state, "reason": verdict.reason}},
            "remarks": verdict.remarks,
        }
        change = self.changes.get(objective["id"])
        if change:
            # The change since the previous assessment (its uuid is a prop of the result).
            finding["props"] = [_prop("change-since-previous", change["change"])]
            finding["remarks"] += "\n\nSince the previous assessment: %s, %s -> %s%s" % (
                change["change"], change["before"], change["after"],
                "; evidence changed: " + ", ".join(change["evidence"]) if change["evidence"] else "")
        if observations:
            finding["related-observations"] = [{"observation-uuid": uuid_} for uuid_ in observations]
        return finding

    def document(self, outcomes, verdicts):
        observations = [self.observation(outcome) for outcome in outcomes]
        for item in self.store.files():  # evidence no check reads (the endpoints used) is listed and hashed too
            self._resource(item)
        findings = []
        for verdict in verdicts:
            related = [stable_uuid(self.cluster, "check", outcome.check.id) for outcome in verdict.outcomes]
            if verdict.manual:
                manual = self.manual_observation(verdict)
                observations.append(manual)
                related.insert(0, manual["uuid"])
            findings.append(self.finding(verdict, related))
        run = self.run
        previous = [] if not self.comparison else [
            _prop("previous-assessment", self.comparison["previous"]["uuid"], **{"class": "uuid"}),
            _prop("previous-assessment", self.comparison["previous"]["sha256"], **{"class": "sha256"})]
        result = {
            "uuid": stable_uuid(self.cluster, "result", run["id"]),
            "title": "Petra assessment of cluster %s" % self.cluster,
            "description": "Evidence collected read-only by petra.core.petra_evidence, per NIST SP 800-53A objective.",
            "start": run["started"], "end": run["finished"],
            "props": [_prop(key.partition(".")[0], value, **{"class": key.partition(".")[2]})
                      for key, value in sorted(run["parameters"].items()) if str(value).strip()] + previous,
            "local-definitions": {
                "components": [
                    {"uuid": self.tool, "type": "software", "title": "Petra (petra.core %s)" % run["tool_version"],
                     "description": "The evidence collector of the petra.core Ansible collection.",
                     "status": {"state": "operational"}},
                    {"uuid": self.system, "type": "this-system", "title": "Cluster %s" % self.cluster,
                     "description": "The Petra cluster assessed: its AWS resources, nodes, Kubernetes API and image "
                                    "custody.", "status": {"state": "operational"}}],
                "inventory-items": [{"uuid": stable_uuid(self.cluster, "source", source), "description": text,
                                     "implemented-components": [{"component-uuid": self.system}]}
                                    for source, text in SOURCES.items()],
            },
            "reviewed-controls": {"control-selections": [{"include-controls": [
                {"control-id": control} for control in self.catalog.controls]}]},
            "observations": observations,
            "findings": findings,
        }
        document = {
            "uuid": stable_uuid(self.cluster, "document", run["id"]),
            "metadata": {"title": "Assessment results: cluster %s, run %s" % (self.cluster, run["id"]),
                         "last-modified": run["finished"], "version": run["id"], "oscal-version": OSCAL_VERSION,
                         "props": [_prop("catalog-source", "NIST SP 800-53 Rev 5 / 800-53A Rev 5 via "
                                         "usnistgov/oscal-content %s" % self.catalog.source["primary"]["commit"])]},
            "import-ap": {"href": IMPORT_AP},
            "results": [result],
        }
        if self.resources:  # OSCAL wants at least one resource in a back-matter: none when nothing was collected
            document["back-matter"] = {"resources": sorted(self.resources.values(), key=lambda item: item["title"])}
        return {"assessment-results": document}


def validate(document):
    """Raises EvidenceError when compliance-trestle's OSCAL models refuse the document."""
    try:
        from trestle.oscal.assessment_results import AssessmentResults
    except ImportError:
        raise EvidenceError("the Python library compliance-trestle is required to check the OSCAL document",
                            hint="Install the collection's requirements.txt on the controller", reason="dependency")
    try:
        AssessmentResults.model_validate(document["assessment-results"])
    except Exception as exc:  # pydantic's ValidationError, or trestle's own
        lines = [line for line in str(exc).splitlines() if not line.strip().startswith("For further information")]
        raise EvidenceError("the assessment results are not valid OSCAL: %s" % " ".join(lines[:7]),
                            reason="oscal-invalid")


def verify_links(document, root):
    """Problems with the document's references and evidence files (every one, not just the first)."""
    ar = document["assessment-results"]
    problems = []
    resources = {item["uuid"]: item for item in (ar.get("back-matter") or {}).get("resources") or []}
    for result in ar["results"]:
        local = result.get("local-definitions") or {}
        known = {item["uuid"] for key in ("components", "inventory-items") for item in local.get(key) or []}
        observations = {item["uuid"] for item in result.get("observations") or []}
        for observation in result.get("observations") or []:
            for origin in observation.get("origins") or []:
                problems += ["observation %s: actor %s is undefined" % (observation["uuid"], actor["actor-uuid"])
                             for actor in origin["actors"] if actor["actor-uuid"] not in known]
            problems += ["observation %s: subject %s is undefined" % (observation["uuid"], subject["subject-uuid"])
                         for subject in observation.get("subjects") or [] if subject["subject-uuid"] not in known]
            for evidence in observation.get("relevant-evidence") or []:
                if evidence["href"][1:] not in resources:
                    problems.append("observation %s: evidence %s names no resource" % (
                        observation["uuid"], evidence["href"]))
        for finding in result.get("findings") or []:
            problems += ["finding %s: observation %s does not exist" % (finding["target"]["target-id"],
                                                                        item["observation-uuid"])
                         for item in finding.get("related-observations") or []
                         if item["observation-uuid"] not in observations]
    for resource in resources.values():
        for link in resource.get("rlinks") or []:
            problems += _check_file(root, link)
    return problems


def _check_file(root, link):
    href = link["href"]
    path = os.path.normpath(os.path.join(root, *href.split("/")))
    if os.path.isabs(href) or not path.startswith(os.path.normpath(root) + os.sep):
        return ["evidence link %s leaves the assessment directory" % href]
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        return ["evidence file %s cannot be read: %s" % (href, exc.strerror)]
    wanted = [item["value"] for item in link.get("hashes") or [] if item["algorithm"] == "SHA-256"]
    if wanted != [digest.hexdigest()]:
        return ["evidence file %s hashes to %s, the document says %s" % (href, digest.hexdigest(),
                                                                         ", ".join(wanted) or "nothing")]
    return []


def encode(document):
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
