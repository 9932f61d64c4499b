"""`pip install <the repository>` puts a working `petra` on PATH: built from pyproject.toml + setup.py into a throwaway
venv, then run from there, with nothing of the checkout on its path.

The build runs in pip's isolated build environment, so pip fetches setuptools through the index it is configured
with; the runtime dependencies come from the test venv (a .pth file), since installing them again would
only test the index.
"""

import os
import subprocess
import sys
import sysconfig
import tarfile

from ansible_collections.petra.core.tests.support import pki

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))


def copy_of_the_repository(target):
    """The files git knows (committed or not, minus ignored ones): what a clone has, without build output."""
    listed = subprocess.run(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True, timeout=60).stdout.split(b"\0")
    archive = os.path.join(os.path.dirname(target), "source.tar")
    with tarfile.open(archive, "w") as tar:
        for name in filter(None, listed):
            path = os.path.join(ROOT, name.decode())
            if os.path.isfile(path):
                tar.add(path, arcname=name.decode())
    os.makedirs(target)
    with tarfile.open(archive) as tar:
        tar.extractall(target)
    return target


def test_pip_install_puts_petra_on_path(tmp_path):
    source = copy_of_the_repository(str(tmp_path / "petra-src"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    purelib = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    with open(os.path.join(purelib, "test-dependencies.pth"), "w") as handle:
        handle.write(sysconfig.get_paths()["purelib"] + "\n")
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "ANSIBLE_COLLECTIONS_PATH")}
    env["PATH"] = str(venv / "bin") + os.pathsep + env["PATH"]
    installed = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-deps", source], capture_output=True,
                               text=True, env=env, timeout=600, check=False)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    assert "Successfully installed petra-core-" in installed.stdout

    version = subprocess.run(["petra", "version"], capture_output=True, text=True, env=env, cwd=str(tmp_path),
                             timeout=120, check=False)
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("petra 0.1.0 (collection petra.core), ansible-core ")
    where = subprocess.run(["python", "-c", "import ansible_collections.petra.core.plugins.module_utils.cli.main as m; "
                            "print(m.__file__)"], capture_output=True, text=True, env=env, timeout=120, check=True)
    assert where.stdout.startswith(purelib)  # the installed copy, not the checkout

    # A real command from the installed copy: a bundle of local files (the package data, e.g. the JSON schema
    # validation and the Diode model, must be there too).
    key = str(tmp_path / "k.pem")
    pub = pki.write_ec_key(key)
    (tmp_path / "k3s").write_bytes(os.urandom(100_000))
    (tmp_path / "spec.yaml").write_text("apiVersion: petra.dev/v1alpha1\nkind: Bundle\n"
                                        "metadata: {name: pip, version: 1.0.0, created: '2026-01-01T00:00:00Z'}\n"
                                        "files:\n  - {name: k3s, path: k3s}\n")
    created = subprocess.run(["petra", "bundle", "create", "spec.yaml", "--dest", "pip-1.0.0.tar.zst", "--signing-key",
                              key], capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300, check=False)
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("created bundle pip 1.0.0: pip-1.0.0.tar.zst")
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    sent = subprocess.run(["petra", "diode", "send", "pip-1.0.0.tar.zst", "--directory", "outbox", "--signing-key", key,
                           "--quiet"], capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300,
                          check=False)
    assert sent.returncode == 0 and sent.stderr == "", sent.stderr
    assert sent.stdout.startswith("wrote 2 files to outbox")
    verified = subprocess.run(["petra", "bundle", "verify", "pip-1.0.0.tar.zst", "--public-key", pub],
                              capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300, check=False)
    assert verified.returncode == 0 and verified.stdout.startswith("verified: pip-1.0.0.tar.zst is bundle pip 1.0.0")
