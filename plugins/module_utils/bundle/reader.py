# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The streaming bundle reader: one pass over the file, nothing extracted, memory bounded.

A reader thread (decompress.py) hashes the compressed bytes for the signature and decompresses them; the
caller's thread parses the tar and checks every entry as it streams past. Both run at once, so verification
costs about what ``zstd -dc | sha256sum`` costs.
"""

from __future__ import annotations

import hashlib
import posixpath
import tarfile

try:
    import zstandard
    HAS_ZSTANDARD = True
except ImportError:  # pragma: no cover - reported at run time
    HAS_ZSTANDARD = False

from ansible_collections.petra.core.plugins.module_utils.bundle import metadata as bundle_metadata
from ansible_collections.petra.core.plugins.module_utils.bundle.archive import require_zstandard
from ansible_collections.petra.core.plugins.module_utils.bundle.decompress import (
    CHANGED,
    OBTAIN_AGAIN,
    READ_SIZE,
    Decompressor,
    QueueFile,
)
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import VerificationError
from ansible_collections.petra.core.plugins.module_utils.progress import or_null


def _unsafe_name_reason(name):
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    parts = name.split("/")
    if ".." in parts:
        return "a '..' component"
    if "\\" in name or "\0" in name:
        return "a backslash or NUL character"
    if posixpath.normpath(name) != name or "." in parts or "" in parts:
        return "a non-canonical form"
    return None


def _entry_type(member):
    if member.issym():
        return "a symbolic link to %r" % member.linkname
    if member.islnk():
        return "a hard link to %r" % member.linkname
    if member.ischr() or member.isblk():
        return "a device node"
    if member.isfifo():
        return "a FIFO"
    if member.isdir():
        return "a directory"
    return "an entry of tar type %r" % member.type


class WalkResult:
    """What a walk found: the metadata, the first structural problem, and the signature digests."""

    def __init__(self):
        self.metadata = None
        self.problem = None
        self.digests = None
        self.compressed_size = 0
        self.entries_checked = 0
        self.bytes_checked = 0


class BundleWalker:
    """Walks a bundle once, checking every entry against the metadata, handing entry streams to a callback.

    ``on_entry(name, declared, chunks)`` may consume ``chunks`` (an iterator of bytes) to act on the
    content as it is verified; whatever it leaves unread is read and hashed by the walker. When it returns a
    callable, the walker calls it once the entry passed its checks (digest included), so that the caller acts on
    the content only then. ``progress`` (progress.Progress, in the caller's stage) counts the file's bytes as they
    are read and the entries as they pass.
    """

    def __init__(self, path, hash_names=("sha256",), hash_entries=True, progress=None, expected_metadata=None):
        require_zstandard()
        self.path = path
        self.progress = or_null(progress)
        self.hash_names = tuple(hash_names)
        # A signature pass may leave entry digests to a later pass, which checks them against ``expected_metadata``.
        self.hash_entries = hash_entries
        self.expected_metadata = expected_metadata

    def walk(self, on_entry=None, on_member=None):
        """``on_member(tarinfo)`` sees every tar header, the metadata's included, once its name passed the checks."""
        result = WalkResult()
        producer = Decompressor(self.path, self.hash_names, self.progress)
        producer.start()
        stream = QueueFile(producer)
        try:
            self._walk_tar(stream, result, on_entry, on_member)
            while stream.read(READ_SIZE):
                pass
        except VerificationError as exc:
            result.problem = exc
            # The signature verdict still needs every byte hashed, but nothing more needs decompressing.
            producer.hash_only.set()
            stream.discard()
        except BaseException:
            producer.stopping.set()
            producer.join()
            raise
        producer.join()
        if producer.error is not None:
            if not isinstance(producer.error, VerificationError):
                raise producer.error
            if result.problem is None or result.problem.reason in ("truncated", "tar"):
                result.problem = producer.error
        result.digests = producer.digests
        result.compressed_size = producer.compressed_size
        return result

    def _walk_tar(self, stream, result, on_entry, on_member=None):
        try:
            archive = tarfile.open(fileobj=stream, mode="r|", bufsize=READ_SIZE)
        except tarfile.TarError as exc:
            if stream.total == 0:
                raise VerificationError(
                    "nothing could be decompressed from the archive: it is truncated, or not a zstd-compressed bundle",
                    hint=OBTAIN_AGAIN, reason="truncated")
            raise VerificationError("the archive does not start with a tar header (%s)" % exc,
                                    hint=OBTAIN_AGAIN, reason="tar")
        declared = None
        seen = set()
        expected_order = None
        position = 0
        try:
            for member in archive:
                name = member.name
                reason = _unsafe_name_reason(name)
                if reason:
                    raise VerificationError("the archive holds an entry with an unsafe path %r (%s)" % (name, reason),
                                            hint=OBTAIN_AGAIN, reason="unsafe-path", entry=name)
                if not member.isreg():
                    raise VerificationError("the archive entry %r is %s; bundles hold only regular files" % (
                        name, _entry_type(member)), hint=OBTAIN_AGAIN, reason="entry-type", entry=name)
                if name in seen:
                    raise VerificationError("the archive holds %r twice" % name, hint=OBTAIN_AGAIN,
                                            reason="duplicate", entry=name)
                seen.add(name)
                if on_member is not None:
                    on_member(member)
                if declared is None:
                    declared = self._read_metadata(archive, member, result)
                    expected_order = [entry["name"] for entry in result.metadata["entries"]]
                    continue
                entry = declared.get(name)
                if entry is None:
                    raise VerificationError("the archive holds %r, which the signed metadata does not list" % name,
                                            hint=OBTAIN_AGAIN, reason="extra", entry=name)
                if member.size > entry["size"]:
                    raise VerificationError(
                        "the archive entry %r claims %d bytes where the metadata declares %d (oversized entry)" % (
                            name, member.size, entry["size"]), hint=OBTAIN_AGAIN, reason="oversized", entry=name)
                if member.size < entry["size"]:
                    raise VerificationError("the archive entry %r has %d bytes where the metadata declares %d" % (
                        name, member.size, entry["size"]), hint=OBTAIN_AGAIN, reason="altered", entry=name)
                if position >= len(expected_order) or expected_order[position] != name:
                    raise VerificationError("the archive entry %r is out of the order the metadata gives" % name,
                                            hint=OBTAIN_AGAIN, reason="order", entry=name)
                position += 1
                self._check_entry(archive, member, entry, result, on_entry)
        except tarfile.TarError as exc:
            raise VerificationError("the archive is truncated or its tar structure is damaged (%s)" % exc,
                                    hint=OBTAIN_AGAIN, reason="truncated")
        if declared is None:
            raise VerificationError("the archive is empty or truncated before its metadata",
                                    hint=OBTAIN_AGAIN, reason="truncated")
        if position < len(expected_order):
            missing = expected_order[position]
            raise VerificationError(
                "the archive ends before entry %r (%d of %d entries present): it is truncated or an entry was removed" % (
                    missing, position, len(expected_order)), hint=OBTAIN_AGAIN, reason="truncated", entry=missing)
        self._check_trailer(archive, stream)

    def _read_metadata(self, archive, member, result):
        if member.name != bundle_metadata.METADATA_NAME:
            raise VerificationError("the archive does not start with %s but with %r: it is not a Petra bundle" % (
                bundle_metadata.METADATA_NAME, member.name), hint=OBTAIN_AGAIN, reason="metadata")
        if member.size > bundle_metadata.MAX_METADATA_SIZE:
            raise VerificationError("the bundle metadata claims %d bytes, more than the %d allowed (oversized entry)" % (
                member.size, bundle_metadata.MAX_METADATA_SIZE), hint=OBTAIN_AGAIN, reason="oversized")
        data = archive.extractfile(member).read()
        result.metadata = bundle_metadata.decode(data)
        if self.expected_metadata is not None and result.metadata != self.expected_metadata:
            raise VerificationError("the bundle's metadata is not the one whose signature was verified: the file "
                                    "changed while it was read", hint=CHANGED, reason="changed")
        declared = {}
        for entry in result.metadata["entries"]:
            reason = _unsafe_name_reason(entry["name"])
            if reason:
                raise VerificationError("the metadata lists an unsafe path %r (%s)" % (entry["name"], reason),
                                        hint=OBTAIN_AGAIN, reason="unsafe-path", entry=entry["name"])
            if entry["name"] in declared or entry["name"] == bundle_metadata.METADATA_NAME:
                raise VerificationError("the metadata lists %r twice" % entry["name"], hint=OBTAIN_AGAIN,
                                        reason="duplicate", entry=entry["name"])
            declared[entry["name"]] = entry
        self.progress.add_total(items=len(declared))
        return declared

    def _check_entry(self, archive, member, entry, result, on_entry):
        handle = archive.extractfile(member)
        hasher = hashlib.sha256() if self.hash_entries else None
        counted = [0]

        def chunks():
            while True:
                chunk = handle.read(READ_SIZE)
                if not chunk:
                    return
                if hasher is not None:
                    hasher.update(chunk)
                counted[0] += len(chunk)
                yield chunk

        iterator = chunks()
        after = on_entry(member.name, entry, iterator) if on_entry is not None else None
        for _chunk in iterator:
            pass
        if counted[0] != entry["size"]:
            raise VerificationError("the archive entry %r ends after %d of %d bytes: the archive is truncated" % (
                member.name, counted[0], entry["size"]), hint=OBTAIN_AGAIN, reason="truncated", entry=member.name)
        if hasher is not None and "sha256:" + hasher.hexdigest() != entry["digest"]:
            raise VerificationError(
                "the archive entry %r was altered: it hashes to sha256:%s, the signed metadata says %s" % (
                    member.name, hasher.hexdigest(), entry["digest"]), hint=OBTAIN_AGAIN, reason="altered",
                entry=member.name)
        result.entries_checked += 1
        result.bytes_checked += counted[0]
        self.progress.advance(items=1)
        if callable(after):
            after()

    @staticmethod
    def _check_trailer(archive, stream):
        # tarfile stops at the first zero block, or quietly at a clean end of data; a bundle must end with
        # the end-of-archive marker (two zero blocks), so a cut at an entry boundary is caught too.
        rest = archive.fileobj.read(tarfile.RECORDSIZE)
        trailing = 0
        while rest:
            if rest.strip(b"\0"):
                raise VerificationError("the archive has data after its end-of-archive marker", hint=OBTAIN_AGAIN,
                                        reason="trailing")
            trailing += len(rest)
            rest = archive.fileobj.read(tarfile.RECORDSIZE)
        if trailing < tarfile.BLOCKSIZE:
            raise VerificationError("the archive ends without the tar end-of-archive marker: it is truncated",
                                    hint=OBTAIN_AGAIN, reason="truncated")


def read_metadata(path):
    """The metadata of a bundle, reading only its first entry (no verification: for comparisons only)."""
    require_zstandard()
    try:
        with open(path, "rb") as handle:
            reader = zstandard.ZstdDecompressor().stream_reader(handle, read_size=READ_SIZE)
            with tarfile.open(fileobj=reader, mode="r|") as archive:
                member = archive.next()
                if member is None or member.name != bundle_metadata.METADATA_NAME or not member.isreg() \
                        or member.size > bundle_metadata.MAX_METADATA_SIZE:
                    return None
                return bundle_metadata.decode(archive.extractfile(member).read())
    except (OSError, tarfile.TarError, zstandard.ZstdError, VerificationError):
        return None
