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

from ansible.plugins.action import ActionBase

from ansible_collections.petra.core.plugins.module_utils.adapters.invoke import checked_run, validator
from ansible_collections.petra.core.plugins.module_utils.progress import progress_lines


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
            raise TypeError("%s names no ADAPTER and does not override run_on_controller" % type(self))
        extra = {"environ": self._task_environ()} if getattr(self.ADAPTER, "TAKES_ENVIRON", False) else {}
        if not getattr(self.ADAPTER, "REPORTS_PROGRESS", False) or self._display.verbosity < 1:
            return self.ADAPTER.run(params, check_mode, playbook_dir=task_vars.get("playbook_dir"), **extra)
        # With -v, long work says how far it is every few seconds (the display reaches the controller's output
        # from the worker process, and AWX job events).
        prefix = "petra.core.%s: " % self._task.action.split(".")[-1]
        with progress_lines(lambda line: self._display.v(prefix + line)) as progress:
            return self.ADAPTER.run(params, check_mode, playbook_dir=task_vars.get("playbook_dir"), progress=progress,
                                    **extra)

    def _task_environ(self):
        """This process's environment with the task's ``environment:`` over it. Ansible applies ``environment:`` only
        to the modules it executes; this work runs in-process, so the keyword must be read here (templated and merged
        from play, block and task as ansible-core does for a module)."""
        stated = {}
        self._compute_environment_string(stated)
        return dict(os.environ, **{str(key): str(value) for key, value in stated.items()})

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
        return validator(cls.ARGUMENT_SPEC, cls.MUTUALLY_EXCLUSIVE, cls.REQUIRED_ONE_OF, cls.REQUIRED_IF,
                         cls.REQUIRED_TOGETHER)

    @classmethod
    def checked_run(cls, args, work):
        """The task result of ``work(params)`` for the task's ``args``, as AnsibleModule would return it
        (adapters/invoke.py: the same path as the petra command's)."""
        return checked_run(cls.ARGUMENT_SPEC, cls.validator(), args, work)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        result.update(self.checked_run(self._task_args(), lambda params: self.run_on_controller(
            self._resolve_files(params), task_vars, bool(self._task.check_mode))))
        return result
