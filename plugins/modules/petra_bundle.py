#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: petra_bundle
short_description: Build a signed, digest-pinned air-gap bundle
version_added: 0.1.0
description:
  - "Builds one deterministic C(tar.zst) archive from a bundle spec (C(kind: Bundle)) holding OCI images,
    Helm charts, manifest sets and files, and signs it."
  - Every image reference is resolved to its manifest digest; indexes keep their platform manifests
    (filtered by C(platforms)); every blob is stored once in an OCI image layout inside the archive,
    with manifest bytes exactly as the registry served them, so no digest changes.
  - Charts are stored as Helm OCI artifacts, manifest directories as Flux OCI artifacts, files as named blobs.
  - The first archive entry, C(petra-bundle.json), records the format version, name, version, creation and
    expiry dates, every image's original reference and digest, every chart, manifest set and file with its
    digest and size, and the digest and size of every other archive entry. See C(docs/bundle-spec.md).
  - The archive is deterministic; the same spec and source content give a byte-identical file
    (sorted entries, fixed times from C(metadata.created) or C(SOURCE_DATE_EPOCH), owner 0, mode 0644).
  - "The signature C(<dest>.sig) is in the cosign C(sign-blob) format, so
    C(cosign verify-blob --key k.pub --signature <dest>.sig <dest>) and
    C(openssl dgst -sha256 -verify k.pub -signature <(base64 -d <dest>.sig) <dest>) accept it."
  - Runs on the controller. Blobs stream from the registry into the archive; memory use stays flat
    whatever the bundle size. The archive and signature are written beside O(dest) and renamed into place,
    so a failure never leaves a partial O(dest) or signature.
author:
  - Petra maintainers (@petra-maintainers)
options:
  state:
    description:
      - V(present) builds the bundle at O(dest), unless O(dest) already holds the bundle these inputs produce.
    type: str
    choices: [present]
    default: present
  spec:
    description:
      - Path of the bundle spec file (YAML) on the controller. Relative paths inside it resolve against its directory.
      - Exactly one of O(spec) and O(definition) is required.
    type: path
  definition:
    description:
      - The bundle spec as a dictionary, instead of O(spec). Relative paths inside it resolve against O(base_dir).
    type: dict
  base_dir:
    description:
      - The directory relative paths in O(definition) resolve against.
      - Defaults to the playbook's directory when run through the action plugin, else the current directory.
    type: path
  dest:
    description:
      - Where to write the bundle (conventionally C(<name>-<version>.tar.zst)). Its directory must exist.
    type: path
    required: true
  signature:
    description:
      - Where to write the signature. Defaults to O(dest) with C(.sig) appended.
    type: path
  compression_level:
    description:
      - The zstd level (1 to 19). The level is recorded in the metadata; changing it rebuilds the bundle.
    type: int
    default: 3
  force:
    description:
      - Rebuild even when O(dest) already holds the same bundle.
    type: bool
    default: false
  mode:
    description:
      - File mode of the bundle and its signature, as an octal string.
    type: raw
    default: '0644'
extends_documentation_fragment:
  - petra.core.registry
  - petra.core.signing_key
  - petra.core.aws
  - petra.core.attributes
  - petra.core.attributes.check_mode
notes:
  - Idempotence compares the metadata the inputs would produce with the metadata of the existing O(dest), and
    checks the existing signature with the signing key. When neither C(metadata.created) nor C(SOURCE_DATE_EPOCH)
    is set, the creation time is the current time and is left out of that comparison.
  - Cosign key files use scrypt and XSalsa20-Poly1305 to protect the key at rest, which FIPS 140 does not cover;
    on FIPS-mode controllers use a PEM key or C(awskms://).
seealso:
  - module: petra.core.petra_verify
requirements:
  - python >= 3.9
  - cryptography
  - zstandard
  - pynacl (for cosign key files)
  - jsonschema
  - PyYAML
  - requests
"""

EXAMPLES = r"""
- name: Build and sign the platform bundle
  petra.core.petra_bundle:
    spec: bundles/platform.yml
    dest: /srv/outbox/platform-1.4.0.tar.zst
    signing_key: /etc/petra/cosign.key
    signing_key_password: "{{ vault_cosign_password }}"

- name: Sign with an AWS KMS key in GovCloud
  petra.core.petra_bundle:
    spec: bundles/platform.yml
    dest: /srv/outbox/platform-1.4.0.tar.zst
    signing_key: awskms:///arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/petra-bundle
    region: us-gov-west-1

- name: Build from an inline definition against a private registry
  petra.core.petra_bundle:
    definition:
      apiVersion: petra.dev/v1alpha1
      kind: Bundle
      metadata:
        name: apps
        version: 2.1.0
        expires: "2027-06-30"
      images:
        - ref: registry.example:5000/team/app:2.1.0
          platforms: [linux/amd64]
      manifests:
        - name: apps
          path: manifests/apps
    dest: /srv/outbox/apps-2.1.0.tar.zst
    signing_key: /etc/petra/bundle.pem
    ca_file: /etc/pki/registry-ca.pem
    registry_username: builder
    registry_password: "{{ vault_registry_password }}"
"""

RETURN = r"""
path:
  description: The bundle file.
  returned: always
  type: str
  sample: /srv/outbox/platform-1.4.0.tar.zst
signature:
  description: The signature file.
  returned: always
  type: str
  sample: /srv/outbox/platform-1.4.0.tar.zst.sig
sha256:
  description: SHA-256 of the bundle file, in hex. Null in check mode when the bundle would be (re)built.
  returned: always
  type: str
  sample: 1133e85afef34efd6883ecd3d0045b0c42c268d83d33ec225096dc823d5ef1ce
size:
  description: Size of the bundle file in bytes. Null in check mode when the bundle would be (re)built.
  returned: always
  type: int
  sample: 301029
key_id:
  description: C(sha256:) of the signing key's SubjectPublicKeyInfo, as recorded in the metadata.
  returned: always
  type: str
name:
  description: The bundle name.
  returned: always
  type: str
version:
  description: The bundle version.
  returned: always
  type: str
created:
  description: The creation time recorded in the bundle (UTC).
  returned: always
  type: str
  sample: "2026-11-23T20:00:00Z"
images:
  description: Every image with the manifest digest it resolved to.
  returned: always
  type: list
  elements: dict
  contains:
    ref:
      description: The reference as written in the spec.
      type: str
    digest:
      description: The manifest (or index) digest carried.
      type: str
charts:
  description: Every chart with its name, version and manifest digest.
  returned: always
  type: list
  elements: dict
manifests:
  description: Every manifest set with its name and artifact manifest digest.
  returned: always
  type: list
  elements: dict
files:
  description: Every file with its name, digest and size.
  returned: always
  type: list
  elements: dict
blob_count:
  description: Number of distinct blobs (manifests, configs, layers, artifacts) in the bundle.
  returned: always
  type: int
content_size:
  description: Total size of the distinct blobs, before compression.
  returned: always
  type: int
duration:
  description: Seconds the task took.
  returned: always
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.petra.core.plugins.module_utils.bundle.options import (
    BUNDLE_ARGUMENT_SPEC,
    BUNDLE_MUTUALLY_EXCLUSIVE,
    BUNDLE_REQUIRED_ONE_OF,
)
from ansible_collections.petra.core.plugins.module_utils.bundle.tasks import run_create
from ansible_collections.petra.core.plugins.module_utils.errors import PetraError


def main():
    module = AnsibleModule(
        argument_spec=BUNDLE_ARGUMENT_SPEC,
        mutually_exclusive=BUNDLE_MUTUALLY_EXCLUSIVE,
        required_one_of=BUNDLE_REQUIRED_ONE_OF,
        supports_check_mode=True,
    )
    try:
        result = run_create(module.params, module.check_mode)
    except PetraError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
