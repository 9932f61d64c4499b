# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""What AWS says about one cluster, read only, through the collection's one AWS path (``aws/client.py``): launch
template versions, instances and their user data, security groups, AMIs, the node role's policies, CloudTrail.

Boto3's ``ResponseMetadata`` (request ids, dates) is transport, not evidence, and is dropped. User data carries the
k3s token: it never reaches an evidence file (its SHA-256 stands in for it; ``collect_nodes`` keeps a redacted copy).
"""

from __future__ import annotations

import base64
import hashlib

from ansible_collections.petra.core.plugins.module_utils.aws.errors import AWSCalls
from ansible_collections.petra.core.plugins.module_utils.evidence.errors import EvidenceError
from ansible_collections.petra.core.plugins.module_utils.flatcar.spec import ROLES, TAG_CLUSTER

LIVE_STATES = ("pending", "running", "stopping", "stopped")
SERVICES = ("ec2", "iam", "cloudtrail", "s3")


def _clean(answer):
    answer = dict(answer or {})
    answer.pop("ResponseMetadata", None)
    return answer


def user_data_digest(encoded):
    """SHA-256 of base64 user data as the instance receives it (decoded)."""
    return hashlib.sha256(base64.b64decode(encoded or "")).hexdigest()


class AWSCollector:
    """The AWS evidence of the cluster ``name``; ``connection`` is an ``aws.client.AWSConnection``."""

    def __init__(self, store, connection, name):
        self.store = store
        self.name = name
        self.calls = AWSCalls(EvidenceError, hint="The assessment needs read access (Describe*/Get*/List*) to this",
                              reason="aws")
        self.clients = {service: connection.client(service) for service in SERVICES}
        self.user_data = {}  # instance id -> decoded user data bytes (in memory only)
        self.instances = []
        self.templates = []

    def collect(self):
        store = self.store
        store.save("aws/endpoints.json", "The AWS endpoint of every client the collector used",
                   {service: client.meta.endpoint_url for service, client in sorted(self.clients.items())})
        store.gather("aws/ec2-instances.json", "EC2 instances of the cluster", self._instances)
        store.gather("aws/ec2-launch-template-versions.json", "Launch template versions of the cluster (user data "
                     "replaced by its SHA-256)", self._templates)
        store.gather("aws/ec2-security-groups.json", "Security groups of the cluster", self._security_groups)
        store.gather("aws/ec2-images.json", "AMIs the instances and templates use", self._images)
        store.gather("aws/iam-node-roles.json", "Instance profiles of the templates, their roles and policies",
                     self._roles)
        store.gather("aws/cloudtrail-trails.json", "CloudTrail trails with status and event selectors", self._trails)
        return self

    def _instances(self):
        ec2, found = self.clients["ec2"], []
        with self.calls.errors("EC2 DescribeInstances for cluster %s" % self.name):
            for page in ec2.get_paginator("describe_instances").paginate(Filters=[
                    {"Name": "tag:" + TAG_CLUSTER, "Values": [self.name]},
                    {"Name": "instance-state-name", "Values": list(LIVE_STATES)}]):
                for reservation in page.get("Reservations") or []:
                    found.extend(reservation.get("Instances") or [])
        found.sort(key=lambda item: item["InstanceId"])
        for item in found:
            answer = self.calls("EC2 DescribeInstanceAttribute userData %s" % item["InstanceId"],
                                ec2.describe_instance_attribute, InstanceId=item["InstanceId"], Attribute="userData")
            encoded = ((answer or {}).get("UserData") or {}).get("Value") or ""
            self.user_data[item["InstanceId"]] = base64.b64decode(encoded)
            item["UserDataSha256"] = user_data_digest(encoded)
        self.instances = found
        return {"cluster": self.name, "Instances": found}

    def _templates(self):
        ec2, versions = self.clients["ec2"], []
        for role in ROLES:
            name = "petra-%s-%s" % (self.name, role)
            answer = self.calls("EC2 DescribeLaunchTemplateVersions %s" % name,
                                ec2.describe_launch_template_versions, missing_ok=True, LaunchTemplateName=name,
                                Versions=["$Latest", "$Default"])
            seen = set()
            for version in (answer or {}).get("LaunchTemplateVersions") or []:
                if version["VersionNumber"] in seen:
                    continue
                seen.add(version["VersionNumber"])
                data = version.get("LaunchTemplateData") or {}
                if "UserData" in data:
                    data["UserData"] = {"sha256": user_data_digest(data["UserData"]), "redacted": True}
                versions.append(dict(version, Role=role))
        self.templates = versions
        return {"cluster": self.name, "LaunchTemplateVersions": versions}

    def _security_groups(self):
        answer = self.calls("EC2 DescribeSecurityGroups for cluster %s" % self.name,
                            self.clients["ec2"].describe_security_groups,
                            Filters=[{"Name": "tag:" + TAG_CLUSTER, "Values": [self.name]}])
        return {"cluster": self.name, "SecurityGroups": sorted(_clean(answer).get("SecurityGroups") or [],
                                                               key=lambda group: group["GroupName"])}

    def _images(self):
        ids = {item.get("ImageId") for item in self.instances}
        ids |= {(version.get("LaunchTemplateData") or {}).get("ImageId") for version in self.templates}
        ids.discard(None)
        if not ids:
            return {"Images": []}
        answer = self.calls("EC2 DescribeImages %s" % ", ".join(sorted(ids)), self.clients["ec2"].describe_images,
                            ImageIds=sorted(ids))
        return {"Images": sorted(_clean(answer).get("Images") or [], key=lambda image: image["ImageId"])}

    def _roles(self):
        iam, profiles = self.clients["iam"], {}
        for version in self.templates:
            reference = (version.get("LaunchTemplateData") or {}).get("IamInstanceProfile") or {}
            name = reference.get("Name") or (reference.get("Arn") or "").rsplit("/", 1)[-1]
            if not name or name in profiles:
                continue
            profile = self.calls("IAM GetInstanceProfile %s" % name, iam.get_instance_profile, missing_ok=True,
                                 InstanceProfileName=name)
            roles = []
            for role in ((profile or {}).get("InstanceProfile") or {}).get("Roles") or []:
                role_name = role["RoleName"]
                attached = self.calls("IAM ListAttachedRolePolicies %s" % role_name, iam.list_attached_role_policies,
                                      RoleName=role_name)
                inline = self.calls("IAM ListRolePolicies %s" % role_name, iam.list_role_policies, RoleName=role_name)
                documents = {policy: self.calls("IAM GetRolePolicy %s %s" % (role_name, policy), iam.get_role_policy,
                                                RoleName=role_name, PolicyName=policy)["PolicyDocument"]
                             for policy in inline.get("PolicyNames") or []}
                roles.append({"RoleName": role_name, "Arn": role.get("Arn"),
                              "AttachedPolicies": attached.get("AttachedPolicies") or [],
                              "InlinePolicies": documents})
            profiles[name] = {"found": profile is not None, "Roles": roles}
        return {"InstanceProfiles": profiles}

    def _trails(self):
        cloudtrail, trails = self.clients["cloudtrail"], []
        answer = self.calls("CloudTrail DescribeTrails", cloudtrail.describe_trails, includeShadowTrails=True)
        for trail in answer.get("trailList") or []:
            arn = trail.get("TrailARN") or trail["Name"]
            status = _clean(self.calls("CloudTrail GetTrailStatus %s" % arn, cloudtrail.get_trail_status, Name=arn))
            selectors = _clean(self.calls("CloudTrail GetEventSelectors %s" % arn, cloudtrail.get_event_selectors,
                                          TrailName=arn))
            trails.append({"Trail": trail, "Status": status, "EventSelectors": selectors})
        return {"Trails": sorted(trails, key=lambda item: item["Trail"].get("TrailARN") or "")}
