# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.adapters.verify import VERIFY_ARGUMENT_SPEC, run_verify
from ansible_collections.petra.core.plugins.plugin_utils.controller_action import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = VERIFY_ARGUMENT_SPEC
    CONTROLLER_FILE_ARGS = ("path", "public_keys", "signature", "cosignatures", "ca_file")

    def run_on_controller(self, params, task_vars, check_mode):
        return run_verify(params)
