# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Registry credentials: explicit ones, or the auth files podman, skopeo and docker write."""

from __future__ import annotations

import base64
import json
import os

from ansible_collections.petra.core.plugins.module_utils.oci.errors import AuthenticationError
from ansible_collections.petra.core.plugins.module_utils.oci.reference import DEFAULT_REGISTRY


def auth_file_candidates(environ=None):
    """The auth files in the order containers-auth.json(5) reads them."""
    environ = os.environ if environ is None else environ
    paths = []
    if environ.get("REGISTRY_AUTH_FILE"):
        paths.append(environ["REGISTRY_AUTH_FILE"])
    if environ.get("XDG_RUNTIME_DIR"):
        paths.append(os.path.join(environ["XDG_RUNTIME_DIR"], "containers", "auth.json"))
    home = environ.get("HOME") or os.path.expanduser("~")
    paths.append(os.path.join(home, ".docker", "config.json"))
    return paths


def _keys_for(registry):
    keys = [registry, "https://" + registry, "http://" + registry]
    if registry == DEFAULT_REGISTRY:
        keys += ["https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io"]
    return keys


def _decode_entry(path, key, entry):
    if entry.get("username") and entry.get("password"):
        return entry["username"], entry["password"]
    encoded = entry.get("auth")
    if not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise AuthenticationError(
            "the auth entry for %s in %s is not valid base64 of user:password" % (key, path),
            hint="Log in again with 'skopeo login' or 'docker login', or pass registry_username/registry_password")
    if ":" not in decoded:
        raise AuthenticationError(
            "the auth entry for %s in %s does not hold user:password" % (key, path),
            hint="Log in again with 'skopeo login' or 'docker login'")
    user, password = decoded.split(":", 1)
    return user, password


def credentials_from_auth_files(registry, repository=None, environ=None):
    """(user, password) for the registry from the first auth file that names it, else None.

    containers-auth.json allows keys narrowed to a repository (``host/ns/repo``); the longest match wins.
    """
    for path in auth_file_candidates(environ):
        if not os.path.isfile(path):
            continue
        try:
            with open(path, "rb") as handle:
                document = json.load(handle)
        except (OSError, ValueError) as exc:
            raise AuthenticationError(
                "cannot read the registry auth file %s: %s" % (path, exc),
                hint="Fix or remove the file, or point REGISTRY_AUTH_FILE at a valid one")
        auths = document.get("auths") or {}
        keys = []
        if repository:
            parts = repository.split("/")
            for cut in range(len(parts), 0, -1):
                keys.append("%s/%s" % (registry, "/".join(parts[:cut])))
        keys += _keys_for(registry)
        for key in keys:
            if key in auths and isinstance(auths[key], dict):
                found = _decode_entry(path, key, auths[key])
                if found:
                    return found
    return None


class Credentials:
    """Resolves which user/password to send to a registry; explicit values win over auth files."""

    def __init__(self, username=None, password=None, environ=None):
        if bool(username) != bool(password):
            raise AuthenticationError(
                "registry_username and registry_password must be given together",
                hint="Set both, or neither to use the auth files")
        self._explicit = (username, password) if username else None
        self._environ = environ

    def for_registry(self, registry, repository=None):
        if self._explicit:
            return self._explicit
        return credentials_from_auth_files(registry, repository, self._environ)
