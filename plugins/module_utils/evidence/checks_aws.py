# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Checks over the AWS evidence: launch templates and instances (no key pair, IMDSv2, encrypted root, launched as
rendered), security groups (no SSH, only k3s's ports, the API only from the allowed networks, etcd only between
servers), the node role (SSM core and Petra's read policy only), the AMIs' source digests and CloudTrail."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.evidence.checks import check, tags_of
from ansible_collections.petra.core.plugins.module_utils.flatcar.ami_import import TAG_SOURCE
from ansible_collections.petra.core.plugins.module_utils.flatcar.iam import READ_POLICY, SSM_CORE_POLICY
from ansible_collections.petra.core.plugins.module_utils.flatcar.security_groups import (
    API_PORT,
    NODE_PORTS,
    SERVER_PORTS,
)
from ansible_collections.petra.core.plugins.module_utils.flatcar.spec import TAG_CONFIG, TAG_ROLE

TEMPLATES = "aws/ec2-launch-template-versions.json"
INSTANCES = "aws/ec2-instances.json"
GROUPS = "aws/ec2-security-groups.json"
TRAILS = "aws/cloudtrail-trails.json"
NODE_READ_ACTIONS = frozenset(("s3:GetObject", "kms:Decrypt"))


def _versions(document):
    versions = document.get("LaunchTemplateVersions") or []
    if not versions:
        return versions, ["no launch template petra-%s-server or -agent exists" % document.get("cluster")]
    return versions, []


def _label(version):
    return "%s version %s" % (version.get("LaunchTemplateName"), version.get("VersionNumber"))


@check("aws.launch-templates.no-key-pair", "Launch templates name no EC2 key pair", ["ac-6_obj", "cm-7_obj.b-5"],
       [TEMPLATES])
def no_key_pair(templates, params):
    versions, problems = _versions(templates)
    return problems + ["%s names the key pair %s" % (_label(v), v["LaunchTemplateData"]["KeyName"])
                       for v in versions if (v.get("LaunchTemplateData") or {}).get("KeyName")]


@check("aws.launch-templates.imdsv2", "Launch templates require IMDSv2 within the hop limit", ["ac-6_obj"],
       [TEMPLATES])
def imdsv2(templates, params):
    versions, problems = _versions(templates)
    for version in versions:
        options = (version.get("LaunchTemplateData") or {}).get("MetadataOptions") or {}
        if options.get("HttpTokens") != "required":
            problems.append("%s allows IMDSv1 (HttpTokens %s)" % (_label(version), options.get("HttpTokens", "unset")))
        hops = options.get("HttpPutResponseHopLimit")
        if hops is None or hops > params["hop_limit"]:
            problems.append("%s has the metadata hop limit %s, above %d" % (_label(version), hops, params["hop_limit"]))
    return problems


@check("aws.launch-templates.encrypted-root", "Root volumes are encrypted with the expected KMS key",
       ["sc-13_obj.b"], [TEMPLATES])
def encrypted_root(templates, params):
    versions, problems = _versions(templates)
    for version in versions:
        for mapping in (version.get("LaunchTemplateData") or {}).get("BlockDeviceMappings") or []:
            ebs = mapping.get("Ebs") or {}
            if not ebs.get("Encrypted"):
                problems.append("%s: volume %s is not encrypted" % (_label(version), mapping.get("DeviceName")))
            elif params.get("kms_key_id") and ebs.get("KmsKeyId") != params["kms_key_id"]:
                problems.append("%s: volume %s is encrypted with %s, not %s" % (
                    _label(version), mapping.get("DeviceName"), ebs.get("KmsKeyId") or "the account default key",
                    params["kms_key_id"]))
    return problems


@check("aws.instances.hardened", "Instances run without a key pair and with IMDSv2 only", ["ac-6_obj"], [INSTANCES])
def instances_hardened(instances, params):
    found = instances.get("Instances") or []
    problems = [] if found else ["no instance is tagged for cluster %s" % instances.get("cluster")]
    for item in found:
        if item.get("KeyName"):
            problems.append("instance %s was launched with the key pair %s" % (item["InstanceId"], item["KeyName"]))
        if (item.get("MetadataOptions") or {}).get("HttpTokens") != "required":
            problems.append("instance %s allows IMDSv1" % item["InstanceId"])
    return problems


@check("aws.instances.as-templated", "Instances run the AMI and the config their role's launch template pins",
       ["cm-7_obj.a"], [INSTANCES, TEMPLATES])
def as_templated(instances, templates, params):
    images = {}
    for version in templates.get("LaunchTemplateVersions") or []:
        images.setdefault(version.get("Role"), set()).add((version.get("LaunchTemplateData") or {}).get("ImageId"))
    problems = [] if instances.get("Instances") else ["no instance is tagged for cluster %s" % instances.get("cluster")]
    for item in instances.get("Instances") or []:
        tags = tags_of(item)
        if item.get("ImageId") not in images.get(tags.get(TAG_ROLE), ()):
            problems.append("instance %s (%s) runs %s, not the AMI of its launch template (%s)" % (
                item["InstanceId"], tags.get(TAG_ROLE), item.get("ImageId"),
                ", ".join(sorted(i for i in images.get(tags.get(TAG_ROLE), ()) if i)) or "no template"))
        if tags.get(TAG_CONFIG) != item.get("UserDataSha256"):
            problems.append("instance %s was launched with user data hashing to %s, but its %s tag says %s" % (
                item["InstanceId"], item.get("UserDataSha256"), TAG_CONFIG, tags.get(TAG_CONFIG) or "nothing"))
    return problems


@check("aws.images.source-digest", "Every AMI records the digest of the image it was imported from",
       ["cm-7_obj.a", "sr-4_obj-1"], ["aws/ec2-images.json"])
def image_source(images, params):
    found = images.get("Images") or []
    return ([] if found else ["no AMI was found for the cluster"]) + [
        "AMI %s (%s) has no %s tag: where it came from is not recorded" % (
            image["ImageId"], image.get("Name"), TAG_SOURCE)
        for image in found if not tags_of(image).get(TAG_SOURCE)]


def _ingress(groups):
    for group in groups.get("SecurityGroups") or []:
        for rule in group.get("IpPermissions") or []:
            yield group, rule


def _sources(rule):
    return ([r.get("CidrIp") for r in rule.get("IpRanges") or []] + [r.get("CidrIpv6") for r in rule.get("Ipv6Ranges") or []]
            + [r.get("PrefixListId") for r in rule.get("PrefixListIds") or []])


def _span(rule):
    if rule.get("IpProtocol") in ("-1", "all"):
        return "all traffic"
    return "%s %s-%s" % (rule.get("IpProtocol"), rule.get("FromPort"), rule.get("ToPort"))


@check("aws.security-groups.no-ssh", "No security group admits SSH (tcp/22)", ["ac-6_obj", "cm-7_obj.b-2"], [GROUPS])
def no_ssh(groups, params):
    problems = [] if groups.get("SecurityGroups") else ["no security group is tagged for the cluster"]
    for group, rule in _ingress(groups):
        everything = rule.get("IpProtocol") in ("-1", "all")
        if everything or (rule.get("IpProtocol") in ("tcp", "6") and rule.get("FromPort", 0) <= 22 <= rule.get("ToPort", 65535)):
            problems.append("%s (%s) admits %s, which includes SSH" % (group["GroupName"], group["GroupId"], _span(rule)))
    return problems


@check("aws.security-groups.ports", "Only k3s's ports are open: between nodes, etcd between servers, the API from "
       "the allowed networks", ["cm-7_obj.b-2", "cm-7_obj.b-3"], [GROUPS])
def ports(groups, params):
    node = {(p, low, high) for p, low, high, _text in NODE_PORTS}
    server = {(p, low, high) for p, low, high, _text in SERVER_PORTS}
    allowed_cidrs = set(params.get("api_cidrs") or [])
    problems = [] if groups.get("SecurityGroups") else ["no security group is tagged for the cluster"]
    for group, rule in _ingress(groups):
        name, span = group["GroupName"], (rule.get("IpProtocol"), rule.get("FromPort"), rule.get("ToPort"))
        peers = {pair.get("GroupId") for pair in rule.get("UserIdGroupPairs") or []}
        sources = set(_sources(rule))
        if span[0] in ("-1", "all"):
            problems.append("%s admits all protocols" % name)
        elif name.endswith("-api") and span == ("tcp", API_PORT, API_PORT):
            if peers or not sources <= allowed_cidrs:
                problems.append("%s admits the API port from %s, outside the allowed networks %s" % (
                    name, ", ".join(sorted(s for s in (sources - allowed_cidrs) | peers if s)),
                    ", ".join(sorted(allowed_cidrs)) or "(none given)"))
        elif name.endswith("-servers") and span in server:
            if sources or peers != {group["GroupId"]}:
                problems.append("%s admits etcd (%s) from other than the servers themselves" % (name, _span(rule)))
        elif name.endswith("-nodes") and span in node:
            if sources or peers != {group["GroupId"]}:
                problems.append("%s admits %s from other than the cluster's nodes" % (name, _span(rule)))
        else:
            problems.append("%s admits %s, which is not a port k3s needs there" % (name, _span(rule)))
    return problems


@check("aws.node-role.least-privilege", "The node role has SSM core access and Petra's S3/KMS read policy only",
       ["ac-6_obj"], ["aws/iam-node-roles.json"])
def node_role(roles, params):
    profiles = roles.get("InstanceProfiles") or {}
    problems = [] if profiles else ["the launch templates name no instance profile"]
    allowed_inline = set(params.get("node_inline_policies") or [READ_POLICY])
    for name, profile in sorted(profiles.items()):
        if not profile.get("found"):
            problems.append("instance profile %s does not exist" % name)
        for role in profile.get("Roles") or []:
            attached = sorted(p["PolicyArn"] for p in role.get("AttachedPolicies") or [])
            extra = [arn for arn in attached if not arn.endswith(":policy/" + SSM_CORE_POLICY)]
            if extra:
                problems.append("role %s has the policies %s attached beyond %s" % (
                    role["RoleName"], ", ".join(extra), SSM_CORE_POLICY))
            for policy, document in sorted((role.get("InlinePolicies") or {}).items()):
                if policy not in allowed_inline:
                    problems.append("role %s has the inline policy %s, which Petra does not give nodes" % (
                        role["RoleName"], policy))
                    continue
                for statement in document.get("Statement") or []:
                    actions = statement.get("Action")
                    actions = {actions} if isinstance(actions, str) else set(actions or [])
                    resources = statement.get("Resource")
                    resources = [resources] if isinstance(resources, str) else list(resources or [])
                    if statement.get("Effect") == "Allow" and (actions - NODE_READ_ACTIONS or "*" in resources):
                        problems.append("role %s policy %s allows %s on %s" % (
                            role["RoleName"], policy, ", ".join(sorted(actions)), ", ".join(resources)))
    return problems


def _full_trails(trails):
    """Trails that select every management event in every Region, with global service events."""
    chosen = []
    for item in trails.get("Trails") or []:
        trail, selectors = item["Trail"], item.get("EventSelectors") or {}
        management = any(s.get("IncludeManagementEvents", True) and s.get("ReadWriteType", "All") == "All"
                         for s in selectors.get("EventSelectors") or [])
        management = management or any(
            any(f.get("Field") == "eventCategory" and "Management" in (f.get("Equals") or [])
                for f in s.get("FieldSelectors") or []) for s in selectors.get("AdvancedEventSelectors") or [])
        if trail.get("IsMultiRegionTrail") and trail.get("IncludeGlobalServiceEvents") and management:
            chosen.append(item)
    return chosen


@check("aws.cloudtrail.selected", "A multi-Region trail selects all management events, global services included",
       ["au-2_obj.c-1"], [TRAILS])
def trail_selected(trails, params):
    if _full_trails(trails):
        return []
    names = ", ".join(item["Trail"].get("Name") for item in trails.get("Trails") or []) or "no trail at all"
    return ["no CloudTrail trail is multi-Region with global service events and all management events (%s)" % names]


@check("aws.cloudtrail.logging", "That trail is logging and delivering", ["au-2_obj.c-2"], [TRAILS])
def trail_logging(trails, params):
    chosen = _full_trails(trails)
    if not chosen:
        return ["no trail selects the account's management events (see aws.cloudtrail.selected)"]
    problems = []
    for item in chosen:
        status = item.get("Status") or {}
        if not status.get("IsLogging"):
            problems.append("trail %s is not logging" % item["Trail"]["Name"])
        if status.get("LatestDeliveryError"):
            problems.append("trail %s fails to deliver: %s" % (item["Trail"]["Name"], status["LatestDeliveryError"]))
    return problems


@check("aws.cloudtrail.validation", "That trail has log file integrity validation on", ["si-7_obj.a-3"], [TRAILS])
def trail_validation(trails, params):
    chosen = _full_trails(trails)
    if not chosen:
        return ["no trail selects the account's management events (see aws.cloudtrail.selected)"]
    return ["trail %s has log file validation off: changed log files would go unnoticed" % item["Trail"]["Name"]
            for item in chosen if not item["Trail"].get("LogFileValidationEnabled")]
