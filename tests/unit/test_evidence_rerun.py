"""petra_evidence runs that need no server (source custody without a trust state): re-runs against ``latest``, the
size limit of a previous document, and which sources are read by default."""

import os

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.petra.core.plugins.module_utils.adapters import evidence
from ansible_collections.petra.core.plugins.module_utils.evidence import compare
from ansible_collections.petra.core.plugins.module_utils.evidence.errors import EvidenceError
from ansible_collections.petra.core.plugins.modules import petra_evidence
from ansible_collections.petra.core.tests.support import pki

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def assess(tmp_path, **extra):
    """Source custody with an empty directory of transfer records: one evidence file, no server."""
    key = str(tmp_path / "assessment.pem")
    if not os.path.exists(key):
        pki.write_ec_key(key)
        (tmp_path / "transfers").mkdir()
    params = dict(cluster_name="rerun", dest=str(tmp_path / "runs"), signing_key=key, sources=["custody"],
                  transfer_records=str(tmp_path / "transfers"), transfer_public_key=[str(tmp_path / "assessment.pub")])
    params.update(extra)
    result = ArgumentSpecValidator(evidence.ARGUMENT_SPEC).validate(params)
    assert not result.error_messages, result.error_messages
    return evidence.run(result.validated_parameters)


def test_a_rerun_against_latest_with_nothing_changed_writes_nothing(tmp_path):
    first = assess(tmp_path)
    latest = str(tmp_path / "runs" / "latest")
    again = assess(tmp_path, previous=latest)
    assert again["changed"] is False and again["path"] == first["path"]
    assert again["comparison"]["changes"] == [] and again["findings_sha256"] == first["findings_sha256"]
    assert assess(tmp_path, previous=latest)["changed"] is False
    assert sorted(os.listdir(tmp_path / "runs")) == [first["run_id"], "latest"]


def test_a_run_that_collected_nothing_is_valid_oscal(tmp_path):
    """No evidence file at all (every source unreadable): the results have no back-matter rather than an empty one,
    which OSCAL refuses."""
    result = assess(tmp_path, transfer_records=None, transfer_public_key=None)
    assert result["changed"] is True and {item["state"] for item in result["checks"]} == {"not-collected"}


def test_a_previous_document_too_large_is_said_to_be(tmp_path, monkeypatch):
    first = assess(tmp_path)
    monkeypatch.setattr(compare, "MAX_DOCUMENT", os.path.getsize(first["assessment_results"]) - 1)
    with pytest.raises(EvidenceError, match="assessment-results.json is too large") as caught:
        assess(tmp_path, previous=first["path"])
    assert "edited" not in str(caught.value)


def test_nodes_running_is_opt_in():
    """The root shell on every node runs only when asked for: not a default source of the module or the role."""
    default = evidence.ARGUMENT_SPEC["sources"]["default"]
    assert default == ["aws", "nodes", "cluster", "custody"]
    documented = yaml.safe_load(petra_evidence.DOCUMENTATION)["options"]["sources"]
    assert documented["default"] == default and "nodes-running" in documented["choices"]
    with open(os.path.join(ROOT, "roles", "compliance", "defaults", "main.yml")) as handle:
        defaults = yaml.safe_load(handle)
    with open(os.path.join(ROOT, "roles", "compliance", "meta", "argument_specs.yml")) as handle:
        options = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
    assert defaults["compliance_sources"] == options["compliance_sources"]["default"] == default
    assert defaults["compliance_nodes_running"] is False and options["compliance_nodes_running"]["default"] is False
