# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Checks over the nodes as running (SSM Run Command answers): no sshd, the k3s running is the k3s the Ignition
configs pin, k3s's process environment switches the FIPS module on, the apiserver runs with audit logging, /usr is
read-only, nothing but k3s's ports listens, the units the configs set are so, the kernel is in FIPS mode where the
config asks for it, Tetragon's export has recent events, and every node's SSM agent is online.

An instance that could not be asked (stopped, not managed by SSM, the command failed or timed out) is listed as not
collected: the check is then not-collected unless another instance fails it."""

from __future__ import annotations

import datetime

from ansible_collections.petra.core.plugins.module_utils.evidence.checks import check
from ansible_collections.petra.core.plugins.module_utils.evidence.checks_nodes import AUDIT_ARGS, IGNITION, split_nodes
from ansible_collections.petra.core.plugins.module_utils.flatcar.security_groups import NODE_PORTS, SERVER_PORTS

RUNNING = "nodes-running/commands.json"
AGENTS = "nodes-running/ssm-instances.json"
DEFAULT_EVENT_WINDOW = 15  # minutes


def _nodes(document):
    """(answered nodes, what could not be seen)."""
    return split_nodes(document, "notCollected", lambda node: "not collected: %s" % node["notCollected"])


@check("nodes.running.no-sshd", "No node runs sshd or listens on port 22", ["ac-6_obj", "cm-7_obj.b-5"], [RUNNING])
def no_sshd(document, params):
    nodes, unseen = _nodes(document)
    problems = []
    for node in nodes:
        facts, instance = node["facts"], node["InstanceId"]
        for unit in ("sshd.service", "sshd.socket"):
            state = facts.get("unit." + unit)
            if not state:
                problems.append("instance %s: whether %s runs could not be read" % (instance, unit))
            elif state not in ("inactive", "failed"):
                problems.append("instance %s: %s is %s" % (instance, unit, state))
        listening = facts.get("listen22")
        if listening is None:
            problems.append("instance %s: the listening ports could not be read (no ss)" % instance)
        elif listening != "0":
            problems.append("instance %s: %s socket(s) listen on port 22" % (instance, listening))
    return problems, [], unseen


def _pins(ignition):
    """instance id -> {path: pinned sha256} from the Ignition configs as launched."""
    pins = {}
    for node in ignition.get("nodes") or []:
        if node.get("facts"):
            pins[node["InstanceId"]] = {item["path"]: (item.get("hash") or "").replace("sha256-", "")
                                        for item in node["facts"]["k3s"]}
    return pins


@check("nodes.running.k3s", "Every node runs the k3s its Ignition config pins (SHA-256 of the file and of the "
       "running executable)", ["si-7_obj.a-1", "cm-7_obj.a", "sc-13_obj.b"], [RUNNING, IGNITION])
def running_k3s(document, ignition, params):
    nodes, unseen = _nodes(document)
    pins, problems = _pins(ignition), []
    for node in nodes:
        facts, instance = node["facts"], node["InstanceId"]
        pinned = pins.get(instance)
        if not pinned:
            problems.append("instance %s: its Ignition config pins no k3s to compare with" % instance)
            continue
        if not facts.get("k3s.unit"):
            problems.append("instance %s: no k3s unit is running" % instance)
        for path, sha256 in sorted(pinned.items()):
            found = facts.get("file." + path)
            if found != sha256:
                problems.append("instance %s: %s has sha256 %s, the config pins %s" % (
                    instance, path, found or "(the file is missing)", sha256))
        binary = pinned.get("/opt/bin/k3s")
        if binary and facts.get("k3s.unit") and facts.get("k3s.exe") != binary:
            problems.append("instance %s: the running k3s executable has sha256 %s, the config pins %s" % (
                instance, facts.get("k3s.exe"), binary))
    return problems, [], unseen


SYSEXT = "/opt/extensions/k3s/k3s.raw"
BUILDINFO = "nodes/k3s-buildinfo.json"


@check("nodes.running.k3s-sysext", "Every node that gets k3s from the system extension runs the k3s binary inside the "
       "image its Ignition config pins (as read from k3s_binary)", ["si-7_obj.a-1", "sc-13_obj.b"],
       [RUNNING, IGNITION, BUILDINFO])
def running_sysext_k3s(document, ignition, info, params):
    """The running executable of a sysext node is the binary inside k3s.raw, whose SHA-256 no config pins: it is known
    from ``k3s_binary`` on the controller when that is the very image the config pins."""
    nodes, unseen = _nodes(document)
    pins, problems, notes = _pins(ignition), [], []
    for node in nodes:
        facts, instance = node["facts"], node["InstanceId"]
        image = (pins.get(instance) or {}).get(SYSEXT)
        if not image:
            continue
        if info.get("sha256") != image or not info.get("sysext_path"):
            unseen.append("instance %s: its config pins the sysext image sha256 %s, but k3s_binary (sha256 %s) is not "
                          "that image, so the k3s inside it is not known" % (instance, image, info.get("sha256")))
        elif not facts.get("k3s.unit"):
            problems.append("instance %s: no k3s unit is running" % instance)
        elif facts.get("k3s.exe") != info["binary_sha256"]:
            problems.append("instance %s: the running k3s executable has sha256 %s, not that of %s inside the sysext "
                            "image the config pins (%s)" % (
                                instance, facts.get("k3s.exe"), info["sysext_path"], info["binary_sha256"]))
    if not problems and not unseen and not any(SYSEXT in (pins.get(node["InstanceId"]) or {}) for node in nodes):
        notes.append("no node gets k3s from the system extension (nodes.running.k3s compares the others)")
    return problems, notes, unseen


@check("nodes.running.fips-env", "k3s runs with GODEBUG=fips140=on in its process environment", ["sc-13_obj.b"],
       [RUNNING])
def fips_env(document, params):
    nodes, unseen = _nodes(document)
    problems = []
    for node in nodes:
        facts = node["facts"]
        if not facts.get("k3s.unit"):
            problems.append("instance %s: no k3s unit is running" % node["InstanceId"])
            continue
        godebug = [line for line in facts["k3s.env"] if line.startswith("GODEBUG=")]
        if not any("fips140=on" in line.split("=", 1)[1].split(",") or "fips140=only" in line for line in godebug):
            problems.append("instance %s: the k3s process runs without GODEBUG=fips140=on (%s)" % (
                node["InstanceId"], ", ".join(godebug) or "GODEBUG unset"))
    return problems, [], unseen


@check("nodes.running.audit-logging", "The running apiserver of every server has an audit policy and an audit log",
       ["au-2_obj.c-1"], [RUNNING])
def running_audit(document, params):
    nodes, unseen = _nodes(document)
    servers = [node for node in nodes if node.get("role") == "server"]
    problems = [] if servers or unseen else ["no server node answered"]
    for node in servers:
        facts = node["facts"]
        if facts.get("k3s.apiserver") != "found":
            problems.append("server %s: the journal holds no 'Running kube-apiserver' line to read its arguments "
                            "from" % node["InstanceId"])
            continue
        # The apiserver's own line is the authority (k3s logs every argument, config.yaml's included); the node
        # sends only its audit flags.
        missing = [arg.rstrip("=") for arg in AUDIT_ARGS
                   if not any(item.startswith("--" + arg) for item in facts.get("k3s.apiserver.arg") or [])]
        if missing:
            problems.append("server %s: the running apiserver has no %s" % (node["InstanceId"], ", ".join(missing)))
    return problems, [], unseen


def _ignition_facts(ignition):
    return {node["InstanceId"]: node["facts"] for node in ignition.get("nodes") or [] if node.get("facts")}


@check("nodes.running.usr-read-only", "Every node runs with /usr mounted read-only (Flatcar's immutable OS)",
       ["cm-7_obj.a"], [RUNNING])
def usr_read_only(document, params):
    nodes, unseen = _nodes(document)
    problems = []
    for node in nodes:
        options = node["facts"].get("usr.options")
        if options is None:
            problems.append("instance %s: /usr is not a mount of its own (Flatcar mounts its verified /usr image "
                            "read-only)" % node["InstanceId"])
        elif "ro" not in options.split(","):
            problems.append("instance %s: /usr (%s) is mounted %s, not read-only" % (
                node["InstanceId"], node["facts"].get("usr.device"), options))
    return problems, [], unseen


def _loopback(address):
    host = address.rsplit(":", 1)[0].strip("[]")
    return host.startswith("127.") or host in ("::1", "localhost") or host.endswith("%lo") or \
        host.startswith("::ffff:127.")


def allowed_ports(role, params):
    """TCP ports a node of ``role`` may listen on beyond loopback: what the security groups open to it, and what the
    organization accepts besides (``node_allowed_ports``)."""
    spans = [span for span in NODE_PORTS + (SERVER_PORTS if role == "server" else ()) if span[0] == "tcp"]
    ports = {port for _proto, low, high, _text in spans for port in range(low, high + 1)}
    return ports | set(params.get("node_allowed_ports") or [])


@check("nodes.running.ports", "Nothing listens on a node's network addresses but the TCP ports its security groups "
       "open (and those the organization accepts)", ["cm-7_obj.b-2"], [RUNNING])
def listening_ports(document, params):
    nodes, unseen = _nodes(document)
    problems = []
    for node in nodes:
        facts, instance = node["facts"], node["InstanceId"]
        if facts.get("ports") != "read":
            problems.append("instance %s: the listening ports could not be read (no ss)" % instance)
            continue
        allowed, extra = allowed_ports(node.get("role"), params), {}
        for address in facts.get("listen.tcp") or []:
            port = address.rsplit(":", 1)[-1]
            if not _loopback(address) and port.isdigit() and int(port) not in allowed:
                extra.setdefault(int(port), []).append(address)
        problems.extend("instance %s: TCP port %d listens on %s, which no security group opens" % (
            instance, port, ", ".join(sorted(set(addresses)))) for port, addresses in sorted(extra.items()))
    return problems, [], unseen


@check("nodes.running.units", "The units the Ignition config enables are enabled on every node, those it masks are "
       "masked", ["cm-7_obj.a", "cm-7_obj.b-5"], [RUNNING, IGNITION])
def running_units(document, ignition, params):
    nodes, unseen = _nodes(document)
    configs, problems, notes = _ignition_facts(ignition), [], []
    for node in nodes:
        facts, instance = node["facts"], node["InstanceId"]
        if instance not in configs:
            unseen.append("instance %s: its Ignition config could not be read to compare its units with" % instance)
            continue
        for name, unit in sorted(configs[instance]["units"].items()):
            wanted = "masked" if unit.get("mask") else "enabled" if unit.get("enabled") else None
            state = facts.get("unitfile." + name)
            if wanted and state is None:
                unseen.append("instance %s: the state of %s was not read" % (instance, name))
            elif wanted == "enabled" and state not in ("enabled", "enabled-runtime"):
                problems.append("instance %s: %s is %s, its config enables it" % (instance, name, state or "unknown"))
            elif wanted == "masked" and state not in ("masked", "masked-runtime"):
                problems.append("instance %s: %s is %s, its config masks it" % (instance, name, state or "unknown"))
        enabled = facts.get("enabled.unit") or []
        notes.append("instance %s: %d unit files enabled (the list is evidence; Flatcar's presets are not judged)" % (
            instance, len(enabled)))
    return problems, notes, unseen


@check("nodes.running.kernel-fips", "The kernel runs in FIPS mode on every node whose Ignition config asks for it "
       "(fips=1)", ["sc-13_obj.b"], [RUNNING, IGNITION])
def kernel_fips(document, ignition, params):
    nodes, unseen = _nodes(document)
    configs, problems, notes = _ignition_facts(ignition), [], []
    for node in nodes:
        instance, state = node["InstanceId"], node["facts"].get("kernel.fips_enabled") or "unreadable"
        if instance not in configs:
            unseen.append("instance %s: its Ignition config could not be read to know whether it asks for the "
                          "kernel's FIPS mode" % instance)
        elif "fips=1" in configs[instance]["kernel_arguments"]:
            if state != "1":
                problems.append("instance %s: the kernel's FIPS mode is %s (/proc/sys/crypto/fips_enabled), its "
                                "config asks for fips=1" % (instance, state))
        else:
            notes.append("instance %s: kernel FIPS mode %s; its config does not ask for it (evidence only)" % (
                instance, state))
    return problems, notes, unseen


def _utc(text):
    """A UTC time of the script (seconds) or of Tetragon (RFC 3339, nanoseconds); None when it is not one."""
    try:
        return datetime.datetime.strptime((text or "")[:19], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None


@check("nodes.running.tetragon-events", "Tetragon's JSON export on every node holds an event newer than the "
       "organization's window", ["au-2_obj.c-2"], [RUNNING])
def tetragon_events(document, params):
    nodes, unseen = _nodes(document)
    window = int(params.get("tetragon_event_window") or DEFAULT_EVENT_WINDOW)
    path = params.get("tetragon_export") or "the export file"
    problems = []
    for node in nodes:
        facts, instance = node["facts"], node["InstanceId"]
        export, newest, now = facts.get("tetragon.export"), _utc(facts.get("tetragon.time")), _utc(facts.get("now"))
        if export == "missing":
            problems.append("instance %s: Tetragon writes no JSON export at %s" % (instance, path))
        elif export != "present" or now is None:
            unseen.append("instance %s: Tetragon's export was not read" % instance)
        elif facts.get("tetragon.time") == "" and facts.get("tetragon.mtime"):
            problems.append("instance %s: Tetragon's export %s holds no event (last written %s)" % (
                instance, path, facts["tetragon.mtime"]))
        elif newest is None:
            unseen.append("instance %s: the newest line of Tetragon's export has no event time (%r)" % (
                instance, facts.get("tetragon.time")))
        elif now - newest > datetime.timedelta(minutes=window):
            # The event's time, not its age, so that a stopped Tetragon is the same finding at the next run.
            problems.append("instance %s: Tetragon's newest exported event is from %sZ, older than the %d-minute "
                            "window" % (instance, newest.isoformat(), window))
    return problems, [], unseen


@check("nodes.running.ssm-agent", "The SSM agent of every running node is online (the one way into a node)",
       ["ac-6_obj"], [AGENTS])
def ssm_agent(document, params):
    known = {item["InstanceId"]: item for item in document.get("InstanceInformationList") or []}
    problems, notes = [], []
    for instance in document.get("instances") or []:
        name, info = instance["InstanceId"], known.get(instance["InstanceId"])
        if instance.get("State") != "running":
            notes.append("instance %s is %s: no agent to ask" % (name, instance.get("State")))
        elif info is None:
            problems.append("instance %s is not a managed instance of SSM (no agent registered: it cannot be reached "
                            "the SSM way)" % name)
        elif info.get("PingStatus") != "Online":
            problems.append("instance %s: the SSM agent is %s" % (name, info.get("PingStatus")))
    return problems, notes
