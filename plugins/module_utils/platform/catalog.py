# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""What the platform is made of: the charts, the images (Chainguard FIPS variants where Chainguard offers them,
upstream otherwise), the namespaces, and where the addons put things on a k3s node.

These are the reference versions of ``examples/platform/bundle.yml``; the ``charts`` and ``images`` options of
petra_platform override any of them.
"""

from __future__ import annotations

# Chart name (as in its Chart.yaml) -> where a connected build gets it. An ``oci://`` ref is pulled by petra_bundle
# itself; a chart from an HTTP Helm repository is fetched beforehand (``helm pull <repo>/<name> --version <v>``)
# into ``charts/`` beside the bundle spec and carried from there.
CHARTS = {
    "cilium": {"ref": "oci://quay.io/cilium/charts/cilium", "version": "1.18.4"},
    "flux2": {"ref": "oci://ghcr.io/fluxcd-community/charts/flux2", "version": "2.18.2"},
    "gatekeeper": {"version": "3.21.0"},
    "tetragon": {"version": "1.5.0"},
    "cert-manager": {"version": "v1.18.2"},
    "policy-controller": {"version": "0.10.2"},
}

# Image role -> reference on the connected side. Chainguard publishes its FIPS images in each customer's
# organisation on cgr.dev; give your organisation's references through the ``images`` option.
IMAGES = {
    "cilium-agent": "cgr.dev/chainguard/cilium-agent-fips:1.18.4",
    # The chart appends "-generic" and its suffix to the operator repository: the name must contain "-generic".
    "cilium-operator": "cgr.dev/chainguard/cilium-operator-generic-fips:1.18.4",
    "flux-source-controller": "cgr.dev/chainguard/flux-source-controller-fips:1.8.2",
    "flux-kustomize-controller": "cgr.dev/chainguard/flux-kustomize-controller-fips:1.8.3",
    "flux-helm-controller": "cgr.dev/chainguard/flux-helm-controller-fips:1.5.3",
    "gatekeeper": "cgr.dev/chainguard/gatekeeper-fips:3.21.0",
    "tetragon": "cgr.dev/chainguard/tetragon-fips:1.5.0",
    "tetragon-operator": "cgr.dev/chainguard/tetragon-operator-fips:1.5.0",
    "cert-manager-controller": "cgr.dev/chainguard/cert-manager-controller-fips:1.18.2",
    "cert-manager-webhook": "cgr.dev/chainguard/cert-manager-webhook-fips:1.18.2",
    "cert-manager-cainjector": "cgr.dev/chainguard/cert-manager-cainjector-fips:1.18.2",
    "cert-manager-startupapicheck": "cgr.dev/chainguard/cert-manager-startupapicheck-fips:1.18.2",
    "policy-controller": "cgr.dev/chainguard/sigstore-policy-controller-fips:0.13.0",
    # The -dev variants carry a shell: policy-controller's lease clean-up job and the kube-bench results step run
    # "/bin/sh -c" with kubectl, and kube-bench runs every audit command of the benchmark through /bin/sh.
    "kubectl": "cgr.dev/chainguard/kubectl-fips:1.33.4-dev",
    "kube-bench": "cgr.dev/chainguard/kube-bench-fips:0.14.0-dev",
}
# Moving tags are refused for every image: a bundle must say which build it carries.
MOVING_TAGS = ("latest", "latest-dev")

FLUX_NAMESPACE = "flux-system"
# Where each addon runs. Cilium stays in kube-system, beside CoreDNS, as most tooling expects.
NAMESPACES = {
    "cilium": "kube-system",
    "flux": FLUX_NAMESPACE,
    "gatekeeper": "gatekeeper-system",
    "tetragon": "tetragon",
    "cert-manager": "cert-manager",
    "policy-controller": "cosign-system",
    "kube-bench": "kube-bench",
}
# Kubernetes' own namespaces, which exist in every cluster.
KUBERNETES_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
# System namespaces no workload policy applies to: Kubernetes' own, and every namespace the platform itself creates
# for an addon (the same list the Pod Security admission configuration of petra_flatcar exempts, plus kube-public and
# kube-node-lease). Never a name the platform does not create: whoever may create namespaces could create it and
# escape Pod Security, the admission policies and default deny (Cilium runs in kube-system, not in "cilium").
EXEMPT_NAMESPACES = KUBERNETES_NAMESPACES + ("flux-system", "gatekeeper-system", "tetragon", "cert-manager",
                                             "cosign-system", "kube-bench")

# k3s on the node: what file-integrity monitoring watches and which binaries may read its secrets.
K3S_CONFIG_DIR = "/etc/rancher/k3s/"
K3S_SERVER_STATE = ("/var/lib/rancher/k3s/server/tls/", "/var/lib/rancher/k3s/server/cred/",
                    "/var/lib/rancher/k3s/server/token", "/var/lib/rancher/k3s/server/node-token",
                    "/var/lib/rancher/k3s/server/manifests/")
K3S_AGENT_STATE = ("/var/lib/rancher/k3s/agent/etc/", "/var/lib/rancher/k3s/agent/images/",
                   "/var/lib/rancher/k3s/agent/client-ca.crt", "/var/lib/rancher/k3s/agent/server-ca.crt")
K3S_SECRETS = ("/var/lib/rancher/k3s/server/tls/", "/var/lib/rancher/k3s/server/cred/",
               "/var/lib/rancher/k3s/server/token")
# The k3s binary (petra_flatcar installs /opt/bin/k3s; a sysext puts it under /usr) and the directory it unpacks its
# own tools (containerd, runc, ...) into.
K3S_BINARIES = ("/opt/bin/k3s", "/usr/local/bin/k3s", "/usr/bin/k3s", "/var/lib/rancher/k3s/data/")
