# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.flatcar.options import (
    FLATCAR_ARGUMENT_SPEC,
    FLATCAR_REQUIRED_IF,
    run_flatcar,
)
from ansible_collections.petra.core.plugins.plugin_utils.controller_action import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = FLATCAR_ARGUMENT_SPEC
    REQUIRED_IF = FLATCAR_REQUIRED_IF
    CONTROLLER_FILE_ARGS = ("binary", "kubeconfig", "image_file", "image_signature")

    def run_on_controller(self, params, task_vars, check_mode):
        return run_flatcar(params, check_mode)
