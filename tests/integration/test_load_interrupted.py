"""Loads through a TCP proxy that stalls or resets connections to the target registry (Debian's docker-registry, TLS
+ htpasswd): interrupted uploads complete in the same run, and a registry that stays out of reach fails with a
message naming the registry, the blob and the image."""

import json
import os

import pytest

from ansible_collections.petra.core.plugins.module_utils.bundle.create import create_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.adapters.bundle import run_load
from ansible_collections.petra.core.plugins.module_utils.load.errors import LoadError
from ansible_collections.petra.core.plugins.module_utils.oci.auth import Credentials
from ansible_collections.petra.core.plugins.module_utils.oci.registry import ClientPool
from ansible_collections.petra.core.plugins.module_utils.signing.keys import load_signer
from ansible_collections.petra.core.tests.conftest import REGISTRY_USER
from ansible_collections.petra.core.tests.integration.test_load import HIGH_USER, assert_no_dangling_tags, params_for
from ansible_collections.petra.core.tests.support import images, pki, servers
from ansible_collections.petra.core.tests.support.proxy import FaultyProxy

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def acc(registry, tmp_path_factory):
    """acc/one (a 3 MB layer: one PUT), acc/two (the same layer: mounted), acc/big (10 MB: a streamed PATCH) in the
    source registry, and a bundle of each case."""
    work = tmp_path_factory.mktemp("acc")
    layout = str(work / "layout")
    one = images.build_image(layout, "one", ["acc-one"], layer_size=3 * 1000 * 1000)
    two = images.build_image(layout, "two", ["acc-one"], layer_size=3 * 1000 * 1000, arch="arm64")
    big = images.build_image(layout, "big", ["acc-big"], layer_size=10 * 1000 * 1000)
    for tag in ("one", "two", "big"):
        images.push(layout, tag, registry.registry, "acc/" + tag, "1.0", creds=REGISTRY_USER)
    key = str(work / "k.pem")
    pub = pki.write_ec_key(key)
    pool = ClientPool(Credentials(*REGISTRY_USER), ca_file=registry.registry.tls["ca.pem"])
    bundles = {}
    for case, tags in (("small", ["one"]), ("large", ["big"]), ("mount", ["one", "two"])):
        spec = BundleSpec({"apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
                           "metadata": {"name": case, "version": "1.0.0"},
                           "images": [{"ref": "%s/acc/%s:1.0" % (registry.registry.host, tag)} for tag in tags]},
                          str(work))
        built = create_bundle(spec, str(work / (case + ".tar.zst")), load_signer(key), pool,
                              environ={"SOURCE_DATE_EPOCH": "1767225600"})
        bundles[case] = {"path": built["path"], "pub": pub, "tags": tags}
    return {"bundles": bundles, "digests": {"one": one, "two": two, "big": big},
            "layers": {tag: _layer(layout, tag) for tag in ("one", "big")}, "source": registry.registry.host}


def _layer(layout, tag):
    digest = images.manifest_digest(layout, tag)
    with open(os.path.join(layout, "blobs", "sha256", digest.split(":")[1])) as handle:
        return json.load(handle)["layers"][0]["digest"]


@pytest.fixture
def high(tmp_path, tls_material):
    with servers.Registry(str(tmp_path), tls=tls_material, users=dict([HIGH_USER])) as server:
        yield server


def load_through(proxy, high, bundle, **extra):
    """A load into the registry behind the proxy, with a 1 s timeout so each stall costs a second."""
    params = params_for(high, bundle, registry=proxy.host + "/mirror", registry_timeout=1.0, registry_retries=2,
                        parallel=2)
    params.update(extra)
    return run_load(params, check_mode=False)


def assert_loaded(high, acc, tags):
    prefix = "mirror/%s/acc" % acc["source"].replace(":", "-")
    for tag in tags:
        assert images.skopeo_inspect_digest(high, "%s/%s:1.0" % (prefix, tag), HIGH_USER) == acc["digests"][tag]
    assert_no_dangling_tags(high)  # skopeo copies every tag out, checking each blob's digest


@pytest.mark.parametrize("mode", ["stall", "reset"])
@pytest.mark.parametrize("case", ["small", "large", "mount"])
def test_interrupted_uploads_complete_in_the_same_run(high, acc, case, mode):
    """The first three connections that carry 1 MiB to the registry stall (or are reset): the 3 MB layer's single
    PUT, the 10 MB layer's streamed PATCH, or the upload that acc/two then mounts. Each broken attempt goes again in
    a new session (the registry drops the old one), and a blob still missing goes again in the next pass over the
    bundle: one run loads everything."""
    bundle = acc["bundles"][case]
    with FaultyProxy(high.port, mode, after=MIB, faults=3) as proxy:
        result = load_through(proxy, high, bundle)
        assert proxy.faulted == 3
    assert result["changed"] is True and all(image["pushed"] for image in result["images"])
    if case == "mount":
        assert result["blobs"]["mounted"] >= 1
    assert_loaded(high, acc, bundle["tags"])
    assert run_load(params_for(high, bundle), check_mode=False)["changed"] is False


@pytest.mark.parametrize("mode,case", [("stall", "small"), ("reset", "large")])
def test_registry_out_of_reach_names_registry_blob_and_image(high, acc, mode, case):
    """Every connection that carries 1 MiB stalls or is reset: the load fails after its bounded retries, naming the
    registry, the blob and the image, and says to run again, never that a repository is missing. Run again with the
    path healed, it resumes and completes."""
    bundle = acc["bundles"][case]
    tag = bundle["tags"][0]
    with FaultyProxy(high.port, mode, after=MIB) as proxy:
        with pytest.raises(LoadError) as info:
            load_through(proxy, high, bundle, registry_retries=1)
        message = str(info.value)
        assert proxy.host in message and acc["layers"][tag] in message
        assert "image %s/acc/%s:1.0" % (acc["source"], tag) in message and "run the load again" in message
        assert "has no" not in message and "_state=" not in message
        proxy.mode = None  # the path heals
        result = load_through(proxy, high, bundle)
    assert result["changed"] is True and result["blobs"]["skipped"] >= 1  # the config got through the first time
    assert_loaded(high, acc, bundle["tags"])
