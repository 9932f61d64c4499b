# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Nodes during a rolling replacement: find by address, wait until Ready, cordon, drain through evictions, delete."""

from __future__ import annotations

import time

# client.py first: it imports kubernetes the cheap way (see schema.py).
from ansible_collections.petra.core.plugins.module_utils.k8s.client import KubernetesError, api_error, new_api_client

try:
    import kubernetes
except ImportError:  # pragma: no cover - new_api_client reports it
    pass

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def node_is_ready(node):
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def node_addresses(node):
    return {address.get("address") for address in (node.get("status") or {}).get("addresses") or []}


def pod_needs_eviction(pod):
    """Pods a drain must move: not DaemonSet-owned, not static (mirror) pods, not finished."""
    metadata = pod.get("metadata") or {}
    if MIRROR_ANNOTATION in (metadata.get("annotations") or {}):
        return False
    if any(owner.get("kind") == "DaemonSet" for owner in metadata.get("ownerReferences") or []):
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


class NodeOperations:
    """What a roll asks of the Kubernetes API; every wait is bounded and polls every ``poll_interval`` seconds."""

    def __init__(self, kubeconfig, context=None, request_timeout=30, poll_interval=5.0, clock=time.monotonic,
                 sleep=time.sleep):
        api_client = new_api_client(kubeconfig, context, purpose="drain and replace nodes")
        self._core = kubernetes.client.CoreV1Api(api_client)
        self._serialise = api_client.sanitize_for_serialization
        self._timeout = request_timeout
        self.poll_interval = poll_interval
        self._clock = clock
        self._sleep = sleep

    def _call(self, describe, method, *args, **kwargs):
        kwargs["_request_timeout"] = self._timeout
        try:
            return getattr(self._core, method)(*args, **kwargs)
        except kubernetes.client.ApiException:
            raise
        except Exception as exc:
            raise api_error(exc, describe)

    def _refused(self, describe, exc):
        return api_error(exc, describe, "Check the kubeconfig's RBAC permissions on nodes, pods and pods/eviction")

    def nodes(self):
        try:
            answer = self._call("list nodes", "list_node")
        except kubernetes.client.ApiException as exc:
            raise self._refused("list nodes", exc)
        return [self._serialise(node) for node in answer.items or []]

    def find(self, address):
        """The Node whose addresses include ``address`` (an instance's private IP), else None."""
        for node in self.nodes():
            if address in node_addresses(node):
                return node
        return None

    def wait_ready(self, address, timeout):
        deadline = self._clock() + timeout
        while True:
            node = self.find(address)
            if node is not None and node_is_ready(node):
                return node["metadata"]["name"]
            if self._clock() >= deadline:
                state = "has not registered" if node is None else "is registered as %s but not Ready" % node["metadata"]["name"]
                raise KubernetesError("the node at %s %s after %ds" % (address, state, timeout),
                                      hint="Read the instance's console output (Ignition and k3s logs) and the server URL "
                                           "it joins; re-run to resume once it is Ready", reason="node-not-ready")
            self._sleep(self.poll_interval)

    def cordon(self, name):
        try:
            self._call("cordon node %s" % name, "patch_node", name, {"spec": {"unschedulable": True}})
        except kubernetes.client.ApiException as exc:
            if exc.status != 404:
                raise self._refused("cordon node %s" % name, exc)

    def pods_on(self, name):
        selector = "spec.nodeName=%s" % name
        try:
            answer = self._call("list pods on %s" % name, "list_pod_for_all_namespaces", field_selector=selector)
        except kubernetes.client.ApiException as exc:
            raise self._refused("list pods on node %s" % name, exc)
        pods = [self._serialise(pod) for pod in answer.items or []]
        # A server that ignores the field selector must not make the drain evict other nodes' pods.
        return [pod for pod in pods if (pod.get("spec") or {}).get("nodeName") == name]

    def drain(self, name, timeout):
        """Cordon, then evict every movable pod, retrying those a PodDisruptionBudget holds back; the evicted pods."""
        self.cordon(name)
        deadline = self._clock() + timeout
        pending = {(pod["metadata"]["namespace"], pod["metadata"]["name"]) for pod in self.pods_on(name)
                   if pod_needs_eviction(pod)}
        evicted, blocked = [], {}
        while pending:
            for namespace, pod_name in sorted(pending):
                outcome = self._evict(namespace, pod_name)
                if outcome == "blocked":
                    blocked[(namespace, pod_name)] = True
                    continue
                pending.discard((namespace, pod_name))
                blocked.pop((namespace, pod_name), None)
                if outcome == "evicted":
                    evicted.append("%s/%s" % (namespace, pod_name))
            if not pending:
                break
            if self._clock() >= deadline:
                names = ", ".join("%s/%s" % item for item in sorted(pending))
                raise KubernetesError("draining node %s: eviction of %s is still refused after %ds (a PodDisruptionBudget "
                                      "allows no disruption)" % (name, names, timeout),
                                      hint="Scale the workload or relax its PodDisruptionBudget, then re-run: the roll "
                                           "resumes at this node", reason="drain-blocked", node=name,
                                      pods_blocked=sorted("%s/%s" % item for item in pending))
            self._sleep(self.poll_interval)
        self._wait_gone(name, deadline, timeout)
        return evicted

    def _evict(self, namespace, pod_name):
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod_name, "namespace": namespace}}
        try:
            self._call("evict pod %s/%s" % (namespace, pod_name), "create_namespaced_pod_eviction", pod_name, namespace,
                       body, _preload_content=False)
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return "gone"
            if exc.status == 429:
                return "blocked"
            raise self._refused("evict pod %s/%s" % (namespace, pod_name), exc)
        return "evicted"

    def _wait_gone(self, name, deadline, timeout):
        while True:
            left = [pod for pod in self.pods_on(name) if pod_needs_eviction(pod)]
            if not left:
                return
            if self._clock() >= deadline:
                raise KubernetesError("draining node %s: %s still running %ds after eviction" % (
                    name, ", ".join(sorted("%s/%s" % (p["metadata"]["namespace"], p["metadata"]["name"]) for p in left)),
                    timeout), hint="Check the pods' termination grace periods and finalizers, then re-run",
                    reason="drain-timeout", node=name)
            self._sleep(self.poll_interval)

    def wait_deleted(self, name, timeout):
        """Until the Node object is gone (its finalizers, such as k3s's etcd member removal, have run)."""
        deadline = self._clock() + timeout
        while True:
            try:
                self._call("read node %s" % name, "read_node", name)
            except kubernetes.client.ApiException as exc:
                if exc.status == 404:
                    return
                raise self._refused("read node %s" % name, exc)
            if self._clock() >= deadline:
                raise KubernetesError("node %s is still there %ds after it was deleted" % (name, timeout),
                                      hint="Check the Node's finalizers and the k3s servers' logs (etcd member removal), "
                                           "then re-run", reason="node-not-deleted", node=name)
            self._sleep(self.poll_interval)

    def delete(self, name):
        try:
            self._call("delete node %s" % name, "delete_node", name)
        except kubernetes.client.ApiException as exc:
            if exc.status != 404:
                raise self._refused("delete node %s" % name, exc)
