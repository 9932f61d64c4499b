# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Cilium: the Helm values for k3s (kube-proxy replacement optional) and the cluster-wide network policies: default
deny for workload namespaces with DNS allowed, the opt-in allow-list examples, and the allow-lists given."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.platform.errors import PlatformError
from ansible_collections.petra.core.plugins.module_utils.platform.objects import k8s_object, resources

POLICY_API = "cilium.io/v2"
POLICY_KIND = "CiliumClusterwideNetworkPolicy"
NAMESPACE_LABEL = "k8s:io.kubernetes.pod.namespace"
# k3s keeps its CNI configuration and plugins apart from the kubelet defaults.
K3S_CNI_CONF = "/var/lib/rancher/k3s/agent/etc/cni/net.d"
K3S_CNI_BIN = "/var/lib/rancher/k3s/data/cni"

DNS_EGRESS = {
    "toEndpoints": [{"matchLabels": {NAMESPACE_LABEL: "kube-system", "k8s:k8s-app": "kube-dns"}}],
    "toPorts": [{"ports": [{"port": "53", "protocol": "UDP"}, {"port": "53", "protocol": "TCP"}]}],
}

# Allow-list examples, rendered so that workloads opt in with a pod label (docs/platform.md shows how to add more).
EXAMPLES = (
    ("petra-allow-kube-apiserver", "petra.dev/egress-kube-apiserver",
     "Pods labelled petra.dev/egress-kube-apiserver=true may call the Kubernetes API server (controllers, operators).",
     {"egress": [{"toEntities": ["kube-apiserver"], "toPorts": [{"ports": [{"port": "6443", "protocol": "TCP"}]}]}]}),
    ("petra-allow-ingress-from-cluster", "petra.dev/ingress-from-cluster",
     "Pods labelled petra.dev/ingress-from-cluster=true accept connections from any pod or node of the cluster.",
     {"ingress": [{"fromEntities": ["cluster"]}]}),
)


def _operator_image(settings):
    """The chart builds <repository>-generic<suffix>:<tag>; split the configured repository accordingly."""
    repository = settings.image_repository("cilium-operator")
    base, _sep, suffix = repository.rpartition("-generic")
    return {"repository": base, "suffix": suffix, "tag": settings.image_tag("cilium-operator"), "useDigest": False}


def values(settings):
    result = {
        "image": {"repository": settings.image_repository("cilium-agent"), "tag": settings.image_tag("cilium-agent"),
                  "useDigest": False},
        "operator": {"image": _operator_image(settings), "replicas": 1,
                     "resources": resources("50m", "128Mi", "500m", "256Mi")},
        # The agent image carries Envoy: no separate cilium-envoy DaemonSet, no further image.
        "envoy": {"enabled": False},
        "ipam": {"mode": "kubernetes"},
        "cni": {"confPath": K3S_CNI_CONF, "binPath": K3S_CNI_BIN},
        "kubeProxyReplacement": settings.kube_proxy_replacement,
        "policyEnforcementMode": "default",
        "hubble": {"enabled": True, "relay": {"enabled": False}, "ui": {"enabled": False}},
        "resources": resources("100m", "256Mi", "2", "1Gi"),
        "rollOutCiliumPods": True,
    }
    if settings.kube_proxy_replacement:
        result["k8sServiceHost"] = settings.api_server_host
        result["k8sServicePort"] = settings.api_server_port
    return result


def _policy(name, description, spec, labels):
    body = {"description": description}
    body.update(spec)
    return k8s_object(POLICY_API, POLICY_KIND, name, labels=labels, spec=body)


def default_deny(settings):
    """Every pod outside the exempt namespaces denies all traffic no policy allows; DNS to kube-dns is allowed.
    Exempt entries that are prefixes (``name*``) cannot be expressed in a selector and are left out here."""
    exempt = [name for name in settings.exempt_namespaces if not name.endswith("*")]
    return _policy("petra-default-deny", "Default deny for workload namespaces; DNS to kube-dns is allowed.", {
        "endpointSelector": {"matchExpressions": [{"key": NAMESPACE_LABEL, "operator": "NotIn", "values": exempt}]},
        "enableDefaultDeny": {"ingress": True, "egress": True},
        "egress": [DNS_EGRESS],
    }, settings.labels)


def allow_lists(settings):
    documents = [_policy(name, description, dict({"endpointSelector": {"matchLabels": {label: "true"}}}, **spec),
                         settings.labels)
                 for name, label, description, spec in EXAMPLES]
    seen = {document["metadata"]["name"] for document in documents} | {"petra-default-deny"}
    for index, item in enumerate(settings.network_allow):
        name, spec = item.get("name"), item.get("spec")
        if not name or not isinstance(spec, dict):
            raise PlatformError("network_allow[%d] needs a name and a spec (a CiliumClusterwideNetworkPolicy spec)"
                                % index)
        if name in seen:
            raise PlatformError("network_allow[%d]: the name %s is used twice" % (index, name))
        seen.add(name)
        documents.append(_policy(name, item.get("description") or "Allow-list given to petra.core.platform.", spec,
                                 settings.labels))
    return documents
