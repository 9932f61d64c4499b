# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The bundle on disk: the planned entries streamed once through the archive writer (archive.py) into a file beside
``dest``, its signature made and checked, and both committed as one pair with atomic.py; and the check that an
existing pair is a valid signature by the same key.
"""

from __future__ import annotations

import hashlib
import os

from ansible_collections.petra.core.plugins.module_utils.atomic import PendingFile, commit
from ansible_collections.petra.core.plugins.module_utils.bundle import metadata as bundle_metadata
from ansible_collections.petra.core.plugins.module_utils.bundle.archive import DEFAULT_LEVEL, ArchiveWriter
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError
from ansible_collections.petra.core.plugins.module_utils.bundle.prefetch import prefetched
from ansible_collections.petra.core.plugins.module_utils.oci.errors import OCIError
from ansible_collections.petra.core.plugins.module_utils.progress import or_null
from ansible_collections.petra.core.plugins.module_utils.signing import keys as signing_keys
from ansible_collections.petra.core.plugins.module_utils.signing import signatures


def write_bundle(plan, dest, signature_path, signer, mtime, level=DEFAULT_LEVEL, mode=0o644, progress=None):
    """Write archive and signature to temporary files beside their targets, check the signature, then commit both
    (synced, renamed, their directories synced). ``progress`` (progress.Progress) counts entries and their bytes."""
    directory = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(directory):
        raise BundleError("the directory %s for dest does not exist" % directory, hint="Create it first")
    archive = signature = None
    try:
        archive = PendingFile(dest, mode)
        hash_names = sorted({"sha256", signer.hash_name})
        digests, size = write_archive(plan, archive.handle, mtime, hash_names, level, progress)
        der = signer.sign_digest(digests[signer.hash_name])
        if not signing_keys.verify_digest(signer.public_key(), digests[signer.hash_name], der):
            raise BundleError("the signature %s returned does not verify with its own public key" % signer.description,
                              hint="The signing backend is misbehaving; nothing was written")
        signature = PendingFile(signature_path, mode)
        signature.handle.write(signatures.encode_signature(der))
        # Both are synced before either is renamed: a crash between the renames leaves a bundle that fails
        # verification until it is rebuilt, never a partial file under either name.
        commit(archive, signature)
        return {"sha256": digests["sha256"].hex(), "size": size}
    except BaseException:
        for item in (archive, signature):
            if item is not None:
                item.discard()
        raise


def write_archive(plan, handle, mtime, hash_names, level=DEFAULT_LEVEL, progress=None):
    """The planned entries, metadata first, streamed once through the archive writer into ``handle``; returns
    ({hash name: raw digest} of the compressed bytes, their size). Every entry is checked against its declared digest
    and size as it is written; on any failure the writer is abandoned and the exception raised."""
    progress = or_null(progress)
    writer = ArchiveWriter(handle, mtime, hash_names=hash_names, level=level)
    writer.add_bytes(bundle_metadata.METADATA_NAME, bundle_metadata.encode(plan.metadata))
    try:
        entries = plan.entries()
        progress.stage("write", sum(blob.size for _name, blob in entries), len(entries), unit="entries")
        for name, blob in entries:
            try:
                writer.add_chunks(name, blob.size, blob.digest, counted(prefetched(blob.chunks()), progress))
                progress.advance(items=1)
            except OCIError as exc:
                raise BundleError("fetching %s for the bundle failed: %s" % (blob.digest, exc.message),
                                  hint=exc.hint)
        digests = writer.close()
    except BaseException:
        writer.abandon()
        raise
    return digests, writer.compressed_size


def counted(chunks, progress):
    for chunk in chunks:
        progress.advance(len(chunk))
        yield chunk


def file_digests(path, hash_names):
    """{hash name: raw digest} of a file, read once for all of them."""
    hashers = {name: hashlib.new(name) for name in hash_names}
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(1 << 20)
            if not chunk:
                break
            for hasher in hashers.values():
                hasher.update(chunk)
    return {name: hasher.digest() for name, hasher in hashers.items()}


def existing_signature_valid(dest, signature_path, signer):
    """True when dest's .sig is a valid signature over dest by the signer's key."""
    if not (os.path.isfile(dest) and os.path.isfile(signature_path)):
        return False
    try:
        with open(signature_path, "rb") as handle:
            der = signatures.decode_signature(handle.read(signatures.MAX_SIGNATURE_FILE + 1), signature_path)
    except (OSError, signing_keys.SigningError):
        return False
    digests = file_digests(dest, [signer.hash_name])
    return signing_keys.verify_digest(signer.public_key(), digests[signer.hash_name], der)
