"""The node script of collect_running, run for real by /bin/sh on this machine, and what the collector reads from
its answer; and the check semantics when some nodes could not be asked."""

import hashlib
import subprocess

import pytest

from ansible_collections.petra.core.plugins.module_utils.evidence import checks_running, collect_running
from ansible_collections.petra.core.plugins.module_utils.evidence.checks import FAIL, NOT_COLLECTED, PASS, REGISTRY
from ansible_collections.petra.core.plugins.module_utils.evidence.store import EvidenceStore


def test_the_script_runs_and_its_answer_parses(tmp_path):
    k3s = tmp_path / "k3s"
    k3s.write_bytes(b"not really k3s")
    answer = subprocess.run(["/bin/sh", "-c", collect_running.script([str(k3s), str(tmp_path / "absent.raw")])],
                            capture_output=True, text=True, timeout=60, check=True)
    facts = collect_running.parse(answer.stdout)
    assert facts["format"] == collect_running.FORMAT
    assert facts["file." + str(k3s)] == hashlib.sha256(b"not really k3s").hexdigest()
    assert "file." + str(tmp_path / "absent.raw") not in facts
    assert "unit.sshd.service" in facts  # empty where systemd is not the init: a check says it could not be read


def test_parse_refuses_foreign_or_cut_answers_and_masks_secrets():
    with pytest.raises(ValueError, match="not the Petra node script"):
        collect_running.parse("hello\n")
    with pytest.raises(ValueError, match="incomplete"):
        collect_running.parse("format=%s\nk3s.arg=server\n" % collect_running.FORMAT)
    facts = collect_running.parse("format=%s\nk3s.arg=--token=s3cret\nk3s.arg=--token-file=/var/t\n"
                                  "k3s.apiserver=msg=\"Running kube-apiserver --etcd-password=pw --audit-log-path=/a\"\n"
                                  "end=ok\n" % collect_running.FORMAT)
    assert facts["k3s.arg"] == ["--token=<redacted by petra>", "--token-file=/var/t"]
    assert "pw" not in facts["k3s.apiserver"] and "--audit-log-path=/a" in facts["k3s.apiserver"]


def _run(check_id, tmp_path, nodes, ignition=None):
    store = EvidenceStore(str(tmp_path))
    store.save(checks_running.RUNNING, "running", {"nodes": nodes})
    store.save("nodes/ignition.json", "ignition", ignition or {"nodes": []})
    return REGISTRY[check_id].run(store, {})


def test_partly_collected_is_not_collected_and_a_failure_still_fails(tmp_path):
    facts = {"unit.sshd.service": "inactive", "unit.sshd.socket": "inactive", "listen22": "0"}
    good = {"InstanceId": "i-1", "role": "agent", "facts": facts}
    bad = {"InstanceId": "i-2", "role": "agent", "facts": dict(good["facts"], listen22="1")}
    away = {"InstanceId": "i-3", "role": "agent", "notCollected": "instance i-3 is not managed by SSM"}
    assert _run("nodes.running.no-sshd", tmp_path, [good]).state == PASS
    outcome = _run("nodes.running.no-sshd", tmp_path, [good, away])
    assert outcome.state == NOT_COLLECTED and outcome.problems == ["not collected: instance i-3 is not managed by SSM"]
    outcome = _run("nodes.running.no-sshd", tmp_path, [bad, away])
    assert outcome.state == FAIL and outcome.problems == ["instance i-2: 1 socket(s) listen on port 22",
                                                          "not collected: instance i-3 is not managed by SSM"]
    unread = {"InstanceId": "i-4", "role": "agent", "facts": {"unit.sshd.service": "", "unit.sshd.socket": "inactive"}}
    assert _run("nodes.running.no-sshd", tmp_path, [unread]).problems == [
        "instance i-4: whether sshd.service runs could not be read",
        "instance i-4: the listening ports could not be read (no ss)"]
