# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This plugin_utils file is private to the petra.core collection: not a public API.
"""The base of Petra's controller-side action plugins.

Bundles are tens of gigabytes: their bytes must never travel through AnsiballZ. These action plugins
validate the task's arguments with the same argument spec as the documented module, then call the
module_utils code directly on the controller, like community.crypto's ``*_pipe`` actions.
"""

from __future__ import annotations

import os

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase

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


class ControllerAction(ActionBase):
    """Subclasses name their module's adapter (``ADAPTER``, a module of ``module_utils/adapters``), whose argument
    spec, constraint lists, controller-file options and ``run`` they use; or set those attributes themselves and
    override ``run_on_controller``."""

    TRANSFERS_FILES = False
    _VALID_ARGS = None
    ADAPTER = None
    ARGUMENT_SPEC = {}
    MUTUALLY_EXCLUSIVE = ()
    REQUIRED_ONE_OF = ()
    REQUIRED_IF = ()
    REQUIRED_TOGETHER = ()
    # Arguments naming controller files that a playbook may give relative to its files/ directory.
    CONTROLLER_FILE_ARGS = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        adapter = cls.__dict__.get("ADAPTER")
        if adapter is not None:
            cls.ARGUMENT_SPEC = adapter.ARGUMENT_SPEC
            cls.MUTUALLY_EXCLUSIVE = adapter.MUTUALLY_EXCLUSIVE
            cls.REQUIRED_IF = adapter.REQUIRED_IF
            cls.CONTROLLER_FILE_ARGS = adapter.CONTROLLER_FILES

    def run_on_controller(self, params, task_vars, check_mode):
        """Do the work; return the result dict (with ``changed``), raise PetraError on failure."""
        if self.ADAPTER is None:
            raise NotImplementedError("%s names no ADAPTER and does not override run_on_controller" % type(self))
        return self.ADAPTER.run(params, check_mode, playbook_dir=task_vars.get("playbook_dir"))

    def _find_controller_file(self, value):
        if not value or os.path.isabs(value) or os.path.exists(value) or "-----BEGIN" in value \
                or "://" in value:
            return value
        try:
            return self._find_needle("files", value)
        except Exception:  # AnsibleError when not found: keep the value so the error names it as given
            return value

    def _resolve_files(self, params):
        for name in self.CONTROLLER_FILE_ARGS:
            value = params.get(name)
            if isinstance(value, list):
                params[name] = [self._find_controller_file(item) for item in value]
            elif isinstance(value, str):
                params[name] = self._find_controller_file(value)
        return params

    def _group_default_keys(self):
        """Option names that reach this task through ``module_defaults`` groups (not through its own name)."""
        play = getattr(getattr(self._task, "_parent", None), "_play", None)
        action_groups = getattr(play, "_action_groups", None) or {}
        groups = action_groups.get(self._task.resolved_action, []) if hasattr(self._task, "resolved_action") else []
        keys = set()
        for defaults in self._task.module_defaults or []:
            for name, values in defaults.items():
                if name.startswith("group/") and name.split("group/")[-1] in groups and isinstance(values, dict):
                    keys.update(values)
        return keys

    def _known_names(self):
        names = set(self.ARGUMENT_SPEC)
        for spec in self.ARGUMENT_SPEC.values():
            names.update(spec.get("aliases") or ())
        return names

    def _task_args(self):
        # A group's defaults go to every module in it; options this module does not take are meant for the others.
        foreign = self._group_default_keys() - self._known_names()
        if foreign:
            self._display.vvv("petra.core: ignoring group defaults this module does not take: %s" % ", ".join(sorted(foreign)))
        return {key: value for key, value in self._task.args.items() if key not in foreign}

    @classmethod
    def validator(cls):
        return ArgumentSpecValidator(
            cls.ARGUMENT_SPEC,
            mutually_exclusive=list(cls.MUTUALLY_EXCLUSIVE) or None,
            required_one_of=list(cls.REQUIRED_ONE_OF) or None,
            required_if=list(cls.REQUIRED_IF) or None,
            required_together=list(cls.REQUIRED_TOGETHER) or None,
        )

    @classmethod
    def checked_run(cls, args, work):
        """The task result of ``work(params)`` for the task's ``args``, as AnsibleModule would return it: arguments
        validated, and every value of a no_log option, at any depth, masked in all of it (messages, warnings,
        details, tracebacks), on failure too, since errors from Petra, libraries and tools may echo their input."""
        validation = cls.validator().validate(args)
        secrets = secret_values(cls.ARGUMENT_SPEC, validation)
        if validation.error_messages:
            outcome = {"failed": True, "msg": "Invalid arguments: %s" % "; ".join(validation.error_messages)}
        else:
            try:
                outcome = work(plain(dict(validation.validated_parameters)))
            except Exception as exc:  # reported here, masked, rather than raised to Ansible with its input in it
                outcome = dict(failure_result(exc), failed=True)
        return remove_values(outcome, secrets)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        result.update(self.checked_run(self._task_args(), lambda params: self.run_on_controller(
            self._resolve_files(params), task_vars, bool(self._task.check_mode))))
        return result
