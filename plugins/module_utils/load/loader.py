# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Loading a bundle into a registry: verify, then push, so that an interruption at any point is harmless.

1. One pass proves the signature(s), threshold and trust state over the SHA-256 of the whole compressed file, checks
   the archive's structure and captures the manifests (checked against their digests) to plan the push; the large
   entries are not hashed here, which makes this pass cost about one SHA-256 of the file.
2. The registry is asked what it already has (tags, blobs), in parallel; a delta's omitted blobs must all be there.
3. One streaming pass (stream.py) decompresses the archive, checks every entry against the signed metadata and
   uploads the missing blobs as they stream past, several at a time; an upload is closed only once its entry is
   proven, and an entry that is not stops the load. Blobs needed in several repositories are mounted; uploads that
   broke off go again in a further pass.
4. Only then are manifests put, children before parents, and tags last, so a tag never points at anything missing
   or unproven, whenever the run stops.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import threading
import time

from ansible_collections.petra.core.plugins.module_utils.bundle.errors import VerificationError
from ansible_collections.petra.core.plugins.module_utils.bundle.reader import OBTAIN_AGAIN
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import verify
from ansible_collections.petra.core.plugins.module_utils.load import delta as load_delta
from ansible_collections.petra.core.plugins.module_utils.load.errors import LoadError
from ansible_collections.petra.core.plugins.module_utils.load.stream import PushPass
from ansible_collections.petra.core.plugins.module_utils.custody.attached import referrer_descriptor
from ansible_collections.petra.core.plugins.module_utils.custody.image_signatures import tag_for
from ansible_collections.petra.core.plugins.module_utils.load.targets import (
    looks_like_manifest,
    plan_custody_push,
    plan_push,
)
from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes
from ansible_collections.petra.core.plugins.module_utils.oci.errors import OCIError, RegistryError, UploadInterrupted
from ansible_collections.petra.core.plugins.module_utils.oci.registry import MAX_MANIFEST_BYTES
from ansible_collections.petra.core.plugins.module_utils.oci.writer import RegistryWriter
from ansible_collections.petra.core.plugins.module_utils.progress import or_null


class _Writers:
    """One RegistryWriter per thread: HTTP sessions are not shared across threads."""

    def __init__(self, client_factory):
        self._factory = client_factory
        self._local = threading.local()

    def get(self):
        writer = getattr(self._local, "writer", None)
        if writer is None:
            writer = self._local.writer = RegistryWriter(self._factory())
        return writer


class LoadReport:
    """Counters, updated from worker threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self.blobs_pushed = 0
        self.blobs_mounted = 0
        self.blobs_skipped = 0
        self.bytes_pushed = 0
        self.bytes_skipped = 0
        self.manifests_pushed = 0
        self.tags_pushed = 0

    def add(self, **counts):
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


class BundleLoader:
    """Loads one verified bundle into one target registry."""

    STREAM_PASSES = 3
    BROKEN_IN_A_ROW = 2  # blob uploads that break off one after another before a pass stops trying

    def __init__(self, path, public_keys, target, client_factory, signature_path=None, parallel=4,
                 verify_options=None, admit=None, progress=None):
        self.path = path
        # A ``verify`` stage, then a ``push`` stage over the distinct blobs: each counted once, as sent, or as
        # skipped when the registry had it (or mounted it from another repository).
        self.progress = or_null(progress)
        self._counted = set()
        self._count_lock = threading.Lock()
        self._sizes = {}
        self.public_keys = public_keys
        self.signature_path = signature_path
        # Keyword options of the verification (threshold, co-signatures), and a check of the verified bundle
        # (admit(verification, metadata), e.g. the trust state's rollback rule) run before the registry is touched.
        self.verify_options = dict(verify_options or {})
        self.admit = admit
        self.verification = None
        self.target = target
        self.writers = _Writers(client_factory)
        self.parallel = max(1, parallel)
        self.metadata = None
        self.items = []
        self.custody_items = []
        self._owners = {}  # blob digest -> what needs it ("image <ref>", "file <name>"), named in errors

    # -- pass 1 --------------------------------------------------------------------------------------
    def _verify(self):
        """The signature pass: the entries' digests are left to the push pass, except the manifests', which plan it."""
        captured = {}

        def capture(name, entry, chunks):
            if name.startswith("blobs/") and entry["size"] <= MAX_MANIFEST_BYTES:
                data = b"".join(chunks)
                if looks_like_manifest(data):
                    if "sha256:" + hashlib.sha256(data).hexdigest() != entry["digest"]:
                        raise VerificationError("the archive entry %r was altered: it does not hash to %s, as the "
                                                "signed metadata says" % (name, entry["digest"]), hint=OBTAIN_AGAIN,
                                                reason="altered", entry=name)
                    captured[entry["digest"]] = data

        found = verify(self.path, self.public_keys, self.signature_path, on_entry=capture, progress=self.progress,
                       hash_entries=False, **self.verify_options)
        return found.result, found.metadata, captured

    # -- registry state ----------------------------------------------------------------------------
    def _map(self, function, items):
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.parallel) as pool:
            return list(pool.map(function, items))

    def _state(self, items):
        """(items whose tag already points at the right digest, {(repository, blob): present?})."""
        def tag_ok(item):
            reference = item.tag or item.digest
            return self.writers.get().manifest_digest(item.repository, reference) == item.digest

        done = self._map(tag_ok, items)
        pending = [item for item, ok in zip(items, done) if not ok]
        pairs = sorted({(item.repository, digest) for item in pending for digest in item.blobs})
        present = self._map(lambda pair: self.writers.get().blob_exists(*pair), pairs)
        return pending, dict(zip(pairs, present))

    # -- pass 2 (and 3) ----------------------------------------------------------------------------
    def _upload(self, pending, presence, report):
        sizes = {}
        wanted = {}
        for item in pending:
            for digest, size in item.blobs.items():
                sizes[digest] = size
                self._owners.setdefault(digest, set()).add("%s %s" % (item.kind, item.source))
                if not presence[(item.repository, digest)]:
                    wanted.setdefault(digest, set()).add(item.repository)
        holder = {}
        for (repository, digest), present in sorted(presence.items()):
            if present:
                holder.setdefault(digest, repository)
        for digest, size in sizes.items():
            if digest not in wanted:
                report.add(blobs_skipped=1, bytes_skipped=size)
                self._count(digest, size, skipped=True)
        unmounted = {}
        for digest, repositories in sorted(wanted.items()):
            if digest in holder:
                rest = self._mount(digest, repositories, holder[digest], report)
                if rest:
                    unmounted[digest] = rest
        to_stream = {digest: sorted(repositories)[:1] for digest, repositories in wanted.items() if digest not in holder}
        uploaded = self._stream(to_stream, report)
        for digest, (source, size) in uploaded.items():
            rest = self._mount(digest, set(wanted[digest]) - {source}, source, report)
            if rest:
                unmounted[digest] = rest
        if unmounted:
            load_delta.refuse_unmountable(self.metadata, unmounted, self.target)
            # The registry would not mount: send those bytes again, to every repository still missing them.
            self._stream({digest: sorted(repositories) for digest, repositories in unmounted.items()}, report)

    def _mount(self, digest, repositories, source, report):
        """Mount a blob into repositories from source; returns those the registry would not mount into."""
        refused = set()
        for repository in sorted(repositories):
            if repository == source:
                continue
            try:
                mounted = self.writers.get().mount(repository, digest, source)
            except UploadInterrupted:
                mounted = False  # the streaming pass for refused mounts sends the blob there instead
            if mounted:
                report.add(blobs_mounted=1)
                self._count(digest, 0, skipped=True)
            else:
                refused.add(repository)
        return refused

    def _stream(self, targets, report):
        """Passes over the archive uploading each blob in ``targets`` (digest -> repositories) as it streams by;
        blobs whose upload broke off go again in the next pass, up to STREAM_PASSES."""
        uploaded = {}
        if not targets:
            return uploaded

        def pushed(digest, size, copies):
            report.add(blobs_pushed=copies, bytes_pushed=size * copies)
            self._count(digest, size)

        limit = self.writers.get().monolithic_limit
        for _pass in range(self.STREAM_PASSES):
            done, broken = PushPass(self.path, self.metadata, targets, self.writers, self.parallel, pushed,
                                    self.BROKEN_IN_A_ROW, limit).run()
            uploaded.update(done)
            if not broken:
                return uploaded
            targets = {digest: targets[digest] for digest in broken}
        digest, first = next(iter(broken.items()))
        owners = ", ".join(sorted(self._owners.get(digest) or ["the bundle"]))
        more = " (and %d more blobs)" % (len(broken) - 1) if len(broken) > 1 else ""
        raise LoadError(
            "registry %s stayed out of reach: blob %s of %s%s did not get through in %d passes over the bundle; the "
            "last attempt: %s" % (self.target.host, digest, owners, more, self.STREAM_PASSES, first.message),
            hint="Check the network path to %s and the registry's storage, then run the load again: it resumes, "
                 "skipping the blobs already stored" % self.target.host)

    def _count(self, digest, size, skipped=False):
        """Advance the push stage by a blob the first time it is in place (later mounts of it add nothing). A mount
        of a blob not yet counted adds its size as skipped: no byte of it was sent."""
        with self._count_lock:
            if digest in self._counted:
                return
            self._counted.add(digest)
        self.progress.advance(size or self._sizes.get(digest, 0), 1, skipped=skipped)

    def _start_push(self, items, pending, report):
        """The push stage over every distinct blob of the bundle's items; the blobs of items already in place in the
        registry are skipped from the start, in the result too, so that a second load reads as skipped."""
        self._sizes = {digest: size for item in items for digest, size in item.blobs.items()}
        self.progress.stage("push", sum(self._sizes.values()), len(self._sizes), unit="blobs")
        needed = {digest for item in pending for digest in item.blobs}
        for digest, size in sorted(self._sizes.items()):
            if digest not in needed:
                report.add(blobs_skipped=1, bytes_skipped=size)
                self._count(digest, size, skipped=True)

    def _push_manifests(self, pending, manifests, report):
        def push(item):
            writer = self.writers.get()
            for digest, media_type in item.manifests:
                if writer.manifest_digest(item.repository, digest) != digest:
                    try:
                        writer.put_manifest(item.repository, digest, manifests[digest], media_type)
                    except RegistryError as exc:
                        if "MANIFEST_BLOB_UNKNOWN" in exc.message and media_type in mediatypes.INDEX_TYPES:
                            raise LoadError(
                                "registry %s refuses the index %s of %s because the bundle carries only some of its "
                                "platforms, and this registry requires every manifest an index lists" % (
                                    self.target.host, digest, item.source),
                                hint="Build the bundle without 'platforms' for this image (the index keeps its "
                                     "digest only with all its platforms), or load into a registry that accepts "
                                     "partial indexes")
                        raise
                    report.add(manifests_pushed=1)
            if item.tag:
                writer.put_manifest(item.repository, item.tag, manifests[item.digest], item.media_type)
                report.add(tags_pushed=1)

        self._map(push, pending)

    # -- the whole load ----------------------------------------------------------------------------
    def run(self, check_mode=False):
        started = time.monotonic()
        verification, metadata, manifests = self._verify()
        self.verification = verification
        self.metadata = metadata
        if self.admit is not None:
            self.admit(verification, metadata)
        items = self.items = plan_push(metadata, manifests, self.target)
        custody = self.custody_items = plan_custody_push(metadata, manifests, self.target, items)
        report = LoadReport()
        try:
            pending, presence = self._state(items + custody)
            # A delta's omitted blobs must all be in the registry already: refused here, before any push.
            load_delta.check_present(metadata, pending, presence, items + custody,
                                     lambda *pair: self.writers.get().blob_exists(*pair), self.target)
            self._start_push(items + custody, pending, report)
            if check_mode:
                missing = {digest for (repository, digest), present in presence.items() if not present}
                report.blobs_pushed = len(missing)
            elif pending:
                self._upload(pending, presence, report)
                # Images first; what is attached to them (signatures, referrers) only once they are in place.
                self._push_manifests([item for item in pending if item.subject is None], manifests, report)
                self._push_manifests([item for item in pending if item.subject is not None], manifests, report)
            indexed = self._index_referrers(custody, manifests, check_mode, report)
        except OCIError as exc:
            raise LoadError("loading into %s failed: %s" % (self.target, exc.message),
                            hint=(exc.hint + ". " if exc.hint else "") +
                            "What was pushed is complete; running again continues from there")
        result = self._result(verification, metadata, items, pending, report, started, check_mode)
        pending_ids = {id(item) for item in pending}
        result["signatures"] = [{"kind": item.kind, "source": item.source, "target": item.target(self.target.host),
                                 "digest": item.digest, "pushed": id(item) in pending_ids} for item in custody]
        result["referrer_tags"] = indexed
        result["changed"] = result["changed"] or bool(indexed)
        self.progress.finish()
        return result

    def _index_referrers(self, custody, manifests, check_mode, report):
        """On registries without the OCI 1.1 referrers API, list the carried referrers in the referrers tag schema
        index (``sha256-<hex>``), merging with what is there; returns the tags written (or to write)."""
        by_subject = {}
        for item in custody:
            if item.kind == "referrer":
                by_subject.setdefault((item.repository, item.subject), []).append(item)
        written = []
        for (repository, subject), referrers in sorted(by_subject.items()):
            client = self.writers.get().client
            if client.referrers(repository, subject) is not None:
                continue  # the registry indexes referrers itself from their subject
            tag = tag_for(subject)
            found = client.get_manifest(repository, tag, allow_missing=True)
            index = json.loads(found[0]) if found is not None and found[1] == mediatypes.OCI_INDEX else \
                {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": []}
            listed = {descriptor.get("digest") for descriptor in index.get("manifests") or []}
            missing = [referrer_descriptor(manifests[item.digest], item.media_type, item.digest)
                       for item in referrers if item.digest not in listed]
            if not missing:
                continue
            written.append("%s/%s:%s" % (self.target.host, repository, tag))
            if not check_mode:
                index["manifests"] = list(index.get("manifests") or []) + missing
                self.writers.get().put_manifest(repository, tag, json.dumps(index, separators=(",", ":")).encode(),
                                                mediatypes.OCI_INDEX)
                report.add(tags_pushed=1)
        return written

    def _result(self, verification, metadata, items, pending, report, started, check_mode):
        pending_ids = {id(item) for item in pending}
        return {
            "changed": bool(pending),
            "verified": True,
            "key_id": verification["key_id"],
            "name": metadata["name"],
            "version": metadata["version"],
            "registry": str(self.target),
            "images": [{"source": item.source, "target": item.target(self.target.host), "digest": item.digest,
                        "pushed": id(item) in pending_ids} for item in items if item.kind == "image"],
            "artifacts": [{"kind": item.kind, "source": item.source, "target": item.target(self.target.host),
                           "digest": item.digest, "pushed": id(item) in pending_ids}
                          for item in items if item.kind != "image"],
            "blobs": {"pushed": report.blobs_pushed, "mounted": report.blobs_mounted, "skipped": report.blobs_skipped},
            "bytes": {"pushed": report.bytes_pushed, "skipped": report.bytes_skipped},
            "manifests_pushed": report.manifests_pushed,
            "tags_pushed": report.tags_pushed,
            "check_mode": check_mode,
            "duration": round(time.monotonic() - started, 3),
        }
