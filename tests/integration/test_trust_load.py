"""Loading with a trust state: anti-rollback, explicit downgrades, expiry, M-of-N signers and the custody record,
against a real high-side registry (docker-registry with TLS and htpasswd)."""

import json
import os
import pathlib
import subprocess

import pytest

from ansible_collections.petra.core.plugins.module_utils.bundle.second_signature import cosign_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.create import create_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import VerificationError
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.adapters.bundle import run_load
from ansible_collections.petra.core.plugins.module_utils.adapters.verify import run as run_verify
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys
from ansible_collections.petra.core.plugins.module_utils.oci.auth import Credentials
from ansible_collections.petra.core.plugins.module_utils.oci.registry import ClientPool
from ansible_collections.petra.core.plugins.module_utils.signing.keys import key_id, load_signer
from ansible_collections.petra.core.plugins.module_utils.trust import custody
from ansible_collections.petra.core.plugins.module_utils.trust.errors import TrustError
from ansible_collections.petra.core.tests.conftest import REGISTRY_USER
from ansible_collections.petra.core.tests.integration.test_load import HIGH_USER, params_for
from ansible_collections.petra.core.tests.support import images, pki, servers


@pytest.fixture(scope="module")
def releases(registry, tmp_path_factory):
    """Bundles "rollback" 1.0.0, 2.0.0, an expired 2.1.0 and another build of 2.0.0 (each with an image and a
    file), signed by key a; key b co-signs 2.0.0 only."""
    work = tmp_path_factory.mktemp("releases")
    keys = {}
    for name in "ab":
        public = pki.write_ec_key(str(work / ("%s.pem" % name)))
        keys[name] = {"key": str(work / ("%s.pem" % name)), "pub": public,
                      "id": key_id(load_public_keys([public])[0])}
    (work / "payload").write_bytes(os.urandom(20_000))
    pool = ClientPool(Credentials(*REGISTRY_USER), ca_file=registry.registry.tls["ca.pem"])
    built = {}
    for label, version, expires, epoch in (("1.0.0", "1.0.0", "2099-12-31", "1767225600"),
                                           ("2.0.0", "2.0.0", "2099-12-31", "1767225600"),
                                           ("2.1.0", "2.1.0", "2020-01-31", "1767225600"),
                                           ("2.0.0-rebuilt", "2.0.0", "2099-12-31", "1767229200")):
        spec = BundleSpec({"apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
                           "metadata": {"name": "rollback", "version": version, "expires": expires},
                           "images": [{"ref": registry.app}], "files": [{"name": "payload", "path": "payload"}]},
                          str(work))
        built[label] = create_bundle(spec, str(work / ("rollback-%s.tar.zst" % label)), load_signer(keys["a"]["key"]),
                                     pool, environ={"SOURCE_DATE_EPOCH": epoch})["path"]
    cosign_bundle(built["2.0.0"], load_signer(keys["b"]["key"]), load_public_keys([keys["a"]["pub"]]))
    return {"bundles": built, "keys": keys}


@pytest.fixture
def high(tmp_path, tls_material):
    with servers.Registry(str(tmp_path), tls=tls_material, users=dict([HIGH_USER])) as server:
        yield server


def load(high, releases, version, trust_state, check_mode=False, **extra):
    bundle = {"path": releases["bundles"][version], "pub": releases["keys"]["a"]["pub"]}
    params = params_for(high, bundle, trust_state=str(trust_state), trust_state_anchor=None, allow_downgrade=False,
                        threshold=1, cosignatures=None)
    params.update(extra)
    return run_load(params, check_mode=check_mode)


def list_tags(high, repository):
    """The version tags of a repository (the cosign signature tags pushed beside them left out)."""
    args = ["skopeo", "list-tags"] + [a.replace("--dest-", "--") for a in images.skopeo_tls_args(high, HIGH_USER)]
    listing = subprocess.run(args + ["docker://%s/%s" % (high.host, repository)], capture_output=True, text=True,
                             timeout=60, check=False)
    found = json.loads(listing.stdout)["Tags"] if listing.returncode == 0 else []
    return [tag for tag in found or [] if not tag.startswith("sha256-")]


def test_rollback_refused_reload_fine_downgrade_recorded(high, releases, tmp_path):
    state_path = tmp_path / "state" / "trust.json"
    # Check mode only reads the trust state: it need not be writable, nor its directory exist yet.
    preview = load(high, releases, "2.0.0", state_path, check_mode=True)
    assert preview["trust_state"]["decision"]["action"] == "new" and not state_path.parent.exists()
    state_path.parent.mkdir()
    first = load(high, releases, "2.0.0", state_path)
    assert first["changed"] is True and first["trust_state"]["decision"]["action"] == "new"
    entry = first["trust_state"]["entry"]
    assert entry["version"] == "2.0.0" and entry["sha256"] == first["sha256"]
    assert entry["signers"] == [releases["keys"]["a"]["id"]]  # only a's key was given
    assert first["trust_state"]["head"] == {"entries": 1, "hash": entry["hash"]}

    # The custody record beside the trust state: source -> digest -> source identity -> bundle -> target.
    custody_path = pathlib.Path(custody.custody_path(str(state_path), "rollback", "2.0.0"))
    assert first["custody_path"] == str(custody_path) and custody_path.name.startswith("rollback-2.0.0-")
    record = json.loads(custody_path.read_text())
    assert record == first["custody"]
    (image,) = record["images"]
    loaded = first["images"][0]
    assert image["source"] == loaded["source"] and image["sourceDigest"] == loaded["digest"]
    assert image["target"] == loaded["target"] and image["bundleSha256"] == first["sha256"]
    assert image["signers"] == [releases["keys"]["a"]["id"]]
    assert image["sourceSignature"] is None or image["sourceSignature"]["method"] in ("key", "keyless", "none")
    assert record["acceptance"]["trustEntry"] == {"number": 1, "hash": entry["hash"]}

    # 1.0.0 after 2.0.0: refused after verification and before the registry is touched; the state is unchanged.
    before = state_path.read_bytes()
    with pytest.raises(TrustError) as info:
        load(high, releases, "1.0.0", state_path)
    assert info.value.reason == "rollback" and "older than 2.0.0" in info.value.message
    assert state_path.read_bytes() == before
    assert list_tags(high, "mirror/files/rollback/payload") == ["2.0.0"]

    # 2.0.0 again: fine, nothing new to push or record.
    again = load(high, releases, "2.0.0", state_path)
    assert again["changed"] is False and again["trust_state"]["decision"]["action"] == "reload"
    assert state_path.read_bytes() == before

    # Another build of 2.0.0 (an older signed build replayed, say): refused before anything is pushed.
    catalog = high.catalog(*HIGH_USER)
    with pytest.raises(TrustError) as info:
        load(high, releases, "2.0.0-rebuilt", state_path)
    assert info.value.reason == "same-version" and first["sha256"] in info.value.message
    assert state_path.read_bytes() == before and high.catalog(*HIGH_USER) == catalog

    # An explicit downgrade: check mode writes nothing, then it is accepted and recorded as a downgrade.
    preview = load(high, releases, "1.0.0", state_path, check_mode=True, allow_downgrade=True)
    assert preview["changed"] is True and preview["trust_state"]["decision"]["action"] == "downgrade"
    one = pathlib.Path(custody.custody_path(str(state_path), "rollback", "1.0.0"))
    assert state_path.read_bytes() == before and not one.exists()
    down = load(high, releases, "1.0.0", state_path, allow_downgrade=True)
    assert down["changed"] is True and down["trust_state"]["entry"]["downgrade"] is True
    assert down["trust_state"]["entry"]["replaces"] == "2.0.0"
    assert down["trust_state"]["entry"]["previous"] == entry["hash"]
    assert json.loads(one.read_text())["acceptance"]["downgrade"]
    assert sorted(list_tags(high, "mirror/files/rollback/payload")) == ["1.0.0", "2.0.0"]

    # petra_verify reads the same state and says what a load would do, without writing.
    verified = run_verify({"path": releases["bundles"]["2.0.0"], "public_keys": [releases["keys"]["a"]["pub"]],
                           "signature": None, "threshold": 1, "cosignatures": None, "trust_state": str(state_path),
                           "trust_state_anchor": entry["hash"], "allow_downgrade": False})
    assert verified["trust_state"]["decision"]["action"] == "upgrade"
    assert verified["trust_state"]["head"]["entries"] == 2 and verified["custody"]["acceptance"] is None
    assert verified["custody"]["images"][0]["target"] is None


def test_edited_state_expired_bundle_and_threshold_push_nothing(high, releases, tmp_path):
    state_path = tmp_path / "trust.json"
    load(high, releases, "1.0.0", state_path)
    catalog = high.catalog(*HIGH_USER)

    # Expiry is enforced at load.
    with pytest.raises(VerificationError) as info:
        load(high, releases, "2.1.0", state_path)
    assert info.value.reason == "expired"

    # Two keys required: 2.0.0 carries a's signature and b's co-signature, 1.0.0 only a's.
    both = [releases["keys"]["a"]["pub"], releases["keys"]["b"]["pub"]]
    with pytest.raises(VerificationError) as info:
        load(high, releases, "1.0.0", state_path, public_keys=both, threshold=2)
    assert info.value.reason == "threshold" and info.value.details["unsigned_keys"] == [releases["keys"]["b"]["id"]]

    # An edited trust state is refused before the bundle is even read.
    document = json.loads(state_path.read_text())
    document["entries"][0]["version"] = "0.9.0"
    state_path.write_text(json.dumps(document))
    with pytest.raises(TrustError) as info:
        load(high, releases, "2.0.0", state_path, public_keys=both, threshold=2)
    assert info.value.reason == "trust-state-tampered"
    assert high.catalog(*HIGH_USER) == catalog
    assert list_tags(high, "mirror/files/rollback/payload") == ["1.0.0"]

    # Restored, the two-key load goes through and records both signers.
    document["entries"][0]["version"] = "1.0.0"
    state_path.write_text(json.dumps(document))
    accepted = load(high, releases, "2.0.0", state_path, public_keys=both, threshold=2)
    assert accepted["signers"] == [releases["keys"]["a"]["id"], releases["keys"]["b"]["id"]]
    assert accepted["trust_state"]["entry"]["signers"] == sorted(accepted["signers"])
    assert accepted["custody"]["bundle"]["threshold"] == 2
