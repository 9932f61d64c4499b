"""SLSA provenance required at build, through the real registry: attestations made by tests/support/slsa_attest.py
(key-signed DSSE in cosign's legacy .att tag) and by the offline Sigstore instance (keyless Sigstore bundle
referrers), accepted into the bundle metadata and the custody record, their signatures checked with openssl over the
PAE bytes carried in the bundle; refusals stop the build before anything is written."""

import base64
import json
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ansible_collections.petra.core.plugins.module_utils.adapters.verify import run as run_verify
from ansible_collections.petra.core.plugins.module_utils.bundle.create import create_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys, verify_bundle
from ansible_collections.petra.core.plugins.module_utils.custody.errors import ProvenanceError
from ansible_collections.petra.core.plugins.module_utils.custody.verification import SourceVerifier
from ansible_collections.petra.core.plugins.module_utils.oci.auth import Credentials
from ansible_collections.petra.core.plugins.module_utils.oci.registry import ClientPool
from ansible_collections.petra.core.plugins.module_utils.signing.keys import key_id, load_signer
from ansible_collections.petra.core.tests.conftest import REGISTRY_USER
from ansible_collections.petra.core.tests.support import cosign_signer, fake_sigstore, images, pki, slsa_attest

PINNED = {"SOURCE_DATE_EPOCH": "1767225600"}
SOURCE = "https://github.com/petra-test/images"
REF = "refs/heads/main"
IDENTITY = "https://github.com/petra-test/images/.github/workflows/release.yaml@refs/heads/main"
ISSUER = "https://token.actions.githubusercontent.com"


def load_key(path):
    with open(path, "rb") as handle:
        return serialization.load_pem_private_key(handle.read(), None)


class Provenanced:
    """Images in the test registry with signatures and provenance attestations."""


@pytest.fixture(scope="module")
def sources(registry, tmp_path_factory):
    work = tmp_path_factory.mktemp("provenance")
    server = registry.registry
    layout = str(work / "layout")
    one = images.build_image(layout, "one", ["provenance-one"], layer_size=20_000)
    two = images.build_image(layout, "two", ["provenance-two"], layer_size=20_000)
    s = Provenanced()
    s.host, s.digest = server.host, one
    s.key = str(work / "source.pem")
    s.pub = pki.write_ec_key(s.key)
    key = load_key(s.key)
    pusher = cosign_signer.Pusher(server, REGISTRY_USER)
    name = "%s/provenance/%%s" % server.host
    repos = ("att", "keyless", "unattested", "copied")
    for repo in repos:
        images.push(layout, "one", server, "provenance/" + repo, "1.0", creds=REGISTRY_USER)
    s.refs = {repo: "%s/provenance/%s:1.0" % (server.host, repo) for repo in repos}
    for repo in ("att", "unattested", "copied"):
        cosign_signer.sign_legacy(pusher, "provenance/" + repo, name % repo, one,
                                  lambda data: cosign_signer.der_sign(key, data))
    # Key-signed SLSA v1 provenance in the legacy .att tag, beside a vulnerability attestation (another predicate).
    s.envelope = slsa_attest.Envelope(slsa_attest.v1(one, SOURCE, REF), key)
    scan = slsa_attest.Envelope(slsa_attest.statement(one, "https://cosign.sigstore.dev/attestation/vuln/v1", {}), key)
    s.att_manifest, s.att_layers = slsa_attest.push_att(
        pusher, "provenance/att", one, [scan.data, s.envelope.data],
        ["https://cosign.sigstore.dev/attestation/vuln/v1", slsa_attest.V1])
    # The genuine provenance of image two, copied next to image one.
    copied = slsa_attest.Envelope(slsa_attest.v1(two, SOURCE, REF), key)
    slsa_attest.push_att(pusher, "provenance/copied", one, [copied.data], [slsa_attest.V1])
    # Keyless: a cosign v3 signature referrer and a SLSA v0.2 provenance referrer by the same identity.
    s.sigstore = fake_sigstore.FakeSigstore()
    s.root = s.sigstore.trusted_root(work / "trusted_root.json")
    size = len(pusher.get_manifest("provenance/keyless", one))
    signature = s.sigstore.sign_dsse(s.sigstore.issue(IDENTITY, ISSUER),
                                     cosign_signer.statement_for(name % "keyless", one))
    cosign_signer.push_referrer(pusher, "provenance/keyless", one, size, signature.bundle)
    s.keyless = s.sigstore.sign_dsse(s.sigstore.issue(IDENTITY, ISSUER),
                                     slsa_attest.v02(one, SOURCE, "refs/tags/v1.4.0", builder=slsa_attest.GENERATOR))
    s.keyless_referrer = slsa_attest.push_bundle(pusher, "provenance/keyless", one, size, s.keyless.bundle)
    return s


def build(registry, tmp_path, refs, rules, key, name="b.tar.zst"):
    spec = BundleSpec({"apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
                       "metadata": {"name": "provenance", "version": "1.0.0"},
                       "images": [{"ref": ref} for ref in refs]}, str(tmp_path))
    pool = ClientPool(Credentials(*REGISTRY_USER), ca_file=registry.registry.tls["ca.pem"], retries=1)
    return create_bundle(spec, str(tmp_path / name), load_signer(key), pool, environ=PINNED,
                         verifier=SourceVerifier(rules))


def entry_bytes(path, name):
    return subprocess.run("zstd -q -dc '%s' | tar -xOf - '%s'" % (path, name), shell=True, check=True,
                          capture_output=True, timeout=60).stdout


def openssl_verifies(tmp_path, pub, data, der):
    (tmp_path / "pae.bin").write_bytes(data)
    (tmp_path / "pae.der").write_bytes(der)
    check = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(pub), "-signature", str(tmp_path / "pae.der"),
                            str(tmp_path / "pae.bin")], capture_output=True, text=True, timeout=60, check=False)
    return check.returncode == 0 and "Verified OK" in check.stdout


@pytest.fixture
def bundle_key(tmp_path):
    key = str(tmp_path / "bundle.pem")
    return key, pki.write_ec_key(key)


def rules_for(sources):
    return [
        {"glob": "*/provenance/keyless", "identity": IDENTITY, "issuer": ISSUER, "trusted_root": sources.root,
         "provenance": {"builder_id_glob": "https://github.com/slsa-framework/slsa-github-generator/*",
                        "build_type": slsa_attest.GENERATOR_BUILD_TYPE, "source_repo": SOURCE,
                        "source_ref": "refs/tags/v*"}},
        {"glob": "*/provenance/*", "key": sources.pub,
         "provenance": {"builder_id": slsa_attest.GITHUB_BUILDER, "build_type": slsa_attest.GITHUB_BUILD_TYPE,
                        "source_repo": SOURCE, "source_ref": REF}},
    ]


def test_provenance_is_accepted_recorded_and_carried(registry, sources, tmp_path, bundle_key):
    built = build(registry, tmp_path, [sources.refs["att"], sources.refs["keyless"]], rules_for(sources),
                  bundle_key[0])
    metadata = verify_bundle(built["path"], load_public_keys([bundle_key[1]]))["metadata"]
    by_ref = {image["ref"]: image for image in metadata["images"]}
    att, keyless = by_ref[sources.refs["att"]]["provenance"], by_ref[sources.refs["keyless"]]["provenance"]
    assert att == {
        "rule": "*/provenance/*", "status": "verified", "method": "key",
        "keyId": key_id(load_signer(sources.key).public_key()), "predicateType": slsa_attest.V1,
        "builderId": slsa_attest.GITHUB_BUILDER, "buildType": slsa_attest.GITHUB_BUILD_TYPE, "format": "legacy-tag",
        "attestation": {"manifest": sources.att_manifest, "digest": sources.att_layers[1]["digest"]},
        "source": {"repository": SOURCE, "ref": REF, "where": "externalParameters.workflow"}}
    assert keyless["format"] == "referrer" and keyless["attestation"]["manifest"] == sources.keyless_referrer
    assert (keyless["method"], keyless["identity"], keyless["issuer"], keyless["predicateType"]) == (
        "keyless", IDENTITY, ISSUER, slsa_attest.V02)
    assert keyless["source"] == {"repository": SOURCE, "ref": "refs/tags/v1.4.0", "where": "invocation.configSource",
                                 "digest": {"sha1": slsa_attest.COMMIT}}
    assert {image["ref"]: image["provenance"] for image in built["images"]} == {
        sources.refs["att"]: att, sources.refs["keyless"]: keyless}
    # The attestation the record names is carried: openssl checks its DSSE signature over the PAE bytes, with the
    # source key, and with the key of the keyless leaf certificate.
    envelope = json.loads(entry_bytes(built["path"], "blobs/sha256/" + att["attestation"]["digest"].split(":")[1]))
    message = cosign_signer.pae(envelope["payloadType"], base64.b64decode(envelope["payload"]))
    der = base64.b64decode(envelope["signatures"][0]["sig"])
    assert message == sources.envelope.pae and openssl_verifies(tmp_path, sources.pub, message, der)
    assert not openssl_verifies(tmp_path, sources.pub, message.replace(b"main", b"mainx"), der)
    bundle = json.loads(entry_bytes(built["path"], "blobs/sha256/" + keyless["attestation"]["digest"].split(":")[1]))
    leaf = tmp_path / "leaf.pub"
    leaf.write_bytes(x509.load_der_x509_certificate(base64.b64decode(
        bundle["verificationMaterial"]["certificate"]["rawBytes"])).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    assert openssl_verifies(tmp_path, leaf, cosign_signer.pae(bundle["dsseEnvelope"]["payloadType"], base64.b64decode(
        bundle["dsseEnvelope"]["payload"])), base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
    # The custody record (here from petra_verify) shows signature and provenance of each image.
    record = run_verify({"path": built["path"], "public_keys": [bundle_key[1]], "signature": None})["custody"]
    custody = {image["source"]: image for image in record["images"]}
    assert custody[sources.refs["att"]]["provenance"] == att
    assert custody[sources.refs["keyless"]]["provenance"]["builderId"] == slsa_attest.GENERATOR
    assert custody[sources.refs["att"]]["sourceSignature"]["format"] == "legacy-tag"
    # Nothing in the provenance record depends on when it was checked: an unchanged rebuild changes nothing.
    again = build(registry, tmp_path, [sources.refs["att"], sources.refs["keyless"]], rules_for(sources),
                  bundle_key[0])
    assert again["changed"] is False


@pytest.mark.parametrize("repo, reason, words", [
    ("unattested", "no-provenance", "carries no SLSA provenance"),
    ("copied", "provenance-subject", "not this image"),
])
def test_refused_without_provenance_of_this_image(registry, sources, tmp_path, bundle_key, repo, reason, words):
    with pytest.raises(ProvenanceError) as info:
        build(registry, tmp_path, [sources.refs[repo]], rules_for(sources), bundle_key[0])
    assert info.value.reason == reason and words in str(info.value) and sources.refs[repo] in str(info.value)
    assert not any(p.name.endswith((".tar.zst", ".sig", ".tmp")) for p in tmp_path.iterdir())
    # Carried anyway when the rule tolerates images without provenance (and records that it had none); a wrong
    # provenance is never tolerated.
    rules = rules_for(sources)
    rules[1]["provenance"]["required"] = False
    if reason == "no-provenance":
        built = build(registry, tmp_path, [sources.refs[repo]], rules, bundle_key[0])
        (image,) = verify_bundle(built["path"], load_public_keys([bundle_key[1]]))["metadata"]["images"]
        assert image["provenance"] == built["images"][0]["provenance"] == {"rule": "*/provenance/*",
                                                                           "status": "absent"}
    else:
        with pytest.raises(ProvenanceError):
            build(registry, tmp_path, [sources.refs[repo]], rules, bundle_key[0])
