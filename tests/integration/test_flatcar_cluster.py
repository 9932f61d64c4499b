"""Standalone clusters on EC2 (moto server) with rolling replacement drained through a Kubernetes API (kmock)."""

import base64
import hashlib
import json
import threading
import time

import boto3
import kubernetes
import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.petra.core.plugins.module_utils.errors import PetraError
from ansible_collections.petra.core.plugins.module_utils.adapters import flatcar
from ansible_collections.petra.core.tests.support.kube import KubeAPI

REGION = "us-east-1"
CREDS = dict(aws_access_key_id="testing", aws_secret_access_key="testing")


def validated(params):
    result = ArgumentSpecValidator(flatcar.ARGUMENT_SPEC).validate(params)
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


def aws_params(moto, **extra):
    params = {"region": REGION, "access_key": "testing", "secret_key": "testing", "endpoint_url": moto.endpoint}
    params.update(extra)
    return validated(params)


def render(moto, role, release, cluster_init=False):
    """A real rendered Ignition config; ``release`` stands for the k3s build the nodes run."""
    params = aws_params(moto, state="rendered", node_role=role, cluster_init=cluster_init, token="s3cr3t-token",
                        server_url=None if cluster_init else "https://api.cluster.internal:6443",
                        k3s={"url": "s3://artifacts/k3s/%s/k3s" % release,
                             "sha256": hashlib.sha256(release.encode()).hexdigest()})
    return flatcar.run(params, check_mode=False)["user_data"]


class Environment:
    def __init__(self, moto, name):
        self.moto = moto
        self.name = name
        self.ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto.endpoint, **CREDS)
        self.ssm = boto3.client("ssm", region_name=REGION, endpoint_url=moto.endpoint, **CREDS)
        self.iam = boto3.client("iam", region_name=REGION, endpoint_url=moto.endpoint, **CREDS)
        kms = boto3.client("kms", region_name=REGION, endpoint_url=moto.endpoint, **CREDS)
        self.kms_key = kms.create_key(Description="root volumes")["KeyMetadata"]["Arn"]
        vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnets = [self.ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.%d.0/24" % index,
                                               AvailabilityZone=REGION + zone)["Subnet"]["SubnetId"]
                        for index, zone in ((1, "a"), (2, "b"))]
        self.images = [self.register_image("flatcar-stable-%s" % version) for version in ("4230.2.3", "4230.2.4")]
        self.parameter = "/petra/%s/flatcar-ami" % name
        self.ssm.put_parameter(Name=self.parameter, Value=self.images[0], Type="String")
        self.configs = {}
        self.release("v1.33.4+k3s1")

    def register_image(self, name):
        volume = self.ec2.create_volume(Size=8, AvailabilityZone=REGION + "a")["VolumeId"]
        snapshot = self.ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
        return self.ec2.register_image(Name=name, RootDeviceName="/dev/xvda", VirtualizationType="hvm",
                                       Architecture="x86_64", BlockDeviceMappings=[
                                           {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot}}])["ImageId"]

    def release(self, name):
        self.configs = {"init": render(self.moto, "server", name, cluster_init=True),
                        "server": render(self.moto, "server", name), "agent": render(self.moto, "agent", name)}

    def params(self, servers=3, agents=2, **extra):
        base = dict(state="present", cluster_name=self.name, image="resolve:ssm:" + self.parameter,
                    subnets=self.subnets, api_cidrs=["10.20.0.0/16"], kms_key_id=self.kms_key, wait_timeout=60,
                    servers={"count": servers, "instance_type": "m6i.large", "user_data": self.configs["server"],
                             "init_user_data": self.configs["init"]},
                    agents={"count": agents, "instance_type": "m6i.xlarge", "user_data": self.configs["agent"]})
        base.update(extra)
        return aws_params(self.moto, **base)

    def instances(self, states=("pending", "running")):
        answer = self.ec2.describe_instances(Filters=[{"Name": "tag:petra:cluster", "Values": [self.name]},
                                                      {"Name": "instance-state-name", "Values": list(states)}])
        return [item for reservation in answer["Reservations"] for item in reservation["Instances"]]


def tags(item):
    return {tag["Key"]: tag["Value"] for tag in item.get("Tags") or []}


class Kubelets(threading.Thread):
    """Stands in for k3s on each instance: registers a Ready Node with the instance's private IP, and runs pods."""

    def __init__(self, env, kubeconfig):
        super().__init__(daemon=True)
        self.env = env
        self.core = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(config_file=kubeconfig))
        self.registered = {}
        self.stop = threading.Event()
        self.error = None

    def run(self):
        try:
            while not self.stop.is_set():
                for item in self.env.instances(states=("running",)):
                    if item["InstanceId"] not in self.registered:
                        self.register(item)
                self.stop.wait(0.05)
        except Exception as exc:  # reported by the test that started the thread
            self.error = exc

    def register(self, item):
        name = "ip-%s" % item["PrivateIpAddress"].replace(".", "-")
        self.core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {
            "node-role.kubernetes.io/%s" % tags(item)["petra:role"]: "true"}}, "status": {
            "addresses": [{"type": "InternalIP", "address": item["PrivateIpAddress"]}, {"type": "Hostname", "address": name}],
            "conditions": [{"type": "Ready", "status": "True"}]}})
        for pod, owner, namespace in (("web-" + name, "ReplicaSet", "apps"), ("cilium-" + name, "DaemonSet", "kube-system")):
            self.core.create_namespaced_pod(namespace, {
                "apiVersion": "v1", "kind": "Pod", "metadata": {
                    "name": pod, "namespace": namespace, "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner, "name": "x", "uid": "u"}]},
                "spec": {"nodeName": name, "containers": [{"name": "c", "image": "registry.internal/app@sha256:" + "a" * 64}]},
                "status": {"phase": "Running"}})
        self.registered[item["InstanceId"]] = name

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.join(5)

    def wait_for(self, count, timeout=20):
        deadline = time.monotonic() + timeout
        while len(self.registered) < count:
            assert self.error is None, self.error
            assert time.monotonic() < deadline, "only %d nodes registered" % len(self.registered)
            time.sleep(0.05)


@pytest.fixture
def env(moto, request):
    return Environment(moto, request.node.name.replace("_", "-")[:30])


@pytest.fixture
def kube(tmp_path):
    with KubeAPI(str(tmp_path)) as api:
        yield api


def test_create_is_hardened_spread_and_idempotent(env):
    result = flatcar.run(env.params(), check_mode=False)
    assert result["changed"] is True
    assert result["image_id"] == env.images[0]
    instances = env.instances()
    assert sorted(tags(item)["petra:role"] for item in instances) == ["agent", "agent", "server", "server", "server"]
    servers = [item for item in instances if tags(item)["petra:role"] == "server"]
    assert sorted(item["SubnetId"] for item in servers) == sorted([env.subnets[0], env.subnets[0], env.subnets[1]])
    bootstrap = [item for item in servers if tags(item).get("petra:bootstrap") == "true"]
    assert len(bootstrap) == 1
    assert tags(bootstrap[0])["petra:config-sha256"] == hashlib.sha256(env.configs["init"].encode()).hexdigest()
    init_data = env.ec2.describe_instance_attribute(InstanceId=bootstrap[0]["InstanceId"], Attribute="userData")
    assert json.loads(base64.b64decode(init_data["UserData"]["Value"])) == json.loads(env.configs["init"])
    # moto does not apply launch-template fields to instances; what the request carries itself is checked here,
    # the rest on the template versions below.
    for item in instances:
        assert "KeyName" not in item
        assert item["MetadataOptions"]["HttpTokens"] == "required"
        assert item["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
        assert tags(item)["petra:image"] == env.images[0]

    for role, instance_type in (("server", "m6i.large"), ("agent", "m6i.xlarge")):
        version = env.ec2.describe_launch_template_versions(
            LaunchTemplateName="petra-%s-%s" % (env.name, role), Versions=["$Latest"])["LaunchTemplateVersions"][0]
        data = version["LaunchTemplateData"]
        assert "KeyName" not in data
        assert data["InstanceType"] == instance_type
        assert data["MetadataOptions"] == {"HttpTokens": "required", "HttpPutResponseHopLimit": 1,
                                           "HttpEndpoint": "enabled", "InstanceMetadataTags": "disabled"}
        ebs = data["BlockDeviceMappings"][0]["Ebs"]
        assert (ebs["Encrypted"], ebs["VolumeType"], ebs["KmsKeyId"]) == (True, "gp3", env.kms_key)
        assert json.loads(base64.b64decode(data["UserData"])) == json.loads(env.configs[role])
        assert data["IamInstanceProfile"] == {"Name": "petra-%s-node" % env.name}
        carried = set(data["SecurityGroupIds"])
        assert len(carried) == (3 if role == "server" else 1)

    groups = {group["GroupName"]: group for group in env.ec2.describe_security_groups(
        Filters=[{"Name": "tag:petra:cluster", "Values": [env.name]}])["SecurityGroups"]}
    nodes_group = groups["petra-%s-nodes" % env.name]
    ports = sorted((rule["IpProtocol"], rule["FromPort"]) for rule in nodes_group["IpPermissions"])
    assert ports == [("tcp", 4240), ("tcp", 4244), ("tcp", 6443), ("tcp", 10250), ("udp", 8472)]
    assert all(rule["UserIdGroupPairs"][0]["GroupId"] == nodes_group["GroupId"] and not rule["IpRanges"]
               for rule in nodes_group["IpPermissions"])
    # etcd only between servers: a group only the server template carries.
    servers_group = groups["petra-%s-servers" % env.name]
    assert [(rule["FromPort"], rule["ToPort"], rule["UserIdGroupPairs"][0]["GroupId"])
            for rule in servers_group["IpPermissions"]] == [(2379, 2380, servers_group["GroupId"])]
    api_rules = groups["petra-%s-api" % env.name]["IpPermissions"]
    assert [(rule["FromPort"], [r["CidrIp"] for r in rule["IpRanges"]]) for rule in api_rules] == [(6443, ["10.20.0.0/16"])]
    attached = env.iam.list_attached_role_policies(RoleName="petra-%s-node" % env.name)["AttachedPolicies"]
    assert [policy["PolicyArn"] for policy in attached] == ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"]
    read = env.iam.get_role_policy(RoleName="petra-%s-node" % env.name, PolicyName="petra-node-read")["PolicyDocument"]
    # Ignition fetches k3s from S3 with the instance role: exactly the objects the configs name, nothing wider.
    assert read["Statement"] == [{"Sid": "ReadNodeArtifacts", "Effect": "Allow", "Action": "s3:GetObject",
                                  "Resource": ["arn:aws:s3:::artifacts/k3s/v1.33.4+k3s1/k3s"]}]

    again = flatcar.run(env.params(), check_mode=False)
    assert again["changed"] is False and again["actions"] == [] and again["outdated"] == []


def test_scale_up_check_mode_then_for_real(env):
    flatcar.run(env.params(servers=1, agents=1), check_mode=False)
    planned = flatcar.run(env.params(servers=1, agents=3), check_mode=True)
    assert planned["changed"] is True
    assert [(a["action"], a["role"]) for a in planned["actions"]] == [("launch", "agent"), ("launch", "agent")]
    assert len(env.instances()) == 2
    done = flatcar.run(env.params(servers=1, agents=3), check_mode=False)
    assert [(a["action"], a["role"]) for a in done["actions"]] == [("launch", "agent"), ("launch", "agent")]
    agents = [item for item in env.instances() if tags(item)["petra:role"] == "agent"]
    assert sorted(item["SubnetId"] for item in agents).count(env.subnets[0]) == 2


def test_node_read_policy_follows_the_configs(env):
    flatcar.run(env.params(servers=1, agents=0), check_mode=False)
    env.release("v1.33.5+k3s1")
    key = "arn:aws:kms:us-east-1:123456789012:key/0b1e7c55-5a8e-4c5e-9d55-3f4d2a1b0c9d"
    params = env.params(servers=1, agents=0, update_strategy="none", node_s3_read=["s3://petra-configs/" + env.name],
                        node_kms_key_arns=[key])
    planned = flatcar.run(params, check_mode=True)
    assert [a["action"] for a in planned["actions"] if a["action"].endswith("role-policy")] == ["put-role-policy"]
    done = flatcar.run(params, check_mode=False)
    assert len(done["outdated"]) == 1
    read = env.iam.get_role_policy(RoleName="petra-%s-node" % env.name, PolicyName="petra-node-read")["PolicyDocument"]
    assert read["Statement"] == [
        {"Sid": "ReadNodeArtifacts", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": ["arn:aws:s3:::artifacts/k3s/v1.33.5+k3s1/k3s", "arn:aws:s3:::petra-configs/%s*" % env.name]},
        {"Sid": "DecryptNodeArtifacts", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": [key]}]
    with pytest.raises(PetraError, match="not a key ARN"):
        flatcar.run(env.params(servers=1, agents=0, node_kms_key_arns=["alias/petra"]), check_mode=False)


def test_refusals_say_what_to_do(env):
    with pytest.raises(PetraError, match="odd number"):
        flatcar.run(env.params(servers=2), check_mode=False)
    flatcar.run(env.params(servers=1, agents=2), check_mode=False)
    with pytest.raises(PetraError, match="kubeconfig") as caught:
        flatcar.run(env.params(servers=1, agents=1), check_mode=False)
    assert caught.value.details["reason"] == "kubeconfig-needed"
    env.ssm.put_parameter(Name=env.parameter, Value=env.images[1], Type="String", Overwrite=True)
    plan = flatcar.run(env.params(servers=1, agents=2), check_mode=True)
    assert sorted(a["role"] for a in plan["actions"] if a["action"] == "replace") == ["agent", "agent", "server"]
    with pytest.raises(PetraError, match="older AMI or config") as caught:
        flatcar.run(env.params(servers=1, agents=2), check_mode=False)
    assert len(caught.value.details["outdated"]) == 3
    report = flatcar.run(env.params(servers=1, agents=2, update_strategy="none"), check_mode=False)
    assert len(report["outdated"]) == 3 and report["changed"] is False


def test_rolling_replacement_servers_first_with_drains(env, kube):
    flatcar.run(env.params(), check_mode=False)
    with Kubelets(env, kube.kubeconfig) as kubelets:
        kubelets.wait_for(5)
        old = {item["InstanceId"]: kubelets.registered[item["InstanceId"]] for item in env.instances()}
        env.ssm.put_parameter(Name=env.parameter, Value=env.images[1], Type="String", Overwrite=True)
        env.release("v1.33.5+k3s1")
        roll = dict(kubeconfig=kube.kubeconfig, poll_interval=0.05, node_ready_timeout=20, drain_timeout=10)
        planned = flatcar.run(env.params(**roll), check_mode=True)
        assert sorted(a["instance_id"] for a in planned["actions"] if a["action"] == "replace") == sorted(old)
        assert len(env.instances()) == 5

        result = flatcar.run(env.params(**roll), check_mode=False)
    assert kubelets.error is None
    steps = [(a["action"], a.get("role")) for a in result["actions"] if a["action"] in ("launch", "drain", "terminate")]
    # Servers surge (the new one Ready before the old one leaves), agents drain first; servers before agents.
    assert steps == [("launch", "server"), ("drain", None), ("terminate", "server")] * 3 + \
        [("drain", None), ("terminate", "agent"), ("launch", "agent")] * 2
    assert all(a.get("node") for a in result["actions"] if a["action"] == "launch")
    final = env.instances()
    assert len(final) == 5 and not set(old) & {item["InstanceId"] for item in final}
    assert all(item["ImageId"] == env.images[1] for item in final)
    assert not any(tags(item).get("petra:bootstrap") for item in final)
    evicted = {name for namespace, name, status in kube.evictions if status == 201}
    assert evicted == {"web-" + name for name in old.values()}
    assert not any(name.startswith("cilium-") for namespace, name, status in kube.evictions)
    remaining = {node.metadata.name for node in kubelets.core.list_node().items}
    assert remaining == set(kubelets.registered[item["InstanceId"]] for item in final)
    cordons = [path for method, path, data in kube.requests() if method.endswith("PATCH") and "/nodes/" in path]
    assert sorted(path.rsplit("/", 1)[1] for path in cordons) == sorted(old.values())
    assert result["outdated"] == []


def test_blocked_drain_stops_the_roll_and_a_rerun_resumes(env, kube):
    flatcar.run(env.params(servers=1, agents=2), check_mode=False)
    with Kubelets(env, kube.kubeconfig) as kubelets:
        kubelets.wait_for(3)
        agents = sorted((item for item in env.instances() if tags(item)["petra:role"] == "agent"),
                        key=lambda item: (item["LaunchTime"], item["InstanceId"]))
        blocked_node = kubelets.registered[agents[0]["InstanceId"]]
        kube.blocked[("apps", "web-" + blocked_node)] = -1
        env.release("v1.33.5+k3s1")
        roll = dict(kubeconfig=kube.kubeconfig, poll_interval=0.05, node_ready_timeout=20, drain_timeout=1)
        with pytest.raises(PetraError) as caught:
            flatcar.run(env.params(servers=1, agents=2, **roll), check_mode=False)
        details = caught.value.details
        assert details["reason"] == "drain-blocked"
        assert details["stopped_at"] == {"instance_id": agents[0]["InstanceId"], "role": "agent", "step": "drain"}
        assert details["pods_blocked"] == ["apps/web-" + blocked_node]
        assert "disruption budget" in str(caught.value).lower() or "PodDisruptionBudget" in str(caught.value)
        by_role = {}
        for item in env.instances():
            by_role.setdefault(tags(item)["petra:role"], []).append(item)
        assert tags(by_role["server"][0])["petra:config-sha256"] == hashlib.sha256(
            env.configs["server"].encode()).hexdigest()
        assert agents[0]["InstanceId"] in {item["InstanceId"] for item in by_role["agent"]}

        kube.blocked.clear()
        resumed = flatcar.run(env.params(servers=1, agents=2, **roll), check_mode=False)
    replaced = [a["instance_id"] for a in resumed["actions"] if a["action"] == "terminate"]
    assert replaced == [agent["InstanceId"] for agent in agents]
    assert resumed["outdated"] == []


def test_quorum_guard_refuses_to_remove_a_server(env, kube):
    flatcar.run(env.params(servers=3, agents=0), check_mode=False)
    with Kubelets(env, kube.kubeconfig) as kubelets:
        kubelets.wait_for(3)
        # The first server the roll replaces is the oldest; the other two are NotReady.
        servers = sorted(env.instances(), key=lambda item: (item["LaunchTime"], item["InstanceId"]))
        for name in [kubelets.registered[item["InstanceId"]] for item in servers[1:]]:
            kubelets.core.patch_node_status(name, {"status": {"conditions": [{"type": "Ready", "status": "False"}]}})
        env.release("v1.33.5+k3s1")
        with pytest.raises(PetraError, match="quorum") as caught:
            flatcar.run(env.params(servers=3, agents=0, kubeconfig=kube.kubeconfig, poll_interval=0.05,
                                   node_ready_timeout=20), check_mode=False)
    assert caught.value.details["reason"] == "quorum"
    assert caught.value.details["stopped_at"]["step"] == "quorum-check"


def test_absent_removes_everything_it_created(env):
    flatcar.run(env.params(servers=1, agents=1), check_mode=False)
    planned = flatcar.run(aws_params(env.moto, state="absent", cluster_name=env.name), check_mode=True)
    assert planned["changed"] is True and len(env.instances()) == 2
    removed = flatcar.run(aws_params(env.moto, state="absent", cluster_name=env.name), check_mode=False)
    assert {a["action"] for a in removed["actions"]} >= {"terminate", "delete-launch-template", "delete-security-group",
                                                         "delete-instance-profile", "delete-role"}
    assert env.instances(states=("pending", "running", "stopping", "stopped")) == []
    assert env.ec2.describe_launch_templates(Filters=[{"Name": "tag:petra:cluster", "Values": [env.name]}])[
        "LaunchTemplates"] == []
    assert env.ec2.describe_security_groups(Filters=[{"Name": "tag:petra:cluster", "Values": [env.name]}])[
        "SecurityGroups"] == []
    with pytest.raises(env.iam.exceptions.NoSuchEntityException):
        env.iam.get_role(RoleName="petra-%s-node" % env.name)
    again = flatcar.run(aws_params(env.moto, state="absent", cluster_name=env.name), check_mode=False)
    assert again["changed"] is False


def test_scale_down_drains_the_newest_and_keeps_quorum(env, kube):
    flatcar.run(env.params(servers=3, agents=2), check_mode=False)
    with Kubelets(env, kube.kubeconfig) as kubelets:
        kubelets.wait_for(5)
        before = {tags(item)["petra:role"]: [] for item in env.instances()}
        for item in sorted(env.instances(), key=lambda item: (item["LaunchTime"], item["InstanceId"])):
            before[tags(item)["petra:role"]].append(item["InstanceId"])
        result = flatcar.run(env.params(servers=1, agents=1, kubeconfig=kube.kubeconfig, poll_interval=0.05),
                             check_mode=False)
    terminated = [(a["role"], a["instance_id"]) for a in result["actions"] if a["action"] == "terminate"]
    assert sorted(terminated) == sorted([("server", i) for i in before["server"][1:]] + [("agent", before["agent"][1])])
    assert {item["InstanceId"] for item in env.instances()} == {before["server"][0], before["agent"][0]}
    evicted = {name for namespace, name, status in kube.evictions if status == 201}
    assert evicted == {"web-" + kubelets.registered[i] for role, i in terminated}
    remaining = {node.metadata.name for node in kubelets.core.list_node().items}
    assert remaining == {kubelets.registered[before["server"][0]], kubelets.registered[before["agent"][0]]}


def test_interrupted_server_surge_resumes_only_once_the_new_server_is_ready(env, kube):
    flatcar.run(env.params(servers=1, agents=0), check_mode=False)
    kubelets = Kubelets(env, kube.kubeconfig)
    kubelets.start()
    try:
        kubelets.wait_for(1)
        old = env.instances()[0]["InstanceId"]
        env.release("v1.33.5+k3s1")
        kubelets.stop.set()  # the new server will not register: its launch step times out
        kubelets.join(5)
        roll = dict(kubeconfig=kube.kubeconfig, poll_interval=0.05, node_ready_timeout=1)
        with pytest.raises(PetraError) as caught:
            flatcar.run(env.params(servers=1, agents=0, **roll), check_mode=False)
        assert caught.value.details["stopped_at"]["step"] == "launch"
        assert caught.value.details["reason"] == "node-not-ready"
        # Re-run while the new server is still not Ready: the old, Ready server must not be removed.
        with pytest.raises(PetraError) as caught:
            flatcar.run(env.params(servers=1, agents=0, **roll), check_mode=False)
        assert caught.value.details["stopped_at"]["step"] == "wait-ready"
        assert old in {item["InstanceId"] for item in env.instances()} and len(env.instances()) == 2

        kubelets = Kubelets(env, kube.kubeconfig)
        kubelets.registered[old] = kubelets.core.list_node().items[0].metadata.name
        kubelets.start()
        resumed = flatcar.run(env.params(servers=1, agents=0, **dict(roll, node_ready_timeout=20)), check_mode=False)
    finally:
        kubelets.stop.set()
        kubelets.join(5)
    assert [a["instance_id"] for a in resumed["actions"] if a["action"] == "terminate"] == [old]
    assert not [a for a in resumed["actions"] if a["action"] == "launch"]
    assert resumed["outdated"] == [] and len(env.instances()) == 1
