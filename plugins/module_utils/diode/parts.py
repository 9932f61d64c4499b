# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""A bundle as files any cross-domain solution accepts: parts no larger than a limit, and a signed index.

Each part is a POSIX tar holding one slice of the bundle (a ``.tar`` passes content inspection where raw
bytes would not); the index (``.json``) lists every part's SHA-256, the bundle's size, SHA-256 and its
``.sig`` text (``.sig`` files are refused by common CDS profiles) and the co-signatures over the bundle
(``<bundle>.sigs.json``, the two-person rule), and is signed with the bundle key. On the
far side every part is proven on its own before reassembly, so a bad or missing part is named and only that
part needs sending again (with parity parts, see parity.py, up to m of them are rebuilt instead); the reassembled
bundle is then verified as a whole.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tarfile

from ansible_collections.petra.core.plugins.module_utils.atomic import write_atomically
from ansible_collections.petra.core.plugins.module_utils.diode import parity
from ansible_collections.petra.core.plugins.module_utils.diode.errors import TransferError
from ansible_collections.petra.core.plugins.module_utils.diode.tarpart import hash_file, part_tar
from ansible_collections.petra.core.plugins.module_utils.progress import or_null
from ansible_collections.petra.core.plugins.module_utils.signing import cosignature_file
from ansible_collections.petra.core.plugins.module_utils.signing import keys as signing_keys
from ansible_collections.petra.core.plugins.module_utils.signing import signatures

INDEX_KIND = "BundleParts"
INDEX_VERSION = 1
READ_SIZE = 1 << 20
TAR_OVERHEAD = 3 * tarfile.BLOCKSIZE + tarfile.RECORDSIZE  # header, padding, end blocks, record padding
MIN_PART_SIZE = 1 << 20
PAX_ROOM = 1024  # a long member name needs a PAX header of its own
SMALLEST_MAX_PART_SIZE = MIN_PART_SIZE + TAR_OVERHEAD + PAX_ROOM  # 1061376 bytes: 1 MiB of bundle plus the tar
MAX_INDEX_SIZE = 64 << 20  # an index of 30 GB in 1 MiB parts is about 10 MB; anything far larger is not one
DEFAULT_ALLOWED_EXTENSIONS = ("tar", "json")
_PART_NAME_RE = re.compile(r"\.part-\d+-of-\d+\.[^/\\]+$")
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMGT]i?B?|B)?\s*$", re.I)
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000 ** 2, "mb": 1000 ** 2, "mib": 1024 ** 2,
          "g": 1000 ** 3, "gb": 1000 ** 3, "gib": 1024 ** 3, "t": 1000 ** 4, "tb": 1000 ** 4, "tib": 1024 ** 4}


def parse_size(value):
    """Bytes from an int or text such as ``100MB`` (decimal) or ``30GiB`` (binary)."""
    if isinstance(value, int):
        return value
    match = _SIZE_RE.match(str(value))
    if not match or (match.group(2) or "").lower() not in _UNITS:
        raise TransferError("max_part_size %r is not a size such as 100MB or 30GiB" % (value,))
    return int(match.group(1)) * _UNITS[(match.group(2) or "").lower()]


def canonical(document):
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


def part_names(stem, count, extension="tar"):
    width = max(4, len(str(count)))
    return ["%s.part-%0*d-of-%0*d.%s" % (stem, width, number, width, count, extension)
            for number in range(1, count + 1)]


def index_name(stem, extension="json"):
    return "%s.parts.%s" % (stem, extension)


def index_stem(name):
    return name.rsplit(".parts.", 1)[0]


def is_index_name(name):
    """Whether a file name is one of a part index (``<stem>.parts.<ext>``), not a part or a temporary file."""
    stem, _dot, extension = name.rpartition(".")
    return bool(extension) and stem.endswith(".parts") and len(stem) > len(".parts") and \
        not _PART_NAME_RE.search(name)


def _normalised(allowed):
    return [extension.lower().lstrip(".") for extension in allowed if extension.strip(".")]


def choose_extensions(allowed):
    """(part extension, index extension) from the CDS's allow-list: a profile without ``.tar`` still gets parts.

    The part stays a tar whatever its name says; ``tar`` and ``json`` are kept where allowed, so names do not
    change for profiles that take them. The index needs a one-word extension to be found again on the far side.
    """
    allowed = _normalised(allowed)
    part = "tar" if "tar" in allowed else next((e for e in allowed if e != "json"), None)
    index = "json" if "json" in allowed else next((e for e in allowed if "." not in e), None)
    if part is None:
        raise TransferError("the CDS allows only %s files, so the parts have no extension of their own to cross "
                            "with (the index is the .json)" % (", ".join("." + a for a in allowed) or "no"),
                            hint="Add to allowed_extensions an extension the CDS profile accepts for the parts, such "
                                 "as .tar, .zst, .bin or .dat (the parts stay tar files whatever their name)")
    if index is None:
        raise TransferError("the CDS allows only %s files, so the part index has no one-word extension to cross "
                            "with" % ", ".join("." + a for a in allowed),
                            hint="Add json, or another one-word extension the CDS profile accepts, to "
                                 "allowed_extensions")
    return part, index


def check_extensions(names, allowed):
    allowed = _normalised(allowed)
    refused = [name for name in names if not any(name.lower().endswith("." + a) for a in allowed)]
    if refused:
        raise TransferError("the CDS allows only %s files, so %s cannot cross" % (
            ", ".join("." + a for a in sorted(allowed)), ", ".join(refused)),
            hint="Add the extensions the CDS profile accepts to allowed_extensions", parts=refused)


def unsafe_name(name):
    """Why a part name is not a plain file name inside the parts directory, or None when it is one."""
    if not isinstance(name, str) or not name:
        return "it is not a file name"
    if "\0" in name:
        return "it holds a NUL byte"
    if "/" in name or "\\" in name or os.path.isabs(name):
        return "it is a path, not a file name"
    if name in (".", "..") or ".." in name:
        return "it refers to a directory above ('..') or to the directory itself"
    return None


def _slice(source, size, bundle):
    """Chunks of the next ``size`` bytes of an open bundle file."""
    remaining = size
    while remaining:
        chunk = source.read(min(READ_SIZE, remaining))
        if not chunk:
            raise TransferError("the bundle %s changed while it was split" % bundle, hint="Run again")
        remaining -= len(chunk)
        yield chunk


class PartPlan:
    """How a bundle is cut: the part size, the part names and the payload ranges."""

    def __init__(self, bundle, max_part_size, stem=None, extension="tar"):
        self.bundle = bundle
        self.size = os.path.getsize(bundle)
        self.stem = stem or os.path.basename(bundle).split(".tar.zst")[0]
        limit = parse_size(max_part_size)
        if limit < SMALLEST_MAX_PART_SIZE:
            raise TransferError("max_part_size %s (%d bytes) is below the smallest part size, %d bytes (1 MiB of "
                                "bundle data plus %d bytes of tar wrapping)" % (
                                    max_part_size, limit, SMALLEST_MAX_PART_SIZE, TAR_OVERHEAD + PAX_ROOM),
                                hint="Set max_part_size to at least %d (e.g. 1040KiB or 2MB)" % SMALLEST_MAX_PART_SIZE)
        self.limit = limit
        self.payload_size = limit - TAR_OVERHEAD - PAX_ROOM
        self.count = max(1, -(-self.size // self.payload_size))
        self.names = part_names(self.stem, self.count, extension)
        for name in self.names:
            if unsafe_name(name):
                raise TransferError("the bundle file name %s gives the part name %s, which %s" % (
                    os.path.basename(bundle), name, unsafe_name(name)), hint="Rename the bundle file")

    def ranges(self):
        for number, name in enumerate(self.names):
            offset = number * self.payload_size
            yield name, offset, min(self.payload_size, self.size - offset)


def _read_signature_text(signature_path):
    with open(signature_path, "rb") as handle:
        data = handle.read(signatures.MAX_SIGNATURE_FILE + 1)
    signatures.decode_signature(data, signature_path)
    return data.decode("ascii").strip()


def _cosignatures_over(bundle, sha256_hex):
    """The co-signatures beside the bundle that are over this very file: they travel inside the signed index."""
    try:
        entries = cosignature_file.read_document(cosignature_file.default_path(bundle))
    except signing_keys.SigningError as exc:
        raise TransferError(exc.message, hint="Repair or remove the co-signature file, then send again")
    return [entry for entry in entries if entry["bundleSha256"] == sha256_hex]


def split_bundle(bundle, out_dir, signer, max_part_size, signature_path=None, allowed_extensions=None,
                 check_mode=False, parity_parts=0, progress=None):
    """Write the parts (with parity_parts, the parity parts too) and the signed index of a bundle into out_dir;
    parts already there unchanged are kept (and counted as skipped by ``progress``)."""
    progress = or_null(progress)
    if not os.path.isfile(bundle):
        raise TransferError("the bundle %s does not exist" % bundle, hint="Check 'src'")
    allowed = allowed_extensions or DEFAULT_ALLOWED_EXTENSIONS
    part_extension, index_extension = choose_extensions(allowed)
    plan = PartPlan(bundle, max_part_size, extension=part_extension)
    parity_count = parity.parity_count(parity_parts, plan.count)
    if parity_count:
        parity.require_zfec()  # before anything is written
    parity_files = parity.parity_names(plan.stem, parity_count, part_extension)
    index_file = index_name(plan.stem, index_extension)
    check_extensions(plan.names + parity_files + [index_file], allowed)
    signature_text = _read_signature_text(signature_path or bundle + ".sig")
    parts, written = [], []
    bundle_hash = hashlib.sha256()
    progress.stage("split", plan.size, plan.count, unit="parts")
    with open(bundle, "rb") as source:
        for name, offset, size in plan.ranges():
            member = "%s.%08d" % (plan.stem, offset // plan.payload_size + 1)
            header, trailer = part_tar(member, size)
            part_hash = hashlib.sha256(header)
            payload_hash = hashlib.sha256()
            for chunk in _slice(source, size, bundle):
                part_hash.update(chunk)
                payload_hash.update(chunk)
                bundle_hash.update(chunk)
            part_hash.update(trailer)
            entry = {"name": name, "member": member, "offset": offset, "size": size,
                     "partSize": len(header) + size + len(trailer), "sha256": part_hash.hexdigest(),
                     "payloadSha256": payload_hash.hexdigest()}
            parts.append(entry)
            target = os.path.join(out_dir, name)
            if os.path.isfile(target) and os.path.getsize(target) == entry["partSize"] and \
                    hash_file(target) == entry["sha256"]:
                progress.advance(size, 1, skipped=True)
                continue
            written.append(name)
            if not check_mode:
                _write_part(bundle, target, offset, size, header, trailer, entry["sha256"])
            progress.advance(size, 1)
    block = None
    if parity_count:
        block, parity_written = parity.write_parity(bundle, parts, parity_files, plan.stem, out_dir, plan.limit,
                                                    check_mode)
        written.extend(parity_written)
    index = {"apiVersion": "petra.dev/v1alpha1", "kind": INDEX_KIND,
             "formatVersion": parity.INDEX_VERSION if block else INDEX_VERSION,
             "bundle": {"name": os.path.basename(bundle), "size": plan.size, "sha256": bundle_hash.hexdigest(),
                        "signature": signature_text},
             "payloadSize": plan.payload_size, "parts": parts,
             "signer": {"keyId": signing_keys.key_id(signer.public_key())}}
    if block:
        index["parity"] = block
    cosigned = _cosignatures_over(bundle, index["bundle"]["sha256"])
    if cosigned:
        index["bundle"]["cosignatures"] = cosigned
    document = signed_document(index, signer)
    index_path = os.path.join(out_dir, index_file)
    index_changed = _index_changed(index_path, index)
    if index_changed:
        written.append(index_file)
        if not check_mode:
            text = json.dumps(document, indent=1, sort_keys=True).encode("utf-8") + b"\n"
            write_atomically(index_path, lambda handle: handle.write(text))
    return {"index": index_file, "parts": [p["name"] for p in parts], "written": written,
            "part_count": len(parts), "parity_parts": parity_files, "parity_count": parity_count,
            "bundle_sha256": index["bundle"]["sha256"], "changed": bool(written)}


def signed_document(index, signer):
    """The index file's content: the index and the signer's signature over its canonical JSON."""
    digest = hashlib.new(signer.hash_name, canonical(index)).digest()
    return {"index": index, "signature": base64.b64encode(signer.sign_digest(digest)).decode("ascii")}


def _index_changed(path, index):
    try:
        with open(path, "rb") as handle:
            return json.load(handle).get("index") != index
    except (OSError, ValueError, AttributeError):
        return True


def _write_part(bundle, target, offset, size, header, trailer, expected):
    def write(handle):
        hasher = hashlib.sha256(header)
        handle.write(header)
        with open(bundle, "rb") as source:
            source.seek(offset)
            for chunk in _slice(source, size, bundle):
                hasher.update(chunk)
                handle.write(chunk)
        hasher.update(trailer)
        handle.write(trailer)
        if hasher.hexdigest() != expected:
            raise TransferError("the bundle %s changed while it was split" % bundle, hint="Run again")
    write_atomically(target, write)


def read_index(path, public_keys):
    """The verified index of a part set; refuses an index not signed by one of the keys."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_INDEX_SIZE + 1)
        if len(data) > MAX_INDEX_SIZE:
            raise ValueError("larger than %d bytes" % MAX_INDEX_SIZE)
        document = json.loads(data)
        index, signature = document["index"], base64.b64decode(document["signature"])
    except OSError as exc:
        raise TransferError("cannot read the part index %s: %s" % (path, exc.strerror),
                            hint="The index travels with the parts; it must arrive too", parts=[os.path.basename(path)])
    except (ValueError, KeyError, TypeError) as exc:
        raise TransferError("the part index %s is damaged (%s)" % (path, exc),
                            hint="Ask the sender to send the index again", parts=[os.path.basename(path)])
    body = canonical(index)
    for key in public_keys:
        name = signing_keys.hash_name_for(key)
        if signing_keys.verify_digest(key, hashlib.new(name, body).digest(), signature):
            _refuse_unsafe_names(index, path)
            return index
    raise TransferError("the part index %s is not signed by any of the given keys" % path,
                        hint="Give the bundle signer's public key; refuse parts whose index does not verify",
                        parts=[os.path.basename(path)])


def _refuse_unsafe_names(index, path):
    """Part names are joined to the inbox: one that is not a plain file name would read (or, downloading, write)
    outside it, so the whole index is refused before any part is touched, even though its signature holds."""
    entries = index.get("parts") if isinstance(index, dict) else None
    if not isinstance(entries, list) or not all(isinstance(part, dict) for part in entries):
        raise TransferError("the part index %s is damaged (no list of parts)" % path,
                            hint="Ask the sender to send the index again", parts=[os.path.basename(path)])
    problem = parity.index_problem(index)
    if problem:
        raise TransferError("the part index %s is refused: %s" % (path, problem),
                            hint="Receive with the Petra release that sent it, or a newer one",
                            parts=[os.path.basename(path)])
    for part in parity.shares(index):
        reason = unsafe_name(part.get("name"))
        if reason:
            raise TransferError("the part index %s is refused: its part name %r is not a plain file name (%s)" % (
                path, part.get("name"), reason),
                hint="Petra never writes such an index; do not use this delivery, and find out who signed it",
                parts=[os.path.basename(path)])


def check_parts(index, directory, progress=None):
    """(missing, corrupt) part names, data parts then parity parts: every part is proven on its own, before any
    reassembly."""
    progress = or_null(progress)
    shares = parity.shares(index)
    progress.stage("check parts", sum(part["partSize"] for part in shares), len(shares), unit="parts")
    missing, corrupt = [], []
    for part in shares:
        path = os.path.join(directory, part["name"])
        if not os.path.isfile(path):
            missing.append(part["name"])
        elif os.path.getsize(path) != part["partSize"] or hash_file(path) != part["sha256"]:
            corrupt.append(part["name"])
        progress.advance(part["partSize"], 1)
    return missing, corrupt


def reassemble(index, directory, dest, check_mode=False, progress=None):
    """Stream the payloads of verified parts into dest (temp file, then rename), and write dest.sig (and the
    co-signatures the index carries, as dest.sigs.json)."""
    progress = or_null(progress)

    def write(handle):
        total = hashlib.sha256()
        for part in index["parts"]:
            path = os.path.join(directory, part["name"])
            with open(path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as archive:
                member = archive.next()
                if member is None or member.name != part["member"] or not member.isreg() or \
                        member.size != part["size"]:
                    raise TransferError("the part %s does not hold %s" % (part["name"], part["member"]),
                                        parts=[part["name"]])
                stream = archive.extractfile(member)
                payload = hashlib.sha256()
                while True:
                    chunk = stream.read(READ_SIZE)
                    if not chunk:
                        break
                    payload.update(chunk)
                    total.update(chunk)
                    handle.write(chunk)
                    progress.advance(len(chunk))
                if payload.hexdigest() != part["payloadSha256"]:
                    raise TransferError("the part %s changed while it was read" % part["name"], parts=[part["name"]])
                progress.advance(items=1)
        if total.hexdigest() != index["bundle"]["sha256"]:
            raise TransferError("the reassembled bundle does not hash to the index's %s" % index["bundle"]["sha256"])

    if check_mode:
        return
    progress.stage("reassemble", index["bundle"]["size"], len(index["parts"]), unit="parts")
    write_atomically(dest, write)
    write_atomically(dest + ".sig", lambda handle: handle.write(index["bundle"]["signature"].encode("ascii")))
    carried = cosignature_bytes(index)
    if carried is not None:
        write_atomically(cosignature_file.default_path(dest), lambda handle: handle.write(carried))


def cosignature_bytes(index):
    """The co-signature file the index carries, or None."""
    carried = index["bundle"].get("cosignatures")
    return cosignature_file.encode_document(carried) if carried else None
