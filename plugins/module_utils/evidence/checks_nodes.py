# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Checks over the nodes' Ignition configs as launched and the k3s binary they pin: no SSH, audit logging, the Go
FIPS module and its runtime switch."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.evidence.checks import check

IGNITION = "nodes/ignition.json"
SSH_UNITS = ("sshd.service", "sshd.socket")
AUDIT_ARGS = ("audit-policy-file=", "audit-log-path=")


def split_nodes(document, field, describe):
    """(the nodes without ``field``, ``describe(node)`` of those with it)."""
    usable, others = [], []
    for node in document.get("nodes") or []:
        if node.get(field):
            others.append(describe(node))
        else:
            usable.append(node)
    return usable, others


def _nodes(document):
    return split_nodes(document, "error", lambda node: "instance %s: %s" % (node["InstanceId"], node["error"]))


@check("nodes.no-ssh", "Node configs give no SSH key and mask sshd", ["ac-6_obj", "cm-7_obj.b-5"], [IGNITION])
def no_ssh(document, params):
    nodes, problems = _nodes(document)
    for node in nodes:
        facts = node["facts"]
        if facts["ssh_authorized_keys"]:
            problems.append("instance %s gets %d SSH authorized key(s)" % (node["InstanceId"],
                                                                           len(facts["ssh_authorized_keys"])))
        for unit in SSH_UNITS:
            if not facts["units"].get(unit, {}).get("mask"):
                problems.append("instance %s does not mask %s" % (node["InstanceId"], unit))
    return problems


@check("nodes.audit-logging", "Server configs give k3s an audit policy and an audit log", ["au-2_obj.c-1"],
       [IGNITION])
def audit_logging(document, params):
    nodes, problems = _nodes(document)
    servers = [node for node in nodes if node.get("role") == "server"]
    if not servers:
        problems.append("no server node config was found")
    for node in servers:
        config = node["facts"]["k3s_config"]
        missing = [arg.rstrip("=") for arg in AUDIT_ARGS if arg not in config]
        if missing or not node["facts"]["audit_policy"]:
            problems.append("server %s: k3s runs without %s" % (
                node["InstanceId"], ", ".join(missing + ([] if node["facts"]["audit_policy"] else ["its audit policy file"]))))
    return problems


@check("nodes.fips-runtime", "k3s runs with GODEBUG=fips140=on on every node", ["sc-13_obj.b"], [IGNITION])
def fips_runtime(document, params):
    nodes, problems = _nodes(document)
    return problems + ["instance %s starts k3s without GODEBUG=fips140=on" % node["InstanceId"]
                       for node in nodes if not any(line.strip().startswith("GODEBUG=") and "fips140=on" in line
                                                    for line in node["facts"]["k3s_environment"])]


@check("nodes.k3s-fips-module", "The k3s the configs pin is built with the validated Go Cryptographic Module",
       ["sc-13_obj.b"], [IGNITION, "nodes/k3s-buildinfo.json"])
def k3s_fips_module(document, info, params):
    nodes, problems = _nodes(document)
    if not info["fips_module"]:
        problems.append("k3s (%s, sha256 %s) is not built with the validated Go FIPS module: GOFIPS140=%s" % (
            info["go_version"], info["sha256"], info["gofips140"] or "unset"))
    for node in nodes:
        pins = {(item.get("hash") or "").replace("sha256-", "") for item in node["facts"]["k3s"]}
        if info["sha256"] not in pins:
            problems.append("instance %s pins k3s %s, not the binary inspected (sha256 %s)" % (
                node["InstanceId"], ", ".join(sorted(pins)) or "nowhere", info["sha256"]))
    return problems
