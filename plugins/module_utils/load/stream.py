# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The push pass of a load: one streaming decompress-and-push pass over the archive that checks every entry against
the signed metadata and uploads the blobs the registry lacks, several at a time.

The archive is one sequential stream, so reading and uploading are decoupled: the walker (the caller's thread)
decompresses, checks and hashes each entry and hands a wanted blob to an upload worker: a small blob as one body once
its digest is proven, a large one through a bounded queue of chunks while it streams past. An upload is closed (the
PUT with the digest, which makes the registry store the blob) only after the walker has proven the entry: a blob
that does not match the signed metadata is abandoned before that, and the pass stops naming the entry, so that no
manifest or tag is ever written after it. ``parallel`` bounds the uploads in flight, and with it the memory: a small
blob's body, or a large blob's queue and the writer's replay window (oci/writer.py).
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading

from ansible_collections.petra.core.plugins.module_utils.bundle.errors import VerificationError
from ansible_collections.petra.core.plugins.module_utils.bundle.reader import BundleWalker
from ansible_collections.petra.core.plugins.module_utils.oci.errors import UploadInterrupted

FEED_DEPTH = 8  # chunks (of about 1 MiB) of a large blob waiting for its upload worker
_END = object()
_WAIT = 0.2  # seconds between looks at whether the other side gave up


class EntryRejected(Exception):
    """The entry being uploaded does not match the signed metadata: its upload must not be closed."""


class _Feed:
    """The chunks of one large blob, from the walker to its upload worker. The stream ends only once the walker has
    proven the entry (``end``); ``reject`` makes the worker's next read raise EntryRejected instead."""

    def __init__(self, depth=FEED_DEPTH):
        self._queue = queue.Queue(maxsize=depth)
        self._rejected = threading.Event()
        self._proven = False
        self.closed = threading.Event()  # the worker stopped reading: it finished, or its upload failed

    def put(self, item):
        while not self.closed.is_set():
            try:
                self._queue.put(item, timeout=_WAIT)
                return
            except queue.Full:
                continue

    def end(self):
        self._proven = True
        self.put(_END)

    def reject(self):
        """Called from the walker's thread, like ``end``: a proven entry stays proven."""
        if not self._proven:
            self._rejected.set()

    def __iter__(self):
        while True:
            if self._rejected.is_set():
                raise EntryRejected()
            try:
                item = self._queue.get(timeout=_WAIT)
            except queue.Empty:
                continue
            if item is _END:
                return
            yield item


class PushPass:
    """One pass over the archive uploading each blob of ``targets`` (digest -> repositories) as it streams past.

    ``metadata`` is the signed metadata proven by the first pass: every entry is checked against it (size, order,
    SHA-256), so no whole-file digest is needed here. ``on_pushed(digest, size, copies)`` counts a stored blob (from
    worker threads). ``broken_limit`` uploads breaking off one after another make the rest of the pass wait for the
    next one rather than each spend its retries and timeouts.
    """

    def __init__(self, path, metadata, targets, writers, parallel, on_pushed, broken_limit, monolithic_limit):
        self.path = path
        self.metadata = metadata
        self.targets = targets
        self.writers = writers
        self.parallel = max(1, parallel)
        self.on_pushed = on_pushed
        self.broken_limit = broken_limit
        self.monolithic_limit = monolithic_limit
        self.uploaded = {}  # digest -> (a repository it is in, size)
        self.broken = {}  # digest -> UploadInterrupted, to send again in the next pass
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.parallel)
        self._open = set()  # feeds of large blobs whose upload is under way
        self._in_a_row = []  # interruptions since the last upload that got through
        self._failure = None
        self._pool = None

    def run(self):
        """Stream the archive once; returns (uploaded, broken). Raises VerificationError for an entry that does not
        match the signed metadata, or the first upload failure other than an interruption; either way only after
        every upload under way stopped, and before the caller writes any manifest."""
        walker = BundleWalker(self.path, (), hash_entries=True, expected_metadata=self.metadata)
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.parallel,
                                                   thread_name_prefix="petra-upload") as pool:
            self._pool = pool
            try:
                result = walker.walk(on_entry=self._on_entry)
            finally:
                self._reject_open()  # an entry the walker did not prove (it found a problem) is never stored
        if self._failure is not None:
            raise self._failure
        if result.problem is not None:
            problem = result.problem
            raise VerificationError(
                "%s; found while streaming the bundle into the registry: the load stopped before writing any "
                "manifest or tag, and that entry was not stored" % problem.message,
                hint=problem.hint, reason=problem.reason, **problem.details)
        return self.uploaded, self.broken

    def _on_entry(self, name, entry, chunks):
        digest = entry["digest"]
        if not name.startswith("blobs/") or digest not in self.targets:
            return None
        if self._failure is not None:
            raise self._failure  # stops the walk: the pass fails anyway
        with self._lock:
            if len(self._in_a_row) >= self.broken_limit:
                self.broken[digest] = self._in_a_row[-1]
                return None
        repositories = self.targets[digest]
        if entry["size"] <= self.monolithic_limit:
            body = b"".join(chunks)
            return lambda: self._submit(digest, repositories, entry["size"], [body])
        feed = _Feed()
        self._submit(digest, repositories, entry["size"], feed)
        for chunk in chunks:
            feed.put(chunk)
        return feed.end

    def _submit(self, digest, repositories, size, chunks):
        self._slots.acquire()  # bounds the uploads in flight; the walker waits here, and the reader behind it
        if isinstance(chunks, _Feed):
            with self._lock:
                self._open.add(chunks)
        self._pool.submit(self._upload, digest, repositories, size, chunks)

    def _upload(self, digest, repositories, size, chunks):
        try:
            self.writers.get().upload_many(repositories, digest, size, chunks)
        except EntryRejected:
            pass
        except UploadInterrupted as exc:
            with self._lock:
                self.broken[digest] = exc
                self._in_a_row.append(exc)
        except BaseException as exc:  # pylint: disable=broad-except  # raised by run() in the caller's thread
            with self._lock:
                if self._failure is None:
                    self._failure = exc
        else:
            with self._lock:
                del self._in_a_row[:]
                self.uploaded[digest] = (repositories[0], size)
            self.on_pushed(digest, size, len(repositories))
        finally:
            if isinstance(chunks, _Feed):
                chunks.closed.set()
                with self._lock:
                    self._open.discard(chunks)
            self._slots.release()

    def _reject_open(self):
        with self._lock:
            for feed in self._open:
                feed.reject()
