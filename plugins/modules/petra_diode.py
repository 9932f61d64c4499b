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
    O(max_part_size), each a tar file holding one slice of the bundle (named C(.tar), or with another extension
    of O(allowed_extensions) when the CDS profile refuses C(.tar)), and a C(<name>.parts.json) index that lists
    every part's SHA-256 and carries the bundle's signature text (C(.sig) files are refused by common CDS
    profiles). The index is signed with the bundle key."
  - "O(state=received) reads the index, checks its signature, refuses it when a part name is not a plain file
    name, proves every part on its own (a missing or damaged
    part is named, and only those need sending again), streams the parts back into O(dest) (a temporary file,
    then renamed), writes C(<dest>.sig), and verifies the reassembled bundle with the same code as
    M(petra.core.petra_verify). A bundle that fails is removed."
  - "With O(parity_parts), sending also writes parity parts beside the k data parts (an erasure code, zfec's
    Reed-Solomon), and the signed index (format version 2) lists them. Receiving then rebuilds up to that many
    missing or damaged parts, data or parity, from any k intact ones, byte-identical to the parts sent (see
    RV(rebuilt)), before it reassembles; with fewer than k intact it fails naming the fewest parts to send again
    (RV(parts_failed)). Both transports carry parity parts, named and sized like the data parts."
  - "O(transport=directory) writes the parts to, and reads them from, a directory: removable media for
    sneakernet, or a guard's outbox and inbox. Parts already present and unchanged are not written again."
  - "O(transport=diode) also uploads the parts and the index to O(s3_bucket) (SHA-256 checksums, SSE-KMS with
    O(kms_key_id), tags naming the mapping) and creates one AWS Diode transfer per file with a deterministic
    C(clientRequestToken); with O(wait) it polls until every transfer is C(SUCCEEDED) and fails naming each
    C(REJECTED) or C(FAILED) part with Diode's C(errorMessage). A re-run uploads nothing already there and creates
    no duplicate transfer. Receiving downloads C(<mapping_id>/<s3_prefix>/...) from O(delivery_bucket) into
    O(directory), keeping a local copy only when its SHA-256 is the one the signed index (or, for an index, the
    object's checksum) gives, never for its size, and continues as the directory transport. The Diode client uses the service model shipped with
    the collection; O(diode_endpoint_url) points it at the AWS simulator or Petra's emulator (docs/diode.md)."
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
      - How parts travel. V(directory) writes and reads a directory; V(diode) goes through S3 and AWS Diode
        (O(directory) is then the local staging directory of the parts).
    type: str
    choices: [directory, diode]
    default: directory
  s3_bucket:
    description:
      - With O(transport=diode) and O(state=sent), the mapping's source bucket.
    type: str
  s3_prefix:
    description:
      - Key prefix of the parts in the source bucket (and below C(<mapping_id>/) in the delivery bucket).
    type: str
    default: ''
  mapping_id:
    description:
      - The Diode account mapping (a lowercase UUID). Required with O(transport=diode).
    type: str
  kms_key_id:
    description:
      - Encrypt the uploaded parts with this KMS key (SSE-KMS).
    type: str
  diode_endpoint_url:
    description:
      - The Diode endpoint; defaults to C(https://diode.<region>.amazonaws.com).
    type: str
  delivery_bucket:
    description:
      - With O(transport=diode) and O(state=received), the mapping's delivery bucket.
    type: str
  wait:
    description:
      - With O(transport=diode), wait until every transfer reaches a final state and fail on C(REJECTED) or C(FAILED).
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for transfers with O(wait).
    type: int
    default: 3600
  poll_interval:
    description:
      - Seconds between the first C(DescribeTransfer) polls; the interval grows up to 30 seconds.
    type: float
    default: 5.0
  receipt:
    description:
      - With O(transport=diode), write the transfer receipt (JSON) here as custody evidence of the CDS hop.
    type: path
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
      - The index file name in O(directory) when receiving; needed only when the directory holds several that
        verify with O(public_key). Indexes that do not verify are ignored when exactly one does
        (see RV(indexes_ignored)).
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
      - The smallest value is V(1061376) bytes (1 MiB of bundle data plus the tar wrapping), for instance V(1040KiB)
        or V(2MB); a smaller one fails before anything is written.
    type: str
    default: 100MB
  allowed_extensions:
    description:
      - File extensions the CDS accepts. Parts are named C(.tar) when it is listed, else with the first listed
        extension other than C(json) (for instance V(zst), V(bin) or V(dat)); they are tar files whatever their name.
        The index is C(.parts.json) when C(json) is listed, else C(.parts.<the parts' extension>).
      - The task fails before writing anything when no extension is left for the parts (only V(json) listed).
        The default fits the AWS Diode C(CDS_1) profile. Receiving needs no setting, it reads the names from the index.
    type: list
    elements: str
    default: [tar, json]
  parity_parts:
    description:
      - With O(state=sent), the number of parity parts m to write beside the k data parts, so that the far side
        rebuilds any m lost or damaged parts without a re-send. A number (V(2)), or a percentage of the data
        parts rounded up (V(25%) of 8 data parts is 2, V(10%) of 8 is 1).
      - Parity parts are named C(<name>.parity-NNNN-of-NNNN.<ext>) with the data parts' extension, are tar files
        like them and are no larger than a full data part, so within O(max_part_size).
      - Data and parity parts together are at most 256 (the code works over GF(2^8)); a larger O(max_part_size)
        makes fewer data parts.
      - Needs the Python package C(zfec) on the controller, and so does receiving when a part must be rebuilt.
        V(0) writes no parity and the same index as without this option (format version 1).
      - Sending again recomputes the parity (one more read of the bundle) but writes only parts that changed.
    type: raw
    default: 0
extends_documentation_fragment:
  - petra.core.signing_key
  - petra.core.aws
  - petra.core.attributes
  - petra.core.attributes.check_mode
notes:
  - The signing key signs the part index when sending; it should be the bundle's own signing key, so the receiving
    side needs only the one public key.
  - With C(-v), splitting, checking parts, reassembling and verifying report progress every few seconds
    (C($PETRA_PROGRESS_INTERVAL), 5 by default); the S3 uploads and downloads of O(transport=diode) do not.
  - The C(petra) command runs this module from a shell (C(petra diode send), C(petra diode receive)); see docs/cli.md.
seealso:
  - module: petra.core.petra_bundle
  - module: petra.core.petra_verify
requirements:
  - python >= 3.9
  - cryptography
  - zstandard
  - zfec (only with O(parity_parts), or to rebuild a lost part)
"""

EXAMPLES = r"""
- name: Write the bundle to removable media as 100 MB parts
  petra.core.petra_diode:
    state: sent
    src: /srv/outbox/platform-1.4.0.tar.zst
    directory: /media/transfer
    signing_key: /etc/petra/bundle.pem

- name: Send it through AWS Diode, and keep the receipt
  petra.core.petra_diode:
    state: sent
    transport: diode
    src: /srv/outbox/platform-1.4.0.tar.zst
    directory: /srv/staging/parts
    signing_key: awskms:///alias/petra-bundle
    s3_bucket: low-side-transfers
    s3_prefix: platform/1.4.0
    mapping_id: 0f5c3b2a-1d2e-4f60-8a9b-0c1d2e3f4a5b
    kms_key_id: alias/petra-transfers
    region: us-gov-west-1
    receipt: /srv/custody/platform-1.4.0-diode.json

- name: Through a link that loses files, with 2 parity parts (any 2 lost parts are rebuilt on the far side)
  petra.core.petra_diode:
    state: sent
    src: /srv/outbox/platform-1.4.0.tar.zst
    directory: /media/transfer
    signing_key: /etc/petra/bundle.pem
    parity_parts: 2

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
  description: Number of data parts.
  returned: always
  type: int
parity_parts:
  description: The parity part file names, in order; empty without parity.
  returned: always
  type: list
  elements: str
  sample: [platform-1.4.0.parity-0001-of-0002.tar, platform-1.4.0.parity-0002-of-0002.tar]
parity_count:
  description: Number of parity parts (0 without parity).
  returned: always
  type: int
rebuilt:
  description: With O(state=received), the parts (data or parity) that were missing or damaged and were rebuilt from
    the parity, byte-identical to the parts sent; in check mode, the parts that would be.
  returned: state is received
  type: list
  elements: str
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
transfers:
  description: With O(transport=diode) and O(state=sent), every file with its C(key), whether it was C(uploaded) by this
    run, its C(transfer_id) and C(status).
  returned: transport is diode and state is sent
  type: list
  elements: dict
receipt:
  description: With O(transport=diode) and O(state=sent), the receipt, every object with its S3 version, checksums,
    transfer id, status and times; CloudTrail correlates the CDS hop by transfer id.
  returned: transport is diode and state is sent
  type: dict
downloaded:
  description: With O(transport=diode) and O(state=received), the index and part files taken from the delivery
    bucket, fetched by this run or already there intact (RV(fetched) and RV(fetch_skipped)).
  returned: transport is diode and state is received
  type: list
  elements: str
fetched:
  description: With O(transport=diode) and O(state=received), the files this run downloaded, including any local copy
    replaced because its content was not the signed one.
  returned: transport is diode and state is received
  type: list
  elements: str
fetch_skipped:
  description: With O(transport=diode) and O(state=received), the files not downloaded because the local copy already
    has the right SHA-256.
  returned: transport is diode and state is received
  type: list
  elements: str
indexes_ignored:
  description: With O(state=received) and several indexes in O(directory), the ones passed over because they do not
    verify (C(name) and C(reason)); only the one that verifies is used.
  returned: when an index was passed over
  type: list
  elements: dict
verification:
  description: With O(state=received), the result of verifying the reassembled bundle (as M(petra.core.petra_verify)
    returns it). Absent in check mode when the bundle would be rebuilt.
  returned: state is received
  type: dict
parts_failed:
  description: On failure, the parts to send again. Without parity every missing or damaged part; with parity only as
    many as it takes to have k intact parts (the fewest), data parts first.
  returned: failure
  type: list
  elements: str
"""

from ansible_collections.petra.core.plugins.module_utils.adapters import diode as adapter
from ansible_collections.petra.core.plugins.module_utils.adapters.runner import run_module


def main():
    run_module(adapter)


if __name__ == "__main__":
    main()
