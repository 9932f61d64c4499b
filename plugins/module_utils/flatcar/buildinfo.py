# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The Go build information embedded in a binary (what ``go version -m`` prints), read without running it.

A FIPS claim can be checked from the binary itself: only a build with ``GOFIPS140`` set to a frozen module
version (``v1.0.0``) links the validated Go Cryptographic Module; ``GOFIPS140=latest`` or none does not.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import re
import shutil
import subprocess
import tempfile

from ansible_collections.petra.core.plugins.module_utils.flatcar.errors import BuildInfoError

MAGIC = b"\xff Go buildinf:"
HEADER_SIZE = 32
FLAG_INLINE = 0x2
VALIDATED_FIPS_VERSIONS = re.compile(r"^v1\.0\.0$")


def _uvarint(data, offset):
    value, shift = 0, 0
    while True:
        if offset >= len(data) or shift > 63:
            raise BuildInfoError("the Go build information is truncated")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7


def _string(data, offset):
    length, offset = _uvarint(data, offset)
    if offset + length > len(data):
        raise BuildInfoError("the Go build information is truncated")
    return bytes(data[offset:offset + length]).decode("utf-8", "replace"), offset + length


def parse(data, source="the binary"):
    """Build information from a buffer holding a Go binary (Go 1.18 or later: inline strings)."""
    start = 0
    while True:
        index = data.find(MAGIC, start)
        if index < 0:
            raise BuildInfoError("%s carries no Go build information: it is not a Go binary, or it was built "
                                 "before Go 1.18" % source)
        if index % 16 == 0:
            break
        start = index + 1
    flags = data[index + 15]
    if not flags & FLAG_INLINE:
        raise BuildInfoError("%s was built before Go 1.18; its build settings cannot be read" % source,
                             hint="Use a k3s release built with a current Go toolchain")
    version, offset = _string(data, index + HEADER_SIZE)
    modinfo, _offset = _string(data, offset)
    if len(modinfo) >= 33 and modinfo[-17] == "\n":
        modinfo = modinfo[16:-16]  # sentinels around the text
    settings, path = {}, None
    for line in modinfo.splitlines():
        kind, _sep, rest = line.partition("\t")
        if kind == "path":
            path = rest
        elif kind == "build":
            key, _sep, value = rest.partition("=")
            settings[key] = value
    return {"go_version": version, "path": path, "settings": settings,
            "gofips140": settings.get("GOFIPS140"), "goexperiment": settings.get("GOEXPERIMENT"),
            "boringcrypto": "boringcrypto" in (settings.get("GOEXPERIMENT") or "").split(","),
            "fips_module": bool(VALIDATED_FIPS_VERSIONS.match(settings.get("GOFIPS140") or ""))}


SQUASHFS_MAGIC = b"hsqs"
SYSEXT_K3S_PATHS = ("usr/local/bin/k3s", "usr/bin/k3s")


def is_squashfs(path):
    with open(path, "rb") as handle:
        return handle.read(4) == SQUASHFS_MAGIC


def extract_from_sysext(image, member_paths, dest_dir):
    """Copy one file out of a squashfs sysext image with unsquashfs (nothing is mounted); the copy's path and member."""
    unsquashfs = shutil.which("unsquashfs")
    if not unsquashfs:
        raise BuildInfoError("%s is a squashfs sysext image and unsquashfs is needed to read k3s from it" % image,
                             hint="Install squashfs-tools on the controller, or inspect the k3s binary itself")
    for member in member_paths:
        target = os.path.join(dest_dir, "k3s")
        try:
            with open(target, "wb") as out:
                done = subprocess.run([unsquashfs, "-cat", image, member], stdout=out, stderr=subprocess.PIPE,
                                      timeout=600, check=False)
        except subprocess.TimeoutExpired:
            raise BuildInfoError("unsquashfs did not finish reading %s from %s within 600s" % (member, image))
        if done.returncode == 0 and os.path.getsize(target) > 0:
            return target, member
    raise BuildInfoError("the sysext image %s holds none of %s" % (image, ", ".join(member_paths)),
                         hint="Give sysext_path, the k3s binary's path inside the image")


def inspect(path, require_fips_module=False, sysext_path=None):
    """Build information of a k3s binary, or of the k3s binary inside a squashfs systemd-sysext image."""
    try:
        if is_squashfs(path):
            members = (sysext_path.lstrip("/"),) if sysext_path else SYSEXT_K3S_PATHS
            with tempfile.TemporaryDirectory(prefix="petra-sysext-") as scratch:
                binary, member = extract_from_sysext(path, members, scratch)
                info = _inspect_file(binary, "%s:/%s" % (path, member))
            info["sysext_path"] = "/" + member
        else:
            info = _inspect_file(path, path)
    except OSError as exc:
        raise BuildInfoError("cannot read %s: %s" % (path, exc), hint="Check the path of the k3s binary")
    path = info["binary"]
    if require_fips_module and not info["fips_module"]:
        raise BuildInfoError(
            "%s (%s) is not built against the validated Go FIPS module: GOFIPS140=%s, GOEXPERIMENT=%s" % (
                path, info["go_version"], info["gofips140"] or "unset", info["goexperiment"] or "unset"),
            hint="Use a k3s built with GOFIPS140=v1.0.0 (go version -m shows it); GODEBUG=fips140=on alone does not "
                 "make an unvalidated build FIPS 140-3 compliant")
    return info


def _inspect_file(path, label):
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            info = parse(data, label)
            # The executable's own digest: inside a sysext it is what a node's /proc/<pid>/exe hashes to.
            info["binary_sha256"] = hashlib.sha256(data).hexdigest()
    except (OSError, ValueError) as exc:
        raise BuildInfoError("cannot read %s: %s" % (label, exc), hint="Check the path of the k3s binary")
    info["binary"] = label
    return info
