# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Entries taken out of a bundle during its one verifying read (the Sigstore trusted roots for admission).

An entry is only known good once the whole bundle has verified: its own digest is checked after it streamed past,
the signature over the file only at the end. So each entry is written to a temporary file beside its target as it
streams, and the files take their names together, atomically, only when the caller commits after the verification
(and whatever else decides acceptance) succeeded; a refused bundle leaves no file behind.
"""

from __future__ import annotations

import hashlib
import os

from ansible_collections.petra.core.plugins.module_utils.atomic import PendingFile, commit
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError
from ansible_collections.petra.core.plugins.module_utils.custody.keyless import ENTRY_PREFIX as TRUSTED_ROOT_PREFIX

READ_SIZE = 1 << 20


def file_digest(path):
    """``sha256:<hex>`` of a file, or None when there is no regular file at path."""
    if not os.path.isfile(path):
        return None
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(READ_SIZE), b""):
            hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


def is_trusted_root(name):
    return name.startswith(TRUSTED_ROOT_PREFIX) and "/" not in name[len("sigstore/"):]


class EntryExtractor:
    """A verification's ``on_entry`` hook that writes the selected entries into ``directory`` (each under its base
    name) while they stream past, and passes the same bytes on to an inner hook (the review collector).

    A file already holding exactly the entry is left alone, so that extracting again is no change. In check mode
    nothing is written: the result says what would change. commit() only after the verification succeeded;
    discard() otherwise."""

    def __init__(self, directory, select=is_trusted_root, check_mode=False, mode=0o644):
        self.directory = os.path.abspath(directory)
        self.select = select
        self.check_mode = check_mode
        self.mode = mode
        self.inner = None
        self.paths = {}  # entry name -> target path, for every selected entry seen
        self.changed = {}  # entry name -> whether its file is (or would be) written
        self._pending = []
        self._written = {}  # entry name -> (digest of the bytes written, digest the metadata declares)
        self._made_directory = False

    def around(self, inner):
        """This hook with ``inner`` seeing every entry too."""
        self.inner = inner
        return self

    def __call__(self, name, declared, chunks):
        if not self.select(name):
            if self.inner is not None:
                self.inner(name, declared, chunks)
            return
        path = os.path.join(self.directory, os.path.basename(name))
        if path in self.paths.values():
            raise BundleError("two entries of the bundle would be extracted to %s (%s)" % (path, name),
                              hint="Report this bundle: its trusted root entries must have distinct names")
        self.paths[name] = path
        self.changed[name] = file_digest(path) != declared["digest"]
        if self.check_mode or not self.changed[name]:
            if self.inner is not None:
                self.inner(name, declared, chunks)
            return
        pending = self._pending_file(path)
        hasher = hashlib.sha256()

        def tee():
            for chunk in chunks:
                try:
                    pending.handle.write(chunk)
                except OSError as exc:
                    raise self._write_error(exc)
                hasher.update(chunk)
                yield chunk

        stream = tee()
        if self.inner is not None:
            self.inner(name, declared, stream)
        for _chunk in stream:
            pass
        self._written[name] = ("sha256:" + hasher.hexdigest(), declared["digest"])

    def _pending_file(self, path):
        try:
            if not os.path.isdir(self.directory):
                os.makedirs(self.directory, mode=0o755)
                self._made_directory = True
            pending = PendingFile(path, self.mode)
        except OSError as exc:
            raise self._write_error(exc)
        self._pending.append(pending)
        return pending

    def _write_error(self, exc):
        return BundleError("cannot write the bundle's trusted roots into %s: %s" % (self.directory, exc.strerror),
                           hint="extract_trusted_roots is a directory on the controller the task may write to; "
                                "nothing was extracted", reason="extract")

    def commit(self):
        """Put every written entry in place (after the verification succeeded); returns whether any file changed."""
        for name, (written, declared) in self._written.items():
            if written != declared:
                # The walker refuses such an entry before this is called; never let a caller commit it regardless.
                self.discard()
                raise BundleError("the entry %s hashed to %s, not %s: nothing was extracted" % (
                    name, written, declared), reason="altered")
        if self._pending:
            try:
                commit(*self._pending)
            except OSError as exc:
                raise self._write_error(exc)
            self._pending = []
        return any(self.changed.values())

    def discard(self):
        """Remove every temporary file (and the directory, when this made it and it is empty)."""
        for pending in self._pending:
            pending.discard()
        self._pending = []
        if self._made_directory:
            try:
                os.rmdir(self.directory)
            except OSError:
                pass
            self._made_directory = False
