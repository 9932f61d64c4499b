"""Keyless admission on the high side: petra_platform renders the bundle's Sigstore trusted root as a policy-controller
TrustRoot and a ClusterImagePolicy per keyless identity; both validate against the policy-controller CRDs, and the
rendered policies, evaluated (tests/support/admission.py, with the sigstore library over the TrustRoot converted
back), admit an image only with its original keyless signature and the bundle key's countersignature."""

import base64
import hashlib
import json
import re

import pytest
from ansible_collections.petra.core.plugins.module_utils.custody.countersign import countersign
from ansible_collections.petra.core.plugins.module_utils.platform import keyless
from ansible_collections.petra.core.plugins.module_utils.platform.errors import PlatformError
from ansible_collections.petra.core.plugins.module_utils.adapters.platform import run as run_platform
from ansible_collections.petra.core.plugins.module_utils.signing.keys import load_signer
from ansible_collections.petra.core.tests.support import admission, cosign_signer, fake_sigstore
from ansible_collections.petra.core.tests.unit.test_platform_render import (
    REGISTRY, assert_valid, by_kind, crd_schemas, documents_of, params_for)

assert crd_schemas  # the module-scoped fixture, imported for use here
IDENTITY = "https://github.com/chainguard-images/images/.github/workflows/release.yaml@refs/heads/main"
ISSUER = "https://token.actions.githubusercontent.com"
SOURCE = "cgr.dev/chainguard/nginx"
DIGEST = "sha256:" + "ab" * 32
HIGH = "%s/cgr.dev/chainguard/nginx@%s" % (REGISTRY, DIGEST)
KEYLESS = [{"name": "chainguard", "glob": "cgr.dev/chainguard/*", "identity": IDENTITY, "issuer": ISSUER}]


@pytest.fixture(scope="module")
def instance():
    return fake_sigstore.FakeSigstore("chainguard-test")


@pytest.fixture
def root(instance, tmp_path):
    return instance.trusted_root(tmp_path / "trusted_root.json")


def digest_of(path):
    with open(path, "rb") as handle:
        return "sha256:" + hashlib.sha256(handle.read()).hexdigest()


def render(tmp_path, pub, root, keyless=None, **options):
    dest = tmp_path / "out"
    options.setdefault("trusted_root_digest", digest_of(root))
    result = run_platform(params_for(dest, pub, trusted_root=root, keyless=keyless or KEYLESS, **options), False)
    return result, documents_of(dest)[1]


def keyless_signature(instance, identity=IDENTITY, issuer=ISSUER, digest=DIGEST, predicate=None):
    statement = cosign_signer.statement_for(SOURCE, digest)
    if predicate:
        statement = json.dumps(dict(json.loads(statement), predicateType=predicate)).encode()
    return instance.sign_dsse(instance.issue(identity, issuer), statement).bundle


def countersignature(key, digest=DIGEST):
    signed = countersign(load_signer(key), SOURCE, digest)
    return signed.payload, base64.b64decode(signed.record["signature"])


def test_trust_root_and_policies_render_validate_and_convert_back(tmp_path, ec_key, root, crd_schemas):
    _key, pub = ec_key
    result, _objects = render(tmp_path, pub, root)
    with open(root, "rb") as handle:
        original = json.load(handle)
    objects = assert_valid(tmp_path / "out", crd_schemas)
    (trust_root,) = by_kind(objects, "TrustRoot")
    assert trust_root["apiVersion"] == "policy.sigstore.dev/v1alpha1" and trust_root["metadata"]["name"] == "petra-sigstore"
    assert result["trusted_root_digest"] == trust_root["metadata"]["annotations"]["petra.dev/trusted-root-digest"]
    assert set(trust_root["spec"]) == {"sigstoreKeys"}  # inline keys only: no TUF remote or repository to fetch
    # Converted back, the TrustRoot holds exactly the trusted root's CA chains and log keys.
    back = admission.trusted_root_json(trust_root)
    for section in ("certificateAuthorities", "tlogs", "ctlogs"):
        assert len(back[section]) == len(original[section])
    assert back["certificateAuthorities"][0]["certChain"] == original["certificateAuthorities"][0]["certChain"]
    assert back["certificateAuthorities"][0]["uri"] == original["certificateAuthorities"][0]["uri"]
    for section in ("tlogs", "ctlogs"):
        assert [(log["publicKey"]["rawBytes"], log["logId"], log["hashAlgorithm"], log["baseUrl"])
                for log in back[section]] == [(log["publicKey"]["rawBytes"], log["logId"], log["hashAlgorithm"],
                                               log["baseUrl"]) for log in original[section]]
    key_policy, keyless_policy = sorted(by_kind(objects, "ClusterImagePolicy"), key=lambda obj: obj["metadata"]["name"])
    assert key_policy["metadata"]["name"] == "petra-bundle-signed"
    assert keyless_policy["metadata"]["name"] == "petra-keyless-chainguard"
    assert keyless_policy["spec"]["images"] == [{"glob": REGISTRY + "/cgr.dev/chainguard/**"}]
    (authority,) = keyless_policy["spec"]["authorities"]
    assert authority["keyless"]["identities"] == [{"issuer": ISSUER, "subject": IDENTITY}]
    assert authority["keyless"]["trustRootRef"] == authority["ctlog"]["trustRootRef"] == "petra-sigstore"
    assert authority["signatureFormat"] == "bundle"
    # Without keyless options nothing of it is rendered (the reference bundle spec stays the defaults').
    plain = run_platform(params_for(tmp_path / "plain", pub), False)
    assert not [item for item in plain["files"] if "trust-root" in item["path"] or "keyless" in item["path"]]
    assert plain["trusted_root_digest"] is None


def test_rendered_policies_require_both_signatures(tmp_path, ec_key, root, instance):
    key, pub = ec_key
    _result, objects = render(tmp_path, pub, root)
    signature, counter = keyless_signature(instance), countersignature(key)
    admitted, verdicts = admission.evaluate(objects, HIGH, DIGEST, admission.Carried([signature], [counter]))
    assert admitted and verdicts == {"petra-bundle-signed": "key", "petra-keyless-chainguard": "keyless"}
    # Either signature alone is not enough.
    admitted, verdicts = admission.evaluate(objects, HIGH, DIGEST, admission.Carried([], [counter]))
    assert not admitted and verdicts["petra-keyless-chainguard"].startswith("refused")
    admitted, verdicts = admission.evaluate(objects, HIGH, DIGEST, admission.Carried([signature], []))
    assert not admitted and verdicts["petra-bundle-signed"].startswith("refused")
    # An image outside the keyless glob needs only the countersignature.
    other = "%s/registry.example-5000/team/app@%s" % (REGISTRY, DIGEST)
    assert admission.evaluate(objects, other, DIGEST, admission.Carried([], [counter])) == (
        True, {"petra-bundle-signed": "key"})


@pytest.mark.parametrize("case, words", [
    ("identity", "subject"),
    ("issuer", "issuer"),
    ("ca", "certificate"),
    ("digest", "a statement about"),
    ("predicate", "a statement about"),
])
def test_other_signers_and_statements_are_refused(tmp_path, ec_key, root, instance, case, words):
    key, pub = ec_key
    _result, objects = render(tmp_path, pub, root)
    if case == "identity":
        signature = keyless_signature(instance, identity="https://github.com/someone/else/.github/workflows/x.yaml@refs/heads/main")
    elif case == "issuer":
        signature = keyless_signature(instance, issuer="https://accounts.google.com")
    elif case == "ca":
        # The same identity, certified by another Sigstore instance: its CA is not in the TrustRoot.
        signature = keyless_signature(fake_sigstore.FakeSigstore("elsewhere"))
    elif case == "digest":
        signature = keyless_signature(instance, digest="sha256:" + "cd" * 32)
    else:
        signature = keyless_signature(instance, predicate="https://slsa.dev/provenance/v1")
    admitted, verdicts = admission.evaluate(objects, HIGH, DIGEST,
                                            admission.Carried([signature], [countersignature(key)]))
    assert not admitted and verdicts["petra-bundle-signed"] == "key"
    assert verdicts["petra-keyless-chainguard"].startswith("refused") and words in verdicts["petra-keyless-chainguard"]


def test_regular_expressions_and_the_digest_check(tmp_path, ec_key, root, instance):
    key, pub = ec_key
    keyless = [{"glob": "cgr.dev/chainguard/*", "identity_regexp": r"^https://github\.com/chainguard-images/.*$",
                "issuer_regexp": r"^https://token\.actions\.githubusercontent\.com$"}]
    with open(root, "rb") as handle:
        digest = "sha256:" + hashlib.sha256(handle.read()).hexdigest()
    _result, objects = render(tmp_path, pub, root, keyless=keyless, trusted_root_digest=digest)
    (policy,) = [obj for obj in by_kind(objects, "ClusterImagePolicy") if obj["metadata"]["name"] == "petra-keyless-0"]
    assert policy["spec"]["authorities"][0]["keyless"]["identities"] == [{
        "issuerRegExp": keyless[0]["issuer_regexp"], "subjectRegExp": keyless[0]["identity_regexp"]}]
    assert admission.evaluate(objects, HIGH, DIGEST, admission.Carried(
        [keyless_signature(instance)], [countersignature(key)]))[0] is True
    assert admission.evaluate(objects, HIGH, DIGEST, admission.Carried(
        [keyless_signature(instance, identity="https://github.com/other/images/x.yaml@refs/heads/main")],
        [countersignature(key)]))[0] is False
    with pytest.raises(PlatformError, match="not sha256:" + "00" * 32):
        render(tmp_path, pub, root, trusted_root_digest="sha256:" + "00" * 32)


@pytest.mark.parametrize("options, fragment", [
    ({"trusted_root": None}, "keyless and trusted_root go together"),
    ({"keyless": []}, "keyless and trusted_root go together"),
    ({"keyless": [{"glob": "cgr.dev/chainguard/*", "identity": IDENTITY}]}, "needs identity"),
    ({"keyless": [{"glob": "chainguard/*", "identity": IDENTITY, "issuer": ISSUER}]}, "registry host"),
    ({"keyless": [{"glob": "*.dev/chainguard/*", "identity": IDENTITY, "issuer": ISSUER}]}, "registry host"),
    ({"keyless": [dict(KEYLESS[0]), dict(KEYLESS[0])]}, "names must differ"),
    ({"keyless": [dict(KEYLESS[0], identity_regexp="(")]}, "identity_regexp"),
    ({"keyless": [dict(KEYLESS[0], identity_regexp=r"^https://github\.com/(?!evil/).*$")]},
     "uses a negative lookahead"),
    ({"keyless": [dict(KEYLESS[0], issuer_regexp=r"^(https)://\1\.example$")]}, "uses a backreference"),
])
def test_refuses_bad_keyless_options(tmp_path, ec_key, root, options, fragment):
    params = dict({"trusted_root": root, "trusted_root_digest": digest_of(root), "keyless": KEYLESS}, **options)
    with pytest.raises(PlatformError, match=fragment.replace("(", r"\(")):
        run_platform(params_for(tmp_path / "out", ec_key[1], **params), False)


def test_refuses_what_is_not_a_trusted_root(tmp_path, ec_key, root):
    bad = tmp_path / "bad.json"
    with open(root, "r", encoding="utf-8") as handle:
        good = json.load(handle)
    for document, fragment in (({"mediaType": "x"}, "media type"), (dict(good, ctlogs=[]), "no ctlogs"),
                               (dict(good, certificateAuthorities=[]), "no certificate authority")):
        bad.write_text(json.dumps(document))
        with pytest.raises(PlatformError, match=fragment) as info:
            run_platform(params_for(tmp_path / "out", ec_key[1], trusted_root=str(bad), keyless=KEYLESS,
                                    trusted_root_digest=digest_of(bad)), False)
        assert info.value.reason == "trusted-root"


@pytest.mark.parametrize("pattern, refused", [
    (r"^https://github\.com/chainguard-images/.*$", None),
    (r"(?i)^https://(a|b)\.example/[^/]+/x*?y+?$", None),
    (r"^a\\1$", None),  # an escaped backslash, then a digit
    (r"^[(?=][\]?!]x$", None),  # inside a class these are characters
    (r"^[]\\1(?=]$", None),
    (r"^x(?=y)", "a lookahead (?="),
    (r"^x(?!y)", "a negative lookahead (?!"),
    (r"(?<=y)x", "a lookbehind (?<="),
    (r"(?<!y)x", "a negative lookbehind (?<!"),
    (r"(?P<a>x)(?P=a)", "a named backreference (?P="),
    (r"(x)\1", "a backreference \\1"),
    (r"(a)(b)(c)(d)(e)(f)(g)(h)(i)[a-z]\9", "a backreference \\9"),
    (r"(?>x+)y", "an atomic group (?>"),
    (r"(x)?(?(1)y|z)", "a conditional group (?("),
    (r"x*+y", "a possessive quantifier *+"),
    (r"\d++", "a possessive quantifier ++"),
])
def test_regexps_policy_controller_cannot_compile_are_named(pattern, refused):
    """Python's re accepts them all; Go's RE2, which policy-controller compiles them with, refuses the flagged."""
    re.compile(pattern)
    assert keyless.not_re2(pattern) == refused


def test_a_trusted_root_without_its_digest_is_refused(tmp_path, ec_key, root):
    """Any file would otherwise become the cluster's TrustRoot: only one whose digest a verification vouched for."""
    with pytest.raises(PlatformError, match="trusted_root_digest is required with trusted_root") as info:
        run_platform(params_for(tmp_path / "out", ec_key[1], trusted_root=str(root), keyless=KEYLESS), False)
    assert info.value.reason == "trusted-root" and not (tmp_path / "out").exists()
