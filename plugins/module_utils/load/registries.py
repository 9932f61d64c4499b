# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The k3s ``registries.yaml`` that sends every source registry of a bundle to the target registry.

Workloads keep their original image references (``cgr.dev/chainguard/nginx:1.27``); containerd asks the
mirror, and the rewrite rule maps the path to where the load put it (``<prefix>/cgr.dev/chainguard/nginx``).
"""

from __future__ import annotations

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - reported at run time
    HAS_YAML = False

from ansible_collections.petra.core.plugins.module_utils.atomic import write_atomically
from ansible_collections.petra.core.plugins.module_utils.load.errors import LoadError
from ansible_collections.petra.core.plugins.module_utils.load.targets import host_component


def source_hosts(metadata):
    hosts = {image["name"].split("/", 1)[0] for image in metadata["images"]}
    for chart in metadata["charts"]:
        source = chart.get("source") or ""
        if source.startswith("oci://"):
            hosts.add(source[len("oci://"):].split("/", 1)[0])
    return sorted(hosts)


def k3s_registries(metadata, target, insecure=False, ca_path=None, username=None, password=None):
    """The registries.yaml document (a dict) for a loaded bundle."""
    scheme = "http" if insecure else "https"
    mirrors = {}
    for host in source_hosts(metadata):
        mirrors[host] = {
            "endpoint": ["%s://%s" % (scheme, target.host)],
            "rewrite": {"^(.*)$": target.repository(host_component(host), "$1")},
        }
    config = {}
    if username:
        config["auth"] = {"username": username, "password": password}
    if ca_path and not insecure:
        config["tls"] = {"ca_file": ca_path}
    document = {"mirrors": mirrors}
    if config:
        document["configs"] = {target.host: config}
    return document


def write_registries(document, dest, check_mode=False):
    """Write registries.yaml atomically with mode 0600 (it may hold credentials); True when it changed."""
    if not HAS_YAML:
        raise LoadError("the Python library 'PyYAML' is required to write registries.yaml")
    text = yaml.safe_dump(document, sort_keys=True, default_flow_style=False)
    try:
        with open(dest, "r", encoding="utf-8") as handle:
            if handle.read() == text:
                return False
    except OSError:
        pass
    if check_mode:
        return True
    try:
        write_atomically(dest, lambda handle: handle.write(text.encode("utf-8")), mode=0o600)
    except OSError as exc:
        raise LoadError("cannot write %s: %s" % (dest, exc.strerror), hint="Check the directory and its permissions")
    return True
