"""Source custody against the real registry: cosign signatures in both formats (made by a test signer and checked
with openssl), keyless signatures from a Sigstore instance of our own (tests/support/fake_sigstore.py), refusals,
KMS keys, countersignatures after a load, the bundle SBOM, and the vulnerability gate with a fake scanner
executable."""

import base64
import datetime
import hashlib
import json
import os
import stat
import subprocess
import sys
import time

import boto3
import pytest
from cryptography.hazmat.primitives import serialization

from ansible_collections.petra.core.plugins.module_utils.aws.client import AWSConnection
from ansible_collections.petra.core.plugins.module_utils.bundle.create import create_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.adapters.bundle import run_load
from ansible_collections.petra.core.plugins.module_utils.adapters.platform import run as run_platform
from ansible_collections.petra.core.plugins.module_utils.adapters.verify import run as run_verify
from ansible_collections.petra.core.plugins.module_utils.bundle.reader import read_metadata
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys, verify_bundle
from ansible_collections.petra.core.plugins.module_utils.custody.errors import ScanError, SourceSignatureError
from ansible_collections.petra.core.plugins.module_utils.custody.scan import Scanner
from ansible_collections.petra.core.plugins.module_utils.custody.verification import SourceVerifier
from ansible_collections.petra.core.plugins.module_utils.oci.auth import Credentials
from ansible_collections.petra.core.plugins.module_utils.oci.registry import ClientPool
from ansible_collections.petra.core.plugins.module_utils.signing.keys import key_id, load_signer
from ansible_collections.petra.core.tests.conftest import REGISTRY_USER
from ansible_collections.petra.core.tests.support import admission, cosign_signer, fake_sigstore, images, pki, servers
from ansible_collections.petra.core.tests.unit.test_platform_render import documents_of, params_for

PINNED = {"SOURCE_DATE_EPOCH": "1767225600"}
HIGH_USER = ("loader", "high-Side-Passw0rd")
SUPPORT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support")


def load_key(path):
    with open(path, "rb") as handle:
        return serialization.load_pem_private_key(handle.read(), None)


def openssl_verifies(tmp_path, pub, data, der, name):
    (tmp_path / (name + ".data")).write_bytes(data)
    (tmp_path / (name + ".der")).write_bytes(der)
    check = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pub, "-signature", str(tmp_path / (name + ".der")),
                            str(tmp_path / (name + ".data"))], capture_output=True, text=True, timeout=60, check=False)
    return check.returncode == 0 and "Verified OK" in check.stdout


class Sources:
    """Images in the test registry, signed in every way the tests need."""


@pytest.fixture(scope="module")
def sources(registry, tmp_path_factory):
    work = tmp_path_factory.mktemp("custody")
    server = registry.registry
    layout = str(work / "layout")
    one = images.build_image(layout, "one", ["custody-one"], layer_size=20_000)
    two = images.build_image(layout, "two", ["custody-two"], layer_size=20_000)
    s = Sources()
    s.host = server.host
    s.work = work
    s.key = str(work / "source.pem")
    s.pub = pki.write_ec_key(s.key)
    s.other_key = str(work / "other.pem")
    s.other_pub = pki.write_ec_key(s.other_key)
    s.digest = one
    repos = ("legacy", "referrer", "unsigned", "other-key", "keyless-legacy", "kms", "elsewhere", "mirrored")
    for repo in repos:
        images.push(layout, "one", server, "custody/" + repo, "1.0", creds=REGISTRY_USER)
    images.push(layout, "two", server, "custody/wrong-image", "1.0", creds=REGISTRY_USER)
    s.refs = {repo: "%s/custody/%s:1.0" % (server.host, repo) for repo in repos + ("wrong-image",)}
    pusher = cosign_signer.Pusher(server, REGISTRY_USER)
    key, other = load_key(s.key), load_key(s.other_key)
    name = "%s/custody/%%s" % server.host
    s.legacy_payload, s.legacy_der = cosign_signer.sign_legacy(
        pusher, "custody/legacy", name % "legacy", one, lambda data: cosign_signer.der_sign(key, data))
    s.sbom_document = json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1}).encode()
    s.sbom_digest = cosign_signer.attach_sbom(pusher, "custody/legacy", one, s.sbom_document)
    manifest_size = len(pusher.get_manifest("custody/referrer", one))
    s.referrer_message, s.referrer_der, s.referrer_digest = cosign_signer.sign_referrer(
        pusher, "custody/referrer", name % "referrer", one, manifest_size, key)
    cosign_signer.sign_legacy(pusher, "custody/other-key", name % "other-key", one,
                              lambda data: cosign_signer.der_sign(other, data))
    # A valid signature, by the right key, for the other image: copied next to this one.
    cosign_signer.sign_legacy(pusher, "custody/wrong-image", name % "wrong-image", two,
                              lambda data: cosign_signer.der_sign(key, data), payload=cosign_signer.payload_for(
                                  name % "legacy", one))
    # Valid signatures, by the right key, of this very digest, made for other repositories: custody/legacy (the
    # same registry), and custody/mirrored on an upstream registry this one mirrors.
    cosign_signer.sign_legacy(pusher, "custody/elsewhere", name % "legacy", one,
                              lambda data: cosign_signer.der_sign(key, data))
    s.upstream = "upstream.example:5000/custody/mirrored"
    cosign_signer.sign_legacy(pusher, "custody/mirrored", s.upstream, one, lambda data: cosign_signer.der_sign(key, data))
    cosign_signer.sign_legacy(pusher, "custody/keyless-legacy", name % "keyless-legacy", one,
                              lambda data: cosign_signer.der_sign(other, data),
                              extra_annotations={"dev.sigstore.cosign/certificate": "-----BEGIN CERTIFICATE-----"})
    s.pusher = pusher
    return s


def pool_for(registry):
    return ClientPool(Credentials(*REGISTRY_USER), ca_file=registry.registry.tls["ca.pem"], retries=1)


def build(registry, tmp_path, refs, rules=None, scanner=None, name="b.tar.zst", key=None, files=(), **extra):
    spec = BundleSpec({"apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
                       "metadata": {"name": "custody", "version": "1.0.0"},
                       "images": [{"ref": ref} for ref in refs], "files": list(files)}, str(tmp_path))
    verifier = SourceVerifier(rules, extra.pop("aws", None)) if rules is not None else None
    signer = load_signer(key) if isinstance(key, str) else key
    return create_bundle(spec, str(tmp_path / name), signer, pool_for(registry), environ=PINNED, verifier=verifier,
                         scanner=scanner, **extra)


def entry_bytes(path, name):
    return subprocess.run("zstd -q -dc '%s' | tar -xOf - '%s'" % (path, name), shell=True, check=True,
                          capture_output=True, timeout=60).stdout


@pytest.fixture
def bundle_key(tmp_path):
    key = str(tmp_path / "bundle.pem")
    return key, pki.write_ec_key(key)


def test_signed_sources_are_verified_carried_and_described(registry, sources, tmp_path, bundle_key):
    # The test signer's signatures are real: openssl checks them over the exact payload bytes.
    assert openssl_verifies(tmp_path, sources.pub, sources.legacy_payload, sources.legacy_der, "legacy")
    assert openssl_verifies(tmp_path, sources.pub, sources.referrer_message, sources.referrer_der, "referrer")
    assert not openssl_verifies(tmp_path, sources.other_pub, sources.legacy_payload, sources.legacy_der, "other")
    rules = [{"glob": "%s/custody/*" % sources.host, "key": sources.pub}]
    result = build(registry, tmp_path, [sources.refs["legacy"], sources.refs["referrer"]], rules, key=bundle_key[0])
    source_key_id = key_id(load_signer(sources.key).public_key())
    verified = verify_bundle(result["path"], load_public_keys([bundle_key[1]]))["metadata"]
    by_ref = {image["ref"]: image for image in verified["images"]}
    legacy, referrer = by_ref[sources.refs["legacy"]], by_ref[sources.refs["referrer"]]
    for image, form in ((legacy, "legacy-tag"), (referrer, "referrer")):
        record = image["sourceVerification"]
        assert record["method"] == "key" and record["format"] == form and record["keyId"] == source_key_id
        assert record["rule"] == rules[0]["glob"] and record["verifiedAt"].endswith("Z")
        assert image["countersignature"]["tag"] == "sha256-%s.sig" % sources.digest.split(":")[1]
    # The legacy signature was made for this repository, and says so; a cosign v3 statement names no repository.
    assert (legacy["sourceVerification"]["dockerReference"], legacy["sourceVerification"]["dockerReferenceMatch"]) == (
        "%s/custody/legacy" % sources.host, "repository")
    assert not {"dockerReference", "dockerReferenceMatch"} & set(referrer["sourceVerification"])
    assert {(a["kind"], a.get("tag")) for a in legacy["attached"]} == {
        ("signature", "sha256-%s.sig" % sources.digest.split(":")[1]),
        ("sbom", "sha256-%s.sbom" % sources.digest.split(":")[1])}
    assert [(a["kind"], a["digest"]) for a in referrer["attached"]] == [("referrer", sources.referrer_digest)]
    # The carried bytes are the source's: the signature still verifies with openssl from inside the bundle.
    sig_manifest = json.loads(entry_bytes(result["path"], "blobs/sha256/" + next(
        a["digest"] for a in legacy["attached"] if a["kind"] == "signature").split(":")[1]))
    layer = sig_manifest["layers"][0]
    payload = entry_bytes(result["path"], "blobs/sha256/" + layer["digest"].split(":")[1])
    der = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
    assert openssl_verifies(tmp_path, sources.pub, payload, der, "carried")
    # The SBOM: CycloneDX 1.6, valid against the schema shipped in cyclonedx-python-lib.
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    sbom = entry_bytes(result["path"], verified["sbom"]["name"])
    assert "sha256:" + hashlib.sha256(sbom).hexdigest() == verified["sbom"]["digest"]
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(sbom.decode()) is None
    document = json.loads(sbom)
    assert document["specVersion"] == "1.6" and result["sbom"]["document"] == document
    components = {c["bom-ref"]: c for c in document["components"]}
    legacy_component = components["image:" + sources.refs["legacy"]]
    assert legacy_component["hashes"] == [{"alg": "SHA-256", "content": sources.digest.split(":")[1]}]
    assert [r["url"] for r in legacy_component["externalReferences"]] == [
        "oci://%s/custody/legacy@%s" % (sources.host, sources.sbom_digest)]
    # Reproducible and idempotent, verification times aside (they differ: the sources are verified again).
    time.sleep(1.1)
    again = build(registry, tmp_path, [sources.refs["legacy"], sources.refs["referrer"]], rules, key=bundle_key[0])
    assert again["changed"] is False


@pytest.mark.parametrize("repo, reason, words", [
    ("unsigned", "unsigned", "is unsigned: it has no sha256-"),
    ("wrong-image", "wrong-image", "another image"),
    ("other-key", "wrong-key", "does not verify with key"),
])
def test_refused_sources(registry, sources, tmp_path, bundle_key, repo, reason, words):
    rules = [{"glob": "%s/custody/*" % sources.host, "key": sources.pub}]
    with pytest.raises(SourceSignatureError) as info:
        build(registry, tmp_path, [sources.refs[repo]], rules, key=bundle_key[0])
    assert info.value.reason == reason and words in str(info.value) and sources.refs[repo] in str(info.value)
    assert not any(p.name.endswith((".tar.zst", ".sig", ".tmp")) for p in tmp_path.iterdir())


def test_signature_made_for_another_repository(registry, sources, tmp_path, bundle_key):
    """custody/elsewhere carries a signature by the rule's key over its own digest, made for custody/legacy: refused
    by default, naming both repositories; recorded as such when the rule ignores the reference, in the metadata and
    in the custody record; accepted when the rule lists custody/legacy."""
    rule = {"glob": "%s/custody/*" % sources.host, "key": sources.pub}
    signed, image = "%s/custody/legacy" % sources.host, "%s/custody/elsewhere" % sources.host
    with pytest.raises(SourceSignatureError) as info:
        build(registry, tmp_path, [sources.refs["elsewhere"]], [rule], key=bundle_key[0])
    assert info.value.reason == "signature-reference", str(info.value)
    assert "was made for %s, not for %s" % (signed, image) in str(info.value)
    assert not any(p.name.endswith((".tar.zst", ".sig", ".tmp")) for p in tmp_path.iterdir())
    built = build(registry, tmp_path, [sources.refs["elsewhere"]], [dict(rule, docker_reference="ignore")],
                  key=bundle_key[0])
    record = built["images"][0]["source_verification"]
    assert (record["dockerReference"], record["dockerReferenceMatch"]) == (signed, "none")
    verified = run_verify({"path": built["path"], "public_keys": [bundle_key[1]], "signature": None})
    (custody,) = verified["custody"]["images"]
    assert custody["source"] == sources.refs["elsewhere"]
    assert (custody["sourceSignature"]["dockerReference"], custody["sourceSignature"]["dockerReferenceMatch"]) == (
        signed, "none")
    listed = build(registry, tmp_path, [sources.refs["elsewhere"]], [dict(rule, docker_reference_globs=[signed])],
                   key=bundle_key[0], name="listed.tar.zst")
    assert listed["images"][0]["source_verification"]["dockerReferenceMatch"] == "glob"


def test_mirrored_image_keeps_the_upstream_reference(registry, sources, tmp_path, bundle_key):
    """custody/mirrored was signed as upstream.example:5000/custody/mirrored: the same path on another registry."""
    rule = {"glob": "%s/custody/*" % sources.host, "key": sources.pub}
    with pytest.raises(SourceSignatureError) as info:
        build(registry, tmp_path, [sources.refs["mirrored"]], [rule], key=bundle_key[0])
    assert info.value.reason == "signature-reference" and "was made for %s, not for %s/custody/mirrored" % (
        sources.upstream, sources.host) in str(info.value)
    built = build(registry, tmp_path, [sources.refs["mirrored"]], [dict(rule, docker_reference="path")],
                  key=bundle_key[0])
    record = built["images"][0]["source_verification"]
    assert (record["dockerReference"], record["dockerReferenceMatch"]) == (sources.upstream, "path")


def test_policy_edges(registry, sources, tmp_path, bundle_key):
    import sigstore
    root = os.path.join(os.path.dirname(sigstore.__file__), "_store", "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev",
                        "trusted_root.json")
    with pytest.raises(SourceSignatureError) as info:
        build(registry, tmp_path, [sources.refs["unsigned"]], [{"glob": "elsewhere/*", "key": sources.pub}],
              key=bundle_key[0])
    assert info.value.reason == "no-rule"
    with pytest.raises(SourceSignatureError) as info:
        build(registry, tmp_path, [sources.refs["keyless-legacy"]], [{
            "glob": "*/custody/*", "identity": "https://github.com/example/release.yaml@refs/heads/main",
            "issuer": "https://token.actions.githubusercontent.com", "trusted_root": root}], key=bundle_key[0])
    assert info.value.reason == "keyless-legacy" and "inclusion proof" in str(info.value)
    result = build(registry, tmp_path, [sources.refs["unsigned"]], [{"glob": "*/custody/unsigned", "method": "none"}],
                   key=bundle_key[0])
    assert result["images"][0]["source_verification"]["method"] == "none"


KEYLESS_IDENTITY = "https://github.com/petra-test/images/.github/workflows/release.yaml@refs/heads/main"
KEYLESS_ISSUER = "https://token.actions.githubusercontent.com"
PROVENANCE = "https://slsa.dev/provenance/v1"


@pytest.fixture(scope="module")
def keyless(registry, sources):
    """cosign v3 keyless signatures of image one, made by our own Sigstore instance and pushed as referrers: a valid
    bundle, the same bundle beside image two, and bundles whose log proof, checkpoint or certificate lifetime fail."""
    server, pusher = registry.registry, sources.pusher
    layout = str(sources.work / "layout")
    instance = fake_sigstore.FakeSigstore()
    k = Sources()
    k.root = instance.trusted_root(sources.work / "trusted_root.json")
    k.foreign_root = instance.trusted_root(sources.work / "foreign_root.json", ca=fake_sigstore.FakeSigstore("other"))
    k.ca = {}
    for name, cert in (("root", instance.root), ("intermediate", instance.intermediate)):
        k.ca[name] = sources.work / ("fulcio-%s.pem" % name)
        k.ca[name].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    statement = cosign_signer.statement_for("%s/custody/keyless" % server.host, sources.digest)
    k.signed = instance.sign_dsse(instance.issue(KEYLESS_IDENTITY, KEYLESS_ISSUER), statement)
    # Valid for ten minutes an hour ago, logged half an hour ago: expired when Rekor integrated it.
    late = instance.sign_dsse(instance.issue(KEYLESS_IDENTITY, KEYLESS_ISSUER,
                                             at=instance.now - datetime.timedelta(hours=1)),
                              statement, integrated=instance.now - datetime.timedelta(minutes=30))
    # A valid SLSA provenance attestation by the same identity, about the same image: not a signature.
    provenance = dict(json.loads(statement), predicateType=PROVENANCE)
    attestation = instance.sign_dsse(instance.issue(KEYLESS_IDENTITY, KEYLESS_ISSUER),
                                     json.dumps(provenance).encode())
    documents = {"keyless": k.signed.document, "keyless-expired": late.document,
                 "keyless-provenance": attestation.document,
                 "keyless-proof": fake_sigstore.tamper(k.signed.document, "inclusion-proof"),
                 "keyless-checkpoint": fake_sigstore.tamper(k.signed.document, "checkpoint")}
    for repo, document in documents.items():
        images.push(layout, "one", server, "custody/" + repo, "1.0", creds=REGISTRY_USER)
        size = len(pusher.get_manifest("custody/" + repo, sources.digest))
        cosign_signer.push_referrer(pusher, "custody/" + repo, sources.digest, size, json.dumps(document).encode())
    images.push(layout, "two", server, "custody/keyless-wrong-image", "1.0", creds=REGISTRY_USER)
    two = pusher.get_manifest("custody/keyless-wrong-image", "1.0")
    cosign_signer.push_referrer(pusher, "custody/keyless-wrong-image", cosign_signer.sha(two), len(two),
                                k.signed.bundle)
    k.refs = {repo: "%s/custody/%s:1.0" % (server.host, repo) for repo in list(documents) + ["keyless-wrong-image"]}
    return k


def keyless_rules(keyless, **change):
    return [dict({"glob": "*/custody/keyless*", "identity": KEYLESS_IDENTITY, "issuer": KEYLESS_ISSUER,
                  "trusted_root": keyless.root}, **change)]


def openssl(*args):
    return subprocess.run(["openssl"] + list(args), capture_output=True, text=True, timeout=60, check=False)


def test_keyless_signature_is_verified_and_recorded(registry, sources, keyless, tmp_path, bundle_key):
    result = build(registry, tmp_path, [keyless.refs["keyless"]], keyless_rules(keyless), key=bundle_key[0])
    (image,) = verify_bundle(result["path"], load_public_keys([bundle_key[1]]))["metadata"]["images"]
    record = image["sourceVerification"]
    assert record["verifiedAt"].endswith("Z") and record == {
        "rule": "*/custody/keyless*", "method": "keyless", "format": "referrer", "identity": KEYLESS_IDENTITY,
        "issuer": KEYLESS_ISSUER, "verifiedAt": record["verifiedAt"]}
    assert result["images"][0]["source_verification"] == record
    # The bundle carried is the one the instance made; openssl checks its DSSE signature over the PAE bytes with
    # the key it takes out of the leaf certificate, and chains that certificate to the CA at the integrated time.
    (attached,) = image["attached"]
    manifest = json.loads(entry_bytes(result["path"], "blobs/sha256/" + attached["digest"].split(":")[1]))
    carried = entry_bytes(result["path"], "blobs/sha256/" + manifest["layers"][0]["digest"].split(":")[1])
    assert carried == keyless.signed.bundle
    document = json.loads(carried)
    envelope, material = document["dsseEnvelope"], document["verificationMaterial"]
    message = cosign_signer.pae(envelope["payloadType"], base64.b64decode(envelope["payload"]))
    der = base64.b64decode(envelope["signatures"][0]["sig"])
    leaf = tmp_path / "leaf.der"
    leaf.write_bytes(base64.b64decode(material["certificate"]["rawBytes"]))
    pub = tmp_path / "leaf.pub"
    pub.write_text(openssl("x509", "-inform", "DER", "-in", str(leaf), "-pubkey", "-noout").stdout)
    assert message == keyless.signed.pae and openssl_verifies(tmp_path, str(pub), message, der, "keyless")
    assert not openssl_verifies(tmp_path, str(pub), message.replace(b"sha256", b"sha384"), der, "keyless-other")
    openssl("x509", "-inform", "DER", "-in", str(leaf), "-out", str(tmp_path / "leaf.pem"))
    chain = ["verify", "-CAfile", str(keyless.ca["root"]), "-untrusted", str(keyless.ca["intermediate"]),
             "-attime", material["tlogEntries"][0]["integratedTime"], str(tmp_path / "leaf.pem")]
    check = openssl(*chain)
    assert check.returncode == 0 and ": OK" in check.stdout, check.stdout + check.stderr
    assert openssl(*chain[:-2] + [str(int(chain[-2]) + 3600), chain[-1]]).returncode != 0


@pytest.mark.parametrize("repo, change, reason, words", [
    ("keyless", {"identity": "https://github.com/someone/else/.github/workflows/x.yaml@refs/heads/main"},
     "wrong-identity", "was signed by %s from issuer %s" % (KEYLESS_IDENTITY, KEYLESS_ISSUER)),
    ("keyless", {"issuer": "https://accounts.google.com"}, "wrong-identity", "from issuer " + KEYLESS_ISSUER),
    ("keyless-wrong-image", {}, "wrong-image", "another image"),
    ("keyless-provenance", {}, "wrong-predicate", "predicate type %s, not a signature" % PROVENANCE),
    ("keyless", {"trusted_root": "foreign_root"}, "bad-signature", "failed to build timestamp certificate chain"),
    ("keyless-proof", {}, "bad-signature", "invalid log entry: inclusion proof contains invalid root hash"),
    ("keyless-checkpoint", {}, "bad-signature", "invalid log entry: checkpoint: invalid signature"),
    ("keyless-expired", {}, "bad-signature", "cert is not valid at validation time"),
])
def test_keyless_refusals(registry, sources, keyless, tmp_path, bundle_key, repo, change, reason, words):
    if "trusted_root" in change:
        change = dict(change, trusted_root=getattr(keyless, change["trusted_root"]))
    with pytest.raises(SourceSignatureError) as info:
        build(registry, tmp_path, [keyless.refs[repo]], keyless_rules(keyless, **change), key=bundle_key[0])
    assert info.value.reason == reason and words in str(info.value) and keyless.refs[repo] in str(info.value)
    assert not any(p.name.endswith((".tar.zst", ".sig", ".tmp")) for p in tmp_path.iterdir())


def test_kms_key_rule(registry, sources, tmp_path, bundle_key, moto):
    kms = boto3.client("kms", region_name="us-east-1", endpoint_url=moto.endpoint, aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    kms.create_alias(AliasName="alias/custody-source", TargetKeyId=key["KeyId"])

    def sign(data):
        return kms.sign(KeyId=key["KeyId"], Message=hashlib.sha256(data).digest(), MessageType="DIGEST",
                        SigningAlgorithm="ECDSA_SHA_256")["Signature"]

    cosign_signer.sign_legacy(sources.pusher, "custody/kms", "%s/custody/kms" % sources.host, sources.digest, sign)
    connection = AWSConnection(region="us-east-1", endpoint_url=moto.endpoint, access_key="testing",
                               secret_key="testing")
    result = build(registry, tmp_path, [sources.refs["kms"]],
                   [{"glob": "*/custody/kms", "key": "awskms:///alias/custody-source"}], key=bundle_key[0],
                   aws=lambda: connection)
    public = serialization.load_der_public_key(kms.get_public_key(KeyId=key["KeyId"])["PublicKey"])
    assert result["images"][0]["source_verification"]["keyId"] == key_id(public)


@pytest.fixture
def high(tmp_path, tls_material):
    with servers.Registry(str(tmp_path / "high"), tls=tls_material, users=dict([HIGH_USER])) as server:
        yield server


def test_countersignatures_after_load(registry, sources, tmp_path, bundle_key, high):
    os.makedirs(high.workdir, exist_ok=True)
    (tmp_path / "k3s").write_bytes(os.urandom(10_000))
    built = build(registry, tmp_path, [sources.refs["legacy"], sources.refs["referrer"]],
                  [{"glob": "*/custody/*", "key": sources.pub}], key=bundle_key[0],
                  files=[{"name": "k3s", "path": "k3s"}])
    params = {"src": built["path"], "public_keys": [bundle_key[1]], "public_key": [bundle_key[1]], "signature": None,
              "registry": high.host + "/mirror", "ca_file": high.tls["ca.pem"], "registry_username": HIGH_USER[0],
              "registry_password": HIGH_USER[1], "insecure_registries": [], "registry_timeout": 30.0,
              "registry_retries": 2, "parallel": 4, "registries_dest": None,
              "registries_ca_path": "/etc/rancher/k3s/petra-registry-ca.pem"}
    loaded = run_load(params, check_mode=False)
    # The load's custody record says which repository each source signature was made for (legacy signatures only).
    custody = {image["source"]: image["sourceSignature"] for image in loaded["custody"]["images"]}
    assert custody[sources.refs["legacy"]]["dockerReference"] == "%s/custody/legacy" % sources.host
    assert custody[sources.refs["legacy"]]["dockerReferenceMatch"] == "repository"
    assert "dockerReference" not in custody[sources.refs["referrer"]]
    source_host = sources.host.replace(":", "-")
    tag = "sha256-%s.sig" % sources.digest.split(":")[1]
    skopeo_args = [a.replace("--dest-", "--") for a in images.skopeo_tls_args(high, HIGH_USER)]
    for repo, carried in (("legacy", True), ("referrer", False)):
        reference = "docker://%s/mirror/%s/custody/%s:%s" % (high.host, source_host, repo, tag)
        raw = subprocess.run(["skopeo", "inspect", "--raw"] + skopeo_args + [reference], check=True,
                             capture_output=True, timeout=60).stdout
        manifest = json.loads(raw)
        ours = [layer for layer in manifest["layers"] if "dev.petra.bundle/signer" in layer["annotations"]]
        assert len(ours) == 1 and len(manifest["layers"]) == (2 if carried else 1)
        copied = tmp_path / ("sig-" + repo)
        subprocess.run(["skopeo", "copy"] + [a.replace("--dest-", "--src-") for a in
                                             images.skopeo_tls_args(high, HIGH_USER)]
                       + [reference, "dir:%s" % copied], check=True, capture_output=True, timeout=60)
        for layer in manifest["layers"]:
            payload = (copied / layer["digest"].split(":")[1]).read_bytes()
            der = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
            document = json.loads(payload)
            assert document["critical"]["image"]["docker-manifest-digest"] == sources.digest
            pub = bundle_key[1] if layer in ours else sources.pub
            assert openssl_verifies(tmp_path, pub, payload, der, "high-" + repo)
        assert json.loads((copied / ours[0]["digest"].split(":")[1]).read_bytes())["critical"]["identity"] == {
            "docker-reference": "%s/custody/%s" % (sources.host, repo)}
    # The referrer travelled, and the target lists it in the referrers tag schema (distribution 2.8 has no API).
    index = json.loads(subprocess.run(
        ["skopeo", "inspect", "--raw"] + skopeo_args + ["docker://%s/mirror/%s/custody/referrer:sha256-%s" % (
            high.host, source_host, sources.digest.split(":")[1])], check=True, capture_output=True, timeout=60).stdout)
    assert [m["digest"] for m in index["manifests"]] == [sources.referrer_digest]
    assert loaded["referrer_tags"] and {s["kind"] for s in loaded["signatures"]} == {
        "signature", "sbom", "referrer", "countersignature"}
    # Artifacts Flux reads (here a file) are countersigned too, so OCIRepository.spec.verify accepts them.
    (artifact,) = loaded["artifacts"]
    sig = json.loads(subprocess.run(
        ["skopeo", "inspect", "--raw"] + skopeo_args + ["docker://%s/mirror/files/custody/k3s:sha256-%s.sig" % (
            high.host, artifact["digest"].split(":")[1])], check=True, capture_output=True, timeout=60).stdout)
    assert [layer["annotations"]["dev.petra.bundle/signer"] for layer in sig["layers"]] == [loaded["key_id"]]
    assert run_load(params, check_mode=False)["changed"] is False


def fake_scanner(tmp_path, findings):
    table = tmp_path / "findings.json"
    table.write_text(json.dumps(findings))
    wrappers = {}
    for name in ("trivy", "grype"):
        path = tmp_path / ("fake-" + name)
        path.write_text("#!%s\nimport runpy, sys\nsys.argv = [%r, %r] + sys.argv[1:]\nrunpy.run_path(%r, "
                        "run_name='__main__')\n" % (sys.executable, "fake", name,
                                                    os.path.join(SUPPORT, "fake_scanner.py")))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        wrappers[name] = str(path)
    return wrappers, {"FAKE_SCANNER_FINDINGS": str(table)}


def test_vulnerability_gate_end_to_end(registry, sources, tmp_path, bundle_key):
    wrappers, env = fake_scanner(tmp_path, {"*": [
        {"id": "CVE-2026-0001", "package": "openssl", "version": "3.0.1", "severity": "critical", "fixed": "3.0.2"},
        {"id": "CVE-2026-0002", "package": "zlib", "version": "1.2", "severity": "medium"}]})
    refs = [sources.refs["legacy"]]
    with pytest.raises(ScanError) as info:
        build(registry, tmp_path, refs, key=bundle_key[0], scanner=Scanner({"scanner": "trivy", "executable": wrappers[
            "trivy"], "args": ["--skip-db-update", "--offline-scan"], "env": env}))
    assert info.value.reason == "vulnerabilities" and "CRITICAL CVE-2026-0001 in openssl 3.0.1" in str(info.value)
    assert "CVE-2026-0002" not in str(info.value)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".petra-scan-", "b.tar.zst"))]
    # Offline database options are passed through: without them this trivy stand-in fails, and says why.
    with pytest.raises(ScanError) as info:
        build(registry, tmp_path, refs, key=bundle_key[0], scanner=Scanner({"scanner": "trivy", "executable": wrappers[
            "trivy"], "env": env}))
    assert info.value.reason == "scanner" and "cannot download the vulnerability database" in str(info.value)
    ignore = tmp_path / "ignore.yml"
    ignore.write_text("ignore:\n  - vulnerability: CVE-2026-0001\n    reason: not reachable\n")
    scanner = Scanner({"scanner": "grype", "executable": wrappers["grype"], "env": env, "ignore_file": str(ignore)})
    result = build(registry, tmp_path, refs, key=bundle_key[0], scanner=scanner)
    (report,) = result["scan"]["reports"]
    assert report["findings"] == {"medium": 1} and report["ignored"] == 1
    stored = entry_bytes(result["path"], report["entry"])
    assert "sha256:" + hashlib.sha256(stored).hexdigest() == report["digest"]
    assert json.loads(stored)["descriptor"]["name"] == "grype"
    metadata = verify_bundle(result["path"], load_public_keys([bundle_key[1]]))["metadata"]
    assert metadata["scan"]["reports"] == result["scan"]["reports"] and metadata["scan"]["ignoreFile"].startswith(
        "sha256:")
    # Nothing left behind, and an unchanged build is not scanned again.
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".petra-scan-")]
    assert build(registry, tmp_path, refs, key=bundle_key[0], scanner=scanner)["changed"] is False


def test_review_sheet_of_a_custody_bundle(registry, sources, tmp_path, bundle_key):
    """The review sheet of a bundle with a verified source signature, a carried SBOM and a scan, all from the real
    registry: what it says per image is what the bundle carries."""
    from ansible_collections.petra.core.plugins.module_utils.review.render import render_html
    from ansible_collections.petra.core.plugins.module_utils.review.sheet import review_bundle
    wrappers, env = fake_scanner(tmp_path, {"*": [
        {"id": "CVE-2026-0002", "package": "zlib", "version": "1.2", "severity": "medium"},
        {"id": "CVE-2026-0003", "package": "curl", "version": "8.0", "severity": "low"}]})
    rules = [{"glob": "%s/custody/*" % sources.host, "key": sources.pub}]
    result = build(registry, tmp_path, [sources.refs["legacy"]], rules, key=bundle_key[0],
                   scanner=Scanner({"scanner": "grype", "executable": wrappers["grype"], "env": env}))
    data = review_bundle(result["path"], load_public_keys([bundle_key[1]]))
    assert data["verdict"]["status"] == "verified" and data["bundle"]["sha256"] == result["sha256"]
    (image,) = data["images"]
    signature = image["sourceSignature"]
    assert (signature["method"], signature["keyId"], signature["format"]) == (
        "key", key_id(load_signer(sources.key).public_key()), "legacy-tag")
    assert (signature["dockerReference"], signature["dockerReferenceMatch"]) == (
        "%s/custody/legacy" % sources.host, "repository")
    assert image["platforms"] == [{"platform": "linux/amd64", "digest": sources.digest}]
    assert image["size"] > 20_000 and {a["kind"] for a in image["attached"]} == {"signature", "sbom"}
    # The SBOM cosign attached to the image, read from inside the bundle, and the image's entry in the bundle's own.
    (carried,) = image["sbom"]["carried"]
    assert carried["digest"] == "sha256:" + hashlib.sha256(sources.sbom_document).hexdigest()
    assert (carried["format"], carried["specVersion"], carried["components"]) == ("CycloneDX", "1.5", 0)
    assert image["sbom"]["bomRef"] == "image:" + sources.refs["legacy"]
    assert image["scan"][0]["findings"] == [{"severity": "medium", "count": 1}, {"severity": "low", "count": 1}]
    assert data["scan"]["scanner"] == "grype" and image["custody"]["target"] is None
    page = render_html(data)
    assert sources.refs["legacy"] in page and "1 medium" in page and "made for" in page


def test_trusted_root_travels_in_the_bundle_and_admits_the_carried_signature(registry, sources, keyless, tmp_path,
                                                                             bundle_key, ec_key):
    """A bundle with a keyless source carries the trusted root that verified it, named by content with its digest in
    the signed metadata, and petra_verify reports where it is; rendered by petra_platform from the file taken out of
    the bundle, the TrustRoot and the keyless policy admit the image with the signature the bundle carried."""
    refs = [keyless.refs["keyless"], sources.refs["legacy"]]
    rules = keyless_rules(keyless) + [{"glob": "*/custody/legacy", "key": sources.pub}]
    result = build(registry, tmp_path, refs, rules, key=bundle_key[0])
    with open(keyless.root, "rb") as handle:
        root_bytes = handle.read()
    digest = "sha256:" + hashlib.sha256(root_bytes).hexdigest()
    name = "sigstore/trusted_root-%s.json" % digest[7:19]
    verified = run_verify({"path": result["path"], "public_keys": [bundle_key[1]], "signature": None})
    assert verified["trusted_roots"] == verified["metadata"]["trustedRoots"] == [{
        "name": name, "digest": digest, "size": len(root_bytes),
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "keyless": [{"glob": "*/custody/keyless*", "identity": KEYLESS_IDENTITY, "issuer": KEYLESS_ISSUER,
                     "for": ["signature"]}]}]
    carried_root = entry_bytes(result["path"], name)
    assert carried_root == root_bytes
    assert {"name": name, "digest": digest, "size": len(root_bytes)} in read_metadata(result["path"])["entries"]
    # Reproducible: the same inputs make the same bundle, which is then left alone.
    again = build(registry, tmp_path, refs, rules, key=bundle_key[0])
    assert again["changed"] is False and again["sha256"] == result["sha256"]
    # Only keyless rules bring a trusted root along.
    plain = build(registry, tmp_path, [sources.refs["legacy"]], rules, key=bundle_key[0], name="plain.tar.zst")
    assert "trustedRoots" not in verify_bundle(plain["path"], load_public_keys([bundle_key[1]]))["metadata"]

    # The high side: the trusted root out of the verified bundle, its digest checked by petra_platform.
    taken = tmp_path / "trusted_root.json"
    taken.write_bytes(carried_root)
    high = "registry.high.example:5000/petra"
    image_host = keyless.refs["keyless"].split("/")[0]
    platform = run_platform(params_for(tmp_path / "platform", ec_key[1], registry=high, trusted_root=str(taken),
                                       trusted_root_digest=digest, keyless=[{
                                           "name": "team", "glob": "%s/custody/keyless*" % image_host,
                                           "identity": KEYLESS_IDENTITY, "issuer": KEYLESS_ISSUER}]), False)
    assert platform["trusted_root_digest"] == digest
    objects = documents_of(tmp_path / "platform")[1]
    (image,) = [item for item in verify_bundle(result["path"], load_public_keys([bundle_key[1]]))["metadata"]["images"]
                if item["ref"] == keyless.refs["keyless"]]
    (attached,) = image["attached"]
    manifest = json.loads(entry_bytes(result["path"], "blobs/sha256/" + attached["digest"].split(":")[1]))
    carried = entry_bytes(result["path"], "blobs/sha256/" + manifest["layers"][0]["digest"].split(":")[1])
    countersigned = json.loads(entry_bytes(result["path"], "blobs/sha256/" + image["countersignature"]["digest"][7:]))
    layer = countersigned["layers"][-1]
    payload = entry_bytes(result["path"], "blobs/sha256/" + layer["digest"][7:])
    der = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
    target = "%s/%s/custody/keyless@%s" % (high, image_host.replace(":", "-"), image["digest"])
    # The platform key is not the bundle key here: the countersignature policy refuses, the keyless one admits.
    admitted, verdicts = admission.evaluate(objects, target, image["digest"], admission.Carried([carried], [(payload, der)]))
    assert verdicts["petra-keyless-team"] == "keyless" and verdicts["petra-bundle-signed"].startswith("refused")
    rendered = run_platform(params_for(tmp_path / "platform", bundle_key[1], registry=high, trusted_root=str(taken),
                                       trusted_root_digest=digest,
                                       keyless=[{"name": "team", "glob": "%s/custody/keyless*" % image_host,
                                                 "identity": KEYLESS_IDENTITY, "issuer": KEYLESS_ISSUER}]), False)
    assert rendered["changed"] is True
    objects = documents_of(tmp_path / "platform")[1]
    assert admission.evaluate(objects, target, image["digest"], admission.Carried([carried], [(payload, der)])) == (
        True, {"petra-bundle-signed": "key", "petra-keyless-team": "keyless"})


PLATFORM_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Verify and extract
      ansible.builtin.include_role: {{name: petra.core.bundle_verify}}
      vars:
        bundle_verify_path: {bundle}
        bundle_verify_public_key: {pub}
        bundle_verify_extract_trusted_roots: {roots}
    - name: Render the platform from the verified bundle
      ansible.builtin.include_role: {{name: petra.core.platform}}
      vars:
        platform_output_dir: {out}
        platform_registry: registry.high.example:5000/petra
        platform_public_key: {pub}
        platform_cluster_name: high
        platform_crds: [{crds}]
        platform_verified_bundle: "{{{{ bundle_verify_result }}}}"
        platform_keyless:
          - name: team
            glob: {glob}
            identity: "{{{{ bundle_verify_result.trusted_roots[0].keyless[0].identity }}}}"
            issuer: "{{{{ bundle_verify_result.trusted_roots[0].keyless[0].issuer }}}}"
"""


def test_trusted_root_extracted_at_verification_feeds_the_platform_role(registry, sources, keyless, tmp_path,
                                                                        bundle_key):
    """petra_verify extract_trusted_roots writes the carried trusted root once the bundle verified; the platform role
    takes it (path and digest) from the registered result, renders a TrustRoot that validates against the
    policy-controller CRD, holds exactly that file's keys, and admits the image with the carried signature."""
    from ansible_collections.petra.core.plugins.module_utils.platform.keyless import TrustedRoot
    from ansible_collections.petra.core.tests.conftest import CRD_DIR
    from ansible_collections.petra.core.tests.integration.test_playbooks import run_playbook

    result = build(registry, tmp_path, [keyless.refs["keyless"]], keyless_rules(keyless), key=bundle_key[0])
    root_bytes = (sources.work / "trusted_root.json").read_bytes()
    digest = "sha256:" + hashlib.sha256(root_bytes).hexdigest()
    roots = tmp_path / "roots"
    image_host = keyless.refs["keyless"].split("/")[0]
    play = PLATFORM_PLAY.format(bundle=result["path"], pub=bundle_key[1], roots=roots, out=tmp_path / "platform",
                                crds=CRD_DIR, glob="%s/custody/keyless*" % image_host)
    report = run_playbook(tmp_path, play)
    verified = report["petra.core.bundle_verify : Verify the bundle"]
    extracted = str(roots / ("trusted_root-%s.json" % digest[7:19]))
    assert verified["changed"] is True and [(item["path"], item["digest"]) for item in verified["trusted_roots"]] == [
        (extracted, digest)]
    assert os.listdir(roots) == [os.path.basename(extracted)]
    with open(extracted, "rb") as handle:
        assert handle.read() == root_bytes
    assert verified["metadata"].get("trustedRoots") is None or "path" not in verified["metadata"]["trustedRoots"][0]
    rendered = report["petra.core.platform : Render the platform"]
    assert rendered["trusted_root_digest"] == digest and rendered["changed"] is True
    validation = report["petra.core.platform : Validate every rendered object against the Kubernetes and CRD "
                        "schemas"]
    assert validation.get("failed") is not True and "policy.sigstore.dev/v1alpha1 TrustRoot" in validation["kinds"]
    objects = documents_of(tmp_path / "platform")[1]
    (trust_root,) = [item for item in objects if item["kind"] == "TrustRoot"]
    assert trust_root["metadata"]["annotations"]["petra.dev/trusted-root-digest"] == digest
    assert trust_root["spec"]["sigstoreKeys"] == TrustedRoot(extracted, digest).sigstore_keys
    (image,) = verify_bundle(result["path"], load_public_keys([bundle_key[1]]))["metadata"]["images"]
    (attached,) = image["attached"]
    manifest = json.loads(entry_bytes(result["path"], "blobs/sha256/" + attached["digest"].split(":")[1]))
    carried = entry_bytes(result["path"], "blobs/sha256/" + manifest["layers"][0]["digest"].split(":")[1])
    target = "registry.high.example:5000/petra/%s/custody/keyless@%s" % (image_host.replace(":", "-"), image["digest"])
    _admitted, verdicts = admission.evaluate(objects, target, image["digest"], admission.Carried([carried], []))
    assert verdicts["petra-keyless-team"] == "keyless"

    # Again: the file already holds the entry, nothing changes.
    again = run_playbook(tmp_path, play)
    assert again["petra.core.bundle_verify : Verify the bundle"]["changed"] is False
    assert again["petra.core.platform : Render the platform"]["changed"] is False

    # A bundle carrying no trusted root: the platform role says what is wrong instead of rendering without one.
    plain = build(registry, tmp_path, [sources.refs["legacy"]], [{"glob": "*/custody/legacy", "key": sources.pub}],
                  key=bundle_key[0], name="plain.tar.zst")
    literal = play.replace(result["path"], plain["path"]).replace(
        '"{{ bundle_verify_result.trusted_roots[0].keyless[0].identity }}"', KEYLESS_IDENTITY).replace(
        '"{{ bundle_verify_result.trusted_roots[0].keyless[0].issuer }}"', KEYLESS_ISSUER)
    refused = run_playbook(tmp_path, literal, expect_rc=2)
    check = refused["petra.core.platform : Check that the verified bundle gives one extracted trusted root"]
    assert check["failed"] is True and "carries 0" in check["msg"] and "leave platform_verified_bundle" in check["msg"]


def test_trusted_roots_are_extracted_only_from_a_verified_bundle(registry, keyless, tmp_path, bundle_key, ec_key):
    """Streamed to temporary files during the read, committed only after the whole bundle verified: a refusal leaves
    nothing (not even the directory it made); check mode writes nothing and says it would."""
    result = build(registry, tmp_path, [keyless.refs["keyless"]], keyless_rules(keyless), key=bundle_key[0])
    roots = tmp_path / "roots" / "sigstore"
    params = {"path": result["path"], "public_keys": [bundle_key[1]], "signature": None,
              "extract_trusted_roots": str(roots)}
    with pytest.raises(Exception) as refused:
        run_verify(dict(params, public_keys=[ec_key[1]]))
    assert getattr(refused.value, "reason", None) == "wrong-key"
    assert not roots.exists() and os.listdir(tmp_path / "roots") == []
    checked = run_verify(dict(params), check_mode=True)
    assert checked["changed"] is True and checked["trusted_roots"][0]["path"].startswith(str(roots))
    assert not roots.exists()
    done = run_verify(dict(params))
    (path,) = [item["path"] for item in done["trusted_roots"]]
    assert done["changed"] is True and os.listdir(roots) == [os.path.basename(path)]
    assert "sha256:" + hashlib.sha256((roots / os.path.basename(path)).read_bytes()).hexdigest() == \
        done["trusted_roots"][0]["digest"]
    # A file that differs is replaced (a verified entry wins over whatever was there), one that matches is kept.
    (roots / os.path.basename(path)).write_text("{}")
    assert run_verify(dict(params), check_mode=True)["changed"] is True
    assert run_verify(dict(params))["changed"] is True
    assert run_verify(dict(params))["changed"] is False
    assert sorted(os.listdir(roots)) == [os.path.basename(path)]
