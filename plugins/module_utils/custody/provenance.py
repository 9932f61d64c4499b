# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""SLSA provenance a ``verify_images`` rule requires (its ``provenance`` option), checked at build.

The image must carry an in-toto attestation with a SLSA provenance predicate (v1 or v0.2), as a DSSE envelope in
the legacy ``.att`` tag or as a Sigstore bundle referrer, that
1. is signed by the signer the rule trusts for provenance (its own key or keyless identity, else the rule's),
2. names the image's digest as its subject,
3. names the builder (exact id or pattern) and build type the rule asks for,
4. names the source repository and ref the rule asks for (the build's external parameters, else its resolved
   dependencies or materials).
Each step is judged only on a statement that passed the previous ones: what an unverified statement claims means
nothing. The verdict names the furthest step any attestation reached, so a genuine provenance of the wrong build is
reported as such, not drowned by attestations nobody trusts.
"""

from __future__ import annotations

import base64
import json

from ansible_collections.petra.core.plugins.module_utils.custody import image_signatures as cosign
from ansible_collections.petra.core.plugins.module_utils.custody import slsa
from ansible_collections.petra.core.plugins.module_utils.custody.errors import CustodyError, ProvenanceError
from ansible_collections.petra.core.plugins.module_utils.custody.keyless import KeylessRefusal, verified_keyless_dsse
from ansible_collections.petra.core.plugins.module_utils.custody.verification import (
    Findings, spki_digest, verify_blob_signature)
from ansible_collections.petra.core.plugins.module_utils.oci.errors import OCIError
from ansible_collections.petra.core.plugins.module_utils.signing import keys as signing_keys

REASONS = ("no-provenance", "provenance-subject", "provenance-signer", "provenance-builder", "provenance-source")
_PRECEDENCE = ("provenance-source", "provenance-builder", "provenance-subject", "provenance-signer")
MAX_ATTESTATION_BLOB = 4 << 20
_SIGNER_OPTIONS = ("key", "identity", "issuer", "trusted_root")
_HINTS = {
    "no-provenance": "Take the image from a publisher that attests its builds (cosign attest --type slsaprovenance1, "
                     "or the build platform's own attestation), or set provenance.required: false on this rule to "
                     "carry images that have none",
    "provenance-signer": "Provenance counts only when the signer the rule trusts made it (provenance.key or "
                         "provenance.identity/issuer, else the rule's own key or identity): anyone can attach an "
                         "attestation",
    "provenance-subject": "The provenance describes another digest: it belongs to another build of the image (or was "
                          "copied); take the image its provenance was made for",
    "provenance-builder": "The image was built by another builder or build type than the rule trusts; compare "
                          "provenance.builder_id (or builder_id_glob) and build_type with the publisher's builder",
    "provenance-source": "The image was built from another repository or ref than the rule requires; check "
                         "provenance.source_repo and source_ref (a pattern, e.g. refs/tags/v*)",
}


class ProvenanceRule:
    """The ``provenance`` option of one verify_images rule, validated, with the signer it trusts resolved."""

    def __init__(self, rule):
        options = rule.provenance
        self.index, self.glob = rule.index, rule.glob
        where = "verify_images[%d] (%s) provenance" % (rule.index, rule.glob)
        if not isinstance(options, dict):
            raise CustodyError("%s is not a dictionary" % where, reason="policy")
        self.required = options.get("required") is not False
        self.builder_id = options.get("builder_id")
        self.builder_id_glob = options.get("builder_id_glob")
        self.build_type = options.get("build_type")
        self.source_repo = options.get("source_repo")
        self.source_ref = options.get("source_ref")
        if self.builder_id and self.builder_id_glob:
            raise CustodyError("%s gives both builder_id and builder_id_glob" % where,
                               hint="builder_id is compared exactly, builder_id_glob as a pattern: keep one",
                               reason="policy")
        if not (self.builder_id or self.builder_id_glob):
            raise CustodyError("%s names no builder" % where, reason="policy",
                               hint="Provenance is only as good as the builder that wrote it: give builder_id (or "
                                    "builder_id_glob), e.g. https://github.com/actions/runner/github-hosted")
        if self.source_ref and not self.source_repo:
            raise CustodyError("%s gives source_ref without source_repo" % where, reason="policy",
                               hint="A ref means something only in a repository: give source_repo too")
        if options.get("key") or options.get("identity"):
            self.key, self.identity, self.issuer = options.get("key"), options.get("identity"), options.get("issuer")
            self.trusted_root = options.get("trusted_root") or rule.trusted_root
        elif any(options.get(name) for name in _SIGNER_OPTIONS):
            raise CustodyError("%s gives issuer or trusted_root without identity" % where, reason="policy",
                               hint="Give provenance.identity with them, or leave all three out to trust the rule's "
                                    "own signer")
        elif rule.method == "none":
            raise CustodyError("%s names no signer, and the rule (method none) has none to lend" % where,
                               hint="Give provenance.key, or provenance.identity, issuer and trusted_root",
                               reason="policy")
        else:
            self.key, self.identity, self.issuer, self.trusted_root = rule.key, rule.identity, rule.issuer, \
                rule.trusted_root
        if self.key and (self.identity or options.get("issuer")):
            raise CustodyError("%s gives both a key and a keyless identity/issuer" % where, reason="policy",
                               hint="Provenance is signed either with a key or keyless; keep the one its signer uses")
        if self.identity and not (self.issuer and self.trusted_root):
            raise CustodyError("%s has a keyless identity: it needs issuer and trusted_root (the rule's is used when "
                               "it has one)" % where, reason="policy")
        self.method = "key" if self.key else "keyless"

    def wanted(self):
        text = "builder %s" % (self.builder_id or "matching " + self.builder_id_glob)
        if self.build_type:
            text += ", build type %s" % self.build_type
        if self.source_repo:
            text += ", source %s%s" % (self.source_repo, " at " + self.source_ref if self.source_ref else "")
        return text


class _Candidate:
    """A SLSA provenance statement found with the image, not yet trusted."""

    def __init__(self, where, form, manifest, blob, payload_type, payload, signatures, raw=None, key_hint=None,
                 certificate=False):
        self.where = where
        self.format = form
        self.manifest = manifest
        self.blob = blob
        self.payload_type = payload_type
        self.payload = payload
        self.signatures = signatures
        self.raw = raw
        self.key_hint = key_hint
        self.certificate = certificate


def _provenance_type(payload_type, payload):
    """The statement's predicate type when it is a SLSA provenance in-toto statement, else None."""
    if payload_type != cosign.IN_TOTO_PAYLOAD:
        return None
    try:
        predicate_type = json.loads(payload).get("predicateType")
    except (ValueError, AttributeError):
        return None
    return predicate_type if predicate_type in slsa.PREDICATE_TYPES else None


def _read(client, ref, descriptor):
    return client.read_blob(ref.repository, descriptor["digest"], descriptor["size"], MAX_ATTESTATION_BLOB)


def candidates(client, ref, attached):
    """(SLSA provenance statements among what came with the image, texts naming attestations that could not be
    read). Legacy ``.att`` layers first, then Sigstore bundle referrers, in discovery order."""
    found, unreadable = [], []
    for item in attached:
        if item.kind == "attestation":
            for position, layer in enumerate(item.layers, 1):
                declared = (layer.get("annotations") or {}).get(cosign.ANNOTATION_PREDICATE_TYPE)
                if declared and declared not in slsa.PREDICATE_TYPES:
                    continue  # another kind of attestation, as its annotation says: not read
                where = "%s layer %d" % (item.tag, position)
                try:
                    raw = _read(client, ref, layer)
                    payload_type, payload, signatures = cosign.envelope_parts(json.loads(raw))
                except (OCIError, ValueError) as exc:
                    unreadable.append("%s: %s" % (where, getattr(exc, "message", exc)))
                    continue
                if _provenance_type(payload_type, payload):
                    found.append(_Candidate(where, "legacy-tag", item.digest, layer["digest"], payload_type, payload,
                                            signatures, certificate=cosign.ANNOTATION_CERTIFICATE in (
                                                layer.get("annotations") or {})))
        elif item.kind == "referrer" and item.is_sigstore_bundle():
            where = "referrer %s" % item.digest
            layers = [layer for layer in item.layers if layer.get("mediaType") in cosign.SIGSTORE_BUNDLE_TYPES]
            if len(layers) != 1:
                continue  # not cosign's form; the signature check reports it when it matters
            try:
                raw = _read(client, ref, layers[0])
                bundle = cosign.SigstoreBundle(raw)
            except (OCIError, ValueError) as exc:
                unreadable.append("%s: %s" % (where, getattr(exc, "message", exc)))
                continue
            if _provenance_type(bundle.payload_type, bundle.payload):
                found.append(_Candidate(where, "referrer", item.digest, layers[0]["digest"], bundle.payload_type,
                                        bundle.payload, bundle.signatures, raw=raw, key_hint=bundle.key_hint,
                                        certificate=bundle.has_certificate))
    return found, unreadable


class ProvenanceVerifier:
    """Applies the ``provenance`` options of a SourceVerifier's rules (whose keys and trusted roots it shares)."""

    def __init__(self, source_verifier):
        self.source = source_verifier
        self.rules = {rule.index: ProvenanceRule(rule) for rule in source_verifier.rules
                      if rule.provenance is not None}

    def verify(self, client, ref_text, ref, digest, attached):
        """The ``provenance`` record of an image whose rule asks for provenance (None when it does not), or
        ProvenanceError naming the image and why."""
        rule = self.source.rule_for(ref_text, ref)
        wanted = self.rules.get(rule.index) if rule is not None else None
        if wanted is None:
            return None
        subject = "%s (%s)" % (ref_text, digest)
        found, unreadable = candidates(client, ref, attached)
        if not found:
            if not wanted.required:
                return {"rule": wanted.glob, "status": "absent"}
            raise ProvenanceError(
                "image %s carries no SLSA provenance (an in-toto statement with predicate type %s in its %s tag or a "
                "Sigstore bundle referrer), and verify_images rule %r requires it%s" % (
                    subject, " or ".join(slsa.PREDICATE_TYPES), cosign.tag_for(digest, cosign.ATTESTATION_SUFFIX),
                    wanted.glob, "; unreadable: " + "; ".join(unreadable) if unreadable else ""),
                hint=_HINTS["no-provenance"], reason="no-provenance", image=ref_text, digest=digest)
        findings = Findings(_PRECEDENCE, "provenance-signer")
        for candidate in found:
            record = self._judge(wanted, candidate, digest, findings)
            if record is not None:
                return dict(record, rule=wanted.glob, status="verified")
        reason = findings.reason()
        raise ProvenanceError(
            "image %s: no SLSA provenance satisfies verify_images rule %r (%s, signed by %s): %s" % (
                subject, wanted.glob, wanted.wanted(), self._signer_text(wanted), findings.text()),
            hint=_HINTS[reason], reason=reason, image=ref_text, digest=digest)

    def _signer_text(self, wanted):
        if wanted.method == "key":
            return "key %s" % signing_keys.key_id(self.source.public_key(wanted))
        return "identity %s from issuer %s" % (wanted.identity, wanted.issuer)

    def _judge(self, wanted, candidate, digest, findings):
        signer = self._signer(wanted, candidate, findings)
        if signer is None:
            return None
        where = "%s (signed by %s)" % (candidate.where, signer.get("keyId") or signer.get("identity"))
        try:
            subjects, _predicate_type = cosign.statement_digests(candidate.payload)
            provenance = slsa.Provenance.from_statement(candidate.payload)
        except ValueError as exc:
            findings.add("provenance-builder", "%s: %s" % (where, exc))
            return None
        if digest not in subjects:
            findings.add("provenance-subject", "%s is about %s, not this image" % (
                where, ", ".join(sorted(subjects)) or "no sha256 subject"))
            return None
        problem = provenance.builder_problem(wanted.builder_id, wanted.builder_id_glob, wanted.build_type)
        if problem:
            findings.add("provenance-builder", "%s %s" % (where, problem))
            return None
        source = provenance.matching_source(wanted.source_repo, wanted.source_ref)
        if source is None and wanted.source_repo:
            named = ", ".join(item.describe() for item in provenance.sources) or "no source"
            findings.add("provenance-source", "%s names %s, not %s%s" % (
                where, named, wanted.source_repo, " at a ref matching " + wanted.source_ref if wanted.source_ref
                else ""))
            return None
        record = dict(signer, predicateType=provenance.predicate_type, builderId=provenance.builder_id,
                      buildType=provenance.build_type, format=candidate.format,
                      attestation={"manifest": candidate.manifest, "digest": candidate.blob})
        if source is not None:
            record["source"] = source.record()
        return record

    def _signer(self, wanted, candidate, findings):
        """The signer fields of the record when the candidate is signed as ``wanted`` says (its payload replaced by
        the verified one for keyless bundles), else None with a finding."""
        if wanted.method == "keyless":
            return self._keyless(wanted, candidate, findings)
        key = self.source.public_key(wanted)
        hint = base64.b64encode(spki_digest(key)).decode("ascii")
        if candidate.key_hint and candidate.key_hint != hint:
            findings.add("provenance-signer", "%s was signed by the key with hint %s, not key %s (hint %s)" % (
                candidate.where, candidate.key_hint, signing_keys.key_id(key), hint))
            return None
        message = cosign.pae(candidate.payload_type, candidate.payload)
        if any(verify_blob_signature(key, message, der) for der in candidate.signatures):
            return {"method": "key", "keyId": signing_keys.key_id(key)}
        text = "is a keyless attestation, the rule wants key %s" if candidate.certificate else \
            "does not verify with key %s: made with another key, or altered"
        findings.add("provenance-signer", "%s %s" % (candidate.where, text % signing_keys.key_id(key)))
        return None

    def _keyless(self, wanted, candidate, findings):
        if candidate.format == "legacy-tag" and candidate.certificate:
            findings.add("provenance-signer", "%s is a keyless attestation in the legacy tag format, which carries no "
                         "transparency-log inclusion proof to check offline; ask for cosign v3 (Sigstore bundle) "
                         "attestations" % candidate.where)
            return None
        if not candidate.certificate:
            findings.add("provenance-signer", "%s is signed with a key%s, the rule wants identity %s" % (
                candidate.where, " (hint %s)" % candidate.key_hint if candidate.key_hint else "", wanted.identity))
            return None
        try:
            payload_type, payload, issuer = verified_keyless_dsse(
                self.source.keyless_verifier_for(wanted), candidate.raw, wanted)
        except KeylessRefusal as exc:
            findings.add("provenance-signer", "%s %s" % (candidate.where, exc.text))
            return None
        candidate.payload_type, candidate.payload = payload_type, payload
        return {"method": "keyless", "identity": wanted.identity, "issuer": issuer}
