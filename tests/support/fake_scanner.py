"""A stand-in for trivy and grype (tests only): reads the OCI layout it is given, checks every blob, and writes a
report in the scanner's documented JSON format with the findings listed in $FAKE_SCANNER_FINDINGS.

Run as ``fake_scanner.py trivy image --input DIR --format json --output FILE --quiet [args]`` or
``fake_scanner.py grype oci-dir:DIR --output json --file FILE --quiet [args]``. Like an offline trivy without a
database, the trivy mode refuses to run unless ``--skip-db-update`` was passed through.
$FAKE_SCANNER_FINDINGS is a JSON file: {"<config digest or *>": [{"id", "package", "version", "severity",
"fixed"}]}.
"""

import hashlib
import json
import os
import sys


def read_layout(layout):
    with open(os.path.join(layout, "index.json")) as handle:
        index = json.load(handle)
    (descriptor,) = index["manifests"]

    def blob(digest):
        with open(os.path.join(layout, "blobs", "sha256", digest.split(":")[1]), "rb") as handle:
            data = handle.read()
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            sys.exit("blob %s is corrupt" % digest)
        return data

    manifest = json.loads(blob(descriptor["digest"]))
    for layer in manifest["layers"]:
        blob(layer["digest"])
    config = json.loads(blob(manifest["config"]["digest"]))
    return descriptor["digest"], manifest["config"]["digest"], config


def trivy_report(layout, config_digest, config, findings):
    return {
        "SchemaVersion": 2, "CreatedAt": "2026-01-01T00:00:00Z", "ArtifactName": layout, "ArtifactType": "container_image",
        "Metadata": {"OS": {"Family": "debian", "Name": "12.5"}, "ImageID": config_digest, "ImageConfig": config},
        "Results": [{"Target": "%s (debian 12.5)" % layout, "Class": "os-pkgs", "Type": "debian", "Vulnerabilities": [
            {"VulnerabilityID": f["id"], "PkgName": f["package"], "InstalledVersion": f["version"],
             "FixedVersion": f.get("fixed", ""), "Severity": f["severity"].upper(), "Title": "test finding",
             "PrimaryURL": "https://avd.aquasec.com/nvd/%s" % f["id"].lower()} for f in findings]}],
    }


def grype_report(layout, config_digest, findings):
    return {
        "matches": [{
            "vulnerability": {"id": f["id"], "dataSource": "test", "namespace": "debian:distro:debian:12",
                              "severity": f["severity"].capitalize(),
                              "fix": {"versions": [f["fixed"]] if f.get("fixed") else [],
                                      "state": "fixed" if f.get("fixed") else "not-fixed"}},
            "relatedVulnerabilities": [{"id": alias, "namespace": "nvd:cpe"} for alias in f.get("aliases", [])],
            "matchDetails": [{"type": "exact-direct-match", "matcher": "dpkg-matcher"}],
            "artifact": {"id": "x", "name": f["package"], "version": f["version"], "type": "deb",
                         "purl": "pkg:deb/debian/%s@%s" % (f["package"], f["version"])},
        } for f in findings],
        "source": {"type": "image", "target": {"userInput": "oci-dir:" + layout, "imageID": config_digest}},
        "distro": {"name": "debian", "version": "12"},
        "descriptor": {"name": "grype", "version": "0.0.0-test"},
    }


def main(argv):
    scanner = argv[0]
    if scanner == "trivy":
        layout = argv[argv.index("--input") + 1]
        output = argv[argv.index("--output") + 1]
        if "--skip-db-update" not in argv:
            sys.stderr.write("FATAL: cannot download the vulnerability database (no network)\n")
            return 1
    else:
        layout = argv[1][len("oci-dir:"):]
        output = argv[argv.index("--file") + 1]
    _manifest_digest, config_digest, config = read_layout(layout)
    with open(os.environ["FAKE_SCANNER_FINDINGS"]) as handle:
        table = json.load(handle)
    findings = table.get(config_digest, table.get("*", []))
    report = trivy_report(layout, config_digest, config, findings) if scanner == "trivy" else \
        grype_report(layout, config_digest, findings)
    with open(output, "w") as handle:
        json.dump(report, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
