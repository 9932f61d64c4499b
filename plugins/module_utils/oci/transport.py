# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The HTTP layer of the distribution API for one registry host: auth, bounded waits, retries, error answers.

Every request has a connect and a read timeout; basic credentials or a bearer token are sent after the registry's
401 challenge names them; transient failures (connection resets, 429, 5xx) are retried a bounded number of times
with backoff; an error answer becomes an OCIError that says what is missing or refused and what to check. Reading
(registry.py) and pushing (writer.py) both go through :meth:`RegistryTransport.request`.
"""

from __future__ import annotations

import re
import ssl
import time
import urllib.parse

try:
    import requests
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
    # A streamed body that breaks off mid-way: the reader resumes it with a Range request.
    STREAM_BROKE = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ReadTimeout)
except ImportError as _exc:  # pragma: no cover - reported at run time by the caller
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = _exc
    STREAM_BROKE = ()

from ansible_collections.petra.core.plugins.module_utils.oci.errors import (
    AuthenticationError,
    RegistryError,
    RegistryUnreachable,
    UploadSessionLost,
)

USER_AGENT = "petra.core"
_RETRY_STATUS = frozenset((429, 500, 502, 503, 504))
_CHALLENGE_PARAM_RE = re.compile(r'(\w+)="([^"]*)"')
_STATE_RE = re.compile(r"([?&])_state=[^&]*&?")


def parse_challenge(header):
    """(scheme, params) of a ``WWW-Authenticate`` header."""
    if not header:
        return None, {}
    scheme, _sep, rest = header.partition(" ")
    return scheme.strip().lower(), dict(_CHALLENGE_PARAM_RE.findall(rest))


def _connection_broke(exc):
    """Whether a TLS error is the connection ending mid-way (reset, EOF), not a certificate or protocol problem."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError, ConnectionError)):
            return True
        # requests and urllib3 wrap the ssl error in args, .reason (MaxRetryError) or the exception chain.
        nested = [arg for arg in (getattr(exc, "reason", None),) + tuple(getattr(exc, "args", ()))
                  + (exc.__cause__, exc.__context__) if isinstance(arg, BaseException)]
        exc = nested[0] if nested else None
    return False


def _shown(url):
    """A URL for messages, without the long state token of upload sessions."""
    return _STATE_RE.sub(r"\1", url).rstrip("?&")


def _reason(exc):
    """Why a request failed, without the URL (and its query) that requests repeats in its message."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return str(reason or exc)


class RegistryTransport:
    """Sends requests to one registry host with its credentials, TLS trust, timeouts and retries.

    ``credentials`` is an :class:`auth.Credentials`; ``insecure`` switches to plain HTTP (never a
    default); ``ca_file`` adds a CA bundle for TLS verification.
    """

    def __init__(self, host, credentials=None, ca_file=None, insecure=False,
                 connect_timeout=10.0, read_timeout=60.0, retries=4, backoff=0.5):
        if not HAS_REQUESTS:
            raise RegistryError("the Python library 'requests' is required to talk to registries",
                                hint="Install the collection's requirements.txt on the controller")
        self.host = host
        self.scheme = "http" if insecure else "https"
        self.credentials = credentials
        self.timeout = (connect_timeout, read_timeout)
        self.retries = retries
        self.backoff = backoff
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        # Passed on every request: a session-level value loses to REQUESTS_CA_BUNDLE in requests.
        self.verify = ca_file if ca_file else True
        self._tokens = {}
        self._basic = None

    def url(self, path):
        return "%s://%s/v2/%s" % (self.scheme, self.host, path.lstrip("/"))

    def _credentials(self, repository):
        if self.credentials is None:
            return None
        return self.credentials.for_registry(self.host, repository)

    def _fetch_token(self, params, scope, repository):
        realm = params.get("realm")
        if not realm:
            raise AuthenticationError("registry %s asked for a bearer token without naming a realm" % self.host)
        query = {}
        if params.get("service"):
            query["service"] = params["service"]
        if scope:
            query["scope"] = scope
        creds = self._credentials(repository)
        try:
            response = self.session.get(realm, params=query, auth=creds, timeout=self.timeout, verify=self.verify)
        except requests.RequestException as exc:
            raise RegistryError("cannot reach the token service %s of registry %s: %s" % (realm, self.host, exc),
                                hint="Check the network path and TLS trust (ca_file) to the token service")
        if response.status_code in (401, 403):
            raise AuthenticationError(
                "the token service of %s refused the credentials for %s (HTTP %d)" % (self.host, scope, response.status_code),
                hint="Check registry_username/registry_password or the auth file entry for %s" % self.host)
        if response.status_code != 200:
            raise RegistryError("the token service of %s answered HTTP %d" % (self.host, response.status_code))
        try:
            body = response.json()
        except ValueError:
            raise RegistryError("the token service of %s did not answer with JSON" % self.host)
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError("the token service of %s answered without a token" % self.host)
        return token

    def _authorize(self, response, scope, repository):
        """Prepare credentials after a 401; returns False when there is nothing new to try."""
        scheme, params = parse_challenge(response.headers.get("WWW-Authenticate"))
        if scheme == "bearer":
            self._tokens[scope] = self._fetch_token(params, params.get("scope") or scope, repository)
            return True
        if scheme == "basic":
            creds = self._credentials(repository)
            if not creds or self._basic == creds:
                return False
            self._basic = creds
            return True
        return False

    def request(self, method, path, repository, scope_actions="pull", headers=None, stream=False,
                ok=(200,), allow_missing=False, retry=True, **kwargs):
        """Send a request with auth, bounded retries and timeouts; returns the response.

        With ``allow_missing`` a 404 is returned instead of raised. ``retry=False`` leaves connection
        failures to the caller (uploads resume from what the registry confirms, not by resending blindly).
        """
        scope = "repository:%s:%s" % (repository, scope_actions) if repository else "registry:catalog:*"
        url = path if path.startswith("http") else self.url(path)
        attempt = 0
        authorized_once = False
        while True:
            send_headers = dict(headers or {})
            token = self._tokens.get(scope)
            if token:
                send_headers["Authorization"] = "Bearer " + token
            auth = self._basic if not token else None
            try:
                response = self.session.request(method, url, headers=send_headers, auth=auth, stream=stream,
                                                timeout=self.timeout, verify=self.verify, **kwargs)
            except requests.RequestException as exc:
                if isinstance(exc, requests.exceptions.SSLError) and not _connection_broke(exc):
                    raise RegistryError(
                        "TLS with registry %s failed (%s %s): %s" % (self.host, method, _shown(url), _reason(exc)),
                        hint="Give the registry's CA certificate in ca_file; use insecure_registries only for a "
                             "registry that serves plain HTTP")
                if retry and attempt < self.retries:
                    attempt += 1
                    time.sleep(self.backoff * (2 ** (attempt - 1)))
                    continue
                raise RegistryUnreachable(
                    "cannot reach registry %s (%s %s): %s" % (self.host, method, _shown(url), _reason(exc)),
                    hint="Check that the registry is up, that its name resolves, the TLS trust (ca_file), "
                         "and whether it serves plain HTTP (insecure_registries)")
            if response.status_code == 401 and not authorized_once:
                authorized_once = True
                if self._authorize(response, scope, repository):
                    response.close()
                    continue
            if response.status_code in _RETRY_STATUS and retry and attempt < self.retries:
                attempt += 1
                retry_after = response.headers.get("Retry-After", "")
                response.close()
                delay = float(retry_after) if retry_after.isdigit() else self.backoff * (2 ** (attempt - 1))
                time.sleep(min(delay, 30.0))
                continue
            if response.status_code in ok or (allow_missing and response.status_code == 404):
                return response
            self._raise_for(response, method, url, repository)

    def _raise_for(self, response, method, url, repository):
        detail = ""
        try:
            errors = response.json().get("errors") or []
            detail = "; ".join("%s: %s" % (e.get("code"), e.get("message")) for e in errors)
        except ValueError:
            detail = (response.text or "")[:200]
        finally:
            response.close()
        if response.status_code in (401, 403):
            raise AuthenticationError(
                "registry %s refused access to %s (HTTP %d%s)" % (
                    self.host, repository or "the catalog", response.status_code, ", " + detail if detail else ""),
                hint="Give registry_username/registry_password, or log in with 'skopeo login %s'" % self.host)
        if response.status_code == 404:
            if urllib.parse.urlsplit(url).path.partition("/blobs/uploads/")[2]:
                # An upload session's own URL: distribution forgets a session whose stored size no longer matches
                # its state token (after a broken request) or that it completed. Not a missing repository, and a
                # new session fixes it.
                raise UploadSessionLost("registry %s no longer has the upload session for %s (%s)" % (
                    self.host, repository, detail or "not found"), hint="Send the blob again in a new session")
            missing, hint = self._missing(url, repository, detail)
            raise RegistryError("registry %s has no %s (%s %s: %s)" % (
                self.host, missing, method, url, detail or "not found"), hint=hint)
        # A gateway or overload status after the retries means the registry is out of reach for now.
        error = RegistryUnreachable if response.status_code in _RETRY_STATUS else RegistryError
        raise error("registry %s answered HTTP %d to %s %s%s" % (
            self.host, response.status_code, method, _shown(url), ": " + detail if detail else ""))

    def _missing(self, url, repository, detail):
        """(what a 404 says is missing, what to check): a repository, a tag, a manifest digest or a blob."""
        kind, _sep, reference = urllib.parse.urlsplit(url).path.partition("/v2/%s/" % repository)[2].partition("/")
        if kind == "manifests" and "NAME_UNKNOWN" not in detail:
            # distribution answers MANIFEST_UNKNOWN for a repository it does not have, too: its tag list tells.
            try:
                listing = self.request("GET", "%s/tags/list" % repository, repository, allow_missing=True)
                listing.close()
                known = listing.status_code == 200
            except RegistryError:
                known = None
            if known is not False:
                is_digest = ":" in reference
                missing = "%s %s in repository %s" % ("manifest" if is_digest else "tag", reference, repository)
                if known is None:
                    missing += " (or no such repository)"
                return missing, ("Check the digest: it must be one the repository holds" if is_digest else
                                 "Check the tag; 'skopeo list-tags docker://%s/%s' lists those it has" % (
                                     self.host, repository))
        elif kind == "blobs" and "BLOB_UNKNOWN" in detail:
            return "blob %s in repository %s" % (reference, repository), \
                "The repository lacks a blob its manifest names; push the image again"
        return "repository %s" % repository, "Check the repository name in the image reference"
