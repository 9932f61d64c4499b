"""The node script of collect_running, run for real by /bin/sh on this machine, and what the collector reads from
its answer; and the check semantics when some nodes could not be asked."""

import hashlib
import json
import subprocess

import pytest

from ansible_collections.petra.core.plugins.module_utils.evidence import checks_running, collect_running
from ansible_collections.petra.core.plugins.module_utils.evidence.checks import FAIL, NOT_COLLECTED, PASS, REGISTRY
from ansible_collections.petra.core.plugins.module_utils.evidence.store import EvidenceStore
from ansible_collections.petra.core.plugins.module_utils.flatcar import ignition


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


def _run(check_id, tmp_path, nodes, ignition=None, params=None, agents=None):
    store = EvidenceStore(str(tmp_path))
    store.save(checks_running.RUNNING, "running", {"nodes": nodes})
    store.save("nodes/ignition.json", "ignition", ignition or {"nodes": []})
    store.save(checks_running.AGENTS, "agents", agents or {})
    return REGISTRY[check_id].run(store, params or {})


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


def test_the_script_reads_tetragon_times_only_and_the_os_state(tmp_path):
    """The newest event's time comes out of Tetragon's export, nothing else of it (arguments may hold secrets)."""
    export = tmp_path / "tetragon.log"
    events = [{"process_exec": {"process": {"binary": "/bin/sh", "arguments": "-c echo pw=Arg-S3cret-1",
                                            "start_time": "2026-01-01T00:00:00.000000001Z"}},
               "node_name": "server-1", "time": "2026-01-01T00:00:0%dZ" % second} for second in (1, 2)]
    # Go's protojson writes a space after a colon or not (on purpose, at random): both are read.
    export.write_text(json.dumps(events[0]) + "\n" + json.dumps(events[1], separators=(",", ":")) + "\n")
    answer = subprocess.run(["/bin/sh", "-c", collect_running.script([], str(export))], capture_output=True,
                            text=True, timeout=60, check=True)
    assert "Arg-S3cret-1" not in answer.stdout and "/bin/sh" not in answer.stdout
    facts = collect_running.parse(answer.stdout)
    assert (facts["tetragon.export"], facts["tetragon.time"]) == ("present", "2026-01-01T00:00:02Z")
    assert facts["now"].endswith("Z") and facts["tetragon.mtime"].endswith("Z")
    assert "kernel.fips_enabled" in facts and isinstance(facts["listen.tcp"], list)
    assert set(collect_running.UNITS) <= {key[len("unitfile."):] for key in facts if key.startswith("unitfile.")}
    missing = subprocess.run(["/bin/sh", "-c", collect_running.script([], str(tmp_path / "none.log"))],
                             capture_output=True, text=True, timeout=60, check=True)
    assert collect_running.parse(missing.stdout)["tetragon.export"] == "missing"


def test_the_units_read_are_every_unit_petra_sets():
    rendered = [ignition.render(role, "Token-1", {"url": "s3://b/k3s", "sha256": "a" * 64}, cluster_init=role == "server",
                                server_url=None if role == "server" else "https://api:6443", k3s_kind=kind,
                                aws_provider_id=True)
                for role in ("server", "agent") for kind in ("binary", "sysext")]
    assert {unit["name"] for doc in rendered for unit in doc["systemd"]["units"]} == set(collect_running.UNITS)


FACTS = {"ports": "read", "listen.tcp": ["*:6443", "*:10250", "127.0.0.1:6444", "[::1]:10248", "*:4240"],
         "usr.device": "/dev/mapper/usr", "usr.options": "ro,relatime", "kernel.fips_enabled": "0",
         "tetragon.export": "present", "tetragon.time": "2026-01-01T00:09:00.5Z", "tetragon.mtime": "2026-01-01T00:09:00Z",
         "now": "2026-01-01T00:10:00Z", "unitfile.sshd.service": "masked", "unitfile.auditd.service": "enabled",
         "enabled.unit": ["auditd.service"]}


def _node(instance="i-1", role="server", **changes):
    return {"InstanceId": instance, "role": role, "facts": dict(FACTS, **changes)}


def _config(instance="i-1", kernel_arguments=(), **units):
    states = {"sshd.service": {"mask": True}, "auditd.service": {"enabled": True}}
    states.update(units)
    return {"nodes": [{"InstanceId": instance, "facts": {"units": states, "kernel_arguments": list(kernel_arguments)}}]}


def test_usr_and_ports(tmp_path):
    assert _run("nodes.running.usr-read-only", tmp_path, [_node()]).state == PASS
    assert _run("nodes.running.usr-read-only", tmp_path, [_node(**{"usr.options": "rw"})]).problems == [
        "instance i-1: /usr (/dev/mapper/usr) is mounted rw, not read-only"]
    unmounted = dict(_node())
    unmounted["facts"] = {key: value for key, value in FACTS.items() if not key.startswith("usr.")}
    assert "not a mount of its own" in _run("nodes.running.usr-read-only", tmp_path, [unmounted]).problems[0]
    assert _run("nodes.running.ports", tmp_path, [_node()]).state == PASS
    # etcd is a server's port only; an agent listening on it is a finding, unless the organization accepts it.
    etcd = _node(role="agent", **{"listen.tcp": ["10.0.1.7:2379", "127.0.0.1:2379", "[::ffff:127.0.0.1]:9"]})
    assert _run("nodes.running.ports", tmp_path, [etcd]).problems == [
        "instance i-1: TCP port 2379 listens on 10.0.1.7:2379, which no security group opens"]
    assert _run("nodes.running.ports", tmp_path, [etcd], params={"node_allowed_ports": [2379]}).state == PASS
    assert _run("nodes.running.ports", tmp_path, [_node(ports=None)]).problems == [
        "instance i-1: the listening ports could not be read (no ss)"]


def test_units_and_kernel_fips_against_the_config(tmp_path):
    assert _run("nodes.running.units", tmp_path, [_node()], _config()).state == PASS
    outcome = _run("nodes.running.units", tmp_path, [_node(**{"unitfile.sshd.service": "disabled"})], _config())
    assert outcome.problems == ["instance i-1: sshd.service is disabled, its config masks it"]
    assert _run("nodes.running.units", tmp_path, [_node()], {"nodes": []}).state == NOT_COLLECTED
    # The kernel's FIPS mode is judged only where the config asks for fips=1; elsewhere it is evidence.
    outcome = _run("nodes.running.kernel-fips", tmp_path, [_node()], _config())
    assert outcome.state == PASS and outcome.notes == [
        "instance i-1: kernel FIPS mode 0; its config does not ask for it (evidence only)"]
    asks = _config(kernel_arguments=["fips=1"])
    assert _run("nodes.running.kernel-fips", tmp_path, [_node()], asks).problems == [
        "instance i-1: the kernel's FIPS mode is 0 (/proc/sys/crypto/fips_enabled), its config asks for fips=1"]
    assert _run("nodes.running.kernel-fips", tmp_path, [_node(**{"kernel.fips_enabled": "1"})], asks).state == PASS


def test_tetragon_event_freshness(tmp_path):
    window = {"tetragon_event_window": 5, "tetragon_export": "/var/run/cilium/tetragon/tetragon.log"}
    assert _run("nodes.running.tetragon-events", tmp_path, [_node()], params=window).state == PASS
    stale = _node(**{"tetragon.time": "2026-01-01T00:04:59.999999999Z"})
    assert _run("nodes.running.tetragon-events", tmp_path, [stale], params=window).problems == [
        "instance i-1: Tetragon's newest exported event is from 2026-01-01T00:04:59Z, older than the 5-minute window"]
    assert _run("nodes.running.tetragon-events", tmp_path, [_node(**{"tetragon.export": "missing"})],
                params=window).problems == [
        "instance i-1: Tetragon writes no JSON export at /var/run/cilium/tetragon/tetragon.log"]
    assert "holds no event (last written 2026-01-01T00:09:00Z)" in _run(
        "nodes.running.tetragon-events", tmp_path, [_node(**{"tetragon.time": ""})], params=window).problems[0]
    garbled = _run("nodes.running.tetragon-events", tmp_path, [_node(**{"tetragon.time": "yesterday"})], params=window)
    assert garbled.state == NOT_COLLECTED and "has no event time ('yesterday')" in garbled.problems[0]
    assert _run("nodes.running.tetragon-events", tmp_path, [_node(now=None)], params=window).state == NOT_COLLECTED


def test_ssm_agent_online(tmp_path):
    instances = [{"InstanceId": "i-1", "State": "running"}, {"InstanceId": "i-2", "State": "running"},
                 {"InstanceId": "i-3", "State": "stopped"}]
    online = {"instances": instances, "InstanceInformationList": [
        {"InstanceId": "i-1", "PingStatus": "Online"}, {"InstanceId": "i-2", "PingStatus": "Online"}]}
    outcome = _run("nodes.running.ssm-agent", tmp_path, [], agents=online)
    assert outcome.state == PASS and outcome.notes == ["instance i-3 is stopped: no agent to ask"]
    lost = {"instances": instances, "InstanceInformationList": [{"InstanceId": "i-1", "PingStatus": "ConnectionLost"}]}
    assert _run("nodes.running.ssm-agent", tmp_path, [], agents=lost).problems == [
        "instance i-1: the SSM agent is ConnectionLost",
        "instance i-2 is not a managed instance of SSM (no agent registered: it cannot be reached the SSM way)"]
