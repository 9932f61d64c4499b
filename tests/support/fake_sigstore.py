"""An offline Sigstore instance of our own: a Fulcio-like CA, a CT log, a Rekor-like transparency log, and the
trusted_root.json that names them, so that keyless signatures can be made here and verified by the ``sigstore``
library exactly as it verifies public-good ones (nothing in the library is patched or skipped).

Made with ``cryptography`` alone, from the formats rather than from any Sigstore code:
- Fulcio: a P-384 root and intermediate (SHA-384 signatures) issuing short-lived P-256 leaf certificates with an
  empty subject, the identity as a critical SAN (URI or email), code-signing EKU, the OIDC issuer in both the legacy
  (1.3.6.1.4.1.57264.1.1, raw text) and v2 (1.3.6.1.4.1.57264.1.8, DER UTF8String) extensions, and one embedded
  SCT (RFC 6962 precertificate entry: the issuer key hash and the TBSCertificate without the SCT list).
- CT log: a P-256 key signing SCTs with SHA-256.
- Rekor: a P-256 key; entries are ``dsse`` 0.0.1 canonicalized bodies, leaves of an RFC 6962 Merkle tree; each
  entry carries an inclusion proof against a signed checkpoint (note format) and a signed entry timestamp over the
  RFC 8785 form of body, integratedTime, logID and logIndex.
- Bundles: Sigstore bundle v0.3 with the leaf certificate, that entry and a DSSE envelope, as cosign v3 writes.

``tamper`` alters a finished bundle in one named place, for refusal tests.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import struct

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.petra.core.tests.support.cosign_signer import BUNDLE_TYPE, pae

TRUSTED_ROOT_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
IN_TOTO = "application/vnd.in-toto+json"
OIDC_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
OIDC_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
SCT_LIST = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
UTC = datetime.timezone.utc


def b64(data):
    return base64.b64encode(data).decode("ascii")


def spki(public_key):
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def log_id(public_key):
    """RFC 6962 log (and key) ID: SHA-256 of the SubjectPublicKeyInfo DER."""
    return hashlib.sha256(spki(public_key)).digest()


def der_length(size):
    if size < 0x80:
        return bytes([size])
    body = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def der_utf8(text):
    data = text.encode("utf-8")
    return b"\x0c" + der_length(len(data)) + data


def canonical_json(document):
    """RFC 8785 for what is logged here (ASCII strings and integers): sorted keys, no spaces."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _timestamp(moment):
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "petra.test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


# -- RFC 6962 Merkle tree -----------------------------------------------------------------------------
def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size):
    """The largest power of two smaller than size (size > 1)."""
    k = 1
    while k * 2 < size:
        k *= 2
    return k


def tree_hash(leaves):
    """MTH(D[n]) over leaf hashes."""
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(tree_hash(leaves[:k]), tree_hash(leaves[k:]))


def audit_path(index, leaves):
    """PATH(m, D[n]) over leaf hashes, from the leaf upwards."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return audit_path(index, leaves[:k]) + [tree_hash(leaves[k:])]
    return audit_path(index - k, leaves[k:]) + [tree_hash(leaves[:k])]


class TransparencyLog:
    """A Rekor-like log: canonicalized bodies in an RFC 6962 tree, signed checkpoints, signed entry timestamps."""

    def __init__(self, name, filler=5):
        self.name = name
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.log_id = log_id(self.key.public_key())
        self.origin = "%s - %d" % (name, int.from_bytes(self.log_id[:7], "big"))
        self.leaves = []
        # Entries by others before ours, so that proofs have inner and border hashes.
        for _index in range(filler):
            self.leaves.append(leaf_hash(os.urandom(64)))

    def _sign(self, data):
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))

    def checkpoint(self, size, root):
        """The signed note: origin, size, base64 root hash; a blank line; one signature line whose key hash is the
        first four bytes of the log ID."""
        note = "%s\n%d\n%s\n" % (self.origin, size, b64(root))
        return note + "\n\u2014 %s %s\n" % (self.name, b64(self.log_id[:4] + self._sign(note.encode("utf-8"))))

    def add(self, body, integrated_time, kind="dsse", version="0.0.1", after=1):
        """Log ``body``; ``after`` more entries by others follow before the proof is taken. The bundle's
        ``tlogEntries`` item."""
        index = len(self.leaves)
        self.leaves.append(leaf_hash(body))
        for _index in range(after):
            self.leaves.append(leaf_hash(os.urandom(64)))
        leaves = list(self.leaves)
        root = tree_hash(leaves)
        seconds = int(integrated_time.timestamp())
        promise = canonical_json({"body": b64(body), "integratedTime": seconds, "logID": self.log_id.hex(),
                                  "logIndex": index})
        return {
            "logIndex": str(index),
            "logId": {"keyId": b64(self.log_id)},
            "kindVersion": {"kind": kind, "version": version},
            "integratedTime": str(seconds),
            "inclusionPromise": {"signedEntryTimestamp": b64(self._sign(promise))},
            "inclusionProof": {"logIndex": str(index), "rootHash": b64(root), "treeSize": str(len(leaves)),
                               "hashes": [b64(item) for item in audit_path(index, leaves)],
                               "checkpoint": {"envelope": self.checkpoint(len(leaves), root)}},
            "canonicalizedBody": b64(body),
        }


class CTLog:
    """A certificate transparency log that signs precertificate SCTs (v1, SHA-256, ECDSA)."""

    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.log_id = log_id(self.key.public_key())

    def sct(self, issuer_key, tbs, moment):
        """A serialized SCT for the precertificate whose TBSCertificate (without the SCT list) is ``tbs``."""
        millis = int(moment.timestamp()) * 1000
        signed = (struct.pack("!BBQH", 0, 0, millis, 1) + log_id(issuer_key) + len(tbs).to_bytes(3, "big") + tbs
                  + struct.pack("!H", 0))
        signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return (struct.pack("!B", 0) + self.log_id + struct.pack("!QH", millis, 0)
                + struct.pack("!BBH", 4, 3, len(signature)) + signature)

    @staticmethod
    def extension(scts):
        """The SCT list extension value: an OCTET STRING around the TLS-encoded list."""
        items = b"".join(struct.pack("!H", len(item)) + item for item in scts)
        tls = struct.pack("!H", len(items)) + items
        return b"\x04" + der_length(len(tls)) + tls


class Credential:
    """A leaf certificate and its ephemeral key, as Fulcio hands them to a signer."""

    def __init__(self, certificate, key):
        self.certificate = certificate
        self.key = key

    @property
    def pem(self):
        return self.certificate.public_bytes(serialization.Encoding.PEM)


class Signed:
    """A finished bundle and the parts a test checks independently."""

    def __init__(self, document, credential, statement, signature):
        self.document = document
        self.credential = credential
        self.statement = statement
        self.signature = signature
        self.pae = pae(IN_TOTO, statement)

    @property
    def bundle(self):
        return json.dumps(self.document).encode("utf-8")


class FakeSigstore:
    """One instance: Fulcio-like CA, CT log, Rekor-like log. Times default to the construction time."""

    def __init__(self, name="petra-fake", now=None):
        self.name = name
        self.now = now or datetime.datetime.now(UTC).replace(microsecond=0)
        self.start = self.now - datetime.timedelta(days=1)
        self.root_key = ec.generate_private_key(ec.SECP384R1())
        self.root = self._ca(_name(name + "-root"), self.root_key, self.root_key, _name(name + "-root"), 1)
        self.intermediate_key = ec.generate_private_key(ec.SECP384R1())
        self.intermediate = self._ca(_name(name + "-intermediate"), self.intermediate_key, self.root_key,
                                     self.root.subject, 0, eku=True)
        self.ctlog = CTLog()
        self.rekor = TransparencyLog(name + "-rekor")

    def _ca(self, subject, key, signer, issuer, path_length, eku=False):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(self.start)
                   .not_valid_after(self.now + datetime.timedelta(days=365))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
                   .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                  critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
        if signer is not key:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
        if eku:
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        return builder.sign(signer, hashes.SHA384())

    # -- Fulcio ------------------------------------------------------------------------------------
    def issue(self, identity, issuer, at=None, lifetime=datetime.timedelta(minutes=10)):
        """A leaf certificate for ``identity`` (an email when it has an @ and no scheme, else a URI) from OIDC
        ``issuer``, valid for ``lifetime`` from ``at``, with one SCT from this instance's CT log."""
        at = at or self.now
        key = ec.generate_private_key(ec.SECP256R1())
        san = x509.RFC822Name(identity) if "@" in identity and "://" not in identity else \
            x509.UniformResourceIdentifier(identity)
        builder = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(self.intermediate.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(at).not_valid_after(at + lifetime)
                   .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                                  critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       self.intermediate_key.public_key()), critical=False)
                   .add_extension(x509.SubjectAlternativeName([san]), critical=True)
                   .add_extension(x509.UnrecognizedExtension(OIDC_ISSUER_V1, issuer.encode("utf-8")), critical=False)
                   .add_extension(x509.UnrecognizedExtension(OIDC_ISSUER_V2, der_utf8(issuer)), critical=False))
        # The precertificate's TBSCertificate without poison is the final one without the SCT list: same fields,
        # same serial, same extension order, the SCT list added last.
        tbs = builder.sign(self.intermediate_key, hashes.SHA384()).tbs_certificate_bytes
        sct = self.ctlog.sct(self.intermediate_key.public_key(), tbs, at)
        certificate = builder.add_extension(x509.UnrecognizedExtension(SCT_LIST, CTLog.extension([sct])),
                                            critical=False).sign(self.intermediate_key, hashes.SHA384())
        assert certificate.tbs_precertificate_bytes == tbs
        return Credential(certificate, key)

    # -- signing and Rekor -------------------------------------------------------------------------
    def sign_dsse(self, credential, statement, integrated=None):
        """A v0.3 bundle: DSSE over the in-toto ``statement`` bytes with the credential's key, logged in Rekor as a
        dsse 0.0.1 entry integrated at ``integrated`` (default: one minute after the certificate's start)."""
        integrated = integrated or credential.certificate.not_valid_before_utc + datetime.timedelta(minutes=1)
        signature = credential.key.sign(pae(IN_TOTO, statement), ec.ECDSA(hashes.SHA256()))
        envelope = {"payload": b64(statement), "payloadType": IN_TOTO,
                    "signatures": [{"sig": b64(signature), "keyid": ""}]}
        body = canonical_json({"apiVersion": "0.0.1", "kind": "dsse", "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": hashlib.sha256(canonical_json(envelope)).hexdigest()},
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(statement).hexdigest()},
            "signatures": [{"signature": b64(signature), "verifier": b64(credential.pem)}]}})
        document = {
            "mediaType": BUNDLE_TYPE,
            "verificationMaterial": {
                "certificate": {"rawBytes": b64(credential.certificate.public_bytes(serialization.Encoding.DER))},
                "tlogEntries": [self.rekor.add(body, integrated)],
                "timestampVerificationData": {"rfc3161Timestamps": []},
            },
            "dsseEnvelope": envelope,
        }
        return Signed(document, credential, statement, signature)

    # -- the trusted root --------------------------------------------------------------------------
    def _log(self, url, key):
        return {"baseUrl": url, "hashAlgorithm": "SHA2_256",
                "publicKey": {"rawBytes": b64(spki(key.public_key())), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                              "validFor": {"start": _timestamp(self.start)}},
                "logId": {"keyId": b64(log_id(key.public_key()))}}

    def trusted_root(self, path, ca=None, ctlog=None, tlog=None):
        """Write trusted_root.json naming this instance's CA, CT log and Rekor, or another instance's for any of
        them (``ca=other`` gives a root that does not contain this CA). Returns the path."""
        ca, ctlog, tlog = ca or self, ctlog or self, tlog or self
        document = {
            "mediaType": TRUSTED_ROOT_TYPE,
            "tlogs": [tlog._log("https://rekor.%s.test" % tlog.name, tlog.rekor.key)],
            "certificateAuthorities": [{
                "subject": {"organization": "petra.test", "commonName": ca.name},
                "uri": "https://fulcio.%s.test" % ca.name,
                "certChain": {"certificates": [{"rawBytes": b64(cert.public_bytes(serialization.Encoding.DER))}
                                               for cert in (ca.intermediate, ca.root)]},
                "validFor": {"start": _timestamp(ca.start)}}],
            "ctlogs": [ctlog._log("https://ctfe.%s.test" % ctlog.name, ctlog.ctlog.key)],
            "timestampAuthorities": [],
        }
        with open(path, "w") as handle:
            json.dump(document, handle, indent=2)
        return str(path)


def _flip(text):
    data = bytearray(base64.b64decode(text))
    data[len(data) // 2] ^= 0x01
    return b64(bytes(data))


def tamper(document, part):
    """A copy of a bundle document altered in one place:
    ``inclusion-proof`` a hash of the audit path; ``checkpoint`` the tree size in the signed note;
    ``promise`` the signed entry timestamp; ``integrated-time`` one second later (the SET no longer covers it)."""
    document = json.loads(json.dumps(document))
    entry = document["verificationMaterial"]["tlogEntries"][0]
    proof = entry["inclusionProof"]
    if part == "inclusion-proof":
        proof["hashes"][0] = _flip(proof["hashes"][0])
    elif part == "checkpoint":
        lines = proof["checkpoint"]["envelope"].split("\n")
        lines[1] = str(int(lines[1]) + 1)
        proof["checkpoint"]["envelope"] = "\n".join(lines)
    elif part == "promise":
        promise = entry["inclusionPromise"]
        promise["signedEntryTimestamp"] = _flip(promise["signedEntryTimestamp"])
    elif part == "integrated-time":
        entry["integratedTime"] = str(int(entry["integratedTime"]) + 1)
    else:
        raise ValueError("nothing to tamper named %r" % part)
    return document
