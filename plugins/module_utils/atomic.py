# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Files that appear whole or not at all: written to a temporary file beside the target, synced, renamed, and the
directory synced so that the rename itself survives a crash."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile


class PendingFile:
    """A temporary file beside ``path`` that takes its place only through commit(): until then path is untouched,
    and discard() leaves no trace. Write to ``handle``."""

    def __init__(self, path, mode=0o644):
        self.path = path
        self.mode = mode
        self.directory = os.path.dirname(os.path.abspath(path))
        self.handle = tempfile.NamedTemporaryFile(dir=self.directory, prefix="." + os.path.basename(path) + ".",
                                                  suffix=".tmp", delete=False)

    def seal(self):
        """Make the content durable under the temporary name: synced, closed, given its mode."""
        if not self.handle.closed:
            self.handle.flush()
            os.fsync(self.handle.fileno())
            self.handle.close()
        os.chmod(self.handle.name, self.mode)

    def discard(self):
        self.handle.close()
        if os.path.exists(self.handle.name):
            os.unlink(self.handle.name)


def commit(*pending):
    """Seal the files, rename them onto their paths in the order given, then sync each directory once, so that the
    new names survive a crash.

    The files form a set (a bundle and its signature): if a rename fails, those already renamed are removed again, so
    that none is left in place without the others, and the rest are discarded."""
    renamed = []
    try:
        for item in pending:
            item.seal()
        for item in pending:
            os.replace(item.handle.name, item.path)
            renamed.append(item)
    except BaseException:
        for item in renamed:
            if os.path.exists(item.path):
                os.unlink(item.path)
        for item in pending:
            item.discard()
        raise
    for directory in dict.fromkeys(item.directory for item in pending):
        sync_directory(directory)


def write_atomically(path, write, mode=0o644):
    """Call ``write(handle)`` on a temporary file in path's directory, then rename it onto path.

    On any failure the temporary file is removed and path is left as it was. After the rename the directory is
    synced (best effort: file systems that cannot sync a directory are left at that).
    """
    pending = PendingFile(path, mode)
    try:
        write(pending.handle)
    except BaseException:
        pending.discard()
        raise
    commit(pending)


def write_if_different(path, data, check_mode=False, mode=0o644):
    """Write ``data`` to path (atomically, creating its directory) unless the file already holds exactly it, so that
    an unchanged result is no change; returns whether it was (or, in check mode, would be) written."""
    try:
        with open(path, "rb") as handle:
            if handle.read(len(data) + 1) == data:
                return False
    except FileNotFoundError:
        pass
    if not check_mode:
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, mode=0o755, exist_ok=True)
        write_atomically(path, lambda handle: handle.write(data), mode)
    return True


def sync_directory(directory):
    """fsync a directory, so that entries renamed into it are durable; file systems that refuse (EINVAL, ENOTSUP,
    EBADF on some network and FUSE file systems) are ignored, the rename itself has already succeeded."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def directory_lock(path):
    """Hold an exclusive lock on path's directory while a file in it is read, changed and replaced, so that two
    writers never interleave (the lock goes with the process, however it ends)."""
    descriptor = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
