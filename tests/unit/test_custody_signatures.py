"""Cosign formats and the verify_images verdicts without a registry: payload bytes, policy rules, keyless refusals.

The keyless bundles here come from a CA outside any trusted root, for the refusal paths; keyless acceptance needs a
Fulcio certificate with an SCT and a Rekor entry with a signed inclusion proof, which tests/support/fake_sigstore.py
makes offline (tests/unit/test_custody_keyless.py, and tests/integration/test_custody.py through a registry)."""

import base64
import datetime
import hashlib
import json
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.petra.core.plugins.module_utils.custody import image_signatures as cosign
from ansible_collections.petra.core.plugins.module_utils.custody.attached import Attached
from ansible_collections.petra.core.plugins.module_utils.custody.errors import CustodyError, SourceSignatureError
from ansible_collections.petra.core.plugins.module_utils.custody.keyless import certificate_identity, keyless_verifier
from ansible_collections.petra.core.plugins.module_utils.custody.verification import SourceVerifier
from ansible_collections.petra.core.plugins.module_utils.oci.reference import ImageReference
from ansible_collections.petra.core.tests.support.cosign_signer import MemoryBlobs as Blobs

DIGEST = "sha256:" + "ab" * 32
IDENTITY = "https://github.com/chainguard-images/images/.github/workflows/release.yaml@refs/heads/main"
ISSUER = "https://token.actions.githubusercontent.com"


def production_root():
    import sigstore
    return os.path.join(os.path.dirname(sigstore.__file__), "_store", "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev",
                        "trusted_root.json")


def test_payload_bytes_are_cosigns():
    payload = cosign.simple_signing_payload("registry.example/team/app", DIGEST)
    assert payload == (b'{"critical":{"identity":{"docker-reference":"registry.example/team/app"},"image":'
                       b'{"docker-manifest-digest":"' + DIGEST.encode() + b'"},"type":"cosign container image '
                       b'signature"},"optional":null}')
    assert cosign.signed_digest(payload) == DIGEST
    assert cosign.tag_for(DIGEST, ".sig") == "sha256-%s.sig" % ("ab" * 32)
    assert cosign.pae("t", b"abc") == b"DSSEv1 1 t 3 abc"
    with pytest.raises(ValueError):
        cosign.signed_digest(b'{"critical": {"type": "something else"}}')


@pytest.mark.parametrize("rule, words", [
    ({"glob": "*"}, "names no method"),
    ({"glob": "*", "method": "key"}, "no key"),
    ({"glob": "*", "identity": IDENTITY}, "needs identity, issuer and trusted_root"),
    ({"glob": "*", "method": "none", "key": "k.pub"}, "method none but also"),
    ({"key": "k.pub"}, "has no glob"),
    ({"glob": "*", "key": "k.pub", "identity": IDENTITY}, "both a key and a keyless identity/issuer"),
    ({"glob": "*", "method": "keyless", "key": "k.pub", "identity": IDENTITY, "issuer": ISSUER,
      "trusted_root": "root.json"}, "both a key and a keyless identity/issuer"),
])
def test_policy_rules_are_checked(rule, words):
    with pytest.raises(CustodyError) as info:
        SourceVerifier([rule])
    assert info.value.reason == "policy" and words in str(info.value)


def test_first_matching_rule_applies():
    verifier = SourceVerifier([{"glob": "cgr.dev/chainguard/*", "method": "none"}, {"glob": "*", "key": "k.pub"}])
    ref = ImageReference.parse("cgr.dev/chainguard/nginx:1.27")
    assert verifier.rule_for(str(ref), ref).method == "none"
    other = ImageReference.parse("nginx")  # docker.io/library/nginx
    assert verifier.rule_for("nginx", other).method == "key"


def test_trusted_root_parsing():
    assert keyless_verifier(production_root()) is not None


@pytest.mark.parametrize("content, words", [
    (None, "cannot read the trusted root"),
    ('{"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}', "not a usable Sigstore trusted root"),
    ("not json", "not a usable Sigstore trusted root"),
])
def test_trusted_root_refused(tmp_path, content, words):
    path = tmp_path / "trusted_root.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(CustodyError) as info:
        keyless_verifier(str(path))
    assert info.value.reason == "trusted-root" and words in str(info.value)


def fulcio_like_certificate(identity, issuer):
    """A certificate shaped like Fulcio's (SAN URI, OIDC issuer extension, code signing) from a CA of our own."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not-fulcio")])
    cert = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(minutes=10))
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity)]), critical=True)
            .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1"), issuer.encode()),
                           critical=False)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def keyless_bundle(cert, key, digest):
    statement = json.dumps({"_type": "https://in-toto.io/Statement/v1", "predicateType": cosign.COSIGN_SIGN_PREDICATE,
                            "subject": [{"name": "x", "digest": {"sha256": digest.split(":")[1]}}],
                            "predicate": {}}).encode()
    signature = key.sign(cosign.pae(cosign.IN_TOTO_PAYLOAD, statement), ec.ECDSA(hashes.SHA256()))

    def b64(data):
        return base64.b64encode(data).decode()

    return json.dumps({
        "mediaType": cosign.SIGSTORE_BUNDLE_TYPES[0],
        "verificationMaterial": {
            "certificate": {"rawBytes": b64(cert.public_bytes(serialization.Encoding.DER))},
            "tlogEntries": [{
                "logIndex": "7", "logId": {"keyId": b64(b"\x01" * 32)},
                "kindVersion": {"kind": "dsse", "version": "0.0.1"}, "integratedTime": str(int(
                    datetime.datetime.now(datetime.timezone.utc).timestamp())),
                "inclusionPromise": {"signedEntryTimestamp": b64(b"\x30\x00")},
                "inclusionProof": {"logIndex": "7", "rootHash": b64(b"\x02" * 32), "treeSize": "8",
                                   "hashes": [b64(b"\x03" * 32)],
                                   "checkpoint": {"envelope": "log - 1\n8\n%s\n\n\u2014 log AAAA\n" % b64(b"\x02" * 32)}},
                "canonicalizedBody": b64(b"{}")}]},
        "dsseEnvelope": {"payload": b64(statement), "payloadType": cosign.IN_TOTO_PAYLOAD,
                         "signatures": [{"sig": b64(signature), "keyid": ""}]},
    }).encode()


def referrer_with(blobs, bundle):
    layer = blobs.add(bundle)
    layer["mediaType"] = cosign.SIGSTORE_BUNDLE_TYPES[0]
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "artifactType": cosign.SIGSTORE_BUNDLE_TYPES[0], "config": {}, "layers": [layer]}).encode()
    return Attached("referrer", manifest, "application/vnd.oci.image.manifest.v1+json",
                    "sha256:" + hashlib.sha256(manifest).hexdigest(), artifact_type=cosign.SIGSTORE_BUNDLE_TYPES[0])


def verify_keyless(blobs, attached, identity=IDENTITY):
    verifier = SourceVerifier([{"glob": "*", "identity": identity, "issuer": ISSUER, "trusted_root": production_root()}])
    ref = ImageReference.parse("registry.example/team/app:1.0")
    return verifier.verify(blobs, str(ref), ref, DIGEST, [attached])


def test_keyless_identity_is_read_from_the_certificate():
    cert, _key = fulcio_like_certificate(IDENTITY, ISSUER)
    assert certificate_identity(cert) == ({IDENTITY}, ISSUER)


def test_keyless_signature_outside_the_trusted_root_is_refused():
    blobs = Blobs()
    cert, key = fulcio_like_certificate(IDENTITY, ISSUER)
    with pytest.raises(SourceSignatureError) as info:
        verify_keyless(blobs, referrer_with(blobs, keyless_bundle(cert, key, DIGEST)))
    assert info.value.reason == "bad-signature" and "does not verify against the trusted root" in str(info.value)


def test_keyless_signature_by_another_identity_is_refused():
    blobs = Blobs()
    cert, key = fulcio_like_certificate("https://github.com/someone/else/.github/workflows/x.yaml@refs/heads/main",
                                        ISSUER)
    with pytest.raises(SourceSignatureError) as info:
        verify_keyless(blobs, referrer_with(blobs, keyless_bundle(cert, key, DIGEST)))
    assert info.value.reason == "wrong-identity" and "someone/else" in str(info.value)


def test_keyless_signature_for_another_image_is_refused():
    blobs = Blobs()
    cert, key = fulcio_like_certificate(IDENTITY, ISSUER)
    with pytest.raises(SourceSignatureError) as info:
        verify_keyless(blobs, referrer_with(blobs, keyless_bundle(cert, key, "sha256:" + "cd" * 32)))
    assert info.value.reason == "wrong-image"


def test_key_bundle_by_another_key_names_its_hint(tmp_path):
    blobs = Blobs()
    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    pub = tmp_path / "k.pub"
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    cert, _unused = fulcio_like_certificate(IDENTITY, ISSUER)
    document = json.loads(keyless_bundle(cert, other, DIGEST))
    spki = other.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    document["verificationMaterial"] = {"publicKey": {"hint": base64.b64encode(hashlib.sha256(spki).digest()).decode()}}
    verifier = SourceVerifier([{"glob": "*", "key": str(pub)}])
    ref = ImageReference.parse("registry.example/team/app:1.0")
    with pytest.raises(SourceSignatureError) as info:
        verifier.verify(blobs, str(ref), ref, DIGEST, [referrer_with(blobs, json.dumps(document).encode())])
    assert info.value.reason == "wrong-key" and document["verificationMaterial"]["publicKey"]["hint"] in str(info.value)


def key_bundle(key, digest, predicate_type):
    """A key-based Sigstore bundle as cosign v3 writes it, over an in-toto statement with the predicate type given."""
    statement = json.dumps({"_type": "https://in-toto.io/Statement/v1", "predicateType": predicate_type,
                            "subject": [{"name": "x", "digest": {"sha256": digest.split(":")[1]}}],
                            "predicate": {}}).encode()
    signature = key.sign(cosign.pae(cosign.IN_TOTO_PAYLOAD, statement), ec.ECDSA(hashes.SHA256()))
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return json.dumps({
        "mediaType": cosign.SIGSTORE_BUNDLE_TYPES[0],
        "verificationMaterial": {"publicKey": {"hint": base64.b64encode(hashlib.sha256(spki).digest()).decode()}},
        "dsseEnvelope": {"payload": base64.b64encode(statement).decode(), "payloadType": cosign.IN_TOTO_PAYLOAD,
                         "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}]},
    }).encode()


@pytest.mark.parametrize("predicate_type", ["https://slsa.dev/provenance/v1",
                                            "https://cosign.sigstore.dev/attestation/vuln/v1"])
def test_key_signed_attestation_is_not_a_signature(tmp_path, predicate_type):
    """An attestation by the rule's own key, about this very image, does not stand in for its signature; the same
    statement with cosign's signature predicate does."""
    blobs = Blobs()
    key = ec.generate_private_key(ec.SECP256R1())
    pub = tmp_path / "k.pub"
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    verifier = SourceVerifier([{"glob": "*", "key": str(pub)}])
    ref = ImageReference.parse("registry.example/team/app:1.0")
    attestation = referrer_with(blobs, key_bundle(key, DIGEST, predicate_type))
    with pytest.raises(SourceSignatureError) as info:
        verifier.verify(blobs, str(ref), ref, DIGEST, [attestation])
    assert info.value.reason == "wrong-predicate" and predicate_type in str(info.value)
    signature = referrer_with(blobs, key_bundle(key, DIGEST, cosign.COSIGN_SIGN_PREDICATE))
    record = verifier.verify(blobs, str(ref), ref, DIGEST, [attestation, signature])
    assert record["format"] == "referrer" and record["method"] == "key"


def test_documented_cluster_image_policy_fits_the_crd():
    """docs/custody.md tells operators how to accept countersignatures: its ClusterImagePolicy must be valid."""
    import re

    import yaml

    from ansible_collections.petra.core.tests.support import crds
    docs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "custody.md")
    with open(docs) as handle:
        blocks = re.findall(r"```yaml\n(.*?)```", handle.read(), re.S)
    documents = [doc for block in blocks if "ClusterImagePolicy" in block for doc in yaml.safe_load_all(block)]
    policies = [doc for doc in documents if doc["kind"] == "ClusterImagePolicy"]
    assert len(policies) == 1
    crds.validate(policies[0])
    assert policies[0]["spec"]["authorities"][0]["key"]["secretRef"]["name"] == next(
        doc for doc in documents if doc["kind"] == "Secret")["metadata"]["name"]


def legacy_with(blobs, key, layers):
    """A ``.sig`` manifest (an Attached signature) with one layer per payload in ``layers``, each signed by ``key``."""
    from ansible_collections.petra.core.tests.support import cosign_signer
    descriptors = []
    for payload in layers:
        layer = blobs.add(payload)
        layer.update(mediaType=cosign.SIMPLE_SIGNING, annotations={cosign.ANNOTATION_SIGNATURE: base64.b64encode(
            cosign_signer.der_sign(key, payload)).decode()})
        descriptors.append(layer)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {}, "layers": descriptors}).encode()
    return Attached("signature", manifest, "application/vnd.oci.image.manifest.v1+json",
                    "sha256:" + hashlib.sha256(manifest).hexdigest(), tag=cosign.tag_for(DIGEST, ".sig"))


def key_rule(tmp_path, key, **options):
    pub = tmp_path / "k.pub"
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return SourceVerifier([dict({"glob": "*", "key": str(pub)}, **options)])


def signed_for(reference):
    from ansible_collections.petra.core.tests.support import cosign_signer
    return cosign_signer.payload_for(reference, DIGEST)


@pytest.mark.parametrize("image, signed, options, match", [
    ("registry.example/team/app:1.0", "registry.example/team/app", {}, "repository"),
    # cosign writes Docker Hub as index.docker.io, and a tag in the signed reference is not the repository
    ("nginx:1.27", "index.docker.io/library/nginx", {}, "repository"),
    ("docker.io/library/nginx@" + DIGEST, "docker.io/nginx:1.27", {}, "repository"),
    ("mirror.example/team/app:1.0", "registry.example/team/app", {"docker_reference": "path"}, "path"),
    ("harbor.example/cache/library/nginx:1.27", "index.docker.io/library/nginx",
     {"docker_reference_globs": ["docker.io/library/*"]}, "glob"),
    ("registry.example/team/app:1.0", "registry.example/team/tools", {"docker_reference": "ignore"}, "none"),
])
def test_signed_docker_reference_is_recorded(tmp_path, image, signed, options, match):
    blobs = Blobs()
    key = ec.generate_private_key(ec.SECP256R1())
    ref = ImageReference.parse(image)
    record = key_rule(tmp_path, key, **options).verify(blobs, image, ref, DIGEST, [
        legacy_with(blobs, key, [signed_for(signed)])])
    assert record["format"] == "legacy-tag" and record["dockerReference"] == signed
    assert record["dockerReferenceMatch"] == match


@pytest.mark.parametrize("image, signed, options, words", [
    ("registry.example/team/app:1.0", "registry.example/team/tools", {},
     "was made for registry.example/team/tools, not for registry.example/team/app (docker_reference: repository"),
    ("mirror.example/team/app:1.0", "registry.example/team/app", {},
     "was made for registry.example/team/app, not for mirror.example/team/app"),
    ("mirror.example/team/app:1.0", "registry.example/team/tools", {"docker_reference": "path"},
     "not for mirror.example/team/app (docker_reference: path wants this repository path on any registry)"),
    ("harbor.example/cache/library/nginx:1.27", "index.docker.io/library/redis",
     {"docker_reference_globs": ["docker.io/library/nginx"]}, "or one matching docker.io/library/nginx"),
    ("registry.example/team/app:1.0", "Not A Reference", {}, "'Not A Reference', which is not an image reference"),
])
def test_signature_for_another_repository_is_refused(tmp_path, image, signed, options, words):
    blobs = Blobs()
    key = ec.generate_private_key(ec.SECP256R1())
    ref = ImageReference.parse(image)
    with pytest.raises(SourceSignatureError) as info:
        key_rule(tmp_path, key, **options).verify(blobs, image, ref, DIGEST, [
            legacy_with(blobs, key, [signed_for(signed)])])
    assert info.value.reason == "signature-reference" and words in str(info.value), str(info.value)
    assert "docker_reference" in info.value.hint


def test_signature_without_docker_reference(tmp_path):
    blobs = Blobs()
    key = ec.generate_private_key(ec.SECP256R1())
    ref = ImageReference.parse("registry.example/team/app:1.0")
    payload = json.dumps({"critical": {"image": {"docker-manifest-digest": DIGEST}, "type": cosign.SIGNATURE_TYPE},
                          "optional": None}).encode()
    with pytest.raises(SourceSignatureError) as info:
        key_rule(tmp_path, key).verify(blobs, str(ref), ref, DIGEST, [legacy_with(blobs, key, [payload])])
    assert info.value.reason == "signature-reference" and "names no docker-reference" in str(info.value)
    record = key_rule(tmp_path, key, docker_reference="ignore").verify(blobs, str(ref), ref, DIGEST, [
        legacy_with(blobs, key, [payload])])
    assert record["dockerReferenceMatch"] == "none" and "dockerReference" not in record


def test_docker_reference_is_judged_only_on_a_verified_signature(tmp_path):
    """A layer by another key names whatever its maker wants: it is wrong-key, not signature-reference; and a
    signature for another repository beside one for this repository does not stop the image."""
    blobs = Blobs()
    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ref = ImageReference.parse("registry.example/team/app:1.0")
    verifier = key_rule(tmp_path, key)
    with pytest.raises(SourceSignatureError) as info:
        verifier.verify(blobs, str(ref), ref, DIGEST, [
            legacy_with(blobs, other, [signed_for("registry.example/team/tools")])])
    assert info.value.reason == "wrong-key"
    record = verifier.verify(blobs, str(ref), ref, DIGEST, [legacy_with(blobs, key, [
        signed_for("registry.example/team/tools"), signed_for("registry.example/team/app")])])
    assert (record["dockerReference"], record["dockerReferenceMatch"]) == ("registry.example/team/app", "repository")


def test_referrer_signatures_record_no_docker_reference(tmp_path):
    """Cosign v3 statements name the digest only: nothing to record, and a repository rule still accepts them."""
    blobs = Blobs()
    key = ec.generate_private_key(ec.SECP256R1())
    ref = ImageReference.parse("registry.example/team/app:1.0")
    record = key_rule(tmp_path, key).verify(blobs, str(ref), ref, DIGEST, [
        referrer_with(blobs, key_bundle(key, DIGEST, cosign.COSIGN_SIGN_PREDICATE))])
    assert record["format"] == "referrer" and not {"dockerReference", "dockerReferenceMatch"} & set(record)


@pytest.mark.parametrize("options, words", [
    ({"docker_reference": "ignore", "docker_reference_globs": ["docker.io/*"]}, "globs would never be consulted"),
    ({"docker_reference": "exact"}, "docker_reference 'exact' is not one of repository, path, ignore"),
])
def test_docker_reference_options_are_checked(options, words):
    with pytest.raises(CustodyError) as info:
        SourceVerifier([dict({"glob": "*", "key": "k.pub"}, **options)])
    assert info.value.reason == "policy" and words in str(info.value)


def test_custody_record_carries_the_signed_reference():
    from ansible_collections.petra.core.plugins.module_utils.trust import custody
    verification = {"sha256": "ab" * 32, "size": 1, "key_id": "sha256:" + "cd" * 32, "signers": [], "threshold": 1}
    source = {"rule": "*", "method": "key", "format": "legacy-tag", "dockerReference": "registry.example/team/tools",
              "dockerReferenceMatch": "none", "verifiedAt": "2026-01-01T00:00:00Z"}
    image = {"ref": "registry.example/team/app:1.0", "digest": DIGEST, "sourceVerification": source}
    metadata = {"name": "b", "version": "1", "images": [image]}
    (image,) = custody.custody_record(metadata, verification)["images"]
    assert image["sourceSignature"]["dockerReference"] == "registry.example/team/tools"
    assert image["sourceSignature"]["dockerReferenceMatch"] == "none"


def test_the_trusted_root_carried_is_the_one_that_verified(tmp_path, ec_key):
    """The build carries the bytes its verifier was made from: a trusted root replaced after the verification
    read it is not what travels to the high side (where it would be trusted for what it never verified)."""
    from ansible_collections.petra.core.plugins.module_utils.bundle.custody_plan import CreationCustody
    from ansible_collections.petra.core.plugins.module_utils.signing.keys import load_signer
    path = tmp_path / "trusted_root.json"
    with open(production_root(), "rb") as handle:
        original = handle.read()
    path.write_bytes(original)
    verifier = SourceVerifier([{"glob": "ghcr.io/o/*", "identity": "https://github.com/o/app/.github/workflows/r.yml",
                                "issuer": "https://token.actions.githubusercontent.com", "trusted_root": str(path)}])
    assert verifier.keyless_verifier_for(verifier.rules[0]) is not None  # what the verification of a signature does
    path.write_bytes(original.replace(b"https://", b"https://evil."))  # replaced between verification and carrying
    custody = CreationCustody(load_signer(ec_key[0]), verifier)
    ref = ImageReference.parse("ghcr.io/o/app:1")
    custody._note_roots(str(ref), ref, {"sourceVerification": {"method": "keyless"}})
    [(_name, carried, record)] = custody.roots.entries()
    assert carried == original
    assert record["digest"] == "sha256:" + hashlib.sha256(original).hexdigest()
