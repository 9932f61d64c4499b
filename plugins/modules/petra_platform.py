#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: petra_platform
short_description: Render the platform layer of a Petra cluster - Flux-managed addons and the policy set
version_added: 0.1.0
description:
  - "With O(state=rendered), writes the platform as a directory tree under O(dest): C(bootstrap/) for the k3s
    auto-deploy directory (namespaces, the bundle public key, k3s C(HelmChart) objects for Cilium and Flux, and the
    Flux C(OCIRepository), C(HelmRelease) and C(Kustomization) objects of every other addon), one directory per Flux
    manifest set, and C(bundle.yml), the M(petra.core.petra_bundle) spec that carries all of it with every chart and
    image across the air gap."
  - Everything points at the high-side registry O(registry), where M(petra.core.petra_bundle) with
    O(petra.core.petra_bundle#module:state=loaded) puts the bundle's content, under the same names. Every
    C(OCIRepository) is pinned to one version and verified with cosign and the bundle public key
    (C(spec.verify.secretRef) names the Secret C(petra-bundle-key)); the load step pins them to digests.
  - "Policies: a default-deny C(CiliumClusterwideNetworkPolicy) for workload namespaces with DNS allowed, plus
    allow-lists; Gatekeeper ConstraintTemplates (Rego shipped in the collection) and Constraints refusing privileged
    containers, images from other registries, containers without CPU and memory limits, and objects without the
    required labels, with system namespaces exempt; Tetragon C(TracingPolicy) objects for program execution, file
    integrity of C(/etc) and k3s state, and kernel module loads; a cert-manager internal CA C(ClusterIssuer) (no
    ACME); a Sigstore policy-controller C(ClusterImagePolicy) requiring the bundle key's signature on every image of
    O(registry) in the opted-in namespaces; a kube-bench C(CronJob) running the k3s CIS benchmark."
  - The output is deterministic. Only files whose bytes differ are rewritten (each atomically); files an earlier
    render wrote that are no longer part of the platform are removed. C(changed) says whether anything was (or, in
    check mode, would be) written or removed.
  - Validate the tree with M(petra.core.petra_manifests) before building the bundle; the M(petra.core.platform) role
    does both.
author:
  - Petra maintainers (@petra-maintainers)
options:
  state:
    description:
      - V(rendered) writes the tree.
    type: str
    choices: [rendered]
    default: rendered
  dest:
    description:
      - The directory to write the tree into, on the controller. Created when missing.
    type: path
    required: true
  registry:
    description:
      - The high-side registry, C(host[:port][/prefix]), as given to M(petra.core.petra_bundle) for the load.
    type: str
    required: true
  public_key:
    description:
      - The bundle public key (the signer's C(.pub) file, or the PEM text), ECDSA P-256. It goes into the
        Secret Flux verifies with and into the C(ClusterImagePolicy).
      - A P-384 key is refused - Flux verifies cosign signatures with SHA-256 only, and Petra signs with SHA-384 for
        P-384 keys, so every C(OCIRepository) would fail. Sign the platform bundle with a P-256 key.
    type: str
    required: true
  cluster_name:
    description:
      - The cluster's name (a DNS label); it labels every object and names the internal CA.
    type: str
    required: true
  bundle_name:
    description:
      - The name of the platform bundle; manifest sets load to C(<registry>/manifests/<bundle_name>/<set>).
    type: str
    default: platform
  bundle_version:
    description:
      - The version of the platform bundle (a semantic version); Flux pins manifest sets to it.
    type: str
    default: 1.0.0
  allowed_registries:
    description:
      - The registries (C(host[:port][/path])) images may come from. Defaults to O(registry) alone.
    type: list
    elements: str
    default: []
  required_labels:
    description:
      - Labels pods and workloads must carry. An empty list renders no required-labels policy.
    type: list
    elements: dict
    default: [{key: app.kubernetes.io/name}]
    suboptions:
      key:
        description: The label key.
        type: str
        required: true
      allowed_regex:
        description: A regular expression the label's value must match.
        type: str
  exempt_namespaces:
    description:
      - Namespaces no workload policy applies to (a trailing C(*) matches a prefix in the admission policies).
        Defaults to the Kubernetes and platform namespaces (C(kube-system), C(kube-public), C(kube-node-lease),
        C(flux-system), C(gatekeeper-system), C(tetragon), C(cert-manager), C(cosign-system), C(kube-bench)).
      - Name only namespaces that exist. An exempt name nobody has created yet lets whoever may create namespaces
        escape every policy.
      - Gatekeeper's webhook fails closed and is not called for the exempt namespaces named exactly, so the cluster
        can recover while Gatekeeper is down.
    type: list
    elements: str
  signed_namespaces:
    description:
      - Workload namespaces opted in to signature verification by policy-controller (rendered with the label
        C(policy.sigstore.dev/include=true); Flux never prunes them).
      - The default is none, so the C(ClusterImagePolicy) enforces nowhere until namespaces opt in (by this
        list, or labelled as they are created).
    type: list
    elements: str
    default: []
  kube_proxy_replacement:
    description:
      - Let Cilium replace kube-proxy (start k3s with C(disable-kube-proxy)); needs O(api_server_host).
    type: bool
    default: false
  api_server_host:
    description:
      - The API server address Cilium uses without kube-proxy.
    type: str
  api_server_port:
    description:
      - The API server port Cilium uses without kube-proxy.
    type: int
    default: 6443
  images:
    description:
      - Image references (with a tag) that replace the reference ones, by role (C(cilium-agent), C(cilium-operator),
        C(flux-source-controller), C(flux-kustomize-controller), C(flux-helm-controller), C(gatekeeper),
        C(tetragon), C(tetragon-operator), C(cert-manager-controller), C(cert-manager-webhook),
        C(cert-manager-cainjector), C(cert-manager-startupapicheck), C(policy-controller), C(kubectl),
        C(kube-bench)), for example your organisation's Chainguard FIPS images.
      - Every tag must name a version; C(latest) and C(latest-dev) are refused. C(kubectl) and C(kube-bench) need a
        shell (Chainguard's C(-dev) variants).
    type: dict
    default: {}
  charts:
    description:
      - "Chart versions and sources that replace the reference ones, by chart name (C(cilium), C(flux2),
        C(gatekeeper), C(tetragon), C(cert-manager), C(policy-controller)), each C({version, ref}) where C(ref) is
        an C(oci://) source (without it the chart is a packaged C(charts/<name>-<version>.tgz))."
    type: dict
    default: {}
  image_platforms:
    description:
      - The platforms the bundle carries of each image.
    type: list
    elements: str
    default: [linux/amd64]
  registry_ca:
    description:
      - PEM of the high-side registry's CA, for Flux (Secret C(petra-registry-ca)), the k3s Helm jobs (ConfigMap
        C(petra-registry-ca) in kube-system) and policy-controller (ConfigMap C(petra-registry-ca) in cosign-system,
        the chart's C(webhook.registryCaBundle)).
    type: str
  registry_pull_secret:
    description:
      - Name of a C(kubernetes.io/dockerconfigjson) Secret (in flux-system, kube-system and cosign-system) with
        credentials for O(registry). The credentials themselves are never rendered.
    type: str
  ca_secret:
    description:
      - An existing Secret in cert-manager's namespace (C(tls.crt), C(tls.key)) from the site's PKI for the
        internal CA. Without it, the cluster makes its own P-384 root.
    type: str
  network_allow:
    description:
      - "More allow-lists, each C({name, description, spec}) with a C(CiliumClusterwideNetworkPolicy) spec."
    type: list
    elements: dict
    default: []
  helm_values:
    description:
      - Values merged over the rendered ones, by chart name.
    type: dict
    default: {}
  kube_bench_schedule:
    description:
      - When kube-bench runs (cron syntax).
    type: str
    default: 0 3 * * *
  kube_bench_benchmark:
    description:
      - The kube-bench benchmark (the k3s ones are C(k3s-cis-1.7), C(k3s-cis-1.8), C(k3s-cis-1.23), C(k3s-cis-1.24)).
    type: str
    default: k3s-cis-1.8
  flux_interval:
    description:
      - How often Flux reconciles the platform's sources, releases and kustomizations.
    type: str
    default: 10m
  trusted_root:
    description:
      - The Sigstore C(trusted_root.json) the bundle was built with (the file given to the keyless C(verify_images)
        rules of M(petra.core.petra_bundle); the bundle carries it as C(sigstore/trusted_root-<12 hex>.json) and
        M(petra.core.petra_verify) returns it in C(trusted_roots)).
      - Rendered as the policy-controller C(TrustRoot) C(petra-sigstore) (its C(sigstoreKeys), inline, so nothing is
        fetched), which the O(keyless) policies refer to. Read on the controller. Goes with O(keyless).
    type: path
  trusted_root_digest:
    description:
      - C(sha256:<hex>) the O(trusted_root) file must have, e.g. the C(digest) M(petra.core.petra_verify) returned
        for it; a different file is refused. Required with O(trusted_root), so that only a file a verified bundle
        carried becomes the cluster's C(TrustRoot).
    type: str
  keyless:
    description:
      - Keyless signatures to require at admission, in addition to the bundle key's countersignature, with one
        C(ClusterImagePolicy) C(petra-keyless-<name>) per item, requiring a Sigstore bundle signature whose
        certificate chains to a CA of O(trusted_root) and names the identity and issuer, with its Rekor entry
        checked offline against the trusted root's log keys.
      - Policy-controller checks them in the namespaces opted in to it (O(signed_namespaces)).
    type: list
    elements: dict
    default: []
    suboptions:
      glob:
        description:
          - The images, as the C(verify_images) glob that verified them at build (C(cgr.dev/chainguard/*)), with
            the registry host written out and C(*) matching across C(/). The policy is written for where the load
            puts them, C(<registry>/<source host>/<path>), with C(**).
        type: str
        required: true
      name:
        description: The policy's name suffix (lowercase letters, digits, C(-)); default the item's index.
        type: str
      identity:
        description: The certificate identity (subject) exactly, e.g. Chainguard's release workflow.
        type: str
      identity_regexp:
        description: A regular expression the certificate identity must match, instead of O(keyless[].identity). Go
          RE2 syntax, as policy-controller compiles it; lookarounds, backreferences, atomic groups, conditionals and
          possessive quantifiers are refused.
        type: str
      issuer:
        description: The OIDC issuer exactly, e.g. C(https://token.actions.githubusercontent.com).
        type: str
      issuer_regexp:
        description: A regular expression the OIDC issuer must match, instead of O(keyless[].issuer); RE2 syntax,
          as O(keyless[].identity_regexp).
        type: str
extends_documentation_fragment:
  - petra.core.attributes
  - petra.core.attributes.check_mode
seealso:
  - module: petra.core.petra_manifests
  - module: petra.core.petra_bundle
  - module: petra.core.petra_flatcar
requirements:
  - python >= 3.9
  - cryptography
  - PyYAML
"""

EXAMPLES = r"""
- name: Render the platform for the high side
  petra.core.petra_platform:
    dest: /srv/petra/platform
    registry: registry.high.example:5000/petra
    public_key: /etc/petra/bundle.pub
    cluster_name: alpha
    bundle_version: 1.4.0
    signed_namespaces: [payments]
    required_labels:
      - key: app.kubernetes.io/name
      - key: team
        allowed_regex: "^[a-z][a-z0-9-]*$"
  register: platform

- name: Also require Chainguard's keyless release signatures at admission
  petra.core.petra_platform:
    dest: /srv/petra/platform
    registry: registry.high.example:5000/petra
    public_key: /etc/petra/bundle.pub
    cluster_name: alpha
    signed_namespaces: [payments]
    trusted_root: /etc/petra/sigstore/trusted_root.json   # the file verify_images used
    keyless:
      - name: chainguard
        glob: cgr.dev/chainguard/*
        identity: https://github.com/chainguard-images/images/.github/workflows/release.yaml@refs/heads/main
        issuer: https://token.actions.githubusercontent.com

- name: Give the bootstrap to the first server's Ignition config
  petra.core.petra_flatcar:
    node_role: server
    cluster_init: true
    token: "{{ vault_k3s_token }}"
    k3s: "{{ k3s_artifact }}"
    manifests: "{{ platform.bootstrap_manifests }}"
"""

RETURN = r"""
dest:
  description: The directory written.
  returned: always
  type: str
files:
  description: Every file of the tree, with its SHA-256 and whether it was (or would be) written.
  returned: always
  type: list
  elements: dict
  sample: [{path: bootstrap/00-base.yaml, sha256: 3f2a..., changed: false}]
removed:
  description: Files of an earlier render that were (or would be) removed.
  returned: always
  type: list
  elements: str
bundle_spec:
  description: The petra_bundle spec of the platform.
  returned: always
  type: str
manifest_sets:
  description: The directories carried as manifest sets (C(bootstrap) first applied by k3s, the others by Flux).
  returned: always
  type: list
  elements: str
bootstrap_manifests:
  description: The bootstrap files as C({name, content}), ready for O(petra.core.petra_flatcar#module:manifests).
  returned: always
  type: list
  elements: dict
images:
  description: Each image role and the high-side reference the platform uses for it.
  returned: always
  type: dict
public_key_id:
  description: C(sha256:<hex>) of the bundle public key's SubjectPublicKeyInfo.
  returned: always
  type: str
trusted_root_digest:
  description: C(sha256:<hex>) of the O(trusted_root) file rendered as the C(TrustRoot); null without one.
  returned: always
  type: str
"""

from ansible_collections.petra.core.plugins.module_utils.adapters import platform as adapter
from ansible_collections.petra.core.plugins.module_utils.adapters.runner import run_module


def main():
    run_module(adapter)


if __name__ == "__main__":
    main()
