#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: petra_verify
short_description: Prove that a Petra bundle is authentic, intact and current
version_added: 0.1.0
description:
  - Checks the signature over the whole bundle file with the given public key(s), then walks the archive and
    checks every entry against the signed metadata, digest and size, with no entry missing, extra, duplicated
    or out of order, no absolute path, no C(..), no links, no devices, no entry larger than declared, and
    well-formed zstd and tar to the very end.
  - Refuses a bundle past its C(expires) date.
  - Reads the bundle once as a stream; nothing is extracted or written, and memory use stays flat.
  - Every failure names the first problem in plain words and what to do; C(reason) carries a short code
    (for example C(wrong-key), C(bad-signature), C(altered), C(unsafe-path), C(entry-type), C(oversized),
    C(truncated), C(expired)).
  - Never changes anything; C(changed) is always false.
author:
  - Petra maintainers (@petra-maintainers)
options:
  path:
    description:
      - The bundle file on the controller.
    type: path
    required: true
  public_key:
    description:
      - The public key(s) the bundle may be signed with, each a path to a PEM C(PUBLIC KEY) file (such as
        C(cosign.pub)) or the PEM text itself. A signature by any one of them is accepted.
    type: list
    elements: str
    required: true
  signature:
    description:
      - The signature file. Defaults to O(path) with C(.sig) appended.
    type: path
extends_documentation_fragment:
  - petra.core.attributes
  - petra.core.attributes.read_only
seealso:
  - module: petra.core.petra_bundle
requirements:
  - python >= 3.9
  - cryptography
  - zstandard
  - jsonschema
"""

EXAMPLES = r"""
- name: Verify a bundle that arrived through the cross-domain solution
  petra.core.petra_verify:
    path: /srv/inbox/platform-1.4.0.tar.zst
    public_key: /etc/petra/bundle.pub
  register: verified

- name: Show what it carries
  ansible.builtin.debug:
    msg: "{{ verified.metadata.name }} {{ verified.metadata.version }}: {{ verified.metadata.images | length }} images"

- name: Accept either of two signing keys during a key rotation
  petra.core.petra_verify:
    path: /srv/inbox/platform-1.4.0.tar.zst
    public_key:
      - /etc/petra/bundle-2026.pub
      - /etc/petra/bundle-2027.pub
"""

RETURN = r"""
verified:
  description: True when every check passed (the task fails otherwise).
  returned: success
  type: bool
  sample: true
key_id:
  description: C(sha256:) of the SubjectPublicKeyInfo of the key whose signature verified.
  returned: success
  type: str
path:
  description: The bundle file.
  returned: success
  type: str
signature:
  description: The signature file used.
  returned: success
  type: str
sha256:
  description: SHA-256 of the bundle file, in hex.
  returned: success
  type: str
size:
  description: Size of the bundle file in bytes.
  returned: success
  type: int
entries_checked:
  description: Number of archive entries checked against the metadata (the metadata itself not counted).
  returned: success
  type: int
bytes_checked:
  description: Uncompressed bytes hashed and checked.
  returned: success
  type: int
duration:
  description: Seconds the verification took.
  returned: success
  type: float
metadata:
  description: The signed metadata without its entry list.
  returned: success
  type: dict
  contains:
    name:
      description: Bundle name.
      type: str
    version:
      description: Bundle version.
      type: str
    created:
      description: Creation time (UTC).
      type: str
    expires:
      description: Expiry date, or null.
      type: str
    images:
      description: Every image with its original C(ref), C(name), C(tag), C(digest), C(mediaType) and, for indexes,
        the platform C(manifests) carried.
      type: list
      elements: dict
    charts:
      description: Every chart with name, version, digest and size.
      type: list
      elements: dict
    manifests:
      description: Every manifest set with name, digest and size.
      type: list
      elements: dict
    files:
      description: Every file with name, digest and size.
      type: list
      elements: dict
    entry_count:
      description: Number of archive entries listed in the metadata.
      type: int
reason:
  description: On failure, a short code for the first problem found.
  returned: failure
  type: str
  sample: altered
"""

from ansible_collections.petra.core.plugins.module_utils.bundle.options import VERIFY_ARGUMENT_SPEC
from ansible_collections.petra.core.plugins.module_utils.bundle.tasks import run_verify
from ansible_collections.petra.core.plugins.module_utils.module_runner import run_module


def main():
    run_module(lambda params, check_mode: run_verify(params), VERIFY_ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
