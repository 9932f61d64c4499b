# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.adapters.diode import (
    DIODE_ARGUMENT_SPEC,
    DIODE_MUTUALLY_EXCLUSIVE,
    DIODE_REQUIRED_IF,
    run_diode,
)
from ansible_collections.petra.core.plugins.plugin_utils.controller_action import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = DIODE_ARGUMENT_SPEC
    MUTUALLY_EXCLUSIVE = DIODE_MUTUALLY_EXCLUSIVE
    REQUIRED_IF = DIODE_REQUIRED_IF
    CONTROLLER_FILE_ARGS = ("src", "signature", "signing_key", "public_key")

    def run_on_controller(self, params, task_vars, check_mode):
        return run_diode(params, check_mode)
