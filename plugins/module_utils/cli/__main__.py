# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""``python -m ansible_collections.petra.core.plugins.module_utils.cli``: the petra command without its script."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
