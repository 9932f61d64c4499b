# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Keyless Sigstore bundles verified offline: the ``sigstore`` library over a supplied ``trusted_root.json`` (Fulcio
CAs, CT logs, Rekor keys), and the identity and OIDC issuer a Fulcio certificate names. Used for source signatures
(verification.py) and SLSA provenance (provenance.py) alike; and the trusted roots that verified something, carried in
the bundle so the high side can check the same signatures again (``CarriedRoots``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile

from ansible_collections.petra.core.plugins.module_utils.custody.errors import CustodyError


class KeylessRefusal(Exception):
    """Why a keyless Sigstore bundle is not accepted: a refusal reason and a text to follow the bundle's name."""

    def __init__(self, reason, text):
        super().__init__(text)
        self.reason = reason
        self.text = text


def verified_keyless_dsse(verifier, raw, wanted):
    """(payload type, payload, issuer) of the keyless Sigstore bundle ``raw`` once the sigstore library verified it
    offline for ``wanted.identity`` and ``wanted.issuer`` (``verifier`` from keyless_verifier over
    ``wanted.trusted_root``); KeylessRefusal otherwise."""
    sigstore = _sigstore()
    try:
        parsed = sigstore["Bundle"].from_json(raw)
    except Exception as exc:  # the library raises its own and pydantic's errors for malformed bundles
        raise KeylessRefusal("malformed-signature", "is refused by the sigstore library: %s" % exc)
    identities, issuer = certificate_identity(parsed.signing_certificate)
    if wanted.identity not in identities or issuer != wanted.issuer:
        raise KeylessRefusal("wrong-identity", "was signed by %s from issuer %s" % (
            ", ".join(sorted(identities)) or "no identity", issuer))
    try:
        payload_type, payload = verifier.verify_dsse(parsed, sigstore["Identity"](identity=wanted.identity,
                                                                                  issuer=wanted.issuer))
    except sigstore["errors"] as exc:
        raise KeylessRefusal("bad-signature", "does not verify against the trusted root %s: %s" % (
            wanted.trusted_root, exc))
    return payload_type, payload, issuer


_FULCIO_ISSUER_V1 = "1.3.6.1.4.1.57264.1.1"
_FULCIO_ISSUER_V2 = "1.3.6.1.4.1.57264.1.8"


def certificate_identity(certificate):
    """(set of SAN identities, OIDC issuer) of a Fulcio certificate."""
    from cryptography import x509
    identities = set()
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        identities.update(names.get_values_for_type(x509.RFC822Name))
        identities.update(names.get_values_for_type(x509.UniformResourceIdentifier))
    except x509.ExtensionNotFound:
        pass
    issuer = None
    for extension in certificate.extensions:
        if extension.oid.dotted_string == _FULCIO_ISSUER_V1:
            issuer = extension.value.value.decode("utf-8", "replace")
        elif extension.oid.dotted_string == _FULCIO_ISSUER_V2:
            # DER UTF8String: tag, length, text
            raw = extension.value.value
            issuer = raw[2:].decode("utf-8", "replace") if len(raw) > 2 and raw[1] < 0x80 else issuer
    return identities, issuer


def _sigstore():
    try:
        from sigstore.errors import Error as SigstoreError
        from sigstore.models import Bundle, TrustedRoot
        from sigstore.verify import Verifier
        from sigstore.verify.policy import Identity
    except ImportError:
        raise CustodyError("keyless verification needs the Python library 'sigstore'",
                           hint="Install the collection's requirements.txt on the controller, or use key rules",
                           reason="dependency")
    return {"Bundle": Bundle, "TrustedRoot": TrustedRoot, "Verifier": Verifier, "Identity": Identity,
            "errors": (SigstoreError, ValueError)}


def keyless_verifier(path):
    """A sigstore Verifier over the trusted_root.json at path (offline); CustodyError naming the file when it is
    not a usable trusted root."""
    return load_trusted_root(path)[0]


def load_trusted_root(path):
    """(sigstore Verifier, the file's bytes): the file is read once, and the verifier is made from exactly those
    bytes, so what a build carries (CarriedRoots) is what verified, even if the file is replaced meanwhile."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise CustodyError("cannot read the trusted root %s: %s" % (path, exc.strerror), reason="trusted-root",
                           hint="trusted_root is read on the controller; copy the Sigstore trusted_root.json there")
    sigstore = _sigstore()
    # The library's public way in is a file: a private copy of the bytes read, which nothing else can replace.
    with tempfile.TemporaryDirectory(prefix="petra-trusted-root-") as directory:
        copy = os.path.join(directory, "trusted_root.json")
        with open(copy, "wb") as handle:
            handle.write(data)
        try:
            return sigstore["Verifier"](trusted_root=sigstore["TrustedRoot"].from_file(copy)), data
        except Exception as exc:  # pydantic validation and the library's own errors
            raise CustodyError("%s is not a usable Sigstore trusted root: %s" % (path, str(exc).splitlines()[0]),
                               hint="Give a trusted_root.json (media type "
                                    "application/vnd.dev.sigstore.trustedroot+json;version=0.1) with Fulcio CAs and "
                                    "transparency log keys", reason="trusted-root")


TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
ENTRY_PREFIX = "sigstore/trusted_root-"


class CarriedRoots:
    """The trusted roots a build used to accept a keyless signature or provenance, each with the identities it
    vouched for: they travel in the bundle as ``sigstore/trusted_root-<12 hex>.json`` so that admission on the high
    side (policy-controller's TrustRoot, docs/platform.md) trusts exactly what the build trusted: the bytes the
    verifier was made from, never the file read again. Named by content, so the same root given to several rules is
    carried once."""

    def __init__(self):
        self._roots = {}

    def use(self, data, glob, identity, issuer, purpose):
        """Record that the trusted root ``data`` (the exact bytes that verified, load_trusted_root) verified
        ``purpose`` (signature or provenance) for ``glob``."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self._roots.setdefault(digest, {"data": data, "uses": set()})["uses"].add((glob, identity, issuer, purpose))

    def entries(self):
        """[(entry name, bytes, metadata record)], by entry name; the record lists the keyless identities (rule
        glob, identity, issuer, and what they were trusted for) this root verified."""
        result = []
        for digest, root in self._roots.items():
            name = "%s%s.json" % (ENTRY_PREFIX, digest.split(":", 1)[1][:12])
            keyless = {}
            for glob, identity, issuer, purpose in root["uses"]:
                keyless.setdefault((glob, identity, issuer), set()).add(purpose)
            record = {"name": name, "digest": digest, "size": len(root["data"]), "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
                      "keyless": [{"glob": glob, "identity": identity, "issuer": issuer, "for": sorted(purposes)}
                                  for (glob, identity, issuer), purposes in sorted(keyless.items())]}
            result.append((name, root["data"], record))
        return sorted(result, key=lambda item: item[0])
