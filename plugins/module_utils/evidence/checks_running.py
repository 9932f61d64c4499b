# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Checks over the nodes as running (SSM Run Command answers): no sshd, the k3s running is the k3s the Ignition
configs pin, k3s's process environment switches the FIPS module on, the apiserver runs with audit logging.

An instance that could not be asked (stopped, not managed by SSM, the command failed or timed out) is listed as not
collected: the check is then not-collected unless another instance fails it."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.evidence.checks import check
from ansible_collections.petra.core.plugins.module_utils.evidence.checks_nodes import AUDIT_ARGS, IGNITION, split_nodes

RUNNING = "nodes-running/commands.json"


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
        args = " ".join(facts["k3s.arg"]) + " " + (facts.get("k3s.apiserver") or "")
        if not facts.get("k3s.apiserver"):
            problems.append("server %s: the journal holds no 'Running kube-apiserver' line to read its arguments "
                            "from" % node["InstanceId"])
            continue
        missing = [arg.rstrip("=") for arg in AUDIT_ARGS if "--" + arg not in args]
        if missing:
            problems.append("server %s: the running apiserver has no %s" % (node["InstanceId"], ", ".join(missing)))
    return problems, [], unseen
