"""Hand-made bundles for tampering tests: any entries, any metadata, signed with a test key."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile

import zstandard
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec


def metadata_for(entries, name="crafted", version="1.0.0", key_id=None, expires=None):
    return {
        "apiVersion": "petra.dev/v1alpha1", "kind": "BundleMetadata", "formatVersion": 1,
        "name": name, "version": version, "created": "2026-01-01T00:00:00Z", "expires": expires,
        "signer": {"keyId": key_id or "sha256:" + "0" * 64},
        "images": [], "charts": [], "manifests": [], "files": [],
        "entries": [{"name": n, "digest": "sha256:" + hashlib.sha256(d).hexdigest(), "size": len(d)}
                    for n, d in entries],
    }


def write_archive(path, members):
    """members: a list of TarInfo (no data), (TarInfo, bytes), or (name, bytes)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            elif isinstance(member[0], tarfile.TarInfo):
                archive.addfile(member[0], io.BytesIO(member[1]))
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    with open(path, "wb") as handle:
        handle.write(zstandard.ZstdCompressor(level=3, write_checksum=True).compress(raw.getvalue()))


def sign_file(path, private_key, signature_path=None):
    with open(path, "rb") as handle:
        digest = hashlib.sha256(handle.read()).digest()
    from cryptography.hazmat.primitives.asymmetric import utils
    der = private_key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    with open(signature_path or path + ".sig", "wb") as handle:
        handle.write(base64.b64encode(der))


def metadata_bytes(metadata):
    return json.dumps(metadata, indent=1, sort_keys=True).encode()
