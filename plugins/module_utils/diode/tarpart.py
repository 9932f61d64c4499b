# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The part file itself: a deterministic one-member tar around a payload (data or parity), shared by the code that
writes parts and the code that rebuilds them, so a rebuilt part is byte-identical to the one that was sent."""

from __future__ import annotations

import tarfile

from ansible_collections.petra.core.plugins.module_utils.bundle import artifacts
from ansible_collections.petra.core.plugins.module_utils.diode.errors import TransferError


def part_tar(member, payload_size):
    """Header bytes and trailer bytes of a deterministic one-member tar around a payload."""
    info = tarfile.TarInfo(member)
    info.size = payload_size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    header = info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")
    padding = (tarfile.BLOCKSIZE - payload_size % tarfile.BLOCKSIZE) % tarfile.BLOCKSIZE
    total = len(header) + payload_size + padding + 2 * tarfile.BLOCKSIZE
    record_padding = (tarfile.RECORDSIZE - total % tarfile.RECORDSIZE) % tarfile.RECORDSIZE
    return header, b"\0" * (padding + 2 * tarfile.BLOCKSIZE + record_padding)


def payload_offset(path, part):
    """Where the payload of a proven part file starts, read from its own tar header (another implementation may
    write other, equally valid headers); refuses a part that does not hold the member the index names."""
    with open(path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as archive:
        member = archive.next()
        if member is None or member.name != part["member"] or not member.isreg() or member.size != part["size"]:
            raise TransferError("the part %s does not hold %s" % (part["name"], part["member"]), parts=[part["name"]])
        return member.offset_data


def hash_file(path):
    """The SHA-256 of a file, in hex."""
    return artifacts.hash_file(path)[0].split(":", 1)[1]
