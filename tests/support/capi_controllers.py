"""Stand-ins for the Cluster API and CAPA controllers (and the workload kubelets) against kmock, driven the way the
standalone tests play the kubelets: what a controller would write into status, and the deletions it would make.

The management cluster and the workload cluster are the same kmock: Machines get Nodes there, and the kubeconfig
CAPI core would write points back at it, so Petra's roll drains Nodes through the same API.
"""

from __future__ import annotations

import base64
import itertools
import threading

import requests

CAPI = "/apis/cluster.x-k8s.io/v1beta2/namespaces/%s/%s"
CAPA = "/apis/infrastructure.cluster.x-k8s.io/v1beta2/namespaces/%s/%s"
PLURALS = {"Cluster": CAPI % ("{ns}", "clusters"), "Machine": CAPI % ("{ns}", "machines"),
           "MachineDeployment": CAPI % ("{ns}", "machinedeployments"),
           "AWSCluster": CAPA % ("{ns}", "awsclusters"), "AWSMachine": CAPA % ("{ns}", "awsmachines"),
           "AWSMachineTemplate": CAPA % ("{ns}", "awsmachinetemplates"), "Secret": "/api/v1/namespaces/{ns}/secrets"}
HOOK = "pre-terminate.delete.hook.machine.cluster.x-k8s.io/"
MERGE = {"Content-Type": "application/merge-patch+json"}


def condition(kind, status, reason="Ready", message="as reported by the stand-in controller"):
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-01-01T00:00:00Z"}


class CapiControllers(threading.Thread):
    """Reconciles every few tens of milliseconds until stopped; ``error`` holds what broke it."""

    def __init__(self, kube, namespace, zone="us-gov-west-1a", first_address=10, failure=None, interval=0.03):
        super().__init__(daemon=True)
        self.url = kube.url
        self.kubeconfig = kube.kubeconfig
        self.ns = namespace
        self.zone = zone
        self.stop = threading.Event()
        self.error = None
        self.kubelets = True          # False: machines get instances but their Nodes never register
        self.clock = itertools.count(1)
        # Several controllers share one kmock (a fleet): each numbers its instances and Nodes from its own base.
        self.addresses = itertools.count(first_address)
        # (reason, message): CAPA cannot launch this namespace's instances, and says so in every Machine's conditions.
        self.failure = failure
        self.interval = interval
        self.hook_waits = set()       # Machines whose deletion waited for a pre-terminate hook
        self.deleted_machines = []
        self.provider_ids = {}        # Node name -> providerID

    # -- HTTP helpers ---------------------------------------------------------------------------------------------
    def path(self, kind, name=None):
        path = PLURALS[kind].format(ns=self.ns)
        return path + "/" + name if name else path

    def list(self, kind):
        answer = requests.get(self.url + self.path(kind), timeout=10)
        return answer.json().get("items", []) if answer.status_code == 200 else []

    def get(self, kind, name):
        answer = requests.get(self.url + self.path(kind, name), timeout=10)
        return answer.json() if answer.status_code == 200 else None

    def patch(self, kind, name, body):
        requests.patch(self.url + self.path(kind, name), json=body, headers=MERGE, timeout=10).raise_for_status()

    def delete(self, kind, name):
        requests.delete(self.url + self.path(kind, name), timeout=10)

    def create(self, kind, body):
        requests.post(self.url + self.path(kind), json=body, timeout=10).raise_for_status()

    def stamp(self):
        return "2026-01-01T00:00:00.%06dZ" % next(self.clock)

    # -- loop -----------------------------------------------------------------------------------------------------
    def run(self):
        try:
            while not self.stop.is_set():
                self.step()
                self.stop.wait(self.interval)
        except Exception as exc:  # reported by the test that started the thread
            self.error = exc

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.join(10)

    def step(self):
        # One listing of each kind per pass (the machine is shared with other test runs: keep requests few).
        self.seen = {kind: {item["metadata"]["name"]: item for item in self.list(kind)}
                     for kind in ("Cluster", "Machine", "AWSCluster", "MachineDeployment", "Secret")}
        for kind in ("Cluster", "Machine"):
            for item in self.seen[kind].values():
                if not item["metadata"].get("finalizers") and not item["metadata"].get("deletionTimestamp"):
                    # As the API server and CAPI do: a creation time, and a finalizer that makes deletion wait.
                    self.patch(kind, item["metadata"]["name"], {"metadata": {
                        "creationTimestamp": item["metadata"].get("creationTimestamp") or self.stamp(),
                        "finalizers": ["%s.cluster.x-k8s.io" % kind.lower()]}})
        for item in self.seen["AWSCluster"].values():
            if not (item["spec"].get("controlPlaneEndpoint") or {}).get("host"):
                host = "internal-%s-apiserver-0123456789.elb.us-gov-west-1.amazonaws.com" % item["metadata"]["name"]
                self.patch("AWSCluster", item["metadata"]["name"], {
                    "spec": {"controlPlaneEndpoint": {"host": host, "port": 6443}},
                    "status": {"ready": True, "conditions": [condition("Ready", "True")]}})
                item["status"] = {"ready": True}
        for item in self.seen["MachineDeployment"].values():
            if not item["metadata"].get("deletionTimestamp"):
                self.machine_deployment(item)
        for item in self.seen["Machine"].values():
            self.machine(item)
        for item in self.seen["Cluster"].values():
            self.cluster(item)

    # -- controllers ----------------------------------------------------------------------------------------------
    def cluster(self, item):
        name = item["metadata"]["name"]
        machines = [m for m in self.seen["Machine"].values()
                    if m["metadata"]["labels"].get("cluster.x-k8s.io/cluster-name") == name]
        if item["metadata"].get("deletionTimestamp"):
            for kind in ("MachineDeployment", "Machine"):
                for child in self.seen[kind].values():
                    if child["metadata"]["labels"].get("cluster.x-k8s.io/cluster-name") == name \
                            and not child["metadata"].get("deletionTimestamp"):
                        self.delete(kind, child["metadata"]["name"])
            if not machines:
                self.delete("AWSCluster", name)
                self.delete("Secret", "%s-kubeconfig" % name)
                self.patch("Cluster", name, {"metadata": {"finalizers": []}})
            return
        aws = self.seen["AWSCluster"].get(name)
        if aws and aws.get("status", {}).get("ready") and item.get("status", {}).get("phase") != "Provisioned":
            self.patch("Cluster", name, {"status": {"phase": "Provisioned", "initialization": {
                "infrastructureProvisioned": True}, "conditions": [condition("InfrastructureReady", "True")]}})
        if "%s-ca" % name in self.seen["Secret"] and "%s-kubeconfig" % name not in self.seen["Secret"]:
            with open(self.kubeconfig) as handle:
                config = handle.read()
            self.create("Secret", {"apiVersion": "v1", "kind": "Secret", "type": "cluster.x-k8s.io/secret",
                                   "metadata": {"name": "%s-kubeconfig" % name, "namespace": self.ns,
                                                "labels": {"cluster.x-k8s.io/cluster-name": name}},
                                   "data": {"value": base64.b64encode(config.encode()).decode()}})

    def machine_deployment(self, item):
        name = item["metadata"]["name"]
        template = item["spec"]["template"]
        signature = "%s|%s|%s" % (template["spec"]["bootstrap"]["dataSecretName"],
                                  template["spec"]["infrastructureRef"]["name"], template["spec"].get("version"))
        owned = [m for m in self.seen["Machine"].values()
                 if m["metadata"]["labels"].get("cluster.x-k8s.io/deployment-name") == name
                 and not m["metadata"].get("deletionTimestamp")]
        current = [m for m in owned if m["metadata"].get("annotations", {}).get("sim/template") == signature]
        old = [m for m in owned if m not in current]
        replicas = item["spec"].get("replicas", 1)
        ready = [m for m in current if m.get("status", {}).get("nodeRef")]
        if len(current) < replicas and len(owned) < replicas + 1:   # maxSurge 1
            infra = self.get("AWSMachineTemplate", template["spec"]["infrastructureRef"]["name"])
            machine = "%s-%d" % (name, next(self.clock))
            self.create("AWSMachine", {"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta2", "kind": "AWSMachine",
                                       "metadata": {"name": machine, "namespace": self.ns, "annotations": {
                                           "cluster.x-k8s.io/cloned-from-name": infra["metadata"]["name"]}},
                                       "spec": infra["spec"]["template"]["spec"]})
            labels = dict(template["metadata"]["labels"], **{"cluster.x-k8s.io/deployment-name": name})
            spec = dict(template["spec"], infrastructureRef=dict(template["spec"]["infrastructureRef"], kind="AWSMachine",
                                                                 name=machine))
            self.create("Machine", {"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Machine",
                                    "metadata": {"name": machine, "namespace": self.ns, "labels": labels,
                                                 "annotations": {"sim/template": signature}}, "spec": spec})
        elif old and len(ready) >= len(current) and len(current) >= min(replicas, 1):   # maxUnavailable 0
            self.delete("Machine", old[0]["metadata"]["name"])
        elif len(current) > replicas:
            self.delete("Machine", current[-1]["metadata"]["name"])
        if (item.get("status") or {}).get("readyReplicas") != len(ready):
            self.patch("MachineDeployment", name, {"status": {"replicas": len(owned), "readyReplicas": len(ready)}})

    def machine(self, item):
        meta = item["metadata"]
        name = meta["name"]
        status = item.get("status") or {}
        if meta.get("deletionTimestamp"):
            if any(key.startswith(HOOK) for key in meta.get("annotations") or {}):
                self.hook_waits.add(name)
                return
            node = (status.get("nodeRef") or {}).get("name")
            if node:
                requests.delete(self.url + "/api/v1/nodes/" + node, timeout=10)
            self.delete("AWSMachine", item["spec"]["infrastructureRef"]["name"])
            self.patch("Machine", name, {"metadata": {"finalizers": []}})
            self.deleted_machines.append(name)
            return
        secret = self.seen["Secret"].get(item["spec"]["bootstrap"]["dataSecretName"])
        if not secret or base64.b64decode(secret["data"].get("format", "")) != b"ignition":
            self.patch("Machine", name, {"status": {"conditions": [
                condition("BootstrapConfigReady", "False", "DataSecretNotFound", "no bootstrap data Secret")]}})
            return
        if self.failure and not status.get("addresses"):
            if not any(item.get("reason") == self.failure[0] for item in status.get("conditions") or []):
                self.patch("Machine", name, {"status": {"phase": "Failed", "conditions": [
                    condition("InfrastructureReady", "False", *self.failure)]}})
            return
        if not status.get("addresses"):
            index = next(self.addresses)
            address = "10.0.%d.%d" % divmod(index, 250)
            instance = "i-%017x" % index
            self.patch("AWSMachine", item["spec"]["infrastructureRef"]["name"], {
                "spec": {"providerID": "aws:///%s/%s" % (self.zone, instance), "instanceID": instance},
                "status": {"ready": True, "instanceState": "running"}})
            self.patch("Machine", name, {"spec": {"providerID": "aws:///%s/%s" % (self.zone, instance)}, "status": {
                "phase": "Provisioned", "addresses": [{"type": "InternalIP", "address": address}],
                "conditions": [condition("InfrastructureReady", "True")]}})
            return
        if self.kubelets and not status.get("nodeRef"):
            address = status["addresses"][0]["address"]
            node = "ip-" + address.replace(".", "-")
            provider = item["spec"].get("providerID")
            requests.post(self.url + "/api/v1/nodes", json={
                "apiVersion": "v1", "kind": "Node", "metadata": {"name": node},
                "spec": {"providerID": provider},
                "status": {"addresses": [{"type": "InternalIP", "address": address}],
                           "conditions": [{"type": "Ready", "status": "True"}]}}, timeout=10)
            self.provider_ids[node] = provider
            for pod, owner, namespace in (("web-" + node, "ReplicaSet", "apps"), ("cilium-" + node, "DaemonSet", "kube-system")):
                requests.post(self.url + "/api/v1/namespaces/%s/pods" % namespace, json={
                    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod, "namespace": namespace, "ownerReferences": [
                        {"apiVersion": "apps/v1", "kind": owner, "name": "x", "uid": "u"}]},
                    "spec": {"nodeName": node, "containers": [{"name": "c", "image": "registry.internal/app@sha256:" + "a" * 64}]},
                    "status": {"phase": "Running"}}, timeout=10)
            self.patch("Machine", name, {"status": {"phase": "Running", "nodeRef": {"name": node}, "conditions": [
                condition("InfrastructureReady", "True"), condition("NodeReady", "True")]}})
