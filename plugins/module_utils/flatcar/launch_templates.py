# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""One launch template per node role, ``petra-<cluster>-<role>``: the AMI, IMDSv2-only metadata, an encrypted root
volume, no key pair, the rendered Ignition as user data.

A new template version is made only when that content changes: its SHA-256 is the version's description.
"""

from __future__ import annotations

import base64
import hashlib
import json

from ansible_collections.petra.core.plugins.module_utils.flatcar.spec import tag_list


def canonical_hash(data):
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def metadata_options(hop_limit):
    """IMDSv2 only, ``hop_limit`` hops, no instance tags in metadata."""
    return {"HttpTokens": "required", "HttpPutResponseHopLimit": hop_limit, "HttpEndpoint": "enabled",
            "InstanceMetadataTags": "disabled"}


class LaunchTemplates:
    """The launch templates of one cluster."""

    def __init__(self, run):
        self.run = run
        self.spec = run.spec

    def name(self, role):
        return "%s-%s" % (self.spec.prefix(), role)

    def _find(self, name):
        answer = self.run.aws("EC2 DescribeLaunchTemplates %s" % name, self.run.ec2.describe_launch_templates,
                              missing_ok=True, LaunchTemplateNames=[name])
        return answer["LaunchTemplates"][0] if answer and answer.get("LaunchTemplates") else None

    def exists(self, role):
        return self._find(self.name(role)) is not None

    def data(self, role, image, security_groups, profile):
        group = self.spec.groups[role]
        ebs = {"VolumeSize": self.spec.root_volume_size, "VolumeType": "gp3", "Encrypted": True,
               "DeleteOnTermination": True}
        if self.spec.kms_key_id:
            ebs["KmsKeyId"] = self.spec.kms_key_id
        groups = [security_groups["nodes"]] + ([security_groups["servers"], security_groups["api"]]
                                               if role == "server" else [])
        tags = tag_list(self.spec.base_tags(role))
        # No KeyName: Flatcar nodes take no SSH keys; IMDSv2 only, one hop, no instance tags in metadata.
        return {
            "ImageId": image["ImageId"],
            "InstanceType": group["instance_type"],
            "IamInstanceProfile": {"Name": profile},
            "MetadataOptions": metadata_options(self.spec.hop_limit),
            "BlockDeviceMappings": [{"DeviceName": image.get("RootDeviceName") or "/dev/xvda", "Ebs": ebs}],
            "SecurityGroupIds": [gid for gid in groups if gid],
            "UserData": base64.b64encode(group["user_data"].encode("utf-8")).decode("ascii"),
            "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}, {"ResourceType": "volume", "Tags": tags}],
        }

    def ensure(self, role, data):
        """The launch template of a role at a version holding ``data``: (template id, version)."""
        run, name = self.run, self.name(role)
        description = "petra sha256:%s" % canonical_hash(data)
        template = self._find(name)
        if template is None:
            run.record("create-launch-template", name=name)
            if run.check_mode:
                return None, None
            answer = run.aws("EC2 CreateLaunchTemplate %s" % name, run.ec2.create_launch_template,
                             LaunchTemplateName=name, VersionDescription=description, LaunchTemplateData=data,
                             TagSpecifications=[{"ResourceType": "launch-template",
                                                 "Tags": tag_list(self.spec.base_tags(role))}])
            created = answer["LaunchTemplate"]
            return created["LaunchTemplateId"], str(created["LatestVersionNumber"])
        template_id = template["LaunchTemplateId"]
        latest = str(template["LatestVersionNumber"])
        versions = run.aws("EC2 DescribeLaunchTemplateVersions %s" % name, run.ec2.describe_launch_template_versions,
                           LaunchTemplateId=template_id, Versions=[latest])["LaunchTemplateVersions"]
        if versions and versions[0].get("VersionDescription") == description:
            return template_id, latest
        run.record("update-launch-template", name=name)
        if run.check_mode:
            return template_id, None
        answer = run.aws("EC2 CreateLaunchTemplateVersion %s" % name, run.ec2.create_launch_template_version,
                         LaunchTemplateId=template_id, VersionDescription=description, LaunchTemplateData=data)
        version = str(answer["LaunchTemplateVersion"]["VersionNumber"])
        run.aws("EC2 ModifyLaunchTemplate %s" % name, run.ec2.modify_launch_template,
                LaunchTemplateId=template_id, DefaultVersion=version)
        return template_id, version

    def delete(self, role):
        name = self.name(role)
        if self.exists(role):
            self.run.record("delete-launch-template", name=name)
            if not self.run.check_mode:
                self.run.aws("EC2 DeleteLaunchTemplate %s" % name, self.run.ec2.delete_launch_template,
                             LaunchTemplateName=name)
