"""Run a petra.core module the way Ansible runs one (an arguments file, JSON on stdout), in a process of its own: its
own working directory and environment (TZ, locale), limited to some CPUs (taskset) and, where the kernel lets us, under
another host name (a UTS namespace). Two runs then differ in everything a build must not depend on."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys


@functools.lru_cache(maxsize=1)
def can_rename_host():
    """True when this process may give a child its own host name (root, or unprivileged user namespaces)."""
    try:
        return subprocess.run(["unshare", "--uts", "--map-root-user", "true"], capture_output=True, timeout=10,
                              check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_module(name, args, cwd, env=None, cpus=None, hostname=None, timeout=300):
    """The module's result; ``env`` entries set to None are removed from the environment. Fails the test, with the
    module's output, when the module fails."""
    args_file = os.path.join(cwd, ".%s-args.json" % name)
    with open(args_file, "w") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    command = [sys.executable, "-m", "ansible_collections.petra.core.plugins.modules." + name, args_file]
    if cpus is not None:
        command = ["taskset", "-c", cpus] + command
    if hostname is not None and can_rename_host():
        command = ["unshare", "--uts", "--map-root-user", "sh", "-c", 'hostname "$0" && exec "$@"', hostname] + command
    environment = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    try:
        process = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout,
                                 check=False)
    finally:
        os.unlink(args_file)
    try:
        result = json.loads(process.stdout)
    except ValueError:
        raise AssertionError("%s printed no result (exit %d):\n%s\n%s" % (name, process.returncode, process.stdout,
                                                                          process.stderr))
    if process.returncode != 0 or result.get("failed"):
        raise AssertionError("%s failed: %s\n%s" % (name, result.get("msg"), process.stderr))
    return result
