# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Checks over the cluster's API objects: who holds cluster-admin, Gatekeeper enforcing without violations and
failing closed, Tetragon's TracingPolicies, policy-controller enforcing signatures, the kube-bench results."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.evidence.checks import check

GATEKEEPER = "cluster/gatekeeper-constraints.json"
GATEKEEPER_WEBHOOK = "gatekeeper-validating-webhook-configuration"


def subject_name(subject):
    """``Kind/name``, or ``ServiceAccount/namespace/name``: how allowed cluster-admin subjects are written."""
    if subject.get("kind") == "ServiceAccount":
        return "ServiceAccount/%s/%s" % (subject.get("namespace"), subject.get("name"))
    return "%s/%s" % (subject.get("kind"), subject.get("name"))


@check("cluster.cluster-admin", "Only the allowed subjects are bound to cluster-admin", ["ac-6_obj"],
       ["cluster/clusterrolebindings.json"])
def cluster_admin(bindings, params):
    allowed = set(params["cluster_admin_subjects"])
    return ["ClusterRoleBinding %s gives cluster-admin to %s" % (binding["name"], subject_name(subject))
            for binding in bindings.get("clusterRoleBindings") or []
            if (binding.get("roleRef") or {}).get("name") == "cluster-admin"
            for subject in binding.get("subjects") or [] if subject_name(subject) not in allowed]


@check("cluster.gatekeeper.enforced", "Gatekeeper's required constraints exist and deny", ["ac-6_obj",
       "cm-7_obj.b-1", "si-7_obj.b-1"], [GATEKEEPER])
def gatekeeper_enforced(gatekeeper, params):
    if not gatekeeper.get("installed"):
        return ["Gatekeeper is not installed (no constrainttemplates resource)"]
    names = {item["name"] for item in gatekeeper.get("constraints") or []}
    problems = ["the constraint %s does not exist" % name for name in params["required_constraints"] if name not in names]
    return problems + ["%s %s is in %s mode, so it does not refuse anything" % (
        item["kind"], item["name"], item["enforcementAction"]) for item in gatekeeper.get("constraints") or []
        if item["enforcementAction"] != "deny"]


@check("cluster.gatekeeper.no-violations", "Gatekeeper's audit found no violation of any constraint",
       ["cm-7_obj.b-1", "cm-7_obj.b-4"], [GATEKEEPER])
def gatekeeper_violations(gatekeeper, params):
    if not gatekeeper.get("installed"):
        return ["Gatekeeper is not installed (no constrainttemplates resource)"]
    problems = []
    for item in gatekeeper.get("constraints") or []:
        if item.get("totalViolations") is None:
            problems.append("%s %s has no audit result yet" % (item["kind"], item["name"]))
        elif item["totalViolations"]:
            problems.append("%s %s: the audit found %d violation(s)" % (
                item["kind"], item["name"], item["totalViolations"]))
    return problems


@check("cluster.admission.fails-closed", "Gatekeeper's admission webhooks fail closed", ["si-7_obj.b-1"],
       ["cluster/validating-webhooks.json"])
def fails_closed(webhooks, params):
    found = [item for item in webhooks.get("configurations") or [] if item["name"] == GATEKEEPER_WEBHOOK]
    if not found:
        return ["the webhook configuration %s does not exist: nothing is checked at admission" % GATEKEEPER_WEBHOOK]
    return ["webhook %s of %s has failure policy %s: a request it cannot check passes" % (
        hook["name"], GATEKEEPER_WEBHOOK, hook["failurePolicy"]) for hook in found[0]["webhooks"]
        if hook["failurePolicy"] != "Fail"]


@check("cluster.tetragon.policies", "Tetragon's TracingPolicies are in place", ["au-2_obj.c-1", "si-7_obj.a-3"],
       ["cluster/tracingpolicies.json"])
def tracing(policies, params):
    if not policies.get("installed"):
        return ["Tetragon is not installed (no tracingpolicies resource)"]
    names = {item["name"] for item in policies.get("policies") or []}
    return ["the TracingPolicy %s does not exist" % name for name in params["required_tracing_policies"]
            if name not in names]


@check("cluster.image-policy.enforced", "policy-controller enforces a signature by a key on the registry's images",
       ["si-7_obj.a-1", "si-7_obj.b-1"], ["cluster/clusterimagepolicies.json", "cluster/pods.json"])
def image_policy(policies, pods, params):
    if not policies.get("installed"):
        return ["policy-controller is not installed (no clusterimagepolicies resource)"]
    enforcing = [item for item in policies.get("policies") or []
                 if item["mode"] == "enforce" and any(a.get("keyDigest") or a.get("keyless") for a in item["authorities"])]
    problems = [] if enforcing else ["no ClusterImagePolicy enforces a signature"]
    included = {item["name"] for item in policies.get("namespaces") or [] if item["included"]}
    if not included:
        problems.append("no namespace is opted in to policy-controller, so it checks nothing")
    running = sorted({pod["namespace"] for pod in pods.get("pods") or []} - included)
    notes = ["pods run in namespaces policy-controller does not check (Gatekeeper's registry allow-list and the "
             "custody check cover them): %s" % ", ".join(running)] if running else []
    return problems, notes


@check("cluster.kube-bench", "The CIS benchmark (kube-bench) has results and no failed test", ["cm-7_obj.a"],
       ["cluster/kube-bench.json"])
def kube_bench(bench, params):
    results = bench.get("results") or []
    if not results:
        return ["no kube-bench results were found (the CronJob keeps them in ConfigMaps kube-bench-<node>)"]
    problems = []
    for item in results:
        if not item["readable"]:
            problems.append("ConfigMap %s/%s holds no readable results.json" % (item["namespace"], item["name"]))
            continue
        totals = (item["results"] or {}).get("Totals") or {}
        if totals.get("total_fail", 0):
            failed = [test.get("test_number") for control in item["results"].get("Controls") or []
                      for group in control.get("tests") or [] for test in group.get("results") or []
                      if test.get("status") == "FAIL"]
            problems.append("%s: %d CIS test(s) failed (%s)" % (item["name"], totals["total_fail"],
                                                                ", ".join(str(t) for t in failed[:20])))
    return problems
