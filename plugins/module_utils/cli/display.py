# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""How ``petra`` shows progress, on stderr: live bars on a terminal (rich), a plain line every few seconds
elsewhere (logs, CI, pipes), nothing with ``--quiet``. The bars only read the work's counters (progress.py), so they
never run backwards and never slow the work down.
"""

from __future__ import annotations

import contextlib
import threading

try:
    from rich.console import Console
    from rich import progress as rich_progress
    HAS_RICH = True
except ImportError:  # the plain lines still work without rich
    HAS_RICH = False

from ansible_collections.petra.core.plugins.module_utils.progress import Progress, human_bytes, progress_lines

REFRESH = 0.1  # seconds between frames of the bars


def _items(stage):
    text = "%d/%d %s" % (stage.items_done, stage.items_total, stage.unit)
    if stage.items_skipped:
        text += " (%d skipped)" % stage.items_skipped
    return text


def _rate(stage):
    return "%s/s" % human_bytes(stage.rate) if stage.rate > 0 else ""


class Bars:
    """rich progress bars fed from a Progress snapshot every REFRESH seconds: one bar per stage."""

    def __init__(self, stream):
        self.progress = Progress()
        self._bars = rich_progress.Progress(
            rich_progress.TextColumn("{task.description:<12}"),
            rich_progress.BarColumn(),
            rich_progress.TaskProgressColumn(),
            rich_progress.TextColumn("{task.fields[items]}"),
            rich_progress.DownloadColumn(),
            rich_progress.TextColumn("{task.fields[rate]}"),
            rich_progress.TimeRemainingColumn(),
            console=Console(file=stream), auto_refresh=False, transient=False)
        self._tasks = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="petra-bars", daemon=True)

    def _update(self):
        for position, stage in enumerate(self.progress.snapshot()):
            if position == len(self._tasks):
                self._tasks.append(self._bars.add_task(stage.name, total=None, items="", rate=""))
            self._bars.update(self._tasks[position], total=stage.bytes_total or None, completed=stage.bytes_done,
                              items=_items(stage), rate=_rate(stage))
        self._bars.refresh()

    def _run(self):
        while not self._stop.wait(REFRESH):
            self._update()

    def __enter__(self):
        self._bars.start()
        self._thread.start()
        return self.progress

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.progress.finish()
        self._update()
        self._bars.stop()
        return False


def progress_display(stream, quiet=False, terminal=None):
    """A context manager giving the Progress for the work (None with ``quiet``) and showing it on ``stream``."""
    if quiet:
        return contextlib.nullcontext(None)
    terminal = stream.isatty() if terminal is None else terminal
    if terminal and HAS_RICH:
        return Bars(stream)

    def emit(line):
        stream.write("petra: %s\n" % line)
        stream.flush()
    return progress_lines(emit)
