# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Errors of the imagerefs package: a chart or a manifest could not be read for its image references."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.errors import PetraError


class ImageRefsError(PetraError):
    """A chart or a manifest set could not be read to find the images it references."""
