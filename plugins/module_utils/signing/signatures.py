# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Detached blob signatures in the cosign ``sign-blob`` legacy format: base64 of a DER ECDSA signature."""

from __future__ import annotations

import base64
import binascii
import hashlib

from ansible_collections.petra.core.plugins.module_utils.signing.keys import SigningError, hash_name_for

MAX_SIGNATURE_FILE = 16384


def encode_signature(der):
    """The bytes of a ``.sig`` file: base64 text, no newline (as cosign writes it)."""
    return base64.b64encode(der)


def decode_signature(data, source):
    """DER bytes from a ``.sig`` file's content; refuses anything that is not base64 of a DER sequence."""
    if len(data) > MAX_SIGNATURE_FILE:
        raise SigningError("%s is %d bytes, far larger than any signature" % (source, len(data)),
                           hint="Give the .sig file that was written next to the bundle")
    try:
        der = base64.b64decode(b"".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise SigningError("%s is not a base64 signature" % source,
                           hint="Give the .sig file that was written next to the bundle")
    if not der or der[0] != 0x30:
        raise SigningError("%s does not hold a DER ECDSA signature" % source,
                           hint="Give the .sig file that was written next to the bundle")
    return der


def sign_file_digest(signer, digests):
    """Sign the archive's digest for the signer's hash; ``digests`` maps hash name to raw digest."""
    return signer.sign_digest(digests[signer.hash_name])


def needed_hashes(public_keys):
    """The hash names needed to check signatures by these keys."""
    return sorted({hash_name_for(key) for key in public_keys})


def new_hashers(names):
    return {name: hashlib.new(name) for name in names}
