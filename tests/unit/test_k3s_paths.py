"""The node paths Ignition writes and the load step refers to are one definition (k8s/k3s.py)."""

from __future__ import annotations

import yaml

from ansible_collections.petra.core.plugins.module_utils.adapters import bundle as bundle_adapter
from ansible_collections.petra.core.plugins.module_utils.k8s import k3s
from ansible_collections.petra.core.plugins.modules import petra_bundle


def test_the_load_default_is_the_path_ignition_writes():
    assert bundle_adapter.ARGUMENT_SPEC["registries_ca_path"]["default"] == k3s.REGISTRY_CA_PATH


def test_the_documented_default_is_the_constant():
    documented = yaml.safe_load(petra_bundle.DOCUMENTATION)["options"]["registries_ca_path"]["default"]
    assert documented == k3s.REGISTRY_CA_PATH
