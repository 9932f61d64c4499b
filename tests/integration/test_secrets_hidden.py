"""Secrets in nested no_log options never reach ansible-playbook's output or registered results, nor a module's.

A distinct secret goes into every nested no_log option of every module that has one (petra_bundle ``scan.env``,
petra_flatcar ``servers.user_data``, ``servers.init_user_data`` and ``agents.user_data``), through real runs: the
bundle against the TLS registry with a scanner that echoes its environment when it fails, the cluster against moto.
"""

import json
import os
import stat
import subprocess
import sys

from ansible_collections.petra.core.tests.conftest import REGISTRY_USER
from ansible_collections.petra.core.tests.integration.test_flatcar_cluster import REGION, Environment
from ansible_collections.petra.core.tests.integration.test_playbooks import (
    BIN,
    COLLECTIONS_ROOT,
    PLAY_HEADER,
    run_playbook,
)

SUPPORT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support")
# The playbook's variables (as operators keep secrets: vault, inventory): one secret per nested no_log option.
SECRETS = {
    "scan_password": "Nolog1-scan-env-password", "scan_token": "Nolog2-scan-env-token",
    "scan_string_env": "Nolog3-scan-env-given-as-key-value",
    "server_user_data": "Nolog4-servers-user-data-k3s-token",
    "server_init_user_data": "Nolog5-servers-init-user-data-k3s-token",
    "agent_user_data": "Nolog6-agents-user-data-k3s-token",
}


def scanner(tmp_path):
    """A trivy stand-in: the fake scanner, except that with --echo-env it fails and prints its SCAN_* variables, as
    a scanner refusing credentials might: its stderr becomes the task's error message."""
    path = tmp_path / "trivy-echo"
    path.write_text("""#!%s
import os, runpy, sys
if "--echo-env" in sys.argv:
    sys.stderr.write("refused: %%s\\n" %% " ".join(value for name, value in sorted(os.environ.items())
                                                 if name.startswith("SCAN_")))
    sys.exit(2)
sys.argv = ["fake", "trivy"] + sys.argv[1:]
runpy.run_path(%r, run_name="__main__")
""" % (sys.executable, os.path.join(SUPPORT, "fake_scanner.py")))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    findings = tmp_path / "findings.json"
    findings.write_text("{}")
    return str(path), str(findings)


def assert_hidden(text, *secrets):
    leaked = [secret for secret in secrets if secret in text]
    assert not leaked, "secrets %s leaked in: ...%s" % (leaked, text[text.index(leaked[0]) - 800:][:1600])


PLAY = PLAY_HEADER + """    - name: build with a scan
      petra.core.petra_bundle:
        definition: &definition
          apiVersion: petra.dev/v1alpha1
          kind: Bundle
          metadata: {{name: nolog, version: 1.0.0, created: "2026-01-01T00:00:00Z"}}
          images:
            - ref: {image}
        dest: {spool}/scanned.tar.zst
        signing_key: {key}
        scan:
          scanner: trivy
          executable: {scanner}
          args: [--skip-db-update]
          env: {{SCAN_PASSWORD: "{{{{ scan_password }}}}", SCAN_TOKEN: "{{{{ scan_token }}}}", FAKE_SCANNER_FINDINGS: {findings}}}
      register: scanned
    - name: build with a scanner that echoes its credentials
      petra.core.petra_bundle:
        definition: *definition
        dest: {spool}/echoed.tar.zst
        signing_key: {key}
        scan:
          scanner: trivy
          executable: {scanner}
          args: [--echo-env]
          env: "SCAN_PASSWORD={{{{ scan_string_env }}}}"
      register: echoed
      ignore_errors: true
    - name: plan the cluster
      petra.core.petra_flatcar: &cluster
        state: present
        cluster_name: nolog
        image: {ami}
        subnets: {subnets}
        region: {region}
        access_key: testing
        secret_key: testing
        endpoint_url: {endpoint}
        servers: {{count: 1, instance_type: m6i.large, user_data: "{{{{ server_user_data }}}}",
                   init_user_data: "{{{{ server_init_user_data }}}}"}}
        agents: {{count: 1, instance_type: m6i.large, user_data: "{{{{ agent_user_data }}}}"}}
      check_mode: true
      register: planned
    - name: refuse the cluster
      petra.core.petra_flatcar:
        <<: *cluster
        servers: {{count: 2, instance_type: m6i.large, user_data: "{{{{ server_user_data }}}}",
                   init_user_data: "{{{{ server_init_user_data }}}}"}}
      check_mode: true
      register: refused
      ignore_errors: true
    - name: show what was registered
      ansible.builtin.debug:
        var: registered
      vars:
        registered: [ "{{{{ scanned }}}}", "{{{{ echoed }}}}", "{{{{ planned }}}}", "{{{{ refused }}}}" ]
"""


def test_nested_secrets_reach_no_output_nor_registered_result(tmp_path, registry, spool, ec_key, moto):
    key, _pub = ec_key
    executable, findings = scanner(tmp_path)
    aws = Environment(moto, "nolog")
    play = PLAY.format(
        ca=registry.registry.tls["ca.pem"], user=REGISTRY_USER[0], password=REGISTRY_USER[1], image=registry.app,
        spool=spool, key=key, scanner=executable, findings=findings, ami=aws.images[0], subnets=json.dumps(aws.subnets),
        region=REGION, endpoint=moto.endpoint)
    # Variables, so Ansible's own error context (the playbook lines around a failed task) shows expressions only.
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps(SECRETS))
    report, output = run_playbook(tmp_path, play, "-vvv", "-e", "@%s" % secrets, output=True,
                                  extra_env={"ANSIBLE_DISPLAY_TRACEBACK": "always"})
    # The tasks did what they were meant to, so the secrets went through them.
    assert report["build with a scan"]["changed"] is True and report["build with a scan"]["scan"]["reports"]
    echoed = report["build with a scanner that echoes its credentials"]
    assert echoed["failed"] is True and "trivy failed with exit code 2: refused: ********." in echoed["msg"]
    assert report["plan the cluster"]["changed"] is True
    refused = report["refuse the cluster"]
    assert refused["failed"] is True and "server" in refused["msg"]
    assert_hidden(output, *SECRETS.values())
    assert_hidden(json.dumps(report), *SECRETS.values())
    assert_hidden((tmp_path / "results.json").read_text(), *SECRETS.values())


def test_module_masks_converted_nested_secrets(tmp_path, registry, spool, ec_key):
    """Run as a module (not through the action plugin): AnsibleModule masks what its validator collected, and Petra
    adds the values as converted (``env`` given as ``KEY=value``), which a failing tool echoes."""
    key, _pub = ec_key
    executable, _findings = scanner(tmp_path)
    args = {"ANSIBLE_MODULE_ARGS": {
        "definition": {"apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
                       "metadata": {"name": "nolog", "version": "1.0.0", "created": "2026-01-01T00:00:00Z"},
                       "images": [{"ref": registry.app}]},
        "dest": str(spool / "module.tar.zst"), "signing_key": key, "ca_file": registry.registry.tls["ca.pem"],
        "registry_username": REGISTRY_USER[0], "registry_password": REGISTRY_USER[1],
        "scan": {"scanner": "trivy", "executable": executable, "args": ["--echo-env"],
                 "env": "SCAN_PASSWORD=%s" % SECRETS["scan_string_env"]}}}
    (tmp_path / "args.json").write_text(json.dumps(args))
    module = os.path.join(COLLECTIONS_ROOT, "ansible_collections", "petra", "core", "plugins", "modules",
                          "petra_bundle.py")
    finished = subprocess.run([os.path.join(BIN, "python"), module, str(tmp_path / "args.json")], capture_output=True,
                              text=True, timeout=300, check=False, cwd=str(tmp_path),
                              env=dict(os.environ, PYTHONPATH=COLLECTIONS_ROOT))
    result = json.loads(finished.stdout)
    assert finished.returncode == 1 and result["failed"] is True, finished.stdout + finished.stderr
    assert "trivy failed with exit code 2: refused: ********." in result["msg"]
    assert_hidden(finished.stdout + finished.stderr, SECRETS["scan_string_env"], REGISTRY_USER[1])
