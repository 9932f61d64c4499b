# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Admitting a verified bundle against the trust state: verify, then act, then record.

The trust state is proven (chain, head, anchor) before the bundle is read; the rollback rule is applied to the
verified metadata before anything is pushed; the acceptance and the custody record are written only after the
whole load succeeded, under a lock, after reading the state again (another load may have finished meanwhile).
Check mode and petra_verify read and decide, and never write.

With a trust witness (``witness.py``, in the target registry), the state must not be behind it: that is checked
when the witness is bound (before the bundle is read) and again under the lock; the witness can be written is proven
before anything is pushed, and it moves to the new head after the trust state was saved.
"""

from __future__ import annotations

import contextlib
import os

from ansible_collections.petra.core.plugins.module_utils.atomic import directory_lock
from ansible_collections.petra.core.plugins.module_utils.trust import custody
from ansible_collections.petra.core.plugins.module_utils.trust.errors import TrustError
from ansible_collections.petra.core.plugins.module_utils.trust.state import TrustState
from ansible_collections.petra.core.plugins.module_utils.trust.witness import compare


class TrustGate:
    """The trust state around one verification or load."""

    def __init__(self, path, anchor=None, allow_downgrade=False, required=False):
        self.path = path
        self.anchor = anchor or None
        self.allow_downgrade = bool(allow_downgrade)
        self.required = bool(required)
        self.state = TrustState.load(path, self.anchor, self.required)
        self.decision = None
        self.witness = self.witnessed = self.witness_status = self.witness_reset = None
        self.check_mode = False

    def bind_witness(self, witness, reset=None, check_mode=False):
        """Check the proven state against the registry's witness of it, before the bundle is read."""
        self.witness, self.witness_reset, self.check_mode = witness, reset or None, bool(check_mode)
        self.witnessed = witness.read()
        self.witness_status = compare(self.state, self.witnessed, witness.reference, self.witness_reset)

    def require_writable(self):
        """A load must be able to record its acceptance: refuse before pushing anything, not after."""
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise TrustError("the directory of the trust state %s does not exist" % self.path,
                             hint="Create it (it also receives the custody records), then run again")
        if not os.access(directory, os.W_OK) or (os.path.exists(self.path) and not os.access(self.path, os.W_OK)):
            raise TrustError("the trust state %s cannot be written by this user" % self.path,
                             hint="Run as the user that owns the trust state, or fix its permissions")

    def admit(self, verification, metadata):
        """Raises TrustError (reason ``rollback``) when the verified bundle would roll its name back."""
        self.decision = self.state.decide(metadata["name"], metadata["version"], verification["sha256"],
                                          self.allow_downgrade)
        if metadata.get("delta"):
            self.state.require_base(metadata["name"], metadata["version"], metadata["delta"]["base"])
        if self.witness is not None and not self.check_mode:
            # A registry that takes the content but not the witness must refuse now, not after the tags moved.
            self.witness.preflight()
        return self.decision

    def preview(self):
        """What petra_verify reports: the proven state and what accepting this bundle would do."""
        result = self.state.summary()
        result["decision"] = self.decision.summary() if self.decision else None
        if self.witness is not None:
            result["witness"] = {"reference": self.witness.reference, "status": self.witness_status,
                                 "head": self.witnessed["head"] if self.witnessed else None}
        return result

    def record(self, verification, metadata, targets, registry, check_mode=False):
        """After a successful load: append the acceptance (when it is one) and write the custody record.

        Returns (trust state result, custody record, custody path, changed).
        """
        # Check mode writes nothing, so it needs no lock (nor a directory it could lock).
        with contextlib.nullcontext() if check_mode else directory_lock(self.path):
            state = TrustState.load(self.path, self.anchor, self.required)
            witnessed, status = self._witnessed(state)
            decision = state.decide(metadata["name"], metadata["version"], verification["sha256"],
                                    self.allow_downgrade)
            if decision.record:
                entry = state.append(metadata["name"], metadata["version"], verification["sha256"],
                                     verification["signers"], registry=registry, decision=decision,
                                     base=(metadata.get("delta") or {}).get("base"))
                if not check_mode:
                    state.save()
            else:
                entry = decision.current
            # Taken from the entry, so that loading the same bundle again writes the same record.
            acceptance = {"acceptedAt": entry["acceptedAt"], "registry": registry, "downgrade": entry["downgrade"],
                          "replaces": entry["replaces"],
                          "trustEntry": {"number": state.entries.index(entry) + 1, "hash": entry["hash"]}}
            record = custody.custody_record(metadata, verification, targets, acceptance)
            path = custody.custody_path(self.path, metadata["name"], metadata["version"])
            custody_changed = custody.write_custody(path, record, check_mode)
            # After the trust state is saved: a witness behind the state is accepted next time, never the reverse.
            witness = self._move_witness(state, witnessed, status, check_mode)
        result = state.summary()
        if witness is not None:
            result["witness"] = witness
        result["decision"] = decision.summary()
        result["entry"] = entry
        return result, record, path, decision.record or custody_changed or bool(witness and witness["action"])

    def _witnessed(self, state):
        """(witness document or None, how the state stands to it); read again under the lock, since another load
        may have moved the witness since it was bound."""
        if self.witness is None:
            return None, None
        witnessed = self.witness.read()
        return witnessed, compare(state, witnessed, self.witness.reference, self.witness_reset)

    def _move_witness(self, state, witnessed, status, check_mode):
        """Point the witness at the saved head (unless it is there already); its result (what it held before, the
        head it holds now, the action taken, or that would be in check mode)."""
        if self.witness is None:
            return None
        previous = witnessed["head"] if witnessed else None
        action = None
        if previous != state.head:
            # The status was taken before this load appended its entry: an equal witness is now one behind.
            action = "create" if previous is None else "reset" if status == "reset" else "update"
            if not check_mode:
                self.witness.write(state)
        return {"reference": self.witness.reference, "status": status, "action": action, "head": state.head,
                "previous": previous}
