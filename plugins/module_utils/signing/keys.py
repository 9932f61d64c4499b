# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Signing keys behind one small interface: cosign key files, plain PEM EC keys, and AWS KMS.

Only FIPS-approved signatures are produced: ECDSA on P-256 with SHA-256 and on P-384 with SHA-384.
"""

from __future__ import annotations

import abc
import base64
import hashlib
import json
import os
import re

try:
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, utils as asym_utils
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - reported at run time
    HAS_CRYPTOGRAPHY = False

try:
    import nacl.exceptions
    import nacl.secret
    HAS_NACL = True
except ImportError:  # pragma: no cover - reported at run time
    HAS_NACL = False

from ansible_collections.petra.core.plugins.module_utils.aws.errors import AWSError, aws_errors
from ansible_collections.petra.core.plugins.module_utils.errors import PetraError

COSIGN_PEM_LABELS = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")
COSIGN_SCRYPT_N = (32768, 65536, 131072)
KMS_SCHEME = "awskms://"
_PEM_RE = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)\s*-----END \1-----", re.S)

# curve name -> (hash name for hashlib, KMS signing algorithm)
APPROVED_CURVES = {
    "secp256r1": ("sha256", "ECDSA_SHA_256"),
    "secp384r1": ("sha384", "ECDSA_SHA_384"),
}


class SigningError(PetraError):
    """A key could not be loaded or used, or a signature does not verify."""


def require_crypto():
    if not HAS_CRYPTOGRAPHY:
        raise SigningError("the Python library 'cryptography' is required for signing and verification",
                           hint="Install the collection's requirements.txt on the controller")


def _hash_algorithm(name):
    return hashes.SHA256() if name == "sha256" else hashes.SHA384()


def hash_name_for(public_key, source="the key"):
    """The approved hash for an EC public key; refuses every key type FIPS does not allow here."""
    require_crypto()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise SigningError(
            "%s is a %s key; Petra signs only with ECDSA P-256 or P-384 (FIPS 186-5)" % (
                source, type(public_key).__name__.replace("_", "").replace("PublicKey", "")),
            hint="Create an ECDSA key, e.g. 'cosign generate-key-pair' or "
                 "'openssl ecparam -name prime256v1 -genkey | openssl pkcs8 -topk8 -nocrypt'")
    curve = public_key.curve.name
    if curve not in APPROVED_CURVES:
        raise SigningError("%s uses curve %s; only P-256 (prime256v1) and P-384 (secp384r1) are approved" % (source, curve),
                           hint="Create a P-256 or P-384 key")
    return APPROVED_CURVES[curve][0]


def key_id(public_key):
    """``sha256:<hex>`` of the key's SubjectPublicKeyInfo DER: a stable, printable key identity."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def public_key_pem(public_key):
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


class Signer(abc.ABC):
    """What the bundle writer needs from a key: its hash, its public half, and a signature over a digest."""

    hash_name = "sha256"
    description = "key"

    @abc.abstractmethod
    def public_key(self):
        """The public half, as a cryptography public key."""

    @abc.abstractmethod
    def sign_digest(self, digest):
        """DER ECDSA signature over a precomputed digest of ``hash_name``."""


class PrivateKeySigner(Signer):
    """A private key held in memory (cosign key file or plain PEM)."""

    def __init__(self, private_key, description):
        self._key = private_key
        self.description = description
        self.hash_name = hash_name_for(private_key.public_key(), description)

    def public_key(self):
        return self._key.public_key()

    def sign_digest(self, digest):
        # Deterministic ECDSA (RFC 6979, allowed by FIPS 186-5) keeps bundles and countersignatures reproducible.
        prehashed = asym_utils.Prehashed(_hash_algorithm(self.hash_name))
        try:
            return self._key.sign(digest, ec.ECDSA(prehashed, deterministic_signing=True))
        except UnsupportedAlgorithm:  # an OpenSSL without RFC 6979 (before 3.2): random nonces are as valid
            return self._key.sign(digest, ec.ECDSA(prehashed))


def throwaway_signer(hash_name="sha256"):
    """A key made in memory and never kept: it signs what must be signed to finish something that will not be used
    (a rebuild's content that the bundle it is compared with does not hold)."""
    require_crypto()
    curve = ec.SECP256R1() if hash_name == "sha256" else ec.SECP384R1()
    return PrivateKeySigner(ec.generate_private_key(curve), "a throwaway key")


def _decrypt_cosign(document, password, source):
    if not HAS_NACL:
        raise SigningError("the Python library 'pynacl' is required to open cosign key files",
                           hint="Install the collection's requirements.txt, or use a PEM or awskms:// key")
    try:
        kdf = document["kdf"]
        params = kdf["params"]
        if kdf.get("name") != "scrypt" or document["cipher"].get("name") != "nacl/secretbox":
            raise SigningError("%s uses kdf %r / cipher %r; cosign key files use scrypt and nacl/secretbox" % (
                source, kdf.get("name"), document["cipher"].get("name")))
        n, r, p = int(params["N"]), int(params["r"]), int(params["p"])
        salt = base64.b64decode(kdf["salt"])
        nonce = base64.b64decode(document["cipher"]["nonce"])
        ciphertext = base64.b64decode(document["ciphertext"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SigningError("%s is not a well-formed cosign key file (%s)" % (source, exc),
                           hint="Re-create it with 'cosign generate-key-pair'")
    if n not in COSIGN_SCRYPT_N or r != 8 or p != 1:
        raise SigningError("%s has scrypt parameters N=%d r=%d p=%d, which cosign never writes" % (source, n, r, p),
                           hint="Re-create it with 'cosign generate-key-pair'")
    secret = Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(password.encode("utf-8"))
    try:
        return nacl.secret.SecretBox(secret).decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError:
        raise SigningError("wrong password for the cosign key %s" % source,
                           hint="Give the password the key was created with in signing_key_password")


def _load_der_private_key(der, source):
    try:
        return serialization.load_der_private_key(der, password=None)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SigningError("%s decrypted, but what it holds is not a private key Petra can read (%s)" % (source, exc))


def load_private_key_pem(data, password, source):
    """A private key from cosign-encrypted PEM, PKCS#8 PEM (plain or encrypted) or SEC1 PEM."""
    require_crypto()
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    match = _PEM_RE.search(text)
    if not match:
        raise SigningError("%s holds no PEM block" % source, hint="Give a cosign key file or a PEM EC private key")
    label = match.group(1)
    if label in COSIGN_PEM_LABELS:
        if password is None:
            raise SigningError("the cosign key %s is encrypted and no password was given" % source,
                               hint="Set signing_key_password")
        try:
            document = json.loads(base64.b64decode(match.group(2)))
        except ValueError as exc:
            raise SigningError("%s is not a well-formed cosign key file (%s)" % (source, exc))
        key = _load_der_private_key(_decrypt_cosign(document, password, source), source)
    elif label in ("PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"):
        pem = match.group(0).encode("ascii")
        try:
            key = serialization.load_pem_private_key(
                pem, password=password.encode("utf-8") if (password and label == "ENCRYPTED PRIVATE KEY") else None)
        except TypeError:
            raise SigningError("the PEM key %s is encrypted and no password was given" % source,
                               hint="Set signing_key_password")
        except (ValueError, UnsupportedAlgorithm) as exc:
            if label == "ENCRYPTED PRIVATE KEY":
                raise SigningError("cannot decrypt the PEM key %s: wrong password or unsupported cipher" % source,
                                   hint="Check signing_key_password")
            raise SigningError("%s is not a valid %s: %s" % (source, label, exc))
    elif label == "RSA PRIVATE KEY":
        raise SigningError("%s is an RSA key; Petra signs only with ECDSA P-256 or P-384" % source,
                           hint="Create an ECDSA key, e.g. 'cosign generate-key-pair'")
    else:
        raise SigningError("%s holds a PEM block labelled %r, not a private key" % (source, label),
                           hint="Give a cosign key file or a PEM EC private key")
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        hash_name_for(key.public_key(), source)
    return key


def parse_kms_reference(reference):
    """(endpoint or None, key id) of ``awskms://[ENDPOINT]/KEY`` (key id, alias/NAME, key or alias ARN)."""
    if not reference.startswith(KMS_SCHEME):
        raise SigningError("%r is not an awskms:// reference" % reference)
    rest = reference[len(KMS_SCHEME):]
    endpoint, sep, key = rest.partition("/")
    if not sep or not key:
        raise SigningError("%r names no key" % reference,
                           hint="Write awskms:///KEY-ID, awskms:///alias/NAME or awskms:///arn:aws:kms:REGION:ACCOUNT:key/ID")
    return endpoint or None, key


class KMSSigner(Signer):
    """An asymmetric AWS KMS key; the private half never leaves KMS (``Sign`` with ``MessageType=DIGEST``)."""

    def __init__(self, reference, connection):
        from ansible_collections.petra.core.plugins.module_utils.aws.client import parse_arn
        endpoint, self.key = parse_kms_reference(reference)
        self.description = reference
        region = None
        if self.key.startswith("arn:"):
            region = parse_arn(self.key)["region"] or None
        endpoint_url = ("https://" + endpoint) if endpoint else None
        self._client = connection.client("kms", region=region, endpoint_url=endpoint_url)
        with aws_errors(AWSError, "KMS GetPublicKey for %s" % reference):
            answer = self._client.get_public_key(KeyId=self.key)
        if answer.get("KeyUsage") != "SIGN_VERIFY":
            raise SigningError("KMS key %s has usage %s, not SIGN_VERIFY" % (reference, answer.get("KeyUsage")),
                               hint="Create the key with KeyUsage=SIGN_VERIFY and KeySpec=ECC_NIST_P256")
        self._public = serialization.load_der_public_key(answer["PublicKey"])
        self.hash_name = hash_name_for(self._public, "KMS key %s" % reference)
        self.algorithm = dict(APPROVED_CURVES.values())[self.hash_name]

    def public_key(self):
        return self._public

    def sign_digest(self, digest):
        with aws_errors(AWSError, "KMS Sign with %s" % self.description):
            answer = self._client.sign(KeyId=self.key, Message=digest, MessageType="DIGEST",
                                       SigningAlgorithm=self.algorithm)
        return answer["Signature"]


def key_material(item, what):
    """(PEM bytes, how to name them in messages) for a key given inline as PEM text or as a controller path."""
    if "-----BEGIN" in item:
        return item.encode("ascii", "replace"), "the %s given inline" % what
    path = os.path.expanduser(item)
    try:
        with open(path, "rb") as handle:
            return handle.read(), path
    except OSError as exc:
        raise SigningError("cannot read the %s %s: %s" % (what, path, exc.strerror),
                           hint="Check the path; it is read on the Ansible controller")


def load_signer(signing_key, password=None, aws_connection=None):
    """A Signer for a key path, PEM text, or awskms:// reference."""
    require_crypto()
    if not signing_key:
        raise SigningError("no signing key was given", hint="Set signing_key to a key file or an awskms:// reference")
    if signing_key.startswith(KMS_SCHEME):
        if aws_connection is None:
            raise SigningError("an awskms:// key needs AWS connection settings")
        return KMSSigner(signing_key, aws_connection)
    data, source = key_material(signing_key, "signing key")
    return PrivateKeySigner(load_private_key_pem(data, password, source), source)


def load_public_key(item):
    """A public key from a path or PEM text (``PUBLIC KEY`` SubjectPublicKeyInfo), FIPS-checked."""
    require_crypto()
    data, source = key_material(item, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SigningError("%s is not a PEM public key (%s)" % (source, exc),
                           hint="Give the .pub file that belongs to the signing key, e.g. cosign.pub")
    hash_name_for(key, source)
    return key


def verify_digest(public_key, digest, signature):
    """True when ``signature`` (DER) is a valid ECDSA signature over ``digest`` by ``public_key``."""
    hash_name = hash_name_for(public_key)
    try:
        public_key.verify(signature, digest, ec.ECDSA(asym_utils.Prehashed(_hash_algorithm(hash_name))))
        return True
    except (InvalidSignature, ValueError):
        return False
