# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The deterministic archive writer: POSIX (pax) tar, compressed with zstd, hashed as it is written.

Determinism comes from fixed header fields (mtime, mode 0644, uid/gid 0, no user or group names),
the caller's fixed entry order, and zstd's multi-threaded mode, whose output does not depend on the
number of worker threads or on how the input is chunked.
"""

from __future__ import annotations

import hashlib
import os
import queue
import tarfile
import threading

try:
    import zstandard
    HAS_ZSTANDARD = True
except ImportError:  # pragma: no cover - reported at run time
    HAS_ZSTANDARD = False

from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
ENTRY_MODE = 0o644
DEFAULT_LEVEL = 3


def require_zstandard():
    if not HAS_ZSTANDARD:
        raise BundleError("the Python library 'zstandard' is required to read and write bundles",
                          hint="Install the collection's requirements.txt on the controller")


def compression_threads():
    # zstd output is identical for any worker count >= 1, so this only changes speed: the CPUs this process may run
    # on (a container or taskset limits them), not all the host has.
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class _HashingSink:
    """Hashes compressed bytes for the signature and writes them to the file, in a thread of its own.

    zstd hands its output over synchronously; moving hashing and disk writes off the compressing thread
    lets the three overlap. The queue is bounded, so memory stays flat.
    """

    WRITEBACK_EVERY = 32 << 20

    def __init__(self, fileobj, hash_names, depth=64):
        self._fileobj = fileobj
        self._pending = 0
        self.hashers = {name: hashlib.new(name) for name in hash_names}
        self.size = 0
        self._queue = queue.Queue(maxsize=depth)
        self._error = None
        self._thread = threading.Thread(target=self._drain, name="petra-archive-writer", daemon=True)
        self._thread.start()

    def _drain(self):
        while True:
            data = self._queue.get()
            if data is None:
                return
            if self._error is not None:
                continue
            try:
                for hasher in self.hashers.values():
                    hasher.update(data)
                self._fileobj.write(data)
                self._pending += len(data)
                if self._pending >= self.WRITEBACK_EVERY:
                    self._start_writeback()
            except (OSError, ValueError) as exc:
                self._error = exc

    def _start_writeback(self):
        # Linux starts writing dirty pages back without waiting on POSIX_FADV_DONTNEED, and drops pages already
        # written: the final fsync then waits only for the tail, and a bundle of tens of GB does not evict the
        # page cache. Elsewhere this is a harmless hint.
        self._pending = 0
        self._fileobj.flush()
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(self._fileobj.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)

    def write(self, data):
        if self._error is not None:
            raise BundleError("writing the bundle failed: %s" % self._error, hint="Check free space and permissions")
        data = bytes(data)
        self.size += len(data)
        self._queue.put(data)
        return len(data)

    def flush(self):
        pass

    def finish(self):
        """Wait until every byte is hashed and written."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise BundleError("writing the bundle failed: %s" % self._error, hint="Check free space and permissions")
        self._fileobj.flush()

    def abandon(self):
        if self._thread.is_alive():
            self._error = self._error or ValueError("abandoned")
            self._queue.put(None)
            self._thread.join()


def entry_header(name, size, mtime):
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = ENTRY_MODE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")


class ArchiveWriter:
    """Appends entries to a tar.zst stream; every entry's bytes are checked against what was declared."""

    def __init__(self, fileobj, mtime, hash_names=("sha256",), level=DEFAULT_LEVEL):
        require_zstandard()
        self._sink = _HashingSink(fileobj, hash_names)
        compressor = zstandard.ZstdCompressor(level=level, threads=compression_threads(), write_checksum=True)
        self._zstd = compressor.stream_writer(self._sink, closefd=False)
        self._mtime = int(mtime)
        self._offset = 0
        self._closed = False

    def _write(self, data):
        self._zstd.write(data)
        self._offset += len(data)

    def add_chunks(self, name, size, digest, chunks):
        """Add an entry from an iterable of byte chunks; ``digest`` (sha256:...) and ``size`` must match."""
        self._write(entry_header(name, size, self._mtime))
        hasher = hashlib.sha256()
        written = 0
        for chunk in chunks:
            written += len(chunk)
            if written > size:
                raise BundleError("the content for %s is larger than the %d bytes declared" % (name, size))
            hasher.update(chunk)
            self._write(chunk)
        if written != size:
            raise BundleError("the content for %s ended after %d of %d bytes" % (name, written, size),
                              hint="The source changed while the bundle was written; run again")
        if "sha256:" + hasher.hexdigest() != digest:
            raise BundleError("the content for %s hashes to sha256:%s, not %s" % (name, hasher.hexdigest(), digest),
                              hint="The source changed while the bundle was written; run again")
        remainder = size % BLOCK
        if remainder:
            self._write(b"\0" * (BLOCK - remainder))

    def add_bytes(self, name, data):
        self.add_chunks(name, len(data), "sha256:" + hashlib.sha256(data).hexdigest(), [data])

    def close(self):
        """End the tar (two zero blocks, padded to a record) and the zstd frame; returns digests by hash."""
        if not self._closed:
            self._write(b"\0" * (2 * BLOCK))
            remainder = self._offset % RECORD
            if remainder:
                self._write(b"\0" * (RECORD - remainder))
            self._zstd.flush(zstandard.FLUSH_FRAME)
            self._sink.finish()
            self._closed = True
        return {name: hasher.digest() for name, hasher in self._sink.hashers.items()}

    def abandon(self):
        """Stop the writer thread after a failure; the caller removes the partial file."""
        self._sink.abandon()

    @property
    def compressed_size(self):
        return self._sink.size
