"""The offline Sigstore instance in tests/support/fake_sigstore.py against the sigstore library itself, through the
verifier the product builds (``keyless_verifier``): its bundles pass every check the library makes, and each of
those checks is live, i.e. breaking the one thing it covers gets the bundle refused for that reason. The product's
verdicts on these bundles, from a registry, are in tests/integration/test_custody.py."""

import datetime
import json

import pytest
from sigstore.errors import VerificationError
from sigstore.models import Bundle
from sigstore.verify.policy import Identity

from ansible_collections.petra.core.plugins.module_utils.custody import image_signatures as cosign
from ansible_collections.petra.core.plugins.module_utils.custody.keyless import certificate_identity, keyless_verifier
from ansible_collections.petra.core.tests.support import cosign_signer, fake_sigstore

IDENTITY = "https://github.com/petra-test/images/.github/workflows/release.yaml@refs/heads/main"
ISSUER = "https://token.actions.githubusercontent.com"
DIGEST = "sha256:" + "ab" * 32
STATEMENT = cosign_signer.statement_for("registry.example/team/app", DIGEST)


@pytest.fixture(scope="module")
def instance():
    return fake_sigstore.FakeSigstore()


@pytest.fixture(scope="module")
def signed(instance):
    return instance.sign_dsse(instance.issue(IDENTITY, ISSUER), STATEMENT)


def verify(root, document, identity=IDENTITY, issuer=ISSUER):
    return keyless_verifier(root).verify_dsse(Bundle.from_json(json.dumps(document)),
                                              Identity(identity=identity, issuer=issuer))


def test_bundles_of_the_instance_verify(instance, signed, tmp_path):
    root = instance.trusted_root(tmp_path / "trusted_root.json")
    assert verify(root, signed.document) == (cosign.IN_TOTO_PAYLOAD, STATEMENT)
    assert cosign.statement_digests(STATEMENT) == ({DIGEST}, cosign.COSIGN_SIGN_PREDICATE)
    # Email identities (the other SAN Fulcio issues) verify too, and the product reads identity and issuer alike.
    mail = instance.sign_dsse(instance.issue("release@petra.test", "https://accounts.google.com"), STATEMENT)
    assert verify(root, mail.document, "release@petra.test", "https://accounts.google.com")[1] == STATEMENT
    assert certificate_identity(mail.credential.certificate) == ({"release@petra.test"}, "https://accounts.google.com")


def spliced(instance, signed, other_certificate):
    """The bundle with the envelope of another signature over another statement: by the same certificate (the log
    entry no longer matches), or by another certificate (the signature no longer matches the bundle's)."""
    credential = instance.issue(IDENTITY, ISSUER) if other_certificate else signed.credential
    statement = cosign_signer.statement_for("registry.example/team/app", "sha256:" + "cd" * 32)
    other = instance.sign_dsse(credential, statement)
    document = json.loads(json.dumps(signed.document))
    document["dsseEnvelope"] = other.document["dsseEnvelope"]
    return document


@pytest.mark.parametrize("case, words", [
    ("identity", "Certificate's SANs do not match"),
    ("issuer", "Certificate's OIDCIssuer does not match"),
    ("ca", "failed to build timestamp certificate chain"),
    ("ctlog", "failed to verify SCT on signing certificate"),
    ("tlog", "invalid log entry: checkpoint: invalid signature"),
    ("inclusion-proof", "invalid log entry: inclusion proof contains invalid root hash"),
    ("checkpoint", "invalid log entry: checkpoint: invalid signature"),
    ("stale-checkpoint", "Inclusion proof contains invalid root hash signature"),
    ("promise", "invalid log entry: SET: invalid inclusion promise"),
    ("integrated-time", "invalid log entry: SET: invalid inclusion promise"),
    ("expired", "cert is not valid at validation time"),
    ("signature", "DSSE: invalid signature"),
    ("log-entry", "log entry payload hash does not match bundle"),
])
def test_every_check_is_live(instance, signed, tmp_path, case, words):
    other = fake_sigstore.FakeSigstore("other")
    root = instance.trusted_root(tmp_path / "trusted_root.json", **(
        {case: other} if case in ("ca", "ctlog", "tlog") else {}))
    document, identity, issuer = signed.document, IDENTITY, ISSUER
    if case == "identity":
        identity = "https://github.com/someone/else/.github/workflows/x.yaml@refs/heads/main"
    elif case == "issuer":
        issuer = "https://accounts.google.com"
    elif case == "expired":
        late = instance.issue(IDENTITY, ISSUER, at=instance.now - datetime.timedelta(hours=1))
        integrated = instance.now - datetime.timedelta(minutes=30)
        document = instance.sign_dsse(late, STATEMENT, integrated=integrated).document
    elif case in ("signature", "log-entry"):
        document = spliced(instance, signed, other_certificate=case == "signature")
    elif case == "stale-checkpoint":
        # A genuine checkpoint of the log, signed by its key, from before the entry: it commits to another root.
        document = json.loads(json.dumps(document))
        proof = document["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
        leaves = instance.rekor.leaves[:int(proof["logIndex"])]
        proof["checkpoint"]["envelope"] = instance.rekor.checkpoint(len(leaves), fake_sigstore.tree_hash(leaves))
    elif case not in ("ca", "ctlog", "tlog"):
        document = fake_sigstore.tamper(document, case)
    with pytest.raises(VerificationError) as info:
        verify(root, document, identity, issuer)
    assert words in str(info.value)
