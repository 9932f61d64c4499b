# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Which task arguments are secrets: Ansible's argument validator decides, for both ways a Petra module runs.

An adapter over ansible.module_utils: the validator already walks every ``no_log`` option at any depth (suboptions of
dicts, lists of dicts, the values of a no_log dict, defaults and fallbacks), exactly as AnsibleModule relies on; Petra
never walks the argument spec itself.
"""

from __future__ import annotations

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator


def secret_values(argument_spec, validation):
    """Every value given to a no_log option of ``argument_spec``, from the ``ValidationResult`` of its arguments.

    The validator collects values as the task gave them (``env: "TOKEN=x"``, before it becomes a dict); a second pass
    over the converted parameters adds them as the code receives and may echo them (``x``). ``_no_log_values`` is
    the validator's own record, the one AnsibleModule reads.
    """
    values = set(validation._no_log_values)
    if not validation.error_messages:
        values.update(ArgumentSpecValidator(argument_spec).validate(validation.validated_parameters)._no_log_values)
    # Ansible may hand over tagged str subclasses; plain strings compare and replace the same everywhere.
    return {str.__str__(value) if isinstance(value, str) else str(value) for value in values}
