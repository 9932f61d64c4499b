# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The desired standalone cluster, from module parameters, and the names and tags that find its resources again.

Everything Petra creates is named ``petra-<cluster>-...`` and tagged ``petra:cluster``; instances carry their role,
the SHA-256 of their user data (the rendered Ignition) and their AMI, so the cluster's state is read from EC2 on
every run and an interrupted roll resumes where it stopped.
"""

from __future__ import annotations

import hashlib

from ansible_collections.petra.core.plugins.module_utils.flatcar.errors import ClusterError

TAG_CLUSTER = "petra:cluster"
TAG_ROLE = "petra:role"
TAG_CONFIG = "petra:config-sha256"
TAG_IMAGE = "petra:image"
TAG_BOOTSTRAP = "petra:bootstrap"
ROLES = ("server", "agent")


def sha256_text(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def validate_counts(servers, agents):
    if servers < 1 or servers % 2 == 0:
        raise ClusterError("servers.count is %d: embedded etcd needs 1 server or an odd number of at least 3" % servers,
                           hint="Use 1 for a lab, 3 or 5 for production (quorum survives 1 or 2 losses)")
    if agents < 0:
        raise ClusterError("agents.count is %d, below 0" % agents)


def tag_list(tags):
    return [{"Key": key, "Value": str(value)} for key, value in sorted(tags.items())]


class ClusterSpec:
    """The desired cluster, from validated module parameters."""

    def __init__(self, params):
        self.name = params["cluster_name"]
        self.image = params["image"]
        self.subnets = list(params.get("subnets") or [])
        self.api_cidrs = list(params.get("api_cidrs") or [])
        self.kms_key_id = params.get("kms_key_id")
        self.root_volume_size = params["root_volume_size"]
        self.instance_profile = params.get("instance_profile")
        self.hop_limit = params["metadata_hop_limit"]
        self.extra_tags = dict(params.get("tags") or {})
        self.node_s3_read = list(params.get("node_s3_read") or [])
        self.node_kms_key_arns = list(params.get("node_kms_key_arns") or [])
        self.groups = {}
        for role in ROLES:
            group = dict(params.get(role + "s") or {})
            group.setdefault("count", 0)
            self.groups[role] = group

    def validate(self):
        """What state=present needs on top of what state=absent needs (a name)."""
        validate_counts(self.groups["server"]["count"], self.groups["agent"]["count"])
        for role in ROLES:
            group = self.groups[role]
            if group["count"] and not group.get("user_data"):
                raise ClusterError("%ss.user_data is missing: the rendered Ignition of a %s is required" % (role, role),
                                   hint="Render it with petra.core.petra_flatcar state=rendered and pass its user_data")
            if group["count"] and not group.get("instance_type"):
                raise ClusterError("%ss.instance_type is missing" % role)
        if self.groups["server"]["count"] and not self.subnets:
            raise ClusterError("subnets is empty: nodes are spread over the given subnets")
        for uri in self.node_s3_read:
            if not uri.startswith("s3://") or len(uri) <= len("s3://"):
                raise ClusterError("node_s3_read entry %r is not s3://bucket[/prefix]" % uri)
        for key in self.node_kms_key_arns:
            if not key.startswith("arn:"):
                raise ClusterError("node_kms_key_arns entry %r is not a key ARN" % key,
                                   hint="IAM policies need the key's ARN (arn:<partition>:kms:<region>:<account>:key/<id>)")

    def prefix(self):
        return "petra-%s" % self.name

    def count(self, role):
        return self.groups[role]["count"]

    def desired_config(self, role, bootstrap=False):
        group = self.groups[role]
        if bootstrap and group.get("init_user_data"):
            return sha256_text(group["init_user_data"])
        return sha256_text(group.get("user_data") or "")

    def base_tags(self, role=None):
        tags = dict(self.extra_tags)
        tags[TAG_CLUSTER] = self.name
        if role:
            tags[TAG_ROLE] = role
        return tags
