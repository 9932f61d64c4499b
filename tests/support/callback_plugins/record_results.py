# Test-only callback: records every task result as JSON in $PETRA_TEST_RESULTS (ansible.posix's json callback
# is not in ansible-core, and tests must not depend on other collections).
from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: record_results
type: aggregate
short_description: Record task results for Petra's tests
description: Writes a JSON object mapping task names to their results into the file named by PETRA_TEST_RESULTS.
requirements:
  - enabled in ANSIBLE_CALLBACKS_ENABLED
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "record_results"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.results = {}

    def _record(self, result, **extra):
        data = dict(result._result)
        data.update(extra)
        self.results[result._task.get_name()] = data

    def v2_runner_on_ok(self, result):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, failed=True)

    def v2_runner_on_skipped(self, result):
        self._record(result, skipped=True)

    def v2_playbook_on_stats(self, stats):
        with open(os.environ["PETRA_TEST_RESULTS"], "w") as handle:
            json.dump(self.results, handle, default=str)
