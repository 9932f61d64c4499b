"""The ``petra`` command as operators run it: a process of its own against the real registry, on the modules' engine.

create → verify → inspect → load; ``--json`` is the module's result for the same inputs; a tampered bundle exits 1
with the module's message; usage errors exit 2; a terminal shows progress bars, a pipe shows progress lines; a
second load is reported as skipped.
"""

import io
import json
import os
import re
import subprocess
import sys

import pytest

from ansible_collections.petra.core.plugins.module_utils.adapters import bundle as bundle_adapter
from ansible_collections.petra.core.plugins.module_utils.adapters import verify as verify_adapter
from ansible_collections.petra.core.plugins.module_utils.adapters.invoke import adapter_validator, checked_run
from ansible_collections.petra.core.plugins.module_utils.cli.commands import COMMANDS
from ansible_collections.petra.core.plugins.module_utils.cli.docs import option_help
from ansible_collections.petra.core.plugins.module_utils.cli.main import main
from ansible_collections.petra.core.tests.conftest import REGISTRY_USER
from ansible_collections.petra.core.tests.support import images, servers

import ansible_collections  # the tree this collection was imported from: the one the command must run

COLLECTIONS_ROOT = os.path.dirname(list(ansible_collections.__path__)[0])
HIGH_USER = ("loader", "high-Side-Passw0rd")
# Fields that say how long a step took, and nothing else.
TIMING = ("duration",)


def petra(*args, env=None, timeout=300):
    """The command as a process: ``python -m`` of its package, the same entry point as the ``petra`` script."""
    environment = dict(os.environ, PYTHONPATH=COLLECTIONS_ROOT, **(env or {}))
    return subprocess.run([sys.executable, "-m", "ansible_collections.petra.core.plugins.module_utils.cli"]
                          + [str(arg) for arg in args], capture_output=True, text=True, env=environment,
                          timeout=timeout, check=False)


def module_result(adapter, args):
    """The module's result for task arguments, on the path the action plugins take."""
    return checked_run(adapter.ARGUMENT_SPEC, adapter_validator(adapter), args,
                       lambda params: adapter.run(params, False))


def untimed(result):
    if isinstance(result, dict):
        return {key: untimed(value) for key, value in result.items() if key not in TIMING}
    if isinstance(result, list):
        return [untimed(item) for item in result]
    return result


@pytest.fixture(scope="module")
def high(tmp_path_factory, tls_material):
    with servers.Registry(str(tmp_path_factory.mktemp("high")), tls=tls_material, users=dict([HIGH_USER])) as server:
        yield server


@pytest.fixture
def spec_file(registry, sources):
    spec = sources / "bundle.yaml"
    spec.write_text("\n".join([
        "apiVersion: petra.dev/v1alpha1", "kind: Bundle", "metadata: {name: cli, version: 1.0.0, created: '2026-01-01T00:00:00Z'}",
        "images:", "  - ref: %s" % registry.app, "  - ref: %s" % registry.tools,
        "manifests:", "  - {name: apps, path: manifests/apps}", "files:", "  - {name: k3s, path: bin/k3s}", ""]))
    return spec


def low_side(registry):
    flags = ["--ca-file", registry.registry.tls["ca.pem"], "--registry-username", REGISTRY_USER[0]]
    return flags, {"PETRA_REGISTRY_PASSWORD": REGISTRY_USER[1]}


def high_side(high):
    flags = ["--registry", high.host + "/mirror", "--ca-file", high.tls["ca.pem"], "--registry-username", HIGH_USER[0]]
    return flags, {"PETRA_REGISTRY_PASSWORD": HIGH_USER[1]}


def test_create_verify_inspect_load(registry, high, spec_file, spool, ec_key):
    key, pub = ec_key
    dest = spool / "cli-1.0.0.tar.zst"
    flags, env = low_side(registry)
    created = petra("bundle", "create", spec_file, "--dest", dest, "--signing-key", key, "--json", *flags, env=env)
    assert created.returncode == 0, created.stderr
    result = json.loads(created.stdout)
    assert result["changed"] is True and result["sha256"] and os.path.isfile(dest)
    assert REGISTRY_USER[1] not in created.stdout + created.stderr
    # The module, given the same inputs, finds the bundle it would write already there: the same result but changed.
    again = module_result(bundle_adapter, {
        "state": "present", "spec": str(spec_file), "dest": str(dest), "signing_key": key,
        "ca_file": registry.registry.tls["ca.pem"], "registry_username": REGISTRY_USER[0],
        "registry_password": REGISTRY_USER[1]})
    assert again["changed"] is False
    assert untimed(dict(result, changed=False)) == untimed(again)
    human = petra("bundle", "create", spec_file, "--dest", dest, "--signing-key", key, *flags, env=env)
    assert human.returncode == 0 and human.stdout.startswith("skipped: %s already holds bundle cli 1.0.0" % dest)

    verified = petra("bundle", "verify", dest, "--public-key", pub, "--json")
    assert verified.returncode == 0, verified.stderr
    expected = module_result(verify_adapter, {"path": str(dest), "public_keys": [pub]})
    assert untimed(json.loads(verified.stdout)) == untimed(expected)
    human = petra("bundle", "verify", dest, "--public-key", pub)
    assert human.returncode == 0 and human.stdout.startswith("verified: %s is bundle cli 1.0.0" % dest)

    inspected = petra("bundle", "inspect", dest, "--public-key", pub)
    assert inspected.returncode == 0, inspected.stderr
    assert "image      %s@%s" % (registry.app, registry.app_digest) in inspected.stdout
    assert "manifests  apps" in inspected.stdout and "file       k3s" in inspected.stdout
    as_json = petra("bundle", "inspect", dest, "--public-key", pub, "--json")
    assert untimed(json.loads(as_json.stdout)) == untimed(expected)

    flags, env = high_side(high)
    loaded = petra("bundle", "load", dest, "--public-key", pub, *flags, env=dict(env, PETRA_PROGRESS_INTERVAL="0.05"))
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.startswith("loaded cli 1.0.0 into %s/mirror" % high.host)
    port_host = registry.registry.host.replace(":", "-")
    assert images.skopeo_inspect_digest(high, "mirror/%s/team/app:1.0" % port_host, HIGH_USER) == registry.app_digest
    # Without a terminal, progress comes as plain lines on stderr, per stage.
    assert "petra: verify: entries" in loaded.stderr and "petra: push: blobs" in loaded.stderr

    # A second load pushes nothing and says so: every blob skipped, none sent, in the lines and in the result.
    rerun = petra("bundle", "load", dest, "--public-key", pub, "--json", *flags,
                  env=dict(env, PETRA_PROGRESS_INTERVAL="0.05"))
    assert rerun.returncode == 0, rerun.stderr
    second = json.loads(rerun.stdout)
    assert second["changed"] is False and second["blobs"]["pushed"] == 0 and second["blobs"]["skipped"] > 0
    total = second["blobs"]["skipped"]
    assert "push: blobs %d of %d (%d skipped)" % (total, total, total) in rerun.stderr
    third = module_result(bundle_adapter, {"state": "loaded", "src": str(dest), "public_keys": [pub],
                                           "registry": high.host + "/mirror", "ca_file": high.tls["ca.pem"],
                                           "registry_username": HIGH_USER[0], "registry_password": HIGH_USER[1]})
    assert untimed(second) == untimed(third)
    human = petra("bundle", "load", dest, "--public-key", pub, "--quiet", *flags, env=env)
    assert human.returncode == 0 and human.stderr == ""
    assert human.stdout.startswith("skipped: cli 1.0.0 is already in %s/mirror, nothing pushed" % high.host)
    assert "0 sent (0 B)" in human.stdout and "%d skipped" % total in human.stdout


@pytest.fixture
def small_bundle(sources, spool, ec_key):
    """A bundle of local files only (no registry needed), large enough to take a few progress frames."""
    key, pub = ec_key
    (sources / "bin" / "big").write_bytes(os.urandom(24 << 20))
    spec = sources / "files.yaml"
    spec.write_text("apiVersion: petra.dev/v1alpha1\nkind: Bundle\nmetadata: {name: files, version: 2.0.0, created: '2026-01-01T00:00:00Z'}\n"
                    "files:\n  - {name: k3s, path: bin/k3s}\n  - {name: big, path: bin/big}\n")
    dest = spool / "files-2.0.0.tar.zst"
    made = petra("bundle", "create", spec, "--dest", dest, "--signing-key", key, "--quiet")
    assert made.returncode == 0, made.stderr
    return {"path": dest, "key": key, "pub": pub, "spec": spec}


def test_tampered_bundle_exits_1_with_the_modules_message(small_bundle, tmp_path):
    tampered = tmp_path / "t.tar.zst"
    data = bytearray(small_bundle["path"].read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    (tmp_path / "t.tar.zst.sig").write_bytes((small_bundle["path"].parent / "files-2.0.0.tar.zst.sig").read_bytes())
    refused = petra("bundle", "verify", tampered, "--public-key", small_bundle["pub"])
    assert refused.returncode == 1 and refused.stdout == ""
    expected = module_result(verify_adapter, {"path": str(tampered), "public_keys": [small_bundle["pub"]]})
    assert expected["failed"] is True
    assert refused.stderr.endswith("\npetra bundle verify: %s\n" % expected["msg"])
    assert "Do not use this bundle" in refused.stderr  # the hint, after the message
    as_json = petra("bundle", "verify", tampered, "--public-key", small_bundle["pub"], "--json")
    assert as_json.returncode == 1 and json.loads(as_json.stdout) == expected


def in_process(*args):
    """(exit code, stdout, stderr) of main() in this process: the parser and validation without a process start."""
    out, err = io.StringIO(), io.StringIO()
    return main([str(arg) for arg in args], out=out, err=err), out.getvalue(), err.getvalue()


def test_usage_errors_exit_2(small_bundle):
    missing = petra("bundle", "verify", small_bundle["path"])
    assert missing.returncode == 2 and missing.stdout == ""
    assert "petra bundle verify: error: missing required arguments: public_keys" in missing.stderr
    code, _out, err = in_process("bundle", "verify", small_bundle["path"], "--public-key", "k.pub", "--bogus")
    assert code == 2 and "unrecognized arguments: --bogus" in err
    code, _out, err = in_process("bundle", "verify", small_bundle["path"], "--path", small_bundle["path"],
                                 "--public-key", "k.pub")
    assert code == 2 and "path is given twice" in err
    code, _out, err = in_process("diode", "send", small_bundle["path"], "--directory", "/tmp", "--transport", "pigeon")
    assert code == 2 and "invalid choice: 'pigeon'" in err
    code, _out, err = in_process("bundle", "load", small_bundle["path"], "--public-key", "k.pub", "--registry", "r",
                                 "--parallel", "many")
    assert code == 2 and "parallel" in err and "int" in err  # ansible-core's own conversion error
    assert in_process("bundle")[0] == 2 and in_process("frobnicate")[0] == 2 and in_process()[0] == 2


def test_every_command_has_help_with_an_example(capsys):
    for command in COMMANDS:
        documented = option_help(command.module)
        assert [name for name in command.options if not documented.get(name)] == []  # every flag has the module's words
        assert in_process(command.group, command.name, "--help")[0] == 0
        shown = capsys.readouterr().out
        assert "example:\n  " + command.example in shown
        for name in command.options:
            spec = command.adapter.ARGUMENT_SPEC[name]
            if spec.get("no_log"):
                assert "PETRA_%s" % name.upper() in shown  # secrets: from the environment only
                assert "--" + name.replace("_", "-") + " " not in shown
            else:
                assert "--" + name.replace("_", "-") in shown
    assert in_process("version", "--help")[0] == 0 and "petra version --json" in capsys.readouterr().out
    assert petra("--help").stdout.startswith("usage: petra")


def test_a_terminal_shows_progress_bars(small_bundle):
    """Under a pseudo-terminal (script(1)), rich draws the bars: stage name, bar, percentage, items, bytes, rate."""
    environment = dict(os.environ, PYTHONPATH=COLLECTIONS_ROOT, TERM="xterm", COLUMNS="120")
    command = " ".join([sys.executable, "-m", "ansible_collections.petra.core.plugins.module_utils.cli", "bundle",
                        "verify", str(small_bundle["path"]), "--public-key", small_bundle["pub"]])
    shown = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True, text=True, env=environment,
                           timeout=120, check=False)
    assert shown.returncode == 0, shown.stdout
    screen = shown.stdout
    assert "verify" in screen and "━" in screen and "100%" in screen
    assert re.search(r"(\d+)/\1 entries", screen) and "/s" in screen and "MB" in screen
    assert "verified: %s is bundle files 2.0.0" % small_bundle["path"] in screen


def test_json_equals_the_module_for_diode_send_and_receive(small_bundle, tmp_path):
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    sent = petra("diode", "send", small_bundle["path"], "--directory", outbox, "--signing-key", small_bundle["key"],
                 "--max-part-size", "4MB", "--json")
    assert sent.returncode == 0, sent.stderr
    result = json.loads(sent.stdout)
    assert result["changed"] is True and result["part_count"] >= 6
    human = petra("diode", "send", small_bundle["path"], "--directory", outbox, "--signing-key", small_bundle["key"],
                  "--max-part-size", "4MB", env={"PETRA_PROGRESS_INTERVAL": "0.05"})
    assert human.stdout.startswith("skipped: %s already holds all %d parts" % (outbox, result["part_count"]))
    assert "split: parts %d of %d (%d skipped)" % ((result["part_count"],) * 3) in human.stderr
    dest = tmp_path / "received.tar.zst"
    received = petra("diode", "receive", "--directory", outbox, "--dest", dest, "--public-key", small_bundle["pub"],
                     "--json")
    assert received.returncode == 0, received.stderr
    from ansible_collections.petra.core.plugins.module_utils.adapters import diode as diode_adapter
    again = module_result(diode_adapter, {"state": "received", "directory": str(outbox), "dest": str(dest),
                                          "public_key": [small_bundle["pub"]]})
    assert untimed(dict(json.loads(received.stdout), changed=False)) == untimed(again)
    assert dest.read_bytes() == small_bundle["path"].read_bytes()


def test_sign_then_sign_again_is_skipped(small_bundle, tmp_path):
    from ansible_collections.petra.core.tests.support import pki
    officer = str(tmp_path / "officer.pem")
    officer_pub = pki.write_ec_key(officer)
    args = ("bundle", "sign", small_bundle["path"], "--public-key", small_bundle["pub"], "--signing-key", officer)
    code, out, err = in_process(*args, "--check")
    assert code == 0 and out.startswith("co-signed files 2.0.0 with key ") and "check mode: nothing was written" in out
    assert not os.path.exists(str(small_bundle["path"]) + ".sigs.json")
    code, out, err = in_process(*args)
    assert code == 0 and out.startswith("co-signed files 2.0.0 with key "), err
    code, out, err = in_process(*args)
    assert code == 0 and out.startswith("skipped: key ") and "has already signed files 2.0.0" in out
    # Two keys now: a threshold of 2 verifies.
    code, out, err = in_process("bundle", "verify", small_bundle["path"], "--public-key", small_bundle["pub"],
                                "--public-key", officer_pub, "--threshold", "2", "--quiet")
    assert code == 0 and "(2 signers, 2 required)" in out and err == "", err


def test_sign_with_rebuild_reports_the_reproduction(small_bundle, tmp_path):
    from ansible_collections.petra.core.tests.support import pki
    officer = str(tmp_path / "officer.pem")
    officer_pub = pki.write_ec_key(officer)
    args = ("bundle", "sign", small_bundle["path"], "--public-key", small_bundle["pub"], "--signing-key", officer,
            "--rebuild", "--spec", str(small_bundle["spec"]))
    code, out, err = in_process(*args)
    assert code == 0 and out.startswith("co-signed files 2.0.0 with key "), err
    assert "reproduced: rebuilt from the spec and sources on this host, byte-identical" in out
    officer_id = out.split("with key ", 1)[1].split()[0]
    # verify and inspect name the co-signer whose signature was reproduced (only when co-signatures are counted).
    for command in ("verify", "inspect"):
        code, out, err = in_process("bundle", command, small_bundle["path"], "--public-key", small_bundle["pub"],
                                    "--public-key", officer_pub, "--threshold", "2", "--quiet")
        assert code == 0 and "  reproduced by %s: rebuilt from the spec and sources, byte-identical" % officer_id \
            in out.splitlines(), out
    code, out, err = in_process("bundle", "verify", small_bundle["path"], "--public-key", small_bundle["pub"], "--quiet")
    assert code == 0 and "reproduced by" not in out
    # A second officer rebuilding from a changed spec is refused (exit 1), told what differs.
    second = str(tmp_path / "second.pem")
    pki.write_ec_key(second)
    small_bundle["spec"].write_text(small_bundle["spec"].read_text().replace("version: 2.0.0", "version: 2.0.1"))
    code, out, err = in_process(*args[:6], second, *args[7:])
    assert code == 1 and "the signed metadata differs first at version: the bundle has 2.0.0, the rebuild 2.0.1" \
        in err, err


def test_inspect_writes_the_review_sheet_and_send_writes_parity(small_bundle, tmp_path):
    """The options of the review sheet and of parity parts reach the command with the modules' names."""
    html, data = tmp_path / "review.html", tmp_path / "review.json"
    inspected = petra("bundle", "inspect", small_bundle["path"], "--public-key", small_bundle["pub"],
                      "--review-html", html, "--review-json", data, "--json", "--quiet")
    assert inspected.returncode == 0, inspected.stderr
    result = json.loads(inspected.stdout)
    assert result["review"]["changed"] is True
    sheet = json.loads(data.read_text())
    assert sheet["verdict"]["status"] == "verified" and sheet["bundle"]["name"] == "files"
    assert "<script" not in html.read_text()
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    sent = petra("diode", "send", small_bundle["path"], "--directory", outbox, "--signing-key", small_bundle["key"],
                 "--max-part-size", "4MB", "--parity-parts", "2", "--json", "--quiet")
    assert sent.returncode == 0, sent.stderr
    parity_files = sorted(name for name in os.listdir(outbox) if ".parity-" in name)
    assert len(parity_files) == 2, os.listdir(outbox)
