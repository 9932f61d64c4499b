"""Fleets through the playbooks, as users run them: ``ansible-playbook petra.core.cluster_create`` with three Cluster
API clusters against kmock (stand-in CAPI/CAPA controllers per namespace), one of which CAPA cannot launch; and the
same node variables creating a standalone cluster (moto) or, with petra_provisioner=capi, a Cluster API one."""

import base64
import os
import subprocess
import sys

import pytest
import requests
import yaml

from ansible_collections.petra.core.tests.integration.test_playbooks import run_playbook
from ansible_collections.petra.core.tests.support.capi_controllers import CapiControllers
from ansible_collections.petra.core.tests.support.kube import KubeAPI

KMS = "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/0b1e7c55-5a8e-4c5e-9d55-3f4d2a1b0c9d"
TOKEN = "fleet-k3s-token-not-in-output"
K3S = {"url": "s3://artifacts/k3s/v1.33.4+k3s1/k3s", "sha256": "0" * 64}
FAILURE = ("InstanceProvisionFailed", "InsufficientInstanceCapacity: no m6i.large capacity in us-gov-west-1b")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
IMPORT = "- ansible.builtin.import_playbook: petra.core.%s\n"


def task(report, name):
    """A role task's recorded result (recorded under "<role> : <name>")."""
    found = [value for key, value in report.items() if key == name or key.endswith(" : " + name)]
    assert found, "no task %r among %s" % (name, sorted(report))
    return found[0]


@pytest.fixture
def kube(tmp_path):
    with KubeAPI(str(tmp_path)) as api:
        yield api


def machines(kube, namespace):
    answer = requests.get("%s/apis/cluster.x-k8s.io/v1beta2/namespaces/%s/machines" % (kube.url, namespace), timeout=10)
    return answer.json().get("items", []) if answer.ok else []


def capi_defaults(kube, **extra):
    return dict({"management_kubeconfig": kube.kubeconfig, "region": "us-gov-west-1", "vpc_id": "vpc-0123456789abcdef0",
                 "kubernetes_version": "v1.33.4+k3s1", "availability_zones": ["us-gov-west-1a"],
                 "instance_profile": "petra-ssm-only", "poll_interval": 0.2, "wait_timeout": 120,
                 "node_ready_timeout": 240}, **extra)


def test_a_failed_cluster_among_three_does_not_stop_the_others(kube, tmp_path):
    clusters = [dict(name=name, image="ami-0a1b2c3d4e5f60718", subnets=["subnet-0aaa"], api_cidrs=["10.20.0.0/16"],
                     kms_key_id=KMS, server_count=1, agent_count=0, server_instance_type="m6i.large",
                     agent_instance_type="m6i.large", token=TOKEN, k3s=K3S,
                     kubeconfig=str(tmp_path / ("%s.kubeconfig" % name)))
                for name in ("fleet-a", "fleet-b", "fleet-c")]
    # CAPA cannot launch fleet-b: its Machines say so, and its wait ends (early, for the test) naming them.
    clusters[1]["node_ready_timeout"] = 20
    variables = tmp_path / "fleet.yml"
    variables.write_text(yaml.safe_dump({"petra_provisioner": "capi", "cluster_capi_clusters": clusters,
                                         "cluster_capi_defaults": capi_defaults(kube)}))
    with CapiControllers(kube, "fleet-a", first_address=10, interval=0.1) as a, \
            CapiControllers(kube, "fleet-b", first_address=300, interval=0.1, failure=FAILURE) as b, \
            CapiControllers(kube, "fleet-c", first_address=600, interval=0.1) as c:
        report, output = run_playbook(tmp_path, IMPORT % "cluster_create", "-e", "@%s" % variables, "--forks", "3",
                                      expect_rc=2, output=True)
        assert (a.error, b.error, c.error) == (None, None, None)

    # The two healthy clusters are complete: every Machine has a Ready Node, the workload kubeconfig is written.
    for name in ("fleet-a", "fleet-c"):
        found = machines(kube, name)
        assert len(found) == 1 and all(m["status"].get("nodeRef") for m in found), name
        assert oct(os.stat(tmp_path / ("%s.kubeconfig" % name)).st_mode & 0o777) == "0o600"
    # The failed one got its objects but no instance; its failure names the Machines and their conditions.
    assert machines(kube, "fleet-b") and not any(m["status"].get("nodeRef") for m in machines(kube, "fleet-b"))
    assert not (tmp_path / "fleet-b.kubeconfig").exists()

    lines = {item["item"]["cluster"]: item["msg"] for item in task(report, "Report each cluster")["results"]}
    assert set(lines) == {"fleet-a", "fleet-b", "fleet-c"}
    assert lines["fleet-a"].startswith("fleet-a: present, ") and "API internal-fleet-a-apiserver" in lines["fleet-a"]
    assert lines["fleet-c"].startswith("fleet-c: present, ")
    assert lines["fleet-b"].startswith("fleet-b: FAILED (capi-timeout): ")
    assert FAILURE[0] in lines["fleet-b"] and "fleet-b-server-" in lines["fleet-b"]
    summary = {item["cluster"]: item for item in task(report, "Gather the clusters' outcomes")["results"][-1][
        "ansible_facts"]["cluster_capi_summary"]}
    assert summary["fleet-b"]["machines_not_ready"] and all(
        name.startswith("fleet-b-") for name in summary["fleet-b"]["machines_not_ready"])
    assert [summary[name]["failed"] for name in ("fleet-a", "fleet-b", "fleet-c")] == [False, True, False]
    final = task(report, "Fail naming the clusters that failed")
    assert final["failed"] and final["msg"].startswith("1 of 3 cluster(s) failed: fleet-b.")
    # Each cluster ran as a host of its own; none of them failed as a host (the failure is the report's).
    recap = output[output.rindex("PLAY RECAP"):]
    assert "fleet-b" in recap and "rescued=1" in recap.split("fleet-b", 1)[1].splitlines()[0]
    assert TOKEN not in output

    # A re-run changes nothing on the two converged clusters.
    with CapiControllers(kube, "fleet-a", first_address=10, interval=0.1), \
            CapiControllers(kube, "fleet-b", first_address=300, interval=0.1, failure=FAILURE), \
            CapiControllers(kube, "fleet-c", first_address=600, interval=0.1):
        again = run_playbook(tmp_path, IMPORT % "cluster_create", "-e", "@%s" % variables, "--forks", "3",
                             expect_rc=2)
    lines = {item["item"]["cluster"]: item["msg"] for item in task(again, "Report each cluster")["results"]}
    assert lines["fleet-a"].startswith("fleet-a: present, 0 action(s)")
    assert lines["fleet-c"].startswith("fleet-c: present, 0 action(s)")


def test_the_same_node_variables_create_either_model(moto, kube, tmp_path):
    fixture = tmp_path / "aws.json"
    subprocess.run([sys.executable, os.path.join(ROOT, "roles", "cluster_standalone", "molecule", "default",
                                                 "aws_fixture.py"), moto.endpoint, str(fixture)], check=True,
                   env=dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing"))
    aws = yaml.safe_load(fixture.read_text())
    node_variables = {"cluster_standalone_name": "twin", "cluster_standalone_image": "resolve:ssm:" + aws["parameter"],
                      "cluster_standalone_subnets": aws["subnets"], "cluster_standalone_api_cidrs": ["10.30.0.0/16"],
                      "cluster_standalone_kms_key_id": KMS, "cluster_standalone_server_count": 1,
                      "cluster_standalone_agent_count": 1, "cluster_standalone_server_url": "https://api.twin.internal:6443",
                      "cluster_standalone_token": TOKEN, "cluster_standalone_k3s": K3S,
                      "cluster_standalone_region": "us-east-1", "cluster_standalone_endpoint_url": moto.endpoint}
    variables = tmp_path / "cluster.yml"
    variables.write_text(yaml.safe_dump(node_variables))
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

    standalone = run_playbook(tmp_path, IMPORT % "cluster_create", "-e", "@%s" % variables, extra_env=env)
    ec2 = task(standalone, "Converge the cluster's EC2 nodes")
    assert ec2["changed"] and len(ec2["instances"]) == 2 and ec2["image_id"] == aws["image"]

    # The same file, and what Cluster API mode adds: where the management cluster is, the VPC, the version.
    extra = tmp_path / "capi.yml"
    extra.write_text(yaml.safe_dump({"petra_provisioner": "capi", "cluster_capi_defaults": {
        "management_kubeconfig": kube.kubeconfig, "vpc_id": "vpc-0123456789abcdef0",
        "kubernetes_version": "v1.33.4+k3s1", "poll_interval": 0.2, "node_ready_timeout": 240}}))
    with CapiControllers(kube, "twin", zone="us-east-1a", interval=0.1) as controllers:
        capi = run_playbook(tmp_path, IMPORT % "cluster_create", "-e", "@%s" % variables, "-e", "@%s" % extra,
                            extra_env=env)
    assert controllers.error is None
    assert not [key for key in capi if key.endswith("Converge the cluster's EC2 nodes")]
    applied = task(capi, "Apply the cluster's Cluster API objects on the management cluster")
    assert applied["changed"] and applied["image_id"] == aws["image"] and applied["cluster"] == "twin"
    # The same AMI (resolved from the same SSM parameter), KMS key, counts and subnets, as Cluster API objects.
    found = machines(kube, "twin")
    assert sorted(m["metadata"]["labels"]["petra.dev/role"] for m in found) == ["agent", "server"]
    template = requests.get("%s/apis/infrastructure.cluster.x-k8s.io/v1beta2/namespaces/twin/awsmachinetemplates"
                            % kube.url, timeout=10).json()["items"][0]["spec"]["template"]["spec"]
    assert template["ami"] == {"id": aws["image"]} and template["rootVolume"]["encryptionKey"] == KMS
    assert template["iamInstanceProfile"] == "petra-twin-node"
    assert template["instanceMetadataOptions"]["httpPutResponseHopLimit"] == 1 and template["sshKeyName"] == ""
    init = [m for m in found if m["metadata"]["labels"].get("petra.dev/bootstrap")][0]
    secret = requests.get("%s/api/v1/namespaces/twin/secrets/%s" % (
        kube.url, init["spec"]["bootstrap"]["dataSecretName"]), timeout=10).json()
    assert b'"version": "3.3.0"' in base64.b64decode(secret["data"]["value"]) or \
        b'"version":"3.3.0"' in base64.b64decode(secret["data"]["value"])
    lines = [item["msg"] for item in task(capi, "Report each cluster")["results"]]
    assert len(lines) == 1 and lines[0].startswith("twin: present, ")


def test_cluster_upgrade_rotates_the_templates_and_rolls_the_servers(kube, tmp_path):
    """ansible-playbook petra.core.cluster_upgrade after a new AMI and k3s build: new content-hashed names, the agents'
    MachineDeployment moved to them, the server replaced (the roll with three servers: test_capi_cluster.py), and the
    superseded objects deleted once nothing uses them."""
    cluster = dict(name="roll-a", image="ami-0a1b2c3d4e5f60718", subnets=["subnet-0aaa"], api_cidrs=["10.20.0.0/16"],
                   kms_key_id=KMS, server_count=1, agent_count=1, token=TOKEN, k3s=K3S,
                   kubeconfig=str(tmp_path / "roll-a.kubeconfig"))
    variables = tmp_path / "cluster.yml"

    def run(playbook, **changes):
        variables.write_text(yaml.safe_dump({"petra_provisioner": "capi", "cluster_capi_clusters": [
            dict(cluster, **changes)], "cluster_capi_defaults": capi_defaults(kube)}))
        report = run_playbook(tmp_path, IMPORT % playbook, "-e", "@%s" % variables)
        assert controllers.error is None
        return task(report, "Apply the cluster's Cluster API objects on the management cluster")

    # One stand-in for both runs: its instances, addresses and Node names never repeat.
    with CapiControllers(kube, "roll-a", interval=0.1) as controllers:
        created = run("cluster_create")
        old_server = [m["metadata"]["name"] for m in machines(kube, "roll-a")
                      if m["metadata"]["labels"]["petra.dev/role"] == "server"]
        new_k3s = {"url": "s3://artifacts/k3s/v1.33.5+k3s1/k3s", "sha256": "1" * 64}
        upgrade = dict(image="ami-0f9e8d7c6b5a40312", k3s=new_k3s, kubernetes_version="v1.33.5+k3s1")
        upgraded = run("cluster_upgrade", **upgrade)

    # New content, new names: the agents' template (the AMI) and every bootstrap Secret (the k3s build).
    assert upgraded["machine_template"] != created["machine_template"]
    assert upgraded["machine_template"].startswith("roll-a-agent-")
    for kind in ("server", "agent"):
        assert upgraded["bootstrap_secrets"][kind] != created["bootstrap_secrets"][kind]
    base = "%s/apis/%%s/namespaces/roll-a/%%s" % kube.url
    template = requests.get((base % ("infrastructure.cluster.x-k8s.io/v1beta2", "awsmachinetemplates")) + "/"
                            + upgraded["machine_template"], timeout=10).json()
    assert template["spec"]["template"]["spec"]["ami"] == {"id": "ami-0f9e8d7c6b5a40312"}
    deployment = requests.get(base % ("cluster.x-k8s.io/v1beta2", "machinedeployments"), timeout=10).json()["items"]
    assert [md["spec"]["template"]["spec"]["infrastructureRef"]["name"] for md in deployment] == [
        upgraded["machine_template"]]
    assert [md["spec"]["template"]["spec"]["bootstrap"]["dataSecretName"] for md in deployment] == [
        upgraded["bootstrap_secrets"]["agent"]]
    assert [md["spec"]["template"]["spec"]["version"] for md in deployment] == ["v1.33.5+k3s1"]

    # The server rolled as in standalone mode: the new one Ready before the old one is drained and deleted.
    steps = [(a["action"], a.get("role")) for a in upgraded["actions"] if a["action"] in ("launch", "drain", "terminate")]
    assert steps == [("launch", "server"), ("drain", None), ("terminate", "server")]
    assert [a["instance_id"] for a in upgraded["actions"] if a["action"] == "terminate"] == old_server
    assert not controllers.hook_waits and old_server[0] in controllers.deleted_machines
    found = machines(kube, "roll-a")
    assert len(found) == 2 and all(m["status"].get("nodeRef") for m in found) and upgraded["outdated"] == []
    assert all(m["spec"]["version"] == "v1.33.5+k3s1" for m in found)
    # Nothing uses the superseded objects any more, so they are gone; only what this run renders remains.
    deleted = {a["name"] for a in upgraded["actions"] if a["action"] == "delete"}
    assert deleted == {created["machine_template"], created["bootstrap_secrets"]["server-init"],
                       created["bootstrap_secrets"]["server"], created["bootstrap_secrets"]["agent"]}
    stored = {item["metadata"]["name"] for item in requests.get(
        "%s/api/v1/namespaces/roll-a/secrets" % kube.url, timeout=10).json()["items"]}
    assert not deleted & stored and upgraded["superseded_in_use"] == []


def test_a_cluster_named_like_another_inventory_host_is_refused(tmp_path):
    """add_host on an existing name would turn that host (here: the controller) into a cluster's connection."""
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("localhost ansible_connection=local\n[databases]\ndb1 ansible_connection=local\n")
    play = """
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: petra.core.cluster_capi
        tasks_from: fleet
      vars:
        cluster_capi_clusters: [{name: %s}, {name: fleet-ok}]
"""
    for name in ("db1", "localhost"):
        _report, output = run_playbook(tmp_path, play % name, "-i", str(inventory), expect_rc=2, output=True)
        assert "The cluster name(s) ['%s'] are already inventory hosts" % name in output
    _report, output = run_playbook(tmp_path, play % "fleet-new", "-i", str(inventory), output=True)
    assert "failed=0" in output and "already inventory hosts" not in output
