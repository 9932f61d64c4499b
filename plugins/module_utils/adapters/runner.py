# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The one way every petra.core module runs when executed as a module rather than through its action plugin."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.petra.core.plugins.module_utils.errors import PetraError, failure_result


def run_module(run, argument_spec, **constraints):
    """Validate arguments, call ``run(params, check_mode)``, and report its result or its PetraError."""
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **constraints)
    try:
        result = run(module.params, module.check_mode)
    except PetraError as exc:
        module.fail_json(**failure_result(exc))
    module.exit_json(**result)
