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


def test_a_set_of_files_is_committed_together_and_each_directory_synced(tmp_path, monkeypatch):
    synced = recording_fsync(monkeypatch)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = atomic.PendingFile(str(tmp_path / "a" / "bundle")), atomic.PendingFile(str(tmp_path / "b" / "sig"))
    first.handle.write(b"content")
    second.handle.write(b"signature")
    atomic.commit(first, second)
    assert (tmp_path / "a" / "bundle").read_bytes() == b"content"
    assert (tmp_path / "b" / "sig").read_bytes() == b"signature"
    assert synced == [False, False, True, True]  # both files, then both directories
    assert os.listdir(tmp_path / "a") == ["bundle"] and os.listdir(tmp_path / "b") == ["sig"]


def test_a_failed_rename_takes_back_the_files_already_renamed(tmp_path):
    """A bundle must not stay in place without its signature: when the second rename fails (here the target is a
    directory), the first file is removed again and no temporary file is left."""
    (tmp_path / "sig").mkdir()
    (tmp_path / "sig" / "occupied").write_text("x")
    first, second = atomic.PendingFile(str(tmp_path / "bundle")), atomic.PendingFile(str(tmp_path / "sig"))
    first.handle.write(b"content")
    second.handle.write(b"signature")
    with pytest.raises(OSError):
        atomic.commit(first, second)
    assert sorted(os.listdir(tmp_path)) == ["sig"]
