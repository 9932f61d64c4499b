# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The Cluster API (``cluster.x-k8s.io/v1beta2``) and CAPA (``infrastructure.cluster.x-k8s.io/v1beta2``) objects
of one workload cluster, as plain dicts: no bootstrap or control-plane provider; Petra's Ignition is the bootstrap
data (docs/capi.md has the object graph).

Names that must change when content changes carry a content hash (bootstrap Secrets, the agents'
AWSMachineTemplate): a MachineDeployment rolls only when its template's references change, and CAPA refuses edits
to an AWSMachineTemplate, so new content is always a new object.
"""

from __future__ import annotations

import base64
import hashlib
import json

from ansible_collections.petra.core.plugins.module_utils.capi.spec import (
    CLUSTER_LABEL,
    ROLE_LABEL,
    SPEC_ANNOTATION,
    ignition_version,
)

CAPI = "cluster.x-k8s.io/v1beta2"
CAPA = "infrastructure.cluster.x-k8s.io/v1beta2"
CAPA_GROUP = "infrastructure.cluster.x-k8s.io"
SECRET_TYPE = "cluster.x-k8s.io/secret"
POOL_LABEL = "petra.dev/pool"
# Holds a server Machine's deletion after CAPI's drain, before its instance goes, until Petra has removed the
# etcd member (by deleting the Node); released by Petra, so nobody else's deletion can break etcd quorum.
PRE_TERMINATE_HOOK = "pre-terminate.delete.hook.machine.cluster.x-k8s.io/petra-etcd"
# Cilium between nodes (VXLAN, health, Hubble); CAPA's defaults are Calico's.
CILIUM_RULES = (("udp", 8472, "Cilium VXLAN"), ("tcp", 4240, "Cilium health"), ("tcp", 4244, "Hubble"))


def content_hash(data, length=10):
    if not isinstance(data, (bytes, str)):
        data = json.dumps(data, sort_keys=True, separators=(",", ":"))
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()[:length]


def _b64(text):
    return base64.b64encode(text.encode("utf-8") if isinstance(text, str) else text).decode("ascii")


def _meta(spec, name, labels, annotations=None, namespaced=True):
    meta = {"name": name, "labels": dict(labels)}
    if namespaced:
        meta["namespace"] = spec.namespace
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def namespace(spec):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(spec, spec.namespace, spec.labels(),
                                                                       namespaced=False)}


def cluster(spec):
    return {"apiVersion": CAPI, "kind": "Cluster", "metadata": _meta(spec, spec.name, spec.labels()),
            "spec": {"infrastructureRef": {"apiGroup": CAPA_GROUP, "kind": "AWSCluster", "name": spec.name}}}


def aws_cluster(spec):
    """Bring-your-own VPC: CAPA makes only the internal API load balancer and security groups, no bastion, no key."""
    rules = [{"description": description, "protocol": protocol, "fromPort": port, "toPort": port}
             for protocol, port, description in CILIUM_RULES]
    network = {"vpc": {"id": spec.vpc_id}, "subnets": [{"id": subnet} for subnet in spec.subnets],
               "nodePortIngressRuleCidrBlocks": list(spec.node_port_cidrs), "cni": {"cniIngressRules": rules}}
    if spec.security_group_overrides:
        network["securityGroupOverrides"] = dict(spec.security_group_overrides)
    balancer = {"loadBalancerType": "nlb", "scheme": "internal", "healthCheckProtocol": "TCP",
                # Isolated regions never resolve the LB name from the management cluster (CAPA #4975).
                "dnsResolutionCheck": "None", "preserveClientIP": False, "subnets": list(spec.subnets)}
    if spec.api_cidrs:
        balancer["ingressRules"] = [{"description": "Kubernetes API", "protocol": "tcp", "fromPort": 6443,
                                     "toPort": 6443, "cidrBlocks": list(spec.api_cidrs)}]
    body = {"region": spec.region, "partition": spec.partition, "sshKeyName": "", "bastion": {"enabled": False},
            "network": network, "controlPlaneLoadBalancer": balancer, "additionalTags": tags(spec)}
    if spec.identity:
        body["identityRef"] = dict(spec.identity)
    return {"apiVersion": CAPA, "kind": "AWSCluster", "metadata": _meta(spec, spec.name, spec.labels()), "spec": body}


def tags(spec):
    values = {str(key): str(value) for key, value in spec.extra_tags.items()}
    values["petra:cluster"] = spec.name
    return values


def aws_machine_spec(spec, role, ami, profile):
    """The hardened machine: AMI by id, IMDSv2 at one hop, no SSH key, encrypted gp3 root, the SSM-only profile,
    Petra's Ignition (or its hash-pinned S3 stub) as user data byte for byte."""
    return {
        "ami": {"id": ami},
        "instanceType": spec.groups[role]["instance_type"],
        "iamInstanceProfile": profile,
        "sshKeyName": "",
        "publicIP": False,
        "instanceMetadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required",
                                    "httpPutResponseHopLimit": spec.hop_limit, "instanceMetadataTags": "disabled"},
        "rootVolume": {"size": spec.root_volume_size, "type": "gp3", "encrypted": True,
                       "encryptionKey": spec.kms_key_id},
        "ignition": {"version": ignition_version(spec.params.get("ignition_version") or "3.3.0"),
                     "storageType": "UnencryptedUserData"},
        "additionalTags": dict(tags(spec), **{"petra:role": role}),
    }


def bootstrap_secret(spec, name, value, role):
    """Bootstrap data as the contract wants it (``value``), with ``format: ignition`` for CAPA."""
    return {"apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
            "metadata": _meta(spec, name, spec.labels(role)),
            "data": {"value": _b64(value), "format": _b64("ignition")}}


def ca_secret(spec, cert, key):
    """``<cluster>-ca``: CAPI core writes ``<cluster>-kubeconfig`` from it when no control-plane provider does."""
    return {"apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
            "metadata": _meta(spec, "%s-ca" % spec.name, spec.labels()),
            "data": {"tls.crt": _b64(cert), "tls.key": _b64(key)}}


def server_digest(machine_spec, secret_name, version):
    """What makes a server current: its AWSMachine spec, its bootstrap data and its version."""
    return content_hash({"aws": machine_spec, "bootstrap": secret_name, "version": version}, length=64)


def aws_machine(spec, name, machine_spec, bootstrap=False):
    return {"apiVersion": CAPA, "kind": "AWSMachine", "metadata": _meta(spec, name, spec.labels("server", bootstrap)),
            "spec": dict(machine_spec)}


def server_machine(spec, name, secret_name, digest, zone=None, bootstrap=False):
    body = {"clusterName": spec.name, "version": spec.version, "bootstrap": {"dataSecretName": secret_name},
            "infrastructureRef": {"apiGroup": CAPA_GROUP, "kind": "AWSMachine", "name": name}}
    if zone:
        body["failureDomain"] = zone
    annotations = {SPEC_ANNOTATION: digest, PRE_TERMINATE_HOOK: "petra"}
    return {"apiVersion": CAPI, "kind": "Machine",
            "metadata": _meta(spec, name, spec.labels("server", bootstrap), annotations), "spec": body}


def machine_template(spec, machine_spec):
    name = "%s-agent-%s" % (spec.name, content_hash(machine_spec))
    return {"apiVersion": CAPA, "kind": "AWSMachineTemplate", "metadata": _meta(spec, name, spec.labels("agent")),
            "spec": {"template": {"spec": dict(machine_spec)}}}


def agent_pools(spec):
    """(name, zone, replicas): one MachineDeployment per availability zone given, agents spread evenly."""
    count = spec.count("agent")
    if not spec.zones:
        return [("%s-agents" % spec.name, None, count)]
    pools = []
    for index, zone in enumerate(spec.zones):
        share = count // len(spec.zones) + (1 if index < count % len(spec.zones) else 0)
        pools.append(("%s-agents-%s" % (spec.name, zone), zone, share))
    return pools


def machine_deployment(spec, name, zone, replicas, template_name, secret_name):
    labels = dict(spec.labels("agent"), **{POOL_LABEL: name})
    template = {"clusterName": spec.name, "version": spec.version, "bootstrap": {"dataSecretName": secret_name},
                "infrastructureRef": {"apiGroup": CAPA_GROUP, "kind": "AWSMachineTemplate", "name": template_name}}
    if zone:
        template["failureDomain"] = zone
    return {"apiVersion": CAPI, "kind": "MachineDeployment", "metadata": _meta(spec, name, labels),
            "spec": {"clusterName": spec.name, "replicas": replicas,
                     "selector": {"matchLabels": {CLUSTER_LABEL: spec.name, POOL_LABEL: name}},
                     "template": {"metadata": {"labels": labels}, "spec": template},
                     # A new node joins before an old one is drained: capacity never drops during a roll.
                     "rollout": {"strategy": {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}}}


def machine_health_check(spec, node_startup_timeout):
    """Agents that stay NotReady are replaced (their MachineSet recreates them), never repaired in place; more than
    ``max_unhealthy`` at once looks like a network fault, not broken nodes, and stops remediation."""
    conditions = [{"type": "Ready", "status": status, "timeoutSeconds": spec.unhealthy_timeout}
                  for status in ("False", "Unknown")]
    return {"apiVersion": CAPI, "kind": "MachineHealthCheck",
            "metadata": _meta(spec, "%s-agents" % spec.name, spec.labels("agent")),
            "spec": {"clusterName": spec.name,
                     "selector": {"matchLabels": {CLUSTER_LABEL: spec.name, ROLE_LABEL: "agent"}},
                     "checks": {"nodeStartupTimeoutSeconds": node_startup_timeout,
                                "unhealthyNodeConditions": conditions},
                     "remediation": {"triggerIf": {"unhealthyLessThanOrEqualTo": spec.max_unhealthy}}}}
