# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Parity parts: m erasure-coded parts beside the k data parts, so that any k intact parts of the k+m rebuild the
others on the far side of a one-way link, where nothing can be asked for again.

The code is zfec's systematic Reed-Solomon code over GF(2^8) (docs/diode.md gives its generator matrix for other
implementations). Share i (0 <= i < k) is the payload of data part i+1, padded with zeros to ``blockSize``; share
k+j is the payload of parity part j+1. Being systematic, the data parts cross unchanged: a receiver without
parity support still reassembles them. The code works byte by byte (byte t of a parity share depends only on byte
t of each data share), so both sides stream stripe by stripe, a block of each share at a time, and memory stays
at one stripe of every share whatever the bundle size; the stripe size is not part of the format.
"""

from __future__ import annotations

import hashlib
import os
import re

from ansible_collections.petra.core.plugins.module_utils.atomic import PendingFile, commit
from ansible_collections.petra.core.plugins.module_utils.diode.errors import TransferError
from ansible_collections.petra.core.plugins.module_utils.diode.tarpart import hash_file, part_tar, payload_offset

SCHEME = "zfec"
INDEX_VERSION = 2  # the index version that carries a parity block; an index without parity stays version 1
MAX_SHARES = 256  # a code over GF(2^8) has at most 256 shares: data and parity parts together
STRIPE_MEMORY = 32 << 20  # one stripe of every share, together
MAX_STRIPE = 1 << 20
MIN_STRIPE = 64 << 10
ZFEC_REQUIREMENT = "zfec>=1.5,<2"
_COUNT_RE = re.compile(r"^\s*(\d+)\s*(%?)\s*$")


def parity_count(value, data_parts):
    """m from ``parity_parts``: a number of parts, or a percentage of the k data parts rounded up (25% of 8 is 2,
    10% of 8 is 1)."""
    if value is None or value == "":
        return 0
    match = None if isinstance(value, bool) else _COUNT_RE.match(str(value))
    if not match:
        raise TransferError("parity_parts %r is neither a number of parts nor a percentage of the data parts" % (value,),
                            hint="Set parity_parts to a number such as 2, or a percentage such as 25%")
    number = int(match.group(1))
    count = -(-data_parts * number // 100) if match.group(2) else number
    if count and data_parts + count > MAX_SHARES:
        raise TransferError("the bundle makes %d data parts and parity_parts %s asks for %d parity parts: %d in all, "
                            "and the erasure code (over GF(2^8)) takes at most %d" % (
                                data_parts, value, count, data_parts + count, MAX_SHARES),
                            hint="Raise max_part_size so that the bundle makes fewer parts, or lower parity_parts")
    return count


def require_zfec():
    """The zfec module, imported only when parity is used: a collection without parity needs no zfec."""
    try:
        import zfec  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise TransferError("parity parts need the Python package zfec on the controller, and it is not installed",
                            hint="Install %s (see the collection's requirements.txt) into the Python that runs "
                                 "Ansible on the controller; without it, send with parity_parts: 0, or have every "
                                 "lost part sent again" % ZFEC_REQUIREMENT) from None
    return zfec


def parity_names(stem, count, extension):
    width = max(4, len(str(count)))
    return ["%s.parity-%0*d-of-%0*d.%s" % (stem, width, number, width, count, extension)
            for number in range(1, count + 1)]


def member_name(stem, number):
    # As long as a data part's member (``<stem>.%08d``): a parity part's tar is then exactly a full data part's size.
    return "%s.p%07d" % (stem, number)


def shares(index):
    """Every part of an index as a share of the code: the data parts (shares 0..k-1), then the parity parts."""
    block = index.get("parity")
    return list(index["parts"]) + (list(block["parts"]) if isinstance(block, dict) else [])


def stripe_size(count):
    size = STRIPE_MEMORY // max(1, count)
    return max(MIN_STRIPE, min(MAX_STRIPE, size - size % 4096))


def _share_block(fd, start, size, offset, length):
    """Bytes [offset, offset + length) of a share whose ``size`` real bytes start at ``start`` in fd, padded with
    zeros past its end."""
    real = max(0, min(length, size - offset))
    data = os.pread(fd, real, start + offset) if real else b""
    if len(data) != real:
        raise TransferError("a file was cut short while its parity was computed", hint="Run again")
    return data + bytes(length - real) if real < length else data


class _Output:
    """One part being written (or, in check mode, only hashed) through a temporary file beside its path."""

    def __init__(self, path, header, trailer, check_mode):
        self.path = path
        self.trailer = trailer
        self.pending = None if check_mode else PendingFile(path)
        self.part = hashlib.sha256()
        self.payload = hashlib.sha256()
        self.size = 0
        self._out(header)

    def _out(self, data):
        self.part.update(data)
        self.size += len(data)
        if self.pending is not None:
            self.pending.handle.write(data)

    def write(self, block):
        self.payload.update(block)
        self._out(block)

    def close(self):
        self._out(self.trailer)

    def discard(self):
        if self.pending is not None:
            self.pending.discard()


def _discarding(outputs):
    for output in outputs:
        output.discard()


def write_parity(bundle, data_parts, names, stem, out_dir, limit, check_mode=False):
    """(the index's parity block, the parity part names written): m parity parts computed from the bundle's slices
    stripe by stripe; a part already in out_dir with the same content is kept."""
    zfec = require_zfec()
    k, count = len(data_parts), len(names)
    block_size = max(part["size"] for part in data_parts)
    wanted = tuple(range(k, k + count))
    encoder = zfec.Encoder(k, k + count)
    stripe = stripe_size(k + count)
    outputs, entries = [], []
    fd = os.open(bundle, os.O_RDONLY)
    try:
        before = os.fstat(fd)
        for number, name in enumerate(names):
            member = member_name(stem, number + 1)
            header, trailer = part_tar(member, block_size)
            if len(header) + block_size + len(trailer) > limit:
                raise TransferError("the parity part %s would be %d bytes, over max_part_size (%d bytes)" % (
                    name, len(header) + block_size + len(trailer), limit), hint="Use a shorter bundle file name")
            entries.append({"name": name, "member": member, "share": k + number, "size": block_size})
            outputs.append(_Output(os.path.join(out_dir, name), header, trailer, check_mode))
        for offset in range(0, block_size, stripe):
            length = min(stripe, block_size - offset)
            blocks = [_share_block(fd, part["offset"], part["size"], offset, length) for part in data_parts]
            for output, block in zip(outputs, encoder.encode(blocks, wanted)):
                output.write(block)
        after = os.fstat(fd)
        # The data parts were hashed in the pass before this one; a bundle rewritten in between would give parity
        # that does not match them. A receiver proves every rebuilt part against the index, so such parity could
        # never rebuild wrong data, but it would fail the one time it is needed: refuse it here.
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            raise TransferError("the bundle %s changed while its parity was computed" % bundle, hint="Run again")
        for output in outputs:
            output.close()
    except BaseException:
        _discarding(outputs)
        raise
    finally:
        os.close(fd)
    written = []
    for entry, output in zip(entries, outputs):
        entry.update(partSize=output.size, sha256=output.part.hexdigest(), payloadSha256=output.payload.hexdigest())
        if os.path.isfile(output.path) and os.path.getsize(output.path) == output.size and \
                hash_file(output.path) == entry["sha256"]:
            output.discard()
            continue
        written.append(entry["name"])
        if output.pending is not None:
            commit(output.pending)
    return {"scheme": SCHEME, "k": k, "m": count, "blockSize": block_size, "parts": entries}, written


def index_problem(index):
    """Why an index's version or parity block cannot be used, or None."""
    version = index.get("formatVersion", 1)
    block = index.get("parity")
    if version not in (1, INDEX_VERSION) or isinstance(version, bool):
        return "its formatVersion %r is not one this Petra reads (1, or %d with parity)" % (version, INDEX_VERSION)
    if version == 1:
        return "a formatVersion 1 index carries no parity block" if block is not None else None
    if not isinstance(block, dict) or not isinstance(block.get("parts"), list) or \
            not all(isinstance(part, dict) for part in block["parts"]):
        return "a formatVersion 2 index needs a parity block with a list of parts"
    if block.get("scheme") != SCHEME:
        return "its parity scheme %r is not one this Petra decodes (%s)" % (block.get("scheme"), SCHEME)
    k, count, block_size = block.get("k"), block.get("m"), block.get("blockSize")
    if not all(isinstance(value, int) and not isinstance(value, bool) for value in (k, count, block_size)):
        return "its parity k, m and blockSize are not all integers"
    sizes = [part.get("size") for part in index["parts"]]
    if k != len(index["parts"]) or count != len(block["parts"]) or count < 1 or k + count > MAX_SHARES:
        return "its parity block does not fit its parts (k=%r for %d data parts, m=%r for %d parity parts, at most " \
               "%d in all)" % (k, len(index["parts"]), count, len(block["parts"]), MAX_SHARES)
    if not all(isinstance(size, int) and 0 <= size <= block_size for size in sizes):
        return "a data part is larger than the parity blockSize %d" % block_size
    for number, part in enumerate(block["parts"]):
        if part.get("share") != k + number or part.get("size") != block_size:
            return "its parity part %r is not share %d of blockSize %d" % (part.get("name"), k + number, block_size)
    return None


def resend_needed(index, unusable):
    """The fewest of the unusable parts that must come again: all of them without parity, else as many as it takes
    to have k intact, data parts first (any of the unusable parts would do as well)."""
    block = index.get("parity")
    if not block:
        return list(unusable)
    short = len(unusable) - block["m"]
    bad = set(unusable)
    return [part["name"] for part in shares(index) if part["name"] in bad][:max(0, short)]


def rebuild(index, directory, unusable, check_mode=False):
    """Rebuild the unusable parts (missing or damaged) from k intact ones, in place; returns their names.

    Each rebuilt part is proven against the SHA-256 the signed index gives before it takes its place, so it is
    byte-identical to the part that was sent, or nothing is written.
    """
    every = shares(index)
    k, bad = len(index["parts"]), set(unusable)
    lost = [number for number, part in enumerate(every) if part["name"] in bad]
    if check_mode or not lost:
        return [every[number]["name"] for number in lost]
    zfec = require_zfec()
    chosen = [number for number, part in enumerate(every) if part["name"] not in bad][:k]
    lost_parity = [number for number in lost if number >= k]
    decoder = zfec.Decoder(k, len(every)) if any(number >= k for number in chosen) else None
    encoder = zfec.Encoder(k, len(every)) if lost_parity else None
    block_size = index["parity"]["blockSize"]
    sources, outputs = [], []
    try:
        for number in chosen:
            path = os.path.join(directory, every[number]["name"])
            start = payload_offset(path, every[number])
            sources.append((os.open(path, os.O_RDONLY), start, every[number]["size"]))
        for number in lost:
            header, trailer = part_tar(every[number]["member"], every[number]["size"])
            outputs.append(_Output(os.path.join(directory, every[number]["name"]), header, trailer, False))
        stripe = stripe_size(k + len(lost))
        for offset in range(0, block_size, stripe):
            length = min(stripe, block_size - offset)
            blocks = [_share_block(fd, start, size, offset, length) for fd, start, size in sources]
            # zfec reorders the lists it is given in place: fresh lists each stripe.
            data = decoder.decode(blocks, list(chosen)) if decoder else blocks
            parity = dict(zip(lost_parity, encoder.encode(data, list(lost_parity)))) if encoder else {}
            for number, output in zip(lost, outputs):
                if number >= k:
                    output.write(parity[number])
                else:
                    real = max(0, min(length, every[number]["size"] - offset))
                    if real:
                        output.write(data[number][:real] if real < length else data[number])
        for output in outputs:
            output.close()
        wrong = [every[number]["name"] for number, output in zip(lost, outputs)
                 if output.part.hexdigest() != every[number]["sha256"] or output.size != every[number]["partSize"]]
        if wrong:
            raise TransferError("rebuilding %s from the intact parts did not give the SHA-256 the signed index lists" %
                                ", ".join(wrong), parts=wrong,
                                hint="The intact parts do not belong to one sending: ask for these parts again")
    except BaseException:
        _discarding(outputs)
        raise
    finally:
        for fd, _start, _size in sources:
            os.close(fd)
    for output in outputs:
        commit(output.pending)
    return [every[number]["name"] for number in lost]
