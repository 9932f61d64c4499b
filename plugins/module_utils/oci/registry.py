# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""A small OCI distribution client: manifests and blobs, basic and bearer-token auth, bounded waits.

Every request has a connect and a read timeout, and transient failures (connection resets, 429, 5xx)
are retried a bounded number of times with backoff; a blob download that breaks off resumes with a
``Range`` request instead of starting over.
"""

from __future__ import annotations

import collections
import hashlib
import json
import re
import ssl
import time
import urllib.parse

try:
    import requests
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - reported at run time by the caller
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = _exc

from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes
from ansible_collections.petra.core.plugins.module_utils.oci.errors import (
    AuthenticationError,
    DigestMismatch,
    RegistryError,
    RegistryUnreachable,
    UploadInterrupted,
    UploadSessionLost,
)

USER_AGENT = "petra.core"
CHUNK_SIZE = 1 << 20
MAX_MANIFEST_BYTES = 4 << 20  # the distribution spec's own limit for manifests
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


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class RegistryClient:
    """Speaks the distribution API to one registry host.

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

    # -- transport -------------------------------------------------------------------------------
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

    # -- reading ---------------------------------------------------------------------------------
    def get_manifest(self, repository, reference, allow_missing=False):
        """(bytes, media type, digest) of a manifest or index, exactly as served.

        When ``reference`` is a digest, the bytes are checked against it. With ``allow_missing``, None when the
        registry has no such tag or digest.
        """
        response = self.request("GET", "%s/manifests/%s" % (repository, reference), repository,
                                headers={"Accept": ", ".join(mediatypes.ACCEPTED_MANIFEST_TYPES)}, stream=True,
                                allow_missing=allow_missing)
        if response.status_code == 404:
            response.close()
            return None
        data = b""
        for chunk in response.iter_content(65536):
            data += chunk
            if len(data) > MAX_MANIFEST_BYTES:
                response.close()
                raise RegistryError("the manifest %s@%s on %s is larger than %d bytes" % (
                    repository, reference, self.host, MAX_MANIFEST_BYTES))
        digest = sha256_digest(data)
        if reference.startswith("sha256:") and digest != reference:
            raise DigestMismatch("registry %s served a manifest for %s@%s that hashes to %s" % (
                self.host, repository, reference, digest), hint="The registry content is corrupt or was tampered with")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            declared = json.loads(data).get("mediaType")
        except ValueError:
            raise RegistryError("the manifest %s:%s on %s is not JSON" % (repository, reference, self.host))
        if declared:
            media_type = declared
        if media_type not in mediatypes.ACCEPTED_MANIFEST_TYPES:
            raise RegistryError(
                "the manifest %s:%s on %s has media type %r, which Petra does not carry" % (
                    repository, reference, self.host, media_type),
                hint="Only OCI and Docker schema 2 manifests and indexes are supported; re-push the image with a current tool")
        return data, media_type, digest

    def referrers(self, repository, digest):
        """The OCI 1.1 referrers index of a manifest as a dict, or None when the registry has no referrers API."""
        response = self.request("GET", "%s/referrers/%s" % (repository, digest), repository,
                                headers={"Accept": mediatypes.OCI_INDEX}, ok=(200, 400, 404, 405, 406))
        try:
            if response.status_code != 200 or \
                    response.headers.get("Content-Type", "").split(";")[0].strip() != mediatypes.OCI_INDEX:
                return None
            if len(response.content) > MAX_MANIFEST_BYTES:
                raise RegistryError("the referrers index of %s@%s on %s is larger than %d bytes" % (
                    repository, digest, self.host, MAX_MANIFEST_BYTES))
            try:
                return json.loads(response.content)
            except ValueError:
                raise RegistryError("the referrers index of %s@%s on %s is not JSON" % (repository, digest, self.host))
        finally:
            response.close()

    def read_blob(self, repository, digest, size, limit):
        """A small blob's bytes (signature payloads, Sigstore bundles), digest-checked; refuses more than limit."""
        if size > limit:
            raise RegistryError("blob %s in %s/%s is %d bytes, more than the %d expected here" % (
                digest, self.host, repository, size, limit))
        return b"".join(self.iter_blob(repository, digest, size))

    def iter_blob(self, repository, digest, size, chunk_size=CHUNK_SIZE, verify=True):
        """Yield a blob's bytes, resuming with ``Range`` after a broken connection; verify digest and size.

        With ``verify=False`` only the size is checked, for callers that hash the bytes themselves.
        """
        hasher = hashlib.sha256() if verify else None
        received = 0
        attempts = 0
        while received < size or size == 0:
            headers = {"Range": "bytes=%d-" % received} if received else {}
            response = self.request("GET", "%s/blobs/%s" % (repository, digest), repository,
                                    headers=headers, stream=True, ok=(200, 206))
            skip = received if (received and response.status_code == 200) else 0
            try:
                for chunk in response.iter_content(chunk_size):
                    if skip:
                        if len(chunk) <= skip:
                            skip -= len(chunk)
                            continue
                        chunk, skip = chunk[skip:], 0
                    received += len(chunk)
                    if received > size:
                        raise DigestMismatch("registry %s sent more than the %d bytes of blob %s in %s" % (
                            self.host, size, digest, repository))
                    if hasher is not None:
                        hasher.update(chunk)
                    yield chunk
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ReadTimeout) as exc:
                attempts += 1
                if attempts > self.retries:
                    raise RegistryError("downloading blob %s from %s/%s broke off at byte %d of %d: %s" % (
                        digest, self.host, repository, received, size, exc),
                        hint="Check the network path to the registry and run again")
                time.sleep(self.backoff * (2 ** (attempts - 1)))
                continue
            finally:
                response.close()
            if size == 0 or received >= size:
                break
            attempts += 1
            if attempts > self.retries:
                break
        if received != size or (hasher is not None and "sha256:" + hasher.hexdigest() != digest):
            raise DigestMismatch(
                "blob %s from %s/%s does not match its descriptor (got %d of %d bytes)" % (
                    digest, self.host, repository, received, size),
                hint="The registry content is corrupt or was tampered with")


class ClientPool:
    """One RegistryClient per registry host, sharing credentials, TLS trust and timeouts."""

    def __init__(self, credentials=None, ca_file=None, insecure_registries=(), connect_timeout=10.0,
                 read_timeout=60.0, retries=4):
        self.credentials = credentials
        self.ca_file = ca_file
        self.insecure_registries = set(insecure_registries or ())
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retries = retries
        self._clients = {}

    def for_host(self, host):
        if host not in self._clients:
            self._clients[host] = self.new_client(host)
        return self._clients[host]

    def new_client(self, host):
        """A client of its own (for a worker thread), with the pool's settings."""
        return RegistryClient(host, credentials=self.credentials, ca_file=self.ca_file,
                              insecure=host in self.insecure_registries, connect_timeout=self.connect_timeout,
                              read_timeout=self.read_timeout, retries=self.retries)


# Sending again resumes: blobs already stored are skipped, and a new upload session replaces a dropped one.
_SEND_AGAIN = "Run again: blobs already stored are skipped and the upload starts over in a new session"


def _absolute(base, location):
    return urllib.parse.urljoin(base, location)


class RegistryWriter:
    """The push side of the distribution API: existence checks, mounts, chunked resumable uploads, manifests."""

    def __init__(self, client, chunk_size=32 << 20, monolithic_limit=8 << 20):
        self.client = client
        self.chunk_size = chunk_size
        self.monolithic_limit = monolithic_limit

    def blob_exists(self, repository, digest):
        response = self.client.request("HEAD", "%s/blobs/%s" % (repository, digest), repository, allow_missing=True)
        response.close()
        return response.status_code == 200

    def manifest_digest(self, repository, reference):
        """The digest the registry holds for a tag or digest, or None."""
        response = self.client.request("HEAD", "%s/manifests/%s" % (repository, reference), repository,
                                       headers={"Accept": ", ".join(mediatypes.ACCEPTED_MANIFEST_TYPES)},
                                       allow_missing=True)
        response.close()
        if response.status_code != 200:
            return None
        return response.headers.get("Docker-Content-Digest")

    def mount(self, repository, digest, from_repository):
        """Cross-repository mount; True when the registry mounted the blob without an upload.

        A mount that cannot get through raises UploadInterrupted, as an upload would: the blob is still to send.
        """
        path = "%s/blobs/uploads/?mount=%s&from=%s" % (repository, digest, urllib.parse.quote(from_repository))
        try:
            response = self.client.request("POST", path, repository, scope_actions="pull,push", ok=(201, 202))
        except RegistryUnreachable as exc:
            raise UploadInterrupted("mounting blob %s into %s/%s from %s broke off: %s" % (
                digest, self.client.host, repository, from_repository, exc.message), hint=_SEND_AGAIN)
        response.close()
        if response.status_code == 201:
            return True
        location = response.headers.get("Location")
        if location:
            # The registry opened an upload session instead; close it rather than leave it to expire.
            self._cancel(repository, _absolute(self.client.url(""), location))
        return False

    def _cancel(self, repository, location):
        """Close an unused upload session; one left open only expires, so failing to close it is no error."""
        try:
            self.client.request("DELETE", location, repository, scope_actions="pull,push", ok=(204, 202, 200),
                                allow_missing=True, retry=False).close()
        except RegistryError:
            pass

    def _start(self, repository):
        response = self.client.request("POST", "%s/blobs/uploads/" % repository, repository, scope_actions="pull,push",
                                       ok=(202,))
        response.close()
        location = response.headers.get("Location")
        if not location:
            raise RegistryError("registry %s opened an upload for %s without a Location" % (self.client.host, repository))
        return _absolute(self.client.url(""), location)

    def _confirmed(self, repository, location):
        """Bytes the registry holds in an upload session (its Range header), to resume from."""
        response = self.client.request("GET", location, repository, scope_actions="pull,push", ok=(204, 200))
        response.close()
        value = response.headers.get("Range", "")
        location = _absolute(location, response.headers.get("Location") or location)
        # distribution reports "0-0" for an empty session as well as for one byte; uploads never stop at one byte.
        if "-" not in value or value == "0-0":
            return 0, location
        return int(value.split("-")[1]) + 1, location

    def _stored(self, repository, digest):
        """Whether the registry holds the blob: a request that broke off may have completed before its answer."""
        try:
            response = self.client.request("HEAD", "%s/blobs/%s" % (repository, digest), repository,
                                           allow_missing=True, retry=False)
        except RegistryError:
            return False
        response.close()
        return response.status_code == 200

    def _pause(self, attempt):
        time.sleep(self.client.backoff * (2 ** (attempt - 1)))

    def upload(self, repository, digest, size, chunks):
        """Upload a blob from an iterator of bytes: one PUT when small, else a streamed PATCH, resuming a broken one."""
        self.upload_many([repository], digest, size, chunks)

    def upload_many(self, repositories, digest, size, chunks):
        """Upload one stream of bytes into several repositories at once (for registries that will not mount).

        A reset, a timeout or a dropped session is retried (in a new session where the bytes are still at hand)
        up to the client's ``retries``; an upload that still breaks off raises UploadInterrupted.
        """
        try:
            if size <= self.monolithic_limit:
                body = b"".join(chunks)
                for repository in repositories:
                    self._put_whole(repository, digest, body)
            elif len(repositories) == 1:
                self._stream(repositories[0], digest, size, chunks)
            else:
                self._chunked(repositories, digest, chunks)
        except RegistryUnreachable as exc:
            raise UploadInterrupted("uploading blob %s to %s broke off: %s" % (digest, self.client.host, exc.message),
                                    hint=_SEND_AGAIN)

    def _put_whole(self, repository, digest, body):
        """A small blob in one PUT. The bytes are at hand, so a broken attempt goes again in a new session: the
        registry drops a session that received part of a request (BLOB_UPLOAD_INVALID on the next one)."""
        attempt = 0
        while True:
            try:
                self._finish(repository, self._start(repository), digest, body)
                return
            except (RegistryUnreachable, UploadInterrupted) as exc:
                attempt += 1
                if attempt > self.client.retries:
                    raise UploadInterrupted("uploading blob %s (%d bytes) to %s/%s broke off %d times; the last: %s" % (
                        digest, len(body), self.client.host, repository, attempt, exc.message), hint=_SEND_AGAIN)
            self._pause(attempt)

    def _finish(self, repository, location, digest, body=b""):
        """Close an upload session with the blob's digest (and its bytes, for a single PUT)."""
        try:
            self.client.request("PUT", location, repository, scope_actions="pull,push", ok=(201,),
                                params={"digest": digest}, data=body,
                                headers={"Content-Type": "application/octet-stream"}, retry=False).close()
        except (RegistryUnreachable, UploadInterrupted):
            if not self._stored(repository, digest):
                raise

    def _stream(self, repository, digest, size, chunks):
        """Send a blob in one streamed PATCH (as docker and skopeo do), then close the session with its digest.

        The last ``chunk_size`` bytes are kept: a broken request resumes from what the registry confirms, and when
        the registry dropped the session (distribution does after a request broke off mid-way) a new session starts
        over while the kept bytes reach back to the blob's start. Beyond that the blob must be sent again.
        """
        source = iter(chunks)
        window = _Window(self.chunk_size)  # the most recent bytes sent
        state = {"sent": 0}
        location = self._start(repository)
        confirmed = 0
        attempts = 0
        while True:
            def body(replay=window.tail(state["sent"] - confirmed)):
                if replay:
                    yield replay
                for chunk in source:
                    window.add(chunk)
                    state["sent"] += len(chunk)
                    yield chunk

            problem = None
            if confirmed < size:
                try:
                    response = self.client.request("PATCH", location, repository, scope_actions="pull,push",
                                                   ok=(202, 204), data=body(),
                                                   headers={"Content-Type": "application/octet-stream"}, retry=False)
                    response.close()
                    location = _absolute(location, response.headers.get("Location") or location)
                    confirmed = state["sent"]
                    if response.headers.get("Range", "").count("-") == 1:
                        confirmed = int(response.headers["Range"].split("-")[1]) + 1
                    if confirmed != size:
                        problem = "the registry holds %d of %d bytes after the upload" % (confirmed, size)
                except RegistryError as exc:
                    problem = exc.message
            if problem is None:
                try:
                    self._finish(repository, location, digest)
                    return
                except (RegistryUnreachable, UploadInterrupted) as exc:
                    problem = exc.message
                except RegistryError as exc:
                    if not attempts:
                        raise
                    # After a resumed upload the registry may have kept bytes from the broken request too.
                    raise UploadInterrupted("the registry %s refused the resumed upload of blob %s to %s: %s" % (
                        self.client.host, digest, repository, exc.message), hint=_SEND_AGAIN)
            attempts += 1
            if attempts > self.client.retries:
                raise UploadInterrupted("uploading blob %s to %s/%s broke off: %s" % (
                    digest, self.client.host, repository, problem), hint=_SEND_AGAIN)
            self._pause(attempts)
            held_from = state["sent"] - window.size
            try:
                confirmed, location = self._confirmed(repository, location)
            except RegistryError as exc:
                if held_from > 0:
                    raise UploadInterrupted(
                        "uploading blob %s to %s/%s broke off (%s) and the registry cannot resume it: %s" % (
                            digest, self.client.host, repository, problem, exc.message), hint=_SEND_AGAIN)
                location, confirmed = self._start(repository), 0
            if confirmed < held_from or confirmed > state["sent"]:
                raise UploadInterrupted(
                    "the registry %s confirms %d bytes of an upload of blob %s to %s; the bytes from there on have "
                    "already streamed past (%d to %d are still held)" % (
                        self.client.host, confirmed, digest, repository, held_from, state["sent"]), hint=_SEND_AGAIN)

    def _chunked(self, repositories, digest, chunks):
        """One stream into several sessions, ``chunk_size`` bytes at a time."""
        sessions = [[repository, self._start(repository), 0] for repository in repositories]
        for piece in _rechunk(chunks, self.chunk_size):
            for session in sessions:
                session[1], session[2] = self._patch(session[0], digest, session[1], piece, session[2])
        for repository, location, _offset in sessions:
            self._finish(repository, location, digest)

    def _patch(self, repository, digest, location, piece, offset):
        sent_from = 0
        attempts = 0
        while True:
            body = piece[sent_from:]
            start = offset + sent_from
            headers = {"Content-Type": "application/octet-stream",
                       "Content-Range": "%d-%d" % (start, start + len(body) - 1)}
            try:
                response = self.client.request("PATCH", location, repository, scope_actions="pull,push",
                                               ok=(202, 204), data=body, headers=headers, retry=False)
                response.close()
                next_location = response.headers.get("Location")
                return (_absolute(location, next_location) if next_location else location), offset + len(piece)
            except RegistryError as exc:
                attempts += 1
                if attempts > self.client.retries:
                    raise UploadInterrupted("uploading blob %s to %s/%s broke off at byte %d: %s" % (
                        digest, self.client.host, repository, start, exc.message), hint=_SEND_AGAIN)
                self._pause(attempts)
                try:
                    confirmed, location = self._confirmed(repository, location)
                except RegistryError as status_error:
                    if offset > 0:
                        raise UploadInterrupted(
                            "uploading blob %s to %s/%s broke off at byte %d and the registry cannot resume it: %s" % (
                                digest, self.client.host, repository, start, status_error.message), hint=_SEND_AGAIN)
                    # The first piece is still at hand: start over in a new session.
                    location, confirmed = self._start(repository), 0
                if confirmed < offset or confirmed > offset + len(piece):
                    raise UploadInterrupted("the registry %s confirms %d bytes of an upload to %s, outside the "
                                            "chunk being sent (%d-%d)" % (self.client.host, confirmed, repository,
                                                                          offset, offset + len(piece)),
                                            hint=_SEND_AGAIN)
                sent_from = confirmed - offset
                if sent_from == len(piece):
                    return location, offset + len(piece)

    def put_manifest(self, repository, reference, data, media_type):
        response = self.client.request("PUT", "%s/manifests/%s" % (repository, reference), repository,
                                       scope_actions="pull,push", ok=(201, 200), data=data,
                                       headers={"Content-Type": media_type})
        response.close()
        return response.headers.get("Docker-Content-Digest")


class _Window:
    """The last ``limit`` bytes (or a little more, whole chunks) of a stream, without copying them around."""

    def __init__(self, limit):
        self.limit = limit
        self.chunks = collections.deque()
        self.size = 0

    def add(self, chunk):
        self.chunks.append(chunk)
        self.size += len(chunk)
        while self.chunks and self.size - len(self.chunks[0]) >= self.limit:
            self.size -= len(self.chunks.popleft())

    def tail(self, count):
        """The last ``count`` bytes held."""
        if count <= 0:
            return b""
        return b"".join(self.chunks)[-count:]


def _rechunk(chunks, size):
    """Regroup an iterator of byte strings into pieces of ``size`` bytes (the last may be shorter)."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)
