"""The trust state: version order, rollback decisions, the hash chain and every way of editing it, custody records."""

import hashlib
import json
import os

import pytest

from ansible_collections.petra.core.plugins.module_utils.trust import custody
from ansible_collections.petra.core.plugins.module_utils.trust.errors import TrustError
from ansible_collections.petra.core.plugins.module_utils.options.trust import gate_from_params
from ansible_collections.petra.core.plugins.module_utils.trust.state import GENESIS, TrustState, entry_hash
from ansible_collections.petra.core.plugins.module_utils.trust.versions import compare_versions

SHA = {name: (name * 64)[:64] for name in "abcdef"}
SIGNERS = ["sha256:" + "1" * 64, "sha256:" + "2" * 64]


@pytest.mark.parametrize("lower, higher", [
    ("1.0.0", "2.0.0"), ("1.9.0", "1.10.0"), ("1.0.9", "1.0.10"), ("1.0.0-rc.1", "1.0.0"),
    ("1.0.0-alpha", "1.0.0-alpha.1"), ("1.0.0-alpha.1", "1.0.0-alpha.beta"), ("1.0.0-beta.2", "1.0.0-beta.11"),
    ("1.0.0-rc.1", "1.0.0-rc.1.1"), ("v1.2.3", "1.2.4"),
    # Not semantic versions: numbers and words, numbers numerically.
    ("2024.9.12", "2024.10.3"), ("r9", "r10"), ("1.0", "1.0.1"), ("1.0beta", "1.0.1"),
])
def test_version_order(lower, higher):
    assert compare_versions(lower, higher) == -1
    assert compare_versions(higher, lower) == 1


@pytest.mark.parametrize("left, right", [("1.0.0", "1.0.0+build.7"), ("1.0.0+a", "1.0.0+b"), ("1.0", "1-0"),
                                         ("v2.0.0", "2.0.0")])
def test_versions_equal(left, right):
    assert compare_versions(left, right) == 0


def state_with(path, *accepted):
    """A saved trust state with one entry per (name, version, sha) accepted in order."""
    state = TrustState.load(path)
    for name, version, sha in accepted:
        decision = state.decide(name, version, sha, allow_downgrade=True)
        state.append(name, version, sha, SIGNERS, registry="high:5000/petra", decision=decision,
                     accepted_at="2026-11-0%dT00:00:00Z" % (len(state.entries) + 1))
    state.save()
    return state


def edit(path, change):
    with open(path) as handle:
        document = json.load(handle)
    change(document)
    with open(path, "w") as handle:
        json.dump(document, handle, indent=1)


def tampered(path, anchor=None):
    with pytest.raises(TrustError) as info:
        TrustState.load(path, anchor)
    return info.value


@pytest.fixture
def three(tmp_path):
    path = str(tmp_path / "trust.json")
    state_with(path, ("platform", "1.0.0", SHA["a"]), ("apps", "3.1.0", SHA["b"]), ("platform", "2.0.0", SHA["c"]))
    return path


def test_decisions(three):
    state = TrustState.load(three)
    assert state.head == {"entries": 3, "hash": state.entries[-1]["hash"]}
    assert state.entries[0]["previous"] == GENESIS
    assert [e["previous"] for e in state.entries[1:]] == [e["hash"] for e in state.entries[:-1]]
    assert state.decide("other", "0.1.0", SHA["d"]).action == "new"
    assert state.decide("platform", "2.1.0", SHA["d"]).action == "upgrade"
    reload = state.decide("platform", "2.0.0", SHA["c"])
    assert reload.action == "reload" and reload.record is False
    with pytest.raises(TrustError) as info:
        state.decide("platform", "1.5.0", SHA["d"])
    assert info.value.reason == "rollback" and "older than 2.0.0" in info.value.message
    assert "allow_downgrade: true" in info.value.hint
    # apps 3.1.0 does not hold platform back: versions are compared per name.
    assert state.decide("platform", "2.0.1", SHA["e"]).action == "upgrade"


def overridden(path, version, sha256_hex, action):
    """Accept platform ``version`` with allow_downgrade: it is recorded as a downgrade replacing 2.0.0; the state
    read again afterwards."""
    state = TrustState.load(path)
    decision = state.decide("platform", version, sha256_hex, allow_downgrade=True)
    assert decision.action == action and decision.record
    entry = state.append("platform", version, sha256_hex, SIGNERS, decision=decision)
    assert entry["downgrade"] is True and entry["replaces"] == "2.0.0"
    state.save()
    again = TrustState.load(path)
    assert again.entries[-1] == entry and len(again.entries) == 4
    return again


def test_an_explicit_downgrade_is_recorded_and_becomes_the_floor(three):
    again = overridden(three, "1.0.0", SHA["a"], "downgrade")
    # Re-runs of the version gone back to are fine; the later versions can be loaded again.
    assert again.decide("platform", "1.0.0", SHA["a"]).action == "reload"
    assert again.decide("platform", "2.0.0", SHA["c"]).action == "upgrade"


def test_another_build_of_the_current_version_needs_an_override(three):
    """A different file under the accepted name and version could be an older signed build replayed: refused unless
    asked for, and then recorded as a downgrade that replaces the same version."""
    state = TrustState.load(three)
    with pytest.raises(TrustError) as info:
        state.decide("platform", "2.0.0", SHA["d"])
    assert info.value.reason == "same-version"
    assert SHA["c"] in info.value.message and SHA["d"] in info.value.message
    assert "allow_downgrade: true" in info.value.hint
    again = overridden(three, "2.0.0", SHA["d"], "same-version")
    # The replacement is now the accepted build: it re-runs without a change, the one it replaced is refused.
    assert again.decide("platform", "2.0.0", SHA["d"]).action == "reload"
    with pytest.raises(TrustError) as info:
        again.decide("platform", "2.0.0", SHA["c"])
    assert info.value.reason == "same-version"


def test_a_changed_entry_is_detected(three):
    edit(three, lambda d: d["entries"][0].update(version="9.0.0"))
    error = tampered(three)
    assert error.reason == "trust-state-tampered"
    assert "entry 1 (platform 9.0.0) was changed after it was recorded" in error.message


def test_a_changed_entry_with_its_hash_recomputed_is_detected(three):
    def rewrite(document):
        entry = document["entries"][1]
        entry["sha256"] = SHA["f"]
        entry["hash"] = entry_hash(entry)
    edit(three, rewrite)
    assert "entry 3 (platform 2.0.0) does not follow entry 2" in tampered(three).message


def test_a_deleted_entry_is_detected(three):
    edit(three, lambda d: d["entries"].pop(1))
    assert "entry 2 (platform 2.0.0) does not follow entry 1" in tampered(three).message
    state_with(three + ".first", ("platform", "1.0.0", SHA["a"]), ("platform", "2.0.0", SHA["c"]))
    edit(three + ".first", lambda d: d["entries"].pop(0))
    assert "entry 1 (platform 2.0.0) does not start the log" in tampered(three + ".first").message


def test_reordered_entries_are_detected(three):
    edit(three, lambda d: d["entries"].reverse())
    assert "entries were removed, inserted or reordered" in tampered(three).message


def test_a_cut_off_end_is_detected_by_the_head_and_by_an_anchor(three):
    last = TrustState.load(three).entries[-1]["hash"]
    edit(three, lambda d: d["entries"].pop())
    assert "entries were removed from the end" in tampered(three).message

    # Whoever also rewrites the head passes the chain check, but not an anchor recorded earlier.
    def rewrite_head(document):
        document["head"] = {"entries": 2, "hash": document["entries"][-1]["hash"]}
    edit(three, rewrite_head)
    assert len(TrustState.load(three).entries) == 2
    error = tampered(three, anchor=last)
    assert error.reason == "trust-state-anchor" and last in error.message
    os.unlink(three)
    assert "does not exist" in tampered(three, anchor=last).message


def test_malformed_state(tmp_path):
    path = tmp_path / "trust.json"
    path.write_text("{")
    assert tampered(str(path)).reason == "trust-state-malformed"
    path.write_text(json.dumps({"apiVersion": "petra.dev/v1alpha1", "kind": "TrustState", "formatVersion": 1,
                                "head": {"entries": 0, "hash": GENESIS}, "entries": [{"name": "x"}]}))
    error = tampered(str(path))
    assert error.reason == "trust-state-malformed" and "entries/0" in error.message


def test_gate_options(tmp_path):
    base = {"trust_state": None, "trust_state_anchor": None, "allow_downgrade": False}
    assert gate_from_params(base) is None
    with pytest.raises(TrustError, match="allow_downgrade needs trust_state"):
        gate_from_params(dict(base, allow_downgrade=True))
    with pytest.raises(TrustError, match="trust_state_required needs trust_state"):
        gate_from_params(dict(base, trust_state_required=True))
    gate = gate_from_params(dict(base, trust_state=str(tmp_path / "missing-dir" / "trust.json")))
    with pytest.raises(TrustError, match="does not exist"):
        gate.require_writable()
    # Check mode records nothing: no lock, no writable (nor existing) directory needed.
    result, record, path, changed = gate.record(VERIFICATION, METADATA, {}, "registry.high.example/petra",
                                                check_mode=True)
    assert changed and result["decision"]["action"] == "new" and result["entry"]["version"] == "2.0.0"
    assert record["acceptance"]["trustEntry"]["number"] == 1 and not os.path.exists(tmp_path / "missing-dir")


def documented_empty_log():
    """The empty log docs/bundle-spec.md tells operators to create before the first load."""
    import re
    docs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "bundle-spec.md")
    with open(docs) as handle:
        text = handle.read()
    section = text[text.index("**Initialising the trust state.**"):]
    return json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))


def test_a_required_trust_state_must_exist(tmp_path):
    """trust_state_required: a deleted trust state is refused, not read as an empty log that admits any version."""
    path = str(tmp_path / "trust.json")
    assert TrustState.load(path).entries == []
    with pytest.raises(TrustError) as info:
        TrustState.load(path, required=True)
    assert info.value.reason == "trust-state-missing" and "trust_state_required" in info.value.message
    assert "Initialising the trust state" in info.value.hint
    base = {"trust_state": path, "trust_state_anchor": None, "allow_downgrade": False, "trust_state_required": True}
    with pytest.raises(TrustError) as info:
        gate_from_params(base)
    assert info.value.reason == "trust-state-missing"
    # Initialised as documented, it is a valid empty log; the first load then appends entry 1.
    with open(path, "w") as handle:
        json.dump(documented_empty_log(), handle)
    gate = gate_from_params(base)
    assert gate.state.exists and gate.state.entries == [] and gate.state.head == {"entries": 0, "hash": GENESIS}
    result, _record, _path, changed = gate.record(VERIFICATION, METADATA, {}, "registry.high.example/petra")
    assert changed and result["head"]["entries"] == 1
    assert TrustState.load(path, result["entry"]["hash"], required=True).entries[0]["name"] == "platform"
    # Deleted afterwards: refused again, also when the load itself is about to record.
    os.unlink(path)
    with pytest.raises(TrustError) as info:
        gate.record(VERIFICATION, METADATA, {}, "registry.high.example/petra")
    assert info.value.reason == "trust-state-missing"


METADATA = {
    "name": "platform", "version": "2.0.0", "created": "2026-11-01T00:00:00Z", "expires": None,
    "images": [
        {"ref": "cgr.dev/chainguard/nginx:1.27", "digest": "sha256:" + SHA["a"],
         "sourceVerification": {"rule": "cgr.dev/*", "method": "keyless",
                                "identity": "https://github.com/chainguard-images/images/.github/workflows/release.yaml@refs/heads/main",
                                "issuer": "https://token.actions.githubusercontent.com", "format": "referrer",
                                "verifiedAt": "2026-11-01T00:00:00Z", "extra": "not carried"},
         "countersignature": {"tag": "sha256-%s.sig" % SHA["a"], "digest": "sha256:" + SHA["b"]}},
        {"ref": "registry.example:5000/team/app:1.0", "digest": "sha256:" + SHA["c"]},
    ],
}
VERIFICATION = {"sha256": SHA["f"], "size": 123, "key_id": SIGNERS[0], "signers": SIGNERS, "threshold": 2}


def test_custody_record_chain_per_image(tmp_path):
    targets = {("registry.example:5000/team/app:1.0", "sha256:" + SHA["c"]):
               "high:5000/petra/registry.example-5000/team/app:1.0@sha256:" + SHA["c"]}
    record = custody.custody_record(METADATA, VERIFICATION, targets, {"decision": "new"})
    signed, older = record["images"]
    assert signed["source"] == "cgr.dev/chainguard/nginx:1.27" and signed["sourceDigest"] == "sha256:" + SHA["a"]
    assert signed["sourceSignature"]["method"] == "keyless" and "extra" not in signed["sourceSignature"]
    assert signed["countersignature"]["digest"] == "sha256:" + SHA["b"]
    assert signed["bundleSha256"] == SHA["f"] and signed["signers"] == SIGNERS and signed["target"] is None
    # A bundle built without source verification: the identity is null, the rest of the chain is there.
    assert older["sourceSignature"] is None and older["countersignature"] is None
    assert older["target"].startswith("high:5000/petra/registry.example-5000/team/app:1.0@")
    assert record["bundle"]["threshold"] == 2 and record["acceptance"] == {"decision": "new"}

    path = custody.custody_path(str(tmp_path / "trust.json"), "platform", "2.0.0+build/..")
    suffix = hashlib.sha256(b"platform\x002.0.0+build/..").hexdigest()[:16]
    assert path == str(tmp_path / "custody" / ("platform-2.0.0+build_..-%s.json" % suffix))
    assert custody.write_custody(path, record, check_mode=True) is True and not os.path.exists(path)
    assert custody.write_custody(path, record) is True
    assert json.loads(open(path).read()) == record
    assert custody.write_custody(path, record) is False


def test_custody_file_names_never_collide(tmp_path):
    """Readable parts that look alike (a separator inside the name, a character replaced) get different files."""
    trust = str(tmp_path / "trust.json")
    pairs = [("a-b", "1"), ("a", "b-1"), ("a/b", "1"), ("a_b", "1"), ("a", "1.0"), ("a", "1_0")]
    paths = [custody.custody_path(trust, name, version) for name, version in pairs]
    assert len(set(paths)) == len(pairs)
    assert all(os.path.dirname(path) == str(tmp_path / "custody") for path in paths)
    assert os.path.basename(paths[0]).startswith("a-b-1-") and os.path.basename(paths[2]).startswith("a_b-1-")


def test_witness_comparison(three, tmp_path):
    """How a trust state stands to its witness in the registry: behind, forked, equal, ahead, break glass."""
    from ansible_collections.petra.core.plugins.module_utils.trust.witness import compare, witness_document

    state = TrustState.load(three)
    witnessed = witness_document(state, "high:5000/petra")
    assert witnessed["head"] == state.head and witnessed["entry"]["version"] == "2.0.0"
    assert compare(state, None, "ref") == "none"
    assert compare(state, witnessed, "ref") == "equal"
    shorter = TrustState(three, state.entries[:2], exists=True)
    assert compare(state, witness_document(shorter, "high:5000/petra"), "ref") == "ahead"

    for behind, words in ((shorter, "holds 2 entries"), (TrustState(str(tmp_path / "gone.json")), "does not exist")):
        with pytest.raises(TrustError) as info:
            compare(behind, witnessed, "ref")
        assert info.value.reason == "trust-state-behind" and words in info.value.message
        assert "entry 3 (platform 2.0.0" in info.value.message and state.head["hash"] in info.value.hint

    rewritten = TrustState(three, state.entries[:2], exists=True)
    rewritten.append("platform", "2.0.0", SHA["d"], SIGNERS, accepted_at="2026-11-09T00:00:00Z")
    with pytest.raises(TrustError) as info:
        compare(rewritten, witnessed, "ref")
    assert info.value.reason == "trust-state-forked"

    # Break glass names the witnessed head exactly, or nothing happens.
    assert compare(shorter, witnessed, "ref", reset=state.head["hash"]) == "reset"
    for reset, existing in ((GENESIS, witnessed), (state.head["hash"], None)):
        with pytest.raises(TrustError) as info:
            compare(shorter, existing, "ref", reset=reset)
        assert info.value.reason == "trust-witness-reset"
