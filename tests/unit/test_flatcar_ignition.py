"""Ignition for hardened Flatcar + FIPS k3s nodes: every config passes Debian's ignition-validate, and the
hardening facts hold on the parsed JSON (data: URLs decoded)."""

import base64
import json
import shutil
import subprocess

import pytest
import yaml

from ansible_collections.petra.core.plugins.module_utils.flatcar import ignition
from ansible_collections.petra.core.plugins.module_utils.flatcar.errors import IgnitionError

K3S = {"url": "s3://petra-artifacts/k3s/v1.33.4+k3s1/k3s", "sha256": "a" * 64}
SYSEXT = {"url": "https://mirror.internal.example/k3s-v1.33.4-x86-64.raw", "sha256": "b" * 64}
IMAGES = [{"url": "https://mirror.internal.example/k3s-airgap-images-amd64.tar.zst", "sha256": "c" * 64}]
REGISTRIES = {"mirrors": {"cgr.dev": {"endpoint": ["https://registry.high.example:5000"],
                                      "rewrite": {"^(.*)$": "petra/cgr.dev/$1"}}},
              "configs": {"registry.high.example:5000": {"tls": {"ca_file": "/etc/rancher/k3s/petra-registry-ca.pem"}}}}
MANIFESTS = [{"name": "flux.yaml", "content": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system\n"}]
TOKEN = "K10-secret-token"

CASES = {
    "first-server": dict(node_role="server", cluster_init=True),
    "first-server-full": dict(node_role="server", cluster_init=True, registries=REGISTRIES, registry_ca="-----BEGIN "
                              "CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", manifests=MANIFESTS,
                              airgap_images=IMAGES, host_fips=True, k3s_kind="sysext", k3s=SYSEXT),
    "joining-server": dict(node_role="server", server_url="https://10.0.0.10:6443"),
    "agent": dict(node_role="agent", server_url="https://10.0.0.10:6443"),
    "agent-full": dict(node_role="agent", server_url="https://10.0.0.10:6443", registries=REGISTRIES,
                       airgap_images=IMAGES, host_fips=True, updates="https://nebraska.internal.example/v1/update/"),
    "server-3.4.0": dict(node_role="server", cluster_init=True, ignition_version="3.4.0"),
}


def render(case):
    options = dict(CASES[case])
    options.setdefault("k3s", K3S)
    return ignition.render(token=TOKEN, **options)


def files(document):
    result = {}
    for item in document["storage"]["files"]:
        source = item["contents"]["source"]
        if source.startswith("data:;base64,"):
            result[item["path"]] = (base64.b64decode(source[len("data:;base64,"):]).decode(), item)
        else:
            result[item["path"]] = (None, item)
    return result


def units(document):
    return {unit["name"]: unit for unit in document["systemd"]["units"]}


@pytest.mark.parametrize("case", sorted(CASES))
def test_ignition_validate_accepts(case, tmp_path):
    if shutil.which("ignition-validate") is None:
        pytest.fail("ignition-validate is missing: run 'make test' (it installs Debian's ignition)")
    path = tmp_path / "config.ign"
    data, digest = ignition.serialise(render(case))
    path.write_bytes(data)
    result = subprocess.run(["ignition-validate", str(path)], capture_output=True, text=True, timeout=60, check=False)
    if CASES[case].get("ignition_version") == "3.4.0" and "unsupported" in (result.stdout + result.stderr).lower():
        pytest.skip("Debian's ignition-validate knows spec 3.3.0 only: " + (result.stdout + result.stderr).strip())
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(digest) == 64


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_ssh(case):
    document = render(case)
    unit = units(document)
    for name in ("sshd.socket", "sshd.service", "coreos-metadata-sshkeys@core.service"):
        assert unit[name]["mask"] is True
    user = document["passwd"]["users"][0]
    assert user == {"name": "core", "shell": "/sbin/nologin", "sshAuthorizedKeys": []}
    assert unit["auditd.service"]["enabled"] is True


def test_first_server_is_hardened():
    document = render("first-server")
    contents = files(document)
    config = yaml.safe_load(contents["/etc/rancher/k3s/config.yaml"][0])
    assert config["cluster-init"] is True and "server" not in config
    assert config["protect-kernel-defaults"] is True and config["secrets-encryption"] is True
    assert config["disable"] == ["traefik", "servicelb"]
    assert config["flannel-backend"] == "none" and config["disable-network-policy"] is True
    api = config["kube-apiserver-arg"]
    assert "admission-control-config-file=/etc/rancher/k3s/psa.yaml" in api
    assert "audit-policy-file=/etc/rancher/k3s/audit-policy.yaml" in api
    assert any(arg.startswith("audit-log-path=") for arg in api)
    suites = [arg for arg in api if arg.startswith("tls-cipher-suites=")][0].split("=", 1)[1].split(",")
    assert suites and all("GCM" in suite for suite in suites)
    assert "use-service-account-credentials=true" in config["kube-controller-manager-arg"]
    assert "streaming-connection-idle-timeout=5m" in config["kubelet-arg"]
    sysctls = contents["/etc/sysctl.d/90-kubelet-cis.conf"][0]
    for key, value in ignition.CIS_SYSCTLS.items():
        assert "%s = %s" % (key, value) in sysctls
    environment, item = contents["/etc/default/k3s"]
    assert "GODEBUG=fips140=on" in environment.splitlines() and item["mode"] == 0o600
    assert yaml.safe_load(contents["/etc/rancher/k3s/psa.yaml"][0])["kind"] == "AdmissionConfiguration"
    assert yaml.safe_load(contents["/etc/rancher/k3s/audit-policy.yaml"][0])["kind"] == "Policy"
    binary = contents["/opt/bin/k3s"][1]
    assert binary["contents"] == {"source": K3S["url"], "verification": {"hash": "sha256-" + "a" * 64}}
    unit = units(document)["k3s.service"]
    assert unit["enabled"] is True and "ExecStart=/opt/bin/k3s server" in unit["contents"]
    assert "EnvironmentFile=-/etc/default/%N" in unit["contents"]
    assert "SERVER=disabled" in contents["/etc/flatcar/update.conf"][0]


def test_token_only_in_the_root_only_environment_file():
    document = render("joining-server")
    contents = files(document)
    holders = [path for path, (text, _item) in contents.items() if text and TOKEN in text]
    assert holders == ["/etc/default/k3s"]
    config = yaml.safe_load(contents["/etc/rancher/k3s/config.yaml"][0])
    assert config["server"] == "https://10.0.0.10:6443" and "cluster-init" not in config


def test_agent_and_airgap_content():
    document = render("agent-full")
    contents = files(document)
    unit = units(document)["k3s-agent.service"]
    assert "ExecStart=/opt/bin/k3s agent" in unit["contents"]
    assert "GODEBUG=fips140=on" in contents["/etc/default/k3s-agent"][0]
    image = contents["/var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst"][1]
    assert image["contents"]["verification"]["hash"] == "sha256-" + "c" * 64
    assert yaml.safe_load(contents["/etc/rancher/k3s/registries.yaml"][0]) == REGISTRIES
    assert "SERVER=https://nebraska.internal.example/v1/update/" in contents["/etc/flatcar/update.conf"][0]
    assert document["kernelArguments"] == {"shouldExist": ["fips=1"]}
    assert "/etc/system-fips" in contents
    config = yaml.safe_load(contents["/etc/rancher/k3s/config.yaml"][0])
    assert "secrets-encryption" not in config and "disable" not in config


def test_sysext_and_manifests():
    document = render("first-server-full")
    contents = files(document)
    assert contents["/opt/extensions/k3s/k3s.raw"][1]["contents"]["verification"]["hash"] == "sha256-" + "b" * 64
    assert document["storage"]["links"] == [{"path": "/etc/extensions/k3s.raw",
                                             "target": "/opt/extensions/k3s/k3s.raw", "hard": False,
                                             "overwrite": True}]
    assert units(document)["systemd-sysupdate.timer"]["mask"] is True
    assert "ExecStart=/usr/local/bin/k3s server" in units(document)["k3s.service"]["contents"]
    assert contents["/var/lib/rancher/k3s/server/manifests/flux.yaml"][0] == MANIFESTS[0]["content"]


@pytest.mark.parametrize("options, words", [
    (dict(node_role="agent", cluster_init=True), "first server only"),
    (dict(node_role="server"), "needs server_url"),
    (dict(node_role="worker", cluster_init=True), "server or agent"),
    (dict(node_role="server", cluster_init=True, k3s={"url": "https://x/k3s"}), "url and sha256"),
    (dict(node_role="server", cluster_init=True, k3s={"url": "https://x/k3s", "sha256": "123"}), "not a SHA-256"),
    (dict(node_role="server", cluster_init=True, k3s={"url": "ftp://x/k3s", "sha256": "a" * 64}), "scheme"),
    (dict(node_role="agent", server_url="https://s:6443", manifests=MANIFESTS), "servers only"),
    (dict(node_role="server", cluster_init=True, ignition_version="3.5.0"), "not supported"),
    (dict(node_role="server", cluster_init=True, updates="http://insecure"), "Nebraska"),
])
def test_refusals(options, words):
    options.setdefault("k3s", K3S)
    with pytest.raises(IgnitionError) as info:
        ignition.render(token=TOKEN, **options)
    assert words in str(info.value)


def test_replace_stub_fits_user_data():
    data, digest = ignition.serialise(render("first-server-full"))
    stub = ignition.replace_stub("3.3.0", "s3://petra-nodes/cluster/server-0.ign", "sha256-" + digest)
    assert len(json.dumps(stub)) < ignition.USER_DATA_LIMIT
    assert stub["ignition"]["config"]["replace"]["verification"]["hash"] == "sha256-" + digest
