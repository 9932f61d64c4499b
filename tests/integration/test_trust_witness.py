"""The trust witness: a trust state put back to an older copy, deleted or cut short is refused through real loads
into a real high-side registry (docker-registry with TLS and htpasswd), because the registry keeps a second copy of
its head; normal loads move it, check mode does not, and a registry that will not take it is named before any push."""

import concurrent.futures
import hashlib
import json
import subprocess

import pytest

from ansible_collections.petra.core.plugins.module_utils.adapters.bundle import run_load
from ansible_collections.petra.core.plugins.module_utils.adapters.verify import run as run_verify
from ansible_collections.petra.core.plugins.module_utils.trust.errors import TrustError
from ansible_collections.petra.core.plugins.module_utils.trust.state import TrustState
from ansible_collections.petra.core.plugins.module_utils.trust.witness import KIND
from ansible_collections.petra.core.tests.integration.test_load import HIGH_USER, params_for
from ansible_collections.petra.core.tests.integration import test_trust_load
from ansible_collections.petra.core.tests.integration.test_trust_load import list_tags, load
from ansible_collections.petra.core.tests.support import images, servers

WITNESS = "mirror/petra/trust-witness"
# The registries and bundles of the trust state tests: a fresh high-side registry per test, bundles 1.0.0 and 2.0.0.
high = test_trust_load.high
releases = test_trust_load.releases


def witness_manifest(registry):
    """The witness manifest as skopeo reads it (an independent client), with its digest; None when there is none."""
    tls = [a.replace("--dest-", "--") for a in images.skopeo_tls_args(registry, HIGH_USER)]
    args = ["skopeo", "inspect", "--raw"] + tls
    shown = subprocess.run(args + ["docker://%s/%s:head" % (registry.host, WITNESS)], capture_output=True,
                           timeout=60, check=False)
    if shown.returncode != 0:
        assert b"manifest unknown" in shown.stderr.lower() or b"not found" in shown.stderr.lower(), shown.stderr
        return None
    return json.loads(shown.stdout), "sha256:" + hashlib.sha256(shown.stdout).hexdigest()


def expected_layer(state_path, registry):
    """The digest the witness layer must have for the trust state on disk, computed here from the file."""
    document = json.loads(state_path.read_text())
    last = document["entries"][-1]
    witness = {"apiVersion": "petra.dev/v1alpha1", "kind": KIND, "registry": "%s/mirror" % registry.host,
               "head": document["head"],
               "entry": {key: last[key] for key in ("name", "version", "sha256", "acceptedAt")}}
    data = json.dumps(witness, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def refused(high, releases, version, state_path, **extra):
    """A load that must be refused before anything is pushed; returns the error."""
    catalog, tags = high.catalog(*HIGH_USER), list_tags(high, "mirror/files/rollback/payload")
    before = witness_manifest(high)
    with pytest.raises(TrustError) as info:
        load(high, releases, version, state_path, **extra)
    assert high.catalog(*HIGH_USER) == catalog and list_tags(high, "mirror/files/rollback/payload") == tags
    assert witness_manifest(high) == before
    return info.value


def verify(high, releases, version, state_path):
    """petra_verify with the trust state and the registry that keeps its witness."""
    return run_verify({"path": releases["bundles"][version], "public_keys": [releases["keys"]["a"]["pub"]],
                       "signature": None, "threshold": 1, "cosignatures": None, "trust_state": str(state_path),
                       "trust_state_anchor": None, "allow_downgrade": False, "trust_state_required": True,
                       **{name: value for name, value in params_for(high, {"path": None, "pub": None}).items()
                          if name.startswith(("registry", "ca_file", "insecure"))}})


def test_sequential_loads_move_the_witness_and_check_mode_writes_nothing(high, releases, tmp_path):
    state_path = tmp_path / "trust.json"
    # Check mode: reads (there is no witness yet), says it would create one, writes nothing anywhere.
    preview = load(high, releases, "1.0.0", state_path, check_mode=True)
    assert preview["trust_state"]["witness"]["action"] == "create"
    assert witness_manifest(high) is None and not state_path.exists()
    assert not any(name.startswith("mirror/petra") for name in high.catalog(*HIGH_USER))

    first = load(high, releases, "1.0.0", state_path)
    witness = first["trust_state"]["witness"]
    assert witness["action"] == "create" and witness["previous"] is None
    assert witness["head"] == first["trust_state"]["head"] and witness["reference"] == "%s/%s:head" % (high.host,
                                                                                                       WITNESS)
    manifest, digest = witness_manifest(high)
    assert manifest["artifactType"] == "application/vnd.petra.trust-witness.v1+json"
    assert manifest["layers"][0]["digest"] == expected_layer(state_path, high)

    # Check mode of the next version: would update, writes nothing.
    state_before = state_path.read_bytes()
    preview = load(high, releases, "2.0.0", state_path, check_mode=True)
    assert preview["trust_state"]["witness"]["action"] == "update"
    assert witness_manifest(high) == (manifest, digest) and state_path.read_bytes() == state_before

    second = load(high, releases, "2.0.0", state_path)
    assert second["trust_state"]["witness"]["action"] == "update"
    assert second["trust_state"]["witness"]["previous"] == first["trust_state"]["head"]
    assert witness_manifest(high)[0]["layers"][0]["digest"] == expected_layer(state_path, high)

    # The same bundle again: nothing to record, the witness is left as it is, nothing changed.
    moved = witness_manifest(high)
    again = load(high, releases, "2.0.0", state_path, trust_state_required=True)
    assert again["changed"] is False and again["trust_state"]["witness"]["action"] is None
    assert again["trust_state"]["witness"]["status"] == "equal" and witness_manifest(high) == moved


def test_older_copy_put_back_is_refused_until_restored_or_broken_glass(high, releases, tmp_path):
    state_path = tmp_path / "trust.json"
    load(high, releases, "1.0.0", state_path)
    saved = state_path.read_bytes()
    newest = load(high, releases, "2.0.0", state_path)
    newest_bytes = state_path.read_bytes()
    head = newest["trust_state"]["head"]

    # The older copy put back is a valid chain; the witness says it is behind.
    state_path.write_bytes(saved)
    error = refused(high, releases, "1.0.0", state_path, trust_state_required=True)
    assert error.reason == "trust-state-behind"
    assert "behind its witness" in error.message and "holds 1 entry" in error.message
    assert "entry 2 (rollback 2.0.0" in error.message and head["hash"] in error.message
    assert "Restore the newest trust state" in error.hint and "trust_witness_reset: %s" % head["hash"] in error.hint
    # Check mode refuses it too, and so does petra_verify given the registry.
    with pytest.raises(TrustError) as info:
        load(high, releases, "1.0.0", state_path, check_mode=True)
    assert info.value.reason == "trust-state-behind"
    with pytest.raises(TrustError) as info:
        verify(high, releases, "1.0.0", state_path)
    assert info.value.reason == "trust-state-behind" and head["hash"] in info.value.message

    # A break glass must name exactly the head the refusal named.
    wrong = refused(high, releases, "1.0.0", state_path, trust_witness_reset="sha256:" + "0" * 64)
    assert wrong.reason == "trust-witness-reset" and head["hash"] in wrong.message

    # Restoring the newest trust state is the way out: 1.0.0 is then a rollback again, 2.0.0 a reload.
    state_path.write_bytes(newest_bytes)
    assert refused(high, releases, "1.0.0", state_path).reason == "rollback"
    verified = verify(high, releases, "2.0.0", state_path)["trust_state"]["witness"]
    assert verified == {"reference": "%s/%s:head" % (high.host, WITNESS), "status": "equal", "head": head}
    assert load(high, releases, "2.0.0", state_path)["changed"] is False

    # Break glass (the newest copy lost for good): accepted once against that head, and the witness follows.
    state_path.write_bytes(saved)
    broken = load(high, releases, "1.0.0", state_path, trust_witness_reset=head["hash"])
    assert broken["trust_state"]["witness"]["action"] == "reset"
    assert broken["trust_state"]["witness"]["previous"] == head
    assert broken["trust_state"]["witness"]["head"] == TrustState.load(str(state_path)).head
    assert witness_manifest(high)[0]["layers"][0]["digest"] == expected_layer(state_path, high)
    # Left in the playbook, it no longer matches, so it cannot stay a standing bypass.
    assert refused(high, releases, "2.0.0", state_path, trust_witness_reset=head["hash"]).reason == \
        "trust-witness-reset"


def test_deleted_and_truncated_trust_state_refused(high, releases, tmp_path):
    state_path = tmp_path / "trust.json"
    load(high, releases, "1.0.0", state_path)
    load(high, releases, "2.0.0", state_path)
    newest = state_path.read_bytes()

    # Deleted: a missing file reads as an empty log, which the witness contradicts.
    state_path.unlink()
    error = refused(high, releases, "1.0.0", state_path)
    assert error.reason == "trust-state-behind" and "does not exist" in error.message
    assert not state_path.exists()

    # Cut short, with the head rewritten to match: a valid chain of one entry, behind the witness.
    document = json.loads(newest)
    document["entries"] = document["entries"][:1]
    document["head"] = {"entries": 1, "hash": document["entries"][0]["hash"]}
    state_path.write_text(json.dumps(document))
    TrustState.load(str(state_path))  # the chain alone cannot tell
    error = refused(high, releases, "1.0.0", state_path)
    assert error.reason == "trust-state-behind" and "holds 1 entry" in error.message

    # Cut short as bytes: not a log at all.
    state_path.write_bytes(newest[: len(newest) // 2])
    assert refused(high, releases, "1.0.0", state_path).reason == "trust-state-malformed"

    # Another history of the same length (another trust state loading into this prefix, or a rewrite): its entry 2
    # is not the witnessed one.
    other = tmp_path / "other" / "trust.json"
    other.parent.mkdir()
    document = json.loads(newest)
    state = TrustState(str(other), document["entries"][:1], exists=True)
    entry = document["entries"][1]
    state.append(entry["name"], entry["version"], entry["sha256"], entry["signers"], registry=entry["registry"],
                 accepted_at="2020-01-01T00:00:00Z")
    state.save()
    error = refused(high, releases, "2.0.0", other)
    assert error.reason == "trust-state-forked" and "does not hold the head" in error.message

    # The newest trust state put back: loads go on.
    state_path.write_bytes(newest)
    assert load(high, releases, "2.0.0", state_path)["trust_state"]["witness"]["status"] == "equal"


class ReadOnlyRegistry(servers.Registry):
    """The same storage served read-only (distribution's maintenance mode): pulls work, every write is refused."""

    def _config(self):
        path = super()._config()
        with open(path) as handle:
            text = handle.read()
        with open(path, "w") as handle:
            handle.write(text.replace("  delete: {enabled: true}\n",
                                      "  delete: {enabled: true}\n  maintenance: {readonly: {enabled: true}}\n"))
        return path


def test_registry_that_refuses_the_witness_is_named_before_any_push(high, releases, tmp_path, tls_material):
    # The content is there already (loaded without a trust state), so only the witness needs writing.
    run_load(params_for(high, {"path": releases["bundles"]["1.0.0"], "pub": releases["keys"]["a"]["pub"]},
                        threshold=1, cosignatures=None), check_mode=False)
    high.stop()
    with ReadOnlyRegistry(high.workdir, tls=tls_material, users=dict([HIGH_USER])) as frozen:
        state_path = tmp_path / "trust" / "trust.json"
        state_path.parent.mkdir()
        with pytest.raises(TrustError) as info:
            load(frozen, releases, "1.0.0", state_path)
        assert info.value.reason == "trust-witness"
        assert "cannot write the trust witness %s/%s:head" % (frozen.host, WITNESS) in info.value.message
        assert "push rights on %s" % WITNESS in info.value.hint
        assert not state_path.exists()
        # Check mode only reads, so it works against a read-only registry.
        preview = load(frozen, releases, "1.0.0", state_path, check_mode=True)
        assert preview["trust_state"]["witness"]["action"] == "create"


def test_concurrent_loads_leave_one_entry_and_a_matching_witness(high, releases, tmp_path):
    state_path = tmp_path / "trust.json"
    load(high, releases, "1.0.0", state_path)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: load(high, releases, "2.0.0", state_path), range(2)))
    # The trust state's lock serialises the records: the second reads the first's entry, records nothing, and finds
    # the witness already at that head.
    assert sorted(result["trust_state"]["decision"]["action"] for result in results) == ["reload", "upgrade"]
    assert sorted(str(result["trust_state"]["witness"]["action"]) for result in results) == ["None", "update"]
    state = TrustState.load(str(state_path))
    assert [entry["version"] for entry in state.entries] == ["1.0.0", "2.0.0"]
    assert witness_manifest(high)[0]["layers"][0]["digest"] == expected_layer(state_path, high)
