"""The bundle create and load jobs as AWX runs them: ansible-runner (the engine AWX uses) on a private data directory
laid out as AWX lays it out for a launch of examples/awx's job templates, against the TLS + htpasswd registries.

The credentials go in through examples/awx/credential_types.yml's injectors, rendered the way AWX renders them
(tests/support/awx.py): the signing key and registry auth as files of the private data directory, the key password
and CA paths as an ``-e @file`` of extra variables, REGISTRY_AUTH_FILE in the environment. The survey answers go
into env/extravars. No secret may appear in any job event (what AWX stores and shows), nor in the job's stdout.
"""

from __future__ import annotations

import json
import re
import os

import ansible_runner
import pytest

from ansible_collections.petra.core.tests.conftest import REGISTRY_USER
from ansible_collections.petra.core.tests.support import awx, images, pki, servers

import ansible_collections  # the tree this collection was imported from: the one the job must load

COLLECTIONS_ROOT = os.path.dirname(list(ansible_collections.__path__)[0])
HIGH_USER = ("loader", "Awx-high-Side-Passw0rd")
KEY_PASSWORD = "Awx-Signing-Key-Passw0rd"
JOB_TIMEOUT = 240


@pytest.fixture
def high(tmp_path, tls_material):
    with servers.Registry(str(tmp_path / "high"), tls=tls_material, users=dict([HIGH_USER])) as server:
        yield server


def run_job(path, template_name, answers, credentials):
    template = awx.job_templates()[template_name]
    # In AWX the execution environment has petra.core installed; here it is the tree under test.
    arguments = awx.private_data_dir(str(path), template, answers, credentials,
                                     envvars={"ANSIBLE_COLLECTIONS_PATH": COLLECTIONS_ROOT, "ANSIBLE_NOCOLOR": "1"})
    runner = ansible_runner.run(quiet=True, timeout=JOB_TIMEOUT, **arguments)
    events = list(runner.events)
    stdout = runner.stdout.read()
    assert runner.status == "successful" and runner.rc == 0, stdout[-6000:]
    return events, stdout


def assert_no_secret(events, stdout, secrets):
    for event in events:
        text = json.dumps(event)
        leaked = [secret for secret in secrets if secret in text]
        assert not leaked, "job event %s (%s) carries %s" % (event.get("counter"), event.get("event"), leaked)
    leaked = [secret for secret in secrets if secret in stdout]
    assert not leaked, "the job's stdout carries %s" % leaked


def task_result(events, task):
    found = [event["event_data"]["res"] for event in events
             if event.get("event") == "runner_on_ok" and event["event_data"].get("task") == task]
    assert len(found) == 1, "no single result of task %r among %s" % (task, sorted(
        {event["event_data"].get("task") for event in events if event.get("event_data", {}).get("task")}))
    return found[0]


def test_create_then_load_as_awx_jobs(tmp_path, registry, high, sources, tls_material):
    # What a site mounts into the execution environment (a volume such as /srv/petra): specs, outbox, trust state.
    srv = tmp_path / "srv"
    (srv / "specs").mkdir(parents=True)
    (srv / "outbox").mkdir()
    (srv / "trust").mkdir()
    key = srv / "signing.pem"
    pub = pki.write_ec_key(str(key), password=KEY_PASSWORD)
    spec = srv / "specs" / "app.yml"
    spec.write_text("apiVersion: petra.dev/v1alpha1\nkind: Bundle\nmetadata: {name: awx-app, version: 1.0.0, "
                    "created: '2026-01-01T00:00:00Z'}\nimages:\n  - ref: %s\nfiles:\n  - name: k3s\n    path: %s\n"
                    % (registry.app, sources / "bin" / "k3s"))
    with open(tls_material["ca.pem"], encoding="utf-8") as handle:
        ca_pem = handle.read()
    key_pem = key.read_text()
    bundle = srv / "outbox" / "awx-app-1.0.0.tar.zst"
    # The key's encrypted body: no line of it may leave the files AWX writes.
    key_lines = [line for line in key_pem.splitlines() if len(line) > 40]
    secrets = [REGISTRY_USER[1], HIGH_USER[1], KEY_PASSWORD] + key_lines

    events, stdout = run_job(tmp_path / "create-job", "Petra: bundle create", {
        "bundle_build_spec": str(spec),
        "bundle_build_dest": str(bundle),
        "bundle_build_public_key": pub,
    }, [
        ("Petra signing key (file)", {"signing_key": key_pem, "signing_key_password": KEY_PASSWORD}),
        ("Petra registry", {"host": registry.registry.host, "username": REGISTRY_USER[0],
                            "password": REGISTRY_USER[1], "ca": ca_pem}),
    ])
    built = task_result(events, "Build and sign the bundle")
    assert built["changed"] is True and built["path"] == str(bundle)
    assert [(image["ref"], image["digest"]) for image in built["images"]] == [(registry.app, registry.app_digest)]
    assert built["images"][0]["sbom_origin"] == "petra"  # the image carries none: syft's travels with it
    assert task_result(events, "Verify the new bundle")["verified"] is True
    assert_no_secret(events, stdout, secrets)
    # The secrets did reach the job (the encrypted key signed): through the files AWX writes, and only there.
    injected = "".join(path.read_text() for path in (tmp_path / "create-job" / "env").iterdir())
    assert all(secret in injected for secret in (REGISTRY_USER[1], KEY_PASSWORD, key_lines[0]))

    trust_state = srv / "trust" / "trust-state.json"
    events, stdout = run_job(tmp_path / "load-job", "Petra: bundle load", {
        "bundle_load_src": str(bundle),
        "bundle_load_public_key": pub,
        "bundle_load_registry": high.host + "/awx",
        "bundle_load_trust_state": str(trust_state),
        # The first load of the site starts the trust state.
        "bundle_load_trust_state_required": "false",
    }, [
        ("Petra registry", {"host": high.host, "username": HIGH_USER[0], "password": HIGH_USER[1], "ca": ca_pem}),
    ])
    loaded = task_result(events, "Verify the bundle and load it into the registry")
    assert loaded["changed"] is True and loaded["verified"] is True and loaded["registry"] == high.host + "/awx"
    target = "awx/%s/team/app:1.0" % registry.registry.host.replace(":", "-")
    assert images.skopeo_inspect_digest(high, target, HIGH_USER) == registry.app_digest
    assert trust_state.is_file()
    assert_no_secret(events, stdout, secrets)

    # What the job's output shows the operator: progress lines while the load works (the templates run with
    # verbosity 1, as -v), each stage ending complete, then the load's summary line from the role's report task.
    progress = [line for event in events for line in event.get("stdout", "").splitlines()
                if re.search(r"\b(verify|push): ", line)]
    pushed = [line for line in progress if re.search(r"push: blobs (\d+) of \1\b", line)]
    assert pushed, "no complete push progress line among the job's events: %s" % progress
    assert any(re.search(r"verify: .*bytes|verify: entries", line) for line in progress), progress
    summary = [event["stdout"] for event in events if "awx-app 1.0.0 into %s/awx" % high.host in event.get("stdout", "")]
    assert summary and "blobs pushed" in summary[0] and "signed by 1 of the" in summary[0]


def test_cluster_create_in_cluster_api_mode_as_an_awx_job(tmp_path):
    """The cluster create job template with petra_provisioner=capi: the survey's node answers and Cluster API
    answers, the management kubeconfig from its credential (a file of the private data directory), against kmock
    with the stand-in Cluster API controllers."""
    import requests

    from ansible_collections.petra.core.tests.support.capi_controllers import CapiControllers
    from ansible_collections.petra.core.tests.support.kube import KubeAPI

    token = "Awx-Capi-k3s-Token-Not-Shown"
    with KubeAPI(str(tmp_path)) as kube, CapiControllers(kube, "awx-edge", interval=0.1) as controllers:
        with open(kube.kubeconfig, encoding="utf-8") as handle:
            management = handle.read()
        events, stdout = run_job(tmp_path / "capi-job", "Petra: cluster create", {
            "petra_provisioner": "capi",
            "cluster_standalone_name": "awx-edge",
            "cluster_standalone_image": "ami-0a1b2c3d4e5f60718",
            "cluster_standalone_subnets": "subnet-0aaa,subnet-0bbb",
            "cluster_standalone_server_url": "https://unused.internal:6443",
            "cluster_standalone_token": token,
            "cluster_standalone_k3s": '{"url": "s3://artifacts/k3s/v1.33.4+k3s1/k3s", "sha256": "%s"}' % ("0" * 64),
            "cluster_standalone_server_count": 1,
            "cluster_standalone_agent_count": 1,
            "cluster_standalone_region": "us-gov-west-1",
            "cluster_standalone_kms_key_id": "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/0b1e7c55-5a8e",
            "cluster_standalone_instance_profile": "petra-ssm-only",
            "cluster_standalone_api_cidrs": "10.20.0.0/16",
            "cluster_capi_vpc_id": "vpc-0123456789abcdef0",
            "cluster_capi_kubernetes_version": "v1.33.4+k3s1",
        }, [("Petra management cluster (Cluster API)", {"kubeconfig": management})])
        assert controllers.error is None
        applied = task_result(events, "Apply the cluster's Cluster API objects on the management cluster")
        assert applied["changed"] is True and applied["cluster"] == "awx-edge"
        assert applied["endpoint"].startswith("internal-awx-edge-apiserver")
        cluster = requests.get(kube.url + "/apis/infrastructure.cluster.x-k8s.io/v1beta2/namespaces/awx-edge/"
                                          "awsclusters/awx-edge", timeout=10).json()
        assert cluster["spec"]["network"]["vpc"] == {"id": "vpc-0123456789abcdef0"}
        assert [s["id"] for s in cluster["spec"]["network"]["subnets"]] == ["subnet-0aaa", "subnet-0bbb"]
        machines = requests.get(kube.url + "/apis/cluster.x-k8s.io/v1beta2/namespaces/awx-edge/machines",
                                timeout=10).json()["items"]
        assert len(machines) == 2 and {m["spec"]["version"] for m in machines} == {"v1.33.4+k3s1"}
    assert_no_secret(events, stdout, [token])
    assert "awx-edge: present, " in stdout
