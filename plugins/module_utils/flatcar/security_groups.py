# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The cluster's security groups: k3s ports between the nodes, etcd between the servers, the API from api_cidrs.

Rules are converged both ways: missing ones are authorised, ones Petra did not ask for are revoked.
"""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.flatcar.errors import ClusterError
from ansible_collections.petra.core.plugins.module_utils.flatcar.spec import TAG_CLUSTER, tag_list

# Between cluster nodes only (the security group refers to itself); the API port also from api_cidrs.
NODE_PORTS = (
    ("tcp", 6443, 6443, "k3s API server and supervisor"),
    ("tcp", 10250, 10250, "kubelet"),
    ("udp", 8472, 8472, "Cilium VXLAN"),
    ("tcp", 4240, 4240, "Cilium health"),
    ("tcp", 4244, 4244, "Hubble"),
)
# Between servers only (a group only servers carry, referring to itself).
SERVER_PORTS = (
    ("tcp", 2379, 2380, "embedded etcd"),
)
API_PORT = 6443


class SecurityGroups:
    """The ``nodes``, ``servers`` and ``api`` groups of one cluster, in the VPC of its subnets."""

    def __init__(self, run):
        self.run = run
        self.spec = run.spec

    def vpc_id(self):
        answer = self.run.aws("EC2 DescribeSubnets", self.run.ec2.describe_subnets, SubnetIds=self.spec.subnets)
        vpcs = {subnet["VpcId"] for subnet in answer.get("Subnets") or []}
        if len(vpcs) != 1:
            raise ClusterError("the subnets %s span %d VPCs; a cluster lives in one" % (
                ", ".join(self.spec.subnets), len(vpcs)))
        return vpcs.pop()

    def _find(self, name, vpc):
        answer = self.run.aws("EC2 DescribeSecurityGroups %s" % name, self.run.ec2.describe_security_groups,
                              Filters=[{"Name": "group-name", "Values": [name]}, {"Name": "vpc-id", "Values": [vpc]}])
        groups = answer.get("SecurityGroups") or []
        return groups[0] if groups else None

    def ensure(self, vpc):
        """The node group (k3s ports between members) and the API group (6443 from api_cidrs); their ids."""
        ids = {}
        for kind, description in (("nodes", "k3s traffic between the nodes of %s" % self.spec.name),
                                  ("servers", "etcd between the servers of %s" % self.spec.name),
                                  ("api", "Kubernetes API of %s from the allowed networks" % self.spec.name)):
            name = "%s-%s" % (self.spec.prefix(), kind)
            group = self._find(name, vpc)
            if group is None:
                self.run.record("create-security-group", name=name)
                if self.run.check_mode:
                    ids[kind] = None
                    continue
                answer = self.run.aws("EC2 CreateSecurityGroup %s" % name, self.run.ec2.create_security_group,
                                      GroupName=name, Description=description, VpcId=vpc, TagSpecifications=[{
                                          "ResourceType": "security-group",
                                          "Tags": tag_list(dict(self.spec.base_tags(), Name=name))}])
                group = {"GroupId": answer["GroupId"], "IpPermissions": []}
            ids[kind] = group["GroupId"]
            if ids[kind]:
                self._converge_rules(name, group, self._wanted_rules(kind, ids[kind]))
        return ids

    def _wanted_rules(self, kind, group_id):
        if kind in ("nodes", "servers"):
            ports = NODE_PORTS if kind == "nodes" else SERVER_PORTS
            return {(protocol, low, high, "sg", group_id): text for protocol, low, high, text in ports}
        return {("tcp", API_PORT, API_PORT, "cidr", cidr): "Kubernetes API" for cidr in self.spec.api_cidrs}

    def _converge_rules(self, name, group, wanted):
        present = {}
        for permission in group.get("IpPermissions") or []:
            key = (permission.get("IpProtocol"), permission.get("FromPort"), permission.get("ToPort"))
            for pair in permission.get("UserIdGroupPairs") or []:
                present[key + ("sg", pair["GroupId"])] = permission
            for ip_range in permission.get("IpRanges") or []:
                present[key + ("cidr", ip_range["CidrIp"])] = permission
        missing = [rule for rule in wanted if rule not in present]
        extra = [rule for rule in present if rule not in wanted]
        if missing:
            self.run.record("authorize-ingress", group=name, rules=[_rule_text(rule) for rule in missing])
            if not self.run.check_mode:
                self.run.aws("EC2 AuthorizeSecurityGroupIngress %s" % name, self.run.ec2.authorize_security_group_ingress,
                             GroupId=group["GroupId"], IpPermissions=[_permission(rule, wanted[rule]) for rule in missing])
        if extra:
            self.run.record("revoke-ingress", group=name, rules=[_rule_text(rule) for rule in extra])
            if not self.run.check_mode:
                self.run.aws("EC2 RevokeSecurityGroupIngress %s" % name, self.run.ec2.revoke_security_group_ingress,
                             GroupId=group["GroupId"], IpPermissions=[_permission(rule, None) for rule in extra])

    def delete(self):
        """Every group tagged for the cluster (instances must be gone first)."""
        answer = self.run.aws("EC2 DescribeSecurityGroups", self.run.ec2.describe_security_groups,
                              Filters=[{"Name": "tag:%s" % TAG_CLUSTER, "Values": [self.spec.name]}])
        groups = answer.get("SecurityGroups") or []
        # The node group refers to itself: drop the rules first, or the group cannot be deleted.
        for group in groups:
            if group.get("IpPermissions") and not self.run.check_mode:
                self.run.aws("EC2 RevokeSecurityGroupIngress %s" % group["GroupName"],
                             self.run.ec2.revoke_security_group_ingress,
                             GroupId=group["GroupId"], IpPermissions=group["IpPermissions"])
        for group in groups:
            self.run.record("delete-security-group", name=group["GroupName"])
            if not self.run.check_mode:
                self.run.aws("EC2 DeleteSecurityGroup %s" % group["GroupName"], self.run.ec2.delete_security_group,
                             GroupId=group["GroupId"])


def _rule_text(rule):
    protocol, low, high, kind, source = rule
    ports = str(low) if low == high else "%s-%s" % (low, high)
    return "%s/%s from %s" % (protocol, ports, source if kind == "cidr" else "group " + source)


def _permission(rule, description):
    protocol, low, high, kind, source = rule
    permission = {"IpProtocol": protocol, "FromPort": low, "ToPort": high}
    if kind == "sg":
        pair = {"GroupId": source}
        if description:
            pair["Description"] = description
        permission["UserIdGroupPairs"] = [pair]
    else:
        ip_range = {"CidrIp": source}
        if description:
            ip_range["Description"] = description
        permission["IpRanges"] = [ip_range]
    return permission
