"""Cluster API mode rendering: every object fits the CAPI/CAPA CRDs, the hardening facts hold in every machine object,
the bootstrap configs pass ignition-validate, and names follow content."""

import hashlib
import json
import shutil
import subprocess

import pytest

from ansible_collections.petra.core.plugins.module_utils.capi import bootstrap, render
from ansible_collections.petra.core.plugins.module_utils.capi.apply import differences
from ansible_collections.petra.core.plugins.module_utils.capi.errors import CapiError
from ansible_collections.petra.core.plugins.module_utils.capi.spec import CapiSpec, partition_of
from ansible_collections.petra.core.tests.support import crds

KMS = "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/0b1e7c55-5a8e-4c5e-9d55-3f4d2a1b0c9d"


def spec(**extra):
    params = {"cluster_name": "edge-1", "region": "us-gov-west-1", "image": "ami-0a1b2c3d4e5f60718", "kms_key_id": KMS,
              "instance_profile": "petra-ssm-only", "subnets": ["subnet-0aaa", "subnet-0bbb"],
              "api_cidrs": ["10.20.0.0/16"], "root_volume_size": 20, "metadata_hop_limit": 1, "tags": {"team": "ops"},
              "servers": {"count": 3, "instance_type": "m6i.large"}, "agents": {"count": 5, "instance_type": "m6i.xlarge"},
              "token": "s3cr3t", "k3s": {"url": "s3://artifacts/k3s", "sha256": hashlib.sha256(b"k3s").hexdigest()},
              "ignition_version": "3.3.0",
              "capi": {"vpc_id": "vpc-0123", "kubernetes_version": "v1.33.4+k3s1",
                       "availability_zones": ["us-gov-west-1a", "us-gov-west-1b"]}}
    params.update(extra)
    return CapiSpec(params)


@pytest.mark.parametrize("region,partition", [("us-gov-west-1", "aws-us-gov"), ("us-iso-east-1", "aws-iso"),
                                              ("us-isob-east-1", "aws-iso-b"), ("eu-west-1", "aws"),
                                              ("cn-north-1", "aws-cn")])
def test_partition_follows_the_region(region, partition):
    assert partition_of(region) == partition


def test_every_object_fits_its_crd_and_machines_are_hardened():
    s = spec()
    s.validate()
    machine = {role: render.aws_machine_spec(s, role, "ami-0a1b2c3d4e5f60718", "petra-ssm-only")
               for role in ("server", "agent")}
    template = render.machine_template(s, machine["agent"])
    pools = render.agent_pools(s)
    assert [(pool[0], pool[2]) for pool in pools] == [
        ("edge-1-agents-us-gov-west-1a", 3), ("edge-1-agents-us-gov-west-1b", 2)]
    objects = [render.cluster(s), render.aws_cluster(s), template, render.machine_health_check(s, 600),
               render.aws_machine(s, "edge-1-server-0", machine["server"], bootstrap=True),
               render.server_machine(s, "edge-1-server-0", "edge-1-bootstrap-server-init-0123456789", "d" * 64,
                                     zone="us-gov-west-1a", bootstrap=True)]
    objects += [render.machine_deployment(s, name, zone, replicas, template["metadata"]["name"], "edge-1-bootstrap-agent-x")
                for name, zone, replicas in pools]
    for obj in objects:
        crds.validate(obj)
        assert obj["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"] == "edge-1"
    for machine_spec in (objects[4]["spec"], template["spec"]["template"]["spec"]):
        assert machine_spec["instanceMetadataOptions"]["httpTokens"] == "required"
        assert machine_spec["instanceMetadataOptions"]["httpPutResponseHopLimit"] == 1
        assert machine_spec["sshKeyName"] == "" and machine_spec["iamInstanceProfile"] == "petra-ssm-only"
        assert machine_spec["rootVolume"] == {"size": 20, "type": "gp3", "encrypted": True, "encryptionKey": KMS}
        assert machine_spec["additionalTags"]["team"] == "ops"
    aws = objects[1]["spec"]
    assert aws["partition"] == "aws-us-gov" and aws["controlPlaneLoadBalancer"]["scheme"] == "internal"
    assert [rule["fromPort"] for rule in aws["network"]["cni"]["cniIngressRules"]] == [8472, 4240, 4244]
    # Content names: another AMI is another template; the same spec the same one.
    other = render.aws_machine_spec(s, "agent", "ami-0f9e8d7c6b5a40312", "petra-ssm-only")
    assert render.machine_template(s, other)["metadata"]["name"] != template["metadata"]["name"]
    assert render.machine_template(s, dict(machine["agent"]))["metadata"]["name"] == template["metadata"]["name"]


def test_bootstrap_configs_validate_and_carry_the_provider_id():
    s = spec()
    ca = bootstrap.new_ca("edge-1")
    documents = bootstrap.render(s.params, "internal-edge-1.elb.amazonaws.com", ca)
    assert set(documents) == {"server-init", "server", "agent"}
    for kind, document in documents.items():
        units = {unit["name"]: unit for unit in document["systemd"]["units"]}
        assert "petra-provider-id.service" in units
        k3s_unit = units["k3s.service" if kind != "agent" else "k3s-agent.service"]
        assert "After=petra-provider-id.service" in k3s_unit["dropins"][0]["contents"]
        paths = {item["path"] for item in document["storage"]["files"]}
        assert ("/var/lib/rancher/k3s/server/tls/client-ca.key" in paths) == (kind == "server-init")
    if shutil.which("ignition-validate") is None:
        pytest.skip("ignition-validate is not installed")
    for kind, document in documents.items():
        check = subprocess.run(["ignition-validate", "-"], input=json.dumps(document), capture_output=True, text=True, check=False)
        assert check.returncode == 0, (kind, check.stdout, check.stderr)


def test_differences_ignore_what_controllers_add():
    desired = {"spec": {"replicas": 2, "template": {"version": "v1"}}}
    live = {"spec": {"replicas": 2, "template": {"version": "v1", "defaulted": True}}, "status": {"ready": True}}
    assert differences(desired, live) == []
    assert differences({"spec": {"replicas": 3}}, live) == ["spec.replicas"]


@pytest.mark.parametrize("extra,message", [
    ({"api_cidrs": []}, "0.0.0.0/0"), ({"metadata_hop_limit": 2}, "one hop"), ({"image": "flatcar"}, "AMI id"),
    ({"cluster_name": "Edge_1"}, "DNS label"), ({"kms_key_id": None}, "kms_key_id"),
    ({"servers": {"count": 2, "instance_type": "m6i.large"}}, "odd number")])
def test_refusals(extra, message):
    with pytest.raises(Exception, match=message) as caught:
        spec(**extra).validate()
    assert isinstance(caught.value, CapiError) or "odd number" in message
