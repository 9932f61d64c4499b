# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Evidence files: every answer an assessment reads is kept as a file under ``evidence/`` with its SHA-256.

A source that cannot be read is kept too, as a missing piece with the error that says why: the checks that needed
it report "not collected" instead of passing or disappearing. Secrets never reach a file: callers pass projections
(pods without their environment) or redacted documents (Ignition without the k3s token, see ``redact_text``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re

from ansible_collections.petra.core.plugins.module_utils.atomic import write_atomically
from ansible_collections.petra.core.plugins.module_utils.errors import PetraError
from ansible_collections.petra.core.plugins.module_utils.evidence.errors import EvidenceError

EVIDENCE_DIR = "evidence"
_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*\.json$")
# KEY=value and key: value lines whose name says they hold a secret (k3s tokens in /etc/default/k3s, config.yaml).
_SECRET_LINE = re.compile(r"(?im)^(\s*[\w.-]*(?:token|password|passwd|secret|private[_-]?key)[\w.-]*\s*[=:]\s*)(\S.*)$")
REDACTED = "<redacted by petra>"


def canonical_bytes(document):
    """The bytes an evidence file holds: sorted keys, one space indent, UTF-8, a final newline (stable across runs)."""
    return (json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def redact_text(text):
    """``text`` with the values of secret-looking lines replaced; (text, whether anything was replaced)."""
    redacted, count = _SECRET_LINE.subn(lambda match: match.group(1) + REDACTED, text)
    return redacted, count > 0


class Evidence:
    """One piece of evidence: a file (``path`` relative to the assessment directory, ``sha256``), or the reason it
    could not be collected (``error``)."""

    __slots__ = ("key", "title", "path", "sha256", "size", "data", "error")

    def __init__(self, key, title, data=None, path=None, sha256=None, size=None, error=None):
        self.key, self.title, self.data = key, title, data
        self.path, self.sha256, self.size, self.error = path, sha256, size, error

    @property
    def collected(self):
        return self.error is None

    def summary(self):
        if self.error is not None:
            return {"key": self.key, "title": self.title, "error": self.error}
        return {"key": self.key, "title": self.title, "path": self.path, "sha256": self.sha256, "size": self.size}


class EvidenceStore:
    """Evidence of one assessment, written below ``root`` (a staging directory until the run is complete)."""

    def __init__(self, root):
        self.root = root
        self.items = {}

    def save(self, key, title, document):
        if not _KEY_RE.match(key):
            raise EvidenceError("evidence key %r is not a lowercase relative .json path" % key, reason="internal")
        data = canonical_bytes(document)
        relative = "%s/%s" % (EVIDENCE_DIR, key)
        path = os.path.join(self.root, *relative.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_atomically(path, lambda handle: handle.write(data))
        item = Evidence(key, title, document, relative, hashlib.sha256(data).hexdigest(), len(data))
        self.items[key] = item
        return item

    def missing(self, key, title, error):
        item = Evidence(key, title, error=error)
        self.items[key] = item
        return item

    def gather(self, key, title, read):
        """Save what ``read()`` returns; a PetraError it raises makes the piece missing, with its message."""
        try:
            document = read()
        except PetraError as exc:
            return self.missing(key, title, str(exc))
        return self.save(key, title, document)

    def get(self, key):
        return self.items.get(key) or Evidence(key, key, error="not collected in this run")

    def files(self):
        return sorted((item for item in self.items.values() if item.collected), key=lambda item: item.path)
