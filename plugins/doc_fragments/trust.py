# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  threshold:
    description:
      - How many distinct keys among the public keys given must have signed the bundle (M of N), counting the
        primary signature (C(<bundle>.sig)) and the co-signatures (O(cosignatures)).
      - The same key given twice is one key, and several signatures by one key count once.
      - The primary signature must always be by one of the public keys given.
      - With the default V(1), the primary signature alone suffices, as before.
      - In M(petra.core.petra_bundle), this and the trust state options apply to C(state=loaded); a co-signer
        (C(state=signed)) always checks the primary signature only.
    type: int
    default: 1
  cosignatures:
    description:
      - The co-signature file, as written by M(petra.core.petra_bundle) with O(petra.core.petra_bundle#module:state=signed).
        Defaults to the bundle path with C(.sigs.json) appended. A missing file means no co-signatures.
      - Co-signatures by keys not given, over another file, or that do not verify are not counted, and are
        listed in RV(rejected_signatures).
    type: path
  trust_state:
    description:
      - The trust state file on the controller, a hash-chained log of the accepted bundles (see C(docs/bundle-spec.md)).
        A missing file is an empty log; its directory also holds the C(custody/) records.
      - The log is proven first (every entry's hash, the chain, the head); an edited, reordered or cut-off log is
        refused with reason C(trust-state-tampered).
      - A bundle whose name has a higher current version in the log is refused (reason C(rollback)); the same version
        is accepted (re-runs), a higher one too.
      - M(petra.core.petra_verify) only reads it and reports what a load would do. A load appends its acceptance and
        writes C(custody/<name>-<version>.json) only after everything succeeded, and never in check mode.
    type: path
  trust_state_anchor:
    description:
      - An entry hash (C(sha256:...)) taken earlier from the C(trust_state.head.hash) that a load or
        M(petra.core.petra_verify) returns, and kept elsewhere (a ticket, a SIEM, a second host). The log must still
        hold that entry, which detects a history rewritten with new hashes, cut off or replaced. Needs O(trust_state).
    type: str
  allow_downgrade:
    description:
      - Accept a bundle older than the current version of its name in O(trust_state). The acceptance is recorded as a
        downgrade, and the version gone back to becomes the current one. Needs O(trust_state).
    type: bool
    default: false
"""
