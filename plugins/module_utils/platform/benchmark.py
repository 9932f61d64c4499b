# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""kube-bench: a CronJob that runs the k3s CIS benchmark on a server node and keeps its JSON results.

Only a server is benchmarked (the pod runs on a control-plane node, once per schedule); agents are not. The pod
runs the benchmark in an init container from the kube-bench image, then keeps the results from a container of the
kubectl image: the kube-bench image carries no kubectl.

There is no upstream k3s job manifest: k3s keeps everything under /var/lib/rancher and /etc/rancher, runs the kubelet
inside its own process and logs to the journal, which the benchmark's checks read with journalctl. The results go to
the pod log and to the ConfigMap ``kube-bench-<node>`` in the kube-bench namespace, for the compliance step (applied
server-side: results can outgrow the last-applied annotation of a client-side apply).
Run it now with ``kubectl -n kube-bench create job --from=cronjob/kube-bench kube-bench-now``.
"""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.platform import catalog
from ansible_collections.petra.core.plugins.module_utils.platform.objects import k8s_object, resources

NAME = "kube-bench"
RESULTS = "/tmp/kube-bench/results.json"
# (volume name, host path, hostPath type) mounted read-only at the same path.
HOST_PATHS = (
    ("rancher-lib", "/var/lib/rancher", "Directory"),
    ("rancher-etc", "/etc/rancher", "Directory"),
    ("systemd-etc", "/etc/systemd", "Directory"),
    ("systemd-lib", "/usr/lib/systemd", "Directory"),
    ("journal-var", "/var/log/journal", "DirectoryOrCreate"),
    ("journal-run", "/run/log/journal", "DirectoryOrCreate"),
    ("machine-id", "/etc/machine-id", "File"),
)
# The benchmark itself, in the kube-bench image (its -dev variant: kube-bench runs every audit command of the
# benchmark through /bin/sh). Kubernetes expands $(BENCHMARK) from the container's environment.
BENCH_COMMAND = ["kube-bench", "run", "--benchmark", "$(BENCHMARK)", "--json", "--outputfile", RESULTS]
# Keeping the results, in the kubectl image (its -dev variant, for /bin/sh): the kube-bench image has no kubectl.
SCRIPT = """set -eu
cat %(results)s
kubectl create configmap "kube-bench-$NODE_NAME" --namespace "$NAMESPACE" --from-file=results.json=%(results)s \\
  --dry-run=client -o yaml > /tmp/kube-bench/configmap.yaml
kubectl apply --server-side --force-conflicts -f /tmp/kube-bench/configmap.yaml
kubectl label --namespace "$NAMESPACE" --overwrite configmap "kube-bench-$NODE_NAME" petra.dev/kube-bench=results \\
  "petra.dev/benchmark=$BENCHMARK"
""" % {"results": RESULTS}

# What the benchmark's policy checks (section 5) read through kubectl.
READ_RULES = [
    {"apiGroups": [""], "resources": ["namespaces", "pods", "serviceaccounts"], "verbs": ["get", "list"]},
    {"apiGroups": ["rbac.authorization.k8s.io"],
     "resources": ["roles", "rolebindings", "clusterroles", "clusterrolebindings"], "verbs": ["get", "list"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["get", "list"]},
]


def _pod_spec(settings, namespace):
    mounts = [{"name": name, "mountPath": path, "readOnly": True} for name, path, _type in HOST_PATHS]
    mounts.append({"name": "work", "mountPath": "/tmp/kube-bench"})
    volumes = [{"name": name, "hostPath": {"path": path, "type": kind}} for name, path, kind in HOST_PATHS]
    volumes.append({"name": "work", "emptyDir": {"sizeLimit": "64Mi"}})
    env = [
        {"name": "BENCHMARK", "value": settings.kube_bench_benchmark},
        {"name": "NAMESPACE", "value": namespace},
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "HOME", "value": "/tmp/kube-bench"},
    ]
    return {
        "serviceAccountName": NAME,
        "hostPID": True,
        "restartPolicy": "Never",
        "nodeSelector": {"node-role.kubernetes.io/control-plane": "true"},
        "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
                        {"key": "CriticalAddonsOnly", "operator": "Exists"}],
        # The benchmark runs first and writes its JSON into the shared emptyDir; the results step then keeps it.
        "initContainers": [{
            "name": NAME,
            "image": settings.image("kube-bench"),
            "command": list(BENCH_COMMAND),
            "env": env,
            "resources": resources("100m", "128Mi", "500m", "512Mi"),
            # Root reads the node's files; nothing more: no privilege, no capabilities, a read-only root.
            "securityContext": {"runAsUser": 0, "privileged": False, "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
            "volumeMounts": mounts,
        }],
        "containers": [{
            "name": "results",
            "image": settings.image("kubectl"),
            "command": ["/bin/sh", "-c", SCRIPT],
            "env": env,
            "resources": resources("50m", "64Mi", "250m", "128Mi"),
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "privileged": False,
                                "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]}},
            "volumeMounts": [{"name": "work", "mountPath": "/tmp/kube-bench"}],
        }],
        "volumes": volumes,
    }


def objects(settings):
    namespace = catalog.NAMESPACES["kube-bench"]
    labels = dict(settings.labels, **{"app.kubernetes.io/name": NAME})
    return [
        k8s_object("v1", "ServiceAccount", NAME, namespace=namespace, labels=labels),
        k8s_object("rbac.authorization.k8s.io/v1", "ClusterRole", "petra-kube-bench", labels=labels,
                   rules=READ_RULES),
        k8s_object("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "petra-kube-bench", labels=labels,
                   roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "petra-kube-bench"},
                   subjects=[{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}]),
        k8s_object("rbac.authorization.k8s.io/v1", "Role", "kube-bench-results", namespace=namespace, labels=labels,
                   rules=[{"apiGroups": [""], "resources": ["configmaps"],
                           "verbs": ["get", "create", "update", "patch"]}]),
        k8s_object("rbac.authorization.k8s.io/v1", "RoleBinding", "kube-bench-results", namespace=namespace,
                   labels=labels,
                   roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "kube-bench-results"},
                   subjects=[{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}]),
        k8s_object("batch/v1", "CronJob", NAME, namespace=namespace, labels=labels, spec={
            "schedule": settings.kube_bench_schedule,
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"metadata": {"labels": labels}, "spec": {
                "backoffLimit": 0,
                "template": {"metadata": {"labels": labels}, "spec": _pod_spec(settings, namespace)},
            }},
        }),
    ]
