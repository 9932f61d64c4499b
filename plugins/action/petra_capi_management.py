# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.adapters import capi_management as adapter
from ansible_collections.petra.core.plugins.plugin_utils.controller_action import ControllerAction


class ActionModule(ControllerAction):
    ADAPTER = adapter
