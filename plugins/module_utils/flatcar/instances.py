# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The cluster's EC2 instances: the AMI they should run, what a run knows of each, launching one into the
least-used subnet from its role's launch template, waiting for them, terminating them."""

from __future__ import annotations

import time
import uuid

from ansible_collections.petra.core.plugins.module_utils.aws.errors import error_code
from ansible_collections.petra.core.plugins.module_utils.flatcar.errors import ClusterError
from ansible_collections.petra.core.plugins.module_utils.flatcar.launch_templates import metadata_options
from ansible_collections.petra.core.plugins.module_utils.flatcar.spec import (
    TAG_BOOTSTRAP,
    TAG_CLUSTER,
    TAG_CONFIG,
    TAG_IMAGE,
    TAG_ROLE,
    tag_list,
)

LIVE_STATES = ["pending", "running", "stopping", "stopped"]
PROFILE_PROPAGATION = 60


class Instance:
    """What a run needs to know of one EC2 instance of the cluster."""

    __slots__ = ("id", "role", "subnet", "address", "config", "image", "bootstrap", "state", "launched")

    def __init__(self, description):
        tags = {tag["Key"]: tag["Value"] for tag in description.get("Tags") or []}
        self.id = description["InstanceId"]
        self.role = tags.get(TAG_ROLE)
        self.subnet = description.get("SubnetId")
        self.address = description.get("PrivateIpAddress")
        self.config = tags.get(TAG_CONFIG)
        self.image = description.get("ImageId")
        self.bootstrap = tags.get(TAG_BOOTSTRAP) == "true"
        self.state = (description.get("State") or {}).get("Name")
        launched = description.get("LaunchTime")
        self.launched = launched.isoformat() if hasattr(launched, "isoformat") else str(launched or "")

    def summary(self):
        return {"instance_id": self.id, "role": self.role, "subnet_id": self.subnet, "private_ip": self.address,
                "image_id": self.image, "config_sha256": self.config, "bootstrap": self.bootstrap, "state": self.state}


class Instances:
    """The instances tagged for one cluster; ``resolve_image`` first, so ``is_current`` knows the AMI."""

    def __init__(self, run):
        self.run = run
        self.spec = run.spec
        self.image_id = None

    def resolve_image(self):
        image = self.spec.image
        if image.startswith("resolve:ssm:"):
            name = image[len("resolve:ssm:"):]
            ssm = self.run.client("ssm")
            answer = self.run.aws("SSM GetParameter %s" % name, ssm.get_parameter, Name=name)
            image = answer["Parameter"]["Value"]
        answer = self.run.aws("EC2 DescribeImages %s" % image, self.run.ec2.describe_images, ImageIds=[image])
        images = answer.get("Images") or []
        if not images:
            raise ClusterError("AMI %s was not found in this region" % image,
                               hint="Import Flatcar with state=imported, or give the AMI id of this region")
        self.image_id = image
        return images[0]

    def live(self):
        """The cluster's live instances, oldest first."""
        filters = [{"Name": "tag:%s" % TAG_CLUSTER, "Values": [self.spec.name]},
                   {"Name": "instance-state-name", "Values": LIVE_STATES}]
        found = []
        paginator = self.run.ec2.get_paginator("describe_instances")
        with self.run.aws.errors("EC2 DescribeInstances"):
            for page in paginator.paginate(Filters=filters):
                for reservation in page.get("Reservations") or []:
                    found.extend(Instance(item) for item in reservation.get("Instances") or [])
        return sorted(found, key=lambda item: (item.launched, item.id))

    def is_current(self, instance):
        return instance.image == self.image_id and instance.config == self.spec.desired_config(
            instance.role, instance.bootstrap)

    def pick_subnet(self, role, instances):
        used = {subnet: 0 for subnet in self.spec.subnets}
        for instance in instances:
            if instance.role == role and instance.subnet in used:
                used[instance.subnet] += 1
        return min(self.spec.subnets, key=lambda subnet: (used[subnet], self.spec.subnets.index(subnet)))

    def launch(self, role, template, instances, bootstrap=False):
        """One instance of ``role`` from ``template`` (id, version); None in check mode."""
        subnet = self.pick_subnet(role, instances)
        config = self.spec.desired_config(role, bootstrap)
        facts = {"role": role, "subnet_id": subnet, "config_sha256": config}
        if bootstrap:
            facts["bootstrap"] = True
        if self.run.check_mode or template[0] is None:
            self.run.record("launch", **facts)
            return None
        tags = self.spec.base_tags(role)
        tags.update({TAG_CONFIG: config, TAG_IMAGE: self.image_id, "Name": "%s-%s" % (self.spec.prefix(), role)})
        request = {"LaunchTemplate": {"LaunchTemplateId": template[0], "Version": template[1]}, "SubnetId": subnet,
                   "MinCount": 1, "MaxCount": 1, "ClientToken": uuid.uuid4().hex,
                   # Also in the request itself, so that no launch template version can weaken them.
                   "MetadataOptions": metadata_options(self.spec.hop_limit),
                   "TagSpecifications": [{"ResourceType": "instance", "Tags": tag_list(tags)}]}
        if bootstrap:
            tags[TAG_BOOTSTRAP] = "true"
            request["TagSpecifications"][0]["Tags"] = tag_list(tags)
            # botocore base64-encodes RunInstances UserData itself (not LaunchTemplateData.UserData).
            request["UserData"] = self.spec.groups[role]["init_user_data"]
        answer = self._run_instances(request)
        instance = Instance(answer["Instances"][0])
        facts["instance_id"] = instance.id
        self.run.record("launch", **facts)
        return instance

    def _run_instances(self, request):
        # A new instance profile takes a few seconds to become usable by EC2.
        deadline = time.monotonic() + PROFILE_PROPAGATION
        with self.run.aws.errors("EC2 RunInstances (%s)" % request["SubnetId"]):
            while True:
                try:
                    return self.run.ec2.run_instances(**request)
                except Exception as exc:  # botocore raises many types; the handler around reports them
                    profile_not_ready = error_code(exc) == "InvalidParameterValue" and "iamInstanceProfile" in str(exc)
                    if not profile_not_ready or time.monotonic() >= deadline:
                        raise
                    self.run.sleep(5)
        return None

    def wait_running(self, instance_ids):
        """The instances, described again once running (they have their private address then)."""
        if self.run.check_mode or not instance_ids:
            return {}
        self.run.wait("running", instance_ids, hint="Check the EC2 console for capacity or quota errors, then re-run")
        answer = self.run.aws("EC2 DescribeInstances", self.run.ec2.describe_instances, InstanceIds=instance_ids)
        return {item["InstanceId"]: Instance(item) for reservation in answer["Reservations"]
                for item in reservation["Instances"]}

    def terminate(self, instance, reason):
        self.run.record("terminate", instance_id=instance.id, role=instance.role, why=reason)
        if self.run.check_mode:
            return
        self.run.aws("EC2 TerminateInstances %s" % instance.id, self.run.ec2.terminate_instances,
                     InstanceIds=[instance.id])
        self.run.wait("terminated", [instance.id])

    def terminate_all(self, instances, reason):
        """Every one of ``instances`` at once (state=absent: no drain, the whole cluster goes)."""
        for instance in instances:
            self.run.record("terminate", instance_id=instance.id, role=instance.role, why=reason)
        if instances and not self.run.check_mode:
            ids = [item.id for item in instances]
            self.run.aws("EC2 TerminateInstances", self.run.ec2.terminate_instances, InstanceIds=ids)
            self.run.wait("terminated", ids)
