# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""One way to run an adapter on the controller, for the action plugins and the ``petra`` command alike: arguments
validated with ansible-core's ArgumentSpecValidator against the adapter's spec and constraints, the work done, and
every value of a no_log option masked in all it returns, on failure too.
"""

from __future__ import annotations

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values

from ansible_collections.petra.core.plugins.module_utils.errors import failure_result
from ansible_collections.petra.core.plugins.module_utils.adapters.no_log import secret_values


def plain(value):
    """Task arguments as plain Python values: ansible-core may hand over tagged subclasses of str, dict and list,
    which serialisers such as PyYAML's safe_dump refuse."""
    if isinstance(value, dict):
        return {plain(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return str.__str__(value)  # an exact str for a subclass, the object itself for a str
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value


def validator(argument_spec, mutually_exclusive=(), required_one_of=(), required_if=(), required_together=()):
    return ArgumentSpecValidator(
        argument_spec,
        mutually_exclusive=list(mutually_exclusive) or None,
        required_one_of=list(required_one_of) or None,
        required_if=list(required_if) or None,
        required_together=list(required_together) or None,
    )


def adapter_validator(adapter):
    """The validator of an adapter's module: its spec and its constraint lists."""
    return validator(adapter.ARGUMENT_SPEC, adapter.MUTUALLY_EXCLUSIVE, required_if=adapter.REQUIRED_IF)


def checked_run(argument_spec, spec_validator, args, work):
    """The result of ``work(params)`` for ``args``, as AnsibleModule would return it: arguments validated, and every
    value of a no_log option, at any depth, masked in all of it (messages, warnings, details, tracebacks), on
    failure too, since errors from Petra, libraries and tools may echo their input."""
    validation = spec_validator.validate(args)
    secrets = secret_values(argument_spec, validation)
    if validation.error_messages:
        outcome = {"failed": True, "msg": "Invalid arguments: %s" % "; ".join(validation.error_messages)}
    else:
        try:
            outcome = work(plain(dict(validation.validated_parameters)))
        except Exception as exc:  # reported here, masked, rather than raised with its input in it
            outcome = dict(failure_result(exc), failed=True)
    return remove_values(outcome, secrets)
