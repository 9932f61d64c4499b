"""The two-person rule as operators run it: petra_bundle state=signed and petra_verify with a threshold and a trust
state, through ansible-playbook and the action plugins."""

import json

import yaml

from ansible_collections.petra.core.tests.integration.test_playbooks import run_playbook
from ansible_collections.petra.core.tests.support import pki

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: build
      petra.core.petra_bundle:
        definition:
          apiVersion: petra.dev/v1alpha1
          kind: Bundle
          metadata: {{name: approved, version: 1.0.0, created: "2026-01-01T00:00:00Z"}}
          files:
            - name: k3s
              path: {k3s}
        dest: {dest}
        signing_key: {a}
    - name: cosign
      petra.core.petra_bundle:
        state: signed
        src: {dest}
        public_key: {a_pub}
        signing_key: {b}
    - name: cosign again
      petra.core.petra_bundle:
        state: signed
        src: {dest}
        public_keys: [{a_pub}]
        signing_key: {b}
    - name: two of three
      petra.core.petra_verify:
        path: {dest}
        public_key: [{a_pub}, {b_pub}, {c_pub}]
        threshold: 2
        trust_state: {state}
    - name: three of three
      petra.core.petra_verify:
        path: {dest}
        public_keys: [{a_pub}, {b_pub}, {c_pub}]
        threshold: 3
      ignore_errors: true
"""


def key_files(tmp_path, names):
    """{name: private key path, name_pub: public key path} of a fresh P-256 key per name."""
    keys = {}
    for name in names:
        private = tmp_path / ("%s.pem" % name)
        keys[name + "_pub"] = pki.write_ec_key(str(private))
        keys[name] = str(private)
    return keys


def build_and_cosign(tmp_path, sources):
    """(keys, bundle path, report of PLAY): keys a, b, c; the bundle signed by a and co-signed by b."""
    keys = key_files(tmp_path, "abc")
    dest = tmp_path / "approved-1.0.0.tar.zst"
    play = PLAY.format(k3s=sources / "bin" / "k3s", dest=dest, state=tmp_path / "trust.json", **keys)
    return keys, dest, run_playbook(tmp_path, play)


def test_cosign_and_threshold_through_ansible(tmp_path, sources):
    _keys, _dest, report = build_and_cosign(tmp_path, sources)
    cosign, again = report["cosign"], report["cosign again"]
    assert cosign["changed"] is True and cosign["sha256"] == report["build"]["sha256"]
    assert again["changed"] is False and again["already_signed"] == "cosignature"
    verified = report["two of three"]
    assert verified["changed"] is False and verified["signers"] == [report["build"]["key_id"], cosign["key_id"]]
    assert len(verified["unsigned_keys"]) == 1 and verified["threshold"] == 2
    assert verified["trust_state"]["decision"]["action"] == "new" and not (tmp_path / "trust.json").exists()
    assert verified["custody"]["bundle"]["signers"] == verified["signers"]
    refused = report["three of three"]
    assert refused["failed"] is True and refused["reason"] == "threshold"
    assert refused["signers"] == verified["signers"] and refused["unsigned_keys"] == verified["unsigned_keys"]
    assert "2 of the 3" in refused["msg"]
    assert json.loads((tmp_path / "approved-1.0.0.tar.zst.sigs.json").read_text())["signatures"][0]["keyId"] == \
        cosign["key_id"]


def test_verify_playbook_checks_its_variables(tmp_path, sources):
    """petra.core.bundle_verify as operators run it: -e strings for the threshold and trust_state_required, the
    role's argument spec refusing a missing key, a missing trust state refused when it is required."""
    keys, dest, _report = build_and_cosign(tmp_path, sources)
    playbook = "- ansible.builtin.import_playbook: petra.core.bundle_verify\n"
    state = tmp_path / "missing" / "trust-state.json"
    keys_given = json.dumps({"bundle_verify_public_key": [keys["a_pub"], keys["b_pub"]]})

    def role_results(*args, **kwargs):
        # Role tasks are recorded as "<role> : <task name>".
        report = run_playbook(tmp_path, playbook, *args, **kwargs)
        return {name.split(" : ")[-1]: result for name, result in report.items()}

    report = role_results("-e", "bundle_verify_path=%s" % dest, "-e", keys_given, "-e", "bundle_verify_threshold=2",
                          "-e", "bundle_verify_trust_state=%s" % state)
    verified = report["Verify the bundle"]
    assert verified["verified"] is True and verified["changed"] is False and verified["threshold"] == 2
    assert len(verified["signers"]) == 2 and verified["trust_state"]["decision"]["action"] == "new"
    assert "verified with key" in report["Report what the bundle carries"]["msg"]

    report = role_results("-e", "bundle_verify_path=%s" % dest, "-e", keys_given,
                          "-e", "bundle_verify_trust_state=%s" % state, "-e", "bundle_verify_trust_state_required=true",
                          expect_rc=2)
    refused = report["Verify the bundle"]
    assert refused["failed"] is True and "trust_state_required is set" in refused["msg"]
    assert not state.parent.exists()

    report = role_results("-e", "bundle_verify_path=%s" % dest, expect_rc=2)
    (checked,) = [result for name, result in report.items() if name.startswith("Validating arguments")]
    assert checked["failed"] is True
    assert "missing required arguments: bundle_verify_public_key" in checked["msg"]
    assert "Verify the bundle" not in report


def reproduced_play(k3s, dest, a, a_pub, b, b_pub):
    """Build with key a; key b rebuilds from the same definition (in check mode, then for real); verify 2 of 2."""
    definition = {"apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
                  "metadata": {"name": "approved", "version": "1.0.0", "created": "2026-01-01T00:00:00Z"},
                  "files": [{"name": "k3s", "path": str(k3s)}]}
    rebuild = {"state": "signed", "rebuild": True, "definition": "{{ definition }}", "src": str(dest),
               "public_key": a_pub, "signing_key": b}
    tasks = [{"name": "build", "petra.core.petra_bundle": {"definition": "{{ definition }}", "dest": str(dest),
                                                           "signing_key": a}},
             {"name": "rebuild and compare", "petra.core.petra_bundle": rebuild, "check_mode": True},
             {"name": "rebuild and co-sign", "petra.core.petra_bundle": rebuild},
             {"name": "two of two", "petra.core.petra_verify": {"path": str(dest), "public_key": [a_pub, b_pub],
                                                                "threshold": 2}}]
    return yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "vars": {"definition": definition},
                            "tasks": tasks}], sort_keys=False)


def test_reproduced_cosignature_through_ansible(tmp_path, sources):
    """The co-signer rebuilds the bundle from the same definition in a play: check mode compares and writes nothing,
    the real run co-signs with the reproduction recorded, and petra_verify reports it for that signer."""
    keys = key_files(tmp_path, "ab")
    dest = tmp_path / "approved-1.0.0.tar.zst"
    report = run_playbook(tmp_path, reproduced_play(sources / "bin" / "k3s", dest, **keys))
    checked, cosigned = report["rebuild and compare"], report["rebuild and co-sign"]
    assert checked["changed"] is True and checked["reproduced"] is True and "signed_at" not in checked
    assert checked["reproduction"]["sha256"] == report["build"]["sha256"]
    assert cosigned["changed"] is True and cosigned["reproduced"] is True
    verified = report["two of two"]
    assert [(item["key_id"], item["reproduced"]) for item in verified["signer_details"]] == [
        (report["build"]["key_id"], False), (cosigned["key_id"], True)]
