# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The nodes' IAM identity: a role with SSM core access only, its instance profile, and the inline policy that lets
Ignition on the nodes read the S3 objects (and decrypt with the KMS keys) their configs name.

Not used when ``instance_profile`` names a profile managed elsewhere.
"""

from __future__ import annotations

import json
import re

from ansible_collections.petra.core.plugins.module_utils.flatcar.spec import tag_list

SSM_CORE_POLICY = "AmazonSSMManagedInstanceCore"
EC2_PRINCIPALS = {"aws-cn": "ec2.amazonaws.com.cn", "aws-iso": "ec2.c2s.ic.gov", "aws-iso-b": "ec2.sc2s.sgov.gov"}
READ_POLICY = "petra-node-read"
S3_URI = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^\s\"\\?#]+")


class NodeIdentity:
    """The role and instance profile ``petra-<cluster>-node``."""

    def __init__(self, run):
        self.run = run
        self.spec = run.spec
        self.name = "%s-node" % self.spec.prefix()

    def ensure(self):
        """The instance profile name the nodes launch with, created or brought up to date."""
        if self.spec.instance_profile:
            return self.spec.instance_profile
        run, name = self.run, self.name
        iam = run.client("iam")
        role_exists = run.aws("IAM GetRole %s" % name, iam.get_role, missing_ok=True, RoleName=name) is not None
        partition = run.partition()
        policy_arn = "arn:%s:iam::aws:policy/%s" % (partition, SSM_CORE_POLICY)
        if not role_exists:
            run.record("create-instance-profile", name=name, policies=[policy_arn])
            if run.check_mode:
                return name
            trust = {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "sts:AssumeRole",
                "Principal": {"Service": EC2_PRINCIPALS.get(partition, "ec2.amazonaws.com")}}]}
            tags = tag_list(self.spec.base_tags())
            run.aws("IAM CreateRole %s" % name, iam.create_role, RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                    Description="Flatcar k3s nodes of %s: SSM core access and the S3 objects their configs fetch" % self.spec.name, Tags=tags)
        attached = run.aws("IAM ListAttachedRolePolicies %s" % name, iam.list_attached_role_policies, RoleName=name)
        if policy_arn not in [item["PolicyArn"] for item in attached.get("AttachedPolicies") or []]:
            if role_exists:
                run.record("attach-role-policy", name=name, policy=policy_arn)
            if not run.check_mode:
                run.aws("IAM AttachRolePolicy %s" % name, iam.attach_role_policy, RoleName=name, PolicyArn=policy_arn)
        profile = (run.aws("IAM GetInstanceProfile %s" % name, iam.get_instance_profile, missing_ok=True,
                           InstanceProfileName=name) or {}).get("InstanceProfile")
        if profile is None:
            if role_exists:
                run.record("create-instance-profile", name=name)
            if not run.check_mode:
                run.aws("IAM CreateInstanceProfile %s" % name, iam.create_instance_profile,
                        InstanceProfileName=name, Tags=tag_list(self.spec.base_tags()))
        if profile is None or not profile.get("Roles"):
            if role_exists and profile is not None:
                run.record("add-role-to-instance-profile", name=name)
            if not run.check_mode:
                run.aws("IAM AddRoleToInstanceProfile %s" % name, iam.add_role_to_instance_profile,
                        InstanceProfileName=name, RoleName=name)
        if role_exists or not run.check_mode:
            self._converge_read_policy(iam, partition)
        return name

    def read_policy(self, partition):
        """What Ignition on the nodes must read: every s3:// object the configs name, the given prefixes, the keys."""
        objects = set()
        for group in self.spec.groups.values():
            for text in (group.get("user_data"), group.get("init_user_data")):
                objects.update(S3_URI.findall(text or ""))
        resources = sorted("arn:%s:s3:::%s" % (partition, uri[len("s3://"):]) for uri in objects)
        resources += sorted("arn:%s:s3:::%s*" % (partition, uri[len("s3://"):]) for uri in self.spec.node_s3_read)
        statements = []
        if resources:
            statements.append({"Sid": "ReadNodeArtifacts", "Effect": "Allow", "Action": "s3:GetObject",
                               "Resource": resources})
        if self.spec.node_kms_key_arns:
            statements.append({"Sid": "DecryptNodeArtifacts", "Effect": "Allow", "Action": "kms:Decrypt",
                               "Resource": sorted(self.spec.node_kms_key_arns)})
        return {"Version": "2012-10-17", "Statement": statements} if statements else None

    def _converge_read_policy(self, iam, partition):
        run, role = self.run, self.name
        wanted = self.read_policy(partition)
        current = (run.aws("IAM GetRolePolicy %s" % role, iam.get_role_policy, missing_ok=True, RoleName=role,
                           PolicyName=READ_POLICY) or {}).get("PolicyDocument")
        if isinstance(current, str):
            current = json.loads(current)
        if current == wanted:
            return
        if wanted is None:
            run.record("delete-role-policy", name=role, policy=READ_POLICY)
            if not run.check_mode:
                run.aws("IAM DeleteRolePolicy %s" % role, iam.delete_role_policy, RoleName=role, PolicyName=READ_POLICY)
            return
        run.record("put-role-policy", name=role, policy=READ_POLICY,
                   resources=[r for statement in wanted["Statement"] for r in statement["Resource"]])
        if not run.check_mode:
            run.aws("IAM PutRolePolicy %s" % role, iam.put_role_policy, RoleName=role, PolicyName=READ_POLICY,
                    PolicyDocument=json.dumps(wanted))

    def delete(self):
        """The profile, then the role with its attached and inline policies (nothing when a profile was given)."""
        if self.spec.instance_profile:
            return
        run, name = self.run, self.name
        iam = run.client("iam")
        profile = (run.aws("IAM GetInstanceProfile %s" % name, iam.get_instance_profile, missing_ok=True,
                           InstanceProfileName=name) or {}).get("InstanceProfile")
        if profile is not None:
            run.record("delete-instance-profile", name=name)
            if not run.check_mode:
                for role in profile.get("Roles") or []:
                    run.aws("IAM RemoveRoleFromInstanceProfile", iam.remove_role_from_instance_profile,
                            InstanceProfileName=name, RoleName=role["RoleName"])
                run.aws("IAM DeleteInstanceProfile %s" % name, iam.delete_instance_profile, InstanceProfileName=name)
        answer = run.aws("IAM ListAttachedRolePolicies %s" % name, iam.list_attached_role_policies,
                         missing_ok=True, RoleName=name)
        if answer is None:
            return
        attached = answer.get("AttachedPolicies") or []
        run.record("delete-role", name=name)
        if run.check_mode:
            return
        for policy in attached:
            run.aws("IAM DetachRolePolicy", iam.detach_role_policy, RoleName=name, PolicyArn=policy["PolicyArn"])
        inline = run.aws("IAM ListRolePolicies %s" % name, iam.list_role_policies, RoleName=name)
        for policy_name in inline.get("PolicyNames") or []:
            run.aws("IAM DeleteRolePolicy %s" % policy_name, iam.delete_role_policy, RoleName=name, PolicyName=policy_name)
        run.aws("IAM DeleteRole %s" % name, iam.delete_role, RoleName=name)
