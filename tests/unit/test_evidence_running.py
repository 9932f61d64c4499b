"""The node script of collect_running, run for real by /bin/sh on this machine, and what the collector reads from
its answer; and the check semantics when some nodes could not be asked."""

import hashlib
import json
import os
import subprocess
import sys
import types

import pytest

from ansible_collections.petra.core.plugins.module_utils.evidence import checks_running, collect_running
from ansible_collections.petra.core.plugins.module_utils.evidence.checks import FAIL, NOT_COLLECTED, PASS, REGISTRY
from ansible_collections.petra.core.plugins.module_utils.evidence.collect_nodes import NodeCollector
from ansible_collections.petra.core.plugins.module_utils.evidence.store import EvidenceStore
from ansible_collections.petra.core.plugins.module_utils.flatcar import ignition
from ansible_collections.petra.core.tests.unit.test_flatcar_buildinfo import fake_binary, sysext


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


def test_parse_refuses_foreign_or_cut_answers():
    with pytest.raises(ValueError, match="not the Petra node script"):
        collect_running.parse("hello\n")
    with pytest.raises(ValueError, match="not the Petra node script"):  # the script before the allow-list
        collect_running.parse("format=petra-node-evidence/1\nend=ok\n")
    with pytest.raises(ValueError, match="incomplete"):
        collect_running.parse("format=%s\nk3s.arg=server\n" % collect_running.FORMAT)


# Every form in which k3s's command line or the apiserver's journal line carries a secret (issue 18 review).
SECRET_ARGV = ["server", "--token", "K10-Join-Secret-1", "-t", "Short-Flag-Secret-2",
               "--kube-apiserver-arg=oidc-client-secret=Oidc-Secret-3",
               "--datastore-endpoint=postgres://petra:Datastore-Pw-4@db:5432/k3s", "--etcd-s3-access-key=Access-Key-5",
               "--vpn-auth=name=tailscale,joinKey=Vpn-Join-Key-6",
               "--kube-apiserver-arg=audit-log-path=/var/lib/rancher/k3s/server/logs/audit.log",
               "--kube-apiserver-arg", "audit-policy-file=/etc/rancher/k3s/audit-policy.yaml"]
SECRETS = ["K10-Join-Secret-1", "Short-Flag-Secret-2", "Oidc-Secret-3", "Datastore-Pw-4", "Access-Key-5",
           "Vpn-Join-Key-6", "Env-Token-7", "Apiserver-Token-8"]
JOURNAL = ('time="2026-01-01T00:00:00Z" level=info msg="Running kube-apiserver --advertise-port=6443 '
           '--audit-log-path=/var/lib/rancher/k3s/server/logs/audit.log --audit-policy-file=/etc/rancher/k3s/audit-'
           'policy.yaml --oidc-client-secret=Oidc-Secret-3 --etcd-servers=postgres://petra:Datastore-Pw-4@db:5432 '
           '--token Apiserver-Token-8"\n')


def _fake_systemd(tmp_path, pid):
    """``systemctl`` naming ``pid`` as k3s.service's main process, ``journalctl`` printing JOURNAL: shell scripts on
    PATH, so the node script reads a real process of this machine."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "journal").write_text(JOURNAL)
    (bin_dir / "systemctl").write_text(
        '#!/bin/sh\ncase "$1" in\n  show) [ "$5" = k3s.service ] && echo %d || echo 0 ;;\n'
        '  is-active) echo inactive ;;\n  is-enabled) echo enabled ;;\nesac\n' % pid)
    (bin_dir / "journalctl").write_text("#!/bin/sh\ncat %s\n" % (tmp_path / "journal"))
    for name in ("systemctl", "journalctl"):
        (bin_dir / name).chmod(0o755)
    return dict(os.environ, PATH="%s:%s" % (bin_dir, os.environ["PATH"]))


def test_the_script_sends_only_the_audit_flags_of_k3s(tmp_path):
    """The node script run by /bin/sh against a real process whose command line and environment hold every secret
    form: none leaves the node, the audit flags the checks need do, and the audit check reads them."""
    k3s = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"] + SECRET_ARGV,
                           env={"K3S_TOKEN": "Env-Token-7", "GODEBUG": "fips140=on", "PATH": os.environ["PATH"]})
    try:
        answer = subprocess.run(["/bin/sh", "-c", collect_running.script([])], capture_output=True, text=True,
                                timeout=60, check=True, env=_fake_systemd(tmp_path, k3s.pid))
    finally:
        k3s.kill()
        k3s.wait()
    assert [secret for secret in SECRETS if secret in answer.stdout + answer.stderr] == []
    facts = collect_running.parse(answer.stdout)
    assert facts["k3s.unit"] == "k3s.service" and facts["k3s.env"] == ["GODEBUG=fips140=on"]
    assert facts["k3s.arg"] == ["--kube-apiserver-arg=audit-log-path=/var/lib/rancher/k3s/server/logs/audit.log",
                                "audit-policy-file=/etc/rancher/k3s/audit-policy.yaml"]
    assert facts["k3s.apiserver"] == "found" and facts["k3s.apiserver.arg"] == [
        "--audit-log-path=/var/lib/rancher/k3s/server/logs/audit.log",
        "--audit-policy-file=/etc/rancher/k3s/audit-policy.yaml"]
    assert facts["k3s.exe"] == hashlib.sha256(open(sys.executable, "rb").read()).hexdigest()
    server = {"InstanceId": "i-1", "role": "server", "facts": facts}
    assert _run("nodes.running.audit-logging", tmp_path, [server]).state == PASS
    facts["k3s.apiserver.arg"] = facts["k3s.apiserver.arg"][:1]
    assert _run("nodes.running.audit-logging", tmp_path, [server]).problems == [
        "server i-1: the running apiserver has no audit-policy-file"]


def test_the_controller_masks_every_secret_form_a_node_sends():
    """Defence in depth: an answer with every argument (an older or tampered script) keeps only the audit flags, and
    secret-looking values are masked wherever they are."""
    assert collect_running.mask_args(SECRET_ARGV + ["--token=K10-Join-Secret-1", "--token-file=/var/t",
                                                    "--kube-apiserver-arg=service-account-key-file=/k"]) == [
        "server", "--token", "<redacted by petra>", "-t", "<redacted by petra>",
        "--kube-apiserver-arg=oidc-client-secret=<redacted by petra>",
        "--datastore-endpoint=postgres://<redacted by petra>@db:5432/k3s", "--etcd-s3-access-key=<redacted by petra>",
        "--vpn-auth=<redacted by petra>",
        "--kube-apiserver-arg=audit-log-path=/var/lib/rancher/k3s/server/logs/audit.log",
        "--kube-apiserver-arg", "audit-policy-file=/etc/rancher/k3s/audit-policy.yaml",
        "--token=<redacted by petra>", "--token-file=/var/t", "--kube-apiserver-arg=service-account-key-file=/k"]
    webhook = "--kube-apiserver-arg=audit-webhook-config-file=https://u:Datastore-Pw-4@h/"
    assert collect_running.mask_args(["--kube-apiserver-arg=name=x,joinKey=Vpn-Join-Key-6", webhook]) == [
        "--kube-apiserver-arg=name=x,joinKey=<redacted by petra>",
        "--kube-apiserver-arg=audit-webhook-config-file=https://<redacted by petra>@h/"]
    stdout = "\n".join(["format=%s" % collect_running.FORMAT, "k3s.cmdline=%s" % " ".join(SECRET_ARGV),
                        "k3s.env=K3S_TOKEN=Env-Token-7", "k3s.env=GODEBUG=fips140=on",
                        "k3s.apiserver=%s" % JOURNAL.strip()] +
                       ["k3s.arg=%s" % arg for arg in SECRET_ARGV + ["--audit-log-path=https://u:Datastore-Pw-4@h"]] +
                       ["k3s.apiserver.arg=%s" % word for word in JOURNAL.split()] + ["end=ok"])
    facts = collect_running.parse(stdout)
    assert [secret for secret in SECRETS if secret in json.dumps(facts)] == []
    assert facts["k3s.arg"] == ["--kube-apiserver-arg=audit-log-path=/var/lib/rancher/k3s/server/logs/audit.log",
                                "audit-policy-file=/etc/rancher/k3s/audit-policy.yaml",
                                "--audit-log-path=https://<redacted by petra>@h"]
    assert facts["k3s.apiserver"] == "found" and "k3s.cmdline" not in facts


def _run(check_id, tmp_path, nodes, ignition=None, params=None, agents=None, buildinfo=None):
    store = EvidenceStore(str(tmp_path))
    store.save(checks_running.RUNNING, "running", {"nodes": nodes})
    store.save("nodes/ignition.json", "ignition", ignition or {"nodes": []})
    store.save(checks_running.AGENTS, "agents", agents or {})
    store.save(checks_running.BUILDINFO, "buildinfo", buildinfo or {})
    return REGISTRY[check_id].run(store, params or {})


def test_a_sysext_node_runs_the_k3s_inside_the_pinned_image(tmp_path):
    """A node getting k3s from k3s.raw: its running executable is compared with the binary inside that image, read
    from k3s_binary on the controller (a real squashfs image), when k3s_binary is the image the config pins."""
    binary = fake_binary({"GOFIPS140": "v1.0.0"})
    image = sysext(tmp_path, {"usr/local/bin/k3s": binary})
    store = EvidenceStore(str(tmp_path / "collected"))
    NodeCollector(store, types.SimpleNamespace(instances=[]), image).collect()
    info = store.get(checks_running.BUILDINFO).data
    assert info["sysext_path"] == "/usr/local/bin/k3s" and info["binary_sha256"] == hashlib.sha256(binary).hexdigest()
    pins = {"nodes": [{"InstanceId": "i-1", "facts": {"k3s": [
        {"path": checks_running.SYSEXT, "hash": "sha256-" + info["sha256"]}]}}]}
    running = _node(**{"k3s.unit": "k3s.service", "k3s.exe": info["binary_sha256"]})
    assert _run("nodes.running.k3s-sysext", tmp_path, [running], pins, buildinfo=info).state == PASS
    other = _node(**{"k3s.unit": "k3s.service", "k3s.exe": "ee" * 32})
    assert _run("nodes.running.k3s-sysext", tmp_path, [other], pins, buildinfo=info).problems == [
        "instance i-1: the running k3s executable has sha256 %s, not that of /usr/local/bin/k3s inside the sysext "
        "image the config pins (%s)" % ("ee" * 32, info["binary_sha256"])]
    elsewhere = dict(info, sha256="ab" * 32)  # k3s_binary is another image than the one pinned: not known, not passed
    outcome = _run("nodes.running.k3s-sysext", tmp_path, [other], pins, buildinfo=elsewhere)
    assert outcome.state == NOT_COLLECTED and "is not that image" in outcome.problems[0]
    binary_pin = {"nodes": [{"InstanceId": "i-1", "facts": {"k3s": [{"path": "/opt/bin/k3s", "hash": "sha256-x"}]}}]}
    outcome = _run("nodes.running.k3s-sysext", tmp_path, [other], binary_pin, buildinfo=info)
    assert outcome.state == PASS and "no node gets k3s from the system extension" in outcome.notes[0]


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


def test_the_script_docs_show_is_the_script_sent():
    """docs/compliance.md shows the whole node script an operator opts into: it must be the one sent."""
    from ansible_collections.petra.core.plugins.module_utils.evidence.collect_nodes import K3S_PATHS

    docs = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "docs",
                        "compliance.md")
    with open(docs) as handle:
        assert "```sh\n%s```" % collect_running.script(K3S_PATHS) in handle.read()
