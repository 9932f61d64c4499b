# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""What the Kubernetes API says, read only: running pods and their image digests, cluster-admin bindings, Gatekeeper
constraints and their audit results, admission webhooks, Tetragon TracingPolicies, policy-controller policies,
opted-in namespaces and the kube-bench results Petra's CronJob keeps.

Objects are kept as projections of the API's answer: the fields the checks read plus names and uids, never a pod's
environment (it may hold secrets). A resource type the server does not know (404) is a fact ("not installed"), not a
collection failure.
"""

from __future__ import annotations

import hashlib
import json

from ansible_collections.petra.core.plugins.module_utils.k8s.client import KubeReader
from ansible_collections.petra.core.plugins.module_utils.platform.imagepolicy import INCLUDE_LABEL

CONSTRAINTS = "/apis/constraints.gatekeeper.sh/v1beta1/%s"
TEMPLATES = "/apis/templates.gatekeeper.sh/v1/constrainttemplates"
BENCH_LABEL = ("petra.dev/kube-bench", "results")


def _digest(value):
    return "sha256:" + hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _meta(obj):
    meta = obj.get("metadata") or {}
    return {"name": meta.get("name"), "namespace": meta.get("namespace"), "uid": meta.get("uid")}


def _items(answer):
    return sorted((answer or {}).get("items") or [], key=lambda obj: (
        (obj.get("metadata") or {}).get("namespace") or "", (obj.get("metadata") or {}).get("name") or ""))


def _statuses(statuses):
    return [{"name": item.get("name"), "image": item.get("image"), "imageID": item.get("imageID"),
             "ready": item.get("ready"), "state": sorted((item.get("state") or {}).keys())} for item in statuses or []]


class ClusterCollector:
    def __init__(self, store, kubeconfig, context=None, reader=None):
        self.store = store
        self.reader = reader or KubeReader(kubeconfig, context)

    def collect(self):
        gather = self.store.gather
        gather("cluster/pods.json", "Pods with their containers' images and running image digests", self._pods)
        gather("cluster/clusterrolebindings.json", "ClusterRoleBindings (role and subjects)", self._bindings)
        gather("cluster/gatekeeper-constraints.json", "Gatekeeper constraint templates, constraints, enforcement "
               "and audit results", self._gatekeeper)
        gather("cluster/validating-webhooks.json", "Validating admission webhooks and their failure policies",
               self._webhooks)
        gather("cluster/tracingpolicies.json", "Tetragon TracingPolicies (names and spec digests)", self._tracing)
        gather("cluster/clusterimagepolicies.json", "policy-controller ClusterImagePolicies and opted-in namespaces",
               self._image_policies)
        gather("cluster/kube-bench.json", "kube-bench results kept by Petra's CronJob", self._bench)
        return self

    def _pods(self):
        pods = []
        for pod in _items(self.reader.get("/api/v1/pods")):
            spec, status = pod.get("spec") or {}, pod.get("status") or {}
            pods.append(dict(_meta(pod), node=spec.get("nodeName"), phase=status.get("phase"),
                             containers=[{"name": c.get("name"), "image": c.get("image")}
                                         for c in spec.get("containers") or []],
                             initContainers=[{"name": c.get("name"), "image": c.get("image")}
                                             for c in spec.get("initContainers") or []],
                             containerStatuses=_statuses(status.get("containerStatuses")),
                             initContainerStatuses=_statuses(status.get("initContainerStatuses"))))
        return {"pods": pods}

    def _bindings(self):
        return {"clusterRoleBindings": [dict(_meta(obj), roleRef=obj.get("roleRef"), subjects=obj.get("subjects") or [])
                                        for obj in _items(self.reader.get(
                                            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"))]}

    def _gatekeeper(self):
        templates = self.reader.get(TEMPLATES)
        if templates is None:
            return {"installed": False, "templates": [], "constraints": []}
        kinds, constraints = [], []
        for template in _items(templates):
            kind = ((((template.get("spec") or {}).get("crd") or {}).get("spec") or {}).get("names") or {}).get("kind")
            kinds.append({"name": _meta(template)["name"], "kind": kind})
            for obj in _items(self.reader.get(CONSTRAINTS % (kind or "").lower()) if kind else None):
                status = obj.get("status") or {}
                constraints.append(dict(_meta(obj), kind=kind,
                                        enforcementAction=(obj.get("spec") or {}).get("enforcementAction", "deny"),
                                        totalViolations=status.get("totalViolations"),
                                        auditTimestamp=status.get("auditTimestamp"),
                                        byPod=[{"id": item.get("id"), "enforced": item.get("enforced")}
                                               for item in status.get("byPod") or []]))
        return {"installed": True, "templates": kinds, "constraints": constraints}

    def _webhooks(self):
        return {"configurations": [dict(_meta(obj), webhooks=[
            {"name": hook.get("name"), "failurePolicy": hook.get("failurePolicy", "Fail")}
            for hook in obj.get("webhooks") or []]) for obj in _items(self.reader.get(
                "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"))]}

    def _tracing(self):
        answer = self.reader.get("/apis/cilium.io/v1alpha1/tracingpolicies")
        return {"installed": answer is not None,
                "policies": [dict(_meta(obj), specDigest=_digest(obj.get("spec"))) for obj in _items(answer)]}

    def _image_policies(self):
        answer = self.reader.get("/apis/policy.sigstore.dev/v1beta1/clusterimagepolicies")
        policies = []
        for obj in _items(answer):
            spec = obj.get("spec") or {}
            authorities = []
            for authority in spec.get("authorities") or []:
                key = authority.get("key") or {}
                authorities.append({"name": authority.get("name"), "keyDigest": _digest(key.get("data")) if key else None,
                                    "hashAlgorithm": key.get("hashAlgorithm"), "keyless": "keyless" in authority})
            policies.append(dict(_meta(obj), mode=spec.get("mode", "enforce"),
                                 images=[item.get("glob") for item in spec.get("images") or []], authorities=authorities))
        namespaces = [dict(_meta(obj), included=((obj.get("metadata") or {}).get("labels") or {}).get(INCLUDE_LABEL)
                           == "true") for obj in _items(self.reader.get("/api/v1/namespaces"))]
        return {"installed": answer is not None, "policies": policies, "namespaces": namespaces}

    def _bench(self):
        label, value = BENCH_LABEL
        results = []
        for obj in _items(self.reader.get("/api/v1/configmaps", {"labelSelector": "%s=%s" % BENCH_LABEL})):
            if ((obj.get("metadata") or {}).get("labels") or {}).get(label) != value:
                continue  # an API that ignored the selector
            text = (obj.get("data") or {}).get("results.json")
            try:
                parsed = json.loads(text) if text else None
            except ValueError:
                parsed = None
            results.append(dict(_meta(obj), benchmark=((obj.get("metadata") or {}).get("labels") or {}).get(
                "petra.dev/benchmark"), results=parsed, readable=parsed is not None))
        return {"results": results}
