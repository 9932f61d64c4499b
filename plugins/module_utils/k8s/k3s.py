# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Where k3s reads its configuration on a node: the one definition of paths that Ignition writes and the load
step's ``registries.yaml`` refers to, so the two always agree."""

from __future__ import annotations

CONFIG_DIR = "/etc/rancher/k3s"
# The mirror configuration k3s reads at start (containerd's hosts.toml comes from it).
REGISTRIES_PATH = CONFIG_DIR + "/registries.yaml"
# The CA of the air-gap registry, named by registries.yaml's ``configs.<host>.tls.ca_file``.
REGISTRY_CA_PATH = CONFIG_DIR + "/petra-registry-ca.pem"
