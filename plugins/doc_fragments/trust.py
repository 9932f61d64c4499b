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
      - The file is read only when O(threshold) is above 1 or this option is given; with the default threshold a
        C(.sigs.json) beside the bundle is ignored, so a stray or damaged one cannot block a load.
      - Co-signatures by keys not given, over another file, or that do not verify are not counted, and are
        listed in RV(rejected_signatures).
    type: path
  trust_state:
    description:
      - The trust state file on the controller, a hash-chained log of the accepted bundles (see C(docs/bundle-spec.md)).
        A missing file is an empty log (unless O(trust_state_required)); its directory also holds the C(custody/)
        records.
      - The log is proven first (every entry's hash, the chain, the head); an edited, reordered or cut-off log is
        refused with reason C(trust-state-tampered).
      - A bundle whose name has a higher current version in the log is refused (reason C(rollback)); a higher version
        is accepted, and so is the same file again (re-runs, nothing recorded). Another file under the current version
        (a different SHA-256, for example an older signed build of it replayed) is refused (reason C(same-version)).
      - M(petra.core.petra_verify) only reads it and reports what a load would do. A load appends its acceptance and
        writes C(custody/<name>-<version>-<hash>.json) only after everything succeeded, and never in check mode (where
        the trust state only has to be readable).
      - "A load also keeps a witness of the trust state's head in the target registry
        (C(<registry>/petra/trust-witness:head)) and refuses a trust state behind it, so an older copy put back, a log
        cut short or a deleted file is caught without further configuration (reasons C(trust-state-behind),
        C(trust-state-forked)); M(petra.core.petra_verify) checks it when given the registry. See
        C(docs/bundle-spec.md), 'The trust witness'."
    type: path
  trust_state_anchor:
    description:
      - An entry hash (C(sha256:...)) taken earlier from the C(trust_state.head.hash) that a load or
        M(petra.core.petra_verify) returns, and kept elsewhere (a ticket, a SIEM, a second host). The log must still
        hold that entry, which detects a history rewritten with new hashes, cut off or replaced. Needs O(trust_state).
      - The trust witness in the target registry catches a trust state put back, cut short or deleted; the anchor
        adds a copy of the head outside both the controller and the registry, for whoever can write to both. Update
        the anchor you keep after every load (to the new C(trust_state.head.hash)); an old anchor protects the history
        only up to it.
    type: str
  allow_downgrade:
    description:
      - Accept a bundle older than the current version of its name in O(trust_state), or another file under its current
        version. The acceptance is recorded as a downgrade (C(replaces) names the version replaced, the same one for
        another file of the same version), and the version gone back to becomes the current one. Needs O(trust_state).
    type: bool
    default: false
  trust_state_required:
    description:
      - Refuse a missing O(trust_state) file (reason C(trust-state-missing)) instead of reading it as an empty log, so
        that deleting the trust state does not re-admit every version. Needs O(trust_state).
      - The file must then exist before the first load; create it once as the empty log shown in
        C(docs/bundle-spec.md) ("Initialising the trust state"), or run the first load without this option.
    type: bool
    default: false
"""
