"""Cluster API mode against kmock as the management API, with stand-in CAPI/CAPA controllers driving status; every
object Petra writes is checked against the CAPI and CAPA CRDs (and core kinds against Kubernetes' schemas)."""

import base64
import hashlib
import json
import os
import shutil
import subprocess

import pytest
import requests
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.petra.core.plugins.module_utils.adapters import flatcar
from ansible_collections.petra.core.plugins.module_utils.errors import PetraError
from ansible_collections.petra.core.plugins.module_utils.manifests.validate import check_manifests
from ansible_collections.petra.core.tests.support import crds
from ansible_collections.petra.core.tests.support.capi_controllers import CapiControllers
from ansible_collections.petra.core.tests.support.kube import KubeAPI

NS = "fleet-a"
HOOK = "pre-terminate.delete.hook.machine.cluster.x-k8s.io/petra-etcd"
KMS = "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/0b1e7c55-5a8e-4c5e-9d55-3f4d2a1b0c9d"
TOKEN = "s3cr3t-k3s-token"
KINDS = [("cluster.x-k8s.io/v1beta2", "clusters"), ("cluster.x-k8s.io/v1beta2", "machines"),
         ("cluster.x-k8s.io/v1beta2", "machinedeployments"), ("cluster.x-k8s.io/v1beta2", "machinehealthchecks"),
         ("infrastructure.cluster.x-k8s.io/v1beta2", "awsclusters"),
         ("infrastructure.cluster.x-k8s.io/v1beta2", "awsmachines"),
         ("infrastructure.cluster.x-k8s.io/v1beta2", "awsmachinetemplates")]
TEMPLATES = ("infrastructure.cluster.x-k8s.io/v1beta2", "awsmachinetemplates")


def release(name):
    return {"url": "s3://artifacts/k3s/%s/k3s" % name, "sha256": hashlib.sha256(name.encode()).hexdigest()}


def params(kube, tmp_path, release_name="v1.33.4+k3s1", servers=3, agents=2, **extra):
    capi = {"namespace": NS, "vpc_id": "vpc-0123456789abcdef0", "kubernetes_version": release_name,
            "availability_zones": ["us-gov-west-1a", "us-gov-west-1b"], "kubeconfig_dest": str(tmp_path / "workload.kubeconfig")}
    capi.update(extra.pop("capi", {}))
    base = dict(state="present", provisioner="capi", cluster_name="edge-1", region="us-gov-west-1",
                kubeconfig=kube.kubeconfig, image="ami-0a1b2c3d4e5f60718", kms_key_id=KMS,
                instance_profile="petra-ssm-only", subnets=["subnet-0aaa", "subnet-0bbb"], api_cidrs=["10.20.0.0/16"],
                token=TOKEN, k3s=release(release_name), capi=capi, poll_interval=0.1, wait_timeout=90,
                node_ready_timeout=90, drain_timeout=30,
                servers={"count": servers, "instance_type": "m6i.large"},
                agents={"count": agents, "instance_type": "m6i.xlarge"})
    base.update(extra)
    result = ArgumentSpecValidator(flatcar.ARGUMENT_SPEC).validate(base)
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


def listing(kube, api, plural):
    answer = requests.get("%s/apis/%s/namespaces/%s/%s" % (kube.url, api, NS, plural), timeout=10)
    return answer.json().get("items", []) if answer.status_code == 200 else []


def secrets(kube):
    answer = requests.get("%s/api/v1/namespaces/%s/secrets" % (kube.url, NS), timeout=10)
    return {item["metadata"]["name"]: item for item in answer.json().get("items", [])} if answer.ok else {}


def petra_objects(kube):
    found = [item for api, plural in KINDS for item in listing(kube, api, plural)
             if item["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") == "petra"]
    return found + [item for item in secrets(kube).values()
                    if item["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") == "petra"]


def validate_all(objects, tmp_path):
    """CAPI/CAPA kinds against their CRDs; everything, core kinds included, through Petra's strict validator."""
    for obj in objects:
        if obj["kind"] not in ("Secret", "Namespace"):
            crds.validate(obj)
    path = tmp_path / "rendered.yaml"
    clean = []
    for obj in objects:
        obj = json.loads(json.dumps(obj))
        obj.pop("status", None)
        for key in ("creationTimestamp", "finalizers", "deletionTimestamp", "resourceVersion", "uid"):
            obj["metadata"].pop(key, None)
        clean.append(obj)
    path.write_text(yaml.safe_dump_all(clean))
    crd_files = [os.path.join(crds.CRD_DIR, name) for name in os.listdir(crds.CRD_DIR)
                 if name.startswith(("cluster.x-k8s.io_", "infrastructure.cluster.x-k8s.io_"))]
    findings = check_manifests([str(path)], crds=crd_files)[2]
    assert not findings, [str(item) for item in findings]


def ignition_of(secret):
    return base64.b64decode(secret["data"]["value"])


@pytest.fixture
def kube(tmp_path):
    with KubeAPI(str(tmp_path)) as api:
        yield api


@pytest.fixture
def controllers(kube):
    with CapiControllers(kube, NS) as running:
        yield running
    assert running.error is None, running.error


def test_check_mode_then_apply_is_hardened_valid_and_idempotent(kube, controllers, tmp_path):
    planned = flatcar.run(params(kube, tmp_path), check_mode=True)
    assert planned["changed"] is True
    plan = [(a["action"], a["kind"]) for a in planned["actions"]]
    assert plan[:4] == [("create", "Namespace"), ("create", "Secret"), ("create", "Cluster"), ("create", "AWSCluster")]
    assert plan.count(("create", "Machine")) == 3 and ("create", "MachineDeployment") in plan
    assert ("create", "AWSMachineTemplate") in plan and ("create", "MachineHealthCheck") in plan
    assert len({a["name"] for a in planned["actions"] if a["kind"] == "Machine"}) == 3
    assert petra_objects(kube) == []

    result = flatcar.run(params(kube, tmp_path), check_mode=False)
    assert controllers.error is None
    assert result["changed"] is True and result["endpoint"].startswith("internal-edge-1-apiserver")
    objects = petra_objects(kube)
    namespace = requests.get("%s/api/v1/namespaces/%s" % (kube.url, NS), timeout=10).json()
    assert namespace["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "petra"
    validate_all(objects + [namespace], tmp_path)
    by_kind = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    servers = sorted((m for m in by_kind["Machine"] if m["metadata"]["labels"]["petra.dev/role"] == "server"),
                     key=lambda m: m["metadata"]["name"])
    assert len(servers) == 3 and len(by_kind["Machine"]) == 5
    assert sorted(md["metadata"]["name"] for md in by_kind["MachineDeployment"]) == [
        "edge-1-agents-us-gov-west-1a", "edge-1-agents-us-gov-west-1b"]
    assert [md["spec"]["replicas"] for md in by_kind["MachineDeployment"]] == [1, 1]

    cluster = by_kind["Cluster"][0]
    assert cluster["spec"]["infrastructureRef"] == {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "AWSCluster",
                                                    "name": "edge-1"}
    assert "controlPlaneRef" not in cluster["spec"]
    aws = by_kind["AWSCluster"][0]["spec"]
    assert (aws["region"], aws["partition"], aws["sshKeyName"], aws["bastion"]) == (
        "us-gov-west-1", "aws-us-gov", "", {"enabled": False})
    assert aws["network"]["vpc"] == {"id": "vpc-0123456789abcdef0"}
    assert aws["network"]["nodePortIngressRuleCidrBlocks"] == ["10.20.0.0/16"]
    balancer = aws["controlPlaneLoadBalancer"]
    assert (balancer["scheme"], balancer["loadBalancerType"], balancer["dnsResolutionCheck"]) == ("internal", "nlb", "None")

    # The hardening facts, in every machine object Petra rendered.
    assert len([item for item in by_kind["AWSMachine"] if item["metadata"].get("labels")]) == 3
    machine_specs = [item["spec"] for item in by_kind["AWSMachine"]] + \
        [item["spec"]["template"]["spec"] for item in by_kind["AWSMachineTemplate"]]
    for spec in machine_specs:
        assert spec["instanceMetadataOptions"] == {"httpEndpoint": "enabled", "httpTokens": "required",
                                                   "httpPutResponseHopLimit": 1, "instanceMetadataTags": "disabled"}
        assert spec["sshKeyName"] == "" and spec["ami"] == {"id": "ami-0a1b2c3d4e5f60718"}
        assert spec["rootVolume"]["encrypted"] is True and spec["rootVolume"]["encryptionKey"] == KMS
        assert spec["iamInstanceProfile"] == "petra-ssm-only" and spec["publicIP"] is False
        assert spec["ignition"] == {"version": "3.3", "storageType": "UnencryptedUserData"}

    stored = secrets(kube)
    assert [m["metadata"]["labels"].get("petra.dev/bootstrap") for m in servers] == ["true", None, None]
    assert all(m["metadata"]["annotations"][HOOK] == "petra" for m in servers)
    assert all("cluster.x-k8s.io/control-plane" in m["metadata"]["labels"] for m in servers)
    assert [m["spec"]["failureDomain"] for m in servers] == ["us-gov-west-1a", "us-gov-west-1b", "us-gov-west-1a"]
    init = stored[servers[0]["spec"]["bootstrap"]["dataSecretName"]]
    join = stored[servers[1]["spec"]["bootstrap"]["dataSecretName"]]
    agent = stored[by_kind["MachineDeployment"][0]["spec"]["template"]["spec"]["bootstrap"]["dataSecretName"]]
    ca = stored["edge-1-ca"]
    for secret in (init, join, agent):
        assert secret["type"] == "cluster.x-k8s.io/secret"
        assert base64.b64decode(secret["data"]["format"]) == b"ignition"
        data = ignition_of(secret)
        (tmp_path / "node.ign").write_bytes(data)
        if shutil.which("ignition-validate"):
            check = subprocess.run(["ignition-validate", str(tmp_path / "node.ign")], capture_output=True, text=True, check=False)
            assert check.returncode == 0, check.stdout + check.stderr
        document = json.loads(data)
        units = {unit["name"]: unit for unit in document["systemd"]["units"]}
        assert units["petra-provider-id.service"]["enabled"] is True
        script = [f for f in document["storage"]["files"] if f["path"] == "/opt/petra/bin/provider-id"][0]
        text = base64.b64decode(script["contents"]["source"].split(",", 1)[1]).decode()
        assert "provider-id=aws:///%s/%s" in text and "COREOS_EC2_INSTANCE_ID" in text
    files = {f["path"]: f for f in json.loads(ignition_of(init))["storage"]["files"]}
    ca_file = base64.b64decode(files["/var/lib/rancher/k3s/server/tls/client-ca.crt"]["contents"]["source"].split(",", 1)[1])
    assert ca_file == base64.b64decode(ca["data"]["tls.crt"])
    assert "/var/lib/rancher/k3s/server/tls/client-ca.key" not in {
        f["path"] for f in json.loads(ignition_of(join))["storage"]["files"]}
    join_config = yaml.safe_load(base64.b64decode(
        {f["path"]: f for f in json.loads(ignition_of(join))["storage"]["files"]}["/etc/rancher/k3s/config.yaml"][
            "contents"]["source"].split(",", 1)[1]))
    assert join_config["server"] == "https://%s:6443" % result["endpoint"]
    assert join_config["tls-san"] == [result["endpoint"]]
    # Nodes carry the provider ID CAPA expects, so Machines got their node references.
    assert all(value.startswith("aws:///us-gov-west-1a/i-") for value in controllers.provider_ids.values())
    assert oct(os.stat(result["kubeconfig_dest"]).st_mode & 0o777) == "0o600"
    assert TOKEN not in json.dumps({k: v for k, v in result.items() if k != "actions"})

    again = flatcar.run(params(kube, tmp_path), check_mode=False)
    assert again["changed"] is False and again["actions"] == [] and again["outdated"] == []
    check = flatcar.run(params(kube, tmp_path), check_mode=True)
    assert check["changed"] is False


def test_s3_stub_keeps_the_token_out_of_user_data(kube, controllers, tmp_path, moto):
    import boto3
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto.endpoint, aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    s3.create_bucket(Bucket="petra-configs")
    aws = dict(region="us-east-1", access_key="testing", secret_key="testing", endpoint_url=moto.endpoint)
    p = params(kube, tmp_path, servers=1, agents=1, capi={"ignition_storage": "s3", "config_s3_prefix": "s3://petra-configs/fleet",
                                                          "availability_zones": []}, **aws)
    result = flatcar.run(p, check_mode=False)
    assert controllers.error is None
    stored = secrets(kube)
    bootstrap = [stored[name] for name in result["bootstrap_secrets"].values() if name in stored]
    assert len(bootstrap) == 3
    for secret in bootstrap:
        stub = json.loads(ignition_of(secret))
        assert TOKEN.encode() not in ignition_of(secret)
        replace = stub["ignition"]["config"]["replace"]
        bucket, key = replace["source"][len("s3://"):].split("/", 1)
        assert bucket == "petra-configs" and key.startswith("fleet/edge-1/")
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert replace["verification"]["hash"] == "sha256-" + hashlib.sha256(body).hexdigest()
        env = [f for f in json.loads(body)["storage"]["files"] if f["path"].startswith("/etc/default/k3s")][0]
        assert TOKEN in base64.b64decode(env["contents"]["source"].split(",", 1)[1]).decode()
        assert set(stub) == {"ignition"}
    assert flatcar.run(p, check_mode=False)["changed"] is False
    removed = flatcar.run(dict(p, state="absent"), check_mode=False)
    assert "S3Object" in {a["kind"] for a in removed["actions"]}
    assert s3.list_objects_v2(Bucket="petra-configs", Prefix="fleet/edge-1/").get("KeyCount") == 0


def test_upgrade_rolls_servers_with_hooks_and_agents_by_template(kube, controllers, tmp_path):
    first = flatcar.run(params(kube, tmp_path), check_mode=False)
    old_servers = {m["machine"] for m in first["servers"]}
    old_template = first["machine_template"]
    upgrade = dict(release_name="v1.33.5+k3s1", image="ami-0f9e8d7c6b5a40312")
    planned = flatcar.run(params(kube, tmp_path, **upgrade), check_mode=True)
    assert sorted(a["instance_id"] for a in planned["actions"] if a["action"] == "replace") == sorted(old_servers)
    assert {(a["action"], a["kind"]) for a in planned["actions"] if "kind" in a} >= {
        ("create", "Secret"), ("create", "AWSMachineTemplate"), ("update", "MachineDeployment")}

    result = flatcar.run(params(kube, tmp_path, **upgrade), check_mode=False)
    assert controllers.error is None
    steps = [(a["action"], a.get("role")) for a in result["actions"] if a["action"] in ("launch", "drain", "terminate")]
    # One server at a time: the new one Ready before an old one is drained and its Machine deleted.
    assert steps == [("launch", "server"), ("drain", None), ("terminate", "server")] * 3
    assert [a["instance_id"] for a in result["actions"] if a["action"] == "terminate"] == sorted(old_servers)
    assert all(a.get("node") for a in result["actions"] if a["action"] == "launch")
    # Petra lifted its hook before deleting: CAPI never had to wait on it during the roll.
    assert not controllers.hook_waits & old_servers
    assert set(controllers.deleted_machines) >= old_servers
    # The roll drained each old server through evictions (DaemonSet pods stay), as in standalone mode.
    evicted = {name for namespace, name, status in kube.evictions if status == 201}
    assert {name for name in evicted if name.startswith("web-")} and not any(n.startswith("cilium-") for n in evicted)
    assert result["machine_template"] != old_template
    deployments = listing(kube, "cluster.x-k8s.io/v1beta2", "machinedeployments")
    assert {md["spec"]["template"]["spec"]["infrastructureRef"]["name"] for md in deployments} == {result["machine_template"]}
    assert {md["spec"]["template"]["spec"]["version"] for md in deployments} == {"v1.33.5+k3s1"}
    assert result["outdated"] == [] and not {m["machine"] for m in result["servers"]} & old_servers
    machines = listing(kube, "cluster.x-k8s.io/v1beta2", "machines")
    assert len(machines) == 5 and not any(m["metadata"].get("labels", {}).get("petra.dev/bootstrap") for m in machines)
    validate_all(petra_objects(kube), tmp_path)
    templates = listing(kube, "infrastructure.cluster.x-k8s.io/v1beta2", "awsmachinetemplates")
    # The old template went once the agents' roll was through (nothing used it any more).
    assert {t["metadata"]["name"]: t["spec"]["template"]["spec"]["ami"]["id"] for t in templates} == {
        result["machine_template"]: "ami-0f9e8d7c6b5a40312"}
    assert ("delete", "AWSMachineTemplate", old_template) in {
        (a["action"], a.get("kind"), a.get("name")) for a in result["actions"]}
    assert flatcar.run(params(kube, tmp_path, **upgrade), check_mode=False)["changed"] is False


def test_a_rotation_deletes_the_superseded_objects_once_no_machine_uses_them(kube, controllers, tmp_path):
    def names(api, plural):
        return {item["metadata"]["name"] for item in listing(kube, api, plural)}

    small = dict(servers=1, agents=1, capi={"availability_zones": []})
    first = flatcar.run(params(kube, tmp_path, **small), check_mode=False)
    old = set(first["bootstrap_secrets"].values()) | {first["machine_template"]}
    assert old <= set(secrets(kube)) | names(*TEMPLATES) and first["superseded_in_use"] == []
    rotation = dict(small, release_name="v1.33.5+k3s1", image="ami-0f9e8d7c6b5a40312")
    old_init, old_join, old_agent = (first["bootstrap_secrets"][kind] for kind in ("server-init", "server", "agent"))

    # New agents never get a Node, the server is only reported: every old object but the join data stays in use.
    controllers.kubelets = False
    planned = flatcar.run(params(kube, tmp_path, update_strategy="none", **rotation), check_mode=True)
    deletes = {a["name"]: a["why"] for a in planned["actions"] if a["action"] == "delete"}
    # Check mode names what goes now and what goes once the agents rolled; not what the staying server uses.
    assert deletes == {old_join: "superseded", old_agent: "superseded; once no Machine uses it",
                       first["machine_template"]: "superseded; once no Machine uses it"}
    held = flatcar.run(params(kube, tmp_path, update_strategy="none", capi=dict(small["capi"], wait=False),
                              **{k: v for k, v in rotation.items() if k != "capi"}), check_mode=False)
    assert [(a["kind"], a["name"]) for a in held["actions"] if a["action"] == "delete"] == [("Secret", old_join)]
    in_use = {item["name"]: item["used_by"] for item in held["superseded_in_use"]}
    assert set(in_use) == {old_init, old_agent, first["machine_template"]}
    assert in_use[old_init] == ["Machine/edge-1-server-0"]
    # The old agent's AWSMachine was cloned from the old template; its Machine names the old bootstrap data.
    assert any(user.startswith("AWSMachine/edge-1-agents-") for user in in_use[first["machine_template"]])
    assert any(user.startswith("Machine/edge-1-agents-") for user in in_use[old_agent])
    assert old - {old_join} <= set(secrets(kube)) | names(*TEMPLATES)

    # The agents roll, the server is replaced: then nothing uses the old objects and they go; the new ones stay.
    controllers.kubelets = True
    rolled = flatcar.run(params(kube, tmp_path, **rotation), check_mode=False)
    assert controllers.error is None and rolled["superseded_in_use"] == []
    gone = [(a["kind"], a["name"]) for a in rolled["actions"] if a["action"] == "delete"]
    assert sorted(gone) == sorted([("Secret", old_init), ("Secret", old_agent),
                                   ("AWSMachineTemplate", first["machine_template"])])
    # Deleted after the last action of the roll: the old server's Machine was gone by then.
    steps = [a["action"] for a in rolled["actions"]]
    assert steps.index("delete") > steps.index("terminate")
    assert not old & (set(secrets(kube)) | names(*TEMPLATES))
    assert {rolled["bootstrap_secrets"]["server"], rolled["bootstrap_secrets"]["agent"]} <= set(secrets(kube))
    assert names(*TEMPLATES) == {rolled["machine_template"]}
    assert flatcar.run(params(kube, tmp_path, **rotation), check_mode=False)["changed"] is False

    # absent leaves nothing of the cluster in the management cluster.
    flatcar.run(params(kube, tmp_path, state="absent", **rotation), check_mode=False)
    assert petra_objects(kube) == [] and secrets(kube) == {}
    assert not any(listing(kube, api, plural) for api, plural in KINDS)


def test_quorum_guard_stops_the_server_roll(kube, controllers, tmp_path):
    flatcar.run(params(kube, tmp_path, agents=0), check_mode=False)
    machines = sorted(listing(kube, "cluster.x-k8s.io/v1beta2", "machines"), key=lambda m: m["metadata"]["name"])
    for machine in machines[1:]:
        requests.patch("%s/api/v1/nodes/%s" % (kube.url, machine["status"]["nodeRef"]["name"]),
                       json={"status": {"conditions": [{"type": "Ready", "status": "False"}]}},
                       headers={"Content-Type": "application/merge-patch+json"}, timeout=10).raise_for_status()
    with pytest.raises(PetraError, match="quorum") as caught:
        flatcar.run(params(kube, tmp_path, agents=0, release_name="v1.33.5+k3s1"), check_mode=False)
    assert caught.value.details["reason"] == "quorum"
    assert caught.value.details["stopped_at"]["step"] == "quorum-check"
    assert len(listing(kube, "cluster.x-k8s.io/v1beta2", "machines")) == 3


def test_bounded_wait_names_the_machines_and_conditions(kube, controllers, tmp_path):
    controllers.kubelets = False
    with pytest.raises(PetraError) as caught:
        flatcar.run(params(kube, tmp_path, servers=1, agents=0, node_ready_timeout=1), check_mode=False)
    assert caught.value.details["reason"] == "capi-timeout"
    assert caught.value.details["machines_not_ready"] == ["edge-1-server-0"]
    assert "Machine edge-1-server-0: node none" in str(caught.value) and "InfrastructureReady=True" in str(caught.value)


def test_absent_deletes_the_cluster_then_what_petra_made(kube, controllers, tmp_path):
    flatcar.run(params(kube, tmp_path, agents=1), check_mode=False)
    planned = flatcar.run(params(kube, tmp_path, state="absent"), check_mode=True)
    assert [(a["action"], a["kind"]) for a in planned["actions"]][:2] == [
        ("delete", "MachineHealthCheck"), ("delete", "Cluster")]
    assert len(petra_objects(kube)) > 0

    removed = flatcar.run(params(kube, tmp_path, state="absent"), check_mode=False)
    assert controllers.error is None
    order = [(a["action"], a["kind"]) for a in removed["actions"]]
    assert order[:2] == [("delete", "MachineHealthCheck"), ("delete", "Cluster")]
    assert ("delete", "Namespace") == order[-1]
    # The stand-in CAPI deletes no Machine while a pre-terminate hook is on it: Petra lifted the servers' hooks.
    assert {"edge-1-server-0", "edge-1-server-1", "edge-1-server-2"} <= set(controllers.deleted_machines)
    assert petra_objects(kube) == [] and secrets(kube) == {}
    assert requests.get("%s/apis/cluster.x-k8s.io/v1beta2/namespaces/%s/clusters/edge-1" % (kube.url, NS),
                        timeout=10).status_code == 404
    assert flatcar.run(params(kube, tmp_path, state="absent"), check_mode=False)["changed"] is False


def test_refusals_say_what_to_do(kube, tmp_path):
    with pytest.raises(PetraError, match="0.0.0.0/0"):
        flatcar.run(params(kube, tmp_path, api_cidrs=[]), check_mode=True)
    with pytest.raises(PetraError, match="hop"):
        flatcar.run(params(kube, tmp_path, metadata_hop_limit=2), check_mode=True)
    with pytest.raises(PetraError, match="config_s3_prefix"):
        flatcar.run(params(kube, tmp_path, capi={"ignition_storage": "s3"}), check_mode=True)
    with pytest.raises(PetraError, match="odd number"):
        flatcar.run(params(kube, tmp_path, servers=2), check_mode=True)
