"""The control catalog petra_evidence ships, the objective map over it, and redaction of node configs."""

import json
import os

from ansible_collections.petra.core.plugins.module_utils.evidence import catalog, objectives
from ansible_collections.petra.core.plugins.module_utils.evidence.checks import REGISTRY
from ansible_collections.petra.core.plugins.module_utils.evidence.collect_nodes import facts, redact_ignition
from ansible_collections.petra.core.plugins.module_utils.evidence.store import REDACTED, redact_text
from ansible_collections.petra.core.plugins.module_utils.flatcar import ignition
from ansible_collections.petra.core.tests.conftest import TEST_DATA


def leaf_objectives(parts):
    found = []
    for part in parts:
        if part["name"] not in ("assessment-objective", "objective"):
            continue
        children = [p for p in part.get("parts") or [] if p["name"] in ("assessment-objective", "objective")]
        found += leaf_objectives(children) if children else [(part.get("id"), part.get("prose", ""))]
    return found


def test_shipped_catalog_is_nists_text():
    """Ids and prose of every objective are those of the NIST catalogs (the copy in tests/data names its source)."""
    with open(os.path.join(TEST_DATA, "nist-800-53-petra-controls.json")) as handle:
        upstream = {control["id"]: control for control in json.load(handle)["controls"]}
    shipped = catalog.load()
    assert list(shipped.controls) == list(catalog.CONTROL_IDS)
    for control_id, control in shipped.controls.items():
        source = upstream[control_id]
        assert control["title"] == source["title"]
        parts = source["draft_800-53A"]["parts"] if "draft_800-53A" in source else source["parts"]
        expected = leaf_objectives(parts)
        assert [o["prose"] for o in control["objectives"]] == [prose for _id, prose in expected]
        if control_id != "sr-4":  # SR-4's draft objectives have labels only; Petra numbers them (see the note)
            assert [o["id"] for o in control["objectives"]] == [oid for oid, _prose in expected]
        else:
            assert [o["label"] for o in control["objectives"]] == ["SR-04[01]", "SR-04[02]", "SR-04[03]"]
            assert "not verified" in control["note"]
    assert shipped.source["primary"]["commit"] == "88bb8deeaa815f8914d68ea7e31a622ebbc1719d"


def test_every_objective_is_checked_or_left_to_a_person():
    ids = set(catalog.load().objective_ids())
    checked = {oid for check in REGISTRY.values() for oid in check.objectives}
    assert checked <= ids, checked - ids
    assert set(objectives.MANUAL) <= ids
    assert not checked & set(objectives.MANUAL), "an objective is both tested and left to a person"
    assert ids == checked | set(objectives.MANUAL)
    supporting = {name for _methods, _why, names in objectives.MANUAL.values() for name in names}
    assert supporting <= set(REGISTRY)


def test_secrets_are_redacted_from_node_configs():
    document = ignition.render("server", "Token-Value-123", {"url": "s3://b/k3s", "sha256": "a" * 64},
                               cluster_init=True, k3s_config_extra={"agent-token": "Agent-Token-456"})
    redacted = redact_ignition(document)
    text = json.dumps(facts(redacted)) + json.dumps(facts(document)) + json.dumps(redacted)
    assert "Token-Value-123" not in text and "Agent-Token-456" not in text
    assert facts(redacted)["k3s_environment"] == ["GODEBUG=fips140=on", "K3S_TOKEN=" + REDACTED]
    assert "agent-token: " + REDACTED in facts(document)["k3s_config"]
    # Files without secrets keep their hash; the rest of the config is untouched.
    assert redacted["systemd"] == document["systemd"]
    assert redact_text("password: x\nname: y\n") == ("password: %s\nname: y\n" % REDACTED, True)
