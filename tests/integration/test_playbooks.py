"""The modules as users run them: ansible-playbook, the action plugins, module_defaults, check mode."""

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.petra.core.tests.conftest import REGISTRY_USER

import ansible_collections  # the tree this collection was imported from: the one ansible-playbook must load

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTIONS_ROOT = os.path.dirname(list(ansible_collections.__path__)[0])
BIN = os.path.dirname(sys.executable)


def run_playbook(tmp_path, text, *args, expect_rc=0, extra_env=None, output=False):
    """The recorded task results (with ``output``: and everything ansible-playbook printed)."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(text)
    results = tmp_path / "results.json"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_ROOT, ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACK_PLUGINS=os.path.join(HERE, "..", "support", "callback_plugins"),
               ANSIBLE_CALLBACKS_ENABLED="record_results", PETRA_TEST_RESULTS=str(results),
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0", **(extra_env or {}))
    result = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)]
                            + list(args), capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == expect_rc, result.stdout[-4000:] + result.stderr[-4000:]
    report = json.loads(results.read_text())
    return (report, result.stdout + result.stderr) if output else report


def task_results(report):
    return report


# A play whose petra tasks reach the test registry through the group's module_defaults; its tasks follow.
PLAY_HEADER = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/petra.core.petra:
      ca_file: {ca}
      registry_username: {user}
      registry_password: {password}
  tasks:
"""
PLAY = PLAY_HEADER + """    - name: build
      petra.core.petra_bundle:
        definition:
          apiVersion: petra.dev/v1alpha1
          kind: Bundle
          metadata: {{name: play, version: 1.0.0, created: "2026-01-01T00:00:00Z"}}
          images:
            - ref: {image}
          files:
            - name: k3s
              path: {k3s}
        dest: {dest}
        signing_key: {key}
      register: built
    - name: verify
      petra.core.petra_verify:
        path: "{{{{ built.path }}}}"
        public_key: ["{pub}"]
"""


@pytest.fixture
def play_text(registry, sources, spool, ec_key):
    key, pub = ec_key
    return PLAY.format(ca=registry.registry.tls["ca.pem"], user=REGISTRY_USER[0], password=REGISTRY_USER[1],
                       image=registry.app, k3s=sources / "bin" / "k3s", dest=spool / "play.tar.zst", key=key, pub=pub)


def test_create_verify_idempotent_with_module_defaults(tmp_path, play_text, registry, spool):
    first = task_results(run_playbook(tmp_path, play_text))
    assert first["build"]["changed"] is True
    assert [(image["ref"], image["digest"]) for image in first["build"]["images"]] == [(registry.app,
                                                                                        registry.app_digest)]
    # The image carries no SBOM of its own: Petra's (syft's) travels with it, one per platform manifest.
    assert first["build"]["images"][0]["sbom_origin"] == "petra"
    assert len(first["build"]["images"][0]["sbom_digests"]) == 1
    assert first["verify"]["verified"] is True and first["verify"]["changed"] is False
    assert REGISTRY_USER[1] not in json.dumps(first)
    second = task_results(run_playbook(tmp_path, play_text))
    assert second["build"]["changed"] is False
    assert second["build"]["sha256"] == first["build"]["sha256"]


def test_check_mode_writes_nothing(tmp_path, play_text, spool):
    report = run_playbook(tmp_path, play_text.replace("    - name: verify", "    - name: verify\n      when: false"),
                          "--check")
    assert task_results(report)["build"]["changed"] is True
    assert os.listdir(spool) == []


def test_failure_messages_reach_the_operator(tmp_path, play_text, spool):
    run_playbook(tmp_path, play_text)
    bundle = spool / "play.tar.zst"
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0x10
    bundle.write_bytes(bytes(data))
    verify_only = play_text.split("    - name: build")[0] + """    - name: verify
      petra.core.petra_verify:
        path: {path}
        public_key: ["{pub}"]
""".format(path=bundle, pub=play_text.split('public_key: ["')[1].split('"')[0])
    report = run_playbook(tmp_path, verify_only, expect_rc=2)
    result = task_results(report)["verify"]
    assert result["failed"] is True
    assert "signature does not" in result["msg"] and "obtain it again" in result["msg"]
    assert result["reason"] in ("bad-signature", "altered", "corrupt", "truncated")


def test_invalid_arguments_are_reported(tmp_path):
    report = run_playbook(tmp_path, """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: build
      petra.core.petra_bundle:
        spec: a.yml
        definition: {}
        dest: /tmp/x.tar.zst
        signing_key: k.pem
""", expect_rc=2)
    assert "mutually exclusive" in task_results(report)["build"]["msg"]


def test_spec_error_names_the_field(tmp_path, ec_key):
    key, _pub = ec_key
    spec = tmp_path / "bundle.yml"
    spec.write_text("apiVersion: petra.dev/v1alpha1\nkind: Bundle\nmetadata: {name: Bad_Name, version: 1.0.0}\n"
                    "files: [{name: f, path: f}]\n")
    report = run_playbook(tmp_path, """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: build
      petra.core.petra_bundle:
        spec: %s
        dest: %s
        signing_key: %s
""" % (spec, tmp_path / "x.tar.zst", key), expect_rc=2)
    msg = task_results(report)["build"]["msg"]
    assert "metadata.name" in msg and "'Bad_Name'" in msg


def test_source_date_epoch_from_the_environment_keyword(tmp_path, ec_key, monkeypatch):
    """petra_bundle runs in ansible-playbook's process, where Ansible does not apply ``environment:``: the build (the
    play's keyword) and the rebuild of a co-signer (the task's) still take SOURCE_DATE_EPOCH from it."""
    from ansible_collections.petra.core.tests.support import pki
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    key, pub = ec_key
    second = str(tmp_path / "second.pem")
    pki.write_ec_key(second)
    (tmp_path / "f").write_bytes(b"petra")
    spec = tmp_path / "bundle.yml"
    spec.write_text("apiVersion: petra.dev/v1alpha1\nkind: Bundle\nmetadata: {name: env, version: 1.0.0}\n"
                    "files: [{name: f, path: f}]\n")
    report = run_playbook(tmp_path, """
- hosts: localhost
  gather_facts: false
  vars: {{epoch: 1767225600}}
  environment: {{SOURCE_DATE_EPOCH: "{{{{ epoch }}}}"}}
  tasks:
    - name: build
      petra.core.petra_bundle: {{spec: {spec}, dest: {dest}, signing_key: {key}}}
    - name: rebuild
      petra.core.petra_bundle:
        {{state: signed, rebuild: true, spec: {spec}, src: {dest}, public_keys: [{pub}], signing_key: {second}}}
      environment: {{SOURCE_DATE_EPOCH: "{{{{ epoch | string }}}}"}}
""".format(spec=spec, dest=tmp_path / "env.tar.zst", key=key, pub=pub, second=second))
    assert report["build"]["created_from"] == "SOURCE_DATE_EPOCH", report["build"]
    assert report["build"]["created"] == "2026-01-01T00:00:00Z"
    assert report["rebuild"]["reproduced"] is True and report["rebuild"]["changed"] is True, report["rebuild"]


def test_load_through_ansible_masks_the_password(tmp_path, play_text, registry, spool, ec_key, tls_material):
    from ansible_collections.petra.core.tests.support import servers
    _key, pub = ec_key
    run_playbook(tmp_path, play_text)
    high_user = ("loader", "Sec-ret-high-9")
    (tmp_path / "high").mkdir()
    with servers.Registry(str(tmp_path / "high"), tls=tls_material, users=dict([high_user])) as high:
        play = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: load
      petra.core.petra_bundle:
        state: loaded
        src: {src}
        public_key: ["{pub}"]
        registry: {host}/petra
        ca_file: {ca}
        registry_username: {user}
        registry_password: {password}
        registries_dest: {dest}
""".format(src=spool / "play.tar.zst", pub=pub, host=high.host, ca=tls_material["ca.pem"], user=high_user[0],
           password=high_user[1], dest=tmp_path / "registries.yaml")
        # With -v the action plugin says how far the load is, every PETRA_PROGRESS_INTERVAL seconds and per stage.
        progress = {"PETRA_PROGRESS_INTERVAL": "0.05"}
        report, output = run_playbook(tmp_path, play, "-v", extra_env=progress, output=True)
        again, output_again = run_playbook(tmp_path, play, "-v", extra_env=progress, output=True)
    assert "petra.core.petra_bundle: verify: entries" in output
    pushed = report["load"]["blobs"]["pushed"]
    assert "petra.core.petra_bundle: push: blobs %d of %d" % (pushed, pushed) in output
    # The second load skips every blob, and says so rather than looking like a download.
    skipped = again["load"]["blobs"]["skipped"]
    assert again["load"]["changed"] is False and again["load"]["blobs"]["pushed"] == 0 and skipped >= pushed
    assert "push: blobs %d of %d (%d skipped)" % (skipped, skipped, skipped) in output_again
    assert high_user[1] not in output + output_again
    result = report["load"]
    assert result["changed"] is True and result["verified"] is True
    assert high_user[1] not in json.dumps(result)
    assert result["registries"]["configs"][high.host]["auth"]["password"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert high_user[1] in (tmp_path / "registries.yaml").read_text()
    assert result["images"][0]["source"] == registry.app and result["images"][0]["digest"] == registry.app_digest


def test_flatcar_render_through_ansible(tmp_path):
    play = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: render
      petra.core.petra_flatcar:
        node_role: server
        cluster_init: true
        token: Sup3r-Secret-Token
        k3s: {url: "s3://artifacts/k3s", sha256: "%s"}
        dest: %s
""" % ("d" * 64, tmp_path / "server.ign")
    first = run_playbook(tmp_path, play)["render"]
    assert first["changed"] is True and first["fits_user_data"] is True
    assert oct(os.stat(tmp_path / "server.ign").st_mode & 0o777) == "0o600"
    assert "Sup3r-Secret-Token" not in json.dumps({k: v for k, v in first.items() if k != "ignition"})
    assert run_playbook(tmp_path, play)["render"]["changed"] is False
    assert run_playbook(tmp_path, play.replace("cluster_init: true", "cluster_init: true\n        host_fips: true"),
                        "--check")["render"]["changed"] is True
    assert "fips=1" not in (tmp_path / "server.ign").read_text()


def test_flatcar_inspect_through_ansible(tmp_path):
    import shutil
    play = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: inspect
      petra.core.petra_flatcar:
        state: inspected
        binary: %s
        require_fips_module: %s
"""
    skopeo = shutil.which("skopeo")
    info = run_playbook(tmp_path, play % (skopeo, "false"))["inspect"]
    assert info["changed"] is False and info["go_version"].startswith("go1.") and info["fips_module"] is False
    refused = run_playbook(tmp_path, play % (skopeo, "true"), expect_rc=2)["inspect"]
    assert refused["failed"] is True and "validated Go FIPS module" in refused["msg"]
