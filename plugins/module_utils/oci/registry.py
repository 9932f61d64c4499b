# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""A small OCI distribution client: reads manifests, referrers and blobs; ``ClientPool`` keeps one per host.

Manifests are size-bounded and checked against the digest they were asked by; a blob download that breaks off
resumes with a ``Range`` request instead of starting over. Auth, timeouts and retries are the transport's
(transport.py); pushing is the writer's (writer.py).
"""

from __future__ import annotations

import hashlib
import json
import time

from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes
from ansible_collections.petra.core.plugins.module_utils.oci.errors import DigestMismatch, RegistryError
from ansible_collections.petra.core.plugins.module_utils.oci.transport import STREAM_BROKE, RegistryTransport

CHUNK_SIZE = 1 << 20
MAX_MANIFEST_BYTES = 4 << 20  # the distribution spec's own limit for manifests


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class RegistryClient(RegistryTransport):
    """Reads from one registry host: manifests and indexes, referrers, blobs (see RegistryTransport for the options)."""

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
            except STREAM_BROKE as exc:
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
