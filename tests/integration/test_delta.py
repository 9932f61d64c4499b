"""Layer-level delta bundles against real registries (docker-registry with TLS and htpasswd, images built with umoci
and pushed with skopeo): what a delta leaves out, that it verifies on its own, that loading it after its base gives
the registry state a full bundle gives, that it is refused (pushing nothing) where its base was never loaded, chains
of deltas, byte-identical rebuilds and the trust state."""

import json
import os
import shutil
import subprocess

import pytest

from ansible_collections.petra.core.plugins.module_utils.adapters.bundle import run_create, run_load
from ansible_collections.petra.core.plugins.module_utils.adapters.verify import run as run_verify
from ansible_collections.petra.core.plugins.module_utils.load.errors import LoadError
from ansible_collections.petra.core.plugins.module_utils.trust.errors import TrustError
from ansible_collections.petra.core.tests.conftest import REGISTRY_USER
from ansible_collections.petra.core.tests.integration.test_load import HIGH_USER, params_for
from ansible_collections.petra.core.tests.support import images, pki, servers

LAYER = 200_000
# Three images; 1.1.0 changes one layer of "a", 1.2.0 (a delta on the delta 1.1.0) one layer of "b".
IMAGES = {"a-1.0": ["d-base", "d-a1"], "a-1.1": ["d-base", "d-a2"], "b-1.0": ["d-base", "d-b1"],
          "b-1.2": ["d-base", "d-b2"], "c-1.0": ["d-c1", "d-c2"]}
RELEASES = {"1.0.0": ("a:1.0", "b:1.0", "c:1.0"), "1.1.0": ("a:1.1", "b:1.0", "c:1.0"),
            "1.2.0": ("a:1.1", "b:1.2", "c:1.0")}


def create_params(work, version, dest, **extra):
    """petra_bundle's parameters for release ``version``. Its time comes from the image configs (all made at one
    fixed time), so no build depends on the clock."""
    params = {"state": "present", "spec": None, "base_dir": str(work), "dest": str(dest), "signature": None,
              "definition": {"apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
                             "metadata": {"name": "delta", "version": version},
                             "images": [{"ref": "%s/delta/%s" % (source_host(work), ref)} for ref in RELEASES[version]],
                             "files": [{"name": "payload", "path": "payload"}]},
              "signing_key": str(work / "k.pem"), "signing_key_password": None, "signing_key_content": None,
              "compression_level": 3, "force": False, "mode": "0644", "ca_file": str(work / "ca.pem"),
              "registry_username":
              REGISTRY_USER[0], "registry_password": REGISTRY_USER[1], "insecure_registries": [],
              "registry_timeout": 30.0, "registry_retries": 2, "verify_images": None, "scan": None, "sbom": True,
              "public_keys": None, "base": None, "base_verification": None}
    params.update(extra)
    return params


def source_host(work):
    return (work / "source-host").read_text()


def verify_params(work, path):
    return {"path": str(path), "public_keys": [str(work / "k.pub")], "signature": None, "threshold": 1,
            "cosignatures": None, "trust_state": None, "trust_state_anchor": None, "allow_downgrade": False,
            "trust_state_required": False}


@pytest.fixture(scope="module")
def releases(registry, tmp_path_factory):
    """Full bundles 1.0.0, 1.1.0, 1.2.0; deltas 1.1.0 on 1.0.0 (from the base file) and 1.2.0 on the delta 1.1.0
    (from what petra_verify returned for it); the images' layer digests by seed."""
    work = tmp_path_factory.mktemp("delta")
    (work / "source-host").write_text(registry.registry.host)
    shutil.copy(registry.registry.tls["ca.pem"], str(work / "ca.pem"))
    pki.write_ec_key(str(work / "k.pem"))
    (work / "payload").write_bytes(os.urandom(LAYER))
    layout = str(work / "layout")
    for tag, seeds in IMAGES.items():
        images.build_image(layout, tag, seeds, layer_size=LAYER, created="2026-01-01T00:00:00Z")
        name, version = tag.split("-")
        images.push(layout, tag, registry.registry, "delta/" + name, version, creds=REGISTRY_USER)
    built = {}
    for version in RELEASES:
        built["full-" + version] = run_create(create_params(work, version, work / ("full-%s.tar.zst" % version)),
                                              False)
    built["delta-1.1.0"] = run_create(create_params(work, "1.1.0", work / "delta-1.1.0.tar.zst",
                                                    base=built["full-1.0.0"]["path"]), False)
    verified = run_verify(verify_params(work, built["delta-1.1.0"]["path"]))
    built["delta-1.2.0"] = run_create(create_params(work, "1.2.0", work / "delta-1.2.0.tar.zst",
                                                    base_verification=verified), False)
    return {"work": work, "built": built, "layout": layout}


def _key_pub(work):
    return str(work / "k.pub")


def layers_of(layout, tag):
    with open(os.path.join(layout, "blobs", "sha256", images.manifest_digest(layout, tag).split(":")[1])) as handle:
        return {layer["digest"]: layer["size"] for layer in json.load(handle)["layers"]}


def metadata_of(path):
    from ansible_collections.petra.core.plugins.module_utils.bundle.reader import read_metadata
    return read_metadata(path)


def test_delta_leaves_out_the_unchanged_layers_and_verifies_alone(releases):
    built, layout, work = releases["built"], releases["layout"], releases["work"]
    delta, full = built["delta-1.1.0"], built["full-1.1.0"]
    before, after = {}, {}
    for tag in ("a-1.0", "b-1.0", "c-1.0"):
        before.update(layers_of(layout, tag))
    for tag in ("a-1.1", "b-1.0", "c-1.0"):
        after.update(layers_of(layout, tag))
    unchanged = {digest: size for digest, size in after.items() if digest in before}
    payload = metadata_of(full["path"])["files"][0]
    unchanged[payload["digest"]] = payload["size"]
    new = set(layers_of(layout, "a-1.1")) - set(unchanged)
    assert len(new) == 1  # one layer of one image changed

    metadata = metadata_of(delta["path"])
    record = metadata["delta"]
    omitted = {item["digest"]: item["size"] for item in record["omitted"]}
    assert omitted == unchanged and record["omittedSize"] == sum(unchanged.values())
    full_sha = run_verify(verify_params(work, built["full-1.0.0"]["path"]))["sha256"]
    assert record["base"] == {"name": "delta", "version": "1.0.0", "sha256": full_sha}
    assert {item["carrier"] for item in record["omitted"]} == {full_sha}
    entries = {entry["digest"] for entry in metadata["entries"]}
    assert new <= entries and not entries & set(omitted)
    # Every manifest and config travels: the same image records as the full bundle.
    assert metadata["images"] == metadata_of(full["path"])["images"]

    saved = full["size"] - delta["size"]
    print("\nfull 1.1.0 %d bytes, delta %d bytes: %d saved, %d bytes of unchanged layers" % (
        full["size"], delta["size"], saved, record["omittedSize"]))
    # Random layers do not compress: the delta is smaller by the unchanged layers (less a few tar headers).
    assert abs(saved - record["omittedSize"]) < 16_384
    assert delta["delta"] == {"base": record["base"], "omitted_blobs": len(omitted),
                              "omitted_bytes": record["omittedSize"], "carriers": [record["base"]]}

    verified = run_verify(verify_params(work, delta["path"]))
    assert verified["verified"] is True and verified["sha256"] == delta["sha256"]
    assert verified["delta"]["base"] == record["base"] and verified["delta"]["omitted_bytes"] == sum(unchanged.values())
    assert {item["digest"] for item in verified["carried_blobs"]} == {
        entry["digest"] for entry in metadata["entries"] if entry["name"].startswith("blobs/")}
    assert run_verify(verify_params(work, full["path"]))["delta"] is None


def test_deltas_are_byte_identical_across_rebuilds_and_base_forms(releases, tmp_path):
    built, work = releases["built"], releases["work"]
    again = run_create(create_params(work, "1.1.0", tmp_path / "again.tar.zst", base=built["full-1.0.0"]["path"],
                                     public_keys=[_key_pub(work)]), False)
    base = run_verify(verify_params(work, built["full-1.0.0"]["path"]))
    other = run_create(create_params(work, "1.1.0", tmp_path / "from-result.tar.zst", base_verification=base), False)
    with open(built["delta-1.1.0"]["path"], "rb") as handle:
        first = handle.read()
    for result in (again, other):
        assert result["sha256"] == built["delta-1.1.0"]["sha256"]
        with open(result["path"], "rb") as handle:
            assert handle.read() == first
    # Built again onto itself: recognised as up to date.
    assert run_create(create_params(work, "1.1.0", built["delta-1.1.0"]["path"], base=built["full-1.0.0"]["path"]),
                      False)["changed"] is False


def test_chain_carriers(releases):
    built, work = releases["built"], releases["work"]
    record = metadata_of(built["delta-1.2.0"]["path"])["delta"]
    sha = {label: run_verify(verify_params(work, built[label]["path"]))["sha256"]
           for label in ("full-1.0.0", "delta-1.1.0")}
    assert record["base"]["sha256"] == sha["delta-1.1.0"] and record["base"]["version"] == "1.1.0"
    assert [item["version"] for item in record["carriers"]] == ["1.1.0", "1.0.0"]
    by_carrier = {}
    for item in record["omitted"]:
        by_carrier.setdefault(item["carrier"], set()).add(item["digest"])
    # a's new layer is carried by 1.1.0; the layers unchanged since 1.0.0 by 1.0.0 itself.
    new_in_11 = set(layers_of(releases["layout"], "a-1.1")) - set(layers_of(releases["layout"], "a-1.0"))
    assert by_carrier[sha["delta-1.1.0"]] == new_in_11
    layout = releases["layout"]
    shared_base = set(layers_of(layout, "a-1.0")) & set(layers_of(layout, "b-1.0"))
    payload = metadata_of(built["full-1.0.0"]["path"])["files"][0]["digest"]
    assert by_carrier[sha["full-1.0.0"]] == set(layers_of(layout, "c-1.0")) | shared_base | {payload}


def registry_state(server):
    """Every repository, tag and digest, and what `skopeo inspect` says of each tag (the registry's host left out)."""
    state = {}
    tls = [a.replace("--dest-", "--") for a in images.skopeo_tls_args(server, HIGH_USER)]
    for repository in sorted(server.catalog(*HIGH_USER)):
        listing = subprocess.run(["skopeo", "list-tags"] + tls + ["docker://%s/%s" % (server.host, repository)],
                                 capture_output=True, text=True, timeout=60, check=False)
        for tag in sorted((json.loads(listing.stdout)["Tags"] or []) if listing.returncode == 0 else []):
            reference = "%s:%s" % (repository, tag)
            raw = subprocess.run(["skopeo", "inspect", "--raw"] + tls + ["docker://%s/%s" % (server.host, reference)],
                                 capture_output=True, text=True, timeout=60, check=True).stdout
            # skopeo decodes images only (not the file and manifest-set artifacts): for those the raw manifest says all.
            inspected = subprocess.run(["skopeo", "inspect"] + tls + ["docker://%s/%s" % (server.host, reference)],
                                       capture_output=True, text=True, timeout=60, check=False)
            details = json.loads(inspected.stdout) if inspected.returncode == 0 else None
            if details is not None:
                details.pop("Name", None)
            state[reference] = (images.skopeo_inspect_digest(server, reference, HIGH_USER), raw, details)
    return state


def load(server, bundle_path, work, **extra):
    return run_load(params_for(server, {"path": bundle_path, "pub": _key_pub(work)}, **extra), check_mode=False)


def test_delta_after_base_gives_the_state_of_the_full_bundles(releases, tmp_path, tls_material):
    built, work = releases["built"], releases["work"]
    (tmp_path / "d").mkdir()
    (tmp_path / "f").mkdir()
    with servers.Registry(str(tmp_path / "d"), tls=tls_material, users=dict([HIGH_USER])) as with_deltas, \
            servers.Registry(str(tmp_path / "f"), tls=tls_material, users=dict([HIGH_USER])) as with_fulls:
        for server in (with_deltas, with_fulls):
            load(server, built["full-1.0.0"]["path"], work)
        for version in ("1.1.0", "1.2.0"):
            loaded = load(with_deltas, built["delta-" + version]["path"], work)
            assert loaded["changed"] is True and loaded["delta"]["base"]["version"] == \
                {"1.1.0": "1.0.0", "1.2.0": "1.1.0"}[version]
            load(with_fulls, built["full-" + version]["path"], work)
            state = registry_state(with_deltas)
            assert state == registry_state(with_fulls)
            assert len([reference for reference, (_d, _r, details) in state.items() if details]) >= 3
            assert "mirror/%s/delta/a:1.1" % source_host(work).replace(":", "-") in state
        assert load(with_deltas, built["delta-1.2.0"]["path"], work)["changed"] is False


def test_delta_where_its_base_was_never_loaded_is_refused_pushing_nothing(releases, tmp_path, tls_material):
    built, work = releases["built"], releases["work"]
    with servers.Registry(str(tmp_path), tls=tls_material, users=dict([HIGH_USER])) as server:
        with pytest.raises(LoadError) as info:
            load(server, built["delta-1.1.0"]["path"], work)
        error = info.value
        assert error.details["reason"] == "delta-base-missing"
        assert "delta 1.0.0" in error.message and "was loaded before" in error.message
        omitted = metadata_of(built["delta-1.1.0"]["path"])["delta"]["omitted"]
        assert error.details["missing_blobs"] == [item["digest"] for item in omitted]
        assert server.catalog(*HIGH_USER) == []

        # 1.2.0 rests on 1.1.0: with only 1.0.0 loaded, the one layer 1.1.0 brought is missing, and named with it.
        load(server, built["full-1.0.0"]["path"], work)
        before = registry_state(server)
        with pytest.raises(LoadError) as info:
            load(server, built["delta-1.2.0"]["path"], work)
        error = info.value
        assert len(error.details["missing_blobs"]) == 1
        assert [item["version"] for item in error.details["carriers"]] == ["1.1.0"]
        assert built["delta-1.1.0"]["sha256"] in error.message
        assert registry_state(server) == before


def test_trust_state_records_deltas_and_requires_their_base(releases, tmp_path, tls_material):
    built, work = releases["built"], releases["work"]
    (tmp_path / "state").mkdir()
    state = tmp_path / "state" / "trust.json"
    trust = {"trust_state": str(state), "trust_state_anchor": None, "allow_downgrade": False, "threshold": 1,
             "cosignatures": None}
    (tmp_path / "r").mkdir()
    with servers.Registry(str(tmp_path / "r"), tls=tls_material, users=dict([HIGH_USER])) as server:
        # The base is in the registry, but was never accepted through this trust state.
        load(server, built["full-1.0.0"]["path"], work)
        catalog = server.catalog(*HIGH_USER)
        with pytest.raises(TrustError) as info:
            load(server, built["delta-1.1.0"]["path"], work, **trust)
        assert info.value.reason == "delta-base-not-accepted" and "1.0.0" in info.value.message
        assert server.catalog(*HIGH_USER) == catalog and not state.exists()

        first = load(server, built["full-1.0.0"]["path"], work, **trust)
        assert "base" not in first["trust_state"]["entry"]
        second = load(server, built["delta-1.1.0"]["path"], work, **trust)
        entry = second["trust_state"]["entry"]
        assert entry["version"] == "1.1.0" and entry["sha256"] == built["delta-1.1.0"]["sha256"]
        assert entry["base"] == {"name": "delta", "version": "1.0.0", "sha256": built["full-1.0.0"]["sha256"]}
        assert second["custody"]["bundle"]["deltaBase"] == entry["base"]
        third = load(server, built["delta-1.2.0"]["path"], work, **trust)
        assert third["trust_state"]["entry"]["base"]["sha256"] == built["delta-1.1.0"]["sha256"]
        assert third["trust_state"]["head"]["entries"] == 3
        verified = run_verify(dict(verify_params(work, built["delta-1.2.0"]["path"]), trust_state=str(state)))
        assert verified["trust_state"]["decision"]["action"] == "reload"
