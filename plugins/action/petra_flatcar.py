# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.adapters import flatcar
from ansible_collections.petra.core.plugins.module_utils.options.kube import KUBE_CONTROLLER_FILES
from ansible_collections.petra.core.plugins.plugin_utils.controller_action import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = flatcar.ARGUMENT_SPEC
    REQUIRED_IF = flatcar.REQUIRED_IF
    CONTROLLER_FILE_ARGS = ("binary", "image_file", "image_signature") + KUBE_CONTROLLER_FILES

    def run_on_controller(self, params, task_vars, check_mode):
        return flatcar.run(params, check_mode)
