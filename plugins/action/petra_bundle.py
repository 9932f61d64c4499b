# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.bundle.options import (
    BUNDLE_ARGUMENT_SPEC,
    BUNDLE_MUTUALLY_EXCLUSIVE,
    BUNDLE_REQUIRED_IF,
)
from ansible_collections.petra.core.plugins.module_utils.bundle.tasks import run_bundle
from ansible_collections.petra.core.plugins.module_utils.options.kube import KUBE_CONTROLLER_FILES
from ansible_collections.petra.core.plugins.plugin_utils.controller_action import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = BUNDLE_ARGUMENT_SPEC
    MUTUALLY_EXCLUSIVE = BUNDLE_MUTUALLY_EXCLUSIVE
    REQUIRED_IF = BUNDLE_REQUIRED_IF
    CONTROLLER_FILE_ARGS = ("spec", "signing_key", "ca_file", "src", "public_keys", "signature",
                            "cosignatures") + KUBE_CONTROLLER_FILES

    def run_on_controller(self, params, task_vars, check_mode):
        return run_bundle(params, check_mode, default_base_dir=task_vars.get("playbook_dir"))
