# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The one way every petra.core module runs when executed as a module rather than through its action plugin."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.petra.core.plugins.module_utils.errors import failure_result
from ansible_collections.petra.core.plugins.module_utils.adapters.no_log import secret_values


def run_module(adapter):
    """Validate arguments with the adapter's spec, call ``adapter.run(params, check_mode)``, and report its result or
    its failure."""
    module = AnsibleModule(argument_spec=adapter.ARGUMENT_SPEC, supports_check_mode=True,
                           mutually_exclusive=list(adapter.MUTUALLY_EXCLUSIVE) or None,
                           required_if=list(adapter.REQUIRED_IF) or None)
    # AnsibleModule masks what its validator collected; add the converted values the code may echo.
    module.no_log_values.update(secret_values(adapter.ARGUMENT_SPEC, module.validation_result))
    try:
        result = adapter.run(module.params, module.check_mode)
    except Exception as exc:  # any failure goes through fail_json, which masks secrets in msg and traceback
        module.fail_json(**failure_result(exc))
    module.exit_json(**result)
