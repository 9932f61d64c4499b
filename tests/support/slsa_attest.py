"""Test-only SLSA provenance attestations, made the way build platforms and cosign make them, independently of the
product: in-toto statements with SLSA v1 and v0.2 predicates, DSSE envelopes signed with a key, cosign's legacy
``.att`` tag (one DSSE envelope per layer), and Sigstore bundles (key-based here; keyless ones come from
tests/support/fake_sigstore.py) pushed as referrers.
"""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.hazmat.primitives import serialization

from ansible_collections.petra.core.tests.support.cosign_signer import (
    BUNDLE_TYPE, OCI_MANIFEST, der_sign, pae, push_referrer)

IN_TOTO = "application/vnd.in-toto+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
V1 = "https://slsa.dev/provenance/v1"
V02 = "https://slsa.dev/provenance/v0.2"
GITHUB_BUILDER = "https://github.com/actions/runner/github-hosted"
GITHUB_BUILD_TYPE = "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1"
GENERATOR = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml" \
            "@refs/tags/v1.10.0"
GENERATOR_BUILD_TYPE = "https://github.com/slsa-framework/slsa-github-generator/container@v1"
COMMIT = "5f3c0b1e8a2d4c6f7a9b0c1d2e3f405162738495"


def statement(digest, predicate_type, predicate, name="image"):
    return json.dumps({"_type": "https://in-toto.io/Statement/v1",
                       "subject": [{"name": name, "digest": {"sha256": digest.split(":")[1]}}],
                       "predicateType": predicate_type, "predicate": predicate}).encode()


def v1(digest, repository, ref, builder=GITHUB_BUILDER, build_type=GITHUB_BUILD_TYPE):
    """A SLSA v1 statement as GitHub Actions writes it (workflow build type): the source in
    externalParameters.workflow and, as git+ URI, in resolvedDependencies."""
    return statement(digest, V1, {
        "buildDefinition": {
            "buildType": build_type,
            "externalParameters": {"workflow": {"ref": ref, "repository": repository,
                                                "path": ".github/workflows/release.yaml"}},
            "internalParameters": {"github": {"event_name": "push"}},
            "resolvedDependencies": [{"uri": "git+%s@%s" % (repository, ref), "digest": {"gitCommit": COMMIT}}]},
        "runDetails": {"builder": {"id": builder}, "metadata": {"invocationId": "%s/actions/runs/1" % repository}}})


def v02(digest, repository, ref, builder=GENERATOR, build_type=GENERATOR_BUILD_TYPE):
    """A SLSA v0.2 statement as the SLSA GitHub generator writes it: the source in invocation.configSource."""
    return statement(digest, V02, {
        "builder": {"id": builder}, "buildType": build_type,
        "invocation": {"configSource": {"uri": "git+%s.git@%s" % (repository, ref), "digest": {"sha1": COMMIT},
                                        "entryPoint": ".github/workflows/release.yaml"},
                       "parameters": {}, "environment": {}},
        "materials": [{"uri": "git+%s@%s" % (repository, ref), "digest": {"sha1": COMMIT}}]})


class Envelope:
    """A DSSE envelope over an in-toto statement, and what a test checks independently (PAE bytes, DER)."""

    def __init__(self, statement_bytes, private_key):
        self.statement = statement_bytes
        self.pae = pae(IN_TOTO, statement_bytes)
        self.der = der_sign(private_key, self.pae)
        self.document = {"payloadType": IN_TOTO, "payload": base64.b64encode(statement_bytes).decode(),
                         "signatures": [{"keyid": "", "sig": base64.b64encode(self.der).decode()}]}

    @property
    def data(self):
        return json.dumps(self.document).encode()


def key_bundle(envelope, private_key):
    """The Sigstore bundle v0.3 cosign v3 writes for ``cosign attest --key``: key hint and the DSSE envelope."""
    spki = private_key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    return json.dumps({"mediaType": BUNDLE_TYPE,
                       "verificationMaterial": {"publicKey": {"hint": base64.b64encode(
                           hashlib.sha256(spki).digest()).decode()}, "tlogEntries": []},
                       "dsseEnvelope": envelope.document}).encode()


def push_att(pusher, repository, digest, envelopes, predicate_types, extra_annotations=None):
    """cosign's legacy ``sha256-<hex>.att`` tag: one layer per DSSE envelope (bytes), annotated with its predicate
    type. Returns (manifest digest, layer descriptors)."""
    layers = []
    for data, predicate_type in zip(envelopes, predicate_types):
        layer = pusher.blob(repository, data)
        layer.update(mediaType=DSSE, annotations=dict({"predicateType": predicate_type}, **(extra_annotations or {})))
        layers.append(layer)
    config = pusher.blob(repository, json.dumps({"rootfs": {"type": "layers", "diff_ids": [
        layer["digest"] for layer in layers]}}).encode())
    config["mediaType"] = "application/vnd.oci.image.config.v1+json"
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config,
                           "layers": layers}).encode()
    return pusher.manifest(repository, "sha256-%s.att" % digest.split(":")[1], manifest, OCI_MANIFEST), layers


def push_bundle(pusher, repository, digest, subject_size, bundle):
    """A Sigstore bundle as one more referrer of the image (others stay listed). Returns its manifest digest."""
    return push_referrer(pusher, repository, digest, subject_size, bundle, append=True)
