# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The Kubernetes API options (kubeconfig, kube_context); documented by the doc fragment petra.core.kube.

The kubeconfig is a file on the controller. A relative path is resolved like every other controller file
(``plugin_utils/controller_action.py``: as given, else in the playbook's ``files/``): action plugins list
``KUBE_CONTROLLER_FILES`` in their ``CONTROLLER_FILE_ARGS`` so no module resolves it differently.
"""

from __future__ import annotations

KUBE_ARGUMENT_SPEC = dict(
    kubeconfig=dict(type="path"),
    kube_context=dict(type="str"),
)
KUBE_CONTROLLER_FILES = ("kubeconfig",)
