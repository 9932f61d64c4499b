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


def write_atomically(path, write, mode=0o644):
    """Call ``write(handle)`` on a temporary file in path's directory, then rename it onto path.

    On any failure the temporary file is removed and path is left as it was. After the rename the directory is
    synced (best effort: file systems that cannot sync a directory are left at that).
    """
    directory = os.path.dirname(os.path.abspath(path))
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                                         delete=False)
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, mode)
        os.replace(handle.name, path)
    except BaseException:
        if os.path.exists(handle.name):
            os.unlink(handle.name)
        raise
    sync_directory(directory)


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
