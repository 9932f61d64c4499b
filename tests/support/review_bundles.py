"""A hand-made, validly signed bundle for the review sheet: an image with a platform, a carried CycloneDX SBOM with
licences, a scan summary, a chart and a file, and markup in every name, licence and annotation the sheet shows."""

from __future__ import annotations

import gzip
import hashlib
import json

from cryptography.hazmat.primitives import serialization

from ansible_collections.petra.core.plugins.module_utils.signing.keys import key_id
from ansible_collections.petra.core.tests.support import craft, pki

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SCRIPT = "<script>alert('petra')</script>"
IMG = "<img src=x onerror=alert(1)>"
HOSTILE_REF = "evil.example/team/app" + SCRIPT + ":1.0"


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type, data):
    return {"mediaType": media_type, "digest": digest(data), "size": len(data)}


def manifest(config, layers, media_type=OCI_MANIFEST):
    return json.dumps({"schemaVersion": 2, "mediaType": media_type, "config": config, "layers": layers},
                      sort_keys=True).encode()


class Crafted:
    """Paths and the values a test checks."""


def hostile_bundle(directory):
    """Write ``directory/hostile.tar.zst`` (+ .sig) and its public key; returns a Crafted."""
    key_path = str(directory / "hostile.pem")
    pub_path = pki.write_ec_key(key_path)
    with open(key_path, "rb") as handle:
        private = serialization.load_pem_private_key(handle.read(), None)
    blobs = []

    def blob(data):
        blobs.append(data)
        return data

    # The image: a config naming its platform, one gzip layer.
    config = blob(json.dumps({"architecture": "amd64", "os": "linux" + SCRIPT,
                              "rootfs": {"type": "layers", "diff_ids": []}}).encode())
    layer = blob(gzip.compress(b"layer content " * 4000, mtime=0))
    image = blob(manifest(descriptor("application/vnd.oci.image.config.v1+json", config),
                          [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer)]))
    # A CycloneDX SBOM carried with the image (a cosign .sbom tag): three components, one nested, markup in licences.
    carried = blob(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": [
        {"name": "openssl", "licenses": [{"license": {"id": "Apache-2.0"}}]},
        {"name": "busybox" + SCRIPT, "licenses": [{"license": {"name": SCRIPT}}], "components": [
            {"name": "ash", "licenses": [{"expression": "GPL-2.0-only OR " + IMG}]}]}]}).encode())
    empty = blob(b"{}")
    sbom_manifest = blob(manifest(descriptor("application/vnd.oci.image.config.v1+json", empty),
                                  [descriptor("application/vnd.cyclonedx+json", carried)]))
    # A chart and a file, as petra_bundle packs them.
    chart_layer = blob(gzip.compress(b"chart", mtime=0))
    chart = blob(manifest(descriptor("application/vnd.cncf.helm.config.v1+json", empty),
                          [descriptor("application/vnd.cncf.helm.chart.content.v1.tar+gzip", chart_layer)]))
    file_data = blob(b"\x7fELF" + b"\0" * 5000)
    file_manifest = blob(manifest(descriptor("application/vnd.oci.empty.v1+json", empty),
                                  [descriptor("application/octet-stream", file_data)]))
    image_ref = HOSTILE_REF
    bundle_sbom = json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": [
        {"bom-ref": "image:" + image_ref, "name": image_ref, "licenses": [{"license": {"id": "MIT" + IMG}}]},
        {"bom-ref": "file:tools" + SCRIPT, "name": "tools"}]}).encode()
    report = json.dumps({"SchemaVersion": 2, "Results": []}).encode()
    report_name = "reports/trivy/%s.json" % digest(image).split(":")[1]
    named = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("sbom.cdx.json", bundle_sbom), (report_name, report)]
    unique = {}
    for data in blobs:
        unique[digest(data)] = data
    entries = named + [("blobs/sha256/" + name.split(":")[1], unique[name]) for name in sorted(unique)]
    metadata = craft.metadata_for(entries, name="platform" + SCRIPT, version="1.0.0" + IMG,
                                  key_id=key_id(private.public_key()), expires="2099-12-31")
    metadata["images"] = [{
        "ref": image_ref, "name": "evil.example/team/app" + SCRIPT, "tag": "1.0", "digest": digest(image),
        "mediaType": OCI_MANIFEST,
        "attached": [{"kind": "sbom", "digest": digest(sbom_manifest), "mediaType": OCI_MANIFEST,
                      "tag": "sha256-x.sbom" + SCRIPT}],
        "sourceVerification": {"rule": "evil.example/*" + SCRIPT, "method": "keyless", "identity": IMG,
                               "issuer": "https://issuer.example/" + SCRIPT, "format": "legacy-tag",
                               "dockerReference": "</td></tr></table>" + SCRIPT, "dockerReferenceMatch": "repository",
                               "verifiedAt": "2026-01-01T00:00:00Z"},
    }]
    metadata["charts"] = [{"name": "chart" + SCRIPT, "version": "1.0.0", "digest": digest(chart), "size": len(chart),
                           "source": "charts/" + IMG, "chartDigest": digest(chart_layer)}]
    metadata["files"] = [{"name": "tools" + SCRIPT, "filename": "</td><td>" + SCRIPT, "digest": digest(file_data),
                          "size": len(file_data), "manifestDigest": digest(file_manifest),
                          "source": "<style>body{display:none}</style>"}]
    metadata["sbom"] = {"name": "sbom.cdx.json", "digest": digest(bundle_sbom)}
    metadata["scan"] = {"scanner": "trivy", "failOn": "critical", "reports": [{
        "image": image_ref, "manifest": digest(image), "platform": "linux/amd64" + SCRIPT, "entry": report_name,
        "digest": digest(report), "findings": {"high": 2, "critical": 1, "low": 3}, "ignored": 1}]}
    path = str(directory / "hostile.tar.zst")
    craft.write_archive(path, [("petra-bundle.json", craft.metadata_bytes(metadata))] + entries)
    craft.sign_file(path, private)
    crafted = Crafted()
    crafted.path, crafted.pub, crafted.image_ref = path, pub_path, image_ref
    # Each item's blobs; the empty config is shared by all three (counted once, under the image, in the breakdown).
    crafted.sizes = {"image": len(image) + len(config) + len(layer) + len(sbom_manifest) + len(carried) + len(empty),
                     "chart": len(chart) + len(chart_layer) + len(empty),
                     "file": len(file_manifest) + len(file_data) + len(empty)}
    crafted.shared = len(empty)
    crafted.total = sum(len(data) for _name, data in entries)
    return crafted
