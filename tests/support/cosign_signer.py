"""A test-only cosign-format signer: legacy ``.sig`` tags, v3 Sigstore-bundle referrers, ``.sbom`` tags.

Written independently of the product (plain HTTP with requests), following the formats in
the published cosign formats (docs/custody.md), so that product reads are checked against another implementation.
The registry here (CNCF distribution 2.8) has no referrers API: referrers are listed in the referrers tag
schema index ``sha256-<hex>``, as cosign does on such registries.
"""

from __future__ import annotations

import base64
import hashlib
import json

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY = b"{}"
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Pusher:
    """Blobs and manifests into one registry with basic auth and the test CA."""

    def __init__(self, registry, creds):
        self.base = "https://%s/v2/" % registry.host
        self.session = requests.Session()
        self.session.auth = creds
        self.ca = registry.tls["ca.pem"]  # per request: a session-level value loses to REQUESTS_CA_BUNDLE

    def blob(self, repository, data):
        start = self.session.post(self.base + repository + "/blobs/uploads/", timeout=30, verify=self.ca)
        assert start.status_code == 202, start.text
        location = requests.compat.urljoin(self.base, start.headers["Location"])
        done = self.session.put(location, params={"digest": sha(data)}, data=data,
                                headers={"Content-Type": "application/octet-stream"}, timeout=30, verify=self.ca)
        assert done.status_code == 201, done.text
        return {"digest": sha(data), "size": len(data)}

    def manifest(self, repository, reference, data, media_type):
        done = self.session.put(self.base + "%s/manifests/%s" % (repository, reference), data=data,
                                headers={"Content-Type": media_type}, timeout=30, verify=self.ca)
        assert done.status_code == 201, done.text
        return sha(data)

    def get_manifest(self, repository, reference):
        response = self.session.get(self.base + "%s/manifests/%s" % (repository, reference), timeout=30, verify=self.ca,
                                    headers={"Accept": OCI_INDEX + ", " + OCI_MANIFEST})
        return response.content if response.status_code == 200 else None


class MemoryBlobs:
    """Stands in for a RegistryClient's read_blob, for verdicts checked without a registry."""

    def __init__(self):
        self.data = {}

    def add(self, data):
        """Keep ``data``; returns its descriptor (digest, size)."""
        self.data[sha(data)] = data
        return {"digest": sha(data), "size": len(data)}

    def read_blob(self, repository, digest, size, limit):
        assert size <= limit
        return self.data[digest]


def der_sign(private_key, data):
    return private_key.sign(data, ec.ECDSA(hashes.SHA256()))


def payload_for(repository_name, digest):
    return json.dumps({"critical": {"identity": {"docker-reference": repository_name},
                                    "image": {"docker-manifest-digest": digest},
                                    "type": "cosign container image signature"}, "optional": None}).encode()


def _tag(digest, suffix=""):
    return "sha256-%s%s" % (digest.split(":")[1], suffix)


def _manifest(config, layers, **extra):
    document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
    document.update(extra)
    document["config"] = config
    document["layers"] = layers
    return json.dumps(document).encode()


def sign_legacy(pusher, repository, repository_name, digest, sign, payload=None, extra_annotations=None):
    """A ``.sig`` tag holding one simple-signing layer; ``sign(payload) -> DER``. Returns (payload, DER)."""
    payload = payload if payload is not None else payload_for(repository_name, digest)
    der = sign(payload)
    layer = pusher.blob(repository, payload)
    layer.update(mediaType="application/vnd.dev.cosign.simplesigning.v1+json",
                 annotations=dict({"dev.cosignproject.cosign/signature": base64.b64encode(der).decode()},
                                  **(extra_annotations or {})))
    config = pusher.blob(repository, json.dumps({"rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())
    config["mediaType"] = "application/vnd.oci.image.config.v1+json"
    pusher.manifest(repository, _tag(digest, ".sig"), _manifest(config, [layer]), OCI_MANIFEST)
    return payload, der


def attach_sbom(pusher, repository, digest, document):
    """A cosign ``.sbom`` tag with a CycloneDX document; returns its manifest digest."""
    layer = pusher.blob(repository, document)
    layer["mediaType"] = "application/vnd.cyclonedx+json"
    config = pusher.blob(repository, EMPTY)
    config["mediaType"] = "application/vnd.oci.image.config.v1+json"
    return pusher.manifest(repository, _tag(digest, ".sbom"), _manifest(config, [layer]), OCI_MANIFEST)


def pae(payload_type, payload):
    return b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(payload), payload)


def statement_for(repository_name, digest):
    """The in-toto statement cosign v3 signs for an image: its subject is the image digest."""
    return json.dumps({"_type": "https://in-toto.io/Statement/v1",
                       "subject": [{"name": repository_name, "digest": {"sha256": digest.split(":")[1]}}],
                       "predicateType": "https://sigstore.dev/cosign/sign/v1", "predicate": {}}).encode()


def sign_referrer(pusher, repository, repository_name, digest, subject_size, private_key):
    """A cosign v3 signature: a Sigstore bundle (DSSE over an in-toto statement) as an OCI 1.1 referrer, listed
    in the referrers tag schema index. Returns (PAE bytes, DER signature, referrer manifest digest)."""
    statement = statement_for(repository_name, digest)
    message = pae("application/vnd.in-toto+json", statement)
    der = der_sign(private_key, message)
    spki = private_key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    bundle = json.dumps({
        "mediaType": BUNDLE_TYPE,
        "verificationMaterial": {"publicKey": {"hint": base64.b64encode(hashlib.sha256(spki).digest()).decode()},
                                 "tlogEntries": []},
        "dsseEnvelope": {"payload": base64.b64encode(statement).decode(), "payloadType": "application/vnd.in-toto+json",
                         "signatures": [{"sig": base64.b64encode(der).decode(), "keyid": ""}]},
    }).encode()
    return message, der, push_referrer(pusher, repository, digest, subject_size, bundle)


def push_referrer(pusher, repository, digest, subject_size, bundle, append=False):
    """Push Sigstore bundle bytes as cosign v3 does: an OCI 1.1 referrer of the image, listed in the referrers tag
    schema index (which then lists only it, or, with ``append``, the referrers it listed and it). Returns the referrer
    manifest digest."""
    layer = pusher.blob(repository, bundle)
    layer["mediaType"] = BUNDLE_TYPE
    config = pusher.blob(repository, EMPTY)
    config["mediaType"] = "application/vnd.oci.empty.v1+json"
    manifest = _manifest(config, [layer], artifactType=BUNDLE_TYPE,
                         subject={"mediaType": OCI_MANIFEST, "digest": digest, "size": subject_size})
    manifest_digest = pusher.manifest(repository, sha(manifest), manifest, OCI_MANIFEST)
    listed = []
    if append:
        current = pusher.get_manifest(repository, _tag(digest))
        listed = json.loads(current)["manifests"] if current else []
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed + [
        {"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest), "artifactType": BUNDLE_TYPE}]}
    pusher.manifest(repository, _tag(digest), json.dumps(index).encode(), OCI_INDEX)
    return manifest_digest
