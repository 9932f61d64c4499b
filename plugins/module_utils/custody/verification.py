# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Source signature verification: the ``verify_images`` policy, applied to every image before it is carried.

Each rule matches images by glob and requires a cosign public key (a file, PEM text or ``awskms://``), a
keyless identity (certificate identity and OIDC issuer, checked offline against a supplied Sigstore trusted
root with the ``sigstore`` library), or explicitly nothing (``method: none``). The first matching rule
applies; an image that matches no rule is refused, so an unverified image is always an explicit decision.
"""

from __future__ import annotations

import base64
import datetime
import fnmatch
import hashlib

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - reported at run time
    HAS_CRYPTOGRAPHY = False

from ansible_collections.petra.core.plugins.module_utils.custody import image_signatures as cosign
from ansible_collections.petra.core.plugins.module_utils.custody import signed_reference
from ansible_collections.petra.core.plugins.module_utils.custody.errors import CustodyError, SourceSignatureError
from ansible_collections.petra.core.plugins.module_utils.custody.keyless import (
    KeylessRefusal, load_trusted_root, verified_keyless_dsse)
from ansible_collections.petra.core.plugins.module_utils.oci.errors import OCIError
from ansible_collections.petra.core.plugins.module_utils.signing import keys as signing_keys

METHODS = ("key", "keyless", "none")
# When several signatures fail, the verdict names the most telling problem first.
_PRECEDENCE = ("wrong-image", "wrong-predicate", "signature-reference", "wrong-identity", "bad-signature", "wrong-key",
               "keyless-legacy", "malformed-signature")


def utc_now_text():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Rule:
    """One ``verify_images`` entry, validated."""

    def __init__(self, item, index):
        self.index = index
        self.glob = item.get("glob")
        self.key = item.get("key")
        self.identity = item.get("identity")
        self.issuer = item.get("issuer")
        self.trusted_root = item.get("trusted_root")
        self.docker_reference = item.get("docker_reference") or signed_reference.DEFAULT_MODE
        self.docker_reference_globs = list(item.get("docker_reference_globs") or [])
        # Checked by custody.provenance, which reads the rule's signer from here.
        self.provenance = item.get("provenance")
        method = item.get("method") or ("key" if self.key else "keyless" if self.identity else None)
        where = "verify_images[%d]" % index
        if not self.glob:
            raise CustodyError("%s has no glob" % where, hint="Give the image names it covers, e.g. cgr.dev/chainguard/*",
                               reason="policy")
        if self.key and (self.identity or self.issuer):
            raise CustodyError("%s (%s) gives both a key and a keyless identity/issuer: a rule is either key-based "
                               "or keyless, never both" % (where, self.glob),
                               hint="Keep key for images signed with a cosign key, or identity, issuer and "
                                    "trusted_root for keyless signatures; write two rules for two signers",
                               reason="policy")
        if method not in METHODS:
            raise CustodyError("%s (%s) names no method: give key, identity with issuer and trusted_root, or "
                               "method: none" % (where, self.glob), reason="policy")
        self.method = method
        if method == "key" and not self.key:
            raise CustodyError("%s (%s) has method key but no key" % (where, self.glob),
                               hint="Give a cosign .pub file, PEM text or awskms:// reference", reason="policy")
        if method == "keyless" and not (self.identity and self.issuer and self.trusted_root):
            raise CustodyError("%s (%s) has method keyless: it needs identity, issuer and trusted_root" % (
                where, self.glob), hint="trusted_root is a Sigstore trusted_root.json kept on the controller "
                                        "(verification is offline)", reason="policy")
        if method == "none" and (self.key or self.identity):
            raise CustodyError("%s (%s) has method none but also a key or identity" % (where, self.glob),
                               reason="policy")
        if method != "keyless" and (self.issuer or self.trusted_root):
            raise CustodyError("%s (%s): issuer and trusted_root belong to keyless rules" % (where, self.glob),
                               reason="policy")
        if self.docker_reference not in signed_reference.MODES:
            raise CustodyError("%s (%s): docker_reference %r is not one of %s" % (
                where, self.glob, self.docker_reference, ", ".join(signed_reference.MODES)), reason="policy")
        if self.docker_reference == "ignore" and self.docker_reference_globs:
            raise CustodyError("%s (%s) has docker_reference: ignore and docker_reference_globs: ignore accepts any "
                               "signed reference, so the globs would never be consulted" % (where, self.glob),
                               hint="Keep the globs with docker_reference: repository (or path), or drop them",
                               reason="policy")

    def matches(self, ref_text, ref):
        return any(fnmatch.fnmatchcase(candidate, self.glob) for candidate in (ref_text, ref.name, str(ref)))


def spki_digest(public_key):
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).digest()


def verify_blob_signature(public_key, data, der):
    """True when ``der`` is an ECDSA signature over ``data`` by the key, with SHA-256 or the key's own hash
    (cosign signs with SHA-256 by default whatever the curve; newer releases use SHA-384 for P-384)."""
    names = ["sha256"] + [signing_keys.hash_name_for(public_key)]
    for name in sorted(set(names)):
        algorithm = hashes.SHA256() if name == "sha256" else hashes.SHA384()
        try:
            public_key.verify(der, data, ec.ECDSA(algorithm))
            return True
        except (InvalidSignature, ValueError):
            continue
    return False


_HINTS = {
    None: "Check that the rule names the key or identity that signs this image at its source; a signature for "
          "another image or by another key is never accepted",
    "signature-reference": "The signer vouched for these bytes under another repository name. If this image is a "
                           "mirror copy of that repository, give the rule docker_reference: path (same path, other "
                           "registry) or list the signed repository in docker_reference_globs; otherwise take the "
                           "image from the repository it was signed for",
}


class Findings:
    """Why signatures (or attestations) did not verify, kept to explain the verdict: the first reason of
    ``precedence`` found names it."""

    def __init__(self, precedence=_PRECEDENCE, fallback="malformed-signature"):
        self.items = []
        self.precedence = precedence
        self.fallback = fallback

    def add(self, reason, text):
        self.items.append((reason, text))

    def reason(self):
        reasons = [reason for reason, _text in self.items]
        return next((reason for reason in self.precedence if reason in reasons), self.fallback)

    def text(self):
        return "; ".join("%s (%s)" % (text, reason) for reason, text in self.items)


class SourceVerifier:
    """Applies the rules to images; ``aws_connection`` is a callable giving an AWSConnection for awskms:// keys."""

    def __init__(self, items, aws_connection=None, clock=utc_now_text):
        self.rules = [Rule(item, index) for index, item in enumerate(items or [])]
        self._aws_connection = aws_connection
        self._clock = clock
        self._keys = {}
        self._roots = {}

    # -- keys --------------------------------------------------------------------------------------
    def public_key(self, rule):
        if rule.key not in self._keys:
            try:
                if rule.key.startswith(signing_keys.KMS_SCHEME):
                    if self._aws_connection is None:
                        raise CustodyError("verify_images key %s needs AWS connection settings" % rule.key,
                                           reason="policy")
                    key = signing_keys.load_signer(rule.key, None, self._aws_connection()).public_key()
                else:
                    key = signing_keys.load_public_key(rule.key)
            except signing_keys.SigningError as exc:
                raise CustodyError("verify_images[%d] (%s): %s" % (rule.index, rule.glob, exc.message), hint=exc.hint,
                                   reason="policy")
            self._keys[rule.key] = key
        return self._keys[rule.key]

    def rule_for(self, ref_text, ref):
        return next((rule for rule in self.rules if rule.matches(ref_text, ref)), None)

    # -- the verdict -------------------------------------------------------------------------------
    def verify(self, client, ref_text, ref, digest, attached):
        """The ``sourceVerification`` record for an image, or SourceSignatureError naming the image and why."""
        rule = self.rule_for(ref_text, ref)
        subject = "%s (%s)" % (ref_text, digest)
        if rule is None:
            raise SourceSignatureError(
                "image %s matches no verify_images rule" % subject, reason="no-rule", image=ref_text, digest=digest,
                hint="Add a rule whose glob covers it; 'method: none' carries it unverified, on purpose")
        record = {"rule": rule.glob, "method": rule.method}
        if rule.method == "none":
            record["verifiedAt"] = self._clock()
            return record
        legacy = [item for item in attached if item.kind == "signature"]
        bundles = [item for item in attached if item.kind == "referrer" and item.is_sigstore_bundle()]
        if not legacy and not bundles:
            raise SourceSignatureError(
                "image %s is unsigned: it has no %s tag and no Sigstore bundle referrer, and verify_images rule %r "
                "requires a signature (%s)" % (subject, cosign.tag_for(digest, cosign.SIGNATURE_SUFFIX), rule.glob,
                                               self._wanted(rule)),
                hint="Sign the image at its source (cosign sign), or pick another image", reason="unsigned",
                image=ref_text, digest=digest)
        findings = Findings()
        for item in legacy:
            verified = self._check_legacy(client, ref, digest, rule, item, findings)
            if verified:
                return dict(record, format="legacy-tag", verifiedAt=self._clock(), **verified)
        for item in bundles:
            verified = self._check_referrer(client, ref, digest, rule, item, findings)
            if verified:
                return dict(record, format="referrer", verifiedAt=self._clock(), **verified)
        reason = findings.reason()
        raise SourceSignatureError(
            "image %s: no signature satisfies verify_images rule %r (%s): %s" % (
                subject, rule.glob, self._wanted(rule), findings.text()),
            hint=_HINTS.get(reason, _HINTS[None]), reason=reason, image=ref_text, digest=digest)

    def _wanted(self, rule):
        if rule.method == "key":
            return "key %s" % signing_keys.key_id(self.public_key(rule))
        return "identity %s from issuer %s" % (rule.identity, rule.issuer)

    @staticmethod
    def _blob(client, ref, descriptor):
        return client.read_blob(ref.repository, descriptor["digest"], descriptor["size"], cosign.MAX_SIGNATURE_BLOB)

    def _check_legacy(self, client, ref, digest, rule, item, findings):
        for position, layer in enumerate(item.layers, 1):
            where = "%s layer %d" % (item.tag, position)
            annotations = layer.get("annotations") or {}
            if rule.method == "keyless":
                if cosign.ANNOTATION_CERTIFICATE in annotations:
                    findings.add("keyless-legacy", "%s is a keyless signature in the legacy tag format, which carries "
                                 "no transparency-log inclusion proof to check offline; ask for cosign v3 (Sigstore "
                                 "bundle) signatures" % where)
                else:
                    findings.add("wrong-key", "%s is a key-based signature, the rule wants an identity" % where)
                continue
            try:
                payload = self._blob(client, ref, layer)
                signed, reference = cosign.signed_claims(payload)
                der = cosign.decode_b64(annotations.get(cosign.ANNOTATION_SIGNATURE, ""), "the signature annotation")
            except (OCIError, ValueError) as exc:
                findings.add("malformed-signature", "%s: %s" % (where, getattr(exc, "message", exc)))
                continue
            if signed != digest:
                findings.add("wrong-image", "%s signs %s, another image" % (where, signed))
                continue
            key = self.public_key(rule)
            if verify_blob_signature(key, payload, der):
                # Only a verified payload's reference means anything: judged after the signature, never before.
                record, refusal = signed_reference.judge(rule.docker_reference, rule.docker_reference_globs,
                                                         reference, ref)
                if refusal is None:
                    return dict(record, keyId=signing_keys.key_id(key))
                findings.add("signature-reference", "%s verifies with key %s but %s" % (
                    where, signing_keys.key_id(key), refusal))
                continue
            findings.add("wrong-key", "%s does not verify with key %s: made with another key, or altered" % (
                where, signing_keys.key_id(key)))
        return None

    def _check_referrer(self, client, ref, digest, rule, item, findings):
        where = "referrer %s" % item.digest
        layers = [layer for layer in item.layers if layer.get("mediaType") in cosign.SIGSTORE_BUNDLE_TYPES]
        if len(layers) != 1:
            findings.add("malformed-signature", "%s holds %d Sigstore bundles, not one" % (where, len(layers)))
            return None
        try:
            raw = self._blob(client, ref, layers[0])
            bundle = cosign.SigstoreBundle(raw)
            subjects, predicate = bundle.subject_digests()
        except (OCIError, ValueError) as exc:
            findings.add("malformed-signature", "%s: %s" % (where, getattr(exc, "message", exc)))
            return None
        if digest not in subjects:
            findings.add("wrong-image", "%s signs %s, another image" % (where, ", ".join(sorted(subjects)) or "nothing"))
            return None
        if rule.method == "keyless":
            return self._check_keyless(rule, raw, bundle, digest, where, findings)
        key = self.public_key(rule)
        hint = base64.b64encode(spki_digest(key)).decode("ascii")
        if bundle.key_hint and bundle.key_hint != hint:
            findings.add("wrong-key", "%s was signed by the key with hint %s, not key %s (hint %s)" % (
                where, bundle.key_hint, signing_keys.key_id(key), hint))
            return None
        if bundle.has_certificate and not bundle.key_hint:
            findings.add("wrong-key", "%s is a keyless signature, the rule wants key %s" % (
                where, signing_keys.key_id(key)))
            return None
        message = cosign.pae(bundle.payload_type, bundle.payload)
        if any(verify_blob_signature(key, message, der) for der in bundle.signatures):
            if not _is_signature(predicate, where, findings):
                return None
            return {"keyId": signing_keys.key_id(key)}
        findings.add("bad-signature" if bundle.key_hint == hint else "wrong-key",
                     "%s does not verify with key %s" % (where, signing_keys.key_id(key)))
        return None

    # -- keyless -----------------------------------------------------------------------------------
    def keyless_verifier_for(self, rule):
        """The sigstore Verifier over the rule's trusted root, read once per file."""
        return self._trusted_root(rule.trusted_root)[0]

    def trusted_root_bytes(self, path):
        """The exact bytes of the trusted root at ``path`` the verifier was made from (what a build carries)."""
        return self._trusted_root(path)[1]

    def _trusted_root(self, path):
        if path not in self._roots:
            self._roots[path] = load_trusted_root(path)
        return self._roots[path]

    def _check_keyless(self, rule, raw, bundle, digest, where, findings):
        if not bundle.has_certificate:
            findings.add("wrong-identity", "%s is signed with a key (hint %s), the rule wants identity %s" % (
                where, bundle.key_hint, rule.identity))
            return None
        try:
            payload_type, payload, issuer = verified_keyless_dsse(self.keyless_verifier_for(rule), raw, rule)
        except KeylessRefusal as exc:
            findings.add(exc.reason, "%s %s" % (where, exc.text))
            return None
        subjects, predicate = cosign.statement_digests(payload)
        if payload_type != cosign.IN_TOTO_PAYLOAD or digest not in subjects:
            findings.add("wrong-image", "%s verified, but its statement is about %s" % (where, ", ".join(subjects)))
            return None
        if not _is_signature(predicate, where, findings):
            return None
        return {"identity": rule.identity, "issuer": issuer}


def _is_signature(predicate, where, findings):
    """Only a statement with cosign's signature predicate signs the image: an attestation (provenance, SBOM,
    vulnerability scan) by the same signer says something about the image, not that the signer vouches for it."""
    if predicate == cosign.COSIGN_SIGN_PREDICATE:
        return True
    findings.add("wrong-predicate", "%s is a verified statement with predicate type %s, not a signature (%s): an "
                 "attestation is not the image's source signature" % (where, predicate, cosign.COSIGN_SIGN_PREDICATE))
    return False
