# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""A standalone k3s cluster on EC2: launch templates, security groups, instance profile, node counts, rolling replacement.

Everything Petra creates is named ``petra-<cluster>-...`` and tagged ``petra:cluster``; instances carry their role,
the SHA-256 of their user data (the rendered Ignition) and their AMI, so the cluster's state is read from EC2 on
every run and an interrupted roll resumes where it stopped.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid

from ansible_collections.petra.core.plugins.module_utils.aws.client import error_code, parse_arn, wrap_client_error
from ansible_collections.petra.core.plugins.module_utils.errors import PetraError
from ansible_collections.petra.core.plugins.module_utils.k8s.nodes import node_is_ready

TAG_CLUSTER = "petra:cluster"
TAG_ROLE = "petra:role"
TAG_CONFIG = "petra:config-sha256"
TAG_IMAGE = "petra:image"
TAG_BOOTSTRAP = "petra:bootstrap"
ROLES = ("server", "agent")
LIVE_STATES = ["pending", "running", "stopping", "stopped"]
SSM_CORE_POLICY = "AmazonSSMManagedInstanceCore"
EC2_PRINCIPALS = {"aws-cn": "ec2.amazonaws.com.cn", "aws-iso": "ec2.c2s.ic.gov", "aws-iso-b": "ec2.sc2s.sgov.gov"}

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
READ_POLICY = "petra-node-read"
S3_URI = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^\s\"\\?#]+")
NO_ENTITY = ("NoSuchEntity",)
TEMPLATE_NOT_FOUND = ("InvalidLaunchTemplateName.NotFoundException", "InvalidLaunchTemplateId.NotFound")


class ClusterError(PetraError):
    """The cluster could not be brought to the requested state; details say where a roll stopped."""


def sha256_text(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_hash(data):
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def validate_counts(servers, agents):
    if servers < 1 or servers % 2 == 0:
        raise ClusterError("servers.count is %d: embedded etcd needs 1 server or an odd number of at least 3" % servers,
                           hint="Use 1 for a lab, 3 or 5 for production (quorum survives 1 or 2 losses)")
    if agents < 0:
        raise ClusterError("agents.count is %d, below 0" % agents)


def quorum(members):
    return members // 2 + 1


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


def tag_list(tags):
    return [{"Key": key, "Value": str(value)} for key, value in sorted(tags.items())]


class StandaloneCluster:
    """Converges a cluster's EC2 resources; ``nodes`` (k8s NodeOperations) is needed to drain and replace nodes."""

    def __init__(self, spec, connection, nodes=None, check_mode=False, wait_timeout=600, node_ready_timeout=900,
                 drain_timeout=600, update_strategy="rolling", sleep=time.sleep):
        self.spec = spec
        self.ec2 = connection.client("ec2")
        self._connection = connection
        self.nodes = nodes
        self.check_mode = check_mode
        self.wait_timeout = wait_timeout
        self.node_ready_timeout = node_ready_timeout
        self.drain_timeout = drain_timeout
        self.update_strategy = update_strategy
        self._sleep = sleep
        self.actions = []
        self.image_id = None
        self.partition = None

    # ---- AWS calls ---------------------------------------------------------------------------------
    def _aws(self, action, call, missing=(), **kwargs):
        """``call(**kwargs)``; None when AWS answers with one of the ``missing`` error codes, else a ClusterError."""
        try:
            return call(**kwargs)
        except Exception as exc:  # botocore raises many types; all are reported with their code
            if error_code(exc) in missing:
                return None
            wrapped = wrap_client_error(exc, action)
            raise ClusterError(wrapped.message, hint=wrapped.hint, reason="aws", code=error_code(exc))

    def _wait(self, state, instance_ids, hint=None):
        """Until every instance is ``running`` or ``terminated``, bounded by wait_timeout."""
        waiter = self.ec2.get_waiter("instance_%s" % state)
        try:
            waiter.wait(InstanceIds=instance_ids, WaiterConfig={"Delay": 5, "MaxAttempts": max(1, self.wait_timeout // 5)})
        except Exception as exc:  # botocore's WaiterError and ClientError
            raise ClusterError("instances %s did not reach %s within %ds: %s" % (
                ", ".join(instance_ids), state, self.wait_timeout, exc), reason="instance-timeout", hint=hint)

    def _record(self, action, **facts):
        entry = {"action": action}
        entry.update(facts)
        self.actions.append(entry)

    # ---- reading the current state -------------------------------------------------------------------
    def resolve_image(self):
        image = self.spec.image
        if image.startswith("resolve:ssm:"):
            name = image[len("resolve:ssm:"):]
            ssm = self._connection.client("ssm")
            answer = self._aws("SSM GetParameter %s" % name, ssm.get_parameter, Name=name)
            image = answer["Parameter"]["Value"]
        answer = self._aws("EC2 DescribeImages %s" % image, self.ec2.describe_images, ImageIds=[image])
        images = answer.get("Images") or []
        if not images:
            raise ClusterError("AMI %s was not found in this region" % image,
                               hint="Import Flatcar with state=imported, or give the AMI id of this region")
        self.image_id = image
        return images[0]

    def instances(self):
        filters = [{"Name": "tag:%s" % TAG_CLUSTER, "Values": [self.spec.name]},
                   {"Name": "instance-state-name", "Values": LIVE_STATES}]
        found = []
        paginator = self.ec2.get_paginator("describe_instances")
        try:
            for page in paginator.paginate(Filters=filters):
                for reservation in page.get("Reservations") or []:
                    found.extend(Instance(item) for item in reservation.get("Instances") or [])
        except Exception as exc:  # botocore raises many types; all are reported with their code
            raise ClusterError(wrap_client_error(exc, "EC2 DescribeInstances").message, reason="aws")
        return sorted(found, key=lambda item: (item.launched, item.id))

    def is_current(self, instance):
        return instance.image == self.image_id and instance.config == self.spec.desired_config(
            instance.role, instance.bootstrap)

    # ---- network, identity, templates ----------------------------------------------------------------
    def vpc_id(self):
        answer = self._aws("EC2 DescribeSubnets", self.ec2.describe_subnets, SubnetIds=self.spec.subnets)
        vpcs = {subnet["VpcId"] for subnet in answer.get("Subnets") or []}
        if len(vpcs) != 1:
            raise ClusterError("the subnets %s span %d VPCs; a cluster lives in one" % (
                ", ".join(self.spec.subnets), len(vpcs)))
        return vpcs.pop()

    def _find_group(self, name, vpc):
        answer = self._aws("EC2 DescribeSecurityGroups %s" % name, self.ec2.describe_security_groups,
                           Filters=[{"Name": "group-name", "Values": [name]}, {"Name": "vpc-id", "Values": [vpc]}])
        groups = answer.get("SecurityGroups") or []
        return groups[0] if groups else None

    def ensure_security_groups(self, vpc):
        """The node group (k3s ports between members) and the API group (6443 from api_cidrs); their ids."""
        ids = {}
        for kind, description in (("nodes", "k3s traffic between the nodes of %s" % self.spec.name),
                                  ("servers", "etcd between the servers of %s" % self.spec.name),
                                  ("api", "Kubernetes API of %s from the allowed networks" % self.spec.name)):
            name = "%s-%s" % (self.spec.prefix(), kind)
            group = self._find_group(name, vpc)
            if group is None:
                self._record("create-security-group", name=name)
                if self.check_mode:
                    ids[kind] = None
                    continue
                answer = self._aws("EC2 CreateSecurityGroup %s" % name, self.ec2.create_security_group,
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
            self._record("authorize-ingress", group=name, rules=[_rule_text(rule) for rule in missing])
            if not self.check_mode:
                self._aws("EC2 AuthorizeSecurityGroupIngress %s" % name, self.ec2.authorize_security_group_ingress,
                          GroupId=group["GroupId"], IpPermissions=[_permission(rule, wanted[rule]) for rule in missing])
        if extra:
            self._record("revoke-ingress", group=name, rules=[_rule_text(rule) for rule in extra])
            if not self.check_mode:
                self._aws("EC2 RevokeSecurityGroupIngress %s" % name, self.ec2.revoke_security_group_ingress,
                          GroupId=group["GroupId"], IpPermissions=[_permission(rule, None) for rule in extra])

    def ensure_instance_profile(self):
        if self.spec.instance_profile:
            return self.spec.instance_profile
        iam = self._connection.client("iam")
        name = "%s-node" % self.spec.prefix()
        role_exists = self._aws("IAM GetRole %s" % name, iam.get_role, missing=NO_ENTITY, RoleName=name) is not None
        partition = self.aws_partition()
        policy_arn = "arn:%s:iam::aws:policy/%s" % (partition, SSM_CORE_POLICY)
        if not role_exists:
            self._record("create-instance-profile", name=name, policies=[policy_arn])
            if self.check_mode:
                return name
            trust = {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "sts:AssumeRole",
                "Principal": {"Service": EC2_PRINCIPALS.get(partition, "ec2.amazonaws.com")}}]}
            tags = tag_list(self.spec.base_tags())
            self._aws("IAM CreateRole %s" % name, iam.create_role, RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                      Description="Flatcar k3s nodes of %s: SSM core access and the S3 objects their configs fetch" % self.spec.name, Tags=tags)
        attached = self._aws("IAM ListAttachedRolePolicies %s" % name, iam.list_attached_role_policies, RoleName=name)
        if policy_arn not in [item["PolicyArn"] for item in attached.get("AttachedPolicies") or []]:
            if role_exists:
                self._record("attach-role-policy", name=name, policy=policy_arn)
            if not self.check_mode:
                self._aws("IAM AttachRolePolicy %s" % name, iam.attach_role_policy, RoleName=name, PolicyArn=policy_arn)
        profile = (self._aws("IAM GetInstanceProfile %s" % name, iam.get_instance_profile, missing=NO_ENTITY,
                             InstanceProfileName=name) or {}).get("InstanceProfile")
        if profile is None:
            if role_exists:
                self._record("create-instance-profile", name=name)
            if not self.check_mode:
                self._aws("IAM CreateInstanceProfile %s" % name, iam.create_instance_profile,
                          InstanceProfileName=name, Tags=tag_list(self.spec.base_tags()))
        if profile is None or not profile.get("Roles"):
            if role_exists and profile is not None:
                self._record("add-role-to-instance-profile", name=name)
            if not self.check_mode:
                self._aws("IAM AddRoleToInstanceProfile %s" % name, iam.add_role_to_instance_profile,
                          InstanceProfileName=name, RoleName=name)
        if role_exists or not self.check_mode:
            self._converge_read_policy(iam, name, partition)
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

    def _converge_read_policy(self, iam, role, partition):
        wanted = self.read_policy(partition)
        current = (self._aws("IAM GetRolePolicy %s" % role, iam.get_role_policy, missing=NO_ENTITY, RoleName=role,
                             PolicyName=READ_POLICY) or {}).get("PolicyDocument")
        if isinstance(current, str):
            current = json.loads(current)
        if current == wanted:
            return
        if wanted is None:
            self._record("delete-role-policy", name=role, policy=READ_POLICY)
            if not self.check_mode:
                self._aws("IAM DeleteRolePolicy %s" % role, iam.delete_role_policy, RoleName=role, PolicyName=READ_POLICY)
            return
        self._record("put-role-policy", name=role, policy=READ_POLICY,
                     resources=[r for statement in wanted["Statement"] for r in statement["Resource"]])
        if not self.check_mode:
            self._aws("IAM PutRolePolicy %s" % role, iam.put_role_policy, RoleName=role, PolicyName=READ_POLICY,
                      PolicyDocument=json.dumps(wanted))

    def aws_partition(self):
        if self.partition is None:
            sts = self._connection.client("sts")
            identity = self._aws("STS GetCallerIdentity", sts.get_caller_identity)
            self.partition = parse_arn(identity["Arn"])["partition"]
        return self.partition

    def metadata_options(self):
        return {"HttpTokens": "required", "HttpPutResponseHopLimit": self.spec.hop_limit, "HttpEndpoint": "enabled",
                "InstanceMetadataTags": "disabled"}

    def template_data(self, role, image, security_groups, profile):
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
            "MetadataOptions": self.metadata_options(),
            "BlockDeviceMappings": [{"DeviceName": image.get("RootDeviceName") or "/dev/xvda", "Ebs": ebs}],
            "SecurityGroupIds": [gid for gid in groups if gid],
            "UserData": base64.b64encode(group["user_data"].encode("utf-8")).decode("ascii"),
            "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}, {"ResourceType": "volume", "Tags": tags}],
        }

    def ensure_template(self, role, data):
        """The launch template of a role at a version holding ``data``: (template id, version)."""
        name = "%s-%s" % (self.spec.prefix(), role)
        description = "petra sha256:%s" % canonical_hash(data)
        template = self._template(name)
        if template is None:
            self._record("create-launch-template", name=name)
            if self.check_mode:
                return None, None
            answer = self._aws("EC2 CreateLaunchTemplate %s" % name, self.ec2.create_launch_template,
                               LaunchTemplateName=name, VersionDescription=description, LaunchTemplateData=data,
                               TagSpecifications=[{"ResourceType": "launch-template",
                                                   "Tags": tag_list(self.spec.base_tags(role))}])
            created = answer["LaunchTemplate"]
            return created["LaunchTemplateId"], str(created["LatestVersionNumber"])
        template_id = template["LaunchTemplateId"]
        latest = str(template["LatestVersionNumber"])
        versions = self._aws("EC2 DescribeLaunchTemplateVersions %s" % name, self.ec2.describe_launch_template_versions,
                             LaunchTemplateId=template_id, Versions=[latest])["LaunchTemplateVersions"]
        if versions and versions[0].get("VersionDescription") == description:
            return template_id, latest
        self._record("update-launch-template", name=name)
        if self.check_mode:
            return template_id, None
        answer = self._aws("EC2 CreateLaunchTemplateVersion %s" % name, self.ec2.create_launch_template_version,
                           LaunchTemplateId=template_id, VersionDescription=description, LaunchTemplateData=data)
        version = str(answer["LaunchTemplateVersion"]["VersionNumber"])
        self._aws("EC2 ModifyLaunchTemplate %s" % name, self.ec2.modify_launch_template,
                  LaunchTemplateId=template_id, DefaultVersion=version)
        return template_id, version

    # ---- instances -----------------------------------------------------------------------------------
    def pick_subnet(self, role, instances):
        used = {subnet: 0 for subnet in self.spec.subnets}
        for instance in instances:
            if instance.role == role and instance.subnet in used:
                used[instance.subnet] += 1
        return min(self.spec.subnets, key=lambda subnet: (used[subnet], self.spec.subnets.index(subnet)))

    def launch(self, role, template, instances, bootstrap=False):
        subnet = self.pick_subnet(role, instances)
        config = self.spec.desired_config(role, bootstrap)
        facts = {"role": role, "subnet_id": subnet, "config_sha256": config}
        if bootstrap:
            facts["bootstrap"] = True
        if self.check_mode or template[0] is None:
            self._record("launch", **facts)
            return None
        tags = self.spec.base_tags(role)
        tags.update({TAG_CONFIG: config, TAG_IMAGE: self.image_id, "Name": "%s-%s" % (self.spec.prefix(), role)})
        request = {"LaunchTemplate": {"LaunchTemplateId": template[0], "Version": template[1]}, "SubnetId": subnet,
                   "MinCount": 1, "MaxCount": 1, "ClientToken": uuid.uuid4().hex,
                   # Also in the request itself, so that no launch template version can weaken them.
                   "MetadataOptions": self.metadata_options(),
                   "TagSpecifications": [{"ResourceType": "instance", "Tags": tag_list(tags)}]}
        if bootstrap:
            tags[TAG_BOOTSTRAP] = "true"
            request["TagSpecifications"][0]["Tags"] = tag_list(tags)
            # botocore base64-encodes RunInstances UserData itself (not LaunchTemplateData.UserData).
            request["UserData"] = self.spec.groups[role]["init_user_data"]
        answer = self._run_instances(request)
        instance = Instance(answer["Instances"][0])
        facts["instance_id"] = instance.id
        self._record("launch", **facts)
        return instance

    def _run_instances(self, request):
        # A new instance profile takes a few seconds to become usable by EC2.
        deadline = time.monotonic() + 60
        while True:
            try:
                return self.ec2.run_instances(**request)
            except Exception as exc:  # botocore raises many types; all are reported with their code
                profile_not_ready = error_code(exc) == "InvalidParameterValue" and "iamInstanceProfile" in str(exc)
                if profile_not_ready and time.monotonic() < deadline:
                    self._sleep(5)
                    continue
                raise ClusterError(wrap_client_error(exc, "EC2 RunInstances (%s)" % request["SubnetId"]).message,
                                   reason="aws", code=error_code(exc))

    def wait_running(self, instance_ids):
        if self.check_mode or not instance_ids:
            return {}
        self._wait("running", instance_ids, hint="Check the EC2 console for capacity or quota errors, then re-run")
        answer = self._aws("EC2 DescribeInstances", self.ec2.describe_instances, InstanceIds=instance_ids)
        return {item["InstanceId"]: Instance(item) for reservation in answer["Reservations"]
                for item in reservation["Instances"]}

    def terminate(self, instance, reason):
        self._record("terminate", instance_id=instance.id, role=instance.role, why=reason)
        if self.check_mode:
            return
        self._aws("EC2 TerminateInstances %s" % instance.id, self.ec2.terminate_instances, InstanceIds=[instance.id])
        self._wait("terminated", [instance.id])

    # ---- converging --------------------------------------------------------------------------------
    def present(self):
        self.spec.validate()
        image = self.resolve_image()
        vpc = self.vpc_id()
        groups = self.ensure_security_groups(vpc)
        profile = self.ensure_instance_profile()
        templates = {}
        for role in ROLES:
            if self.spec.groups[role]["count"] or self._template_exists(role):
                data = self.template_data(role, image, groups, profile) if self.spec.groups[role]["count"] else None
                templates[role] = self.ensure_template(role, data) if data else None
        instances = self.instances()
        outdated = [item for item in instances if not self.is_current(item)]
        # Check mode shows the plan even without a kubeconfig; a real roll cannot drain without one.
        if outdated and self.update_strategy == "rolling" and self.nodes is None and not self.check_mode:
            raise ClusterError("%d node(s) run an older AMI or config (%s) and replacing them needs the cluster's "
                               "kubeconfig to drain them" % (len(outdated), ", ".join(i.id for i in outdated)),
                               hint="Give kubeconfig, or update_strategy=none to only report them", reason="kubeconfig-needed",
                               outdated=[item.summary() for item in outdated])
        self._scale_up(templates, instances)
        if self.update_strategy == "rolling":
            self._roll("server", templates.get("server"))
            self._roll("agent", templates.get("agent"))
        for role in ROLES:
            self._scale_down(role)
        final = self.instances() if not self.check_mode else instances
        return {"instances": [item.summary() for item in final], "image_id": self.image_id,
                "security_groups": groups, "instance_profile": profile,
                "launch_templates": {role: {"id": value[0], "version": value[1]}
                                     for role, value in templates.items() if value},
                "outdated": [item.summary() for item in final if not self.is_current(item)]}

    def _template(self, name):
        answer = self._aws("EC2 DescribeLaunchTemplates %s" % name, self.ec2.describe_launch_templates,
                           missing=TEMPLATE_NOT_FOUND, LaunchTemplateNames=[name])
        return answer["LaunchTemplates"][0] if answer and answer.get("LaunchTemplates") else None

    def _template_exists(self, role):
        return self._template("%s-%s" % (self.spec.prefix(), role)) is not None

    def _scale_up(self, templates, instances):
        """Launch every missing node at once (a new cluster, or more nodes): no drain, no wait for Ready."""
        launched = []
        current = list(instances)
        for role in ROLES:
            have = [item for item in current if item.role == role]
            missing = self.spec.groups[role]["count"] - len(have)
            for index in range(max(0, missing)):
                bootstrap = role == "server" and not have and index == 0 and bool(self.spec.groups[role].get("init_user_data"))
                instance = self.launch(role, templates[role], current, bootstrap=bootstrap)
                if instance is not None:
                    current.append(instance)
                    launched.append(instance.id)
        self.wait_running(launched)

    def _roll(self, role, template):
        """Replace outdated nodes one at a time; servers surge (new one Ready first) so etcd never loses quorum."""
        count = self.spec.groups[role]["count"]
        while True:
            instances = [item for item in self.instances() if item.role == role]
            outdated = [item for item in instances if not self.is_current(item)]
            if not outdated or count == 0:
                return
            if self.check_mode:
                for old in outdated:
                    self._record("replace", instance_id=old.id, role=role)
                return
            old = outdated[0]
            if role == "server":
                if len(instances) <= count:
                    # A new etcd member is added only while every member there is healthy.
                    self._check_all_ready(old, instances)
                    self._replace_step("launch", old, lambda: self._launch_ready(role, template, instances))
                    continue
                # A surge server from an interrupted run must be Ready before any old server leaves.
                for item in instances:
                    if self.is_current(item):
                        self._replace_step("wait-ready", item, lambda item=item: self._wait_ready(item))
                self._check_quorum(old, instances)
                self._replace_step("drain", old, lambda: self._retire(old, "outdated"))
            else:
                self._replace_step("drain", old, lambda: self._retire(old, "outdated"))
                self._replace_step("launch", old, lambda: self._launch_ready(role, template,
                                                                             [i for i in instances if i.id != old.id]))

    def _replace_step(self, step, old, action):
        try:
            action()
        except PetraError as exc:
            details = dict(exc.details)
            details.update(stopped_at={"instance_id": old.id, "role": old.role, "step": step}, actions=self.actions)
            raise ClusterError("rolling replacement stopped at %s %s (%s step): %s" % (old.role, old.id, step, exc.message),
                               hint=exc.hint or "Fix the cause and re-run: the roll resumes from the nodes still outdated",
                               **details)

    def _launch_ready(self, role, template, instances):
        instance = self.launch(role, template, instances)
        running = self.wait_running([instance.id])[instance.id]
        name = self.nodes.wait_ready(running.address, self.node_ready_timeout)
        self.actions[-1]["node"] = name

    def _retire(self, instance, why):
        """Drain the instance's Node (evictions honour PodDisruptionBudgets), delete it, terminate the instance."""
        node = self.nodes.find(instance.address) if self.nodes is not None and instance.address else None
        if node is not None:
            name = node["metadata"]["name"]
            evicted = self.nodes.drain(name, self.drain_timeout)
            self._record("drain", instance_id=instance.id, node=name, evicted=evicted)
            # Deleting the Node lets k3s remove the server's etcd member; the instance goes only once the Node has.
            self.nodes.delete(name)
            self.nodes.wait_deleted(name, self.drain_timeout)
        self.terminate(instance, why)

    def _wait_ready(self, instance):
        self.nodes.wait_ready(instance.address, self.node_ready_timeout)

    def _ready_servers(self, servers):
        ready = []
        for item in servers:
            node = self.nodes.find(item.address) if item.address else None
            if node is not None and node_is_ready(node):
                ready.append(item)
        return ready

    def _check_all_ready(self, outdated, instances):
        servers = [item for item in instances if item.role == "server"]
        ready = self._ready_servers(servers)
        if len(ready) < len(servers):
            raise ClusterError("adding a server while %d of %d servers are not Ready (%s) could leave etcd without "
                               "quorum" % (len(servers) - len(ready), len(servers), ", ".join(
                                   item.id for item in servers if item not in ready)), reason="quorum",
                               hint="Bring every server back to Ready before re-running the roll",
                               stopped_at={"instance_id": outdated.id, "role": "server", "step": "quorum-check"},
                               actions=self.actions)

    def _check_quorum(self, leaving, instances):
        servers = [item for item in instances if item.role == "server"]
        remaining = [item for item in servers if item.id != leaving.id]
        ready = len(self._ready_servers(remaining))
        needed = quorum(len(remaining))
        if ready < needed:
            raise ClusterError("removing server %s would leave %d Ready server(s) of %d, below the etcd quorum of %d" % (
                leaving.id, ready, len(remaining), needed), reason="quorum",
                hint="Bring the other servers back to Ready before re-running the roll",
                stopped_at={"instance_id": leaving.id, "role": "server", "step": "quorum-check"}, actions=self.actions)

    def _scale_down(self, role):
        count = self.spec.groups[role]["count"]
        instances = [item for item in self.instances() if item.role == role]
        extra = len(instances) - count
        if extra <= 0:
            return
        # Outdated first, then the newest: long-lived nodes keep their place.
        newest_first = sorted(instances, key=lambda item: (item.launched, item.id), reverse=True)
        victims = sorted(newest_first, key=self.is_current)[:extra]
        if self.check_mode:
            for victim in victims:
                self._record("terminate", instance_id=victim.id, role=role, why="scale-down")
            return
        if self.nodes is None:
            raise ClusterError("%d %s node(s) are above the requested count and removing them needs the kubeconfig "
                               "to drain them first" % (extra, role), hint="Give kubeconfig", reason="kubeconfig-needed")
        for victim in victims:
            if role == "server":
                self._check_quorum(victim, instances)
            self._replace_step("drain", victim, lambda victim=victim: self._retire(victim, "scale-down"))
            instances = [item for item in instances if item.id != victim.id]

    # ---- absent -------------------------------------------------------------------------------------
    def absent(self):
        instances = self.instances()
        for instance in instances:
            self._record("terminate", instance_id=instance.id, role=instance.role, why="absent")
        if instances and not self.check_mode:
            ids = [item.id for item in instances]
            self._aws("EC2 TerminateInstances", self.ec2.terminate_instances, InstanceIds=ids)
            self._wait("terminated", ids)
        for role in ROLES:
            name = "%s-%s" % (self.spec.prefix(), role)
            if self._template_exists(role):
                self._record("delete-launch-template", name=name)
                if not self.check_mode:
                    self._aws("EC2 DeleteLaunchTemplate %s" % name, self.ec2.delete_launch_template, LaunchTemplateName=name)
        self._delete_security_groups()
        if not self.spec.instance_profile:
            self._delete_instance_profile()
        return {"instances": [item.summary() for item in instances]}

    def _delete_security_groups(self):
        answer = self._aws("EC2 DescribeSecurityGroups", self.ec2.describe_security_groups,
                           Filters=[{"Name": "tag:%s" % TAG_CLUSTER, "Values": [self.spec.name]}])
        groups = answer.get("SecurityGroups") or []
        # The node group refers to itself: drop the rules first, or the group cannot be deleted.
        for group in groups:
            if group.get("IpPermissions") and not self.check_mode:
                self._aws("EC2 RevokeSecurityGroupIngress %s" % group["GroupName"], self.ec2.revoke_security_group_ingress,
                          GroupId=group["GroupId"], IpPermissions=group["IpPermissions"])
        for group in groups:
            self._record("delete-security-group", name=group["GroupName"])
            if not self.check_mode:
                self._aws("EC2 DeleteSecurityGroup %s" % group["GroupName"], self.ec2.delete_security_group,
                          GroupId=group["GroupId"])

    def _delete_instance_profile(self):
        iam = self._connection.client("iam")
        name = "%s-node" % self.spec.prefix()
        profile = (self._aws("IAM GetInstanceProfile %s" % name, iam.get_instance_profile, missing=NO_ENTITY,
                             InstanceProfileName=name) or {}).get("InstanceProfile")
        if profile is not None:
            self._record("delete-instance-profile", name=name)
            if not self.check_mode:
                for role in profile.get("Roles") or []:
                    self._aws("IAM RemoveRoleFromInstanceProfile", iam.remove_role_from_instance_profile,
                              InstanceProfileName=name, RoleName=role["RoleName"])
                self._aws("IAM DeleteInstanceProfile %s" % name, iam.delete_instance_profile, InstanceProfileName=name)
        answer = self._aws("IAM ListAttachedRolePolicies %s" % name, iam.list_attached_role_policies,
                           missing=NO_ENTITY, RoleName=name)
        if answer is None:
            return
        attached = answer.get("AttachedPolicies") or []
        self._record("delete-role", name=name)
        if self.check_mode:
            return
        for policy in attached:
            self._aws("IAM DetachRolePolicy", iam.detach_role_policy, RoleName=name, PolicyArn=policy["PolicyArn"])
        inline = self._aws("IAM ListRolePolicies %s" % name, iam.list_role_policies, RoleName=name)
        for policy_name in inline.get("PolicyNames") or []:
            self._aws("IAM DeleteRolePolicy %s" % policy_name, iam.delete_role_policy, RoleName=name, PolicyName=policy_name)
        self._aws("IAM DeleteRole %s" % name, iam.delete_role, RoleName=name)


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
