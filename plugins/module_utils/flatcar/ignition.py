# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Ignition configs for hardened Flatcar nodes running k3s in FIPS mode from air-gapped content.

A node is configured once, at first boot, and replaced rather than changed: no SSH, no configuration
management on the node. Every remote file is pinned with ``verification.hash``.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - reported at run time
    HAS_YAML = False

from ansible_collections.petra.core.plugins.module_utils.flatcar.errors import IgnitionError
from ansible_collections.petra.core.plugins.module_utils.k8s.k3s import CONFIG_DIR, REGISTRIES_PATH, REGISTRY_CA_PATH

SPEC_VERSIONS = ("3.3.0", "3.4.0")
USER_DATA_LIMIT = 16 * 1024
IMAGES_DIR = "/var/lib/rancher/k3s/agent/images"
MANIFESTS_DIR = "/var/lib/rancher/k3s/server/manifests"
# FIPS-approved TLS 1.2 suites (AES-GCM with ECDHE); TLS 1.3 suites are not configurable in Go.
FIPS_CIPHER_SUITES = ",".join((
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"))
CIS_SYSCTLS = {"vm.panic_on_oom": "0", "vm.overcommit_memory": "1", "kernel.panic": "10", "kernel.panic_on_oops": "1"}
_HASH_RE = re.compile(r"^(sha256-[a-f0-9]{64}|sha512-[a-f0-9]{128})$")
_NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")
TLS_DIR = "/var/lib/rancher/k3s/server/tls"
PROVIDER_ID_SCRIPT = "/opt/petra/bin/provider-id"
# Cluster API links a Node to its Machine only through spec.providerID, aws:///<zone>/<instance-id> as CAPA writes it;
# k3s's embedded cloud provider would report k3s://<node>. coreos-metadata writes the zone and id at boot, and a
# config.yaml.d drop-in (``+`` appends) hands the kubelet the ID before k3s first starts.
PROVIDER_ID_SH = """#!/bin/sh
set -eu
. /run/metadata/flatcar
if [ -z "${COREOS_EC2_AVAILABILITY_ZONE:-}" ] || [ -z "${COREOS_EC2_INSTANCE_ID:-}" ]; then
  echo "coreos-metadata wrote no EC2 zone or instance id: cannot set the kubelet provider ID" >&2
  exit 1
fi
mkdir -p /etc/rancher/k3s/config.yaml.d
umask 077
printf 'kubelet-arg+:\\n  - provider-id=aws:///%s/%s\\n' "$COREOS_EC2_AVAILABILITY_ZONE" "$COREOS_EC2_INSTANCE_ID" \\
  > /etc/rancher/k3s/config.yaml.d/10-provider-id.yaml
"""
PROVIDER_ID_UNIT = """[Unit]
Description=Kubelet provider ID aws:///<zone>/<instance-id> for Cluster API
Requires=coreos-metadata.service
After=coreos-metadata.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=%s

[Install]
WantedBy=multi-user.target
""" % PROVIDER_ID_SCRIPT

AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1", "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "resources": [{"group": "", "resources": ["events"]}]},
        {"level": "Metadata", "resources": [
            {"group": "", "resources": ["secrets", "configmaps"]},
            {"group": "authentication.k8s.io", "resources": ["tokenreviews"]}]},
        {"level": "RequestResponse", "verbs": ["create", "update", "patch", "delete"],
         "resources": [{"group": "rbac.authorization.k8s.io"}]},
        {"level": "Metadata"},
    ],
}

PSA_CONFIG = {
    "apiVersion": "apiserver.config.k8s.io/v1", "kind": "AdmissionConfiguration",
    "plugins": [{"name": "PodSecurity", "configuration": {
        "apiVersion": "pod-security.admission.config.k8s.io/v1", "kind": "PodSecurityConfiguration",
        "defaults": {"enforce": "restricted", "enforce-version": "latest", "audit": "restricted",
                     "audit-version": "latest", "warn": "restricted", "warn-version": "latest"},
        "exemptions": {"usernames": [], "runtimeClasses": [],
                       # kube-system and the namespaces petra_platform creates (never one it does not create,
                       # which anyone allowed to create namespaces could use to escape Pod Security).
                       "namespaces": ["kube-system", "flux-system", "cert-manager", "gatekeeper-system",
                                      "tetragon", "cosign-system", "kube-bench"]}}}],
}


def data_url(content):
    """A ``data:`` URL for file contents (base64 keeps any byte intact)."""
    import base64
    if isinstance(content, str):
        content = content.encode("utf-8")
    return "data:;base64," + base64.b64encode(content).decode("ascii")


def _file(path, content=None, mode=0o644, source=None, sha256=None):
    contents = {"source": source} if source else {"source": data_url(content)}
    if sha256:
        contents["verification"] = {"hash": sha256}
    return {"path": path, "mode": mode, "overwrite": True, "contents": contents}


def _remote(option, item):
    """A remote file option: {url, sha256} with an https://, s3:// or http:// (internal mirror) URL."""
    if not isinstance(item, dict) or not item.get("url") or not item.get("sha256"):
        raise IgnitionError("%s needs url and sha256 (every remote file is pinned)" % option,
                            hint="Give the SHA-256 of the file, e.g. sha256: <64 hex digits>")
    scheme = urllib.parse.urlparse(item["url"]).scheme
    if scheme not in ("https", "http", "s3", "tftp", "data"):
        raise IgnitionError("%s.url %r uses a scheme Ignition cannot fetch" % (option, item["url"]))
    digest = item["sha256"].lower()
    digest = digest if digest.startswith(("sha256-", "sha512-")) else "sha256-" + digest.replace("sha256:", "")
    if not _HASH_RE.match(digest):
        raise IgnitionError("%s.sha256 %r is not a SHA-256 (or SHA-512) digest" % (option, item["sha256"]))
    return item["url"], digest


def _k3s_unit(node_role, binary):
    kind = "server" if node_role == "server" else "agent"
    return "\n".join([
        "[Unit]",
        "Description=Lightweight Kubernetes (%s), FIPS mode" % kind,
        "Documentation=https://docs.k3s.io",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=notify",
        "EnvironmentFile=-/etc/default/%N",
        "KillMode=process",
        "Delegate=yes",
        "LimitNOFILE=1048576",
        "LimitNPROC=infinity",
        "LimitCORE=infinity",
        "TasksMax=infinity",
        "TimeoutStartSec=0",
        "Restart=always",
        "RestartSec=5s",
        "ExecStartPre=-/sbin/modprobe br_netfilter",
        "ExecStartPre=-/sbin/modprobe overlay",
        "ExecStart=%s %s" % (binary, kind),
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])


def k3s_config(node_role, cluster_init, server_url, extra=None):
    """The hardened /etc/rancher/k3s/config.yaml, per the k3s CIS guide, for Cilium and FIPS."""
    config = {
        "protect-kernel-defaults": True,
        "kubelet-arg": ["streaming-connection-idle-timeout=5m", "make-iptables-util-chains=true",
                        "tls-cipher-suites=" + FIPS_CIPHER_SUITES],
    }
    if node_role == "server":
        config.update({
            "secrets-encryption": True,
            "write-kubeconfig-mode": "0600",
            "disable": ["traefik", "servicelb"],
            "flannel-backend": "none",
            "disable-network-policy": True,
            "kube-apiserver-arg": [
                "admission-control-config-file=%s/psa.yaml" % CONFIG_DIR,
                "audit-log-path=/var/lib/rancher/k3s/server/logs/audit.log",
                "audit-policy-file=%s/audit-policy.yaml" % CONFIG_DIR,
                "audit-log-maxage=30", "audit-log-maxbackup=10", "audit-log-maxsize=100",
                "service-account-lookup=true",
                "tls-cipher-suites=" + FIPS_CIPHER_SUITES,
            ],
            "kube-controller-manager-arg": ["terminated-pod-gc-threshold=10",
                                            "use-service-account-credentials=true"],
            "kube-scheduler-arg": ["tls-cipher-suites=" + FIPS_CIPHER_SUITES],
        })
        if cluster_init:
            config["cluster-init"] = True
    if server_url:
        config["server"] = server_url
    for key, value in (extra or {}).items():
        config[key] = value
    return config


def render(node_role, token, k3s, cluster_init=False, server_url=None, k3s_kind="binary", registries=None,
           registry_ca=None, manifests=None, airgap_images=None, ignition_version="3.3.0", updates="disabled",
           host_fips=False, fips_go=True, k3s_config_extra=None, aws_provider_id=False, cluster_ca=None):
    """The Ignition config (a dict) for one node.

    ``aws_provider_id`` sets the kubelet's provider ID from the EC2 metadata (Cluster API mode); ``cluster_ca``
    ({cert, key} PEM) makes the first server use that CA as both k3s's server and client CA, so a kubeconfig signed
    by it (the one Cluster API writes) is accepted.
    """
    if not HAS_YAML:
        raise IgnitionError("the Python library 'PyYAML' is required to render k3s configuration")
    if ignition_version not in SPEC_VERSIONS:
        raise IgnitionError("ignition_version %r is not supported; use one of %s" % (ignition_version,
                                                                                     ", ".join(SPEC_VERSIONS)))
    if node_role not in ("server", "agent"):
        raise IgnitionError("node_role must be server or agent, not %r" % (node_role,))
    if not token:
        raise IgnitionError("a k3s token is required", hint="Set token (kept out of the task output)")
    if cluster_init and (node_role != "server" or server_url):
        raise IgnitionError("cluster_init is for the first server only, which joins no server_url")
    if not cluster_init and not server_url:
        raise IgnitionError("a %s that does not initialise the cluster needs server_url" % node_role,
                            hint="Give https://<first server or API endpoint>:6443, or set cluster_init on the first "
                                 "server")
    k3s_url, k3s_hash = _remote("k3s", k3s)
    files, links, units = [], [], []
    if k3s_kind == "sysext":
        files.append(_file("/opt/extensions/k3s/k3s.raw", source=k3s_url, sha256=k3s_hash))
        links.append({"path": "/etc/extensions/k3s.raw", "target": "/opt/extensions/k3s/k3s.raw", "hard": False,
                      "overwrite": True})
        binary = "/usr/local/bin/k3s"
        units.append({"name": "systemd-sysupdate.timer", "mask": True})
    elif k3s_kind == "binary":
        files.append(_file("/opt/bin/k3s", mode=0o755, source=k3s_url, sha256=k3s_hash))
        binary = "/opt/bin/k3s"
    else:
        raise IgnitionError("k3s_kind must be binary or sysext, not %r" % (k3s_kind,))
    unit_name = "k3s.service" if node_role == "server" else "k3s-agent.service"
    environment = ["K3S_TOKEN=%s" % token]
    if fips_go:
        environment.insert(0, "GODEBUG=fips140=on")
    files.append(_file("/etc/default/%s" % unit_name[:-len(".service")], "\n".join(environment) + "\n", mode=0o600))
    config = k3s_config(node_role, cluster_init, server_url, k3s_config_extra)
    files.append(_file("%s/config.yaml" % CONFIG_DIR, yaml.safe_dump(config, sort_keys=True), mode=0o600))
    files.append(_file("/etc/sysctl.d/90-kubelet-cis.conf",
                       "".join("%s = %s\n" % item for item in sorted(CIS_SYSCTLS.items()))))
    if node_role == "server":
        files.append(_file("%s/audit-policy.yaml" % CONFIG_DIR, yaml.safe_dump(AUDIT_POLICY, sort_keys=False),
                           mode=0o600))
        files.append(_file("%s/psa.yaml" % CONFIG_DIR, yaml.safe_dump(PSA_CONFIG, sort_keys=False), mode=0o600))
        for item in manifests or []:
            name = item.get("name") if isinstance(item, dict) else None
            if not name or not _NAME_RE.match(name) or "content" not in item:
                raise IgnitionError("every manifest needs a file name ([A-Za-z0-9._-]) and content")
            files.append(_file("%s/%s" % (MANIFESTS_DIR, name), item["content"], mode=0o600))
    elif manifests:
        raise IgnitionError("manifests go to servers only (the auto-deploy directory is a server's)")
    if registries:
        files.append(_file(REGISTRIES_PATH, yaml.safe_dump(registries, sort_keys=True), mode=0o600))
    if registry_ca:
        files.append(_file(REGISTRY_CA_PATH, registry_ca))
    for index, item in enumerate(airgap_images or []):
        url, digest = _remote("airgap_images[%d]" % index, item)
        name = item.get("name") or url.rsplit("/", 1)[-1]
        if not _NAME_RE.match(name):
            raise IgnitionError("airgap_images[%d] needs a plain file name, not %r" % (index, name))
        files.append(_file("%s/%s" % (IMAGES_DIR, name), source=url, sha256=digest))
    if cluster_ca:
        if not cluster_init:
            raise IgnitionError("cluster_ca is for the first server only: the others take the CA from the cluster")
        for name in ("server-ca", "client-ca"):
            files.append(_file("%s/%s.crt" % (TLS_DIR, name), cluster_ca["cert"], mode=0o644))
            files.append(_file("%s/%s.key" % (TLS_DIR, name), cluster_ca["key"], mode=0o600))
    if updates == "disabled":
        files.append(_file("/etc/flatcar/update.conf", "SERVER=disabled\nREBOOT_STRATEGY=off\n"))
    else:
        if not str(updates).startswith("https://"):
            raise IgnitionError("updates must be 'disabled' or the https:// URL of a Nebraska server")
        files.append(_file("/etc/flatcar/update.conf", "SERVER=%s\nREBOOT_STRATEGY=off\n" % updates))
    units += [
        {"name": "sshd.socket", "mask": True},
        {"name": "sshd.service", "mask": True},
        {"name": "coreos-metadata-sshkeys@core.service", "mask": True},
        {"name": "auditd.service", "enabled": True},
        {"name": unit_name, "enabled": True, "contents": _k3s_unit(node_role, binary)},
    ]
    if aws_provider_id:
        files.append(_file(PROVIDER_ID_SCRIPT, PROVIDER_ID_SH, mode=0o755))
        units.append({"name": "petra-provider-id.service", "enabled": True, "contents": PROVIDER_ID_UNIT})
        units[-2]["dropins"] = [{"name": "10-provider-id.conf", "contents": "[Unit]\nRequires=petra-provider-id.service\n"
                                 "After=petra-provider-id.service\n"}]
    document = {
        "ignition": {"version": ignition_version},
        "passwd": {"users": [{"name": "core", "shell": "/sbin/nologin", "sshAuthorizedKeys": []}]},
        "storage": {"files": files, "links": links} if links else {"files": files},
        "systemd": {"units": units},
    }
    if host_fips:
        files.append(_file("/etc/system-fips", ""))
        document["kernelArguments"] = {"shouldExist": ["fips=1"]}
    return document


def serialise(document):
    """Compact, stable JSON: the bytes that become user data, and their SHA-256."""
    data = json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return data, hashlib.sha256(data).hexdigest()


def replace_stub(ignition_version, url, sha512_or_256):
    """A small config that replaces itself with the full one from ``url`` (over the 16 KB user-data limit)."""
    return {"ignition": {"version": ignition_version,
                         "config": {"replace": {"source": url, "verification": {"hash": sha512_or_256}}}}}
