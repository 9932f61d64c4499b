# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""One assessment run: collect, check, judge each objective, and write the signed results.

A run is built in a hidden staging directory inside ``dest`` and renamed to ``dest/<run id>`` only when complete,
then ``dest/latest`` is switched to it (a symlink replaced atomically): a failure leaves the previous run as it was.
When the findings are the same as those of ``latest`` (only times and volatile API fields differ), nothing is
written and ``changed`` is false. The assessment results and the evidence manifest are signed with the Petra key in
the cosign ``sign-blob`` format (base64 DER ECDSA over the file's SHA-256, or SHA-384 for a P-384 key).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import tempfile

from ansible_collections.petra.core.plugins.module_utils.atomic import write_atomically
from ansible_collections.petra.core.plugins.module_utils.errors import PetraError
from ansible_collections.petra.core.plugins.module_utils.evidence import catalog as catalog_module
from ansible_collections.petra.core.plugins.module_utils.evidence import compare, objectives, report, results
from ansible_collections.petra.core.plugins.module_utils.evidence.checks import REGISTRY
from ansible_collections.petra.core.plugins.module_utils.evidence.errors import EvidenceError
from ansible_collections.petra.core.plugins.module_utils.evidence.store import EvidenceStore, canonical_bytes
from ansible_collections.petra.core.plugins.module_utils.signing.keys import key_id
from ansible_collections.petra.core.plugins.module_utils.signing.signatures import encode_signature

AR_FILE = "assessment-results.json"
MANIFEST_FILE = "evidence-manifest.json"
REPORT_FILE = "report.html"
LATEST = "latest"
TOOL_VERSION = "0.1.0"
SOURCES = ("aws", "nodes", "nodes-running", "cluster", "custody")
# Read when no sources are given. nodes-running is opt-in: it runs a (read-only) script as root on every node through
# SSM Run Command, a permission an assessment should not need unless the organization chooses it.
DEFAULT_SOURCES = tuple(source for source in SOURCES if source != "nodes-running")


def utc(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def fingerprint(verdicts, outcomes, comparison=None):
    """SHA-256 over what the run found (objective states, reasons, every check's problems, and with a previous
    assessment the status changes since): not over times, nor over which earlier document was compared with."""
    content = {"verdicts": [(v.objective["id"], v.state, v.reason) for v in verdicts],
               "checks": sorted((o.check.id, o.state, sorted(o.problems)) for o in outcomes)}
    changes = compare.digest_of(comparison)
    if changes:  # none: the same digest as a run without a comparison, so a re-run against latest writes nothing
        content["previous"] = changes
    return hashlib.sha256(canonical_bytes(content)).hexdigest()


def sign_file(signer, path):
    with open(path, "rb") as handle:
        data = handle.read()
    signature = encode_signature(signer.sign_digest(hashlib.new(signer.hash_name, data).digest()))
    write_atomically(path + ".sig", lambda handle: handle.write(signature))
    return hashlib.sha256(data).hexdigest()


def previous_fingerprint(dest):
    try:
        with open(os.path.join(dest, LATEST, MANIFEST_FILE), "rb") as handle:
            return json.load(handle).get("findingsSha256")
    except (OSError, ValueError, AttributeError):
        return None


class Assessment:
    """``collectors`` maps a source name to a callable(store) that collects it, or to the reason it cannot;
    ``previous`` is what ``compare.load`` returned for an earlier assessment to compare with."""

    def __init__(self, cluster, dest, collectors, params, signer, parameters=None, now=None, previous=None):
        self.cluster, self.dest, self.collectors, self.params = cluster, dest, collectors, params
        self.previous = previous
        self.signer, self.parameters = signer, dict(parameters or {})
        self.now = now or (lambda: datetime.datetime.now(datetime.timezone.utc))
        self.catalog = catalog_module.load()

    def run(self, check_mode=False):
        started = self.now()
        try:
            os.makedirs(self.dest, exist_ok=True)
            staging = tempfile.mkdtemp(dir=self.dest, prefix=".run-")
        except OSError as exc:
            raise EvidenceError("cannot create the assessment directory %s: %s" % (self.dest, exc.strerror),
                                hint="Give dest, a directory on the controller the task may write", reason="dest")
        try:
            return self._run(staging, started, check_mode)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _run(self, staging, started, check_mode):
        store = EvidenceStore(staging)
        for source in SOURCES:
            collect = self.collectors.get(source)
            if callable(collect):
                try:
                    collect(store)
                except PetraError as exc:  # a client that cannot even be made (kubeconfig, boto3): a missing source
                    store.missing(source + "/", source, str(exc))
            else:
                store.missing(source + "/", source, collect or "the source %s was not selected" % source)
        for source in SOURCES:  # every key a check needs but no collector wrote: say why
            reason = store.items.get(source + "/")
            for item in REGISTRY.values():
                for key in item.needs:
                    if key.startswith(source + "/") and key not in store.items and reason is not None:
                        store.missing(key, key, reason.error)
        outcomes = [REGISTRY[name].run(store, self.params) for name in sorted(REGISTRY)]
        verdicts = objectives.verdicts(self.catalog, {outcome.check.id: outcome for outcome in outcomes})
        comparison = None
        if self.previous:
            comparison = {"previous": self.previous[0], "changes": compare.changes(self.previous[1], verdicts)}
        digest = fingerprint(verdicts, outcomes, comparison)
        result = {"cluster": self.cluster, "findings_sha256": digest,
                  "summary": self._summary(verdicts), "findings": [v.summary() for v in verdicts],
                  "checks": [o.summary() for o in outcomes]}
        if comparison:
            result["comparison"] = comparison
        latest = os.path.join(self.dest, LATEST)
        if previous_fingerprint(self.dest) == digest:
            result.update(changed=False, path=os.path.realpath(latest))
            return self._paths(result)
        if check_mode:
            result.update(changed=True, path=None)
            return result
        run_id = started.strftime("%Y%m%dT%H%M%SZ")
        run = {"id": run_id, "cluster": self.cluster, "started": utc(started), "finished": utc(self.now()),
               "tool_version": TOOL_VERSION, "parameters": self.parameters}
        self._write(staging, store, run, outcomes, verdicts, digest, comparison)
        final = os.path.join(self.dest, run_id)
        if os.path.exists(final):
            raise EvidenceError("%s already exists: two runs started in the same second" % final,
                                hint="Run again", reason="dest")
        os.rename(staging, final)
        link = os.path.join(self.dest, ".latest.tmp")
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(run_id, link)
        os.replace(link, latest)
        result.update(changed=True, path=final, run_id=run_id)
        return self._paths(result)

    @staticmethod
    def _paths(result):
        if result.get("path"):
            for name, file_name in (("assessment_results", AR_FILE), ("manifest", MANIFEST_FILE),
                                    ("report", REPORT_FILE)):
                result[name] = os.path.join(result["path"], file_name)
        return result

    @staticmethod
    def _summary(verdicts):
        summary = {}
        for verdict in verdicts:
            entry = summary.setdefault(verdict.control["id"], {"satisfied": 0, "not_satisfied": 0, "manual": 0})
            if verdict.manual:
                entry["manual"] += 1
            elif verdict.state == objectives.SATISFIED:
                entry["satisfied"] += 1
            else:
                entry["not_satisfied"] += 1
        return summary

    def _write(self, staging, store, run, outcomes, verdicts, digest, comparison=None):
        document = results.Builder(self.catalog, run, store, comparison).document(outcomes, verdicts)
        results.validate(document)
        problems = results.verify_links(document, staging)
        if problems:
            raise EvidenceError("the assessment results do not hold together: %s" % "; ".join(problems[:5]),
                                reason="internal")
        ar_path = os.path.join(staging, AR_FILE)
        write_atomically(ar_path, lambda handle: handle.write(results.encode(document)))
        ar_sha256 = sign_file(self.signer, ar_path)
        seal = {"sha256": ar_sha256, "key_id": key_id(self.signer.public_key()), "hash_name": self.signer.hash_name}
        html = report.render(self.catalog, run, verdicts, outcomes, seal, comparison).encode("utf-8")
        write_atomically(os.path.join(staging, REPORT_FILE), lambda handle: handle.write(html))
        manifest = {
            "apiVersion": "petra.dev/v1alpha1", "kind": "EvidenceManifest", "cluster": self.cluster, "run": run["id"],
            "signer": seal["key_id"], "findingsSha256": digest,
            "assessmentResults": {"path": AR_FILE, "sha256": ar_sha256},
            "report": {"path": REPORT_FILE, "sha256": hashlib.sha256(html).hexdigest()},
            "evidence": [{"path": item.path, "sha256": item.sha256, "size": item.size} for item in store.files()],
            "notCollected": sorted(({"key": item.key, "error": item.error} for item in store.items.values()
                                    if not item.collected and not item.key.endswith("/")), key=lambda x: x["key"]),
        }
        if comparison:
            manifest["previous"] = comparison["previous"]
        manifest_path = os.path.join(staging, MANIFEST_FILE)
        write_atomically(manifest_path, lambda handle: handle.write(canonical_bytes(manifest)))
        sign_file(self.signer, manifest_path)
