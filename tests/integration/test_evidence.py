"""petra_evidence against real components: a Petra cluster created by petra_flatcar in moto server (EC2, IAM, KMS,
SSM, CloudTrail, S3), kmock as its Kubernetes API holding objects checked against the Kubernetes and CRD schemas,
and a real bundle with a verified source signature loaded into a high-side docker-registry with a trust state.

The compliant set-up satisfies every objective Petra can test; each breakage fails the checks and objectives it
should, naming what is wrong. The OSCAL document is parsed back with compliance-trestle's models, every link and hash
is checked, and openssl verifies both signatures.
"""

import base64
import copy
import hashlib
import json
import os
import shutil
import subprocess
import types

import boto3
import pytest
import requests
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from cryptography.hazmat.primitives import serialization

from ansible_collections.petra.core.plugins.module_utils.adapters import evidence, flatcar
from ansible_collections.petra.core.plugins.module_utils.adapters.bundle import run_load
from ansible_collections.petra.core.plugins.module_utils.bundle.create import create_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.custody.verification import SourceVerifier
from ansible_collections.petra.core.plugins.module_utils.diode import s3transport, transfer
from ansible_collections.petra.core.plugins.module_utils.aws.client import AWSConnection
from ansible_collections.petra.core.plugins.module_utils.evidence import collect_running, results
from ansible_collections.petra.core.plugins.module_utils.evidence.assess import SOURCES
from ansible_collections.petra.core.plugins.module_utils.evidence.checks import REGISTRY
from ansible_collections.petra.core.plugins.module_utils.evidence.checks_running import RUNNING
from ansible_collections.petra.core.plugins.module_utils.evidence.store import EvidenceStore
from ansible_collections.petra.core.plugins.module_utils.manifests.validate import check_manifests
from ansible_collections.petra.core.plugins.module_utils.oci.auth import Credentials
from ansible_collections.petra.core.plugins.module_utils.oci.registry import ClientPool
from ansible_collections.petra.core.plugins.module_utils.platform import gatekeeper, imagepolicy, runtime
from ansible_collections.petra.core.plugins.module_utils.signing.keys import load_signer
from ansible_collections.petra.core.tests.conftest import CRD_DIR, REGISTRY_USER
from ansible_collections.petra.core.tests.integration.test_load import HIGH_USER, params_for
from ansible_collections.petra.core.tests.support import cosign_signer, images, pki, servers
from ansible_collections.petra.core.tests.support.kube import KubeAPI
from ansible_collections.petra.core.tests.unit.test_flatcar_buildinfo import fake_binary

REGION = "us-east-1"
CREDS = dict(aws_access_key_id="testing", aws_secret_access_key="testing")
API_CIDRS = ["10.20.0.0/16"]
FIPS = {"GOFIPS140": "v1.0.0", "CGO_ENABLED": "1", "GOOS": "linux"}
TOKEN = "k3s-Secret-Token-9f8e7d"


def validated(spec, params):
    result = ArgumentSpecValidator(spec).validate(params)
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


def aws_params(moto, **extra):
    return dict({"region": REGION, "access_key": "testing", "secret_key": "testing", "endpoint_url": moto.endpoint},
                **extra)


# ---- the custody side: a signed source image, a bundle carrying it, a high-side registry it is loaded into ----

@pytest.fixture(scope="module")
def carried(registry, tmp_path_factory):
    """An image in the source registry signed with a source key, a bundle carrying it (source signature verified),
    and a second, unsigned image that no bundle carries."""
    work = tmp_path_factory.mktemp("evidence-sources")
    server = registry.registry
    layout = str(work / "layout")
    digest = images.build_image(layout, "evapp", ["evidence-app"], layer_size=20_000)
    stray = images.build_image(layout, "evstray", ["evidence-stray"], layer_size=20_000)
    images.push(layout, "evapp", server, "evidence/app", "1.0", creds=REGISTRY_USER)
    source_key = str(work / "source.pem")
    source_pub = pki.write_ec_key(source_key)
    with open(source_key, "rb") as handle:
        private = serialization.load_pem_private_key(handle.read(), None)
    cosign_signer.sign_legacy(cosign_signer.Pusher(server, REGISTRY_USER), "evidence/app",
                              "%s/evidence/app" % server.host, digest, lambda data: cosign_signer.der_sign(private, data))
    bundle_key = str(work / "bundle.pem")
    bundle_pub = pki.write_ec_key(bundle_key)
    pool = ClientPool(Credentials(*REGISTRY_USER), ca_file=server.tls["ca.pem"], retries=1)

    def build(name, rules):
        spec = BundleSpec({"apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
                           "metadata": {"name": name, "version": "1.0.0"},
                           "images": [{"ref": "%s/evidence/app:1.0" % server.host}]}, str(work))
        return create_bundle(spec, str(work / ("%s.tar.zst" % name)), load_signer(bundle_key), pool,
                             environ={"SOURCE_DATE_EPOCH": "1767225600"}, verifier=SourceVerifier(rules))["path"]

    signed = build("platform", [{"glob": "%s/evidence/*" % server.host, "key": source_pub}])
    unverified = build("unverified", [{"glob": "%s/evidence/*" % server.host, "method": "none"}])
    # Both bundles crossed: the part indexes petra_diode writes (directory transport), and for the first a receipt
    # as the AWS Diode transport writes it, naming the index with its SHA-256.
    transfers = work / "transfers"
    transfers.mkdir()
    (work / "outbox").mkdir()
    for bundle in (signed, unverified):
        sent = transfer.send_to_directory(bundle, str(work / "outbox"), load_signer(bundle_key), "2MB")
        shutil.copy(os.path.join(str(work / "outbox"), sent["index"]), str(transfers))
    index = next(name for name in os.listdir(str(transfers)) if name.startswith("platform"))
    s3transport.write_receipt(s3transport.receipt([{
        "name": index, "key": "petra/" + index, "sha256": hashlib.sha256((transfers / index).read_bytes()).hexdigest(),
        "transfer": {"transferId": "t-1", "status": "SUCCEEDED", "dateSent": 1767225600, "dateReceived": 1767225660}}],
        "0f5c3b2a-1d2e-4f60-8a9b-0c1d2e3f4a5b", "low-side"), str(transfers / "platform-receipt.json"))
    return types.SimpleNamespace(
        host=server.host, digest=digest, stray=stray, layout=layout, pub=bundle_pub, signed=signed,
        unverified=unverified, transfers=str(transfers), index=index)


def load_into(high, bundle, pub, trust_state):
    return run_load(params_for(high, {"path": bundle, "pub": pub}, trust_state=str(trust_state),
                               trust_state_anchor=None, allow_downgrade=False, threshold=1, cosignatures=None),
                    check_mode=False)


# ---- the AWS side: a cluster petra_flatcar creates, and an account-wide CloudTrail trail ----

def render(moto, binary_sha, cluster_init):
    params = aws_params(moto, state="rendered", node_role="server", cluster_init=cluster_init, token=TOKEN,
                        server_url=None if cluster_init else "https://api.cluster.internal:6443",
                        k3s={"url": "s3://artifacts/k3s/v1.33.4+k3s1/k3s", "sha256": binary_sha})
    return flatcar.run(validated(flatcar.ARGUMENT_SPEC, params), check_mode=False)["user_data"]


def make_cluster(moto, name, binary):
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto.endpoint, **CREDS)
    kms = boto3.client("kms", region_name=REGION, endpoint_url=moto.endpoint, **CREDS)
    ssm = boto3.client("ssm", region_name=REGION, endpoint_url=moto.endpoint, **CREDS)
    kms_key = kms.create_key(Description="root volumes of %s" % name)["KeyMetadata"]["Arn"]
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=REGION + "a")["Subnet"]["SubnetId"]
    volume = ec2.create_volume(Size=8, AvailabilityZone=REGION + "a")["VolumeId"]
    snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    image = ec2.register_image(Name="flatcar-%s" % name, RootDeviceName="/dev/xvda", VirtualizationType="hvm",
                               Architecture="x86_64", BlockDeviceMappings=[
                                   {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot}}])["ImageId"]
    # What petra_flatcar state=imported records on the AMIs it makes.
    ec2.create_tags(Resources=[image], Tags=[{"Key": "petra:source-digest", "Value": "sha256:" + "ab" * 32}])
    ssm.put_parameter(Name="/petra/%s/ami" % name, Value=image, Type="String")
    sha = hashlib.sha256(binary).hexdigest()
    params = aws_params(moto, state="present", cluster_name=name, image="resolve:ssm:/petra/%s/ami" % name,
                        subnets=[subnet], api_cidrs=API_CIDRS, kms_key_id=kms_key, wait_timeout=60,
                        servers={"count": 1, "instance_type": "m6i.large", "user_data": render(moto, sha, False),
                                 "init_user_data": render(moto, sha, True)},
                        agents={"count": 0, "instance_type": "m6i.large", "user_data": render(moto, sha, False)})
    flatcar.run(validated(flatcar.ARGUMENT_SPEC, params), check_mode=False)
    return kms_key


@pytest.fixture(scope="module")
def trail(moto):
    cloudtrail = boto3.client("cloudtrail", region_name=REGION, endpoint_url=moto.endpoint, **CREDS)
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto.endpoint, **CREDS)
    s3.create_bucket(Bucket="petra-evidence-trail")
    cloudtrail.create_trail(Name="organization", S3BucketName="petra-evidence-trail", IsMultiRegionTrail=True,
                            IncludeGlobalServiceEvents=True, EnableLogFileValidation=True)
    cloudtrail.put_event_selectors(TrailName="organization", EventSelectors=[
        {"ReadWriteType": "All", "IncludeManagementEvents": True}])
    cloudtrail.start_logging(Name="organization")
    return cloudtrail


# ---- the nodes as running: what each instance answers the SSM Run Command script (set in the moto harness) ----

APISERVER = ('time="2026-01-01T00:00:00Z" level=info msg="Running kube-apiserver --advertise-port=6443 '
             '--audit-log-maxage=30 --audit-log-path=/var/lib/rancher/k3s/server/logs/audit.log '
             '--audit-policy-file=/etc/rancher/k3s/audit-policy.yaml --token-auth-file=/var/lib/rancher/k3s/server/'
             'cred/passwd --oidc-client-secret=Oidc-Secret-3 '
             '--etcd-servers=postgres://petra:Datastore-Pw-4@db:5432/k3s '
             '--service-account-issuer=https://kubernetes.default.svc.cluster.local"')
# Every form in which k3s's arguments carry a secret. The node script prints only the audit flags; the harness answers
# with all of them, as an older or tampered script would, to show the controller keeps none (defence in depth).
SECRET_ARGS = ["--token", "K10-Join-Secret-1", "-t", "Short-Flag-Secret-2",
               "--kube-apiserver-arg=oidc-client-secret=Oidc-Secret-3",
               "--datastore-endpoint=postgres://petra:Datastore-Pw-4@db:5432/k3s", "--etcd-s3-access-key=Access-Key-5",
               "--vpn-auth=name=tailscale,joinKey=Vpn-Join-Key-6", "--kube-apiserver-arg",
               "audit-log-maxbackup=Not-A-Secret-Kept"]
SECRETS = [TOKEN, "K10-Join-Secret-1", "Short-Flag-Secret-2", "Oidc-Secret-3", "Datastore-Pw-4", "Access-Key-5",
           "Vpn-Join-Key-6"]


LISTENING = {"server": ["*:6443", "*:10250", "10.0.1.5:2379", "127.0.0.1:2379", "10.0.1.5:2380", "127.0.0.1:6444",
                        "127.0.0.1:10248", "[::1]:10248", "*:4240", "*:4244"],
             "agent": ["*:10250", "127.0.0.1:6444", "127.0.0.1:10248", "*:4240", "*:4244"]}


def node_stdout(role, k3s_sha, sshd="inactive", listen22="0", godebug="fips140=on", apiserver=APISERVER,
                file_sha=None, extra_listen=(), usr="ro,seclabel,relatime", auditd="enabled",
                tetragon_time="2026-01-01T00:09:58.123456789Z"):
    """What collect_running's script prints on a Petra node (the unit test runs the script itself); the node's clock
    says 2026-01-01T00:10:00Z."""
    unit = "k3s.service" if role == "server" else "k3s-agent.service"
    lines = ["format=%s" % collect_running.FORMAT, "unit.sshd.service=%s" % sshd, "unit.sshd.socket=inactive",
             "listen22=%s" % listen22, "ports=read"]
    lines += ["listen.tcp=%s" % address for address in LISTENING[role] + list(extra_listen)]
    lines += ["kernel.fips_enabled=0", "usr.device=/dev/mapper/usr", "usr.options=%s" % usr]
    states = {"sshd.service": "masked", "sshd.socket": "masked", "coreos-metadata-sshkeys@core.service": "masked",
              "auditd.service": auditd, unit: "enabled"}
    lines += ["unitfile.%s=%s" % (name, states.get(name, "")) for name in collect_running.UNITS]
    lines += ["enabled.unit=%s" % name for name in ("auditd.service", unit, "systemd-networkd.service")]
    lines += ["tetragon.export=present", "tetragon.mtime=2026-01-01T00:09:58Z",
              "tetragon.time=%s" % tetragon_time, "now=2026-01-01T00:10:00Z"]
    lines += ["k3s.unit=%s" % unit] + ["k3s.arg=%s" % arg for arg in ["/opt/bin/k3s", role, "--token=" + TOKEN] +
                                       SECRET_ARGS]
    lines += ["k3s.env=GODEBUG=%s" % godebug, "k3s.env=K3S_TOKEN=%s" % TOKEN, "k3s.exe=%s" % (file_sha or k3s_sha),
              "k3s.cmdline=server --token %s" % TOKEN]
    if role == "server" and apiserver:
        lines.append("k3s.apiserver=found")
        lines += ["k3s.apiserver.arg=%s" % word.strip('"') for word in apiserver.split(" ")]
    lines += ["file./opt/bin/k3s=%s" % (file_sha or k3s_sha), "end=ok"]
    return "\n".join(lines) + "\n"


def answer_nodes(w, **answer):
    """Every instance of the cluster answers as a compliant node would, changed by ``answer``."""
    pages = w.ec2.describe_instances(Filters=[{"Name": "tag:petra:cluster", "Values": [w.name]}])
    nodes = {}
    for reservation in pages["Reservations"]:
        for item in reservation["Instances"]:
            role = {tag["Key"]: tag["Value"] for tag in item.get("Tags") or []}["petra:role"]
            nodes[item["InstanceId"]] = role
            w.moto.node_answers[item["InstanceId"]] = {"stdout": node_stdout(role, w.k3s_sha, **answer)}
    return nodes


# ---- the Kubernetes side: what petra_platform renders, as the API server holds it ----

def platform_settings(registry_host, public_pem):
    return types.SimpleNamespace(labels={"app.kubernetes.io/managed-by": "petra"}, allowed_registries=[registry_host],
                                 required_labels=[], exempt_namespaces=["kube-system"],
                                 registry_glob="%s/**" % registry_host, public_key_pem=public_pem, hash_name="sha256")


def cluster_objects(world):
    settings = platform_settings(world.high.host, open(world.carried.pub).read())
    policies = gatekeeper.policies(settings)
    templates = [gatekeeper.template(policy, settings.labels) for policy in policies]
    constraints = [gatekeeper.constraint(policy, settings) for policy in policies]
    running = {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
    bench = {"Controls": [{"id": "1", "text": "Control Plane Security Configuration", "tests": [
        {"section": "1.1", "results": [
            {"test_number": "1.1.1", "test_desc": "API server pod file permissions", "status": "PASS"}]}]}],
        "Totals": {"total_pass": 1, "total_fail": 0, "total_warn": 0, "total_info": 0}}
    app = "%s/evidence/app" % world.carried.host
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps", "labels": {
            imagepolicy.INCLUDE_LABEL: "true"}}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-bench"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "cluster-admin"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}]},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
         "metadata": {"name": "gatekeeper-validating-webhook-configuration"},
         "webhooks": [{"name": "validation.gatekeeper.sh", "failurePolicy": "Fail", "sideEffects": "None",
                       "admissionReviewVersions": ["v1"], "clientConfig": {"service": {
                           "name": "gatekeeper-webhook-service", "namespace": "gatekeeper-system",
                           "path": "/v1/admit"}}}]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": "kube-bench-server-1", "namespace": "kube-bench",
            "labels": {"petra.dev/kube-bench": "results", "petra.dev/benchmark": "k3s-cis-1.7"}},
         "data": {"results.json": json.dumps(bench)}},
        imagepolicy.cluster_image_policy(settings),
        *[make(settings.labels) for make in (runtime.process_exec, runtime.file_integrity, runtime.kernel_modules)],
        *templates,
        *[dict(item, status={"totalViolations": 0, "auditTimestamp": "2026-01-01T00:00:00Z",
                             "byPod": [{"id": "gatekeeper-audit", "enforced": True}]}) for item in constraints],
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "apps"},
         "spec": {"nodeName": "server-1", "containers": [
             {"name": "web", "image": app + ":1.0", "env": [{"name": "PASSWORD", "value": "pod-Env-Secret"}]}]},
         "status": {"phase": "Running", "containerStatuses": [{
             "name": "web", "image": app + ":1.0", "imageID": "%s@%s" % (app, world.carried.digest), "ready": True,
             "restartCount": 0, "state": running}]}},
    ]


def api_path(obj):
    group_version = obj["apiVersion"]
    base = "/api/" + group_version if "/" not in group_version else "/apis/" + group_version
    plural = {"ClusterImagePolicy": "clusterimagepolicies", "TracingPolicy": "tracingpolicies"}.get(obj["kind"])
    if plural is None:
        plural = obj["kind"].lower() if group_version.startswith("constraints.") else obj["kind"].lower() + "s"
    namespace = obj["metadata"].get("namespace")
    return base + ("/namespaces/%s" % namespace if namespace else "") + "/" + plural


def schema_checked(objects, directory):
    """Every object is valid for its Kubernetes kind or CRD (constraints for their templates). A constraint's status
    is written by Gatekeeper's audit and has no schema in its template, so it is left out of that check."""
    documents = [{k: v for k, v in obj.items() if not (k == "status" and obj["apiVersion"].startswith("constraints."))}
                 for obj in objects]
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "objects.yaml")
    with open(path, "w") as handle:
        yaml.safe_dump_all(documents, handle, sort_keys=False)
    findings = check_manifests([path], [CRD_DIR])[2]
    assert not findings, [finding.as_dict() for finding in findings]


def post(kube, obj):
    requests.post(kube.url + api_path(obj), json=obj, timeout=10).raise_for_status()


# ---- the world, and an assessment of it ----

@pytest.fixture(scope="module")
def shared_cluster(moto, tmp_path_factory):
    """The compliant AWS side, shared by the tests that change nothing in AWS."""
    path = tmp_path_factory.mktemp("evidence-k3s") / "k3s"
    path.write_bytes(fake_binary(FIPS))
    return "ev-shared", str(path), make_cluster(moto, "ev-shared", path.read_bytes())


AWS_BREAKAGES = ("key-pair", "port-22")


@pytest.fixture
def world(request, moto, trail, carried, shared_cluster, tmp_path, tls_material):
    """A compliant world; tests break one thing each. ``fips=False`` (indirect) pins a k3s without the FIPS module;
    tests that change AWS resources get a cluster of their own."""
    fips = getattr(request, "param", True)
    breakage = getattr(getattr(request.node, "callspec", None), "params", {}).get("what")
    if fips and breakage not in AWS_BREAKAGES:
        name, k3s, kms_key = shared_cluster
    else:
        name = "ev-%s" % hashlib.sha256(request.node.name.encode()).hexdigest()[:10]
        binary = fake_binary(FIPS if fips else {"GOOS": "linux"})
        k3s = str(tmp_path / "k3s")
        (tmp_path / "k3s").write_bytes(binary)
        kms_key = make_cluster(moto, name, binary)
    assessment_key = str(tmp_path / "assessment.pem")
    w = types.SimpleNamespace(name=name, moto=moto, carried=carried, tmp=tmp_path, kms_key=kms_key,
                              key=assessment_key, pub=pki.write_ec_key(assessment_key),
                              trust_state=tmp_path / "trust" / "trust-state.json", k3s=k3s,
                              transfers=carried.transfers)
    w.ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto.endpoint, **CREDS)
    w.k3s_sha = hashlib.sha256(open(k3s, "rb").read()).hexdigest()
    w.nodes = answer_nodes(w)
    (tmp_path / "high").mkdir()
    (tmp_path / "trust").mkdir()
    with servers.Registry(str(tmp_path / "high"), tls=tls_material, users=dict([HIGH_USER])) as high, \
            KubeAPI(str(tmp_path)) as kube:
        w.high, w.kube = high, kube
        w.loaded = load_into(high, carried.signed, carried.pub, w.trust_state)
        w.objects = cluster_objects(w)
        schema_checked(w.objects, str(tmp_path / "objects"))
        for obj in w.objects:
            post(kube, obj)
        yield w


def assess(w, **extra):
    params = aws_params(w.moto, cluster_name=w.name, dest=str(w.tmp / "assessments"), kubeconfig=w.kube.kubeconfig,
                        k3s_binary=w.k3s, trust_state=str(w.trust_state), registry=w.high.host + "/mirror",
                        ca_file=w.high.tls["ca.pem"], registry_username=HIGH_USER[0], registry_password=HIGH_USER[1],
                        api_cidrs=API_CIDRS, kms_key_id=w.kms_key, signing_key=w.key,
                        transfer_records=w.transfers, transfer_public_key=[w.carried.pub],
                        organization_parameters={"sr-04_odp": "container images and node images"},
                        sources=list(SOURCES))  # nodes-running is opt-in; these tests opt in
    params.update(extra)
    check_mode = params.pop("check_mode", False)
    return evidence.run(validated(evidence.ARGUMENT_SPEC, params), check_mode=check_mode)


def states(result):
    return {item["check"]: item["state"] for item in result["checks"]}, {
        item["objective"]: (item["state"], item["reason"]) for item in result["findings"]}


def problems_of(result, check_id):
    return next(item for item in result["checks"] if item["check"] == check_id)["problems"]


def openssl_verifies(pub, path):
    der = path + ".der"
    with open(path + ".sig", "rb") as handle, open(der, "wb") as out:
        out.write(base64.b64decode(handle.read()))
    check = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pub, "-signature", der, path],
                           capture_output=True, text=True, timeout=60, check=False)
    os.unlink(der)
    return check.returncode == 0 and "Verified OK" in check.stdout


TESTABLE = {"ac-6_obj", "au-2_obj.c-1", "au-2_obj.c-2", "cm-7_obj.a", "cm-7_obj.b-1", "cm-7_obj.b-2", "cm-7_obj.b-3",
            "cm-7_obj.b-4", "cm-7_obj.b-5", "sc-13_obj.b", "si-7_obj.a-1", "si-7_obj.a-3", "si-7_obj.b-1",
            "sr-4_obj-1", "sr-4_obj-2", "sr-4_obj-3"}


def test_compliant_cluster_is_satisfied_signed_and_stable(world):
    from trestle.oscal.assessment_results import AssessmentResults

    result = assess(world)
    checks, objectives = states(result)
    assert {name: state for name, state in checks.items() if state != "pass"} == {}, [
        item for item in result["checks"] if item["state"] != "pass"]
    assert {oid for oid, (state, _reason) in objectives.items() if state == "satisfied"} == TESTABLE
    # What no tool can prove is never passed: left for a person, with reason other.
    manual = {oid: verdict for oid, verdict in objectives.items() if oid not in TESTABLE}
    assert set(manual) == {"au-2_obj.a", "au-2_obj.b", "au-2_obj.d", "au-2_obj.e", "sc-13_obj.a", "si-7_obj.a-2",
                           "si-7_obj.b-2", "si-7_obj.b-3"}
    assert set(manual.values()) == {("not-satisfied", "other")}
    assert all(item["manual"] for item in result["findings"] if item["objective"] in manual)

    run = result["path"]
    # Parsed back with trestle's models; links resolve and hashes match (trestle checks neither).
    model = AssessmentResults.oscal_read(__import__("pathlib").Path(result["assessment_results"]))
    assert {f.target.target_id for f in model.results[0].findings} == set(objectives)
    with open(result["assessment_results"]) as handle:
        document = json.load(handle)
    assert results.verify_links(document, run) == []
    finding = next(f for f in document["assessment-results"]["results"][0]["findings"]
                   if f["target"]["target-id"] == "ac-6_obj")
    assert finding["target"]["status"] == {"state": "satisfied", "reason": "pass"}
    props = {(p["name"], p.get("class")): p["value"] for p in document["assessment-results"]["results"][0]["props"]}
    assert props[("odp", "sr-04_odp")] == "container images and node images"
    assert props[("setting", "api_cidrs")] == "10.20.0.0/16"
    # Both signatures verify with openssl, and not after an edit.
    for name in ("assessment-results.json", "evidence-manifest.json"):
        assert openssl_verifies(world.pub, os.path.join(run, name))
    with open(result["manifest"]) as handle:
        manifest = json.load(handle)
    assert manifest["assessmentResults"]["sha256"] == hashlib.sha256(
        open(result["assessment_results"], "rb").read()).hexdigest()
    assert {item["path"] for item in manifest["evidence"]} == {
        link["href"] for resource in document["assessment-results"]["back-matter"]["resources"]
        for link in resource["rlinks"]}
    # No secret in any file or in the result: not the k3s token from the user data, not a pod's environment, none of
    # the secret forms of k3s's arguments a node sent (the controller keeps only the audit flags, masked).
    for directory, _dirs, names in os.walk(run):
        for file_name in names:
            data = open(os.path.join(directory, file_name), "rb").read()
            assert not [s for s in SECRETS + ["pod-Env-Secret"] if s.encode() in data], file_name
    assert not [secret for secret in SECRETS if secret in json.dumps(result)]
    running = json.load(open(os.path.join(run, "evidence", "nodes-running", "commands.json")))
    server = next(node["facts"] for node in running["nodes"] if node["role"] == "server")
    assert server["k3s.arg"] == ["audit-log-maxbackup=Not-A-Secret-Kept"] and "k3s.cmdline" not in server
    assert server["k3s.env"] == ["GODEBUG=fips140=on"]
    assert [arg.split("=")[0] for arg in server["k3s.apiserver.arg"]] == [
        "--audit-log-maxage", "--audit-log-path", "--audit-policy-file"]
    ignition = json.load(open(os.path.join(run, "evidence", "nodes", "ignition.json")))
    assert all(node["facts"]["k3s_environment"][-1] == "K3S_TOKEN=<redacted by petra>" for node in ignition["nodes"])

    # Nothing changed: the same findings, nothing written.
    again = assess(world)
    assert again["changed"] is False and again["path"] == run and again["findings_sha256"] == result["findings_sha256"]
    assert sorted(os.listdir(world.tmp / "assessments")) == [os.path.basename(run), "latest"]
    # An evidence file edited after the run is named.
    victim = os.path.join(run, "evidence", "aws", "ec2-instances.json")
    with open(victim, "ab") as handle:
        handle.write(b" ")
    assert [p for p in results.verify_links(document, run) if "ec2-instances.json hashes to" in p]
    with open(result["assessment_results"], "ab") as handle:
        handle.write(b" ")
    assert not openssl_verifies(world.pub, result["assessment_results"])


def breaks(world, what):
    """Break one thing in the world."""
    ec2, name = world.ec2, world.name
    if what == "key-pair":
        ec2.create_key_pair(KeyName="ops-" + name)
        template = "petra-%s-server" % name
        data = ec2.describe_launch_template_versions(LaunchTemplateName=template, Versions=["$Latest"])[
            "LaunchTemplateVersions"][0]["LaunchTemplateData"]
        version = ec2.create_launch_template_version(LaunchTemplateName=template,
                                                     LaunchTemplateData=dict(data, KeyName="ops-" + name))
        ec2.modify_launch_template(LaunchTemplateName=template, DefaultVersion=str(
            version["LaunchTemplateVersion"]["VersionNumber"]))
    elif what == "port-22":
        group = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["petra-%s-nodes" % name]}])
        ec2.authorize_security_group_ingress(GroupId=group["SecurityGroups"][0]["GroupId"], IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    elif what == "dryrun":
        constraint = next(obj for obj in world.objects if obj["apiVersion"].startswith("constraints."))
        patch = {"spec": {"enforcementAction": "dryrun"}}
        requests.patch(world.kube.url + api_path(constraint) + "/" + constraint["metadata"]["name"], json=patch,
                       headers={"Content-Type": "application/merge-patch+json"}, timeout=10).raise_for_status()
    elif what == "stray-pod":
        pod = copy.deepcopy(next(obj for obj in world.objects if obj["kind"] == "Pod"))
        stray = "docker.io/library/<script>alert(1)</script>"
        pod["metadata"]["name"] = "<script>alert(1)</script>"
        pod["spec"]["containers"][0]["name"] = "side"
        pod["status"]["containerStatuses"][0].update(
            name="side", image=stray, imageID="docker.io/library/busybox@" + world.carried.stray)
        post(world.kube, pod)
    elif what == "replaced":
        target = world.loaded["custody"]["images"][0]["target"]
        repository, tag = target.split("@")[0].split("/", 1)[1].rsplit(":", 1)
        images.push(world.carried.layout, "evstray", world.high, repository, tag, creds=HIGH_USER)
    elif what == "admin":
        post(world.kube, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                          "metadata": {"name": "ops-admin"}, "roleRef": {
                              "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                          "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "ops"}]})
    elif what == "no-tetragon-policy":
        requests.delete(world.kube.url + "/apis/cilium.io/v1alpha1/tracingpolicies/petra-file-integrity",
                        timeout=10).raise_for_status()
    elif what == "bench-fails":
        bench = {"Controls": [{"id": "1", "tests": [{"section": "1.2", "results": [
            {"test_number": "1.2.1", "status": "FAIL"}]}]}], "Totals": {"total_fail": 1}}
        requests.patch(world.kube.url + "/api/v1/namespaces/kube-bench/configmaps/kube-bench-server-1",
                       json={"data": {"results.json": json.dumps(bench)}},
                       headers={"Content-Type": "application/merge-patch+json"}, timeout=10).raise_for_status()
    elif what == "trust-state-edited":
        document = json.loads(world.trust_state.read_text())
        document["entries"][0]["version"] = "9.9.9"
        world.trust_state.write_text(json.dumps(document))
    elif what in ("no-transfer-record", "index-edited", "receipt-differs"):
        copy_dir = str(world.tmp / "transfers")
        shutil.copytree(world.carried.transfers, copy_dir)
        world.transfers = copy_dir
        path = os.path.join(copy_dir, world.carried.index)
        if what == "no-transfer-record":
            os.unlink(path)
        elif what == "index-edited":
            document = json.load(open(path))
            document["index"]["bundle"]["size"] += 1
            json.dump(document, open(path, "w"))
        else:
            with open(path, "ab") as handle:
                handle.write(b"\n")
    elif what == "unverified-source":
        load_into(world.high, world.carried.unverified, world.carried.pub, world.trust_state)
    else:
        raise AssertionError(what)


BREAKAGES = [
    # (breakage, failing check, objectives it makes not-satisfied (reason fail), words in the problem)
    ("key-pair", "aws.launch-templates.no-key-pair", {"ac-6_obj", "cm-7_obj.b-5"}, "names the key pair ops-"),
    ("port-22", "aws.security-groups.no-ssh", {"ac-6_obj", "cm-7_obj.b-2", "cm-7_obj.b-3"}, "which includes SSH"),
    ("dryrun", "cluster.gatekeeper.enforced", {"ac-6_obj", "cm-7_obj.b-1", "si-7_obj.b-1"}, "in dryrun mode"),
    ("stray-pod", "custody.running-images", {"sr-4_obj-2", "si-7_obj.a-1", "cm-7_obj.b-4"},
     "namespace apps, pod <script>alert(1)</script>, container side runs docker.io/library/<script>"),
    ("replaced", "custody.registry-intact", {"si-7_obj.a-1", "sr-4_obj-3"}, "replaced after the load"),
    ("admin", "cluster.cluster-admin", {"ac-6_obj"}, "ops-admin gives cluster-admin to User/ops"),
    ("no-tetragon-policy", "cluster.tetragon.policies", {"au-2_obj.c-1", "si-7_obj.a-3"},
     "TracingPolicy petra-file-integrity does not exist"),
    ("bench-fails", "cluster.kube-bench", {"cm-7_obj.a"}, "1 CIS test(s) failed (1.2.1)"),
    ("trust-state-edited", "custody.trust-state", {"sr-4_obj-3", "si-7_obj.a-3"}, "was edited"),
    ("unverified-source", "custody.records-documented", {"sr-4_obj-1"}, "was not verified when the bundle was built"),
    ("no-transfer-record", "custody.transfer-records", {"sr-4_obj-1", "si-7_obj.a-1"},
     "has no transfer record: no part index that verifies names it"),
    ("index-edited", "custody.transfer-records", {"sr-4_obj-1", "si-7_obj.a-1"},
     "is not signed by any of the given keys"),
    ("receipt-differs", "custody.transfer-records", {"sr-4_obj-1", "si-7_obj.a-1"},
     "receipt platform-receipt.json records platform"),
]


@pytest.mark.parametrize("what, failing, objectives, words", BREAKAGES, ids=[item[0] for item in BREAKAGES])
def test_each_breakage_is_a_finding(world, what, failing, objectives, words):
    breaks(world, what)
    result = assess(world)
    checks, verdicts = states(result)
    assert checks[failing] == "fail"
    assert any(words in problem for problem in problems_of(result, failing)), problems_of(result, failing)
    for oid in objectives:
        assert verdicts[oid] == ("not-satisfied", "fail"), (oid, verdicts[oid])
    # Nothing else is touched: only the checks the breakage concerns fail, every other testable objective holds.
    also = {"aws.security-groups.ports"} if what == "port-22" else set()
    assert {name for name, state in checks.items() if state != "pass"} == {failing} | also
    assert {oid for oid in TESTABLE if verdicts[oid][0] != "satisfied"} == objectives
    with open(result["assessment_results"]) as handle:
        assert results.verify_links(json.load(handle), result["path"]) == []
    if what == "stray-pod":
        report_in_chromium(result, world.tmp)


def report_in_chromium(result, tmp_path):
    """The report as headless Chromium builds its DOM: the pod named <script>... is text, never an element."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is missing: install the Debian package chromium"
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=%s" % (
        tmp_path / "chromium"), "--dump-dom", "file://" + result["report"]], capture_output=True, text=True,
        timeout=120, check=True).stdout
    assert "<script" not in dom.lower() and "<body" in dom
    assert "pod &lt;script&gt;alert(1)&lt;/script&gt;, container side" in dom
    assert 'href="evidence/cluster/pods.json"' in dom and 'id="sr-4"' in dom
    assert dom.count("<rect ") >= 6  # the summary chart: a bar per control at least


@pytest.mark.parametrize("world", [False], indirect=True, ids=["k3s-without-fips-module"])
def test_k3s_without_the_fips_module(world):
    result = assess(world)
    checks, verdicts = states(result)
    assert checks["nodes.k3s-fips-module"] == "fail" and verdicts["sc-13_obj.b"] == ("not-satisfied", "fail")
    assert "is not built with the validated Go FIPS module: GOFIPS140=unset" in problems_of(
        result, "nodes.k3s-fips-module")[0]
    assert checks["nodes.fips-runtime"] == "pass"  # GODEBUG=fips140=on is set, but cannot make up for the build


def test_cloudtrail_without_validation_or_logging(world, trail):
    try:
        trail.update_trail(Name="organization", EnableLogFileValidation=False)
        trail.stop_logging(Name="organization")
        result = assess(world)
    finally:
        trail.update_trail(Name="organization", EnableLogFileValidation=True)
        trail.start_logging(Name="organization")
    checks, verdicts = states(result)
    assert (checks["aws.cloudtrail.validation"], checks["aws.cloudtrail.logging"]) == ("fail", "fail")
    assert checks["aws.cloudtrail.selected"] == "pass"
    assert verdicts["si-7_obj.a-3"] == verdicts["au-2_obj.c-2"] == ("not-satisfied", "fail")
    assert "log file validation off" in problems_of(result, "aws.cloudtrail.validation")[0]


def test_unreadable_sources_are_not_collected_never_passed(world):
    """A source left out or unreachable makes its objectives not-satisfied (reason other), with the reason."""
    broken = str(world.tmp / "broken-kubeconfig")
    with open(broken, "w") as handle:
        handle.write("apiVersion: v1\nkind: Config\nclusters: []\n")
    result = assess(world, kubeconfig=broken, sources=["cluster", "custody"])
    checks, verdicts = states(result)
    assert checks["aws.security-groups.no-ssh"] == "not-collected"
    assert "the source aws was not selected" in problems_of(result, "aws.security-groups.no-ssh")[0]
    assert checks["cluster.kube-bench"] == "not-collected"
    assert "cannot use the kubeconfig" in problems_of(result, "cluster.kube-bench")[0]
    assert verdicts["cm-7_obj.b-2"] == ("not-satisfied", "other")
    assert verdicts["sr-4_obj-3"] == ("satisfied", "pass")  # custody alone proves this one
    assert checks["custody.transfer-records"] == "pass"
    unrecorded = assess(world, sources=["custody"], transfer_records=None, dest=str(world.tmp / "no-transfers"))
    assert states(unrecorded)[0]["custody.transfer-records"] == "not-collected"
    assert "no transfer_records was given" in problems_of(unrecorded, "custody.transfer-records")[0]
    assert states(unrecorded)[1]["sr-4_obj-1"] == ("not-satisfied", "other")
    # Check mode runs no command on any node: the running-node checks say so; SSM's inventory is still read.
    ssm = boto3.client("ssm", region_name=REGION, endpoint_url=world.moto.endpoint, **CREDS)
    sent = len(ssm.list_commands()["Commands"])
    planned = assess(world, check_mode=True)
    assert planned["changed"] is True and planned["path"] is None
    assert sorted(os.listdir(world.tmp / "assessments")) == [result["run_id"], "latest"]
    assert len(ssm.list_commands()["Commands"]) == sent
    assert states(planned)[0]["nodes.running.no-sshd"] == "not-collected"
    assert "check mode: no command sent" in problems_of(planned, "nodes.running.no-sshd")[0]
    assert states(planned)[0]["nodes.running.ssm-agent"] == "pass"


def test_nodes_that_cannot_be_asked_are_not_collected(world):
    """A node SSM does not manage, a command that fails and one that never ends (bounded wait) are each reported as
    not collected with the reason, and their objectives are not-satisfied (reason other), never passed."""
    (instance, _role), = world.nodes.items()
    cases = [({"managed": False}, "is not managed by SSM"),
             ({"status": "Failed", "stderr": "systemctl: permission denied"},
              "ended Failed (Failed): systemctl: permission denied"),
             ({"status": "InProgress"}, "did not answer within 2 s (status InProgress)"),
             ({"stdout": "format=%s\nunit.sshd.service=inactive\n" % collect_running.FORMAT},
              "the answer is incomplete")]
    for number, (answer, words) in enumerate(cases):
        world.moto.node_answers[instance] = answer
        result = assess(world, sources=["aws", "nodes", "nodes-running"], node_command_timeout=2,
                        node_command_poll=0.2, dest=str(world.tmp / ("case-%d" % number)))
        checks, verdicts = states(result)
        for name in ("nodes.running.no-sshd", "nodes.running.k3s", "nodes.running.fips-env",
                     "nodes.running.audit-logging", "nodes.running.usr-read-only", "nodes.running.ports",
                     "nodes.running.units", "nodes.running.kernel-fips", "nodes.running.tetragon-events"):
            assert checks[name] == "not-collected", (answer, name, checks[name])
            assert any(words in problem and instance in problem for problem in problems_of(result, name)), \
                problems_of(result, name)
        assert verdicts["cm-7_obj.b-5"] == ("not-satisfied", "other")
        assert checks["nodes.no-ssh"] == "pass"  # the config as launched is still read
        if answer.get("managed") is False:  # not in SSM's inventory either
            assert checks["nodes.running.ssm-agent"] == "fail"
            assert "is not a managed instance of SSM" in problems_of(result, "nodes.running.ssm-agent")[0]
        else:
            assert checks["nodes.running.ssm-agent"] == "pass"
        with open(os.path.join(result["path"], "evidence", "nodes-running", "commands.json")) as handle:
            assert "notCollected" in json.load(handle)["nodes"][0]


def test_throttled_invocations_are_read_again_until_the_deadline(moto, shared_cluster, tmp_path):
    """SSM throttling GetCommandInvocation (after botocore's retries, here none) is waited out with backoff within
    the deadline, as an invocation not yet registered is; the node's answer is then read."""
    name, k3s, _kms_key = shared_cluster
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto.endpoint, **CREDS)
    instances = [item for reservation in ec2.describe_instances(Filters=[
        {"Name": "tag:petra:cluster", "Values": [name]}])["Reservations"] for item in reservation["Instances"]]
    sha = hashlib.sha256(open(k3s, "rb").read()).hexdigest()
    for item in instances:
        role = {tag["Key"]: tag["Value"] for tag in item["Tags"]}["petra:role"]
        moto.node_answers[item["InstanceId"]] = {"stdout": node_stdout(role, sha), "throttle": 3}
    connection = AWSConnection(**aws_params(moto), max_attempts=1)
    store = EvidenceStore(str(tmp_path))
    collect_running.RunningCollector(store, types.SimpleNamespace(instances=instances), connection, ["/opt/bin/k3s"],
                                     timeout=30, poll=0.05).collect()
    nodes = store.get(RUNNING).data["nodes"]
    assert [node.get("notCollected") for node in nodes] == [None] * len(instances)
    assert all(node["facts"]["k3s.exe"] == sha for node in nodes)
    for item in instances:
        moto.node_answers.pop(item["InstanceId"], None)


NODE_BREAKAGES = [
    # (what each node answers or how SSM sees it, failing check, objectives not satisfied (fail), words in the problem)
    ({"sshd": "active", "listen22": "1", "extra_listen": ["0.0.0.0:22"]}, "nodes.running.no-sshd",
     {"ac-6_obj", "cm-7_obj.b-5", "cm-7_obj.b-2"}, "sshd.service is active"),
    ({"file_sha": "ee" * 32}, "nodes.running.k3s", {"si-7_obj.a-1", "cm-7_obj.a", "sc-13_obj.b"},
     "/opt/bin/k3s has sha256 " + "ee" * 32),
    ({"godebug": "x509sha1=1"}, "nodes.running.fips-env", {"sc-13_obj.b"},
     "runs without GODEBUG=fips140=on (GODEBUG=x509sha1=1)"),
    ({"apiserver": APISERVER.replace("--audit-policy-file=/etc/rancher/k3s/audit-policy.yaml ", "")},
     "nodes.running.audit-logging", {"au-2_obj.c-1"}, "the running apiserver has no audit-policy-file"),
    ({"tetragon_time": "2026-01-01T00:00:00.5Z"}, "nodes.running.tetragon-events", {"au-2_obj.c-2"},
     "Tetragon's newest exported event is from 2026-01-01T00:00:00Z, older than the 5-minute window"),
    ({"usr": "rw,relatime"}, "nodes.running.usr-read-only", {"cm-7_obj.a"},
     "/usr (/dev/mapper/usr) is mounted rw,relatime, not read-only"),
    ({"extra_listen": ["0.0.0.0:8080", "[::]:8080", "127.0.0.1:9000"]}, "nodes.running.ports", {"cm-7_obj.b-2"},
     "TCP port 8080 listens on 0.0.0.0:8080, [::]:8080, which no security group opens"),
    ({"auditd": "disabled"}, "nodes.running.units", {"cm-7_obj.a", "cm-7_obj.b-5"},
     "auditd.service is disabled, its config enables it"),
    ({"ping": "ConnectionLost"}, "nodes.running.ssm-agent", {"ac-6_obj"}, "the SSM agent is ConnectionLost"),
]


def test_running_node_facts_each_breakage_is_a_finding(world):
    """Against one world and only the node sources (cheap): the compliant answer satisfies every node check, and each
    answer broken in one way fails the check it concerns, and only that one (sshd active also listens on port 22)."""
    node_checks = {name for name in REGISTRY if name.startswith("nodes.")}
    settings = dict(sources=["aws", "nodes", "nodes-running"], tetragon_event_window=5, node_command_poll=0.2)
    compliant = assess(world, dest=str(world.tmp / "nodes-compliant"), **settings)
    checks, _verdicts = states(compliant)
    assert {name: checks[name] for name in node_checks if checks[name] != "pass"} == {}
    assert ("setting", "tetragon_event_window") in {
        (p["name"], p.get("class")) for p in json.load(open(compliant["assessment_results"]))[
            "assessment-results"]["results"][0]["props"]}
    notes = next(item for item in compliant["checks"] if item["check"] == "nodes.running.kernel-fips")["notes"]
    assert notes and "kernel FIPS mode 0; its config does not ask for it (evidence only)" in notes[0]
    for number, (answer, failing, objectives, words) in enumerate(NODE_BREAKAGES):
        answer = dict(answer)
        ping = answer.pop("ping", None)
        answer_nodes(world, **answer)
        if ping:
            for instance in world.nodes:
                world.moto.node_answers[instance]["ping"] = ping
        result = assess(world, dest=str(world.tmp / ("nodes-%d" % number)), **settings)
        checks, verdicts = states(result)
        also = {"nodes.running.ports"} if "sshd" in answer else set()  # sshd listens on *:22, which no group opens
        assert {name for name in node_checks if checks[name] != "pass"} == {failing} | also, (failing, checks)
        assert any(words in problem for problem in problems_of(result, failing)), problems_of(result, failing)
        for oid in objectives:
            assert verdicts[oid] == ("not-satisfied", "fail"), (oid, verdicts[oid])
    answer_nodes(world)


LIVE = ["aws", "nodes", "nodes-running", "cluster"]


def test_comparison_with_a_previous_assessment(world):
    """The findings that changed since an earlier run, per objective, in the result, the OSCAL findings and the
    report; an earlier document whose signature does not verify is refused, saying so."""
    first = assess(world, sources=LIVE)
    breaks(world, "admin")
    later = assess(world, sources=LIVE, previous=first["path"])
    comparison = later["comparison"]
    assert comparison["previous"]["sha256"] == hashlib.sha256(open(first["assessment_results"], "rb").read()).hexdigest()
    changed = {item["objective"]: item for item in comparison["changes"]}
    assert changed["ac-6_obj"]["change"] == "newly-failing"
    assert changed["ac-6_obj"]["before"] == "satisfied (pass)" and changed["ac-6_obj"]["after"] == "not-satisfied (fail)"
    assert "evidence/cluster/clusterrolebindings.json" in changed["ac-6_obj"]["evidence"]
    assert "cluster.cluster-admin: pass -> fail" in changed["ac-6_obj"]["checks"]
    assert not any(item["change"] in ("newly-failing", "newly-satisfied") for oid, item in changed.items()
                   if oid != "ac-6_obj")
    with open(later["assessment_results"]) as handle:
        document = json.load(handle)
    assert results.verify_links(document, later["path"]) == []
    finding = next(f for f in document["assessment-results"]["results"][0]["findings"]
                   if f["target"]["target-id"] == "ac-6_obj")
    assert {"name": "change-since-previous", "ns": results.PETRA_NS, "value": "newly-failing"} in finding["props"]
    html = open(later["report"]).read()
    assert 'id="changes"' in html and 'class="change-newly-failing">newly-failing' in html
    # Against the broken run, repairing it is newly satisfied.
    requests.delete(world.kube.url + "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/ops-admin",
                    timeout=10).raise_for_status()
    repaired = assess(world, sources=LIVE, previous=later["path"])
    assert {item["objective"]: item["change"] for item in repaired["comparison"]["changes"]}["ac-6_obj"] == \
        "newly-satisfied"
    # An edited earlier document is refused before anything is collected.
    with open(first["assessment_results"], "ab") as handle:
        handle.write(b" ")
    with pytest.raises(Exception, match="does not verify with the key .*no comparison was made"):
        assess(world, previous=first["path"])
    other = str(world.tmp / "other.pem")
    pki.write_ec_key(other)
    with pytest.raises(Exception, match="does not verify"):
        assess(world, previous=later["path"], signing_key=other)
