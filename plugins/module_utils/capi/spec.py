# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The desired workload cluster in Cluster API mode, from module parameters: the same node options as standalone
mode (counts, instance types, AMI, KMS key, profile, hop limit, the k3s and Ignition options) plus where it lives
on the management cluster (``capi``) and the VPC it reuses.

Every object carries ``cluster.x-k8s.io/cluster-name`` (Cluster API finds a cluster's descendants by it) and
``app.kubernetes.io/managed-by: petra`` (what ``absent`` may delete once the Cluster is gone).
"""

from __future__ import annotations

import re

from ansible_collections.petra.core.plugins.module_utils.capi.errors import CapiError
from ansible_collections.petra.core.plugins.module_utils.flatcar.spec import validate_counts

CLUSTER_LABEL = "cluster.x-k8s.io/cluster-name"
CONTROL_PLANE_LABEL = "cluster.x-k8s.io/control-plane"
MANAGED_LABEL = "app.kubernetes.io/managed-by"
ROLE_LABEL = "petra.dev/role"
BOOTSTRAP_LABEL = "petra.dev/bootstrap"
SPEC_ANNOTATION = "petra.dev/spec-sha256"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Longest generated suffix: "-bootstrap-server-init-" plus 10 hex digits; names stay within 63 characters.
MAX_NAME = 30
REGION_PARTITIONS = (("us-gov-", "aws-us-gov"), ("cn-", "aws-cn"), ("us-isob-", "aws-iso-b"), ("us-iso-", "aws-iso"),
                     ("eu-isoe-", "aws-iso-e"), ("us-isof-", "aws-iso-f"))


def partition_of(region):
    """The AWS partition of a region, as CAPA derives it (GovCloud and the isolated regions included)."""
    for prefix, partition in REGION_PARTITIONS:
        if region.startswith(prefix):
            return partition
    return "aws"


def ignition_version(version):
    """CAPA names Ignition versions major.minor ("3.3"); Petra's renderer full versions ("3.3.0")."""
    return ".".join(version.split(".")[:2])


class CapiSpec:
    """The desired workload cluster; ``validate()`` for state=present."""

    def __init__(self, params):
        capi = dict(params.get("capi") or {})
        self.params = params
        self.name = params["cluster_name"]
        self.namespace = capi.get("namespace") or self.name
        self.region = params.get("region") or ""
        self.partition = partition_of(self.region)
        self.vpc_id = capi.get("vpc_id")
        self.subnets = list(params.get("subnets") or [])
        self.zones = list(capi.get("availability_zones") or [])
        self.version = capi.get("kubernetes_version")
        self.api_cidrs = list(params.get("api_cidrs") or [])
        self.node_port_cidrs = list(capi.get("node_port_cidrs") or []) or self.api_cidrs
        self.security_group_overrides = dict(capi.get("security_group_overrides") or {})
        self.identity = capi.get("identity_ref")
        self.storage = capi.get("ignition_storage") or "user-data"
        self.config_s3_prefix = (capi.get("config_s3_prefix") or "").rstrip("/")
        self.unhealthy_timeout = capi.get("unhealthy_timeout", 300)
        self.max_unhealthy = capi.get("max_unhealthy") or "40%"
        self.kubeconfig_dest = capi.get("kubeconfig_dest")
        self.wait = capi.get("wait", True)
        self.image = params.get("image")
        self.kms_key_id = params.get("kms_key_id")
        self.root_volume_size = params.get("root_volume_size") or 20
        self.instance_profile = params.get("instance_profile")
        self.hop_limit = params.get("metadata_hop_limit") or 1
        self.extra_tags = dict(params.get("tags") or {})
        self.groups = {role: dict(params.get(role + "s") or {}) for role in ("server", "agent")}
        for group in self.groups.values():
            group.setdefault("count", 0)

    def count(self, role):
        return self.groups[role].get("count") or 0

    def validate_name(self):
        if len(self.name) > MAX_NAME or not _DNS_LABEL.match(self.name):
            raise CapiError("cluster_name %r is not a DNS label of at most %d characters" % (self.name, MAX_NAME),
                            hint="Cluster API object names derive from it (<name>-bootstrap-server-init-<hash>)",
                            reason="capi-spec")
        if not _DNS_LABEL.match(self.namespace):
            raise CapiError("capi.namespace %r is not a DNS label" % self.namespace, reason="capi-spec")

    def validate(self):
        self.validate_name()
        validate_counts(self.count("server"), self.count("agent"))
        missing = [name for name, value in (("region", self.region), ("capi.vpc_id", self.vpc_id),
                                            ("capi.kubernetes_version", self.version), ("image", self.image),
                                            ("kms_key_id", self.kms_key_id))
                   if not value]
        missing += ["%ss.instance_type" % role for role in ("server", "agent")
                    if self.count(role) and not self.groups[role].get("instance_type")]
        if not self.subnets:
            missing.append("subnets")
        if missing:
            raise CapiError("provisioner=capi needs %s" % ", ".join(missing), reason="capi-spec",
                            hint="The AWSCluster reuses an existing VPC and its private subnets; root volumes are "
                                 "encrypted with kms_key_id")
        if not self.image.startswith(("ami-", "resolve:ssm:")):
            raise CapiError("image %r is neither an AMI id nor resolve:ssm:<parameter>" % self.image, reason="capi-spec")
        if not self.node_port_cidrs:
            raise CapiError("neither capi.node_port_cidrs nor api_cidrs is set: CAPA would open the NodePort range to "
                            "0.0.0.0/0", hint="Give the networks that may reach NodePorts (e.g. the VPC CIDR)",
                            reason="capi-spec")
        if self.storage == "s3" and not self.config_s3_prefix.startswith("s3://"):
            raise CapiError("capi.ignition_storage=s3 needs capi.config_s3_prefix (s3://bucket/prefix)",
                            reason="capi-spec")
        if self.hop_limit != 1:
            raise CapiError("metadata_hop_limit is %d: workload nodes keep IMDS at one hop (no pod reaches it)"
                            % self.hop_limit, reason="capi-spec",
                            hint="Only management-cluster nodes whose CAPA pods use the instance role need 2")

    def labels(self, role=None, bootstrap=False):
        labels = {CLUSTER_LABEL: self.name, MANAGED_LABEL: "petra"}
        if role:
            labels[ROLE_LABEL] = role
        if role == "server":
            labels[CONTROL_PLANE_LABEL] = ""
        if bootstrap:
            labels[BOOTSTRAP_LABEL] = "true"
        return labels
