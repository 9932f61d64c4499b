# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The push side of the distribution API: HEAD checks, cross-repository mounts, blob uploads, manifests.

A small blob goes in one PUT, a large one in one streamed PATCH that keeps a replay window to resume from what the
registry confirms, and one stream for several repositories (a registry that will not mount) in chunks. An upload
that still breaks off after the client's retries raises UploadInterrupted: running again skips what is stored.
"""

from __future__ import annotations

import collections
import time
import urllib.parse

from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes
from ansible_collections.petra.core.plugins.module_utils.oci.errors import (
    RegistryError,
    RegistryUnreachable,
    UploadInterrupted,
)

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

    def _resume(self, repository, location, attempts, restartable, gave_up, unresumable):
        """(bytes the registry holds, session location) to go on from after a request of an upload broke off.

        Gives up (``gave_up`` says how) after the client's retries. When the registry no longer answers for the
        session, a new one starts over only if the bytes from the blob's start are still at hand (``restartable``);
        otherwise the blob must be sent again (``unresumable`` says what broke off).
        """
        if attempts > self.client.retries:
            raise UploadInterrupted(gave_up, hint=_SEND_AGAIN)
        self._pause(attempts)
        try:
            return self._confirmed(repository, location)
        except RegistryError as exc:
            if not restartable:
                raise UploadInterrupted("%s and the registry cannot resume it: %s" % (unresumable, exc.message),
                                        hint=_SEND_AGAIN)
            return 0, self._start(repository)

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
            held_from = state["sent"] - window.size
            broke_off = "uploading blob %s to %s/%s broke off" % (digest, self.client.host, repository)
            confirmed, location = self._resume(repository, location, attempts, restartable=held_from <= 0,
                                               gave_up="%s: %s" % (broke_off, problem),
                                               unresumable="%s (%s)" % (broke_off, problem))
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
                broke_off = "uploading blob %s to %s/%s broke off at byte %d" % (
                    digest, self.client.host, repository, start)
                # Only while the first piece is being sent can a new session start over.
                confirmed, location = self._resume(repository, location, attempts, restartable=offset <= 0,
                                                   gave_up="%s: %s" % (broke_off, exc.message), unresumable=broke_off)
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
