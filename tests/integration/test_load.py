"""Loading verified bundles into a second ("high side") registry: TLS + htpasswd, checked with skopeo."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from ansible_collections.petra.core.plugins.module_utils.bundle.create import create_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import VerificationError
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.adapters.bundle import run_load
from ansible_collections.petra.core.plugins.module_utils.oci.auth import Credentials
from ansible_collections.petra.core.plugins.module_utils.oci.registry import ClientPool
from ansible_collections.petra.core.plugins.module_utils.signing.keys import load_signer
from ansible_collections.petra.core.tests.conftest import REGISTRY_USER
from ansible_collections.petra.core.tests.support import images, servers

HIGH_USER = ("loader", "high-Side-Passw0rd")


@pytest.fixture(scope="module")
def bundle(registry, tmp_path_factory):
    """A bundle of the registry fixture's images, a manifest set and a file, with its key pair."""
    from ansible_collections.petra.core.tests.support import pki
    work = tmp_path_factory.mktemp("load-bundle")
    key = str(work / "k.pem")
    pub = pki.write_ec_key(key)
    (work / "apps").mkdir()
    (work / "apps" / "ns.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n")
    (work / "k3s").write_bytes(os.urandom(50_000))
    spec = BundleSpec({"apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
                       "metadata": {"name": "load", "version": "1.2.0"},
                       "images": [{"ref": registry.app}, {"ref": registry.tools}, {"ref": registry.multi}],
                       "manifests": [{"name": "apps", "path": "apps"}],
                       "files": [{"name": "k3s", "path": "k3s"}]}, str(work))
    pool = ClientPool(Credentials(*REGISTRY_USER), ca_file=registry.registry.tls["ca.pem"])
    result = create_bundle(spec, str(work / "load.tar.zst"), load_signer(key), pool,
                           environ={"SOURCE_DATE_EPOCH": "1767225600"})
    return {"path": result["path"], "pub": pub, "key": key}


@pytest.fixture
def high(tmp_path, tls_material):
    with servers.Registry(str(tmp_path), tls=tls_material, users=dict([HIGH_USER])) as server:
        yield server


def params_for(high, bundle, **extra):
    params = {"src": bundle["path"], "public_keys": [bundle["pub"]], "signature": None, "registry": high.host + "/mirror",
              "ca_file": high.tls["ca.pem"], "registry_username": HIGH_USER[0], "registry_password": HIGH_USER[1],
              "insecure_registries": [], "registry_timeout": 30.0, "registry_retries": 2, "parallel": 4,
              "registries_dest": None, "registries_ca_path": "/etc/rancher/k3s/petra-registry-ca.pem"}
    params.update(extra)
    return params


def test_load_digests_match_skopeo(high, bundle, registry):
    result = run_load(params_for(high, bundle), check_mode=False)
    assert result["changed"] is True
    port_host = registry.registry.host.replace(":", "-")
    expected = {
        "mirror/%s/team/app:1.0" % port_host: registry.app_digest,
        "mirror/%s/team/tools:2.0" % port_host: registry.tools_digest,
        "mirror/%s/team/multi:3.0" % port_host: registry.multi_digest,
    }
    for reference, digest in expected.items():
        assert images.skopeo_inspect_digest(high, reference, HIGH_USER) == digest
    targets = {image["target"] for image in result["images"]}
    assert "%s/mirror/%s/team/app:1.0@%s" % (high.host, port_host, registry.app_digest) in targets
    assert result["blobs"]["pushed"] > 0 and result["bytes"]["pushed"] > 0
    # An independent client copies everything back out, multi-arch index included.
    out = high.workdir + "/copied"
    args = ["skopeo", "copy", "--all", "--preserve-digests"] + \
        [a.replace("--dest-", "--src-") for a in images.skopeo_tls_args(high, HIGH_USER)]
    subprocess.run(args + ["docker://%s/mirror/%s/team/multi:3.0" % (high.host, port_host), "oci:%s:multi" % out],
                   check=True, capture_output=True, timeout=120)
    kinds = {artifact["kind"] for artifact in result["artifacts"]}
    assert kinds == {"manifests", "file"}
    assert images.skopeo_inspect_digest(high, "mirror/manifests/load/apps:1.2.0", HIGH_USER) == \
        next(a["digest"] for a in result["artifacts"] if a["kind"] == "manifests")


def test_second_load_pushes_nothing(high, bundle):
    run_load(params_for(high, bundle), check_mode=False)
    again = run_load(params_for(high, bundle), check_mode=False)
    assert again["changed"] is False
    assert again["blobs"]["pushed"] == 0 and again["bytes"]["pushed"] == 0
    assert again["tags_pushed"] == 0


def test_check_mode_pushes_nothing(high, bundle):
    result = run_load(params_for(high, bundle), check_mode=True)
    assert result["changed"] is True and result["blobs"]["pushed"] > 0
    assert high.catalog(*HIGH_USER) == []


def test_tampered_bundle_loads_nothing(high, bundle, tmp_path):
    tampered = tmp_path / "t.tar.zst"
    data = bytearray(open(bundle["path"], "rb").read())
    data[len(data) // 3] ^= 0x01
    tampered.write_bytes(bytes(data))
    with open(bundle["path"] + ".sig", "rb") as handle:
        (tmp_path / "t.tar.zst.sig").write_bytes(handle.read())
    with pytest.raises(VerificationError):
        run_load(params_for(high, dict(bundle, path=str(tampered))), check_mode=False)
    assert high.catalog(*HIGH_USER) == []


def test_registries_yaml(high, bundle, registry, tmp_path):
    dest = tmp_path / "registries.yaml"
    result = run_load(params_for(high, bundle, registries_dest=str(dest)), check_mode=False)
    import yaml
    written = yaml.safe_load(dest.read_text())
    assert oct(os.stat(dest).st_mode & 0o777) == "0o600"
    source = registry.registry.host
    mirror = written["mirrors"][source]
    assert mirror["endpoint"] == ["https://" + high.host]
    assert mirror["rewrite"] == {"^(.*)$": "mirror/%s/$1" % source.replace(":", "-")}
    assert written["configs"][high.host]["auth"] == {"username": HIGH_USER[0], "password": HIGH_USER[1]}
    assert written["configs"][high.host]["tls"] == {"ca_file": "/etc/rancher/k3s/petra-registry-ca.pem"}
    assert result["registries"] == written


LOAD_SCRIPT = """
import sys
sys.path.insert(0, %(path)r)
from ansible_collections.petra.core.plugins.module_utils.adapters.bundle import run_load
run_load(%(params)r, check_mode=False)
"""


def test_interrupted_loads_resume(high, bundle):
    import ansible_collections
    collections = os.path.dirname(list(ansible_collections.__path__)[0])
    script = LOAD_SCRIPT % {"path": collections, "params": params_for(high, bundle, parallel=2)}
    rng = random.Random(7)
    kills = 0
    for _attempt in range(5):
        process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 0.6))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(timeout=60)
        assert_no_dangling_tags(high)
    assert kills >= 2
    final = run_load(params_for(high, bundle), check_mode=False)
    assert_no_dangling_tags(high)
    assert all(image["digest"] for image in final["images"])
    assert run_load(params_for(high, bundle), check_mode=False)["changed"] is False


def assert_no_dangling_tags(high):
    """Every tag in the registry resolves to a manifest whose blobs are all there (skopeo copies it)."""
    for repository in high.catalog(*HIGH_USER):
        listing = subprocess.run(
            ["skopeo", "list-tags"] + [a.replace("--dest-", "--") for a in images.skopeo_tls_args(high, HIGH_USER)]
            + ["docker://%s/%s" % (high.host, repository)], check=False, capture_output=True, text=True, timeout=60)
        if listing.returncode != 0:
            # distribution answers NAME_UNKNOWN for a repository that holds blobs but no tag yet.
            assert "404" in listing.stderr or "unknown" in listing.stderr.lower(), listing.stderr
            continue
        for tag in json.loads(listing.stdout)["Tags"] or []:
            out = "%s/check-%d" % (high.workdir, random.randint(0, 1 << 30))
            args = ["skopeo", "copy", "--all"] + \
                [a.replace("--dest-", "--src-") for a in images.skopeo_tls_args(high, HIGH_USER)]
            subprocess.run(args + ["docker://%s/%s:%s" % (high.host, repository, tag), "oci:%s:x" % out],
                           check=True, capture_output=True, timeout=120)


def test_platform_filtered_index_refused_clearly(high, registry, tmp_path, ec_key):
    """distribution requires every manifest an index lists: a filtered index is refused with the reason, and no
    tag is written (the platform manifests that were pushed stay untagged, by digest)."""
    key, pub = ec_key
    spec = BundleSpec({"apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
                       "metadata": {"name": "filtered", "version": "1.0.0"},
                       "images": [{"ref": registry.multi, "platforms": ["linux/arm64"]}]}, str(tmp_path))
    pool = ClientPool(Credentials(*REGISTRY_USER), ca_file=registry.registry.tls["ca.pem"])
    built = create_bundle(spec, str(tmp_path / "f.tar.zst"), load_signer(key), pool,
                          environ={"SOURCE_DATE_EPOCH": "1767225600"})
    from ansible_collections.petra.core.plugins.module_utils.load.errors import LoadError
    with pytest.raises(LoadError) as info:
        run_load(params_for(high, {"path": built["path"], "pub": pub}), check_mode=False)
    assert "only some of its platforms" in str(info.value) and registry.multi in str(info.value)
    assert_no_dangling_tags(high)


def test_load_into_a_token_auth_registry(bundle, registry, tmp_path, tls_material):
    """distribution configured for token authentication, with a token issuer on loopback."""
    from ansible_collections.petra.core.tests.support.token_server import TokenServer
    users = {HIGH_USER[0]: HIGH_USER[1]}
    with TokenServer(str(tmp_path), users) as issuer:
        with servers.Registry(str(tmp_path), tls=tls_material, auth_lines=issuer.registry_auth()) as high:
            result = run_load(params_for(high, bundle), check_mode=False)
            assert result["changed"] is True
            reference = "mirror/%s/team/app:1.0" % registry.registry.host.replace(":", "-")
            assert images.skopeo_inspect_digest(high, reference, HIGH_USER) == registry.app_digest
            assert any(a["actions"] == ["pull", "push"] for claims in issuer.issued for a in claims["access"])
            assert run_load(params_for(high, bundle), check_mode=False)["changed"] is False
            with pytest.raises(Exception) as info:
                run_load(params_for(high, bundle, registry_password="wrong"), check_mode=False)
            assert "refused" in str(info.value)


def test_broken_upload_is_sent_again_in_another_pass(high, bundle, monkeypatch):
    from ansible_collections.petra.core.plugins.module_utils.oci import writer as writer_module
    from ansible_collections.petra.core.plugins.module_utils.oci.errors import UploadInterrupted
    real = writer_module.RegistryWriter.upload_many
    broken = []

    def once_broken(self, repositories, digest, size, chunks):
        if not broken:
            broken.append(digest)
            next(iter(chunks), None)  # some bytes went out, then the connection died
            raise UploadInterrupted("connection reset by peer (injected)")
        return real(self, repositories, digest, size, chunks)

    monkeypatch.setattr(writer_module.RegistryWriter, "upload_many", once_broken)
    result = run_load(params_for(high, bundle), check_mode=False)
    assert broken and result["changed"] is True
    assert_no_dangling_tags(high)
    monkeypatch.setattr(writer_module.RegistryWriter, "upload_many", real)
    assert run_load(params_for(high, bundle), check_mode=False)["changed"] is False
