"""The bundle SBOM's serial number: derived from the content with SHA-256 (FIPS), never uuid5 (SHA-1), and still
reproducible and valid CycloneDX. The whole SBOM of a real bundle is checked in tests/integration/test_custody.py."""

import hashlib
import json
import uuid

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from ansible_collections.petra.core.plugins.module_utils.custody import sbom

CREATED = "2025-01-02T03:04:05Z"


def files(content_digest):
    return [{"name": "tools", "filename": "tools.tar", "digest": content_digest, "manifestDigest": "sha256:" + "cd" * 32,
             "size": 10240, "source": "files/tools.tar"}]


def serial(document):
    text = json.loads(document)["serialNumber"]
    assert text.startswith("urn:uuid:")
    return uuid.UUID(text[len("urn:uuid:"):])


def test_serial_number_is_sha256_derived_and_reproducible():
    one = sbom.bundle_sbom("platform", "1.2.0", CREATED, [], [], [], files("sha256:" + "ab" * 32))
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(one.decode()) is None
    assert sbom.bundle_sbom("platform", "1.2.0", CREATED, [], [], [], files("sha256:" + "ab" * 32)) == one
    number = serial(one)
    fingerprint = sbom._content_fingerprint([], [], [], files("sha256:" + "ab" * 32))
    wanted = hashlib.sha256(("platform@1.2.0#%s" % fingerprint).encode()).digest()[:16]
    assert number.version == 4 and number.variant == uuid.RFC_4122
    # The SHA-256 prefix, except the 6 version and variant bits.
    assert bytes(a & b for a, b in zip(number.bytes, b"\xff" * 6 + b"\x0f\xff\x3f" + b"\xff" * 7)) == bytes(
        a & b for a, b in zip(wanted, b"\xff" * 6 + b"\x0f\xff\x3f" + b"\xff" * 7))
    other = sbom.bundle_sbom("platform", "1.2.0", CREATED, [], [], [], files("sha256:" + "ef" * 32))
    assert serial(other) != number
