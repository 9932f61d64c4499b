"""execution-environment.yml makes a complete build context: ansible-builder create (offline: it downloads nothing)
on the definition, then the context is checked, and its galaxy stage is run as the Containerfile runs it.

The image build itself needs a container engine and the base image, which the test machine has neither of; what
goes into it is all here: the collection tarball that the galaxy stage installs without a Galaxy server, the
collection's requirements.txt and bindep.txt, and the pip build arguments an air-gapped site sets.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
BIN = os.path.dirname(sys.executable)
TIMEOUT = 300
# pip runs in these stages: base (ansible-core, ansible-runner), builder (wheels of the requirements), final (install).
PIP_STAGES = ("base", "builder", "final")
PIP_ARGS = ("PIP_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_CERT")


def run(args, cwd, **env):
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False,
                            env=dict(os.environ, ANSIBLE_NOCOLOR="1", **env))
    assert result.returncode == 0, "%s failed:\n%s%s" % (" ".join(args), result.stdout[-4000:], result.stderr[-4000:])
    return result.stdout


def read(path, mode="r"):
    with open(path, mode) as handle:
        return handle.read()


def stages(containerfile):
    """{stage name: its lines} of a multi-stage Containerfile."""
    found, current = {}, None
    for line in containerfile.splitlines():
        match = re.match(r"FROM \S+ AS (\w+)$", line)
        if match:
            current = match.group(1)
            found[current] = []
        elif current:
            found[current].append(line)
    return found


def test_ansible_builder_context_holds_the_collection_and_its_requirements(tmp_path):
    work = tmp_path / "ee"
    work.mkdir()
    for name in ("execution-environment.yml", "requirements.txt", "bindep.txt"):
        shutil.copy(os.path.join(ROOT, name), work / name)
    definition = yaml.safe_load(read(work / "execution-environment.yml"))
    assert definition["version"] == 3
    galaxy = yaml.safe_load(read(os.path.join(ROOT, "galaxy.yml")))
    tarball_name = "petra-core-%s.tar.gz" % galaxy["version"]
    # As the definition's header says: the collection is built first, into .build/ee beside the definition.
    run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--force", "--output-path",
         str(work / ".build" / "ee"), ROOT], cwd=ROOT)
    assert [entry["src"] for entry in definition["additional_build_files"]] == [".build/ee/" + tarball_name], \
        "execution-environment.yml must name the collection tarball of galaxy.yml's version %s" % galaxy["version"]

    run([os.path.join(BIN, "ansible-builder"), "create", "-f", "execution-environment.yml", "-c", "context",
         "--output-filename", "Containerfile"], cwd=str(work))

    build = work / "context" / "_build"
    assert read(build / "requirements.txt", "rb") == read(os.path.join(ROOT, "requirements.txt"), "rb")
    assert read(build / "bindep.txt", "rb") == read(os.path.join(ROOT, "bindep.txt"), "rb")
    assert yaml.safe_load(read(build / "requirements.yml")) == {
        "collections": [{"name": "collections/" + tarball_name, "type": "file"}]}
    with tarfile.open(build / "collections" / tarball_name) as archive:
        members = set(archive.getnames())
        manifest = json.load(archive.extractfile("MANIFEST.json"))["collection_info"]
    assert (manifest["namespace"], manifest["name"], manifest["version"]) == ("petra", "core", galaxy["version"])
    assert {"requirements.txt", "bindep.txt", "meta/runtime.yml", "playbooks/bundle_create.yml",
            "playbooks/bundle_load.yml", "roles/bundle_load/meta/argument_specs.yml",
            "plugins/modules/petra_bundle.py", "plugins/action/petra_bundle.py"} <= members
    assert not [name for name in members if name.startswith((".build", ".venv", ".git/"))]

    containerfile = read(work / "context" / "Containerfile")
    by_stage = stages(containerfile)
    assert set(by_stage) == {"base", "galaxy", "builder", "final"}
    # The base image and the pip index are build arguments an air-gapped site points at its own mirrors.
    assert containerfile.startswith('ARG EE_BASE_IMAGE="')
    for stage in PIP_STAGES:
        for argument in PIP_ARGS:
            assert "ARG %s" % argument in by_stage[stage], "stage %s does not see --build-arg %s" % (stage, argument)
    assert not [line for line in containerfile.splitlines() if line.startswith("ENV PIP_INDEX_URL")], \
        "the mirror's address must not be baked into the image"
    # The petra command (docs/cli.md) is installed from the collection in the final stage, and runs there.
    final = "\n".join(by_stage["final"])
    assert "pip install --no-cache-dir --no-deps /usr/share/ansible/collections/ansible_collections/petra/core" in final
    assert "&& petra version" in final

    # The galaxy stage's command, run where it runs (WORKDIR /build is the context's _build): it installs petra.core
    # from the tarball with no Galaxy server (an unreachable one is configured, so any attempt would fail), into an
    # empty collections path as in the image (none installed elsewhere may stand in for it).
    command = next(line for line in by_stage["galaxy"] if "ansible-galaxy collection install" in line)
    assert "-r requirements.yml" in command
    installed = tmp_path / "installed"
    run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "-r", "requirements.yml",
         "--collections-path", str(installed)], cwd=str(build),
        ANSIBLE_GALAXY_SERVER="http://127.0.0.1:9/", ANSIBLE_GALAXY_DISABLE_GPG_VERIFY="1",
        ANSIBLE_COLLECTIONS_PATH=str(installed), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", HOME=str(tmp_path))
    collection = installed / "ansible_collections" / "petra" / "core"
    assert read(collection / "requirements.txt", "rb") == read(os.path.join(ROOT, "requirements.txt"), "rb")
    listed = run([os.path.join(BIN, "ansible-doc"), "-l", "petra.core"], cwd=str(tmp_path),
                 ANSIBLE_COLLECTIONS_PATH=str(installed), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false")
    assert "petra.core.petra_bundle" in listed and "petra.core.petra_verify" in listed
