# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Read-ahead for blob chunks: a thread pulls the next chunks (a download, a disk read) while the consumer
compresses, hashes or writes the current one, through a bounded queue so memory stays flat however large the blob.
"""

from __future__ import annotations

import queue
import threading


class _Prefetch(threading.Thread):
    """Pulls chunks from a (network or disk) iterator ahead of the consumer, through a bounded queue."""

    _DONE = object()

    def __init__(self, iterator, depth):
        super().__init__(name="petra-prefetch", daemon=True)
        self._iterator = iterator
        self.queue = queue.Queue(maxsize=depth)
        self.stop = threading.Event()

    def _offer(self, item):
        # A bounded wait, so that a consumer that gave up (stop set) never leaves this thread blocked on a full queue.
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def run(self):
        try:
            for chunk in self._iterator:
                if not self._offer(chunk):
                    return
            item = self._DONE
        except BaseException as exc:  # handed to the consumer, which raises it in its own thread
            item = exc
        self._offer(item)


def prefetched(iterator, depth=8):
    """Iterate ``iterator`` with its work (downloads, reads) overlapping the consumer's."""
    worker = _Prefetch(iterator, depth)
    worker.start()
    try:
        while True:
            item = worker.queue.get()
            if item is _Prefetch._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        worker.stop.set()
        worker.join()
