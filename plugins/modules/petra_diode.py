#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: petra_diode
short_description: Carry a bundle across a one-way cross-domain solution as verifiable parts
version_added: 0.1.0
description:
  - "O(state=sent) turns a bundle into files a cross-domain solution (CDS) accepts: parts no larger than
    O(max_part_size), each a C(.tar) holding one slice of the bundle, and a C(<name>.parts.json) index that lists
    every part's SHA-256 and carries the bundle's signature text (C(.sig) files are refused by common CDS
    profiles). The index is signed with the bundle key."
  - "O(state=received) reads the index, checks its signature, proves every part on its own (a missing or damaged
    part is named, and only those need sending again), streams the parts back into O(dest) (a temporary file,
    then renamed), writes C(<dest>.sig), and verifies the reassembled bundle with the same code as
    M(petra.core.petra_verify). A bundle that fails is removed."
  - "O(transport=directory) writes the parts to, and reads them from, a directory: removable media for
    sneakernet, or a guard's outbox and inbox. Parts already present and unchanged are not written again."
  - Runs on the controller; parts are streamed, memory stays flat.
author:
  - Petra maintainers (@petra-maintainers)
options:
  state:
    description:
      - V(sent) writes the parts and the index of O(src) into O(directory).
      - V(received) proves the parts in O(directory) and reassembles them into O(dest).
    type: str
    choices: [sent, received]
    default: sent
  transport:
    description:
      - How parts travel. V(directory) writes and reads a directory.
    type: str
    choices: [directory]
    default: directory
  src:
    description:
      - The bundle to send (O(state=sent)). Its signature is read from O(signature).
    type: path
  signature:
    description:
      - The bundle's signature file when sending. Defaults to O(src) with C(.sig) appended.
    type: path
  dest:
    description:
      - Where to reassemble the bundle (O(state=received)); its signature is written beside it as C(<dest>.sig).
    type: path
  directory:
    description:
      - The directory the parts are written to or read from.
    type: path
    required: true
  index:
    description:
      - The index file name in O(directory) when receiving; needed only when the directory holds several.
    type: str
  public_key:
    description:
      - When receiving, the public key(s) (paths or PEM text) the index and the bundle may be signed with.
    type: list
    elements: str
  max_part_size:
    description:
      - The largest part, as bytes or with a unit (V(100MB) decimal, V(30GiB) binary). AWS Diode's default
        mapping limit is 100 MB; software-artifact mappings allow 30 GB.
    type: str
    default: 100MB
  allowed_extensions:
    description:
      - File extensions the CDS accepts. Parts are C(.tar) and the index C(.json); the task fails before writing
        anything when either is not allowed. The default fits the AWS Diode C(CDS_1) profile.
    type: list
    elements: str
    default: [tar, json]
extends_documentation_fragment:
  - petra.core.signing_key
  - petra.core.aws
  - petra.core.attributes
  - petra.core.attributes.check_mode
notes:
  - The signing key signs the part index when sending; it should be the bundle's own signing key, so the receiving
    side needs only the one public key.
seealso:
  - module: petra.core.petra_bundle
  - module: petra.core.petra_verify
requirements:
  - python >= 3.9
  - cryptography
  - zstandard
"""

EXAMPLES = r"""
- name: Write the bundle to removable media as 100 MB parts
  petra.core.petra_diode:
    state: sent
    src: /srv/outbox/platform-1.4.0.tar.zst
    directory: /media/transfer
    signing_key: /etc/petra/bundle.pem

- name: On the far side, prove the parts and rebuild the bundle
  petra.core.petra_diode:
    state: received
    directory: /media/transfer
    dest: /srv/inbox/platform-1.4.0.tar.zst
    public_key: /etc/petra/bundle.pub
"""

RETURN = r"""
index:
  description: The part index file name.
  returned: always
  type: str
  sample: platform-1.4.0.parts.json
parts:
  description: Every part file name, in order.
  returned: always
  type: list
  elements: str
part_count:
  description: Number of parts.
  returned: always
  type: int
written:
  description: With O(state=sent), the files written by this run (parts and index); unchanged ones are not.
  returned: state is sent
  type: list
  elements: str
bundle_sha256:
  description: SHA-256 of the whole bundle, in hex.
  returned: always
  type: str
directory:
  description: With O(state=sent), the directory written to.
  returned: state is sent
  type: str
dest:
  description: With O(state=received), the reassembled bundle.
  returned: state is received
  type: str
signature:
  description: With O(state=received), the signature written beside the bundle.
  returned: state is received
  type: str
size:
  description: With O(state=received), the bundle size in bytes.
  returned: state is received
  type: int
verification:
  description: With O(state=received), the result of verifying the reassembled bundle (as M(petra.core.petra_verify)
    returns it). Absent in check mode when the bundle would be rebuilt.
  returned: state is received
  type: dict
parts_failed:
  description: On failure, the parts that are missing or damaged, to send again.
  returned: failure
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.petra.core.plugins.module_utils.diode.options import (
    DIODE_ARGUMENT_SPEC,
    DIODE_MUTUALLY_EXCLUSIVE,
    DIODE_REQUIRED_IF,
    run_diode,
)
from ansible_collections.petra.core.plugins.module_utils.errors import PetraError


def main():
    module = AnsibleModule(argument_spec=DIODE_ARGUMENT_SPEC, mutually_exclusive=DIODE_MUTUALLY_EXCLUSIVE,
                           required_if=DIODE_REQUIRED_IF, supports_check_mode=True)
    try:
        result = run_diode(module.params, module.check_mode)
    except PetraError as exc:
        module.fail_json(msg=str(exc), **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
