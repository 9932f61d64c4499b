# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/petra.core.petra) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - petra.core.petra
  action:
    description: Runs on the Ansible controller through an action plugin, so bundle bytes never pass through AnsiballZ.
    support: full
  async:
    description: Not supported; bundles are handled on the controller.
    support: none
  platform:
    description: The controller platform.
    support: full
    platforms: posix
"""

    CHECK_MODE = r"""
options: {}
attributes:
  check_mode:
    description: Reports what would change without writing anything.
    support: full
  diff_mode:
    description: Not supported.
    support: none
"""

    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    description: The module never changes anything; it runs the same in check mode.
    support: full
  diff_mode:
    description: Not supported.
    support: none
"""
