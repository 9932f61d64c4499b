"""Headless Chromium (Debian's ``chromium``) rendering a local page: its DOM after loading, a screenshot, and every
message the page wrote to the browser console.

Chromium logs each console message (errors, Content-Security-Policy violations, uncaught exceptions) on stderr as a
``:CONSOLE`` line when run with ``--enable-logging=stderr --v=0``; any such line is a console message. Networking,
component updates and sync are off, so nothing outside the page is fetched and nothing but the page logs there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

CONSOLE = re.compile(r":CONSOLE(?:\(\d+\)|:\d+)?\]\s*(.*)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--enable-logging=stderr", "--v=0"]


class Rendered:
    def __init__(self, dom, console, stderr):
        self.dom = dom
        self.console = console
        self.stderr = stderr


def executable():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(arguments, timeout):
    with tempfile.TemporaryDirectory(prefix="petra-chromium-") as profile:
        finished = subprocess.run([executable()] + FLAGS + ["--user-data-dir=" + profile] + arguments,
                                  capture_output=True, text=True, timeout=timeout, check=False)
    if finished.returncode != 0:
        raise AssertionError("chromium exited %d: %s" % (finished.returncode, finished.stderr[-2000:]))
    console = [match.group(1) for match in map(CONSOLE.search, finished.stderr.splitlines()) if match]
    return finished, console


def render(path, screenshot=None, width=1280, height=2000, timeout=120):
    """Load ``path`` (a local HTML file); the DOM, the console messages, and with ``screenshot`` a PNG there."""
    url = "file://" + os.path.abspath(path)
    finished, console = _run(["--dump-dom", url], timeout)
    if screenshot:
        _shot, shot_console = _run(["--window-size=%d,%d" % (width, height), "--screenshot=" + screenshot, url],
                                   timeout)
        console += shot_console
    return Rendered(finished.stdout, console, finished.stderr)


def png_size(path):
    """(width, height) of a PNG file, from its IHDR chunk."""
    with open(path, "rb") as handle:
        header = handle.read(24)
    if header[:8] != b"\x89PNG\r\n\x1a\n" or header[12:16] != b"IHDR":
        raise AssertionError("%s is not a PNG file" % path)
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
