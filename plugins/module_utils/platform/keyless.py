# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Keyless signatures at admission: the Sigstore trusted root the bundle was built with, as a policy-controller
``TrustRoot`` (its ``sigstoreKeys`` form, given inline: no TUF repository is fetched), and one ``ClusterImagePolicy``
per keyless authority that requires the images' original keyless signatures on top of the bundle key's
countersignature (policy-controller admits an image only when every policy matching it passes).

policy-controller's ``sigstoreKeys`` fields are Go ``[]byte``: in JSON they are base64 text, of the PEM certificate
chain (the trusted root's order: issuing certificate first, root last) and of the PEM public key of each log. The
trusted root's ``validFor`` periods have no place in that form: policy-controller trusts every CA and log it lists
for as long as the TrustRoot exists.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re

from ansible_collections.petra.core.plugins.module_utils.errors import PetraError
from ansible_collections.petra.core.plugins.module_utils.load.targets import host_component
from ansible_collections.petra.core.plugins.module_utils.platform.errors import PlatformError
from ansible_collections.petra.core.plugins.module_utils.platform.objects import k8s_object

TRUST_ROOT_API = "policy.sigstore.dev/v1alpha1"
POLICY_API = "policy.sigstore.dev/v1beta1"
TRUST_ROOT_NAME = "petra-sigstore"
POLICY_PREFIX = "petra-keyless-"
_MEDIA_TYPES = ("application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                "application/vnd.dev.sigstore.trustedroot.v0.1+json")
# The trusted root's enum names and policy-controller's hash names (HashStringToHashAlgorithm).
_HASHES = {"SHA2_256": "sha-256", "SHA2_384": "sha-384", "SHA2_512": "sha-512"}
_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$")
# What Python's re accepts and Go's RE2 (policy-controller's regexp) refuses: a ClusterImagePolicy holding one is
# refused in the cluster, and with it every image under its glob.
_NOT_RE2 = (("(?<=", "a lookbehind"), ("(?<!", "a negative lookbehind"), ("(?=", "a lookahead"),
            ("(?!", "a negative lookahead"), ("(?P=", "a named backreference"), ("(?>", "an atomic group"),
            ("(?(", "a conditional group"))


def _pem(kind, der):
    body = base64.b64encode(der).decode("ascii")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (kind, "\n".join(lines), kind)


def _b64(text):
    return base64.b64encode(text.encode("ascii")).decode("ascii")


class TrustedRoot:
    """A Sigstore ``trusted_root.json``, read and checked: its bytes' digest and the ``sigstoreKeys`` it becomes."""

    def __init__(self, path, expected_digest=None):
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise PlatformError("cannot read the trusted root %s: %s" % (path, exc.strerror), reason="trusted-root",
                                hint="trusted_root is read on the controller")
        self.path = path
        self.digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if expected_digest and expected_digest != self.digest:
            raise PlatformError(
                "the trusted root %s has digest %s, not %s (trusted_root_digest)" % (path, self.digest, expected_digest),
                hint="Extract the file from the verified bundle again (petra_verify extract_trusted_roots returns "
                     "its path and digest in trusted_roots), or give the digest of the file you mean",
                reason="trusted-root")
        try:
            document = json.loads(data.decode("utf-8"))
            self.sigstore_keys = self._convert(document)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PlatformError("%s is not a usable Sigstore trusted root: %s" % (path, exc), reason="trusted-root",
                                hint="Give the trusted_root.json the bundle was built with (media type %s)"
                                     % _MEDIA_TYPES[0])

    @classmethod
    def _convert(cls, document):
        if document.get("mediaType") not in _MEDIA_TYPES:
            raise ValueError("media type %r is not a trusted root's" % document.get("mediaType"))
        keys = {"certificateAuthorities": [cls._authority(item) for item in document.get("certificateAuthorities") or []]}
        if not keys["certificateAuthorities"]:
            raise ValueError("it names no certificate authority (Fulcio), so no keyless certificate can chain to it")
        for source, target in (("tlogs", "tLogs"), ("ctlogs", "ctLogs")):
            logs = [cls._log(item) for item in document.get(source) or []]
            if not logs:
                raise ValueError("it has no %s: policy-controller could not check the %s offline" % (
                    source, "Rekor entries" if source == "tlogs" else "certificates' SCTs"))
            keys[target] = logs
        authorities = [cls._authority(item) for item in document.get("timestampAuthorities") or []]
        if authorities:
            keys["timestampAuthorities"] = authorities
        return keys

    @staticmethod
    def _authority(item):
        from cryptography import x509
        chain = []
        for certificate in item["certChain"]["certificates"]:
            der = base64.b64decode(certificate["rawBytes"], validate=True)
            x509.load_der_x509_certificate(der)  # refuses what is not a certificate, here rather than in the cluster
            chain.append(_pem("CERTIFICATE", der))
        if not chain:
            raise ValueError("a certificate authority without certificates")
        if not item.get("uri"):
            raise ValueError("a certificate authority without uri (policy-controller requires one)")
        subject = item.get("subject") or {}
        return {"subject": {"organization": subject.get("organization") or "unknown",
                            "commonName": subject.get("commonName") or "unknown"},
                "uri": item["uri"],
                "certChain": _b64("".join(chain))}

    @staticmethod
    def _log(item):
        from cryptography.hazmat.primitives.serialization import load_der_public_key
        der = base64.b64decode(item["publicKey"]["rawBytes"], validate=True)
        load_der_public_key(der)
        if not item.get("baseUrl"):
            raise ValueError("a log without baseUrl (policy-controller requires one)")
        algorithm = item.get("hashAlgorithm") or "SHA2_256"
        if algorithm not in _HASHES:
            raise ValueError("log %s uses hash %r" % (item.get("baseUrl"), algorithm))
        return {"baseURL": item["baseUrl"], "hashAlgorithm": _HASHES[algorithm],
                "publicKey": _b64(_pem("PUBLIC KEY", der))}


def not_re2(pattern):
    """What in a pattern Python's re compiles Go's RE2 refuses (``a lookahead (?=``), or None."""
    index, in_class = 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            following = pattern[index + 1:index + 2]
            if following and following in "123456789":
                return "a backreference \\%s" % following
            index += 2
            continue
        if in_class:
            in_class = char != "]"
            index += 1
            continue
        if char == "[":
            # A ']' first in a class (after an optional '^') is a literal, not its end.
            index += 2 if pattern[index + 1:index + 2] == "^" else 1
            index += 1 if pattern[index:index + 1] == "]" else 0
            in_class = True
            continue
        for text, what in _NOT_RE2:
            if pattern.startswith(text, index):
                return "%s %s" % (what, text)
        if char in "*+?" and pattern[index + 1:index + 2] == "+" and pattern[index - 1:index] != "(":
            return "a possessive quantifier %s+" % char
        index += 1
    return None


class KeylessAuthority:
    """One ``keyless`` option item: the images (a verify_images glob, on the source side), and who must have signed."""

    def __init__(self, item, index):
        where = "keyless[%d]" % index
        self.glob = (item.get("glob") or "").strip()
        self.name = item.get("name") or str(index)
        for key in ("identity", "identity_regexp", "issuer", "issuer_regexp"):
            value = item.get(key)
            if value and key.endswith("_regexp"):
                try:
                    re.compile(value)
                except re.error as exc:
                    raise PlatformError("%s.%s %r: %s" % (where, key, value, exc))
                refused = not_re2(value)
                if refused:
                    raise PlatformError(
                        "%s.%s %r uses %s, which policy-controller's Go (RE2) regular expressions do not support: "
                        "the policy would be refused in the cluster, and every image under %s with it" % (
                            where, key, value, refused, self.glob or "its glob"),
                        hint="Write it without lookarounds, backreferences, atomic groups, conditionals or possessive "
                             "quantifiers, e.g. anchor with ^ and $ and list alternatives with |")
        if not (item.get("identity") or item.get("identity_regexp")) or \
                not (item.get("issuer") or item.get("issuer_regexp")):
            raise PlatformError("%s (%s) needs identity (or identity_regexp) and issuer (or issuer_regexp)" % (
                where, self.glob), hint="The same identity and issuer as the verify_images rule of these images, e.g. "
                                        "Chainguard's release workflow and https://token.actions.githubusercontent.com")
        identity = {}
        for key, field in (("issuer", "issuer"), ("issuer_regexp", "issuerRegExp"), ("identity", "subject"),
                           ("identity_regexp", "subjectRegExp")):
            if item.get(key):
                identity[field] = item[key]
        self.identity = identity
        if not _NAME_RE.match(self.name):
            raise PlatformError("%s.name %r must be lowercase letters, digits and '-' (at most 42)" % (where, self.name))
        host, _sep, path = self.glob.partition("/")
        if not path or any(char in host for char in "*?[") or not ("." in host or ":" in host or host == "localhost"):
            raise PlatformError("%s.glob %r must start with the source registry host, written out (e.g. "
                                "cgr.dev/chainguard/*)" % (where, self.glob),
                                hint="The glob is the verify_images glob of the images: the policy is written for "
                                     "the repositories the load puts them in, <registry>/<source host>/<path>")
        if "[" in path or "?" in path:
            raise PlatformError("%s.glob %r: only * is understood in the path" % (where, self.glob))
        self.host, self.path = host, path

    def high_side_glob(self, target):
        """The glob of the same images where the load puts them. Petra's ``*`` also matches ``/``; in
        policy-controller's globs that is ``**``."""
        try:
            component = host_component(self.host)
        except PetraError as exc:
            raise PlatformError("keyless glob %r: %s" % (self.glob, exc.message))
        return "%s/%s" % (target.host, target.repository(component, re.sub(r"\*+", "**", self.path)))


def parse(params):
    """(TrustedRoot or None, [KeylessAuthority]) from the module's options; both or neither."""
    items = list(params.get("keyless") or [])
    path = params.get("trusted_root")
    if bool(items) != bool(path):
        raise PlatformError("keyless and trusted_root go together: %s" % (
            "the keyless authorities need the trusted root their certificates chain to" if items else
            "a trusted root without keyless authorities would be rendered but never used"),
            hint="Give trusted_root (the trusted_root.json the bundle carries) with keyless (the identities), or "
                 "neither")
    authorities = [KeylessAuthority(item, index) for index, item in enumerate(items)]
    names = [authority.name for authority in authorities]
    if len(set(names)) != len(names):
        raise PlatformError("keyless: names must differ (%s)" % ", ".join(names))
    if path and not params.get("trusted_root_digest"):
        # The TrustRoot decides which keyless signatures the cluster admits: only the file a verified bundle carried.
        raise PlatformError("trusted_root_digest is required with trusted_root: the file rendered as the cluster's "
                            "TrustRoot must be the one a verified bundle carried", reason="trusted-root",
                            hint="Give the digest petra_verify returned for it (trusted_roots[].digest), or let the "
                                 "platform role take both from the verification (platform_verified_bundle)")
    return (TrustedRoot(path, params["trusted_root_digest"]) if path else None), authorities


def trust_root(settings):
    return k8s_object(TRUST_ROOT_API, "TrustRoot", TRUST_ROOT_NAME, labels=settings.labels,
                      annotations={"petra.dev/trusted-root-digest": settings.trusted_root.digest},
                      spec={"sigstoreKeys": settings.trusted_root.sigstore_keys})


def cluster_image_policies(settings):
    """One policy per authority: a second policy, not a second authority of the bundle key's policy, because the
    authorities of one policy are alternatives and the two signatures are both required."""
    keys = settings.trusted_root.sigstore_keys
    policies = []
    for authority in settings.keyless:
        check = {
            "name": "keyless",
            # The URLs name the instance; with trustRootRef, certificates chain to the TrustRoot's CAs and the Rekor
            # entry is checked with its log keys, offline, from the Sigstore bundle's inclusion proof.
            "keyless": {"url": keys["certificateAuthorities"][0]["uri"], "trustRootRef": TRUST_ROOT_NAME,
                        "identities": [authority.identity]},
            "ctlog": {"url": keys["tLogs"][0]["baseURL"], "trustRootRef": TRUST_ROOT_NAME},
            # The format petra_bundle accepts for keyless sources: cosign v3 Sigstore bundles (referrers).
            "signatureFormat": "bundle",
        }
        spec = {"images": [{"glob": authority.high_side_glob(settings.target)}], "authorities": [check],
                "mode": "enforce"}
        policies.append(k8s_object(POLICY_API, "ClusterImagePolicy", POLICY_PREFIX + authority.name,
                                   labels=settings.labels, spec=spec))
    return policies
