"""SLSA provenance required by verify_images rules, without a registry: the predicates (v1, v0.2) read, the rule
options checked, and every verdict on attestations made here (tests/support/slsa_attest.py: DSSE over in-toto
statements, in the legacy .att tag and as Sigstore bundle referrers; keyless ones from the offline Sigstore instance
in tests/support/fake_sigstore.py), each signature also checked with openssl over the PAE bytes. The same through a
registry and into a bundle and its custody record: tests/integration/test_custody_provenance_registry.py."""

import base64
import hashlib
import json
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.petra.core.plugins.module_utils.custody import image_signatures as cosign
from ansible_collections.petra.core.plugins.module_utils.custody import slsa
from ansible_collections.petra.core.plugins.module_utils.custody.attached import Attached
from ansible_collections.petra.core.plugins.module_utils.custody.errors import CustodyError, ProvenanceError
from ansible_collections.petra.core.plugins.module_utils.custody.provenance import ProvenanceVerifier
from ansible_collections.petra.core.plugins.module_utils.custody.verification import SourceVerifier
from ansible_collections.petra.core.plugins.module_utils.oci.reference import ImageReference
from ansible_collections.petra.core.tests.support.cosign_signer import MemoryBlobs as Blobs
from ansible_collections.petra.core.plugins.module_utils.signing.keys import key_id
from ansible_collections.petra.core.tests.support import fake_sigstore, slsa_attest

DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32
REPO = "https://github.com/petra-test/images"
REF = "refs/heads/main"
IMAGE = ImageReference.parse("registry.example/team/app:1.0")
IDENTITY = "https://github.com/petra-test/images/.github/workflows/release.yaml@refs/heads/main"
ISSUER = "https://token.actions.githubusercontent.com"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def att(blobs, envelopes, annotations=None):
    """A legacy .att manifest (Attached) with one DSSE layer per Envelope, annotated with its predicate type."""
    layers = []
    for envelope in envelopes:
        layer = blobs.add(envelope.data)
        predicate_type = json.loads(envelope.statement)["predicateType"]
        layer.update(mediaType=cosign.DSSE_ENVELOPE, annotations=dict({"predicateType": predicate_type},
                                                                      **(annotations or {})))
        layers.append(layer)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": layers}).encode()
    return Attached("attestation", manifest, OCI_MANIFEST, sha(manifest), tag=cosign.tag_for(DIGEST, ".att"))


def referrer(blobs, bundle):
    layer = blobs.add(bundle)
    layer["mediaType"] = cosign.SIGSTORE_BUNDLE_TYPES[0]
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": cosign.SIGSTORE_BUNDLE_TYPES[0],
                           "config": {}, "layers": [layer]}).encode()
    return Attached("referrer", manifest, OCI_MANIFEST, sha(manifest), artifact_type=cosign.SIGSTORE_BUNDLE_TYPES[0])


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    work = tmp_path_factory.mktemp("provenance-keys")
    found = {}
    for name in ("builder", "other"):
        private = ec.generate_private_key(ec.SECP256R1())
        pub = work / (name + ".pub")
        pub.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
        found[name] = (private, str(pub))
    return found


@pytest.fixture(scope="module")
def sigstore(tmp_path_factory):
    instance = fake_sigstore.FakeSigstore()
    instance.root_path = instance.trusted_root(tmp_path_factory.mktemp("provenance-root") / "trusted_root.json")
    return instance


def verifier_for(rule):
    return ProvenanceVerifier(SourceVerifier([rule]))


def key_rule(keys, **provenance):
    return {"glob": "registry.example/*", "key": keys["builder"][1],
            "provenance": dict({"builder_id": slsa_attest.GITHUB_BUILDER}, **provenance)}


def openssl_verifies(tmp_path, pub, data, der):
    (tmp_path / "pae.bin").write_bytes(data)
    (tmp_path / "pae.der").write_bytes(der)
    check = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pub, "-signature", str(tmp_path / "pae.der"),
                            str(tmp_path / "pae.bin")], capture_output=True, text=True, timeout=60, check=False)
    return check.returncode == 0 and "Verified OK" in check.stdout


# -- the predicates ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("uri, repository, ref", [
    ("git+https://github.com/org/repo@refs/heads/main", "https://github.com/org/repo", "refs/heads/main"),
    ("git+https://GitHub.com/org/repo.git@refs/tags/v1.2.0", "https://github.com/org/repo", "refs/tags/v1.2.0"),
    ("https://github.com/org/repo/", "https://github.com/org/repo", None),
    ("git+ssh://git@github.com/org/repo@refs/heads/main", "ssh://git@github.com/org/repo", "refs/heads/main"),
])
def test_source_uris_are_split(uri, repository, ref):
    assert slsa.split_uri(uri) == (repository, ref)


def test_v1_and_v02_predicates_are_read():
    one = slsa.Provenance.from_statement(slsa_attest.v1(DIGEST, REPO, REF))
    assert (one.predicate_type, one.builder_id, one.build_type) == (
        slsa.PREDICATE_V1, slsa_attest.GITHUB_BUILDER, slsa_attest.GITHUB_BUILD_TYPE)
    assert [(s.repository, s.ref, s.where, s.primary) for s in one.sources] == [
        (REPO, REF, "externalParameters.workflow", True), (REPO, REF, "resolvedDependencies[0]", False)]
    old = slsa.Provenance.from_statement(slsa_attest.v02(DIGEST, REPO, "refs/tags/v1.0.0"))
    assert (old.predicate_type, old.builder_id, old.build_type) == (
        slsa.PREDICATE_V02, slsa_attest.GENERATOR, slsa_attest.GENERATOR_BUILD_TYPE)
    source = old.matching_source(REPO + ".git", "refs/tags/v*")
    assert source.record() == {"repository": REPO, "ref": "refs/tags/v1.0.0", "where": "invocation.configSource",
                               "digest": {"sha1": slsa_attest.COMMIT}}
    assert old.matching_source(REPO, "refs/heads/*") is None
    with pytest.raises(ValueError, match="lacks 'runDetails'"):
        slsa.Provenance.from_statement(slsa_attest.statement(DIGEST, slsa.PREDICATE_V1, {"buildDefinition": {}}))
    with pytest.raises(ValueError, match="is not SLSA provenance"):
        slsa.Provenance.from_statement(slsa_attest.statement(DIGEST, cosign.COSIGN_SIGN_PREDICATE, {}))


# -- the rule options ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("rule, words", [
    ({"glob": "*", "key": "k.pub", "provenance": {}}, "names no builder"),
    ({"glob": "*", "key": "k.pub", "provenance": {"builder_id": "b", "builder_id_glob": "b*"}},
     "both builder_id and builder_id_glob"),
    ({"glob": "*", "key": "k.pub", "provenance": {"builder_id": "b", "source_ref": "refs/heads/main"}},
     "source_ref without source_repo"),
    ({"glob": "*", "method": "none", "provenance": {"builder_id": "b"}}, "names no signer"),
    ({"glob": "*", "method": "none", "provenance": {"builder_id": "b", "key": "k.pub", "identity": IDENTITY}},
     "both a key and a keyless identity"),
    ({"glob": "*", "method": "none", "provenance": {"builder_id": "b", "identity": IDENTITY, "issuer": ISSUER}},
     "needs issuer and trusted_root"),
    ({"glob": "*", "key": "k.pub", "provenance": {"builder_id": "b", "issuer": ISSUER}},
     "issuer or trusted_root without identity"),
])
def test_provenance_options_are_checked(rule, words):
    with pytest.raises(CustodyError) as info:
        verifier_for(rule)
    assert info.value.reason == "policy" and words in str(info.value)


def test_rules_without_provenance_ask_for_nothing(keys):
    verifier = ProvenanceVerifier(SourceVerifier([{"glob": "*", "key": keys["builder"][1]}]))
    assert verifier.verify(Blobs(), str(IMAGE), IMAGE, DIGEST, []) is None


# -- acceptance ------------------------------------------------------------------------------------------------
def test_key_signed_v1_in_the_att_tag_is_accepted(keys, tmp_path):
    blobs = Blobs()
    private, pub = keys["builder"]
    envelope = slsa_attest.Envelope(slsa_attest.v1(DIGEST, REPO, REF), private)
    assert openssl_verifies(tmp_path, pub, envelope.pae, envelope.der)
    assert not openssl_verifies(tmp_path, keys["other"][1], envelope.pae, envelope.der)
    carried = att(blobs, [envelope])
    rule = key_rule(keys, build_type=slsa_attest.GITHUB_BUILD_TYPE, source_repo="git+" + REPO + ".git",
                    source_ref=REF)
    record = verifier_for(rule).verify(blobs, str(IMAGE), IMAGE, DIGEST, [carried])
    pub_key = serialization.load_pem_public_key(open(pub, "rb").read())
    assert record == {
        "rule": "registry.example/*", "status": "verified", "method": "key", "keyId": key_id(pub_key),
        "predicateType": slsa.PREDICATE_V1, "builderId": slsa_attest.GITHUB_BUILDER,
        "buildType": slsa_attest.GITHUB_BUILD_TYPE, "format": "legacy-tag",
        "attestation": {"manifest": carried.digest, "digest": carried.layers[0]["digest"]},
        "source": {"repository": REPO, "ref": REF, "where": "externalParameters.workflow"}}


def test_key_signed_v02_referrer_is_accepted_by_its_own_key(keys, tmp_path):
    """The provenance signer differs from the image signer (the SLSA generator's key): provenance.key names it."""
    blobs = Blobs()
    private, pub = keys["other"]
    envelope = slsa_attest.Envelope(slsa_attest.v02(DIGEST, REPO, "refs/tags/v1.4.0"), private)
    assert openssl_verifies(tmp_path, pub, envelope.pae, envelope.der)
    rule = {"glob": "registry.example/*", "key": keys["builder"][1], "provenance": {
        "builder_id_glob": "https://github.com/slsa-framework/slsa-github-generator/*@refs/tags/v1.*", "key": pub,
        "source_repo": REPO, "source_ref": "refs/tags/v*"}}
    carried = referrer(blobs, slsa_attest.key_bundle(envelope, private))
    record = verifier_for(rule).verify(blobs, str(IMAGE), IMAGE, DIGEST, [carried])
    assert (record["format"], record["predicateType"], record["builderId"]) == (
        "referrer", slsa.PREDICATE_V02, slsa_attest.GENERATOR)
    assert record["source"] == {"repository": REPO, "ref": "refs/tags/v1.4.0", "where": "invocation.configSource",
                                "digest": {"sha1": slsa_attest.COMMIT}}
    assert record["attestation"]["digest"] == carried.layers[0]["digest"]


def test_keyless_provenance_is_verified_offline(keys, sigstore, tmp_path):
    """A keyless rule trusts its identity for provenance too; the Sigstore bundle is verified against the trusted
    root, and openssl checks the DSSE signature over the PAE bytes with the leaf certificate's key."""
    blobs = Blobs()
    signed = sigstore.sign_dsse(sigstore.issue(IDENTITY, ISSUER), slsa_attest.v1(DIGEST, REPO, REF))
    leaf = tmp_path / "leaf.pub"
    leaf.write_bytes(signed.credential.certificate.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    assert openssl_verifies(tmp_path, str(leaf), signed.pae, signed.signature)
    rule = {"glob": "registry.example/*", "identity": IDENTITY, "issuer": ISSUER, "trusted_root": sigstore.root_path,
            "provenance": {"builder_id": slsa_attest.GITHUB_BUILDER, "source_repo": REPO, "source_ref": REF}}
    record = verifier_for(rule).verify(blobs, str(IMAGE), IMAGE, DIGEST, [referrer(blobs, signed.bundle)])
    assert (record["method"], record["identity"], record["issuer"], record["status"]) == (
        "keyless", IDENTITY, ISSUER, "verified")


def test_not_required_and_absent(keys):
    blobs = Blobs()
    rule = key_rule(keys, required=False)
    assert verifier_for(rule).verify(blobs, str(IMAGE), IMAGE, DIGEST, []) == {
        "rule": "registry.example/*", "status": "absent"}
    # Carried provenance must still be right.
    wrong = slsa_attest.Envelope(slsa_attest.v1(DIGEST, REPO, REF, builder="https://evil.example/builder"),
                                 keys["builder"][0])
    with pytest.raises(ProvenanceError) as info:
        verifier_for(rule).verify(blobs, str(IMAGE), IMAGE, DIGEST, [att(blobs, [wrong])])
    assert info.value.reason == "provenance-builder"


# -- refusals --------------------------------------------------------------------------------------------------
def refused(rule, blobs, attached):
    with pytest.raises(ProvenanceError) as info:
        verifier_for(rule).verify(blobs, str(IMAGE), IMAGE, DIGEST, attached)
    assert str(IMAGE) in str(info.value) and DIGEST in str(info.value) and info.value.hint
    return info.value


def test_no_provenance(keys):
    blobs = Blobs()
    # A verified attestation of another kind (a vulnerability scan) by the same key is not provenance.
    scan = slsa_attest.Envelope(slsa_attest.statement(DIGEST, "https://cosign.sigstore.dev/attestation/vuln/v1", {}),
                                keys["builder"][0])
    signature = slsa_attest.Envelope(slsa_attest.statement(DIGEST, cosign.COSIGN_SIGN_PREDICATE, {}),
                                     keys["builder"][0])
    error = refused(key_rule(keys), blobs, [att(blobs, [scan]),
                                            referrer(blobs, slsa_attest.key_bundle(signature, keys["builder"][0]))])
    assert error.reason == "no-provenance" and "carries no SLSA provenance" in str(error)
    assert "sha256-%s.att" % DIGEST.split(":")[1] in str(error)


@pytest.mark.parametrize("case, reason, words", [
    ("other-key", "provenance-signer", "does not verify with key"),
    ("bundle-other-key", "provenance-signer", "was signed by the key with hint"),
    ("altered", "provenance-signer", "does not verify with key"),
    ("subject", "provenance-subject", "is about %s, not this image" % OTHER_DIGEST),
    ("builder", "provenance-builder", "was built by https://evil.example/builder, not by " + slsa_attest.GITHUB_BUILDER),
    ("builder-glob", "provenance-builder", "which does not match https://github.com/actions/*/self-hosted"),
    ("build-type", "provenance-builder", "has build type https://example.com/other/v1, not "),
    ("repository", "provenance-source", "names %s@%s (externalParameters.workflow)" % (
        "https://github.com/evil/fork", REF)),
    ("ref", "provenance-source", "not %s at a ref matching refs/tags/v*" % REPO),
])
def test_refusals(keys, case, reason, words):
    blobs = Blobs()
    private = keys["other"][0] if case in ("other-key", "bundle-other-key") else keys["builder"][0]
    rule = key_rule(keys, source_repo=REPO)
    digest, repository, builder, build_type = DIGEST, REPO, slsa_attest.GITHUB_BUILDER, slsa_attest.GITHUB_BUILD_TYPE
    if case == "subject":
        digest = OTHER_DIGEST
    elif case == "builder":
        builder = "https://evil.example/builder"
    elif case == "builder-glob":
        rule = key_rule(keys, builder_id=None, builder_id_glob="https://github.com/actions/*/self-hosted")
    elif case == "build-type":
        build_type = "https://example.com/other/v1"
        rule = key_rule(keys, build_type=slsa_attest.GITHUB_BUILD_TYPE)
    elif case == "repository":
        repository = "https://github.com/evil/fork"
    elif case == "ref":
        rule = key_rule(keys, source_repo=REPO, source_ref="refs/tags/v*")
    envelope = slsa_attest.Envelope(slsa_attest.v1(digest, repository, REF, builder, build_type), private)
    if case == "altered":
        # The statement changed after signing (another ref), the signature kept.
        envelope.document["payload"] = base64.b64encode(envelope.statement.replace(
            REF.encode(), b"refs/heads/release")).decode()
    carried = referrer(blobs, slsa_attest.key_bundle(envelope, private)) if case == "bundle-other-key" else \
        att(blobs, [envelope])
    error = refused(rule, blobs, [carried])
    assert error.reason == reason and words in str(error), str(error)


def test_keyless_refusals(sigstore, keys, tmp_path):
    blobs = Blobs()
    rule = {"glob": "registry.example/*", "identity": IDENTITY, "issuer": ISSUER, "trusted_root": sigstore.root_path,
            "provenance": {"builder_id": slsa_attest.GITHUB_BUILDER}}
    statement = slsa_attest.v1(DIGEST, REPO, REF)
    other = sigstore.sign_dsse(sigstore.issue("https://github.com/evil/fork/.github/workflows/x.yaml@refs/heads/main",
                                              ISSUER), statement)
    error = refused(rule, blobs, [referrer(blobs, other.bundle)])
    assert error.reason == "provenance-signer" and "was signed by https://github.com/evil/fork" in str(error)
    foreign = fake_sigstore.FakeSigstore("foreign")
    outside = foreign.sign_dsse(foreign.issue(IDENTITY, ISSUER), statement)
    error = refused(rule, blobs, [referrer(blobs, outside.bundle)])
    assert error.reason == "provenance-signer" and "does not verify against the trusted root" in str(error)
    # Keyless in the legacy .att tag: no inclusion proof to check offline.
    legacy = slsa_attest.Envelope(statement, keys["builder"][0])
    error = refused(rule, blobs, [att(blobs, [legacy], {cosign.ANNOTATION_CERTIFICATE: "-----BEGIN CERTIFICATE-----"})])
    assert error.reason == "provenance-signer" and "legacy tag format" in str(error)
    # A key-signed provenance for a keyless rule.
    error = refused(rule, blobs, [referrer(blobs, slsa_attest.key_bundle(legacy, keys["builder"][0]))])
    assert error.reason == "provenance-signer" and "the rule wants identity %s" % IDENTITY in str(error)


def test_the_verdict_names_the_furthest_step(keys):
    """A forged provenance with the right content (wrong key) beside a genuine one of another build: the genuine one
    decides the reason, and both are named."""
    blobs = Blobs()
    forged = slsa_attest.Envelope(slsa_attest.v1(DIGEST, REPO, REF), keys["other"][0])
    genuine = slsa_attest.Envelope(slsa_attest.v1(DIGEST, "https://github.com/evil/fork", REF), keys["builder"][0])
    error = refused(key_rule(keys, source_repo=REPO), blobs, [att(blobs, [forged, genuine])])
    assert error.reason == "provenance-source"
    assert "layer 1 does not verify with key" in str(error) and "(provenance-signer)" in str(error)


def test_custody_record_carries_the_provenance(keys):
    from ansible_collections.petra.core.plugins.module_utils.trust import custody
    blobs = Blobs()
    envelope = slsa_attest.Envelope(slsa_attest.v1(DIGEST, REPO, REF), keys["builder"][0])
    record = verifier_for(key_rule(keys)).verify(blobs, str(IMAGE), IMAGE, DIGEST, [att(blobs, [envelope])])
    verification = {"sha256": "ab" * 32, "size": 1, "key_id": "sha256:" + "cd" * 32, "signers": [], "threshold": 1}
    metadata = {"name": "b", "version": "1", "images": [{"ref": str(IMAGE), "digest": DIGEST, "provenance": record},
                                                        {"ref": "x", "digest": DIGEST}]}
    with_provenance, without = custody.custody_record(metadata, verification)["images"]
    assert with_provenance["provenance"] == record and without["provenance"] is None
