"""write_atomically: the file is synced, renamed, and then its directory is synced, so that the new name survives a
crash; file systems that cannot sync a directory do not fail the write."""

import errno
import os
import stat

import pytest

from ansible_collections.petra.core.plugins.module_utils import atomic


def recording_fsync(monkeypatch, refuse=None):
    """Replace os.fsync with one that records whether each descriptor synced is a directory, and may refuse those."""
    synced = []
    real = os.fsync

    def fsync(descriptor):
        is_dir = stat.S_ISDIR(os.fstat(descriptor).st_mode)
        synced.append(is_dir)
        if is_dir and refuse is not None:
            raise OSError(refuse, os.strerror(refuse))
        real(descriptor)
    monkeypatch.setattr(atomic.os, "fsync", fsync)
    return synced


def test_the_directory_is_synced_after_the_rename(tmp_path, monkeypatch):
    synced = recording_fsync(monkeypatch)
    target = tmp_path / "state.json"
    atomic.write_atomically(str(target), lambda handle: handle.write(b"one"))
    assert target.read_bytes() == b"one"
    assert synced == [False, True]  # the file first, then the directory holding the new name
    assert os.listdir(tmp_path) == ["state.json"]


@pytest.mark.parametrize("code", [errno.EINVAL, errno.ENOTSUP])
def test_a_file_system_that_refuses_directory_sync_is_tolerated(tmp_path, monkeypatch, code):
    recording_fsync(monkeypatch, refuse=code)
    target = tmp_path / "state.json"
    atomic.write_atomically(str(target), lambda handle: handle.write(b"two"))
    assert target.read_bytes() == b"two"


def test_other_directory_sync_errors_are_reported(tmp_path, monkeypatch):
    recording_fsync(monkeypatch, refuse=errno.EIO)
    with pytest.raises(OSError) as info:
        atomic.write_atomically(str(tmp_path / "state.json"), lambda handle: handle.write(b"three"))
    assert info.value.errno == errno.EIO
