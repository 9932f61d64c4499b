#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: petra_verify
short_description: Prove that a Petra bundle is authentic, intact and current
version_added: 0.1.0
description:
  - Checks the signature over the whole bundle file with the given public key(s), then walks the archive and
    checks every entry against the signed metadata, digest and size, with no entry missing, extra, duplicated
    or out of order, no absolute path, no C(..), no links, no devices, no entry larger than declared, and
    well-formed zstd and tar to the very end.
  - "With O(threshold) above 1, also counts the co-signatures beside the bundle (C(<bundle>.sigs.json), added by
    M(petra.core.petra_bundle) with O(petra.core.petra_bundle#module:state=signed)) and requires that many distinct
    keys among O(public_keys) to have signed the same file: the two-person rule. The result says which keys signed."
  - Refuses a bundle past its C(expires) date.
  - With O(trust_state), proves the hash chain of the trust state and refuses a bundle that a load would refuse as a
    rollback or as another build of the version accepted last, without writing anything.
  - With O(trust_state) and O(registry), also reads the trust witness that loads keep in that registry
    (C(<registry>/petra/trust-witness:head)) and refuses a trust state that is behind it or does not hold its head,
    as a load would (reasons C(trust-state-behind), C(trust-state-forked)); RV(trust_state.witness) reports the
    comparison. Without O(registry) only the file is proven, and an older copy of it put back looks valid.
  - Returns a custody record per image (RV(custody)) - source reference, source digest, source signature identity,
    SBOM origin, bundle SHA-256 and signers - and per image where its SBOM came from (RV(images)).
  - "A delta bundle (built with O(petra.core.petra_bundle#module:base)) is verified on its own, like any bundle, and its
    signed delta record is checked for consistency; RV(delta) reports its base and the blobs and bytes it leaves out.
    RV(carried_blobs) lists the blobs this bundle carries, so that the result can be the base of a later delta
    (O(petra.core.petra_bundle#module:base_verification)). With O(trust_state), a delta whose base the trust state
    never accepted is refused (reason C(delta-base-not-accepted)), as a load would."
  - Reads the bundle once as a stream; nothing is extracted, and memory use stays flat.
  - With O(review_html) and/or O(review_json), writes the transfer review sheet (C(docs/review-sheet.md)) gathered in
    the same read - one self-contained HTML page for the person approving the crossing or confirming the arrival, and
    the same data as JSON. A refused bundle gets a sheet too, saying refused and why, and the task still fails.
  - Every failure names the first problem in plain words and what to do; C(reason) carries a short code
    (for example C(wrong-key), C(bad-signature), C(altered), C(unsafe-path), C(entry-type), C(oversized),
    C(truncated), C(threshold), C(expired), C(rollback), C(same-version), C(trust-state-tampered),
    C(trust-state-missing), C(trust-state-behind), C(trust-state-forked)).
  - Changes nothing but the review sheet and the extracted trusted roots; C(changed) is true only when one of those
    files was (or, in check mode, would be) written with new content.
author:
  - Petra maintainers (@petra-maintainers)
options:
  path:
    description:
      - The bundle file on the controller.
    type: path
    required: true
  public_keys:
    description:
      - The public key(s) the bundle may be signed with, each a path to a PEM C(PUBLIC KEY) file (such as
        C(cosign.pub)) or the PEM text itself. The primary signature must be by one of them; O(threshold) says how
        many of them must have signed.
    type: list
    elements: str
    required: true
    aliases: [public_key]
  signature:
    description:
      - The signature file. Defaults to O(path) with C(.sig) appended.
    type: path
  registry:
    description:
      - The registry the bundle is (or will be) loaded into, as C(host[:port]) with an optional path prefix, the same
        value as M(petra.core.petra_bundle)'s O(petra.core.petra_bundle#module:registry). Needs O(trust_state).
      - Only read, for the trust witness; the registry connection options (O(ca_file), O(registry_username), ...) apply.
    type: str
  review_html:
    description:
      - Write the transfer review sheet as one self-contained HTML page (no script, no external resource; it opens
        offline in any browser) to this path on the controller - bundle name, version, SHA-256, size, dates, signers
        and threshold, and per image its source, digest, platforms, size, source signature, SBOM, scan findings and
        custody; charts, manifest sets and files likewise; a size breakdown chart and a verdict banner.
      - Written only when its content changes (the sheet records no time). Also written when the verification fails,
        with the refusal and its reason, so that no earlier sheet can be mistaken for this run; the task still fails.
      - Check mode writes nothing and reports whether it would.
    type: path
  review_json:
    description:
      - Write the same review sheet as JSON (the data the HTML page is made from) to this path on the controller;
        written as O(review_html) is.
    type: path
  extract_trusted_roots:
    description:
      - Write the Sigstore trusted roots the bundle carries (C(sigstore/trusted_root-<12 hex>.json), see RV(trusted_roots))
        into this directory on the controller, each under its entry's base name, in the same read that verifies the
        bundle; the directory is made when missing.
      - Each file is streamed to a temporary file beside its target and takes its name only after the whole bundle
        verified (and the trust state, when given, accepted it); a refused bundle leaves no file. A file that already
        holds exactly the entry is left alone.
      - RV(trusted_roots) then gives each file's C(path), to pass to the platform role (C(platform_verified_bundle),
        or C(platform_trusted_root) with its C(digest)); see docs/platform.md.
      - Check mode writes nothing and reports whether it would.
    type: path
extends_documentation_fragment:
  - petra.core.trust
  - petra.core.registry
  - petra.core.aws
  - petra.core.attributes
  - petra.core.attributes.check_mode
notes:
  - With C(-v), verification reports progress (bytes read, entries checked) every few seconds
    (C($PETRA_PROGRESS_INTERVAL), 5 by default) and when it ends.
  - The C(petra) command runs this module from a shell (C(petra bundle verify), C(petra bundle inspect)); see
    docs/cli.md.
seealso:
  - module: petra.core.petra_bundle
requirements:
  - python >= 3.9
  - cryptography
  - zstandard
  - jsonschema
  - requests (with O(registry))
  - Jinja2 (with O(review_html); Ansible's controller has it)
"""

EXAMPLES = r"""
- name: Verify a bundle that arrived through the cross-domain solution
  petra.core.petra_verify:
    path: /srv/inbox/platform-1.4.0.tar.zst
    public_key: /etc/petra/bundle.pub
  register: verified

- name: Show what it carries
  ansible.builtin.debug:
    msg: "{{ verified.metadata.name }} {{ verified.metadata.version }}: {{ verified.metadata.images | length }} images"

- name: Accept either of two signing keys during a key rotation
  petra.core.petra_verify:
    path: /srv/inbox/platform-1.4.0.tar.zst
    public_key:
      - /etc/petra/bundle-2026.pub
      - /etc/petra/bundle-2027.pub

- name: Two of three key holders must have signed, and the bundle must not roll the platform back
  petra.core.petra_verify:
    path: /srv/inbox/platform-1.4.0.tar.zst
    public_keys:
      - /etc/petra/build.pub
      - /etc/petra/release-manager.pub
      - /etc/petra/security-officer.pub
    threshold: 2
    trust_state: /srv/petra/trust/trust-state.json
  register: verified

- name: The same, also checking the trust state against its witness in the high-side registry
  petra.core.petra_verify:
    path: /srv/inbox/platform-1.4.0.tar.zst
    public_key: /etc/petra/bundle.pub
    trust_state: /srv/petra/trust/trust-state.json
    trust_state_required: true
    registry: registry.high.example:5000/petra
    ca_file: /etc/pki/high-registry-ca.pem

- name: Show who signed
  ansible.builtin.debug:
    msg: "signed by {{ verified.signers | join(', ') }}; a load would be: {{ verified.trust_state.decision.action }}"

- name: Verify and write the transfer review sheet for the data transfer officer
  petra.core.petra_verify:
    path: /srv/outbox/platform-1.4.0.tar.zst
    public_key: /etc/petra/bundle.pub
    review_html: /srv/outbox/platform-1.4.0.review.html
    review_json: /srv/outbox/platform-1.4.0.review.json

- name: Verify, and take out the Sigstore trusted roots for admission (docs/platform.md)
  petra.core.petra_verify:
    path: /srv/inbox/platform-1.4.0.tar.zst
    public_key: /etc/petra/bundle.pub
    extract_trusted_roots: /srv/petra/sigstore
  register: verified_bundle

- name: Describe the bundle the high side holds, for the next delta (passed as petra_bundle base_verification)
  petra.core.petra_verify:
    path: /srv/outbox/platform-1.4.0.tar.zst
    public_key: /etc/petra/bundle.pub
  register: platform_base
"""

RETURN = r"""
verified:
  description: True when every check passed (the task fails otherwise).
  returned: success
  type: bool
  sample: true
key_id:
  description: C(sha256:) of the SubjectPublicKeyInfo of the key whose primary signature verified.
  returned: success
  type: str
signers:
  description:
    - The distinct keys (C(sha256:) key ids) among O(public_keys) with a valid signature over the bundle, the primary
      signer first. Also returned on a C(threshold) failure.
  returned: success
  type: list
  elements: str
signer_details:
  description:
    - Per signer, in RV(signers) order, C(key_id), C(primary) (the primary signature) and C(reproduced) (the
      co-signer rebuilt the bundle from its spec and sources and got the same bytes, a statement signed with the same
      key; M(petra.core.petra_bundle) O(petra.core.petra_bundle#module:rebuild=true)). A reproduction statement that does
      not verify for this file makes the whole co-signature rejected (RV(rejected_signatures)).
  returned: success
  type: list
  elements: dict
  sample: [{"key_id": "sha256:4a1f...", "primary": true, "reproduced": false},
           {"key_id": "sha256:9c02...", "primary": false, "reproduced": true}]
unsigned_keys:
  description: The keys among O(public_keys) with no valid signature over the bundle. Also returned on a C(threshold)
    failure.
  returned: success
  type: list
  elements: str
rejected_signatures:
  description: Co-signatures that were not counted, each with C(keyId) and C(reason) (key not given, made over
    another file, does not verify).
  returned: success
  type: list
  elements: dict
threshold:
  description: The number of distinct signers that was required.
  returned: success
  type: int
cosignatures:
  description: The co-signature file read, or null when there is none or it was not consulted.
  returned: success
  type: str
cosignatures_consulted:
  description:
    - Whether the co-signature file was read. It is read only when O(threshold) is above 1 or O(cosignatures) is
      given; otherwise a C(.sigs.json) beside the bundle is ignored (a stray or damaged one cannot block the
      verification), and RV(signers) holds the primary signer only.
  returned: success
  type: bool
trust_state:
  description: With O(trust_state), the proven trust state and what loading this bundle would do.
  returned: when trust_state is given
  type: dict
  contains:
    path:
      description: The trust state file.
      type: str
    exists:
      description: False when the file does not exist yet (an empty log).
      type: bool
    chain:
      description: Always C(valid) (a broken chain fails the task).
      type: str
    head:
      description: C(entries) (count) and C(hash) (of the last entry); keep the hash elsewhere for O(trust_state_anchor).
      type: dict
    bundles:
      description: For every bundle name, the current C(version), C(sha256) and C(acceptedAt).
      type: dict
    decision:
      description: C(action) (C(new), C(upgrade), C(reload), C(same-version) or C(downgrade)), C(recorded) (whether a load
        would append an entry) and C(current) (the current version of this name, or null).
      type: dict
    witness:
      description: With O(registry), the trust witness there, C(reference), C(status) (C(none) when there is none
        yet, C(equal), or C(ahead) when the trust state extends it) and C(head) (the head it holds, or null).
      type: dict
      returned: when registry is given
custody:
  description:
    - The custody record of the bundle (format in C(docs/bundle-spec.md)). C(bundle) holds name, version, SHA-256,
      signers and threshold. C(images) holds one entry per image with C(source), C(sourceDigest), C(sourceSignature)
      (how the source signature was verified at creation, null for bundles built without it), C(provenance) (the
      SLSA provenance accepted at creation, null when none was required), C(countersignature), C(sbom) (C(origin)
      C(source) or C(petra), C(generator) for Petra's, C(digests) of the manifests holding the SBOMs; null for
      bundles built without an image SBOM), C(bundleSha256), C(signers) and C(target) (null here; a load fills it
      in).
  returned: success
  type: dict
images:
  description:
    - Every image of the bundle with C(ref), C(digest), C(sbom_origin) (C(source) when the image came with its own
      SBOM, C(petra) when Petra generated it with syft and attested it with the bundle key, null when it has none)
      and C(sbom_digests) (the manifests holding its SBOMs, carried with the image and pushed next to it by a load).
  returned: success
  type: list
  elements: dict
  sample: [{"ref": "cgr.dev/chainguard/nginx:1.27", "digest": "sha256:...", "sbom_origin": "petra",
            "sbom_digests": ["sha256:..."]}]
path:
  description: The bundle file.
  returned: success
  type: str
signature:
  description: The signature file used.
  returned: success
  type: str
sha256:
  description: SHA-256 of the bundle file, in hex.
  returned: success
  type: str
size:
  description: Size of the bundle file in bytes.
  returned: success
  type: int
entries_checked:
  description: Number of archive entries checked against the metadata (the metadata itself not counted).
  returned: success
  type: int
bytes_checked:
  description: Uncompressed bytes hashed and checked.
  returned: success
  type: int
duration:
  description: Seconds the verification took.
  returned: success
  type: float
delta:
  description: For a delta bundle, its base (C(name), C(version), C(sha256)), the number (C(omitted_blobs)) and total
    size (C(omitted_bytes)) of the blobs it leaves out, and the C(carriers) of those blobs (the base first); null for
    a full bundle. The complete list is the metadata's C(delta.omitted).
  returned: success
  type: dict
  sample: {"base": {"name": "platform", "version": "1.4.0", "sha256": "9f2c..."}, "omitted_blobs": 41,
           "omitted_bytes": 1873264512, "carriers": [{"name": "platform", "version": "1.4.0", "sha256": "9f2c..."}]}
carried_blobs:
  description: Every blob the bundle carries, as C(digest) and C(size); what a delta built on this bundle from this
    result (O(petra.core.petra_bundle#module:base_verification)) may leave out.
  returned: success
  type: list
  elements: dict
trusted_roots:
  description:
    - The Sigstore trusted roots the bundle carries (those that verified keyless source signatures or provenance at
      build), each with its archive entry C(name) (C(sigstore/trusted_root-<12 hex>.json)), C(digest), C(size),
      C(mediaType), and C(keyless), the identities it verified (C(glob), C(identity), C(issuer), and C(for)
      C(signature) and/or C(provenance)). Empty when nothing was keyless.
    - With O(extract_trusted_roots), also C(path), the file it was written to (in check mode, would be written to).
    - The entry is covered by the bundle signature; give the extracted file to M(petra.core.petra_platform) as
      O(petra.core.petra_platform#module:trusted_root) with its C(digest) as
      O(petra.core.petra_platform#module:trusted_root_digest) (see docs/platform.md).
  returned: success
  type: list
  elements: dict
  sample: [{"name": "sigstore/trusted_root-3f0c1e9a2b7d.json", "digest": "sha256:3f0c1e9a2b7d...", "size": 5121,
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "path": "/srv/petra/sigstore/trusted_root-3f0c1e9a2b7d.json",
            "keyless": [{"glob": "cgr.dev/chainguard/*", "for": ["signature"],
                         "identity": "https://github.com/chainguard-images/images/.github/workflows/release.yaml@refs/heads/main",
                         "issuer": "https://token.actions.githubusercontent.com"}]}]
metadata:
  description: The signed metadata without its entry list.
  returned: success
  type: dict
  contains:
    name:
      description: Bundle name.
      type: str
    version:
      description: Bundle version.
      type: str
    created:
      description: Creation time (UTC).
      type: str
    expires:
      description: Expiry date, or null.
      type: str
    images:
      description: Every image with its original C(ref), C(name), C(tag), C(digest), C(mediaType) and, for indexes,
        the platform C(manifests) carried.
      type: list
      elements: dict
    charts:
      description: Every chart with name, version, digest and size.
      type: list
      elements: dict
    manifests:
      description: Every manifest set with name, digest and size.
      type: list
      elements: dict
    files:
      description: Every file with name, digest and size.
      type: list
      elements: dict
    entry_count:
      description: Number of archive entries listed in the metadata.
      type: int
review:
  description:
    - With O(review_html) or O(review_json), the sheet written - C(html) and C(json) (the paths, or null), C(verdict)
      (C(verified) or C(refused)) and C(changed) (whether a file was, or would be, written). Also returned on failure.
  returned: when review_html or review_json is given
  type: dict
  sample: {"html": "/srv/outbox/platform-1.4.0.review.html", "json": null, "verdict": "verified", "changed": true}
reason:
  description: On failure, a short code for the first problem found.
  returned: failure
  type: str
  sample: altered
"""

from ansible_collections.petra.core.plugins.module_utils.adapters import verify as adapter
from ansible_collections.petra.core.plugins.module_utils.adapters.runner import run_module


def main():
    run_module(adapter)


if __name__ == "__main__":
    main()
