# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The reading half of the streaming bundle reader: a thread hashes the compressed bytes for the signature and
decompresses them into a bounded queue, which the caller's thread reads as a file (reader.py parses the tar)."""

from __future__ import annotations

import hashlib
import queue
import threading

try:
    import zstandard
except ImportError:  # pragma: no cover - reader.py reports it (require_zstandard)
    pass

from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError, VerificationError

READ_SIZE = 1 << 20
QUEUE_DEPTH = 16
_END = object()
OBTAIN_AGAIN = "Do not use this bundle: obtain it again through the transfer, or ask the sender to rebuild it"
CHANGED = "Make sure nothing writes to the bundle while it is used, then run again"


class _Abort(Exception):
    """Raised inside the reader thread when the consumer gave up."""


class _HashingFile:
    """The bundle file, hashed for the signature as zstd reads it."""

    def __init__(self, handle, hash_names, progress):
        self._handle = handle
        self.hashers = {name: hashlib.new(name) for name in hash_names}
        self.consumed = 0
        self._progress = progress

    def read(self, size=-1):
        data = self._handle.read(size)
        for hasher in self.hashers.values():
            hasher.update(data)
        self.consumed += len(data)
        self._progress.advance(len(data))
        return data

    def drain(self):
        while self.read(READ_SIZE):
            pass


class Decompressor(threading.Thread):
    """Reads, hashes and decompresses the file; hands bounded chunks to the consumer through a queue."""

    def __init__(self, path, hash_names, progress):
        super().__init__(name="petra-bundle-reader", daemon=True)
        self._path = path
        self._hash_names = hash_names
        self._progress = progress
        self.queue = queue.Queue(maxsize=QUEUE_DEPTH)
        self.stopping = threading.Event()
        self.hash_only = threading.Event()
        self.digests = None
        self.error = None
        self.compressed_size = 0

    def _put(self, item):
        while True:
            if self.stopping.is_set():
                raise _Abort()
            if self.hash_only.is_set():
                return
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def run(self):
        try:
            with open(self._path, "rb") as handle:
                source = _HashingFile(handle, self._hash_names, self._progress)
                try:
                    reader = zstandard.ZstdDecompressor().stream_reader(source, read_size=READ_SIZE)
                    while not self.hash_only.is_set():
                        chunk = reader.read(READ_SIZE)
                        if not chunk:
                            break
                        self._put(chunk)
                except zstandard.ZstdError as exc:
                    self.error = VerificationError(
                        "the archive is not well-formed zstd near compressed byte %d (%s)" % (source.consumed, exc),
                        hint=OBTAIN_AGAIN, reason="corrupt")
                # The signature covers every byte, including any the decompressor did not need.
                source.drain()
                self.digests = {name: hasher.digest() for name, hasher in source.hashers.items()}
                self.compressed_size = source.consumed
        except _Abort:
            return
        except OSError as exc:
            self.error = BundleError("cannot read the bundle %s: %s" % (self._path, exc.strerror))
        finally:
            try:
                self.queue.put(_END, timeout=5)
            except queue.Full:
                pass


class QueueFile:
    """A read-only file object over the decompressor's queue, for tarfile's stream mode."""

    def __init__(self, producer):
        self._producer = producer
        self._buffer = b""
        self._done = False
        self.total = 0

    def read(self, size=-1):
        if not self._buffer and not self._done and size > 0:
            # The common case: hand over a whole decompressed chunk without copying it.
            item = self._producer.queue.get()
            if item is _END:
                self._done = True
                return b""
            if len(item) <= size:
                self.total += len(item)
                return item
            self._buffer = item
        parts = [self._buffer]
        held = len(self._buffer)
        while not self._done and (size < 0 or held < size):
            item = self._producer.queue.get()
            if item is _END:
                self._done = True
                break
            parts.append(item)
            held += len(item)
        data = b"".join(parts) if len(parts) > 1 else parts[0]
        if size < 0 or size >= len(data):
            self._buffer = b""
        else:
            data, self._buffer = data[:size], data[size:]
        self.total += len(data)
        return data

    def discard(self):
        self._buffer = b""
        while not self._done:
            if self._producer.queue.get() is _END:
                self._done = True
