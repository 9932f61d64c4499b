# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Errors of the OCI package: references, credentials and registry conversations."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.errors import PetraError


class OCIError(PetraError):
    """Anything that went wrong talking OCI."""


class InvalidReference(OCIError):
    """An image reference that does not follow the reference grammar."""


class RegistryError(OCIError):
    """A registry refused a request, or answered with something that is not what was asked for."""


class AuthenticationError(RegistryError):
    """The registry refused the credentials, or none were found for it."""


class DigestMismatch(RegistryError):
    """Content received does not hash to the digest it was asked for by."""


class RegistryUnreachable(RegistryError):
    """The registry did not answer: the connection was refused, reset or timed out, or a gateway answered 5xx/429."""


class UploadInterrupted(RegistryError):
    """An upload broke off before the registry stored the blob; sending it again completes it."""


class UploadSessionLost(UploadInterrupted):
    """The registry no longer knows an upload session (BLOB_UPLOAD_UNKNOWN/INVALID): a new one must be opened."""
