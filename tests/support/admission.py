"""A small evaluator of rendered policy-controller objects, for tests: which ClusterImagePolicies match an image, and
whether each of their authorities accepts the signatures that image carries. An image is admitted when every
matching policy has one authority that accepts it (policy-controller's rule: authorities of one policy are
alternatives, policies are all required).

Written from policy-controller's documented semantics, not from its code:
- globs: ``**`` matches anything, ``*`` anything but ``/``;
- ``key`` authorities: a cosign simple-signing payload naming the image digest, ECDSA-signed with the inline key;
- ``keyless`` authorities with ``trustRootRef``: the TrustRoot's ``sigstoreKeys`` converted back into a Sigstore
  ``trusted_root.json`` (base64 PEM chains and log keys to DER, log ids as SHA-256 of the key, hash names to the
  enum; validity from the epoch, as policy-controller converts them) and a Sigstore bundle verified against it with
  the ``sigstore`` library offline, identity and issuer checked exactly or by regular expression.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tempfile

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sigstore.errors import VerificationError as SigstoreVerificationError
from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier
from sigstore.verify.policy import VerificationError

COSIGN_SIGN = "https://sigstore.dev/cosign/sign/v1"
_HASHES = {"sha-256": "SHA2_256", "sha256": "SHA2_256", "sha-384": "SHA2_384", "sha384": "SHA2_384"}
_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")


def glob_matches(pattern, text):
    expression = "".join(".*" if part == "**" else "[^/]*" if part == "*" else re.escape(part)
                         for part in re.split(r"(\*\*|\*)", pattern))
    return re.fullmatch(expression, text) is not None


def _pem_blocks(data, kind):
    text = data.decode("ascii")
    return [base64.b64decode("".join(block.split()))
            for block in re.findall(r"-----BEGIN %s-----(.*?)-----END %s-----" % (kind, kind), text, re.S)]


def trusted_root_json(trust_root):
    """The Sigstore trusted_root.json a TrustRoot's ``sigstoreKeys`` stands for."""
    keys = trust_root["spec"]["sigstoreKeys"]

    def authority(item):
        chain = _pem_blocks(base64.b64decode(item["certChain"]), "CERTIFICATE")
        return {"subject": item["subject"], "uri": item["uri"],
                "certChain": {"certificates": [{"rawBytes": base64.b64encode(der).decode()} for der in chain]},
                "validFor": {"start": "1970-01-01T00:00:00Z"}}

    def log(item):
        (der,) = _pem_blocks(base64.b64decode(item["publicKey"]), "PUBLIC KEY")
        key = serialization.load_der_public_key(der)
        details = "PKIX_ECDSA_P256_SHA_256" if key.curve.name == "secp256r1" else "PKIX_ECDSA_P384_SHA_384"
        return {"baseUrl": item["baseURL"], "hashAlgorithm": _HASHES[item["hashAlgorithm"]],
                "publicKey": {"rawBytes": base64.b64encode(der).decode(), "keyDetails": details,
                              "validFor": {"start": "1970-01-01T00:00:00Z"}},
                "logId": {"keyId": base64.b64encode(hashlib.sha256(der).digest()).decode()}}

    return {"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "certificateAuthorities": [authority(item) for item in keys["certificateAuthorities"]],
            "tlogs": [log(item) for item in keys.get("tLogs") or []],
            "ctlogs": [log(item) for item in keys.get("ctLogs") or []],
            "timestampAuthorities": [authority(item) for item in keys.get("timestampAuthorities") or []]}


class _IdentityPolicy:
    """A sigstore-python verification policy for one policy-controller identity (exact or regular expression)."""

    def __init__(self, identity):
        self.identity = identity

    def verify(self, cert):
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        subjects = names.get_values_for_type(x509.UniformResourceIdentifier) + names.get_values_for_type(
            x509.RFC822Name)
        issuer = cert.extensions.get_extension_for_oid(_ISSUER_V1).value.value.decode()
        wanted = self.identity
        if not any(_matches(wanted, "subject", subject) for subject in subjects):
            raise VerificationError("subject %s is not %s" % (subjects, wanted))
        if not _matches(wanted, "issuer", issuer):
            raise VerificationError("issuer %s is not %s" % (issuer, wanted))


def _matches(wanted, field, value):
    if field in wanted:
        return wanted[field] == value
    return re.fullmatch(wanted[field + "RegExp"], value) is not None


class Carried:
    """What an image carries: Sigstore bundles (JSON bytes) and legacy simple-signing signatures (payload, DER)."""

    def __init__(self, bundles=(), simple=()):
        self.bundles = list(bundles)
        self.simple = list(simple)


def _key_accepts(authority, digest, carried):
    key = serialization.load_pem_public_key(authority["key"]["data"].encode())
    algorithm = hashes.SHA384() if authority["key"].get("hashAlgorithm") == "sha384" else hashes.SHA256()
    for payload, der in carried.simple:
        if json.loads(payload)["critical"]["image"]["docker-manifest-digest"] != digest:
            continue
        try:
            key.verify(der, payload, ec.ECDSA(algorithm))
            return True, "key"
        except InvalidSignature:
            continue
    return False, "no signature by the key"


def _keyless_accepts(authority, trust_roots, digest, carried):
    keyless = authority["keyless"]
    assert authority.get("signatureFormat") == "bundle" and authority["ctlog"]["trustRootRef"] == keyless["trustRootRef"]
    handle, path = tempfile.mkstemp(suffix=".json")
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(trusted_root_json(trust_roots[keyless["trustRootRef"]]), out)
        verifier = Verifier(trusted_root=TrustedRoot.from_file(path))
    finally:
        os.unlink(path)
    reasons = []
    for raw in carried.bundles:
        for identity in keyless["identities"]:
            try:
                payload_type, payload = verifier.verify_dsse(Bundle.from_json(raw), _IdentityPolicy(identity))
            except (SigstoreVerificationError, VerificationError, ValueError) as exc:
                reasons.append(str(exc))
                continue
            statement = json.loads(payload)
            subjects = {"sha256:" + item["digest"]["sha256"] for item in statement["subject"]}
            if payload_type == "application/vnd.in-toto+json" and digest in subjects and \
                    statement["predicateType"] == COSIGN_SIGN:
                return True, "keyless"
            reasons.append("a statement about %s (%s)" % (sorted(subjects), statement["predicateType"]))
    return False, "; ".join(reasons) or "no Sigstore bundle"


def evaluate(objects, image, digest, carried):
    """(admitted, {policy name: reason}) for ``image`` (the reference a pod names) with ``digest``."""
    trust_roots = {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == "TrustRoot"}
    verdicts = {}
    for policy in (obj for obj in objects if obj["kind"] == "ClusterImagePolicy"):
        if not any(glob_matches(item["glob"], image) for item in policy["spec"]["images"]):
            continue
        outcomes = []
        for authority in policy["spec"]["authorities"]:
            if "key" in authority:
                outcomes.append(_key_accepts(authority, digest, carried))
            else:
                outcomes.append(_keyless_accepts(authority, trust_roots, digest, carried))
        accepted = [reason for ok, reason in outcomes if ok]
        verdicts[policy["metadata"]["name"]] = accepted[0] if accepted else "refused: " + "; ".join(
            reason for _ok, reason in outcomes)
    admitted = bool(verdicts) and not any(reason.startswith("refused") for reason in verdicts.values())
    return admitted, verdicts
