# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""How far a long operation is: counters the work advances, and views that read them.

The work (create, verify, load, split, reassemble) only adds to counters, from any thread; whoever shows progress
(the ``petra`` command's bars or lines, an action plugin's ``-v`` lines) reads a snapshot when it wants one. Nothing
in the work waits on a display, and no display sees a count go down: counts and totals only grow, a total grows to
meet what was done, and a new stage starts a new set of counts instead of resetting the old one
(zarf-dev/zarf#5267).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

# Seconds between progress lines where there is no terminal (-v output, logs, AWX job events).
INTERVAL_VARIABLE = "PETRA_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 5.0


class Stage:
    """The counts of one stage (``verify``, ``push``, ...): done of total, and how much of done was skipped because
    it was already where it had to be."""

    __slots__ = ("name", "unit", "bytes_total", "bytes_done", "bytes_skipped", "items_total", "items_done",
                 "items_skipped", "started", "finished")

    def __init__(self, name, unit, bytes_total, items_total):
        self.name = name
        self.unit = unit  # what an item is, for people: "entries", "blobs", "parts"
        self.bytes_total = bytes_total
        self.items_total = items_total
        self.bytes_done = self.bytes_skipped = self.items_done = self.items_skipped = 0
        self.started = time.monotonic()
        self.finished = None

    def copy(self):
        other = Stage.__new__(Stage)
        for name in Stage.__slots__:
            setattr(other, name, getattr(self, name))
        return other

    @property
    def elapsed(self):
        return (self.finished or time.monotonic()) - self.started

    @property
    def rate(self):
        """Bytes per second, counting only bytes really processed (skipped ones cost nothing)."""
        elapsed = self.elapsed
        return (self.bytes_done - self.bytes_skipped) / elapsed if elapsed > 0 else 0.0


def _count(value, what):
    value = int(value)
    if value < 0:
        raise ValueError("progress never goes backwards: %s %d" % (what, value))
    return value


class Progress:
    """Thread-safe counters of one operation, stage by stage."""

    def __init__(self):
        self._lock = threading.Lock()
        self._stages = []
        self.changes = 0  # bumped on every change, so a view can tell whether anything moved

    def stage(self, name, bytes_total=0, items_total=0, unit="items"):
        """Start a stage; the one before it is finished as it stands."""
        with self._lock:
            self._finish_current()
            self._stages.append(Stage(name, unit, _count(bytes_total, "bytes"), _count(items_total, "items")))
            self.changes += 1

    def add_total(self, nbytes=0, items=0):
        """Work found on the way (the entry count a bundle's metadata gives, once read)."""
        with self._lock:
            stage = self._current()
            stage.bytes_total += _count(nbytes, "bytes")
            stage.items_total += _count(items, "items")
            self.changes += 1

    def advance(self, nbytes=0, items=0, skipped=False):
        """``nbytes`` and ``items`` more done; ``skipped`` when they were already in place and nothing was sent."""
        nbytes, items = _count(nbytes, "bytes"), _count(items, "items")
        with self._lock:
            stage = self._current()
            stage.bytes_done += nbytes
            stage.items_done += items
            if skipped:
                stage.bytes_skipped += nbytes
                stage.items_skipped += items
            # A total that turned out low grows to what was done, so done never exceeds it and no bar shrinks back.
            stage.bytes_total = max(stage.bytes_total, stage.bytes_done)
            stage.items_total = max(stage.items_total, stage.items_done)
            self.changes += 1

    def finish(self):
        with self._lock:
            self._finish_current()
            self.changes += 1

    def snapshot(self):
        """Copies of every stage so far, the current one last."""
        with self._lock:
            return [stage.copy() for stage in self._stages]

    def _current(self):
        if not self._stages:
            self._stages.append(Stage("work", "items", 0, 0))
        return self._stages[-1]

    def _finish_current(self):
        if self._stages and self._stages[-1].finished is None:
            self._stages[-1].finished = time.monotonic()


class NullProgress:
    """The default sink: the work reports, nobody listens."""

    changes = 0

    def stage(self, name, bytes_total=0, items_total=0, unit="items"):
        pass

    def add_total(self, nbytes=0, items=0):
        pass

    def advance(self, nbytes=0, items=0, skipped=False):
        pass

    def finish(self):
        pass

    def snapshot(self):
        return []


NULL = NullProgress()


def or_null(progress):
    return NULL if progress is None else progress


def human_bytes(value):
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return ("%d %s" if unit == "B" else "%.1f %s") % (value, unit)
        value /= 1000.0
    return "%d B" % value  # not reached


def describe(stage):
    """One line for people: ``push: blobs 5 of 12 (3 skipped), 40.0 MB of 120.0 MB (10.0 MB skipped), 12.3 MB/s,
    about 7s left``."""
    parts = []
    if stage.items_total or stage.items_done:
        text = "%s %d of %d" % (stage.unit, stage.items_done, stage.items_total)
        if stage.items_skipped:
            text += " (%d skipped)" % stage.items_skipped
        parts.append(text)
    if stage.bytes_total or stage.bytes_done:
        text = "%s of %s" % (human_bytes(stage.bytes_done), human_bytes(stage.bytes_total))
        if stage.bytes_skipped:
            text += " (%s skipped)" % human_bytes(stage.bytes_skipped)
        parts.append(text)
    rate = stage.rate
    if rate > 0:
        parts.append("%s/s" % human_bytes(rate))
    if stage.finished is not None:
        parts.append("done in %.1fs" % stage.elapsed)
    elif rate > 0 and stage.bytes_total > stage.bytes_done:
        parts.append("about %ds left" % max(1, round((stage.bytes_total - stage.bytes_done) / rate)))
    return "%s: %s" % (stage.name, ", ".join(parts) if parts else "started")


class Ticker:
    """Calls ``emit(line)`` every ``interval`` seconds while the work runs, for each stage whose line changed since
    it was last emitted (so each finished stage is reported once more, as it ended); ``stop()`` reports the last
    state."""

    def __init__(self, progress, emit, interval=5.0):
        self._progress = progress
        self._emit = emit
        self._interval = interval
        self._stop = threading.Event()
        self._seen = {}  # stage position -> the line last emitted for it
        self._thread = threading.Thread(target=self._run, name="petra-progress", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self._interval):
            self._report()

    def _report(self):
        for position, stage in enumerate(self._progress.snapshot()):
            line = describe(stage)
            if self._seen.get(position) != line:
                self._seen[position] = line
                self._emit(line)

    def stop(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._report()


def line_interval():
    try:
        return max(0.05, float(os.environ.get(INTERVAL_VARIABLE, DEFAULT_INTERVAL)))
    except ValueError:
        return DEFAULT_INTERVAL


@contextlib.contextmanager
def progress_lines(emit, interval=None):
    """A Progress for the work inside the block, told through ``emit(line)`` every few seconds and once at its end."""
    progress = Progress()
    ticker = Ticker(progress, emit, line_interval() if interval is None else interval).start()
    try:
        yield progress
    finally:
        progress.finish()
        ticker.stop()
