# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Sigstore policy-controller: the Helm values, the ClusterImagePolicy that requires a signature by the bundle key on
every image of the high-side registry, and the namespaces opted in to it.

policy-controller acts only in namespaces labelled ``policy.sigstore.dev/include=true``. The key is checked offline
(no ``ctlog``: no transparency log in an air gap). Images that no policy matches are refused (``no-match-policy:
deny``), a second line behind Gatekeeper's registry allow-list.
"""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.platform.flux import REGISTRY_CA
from ansible_collections.petra.core.plugins.module_utils.platform.objects import k8s_object, resources

API = "policy.sigstore.dev/v1beta1"
POLICY_NAME = "petra-bundle-signed"
INCLUDE_LABEL = "policy.sigstore.dev/include"


def cluster_image_policy(settings):
    return k8s_object(API, "ClusterImagePolicy", POLICY_NAME, labels=settings.labels, spec={
        "images": [{"glob": settings.registry_glob}],
        "authorities": [{"name": "petra-bundle-key",
                         "key": {"data": settings.public_key_pem, "hashAlgorithm": settings.hash_name}}],
        "mode": "enforce",
    })


def namespaces(settings):
    """The opted-in namespaces; Flux never prunes them, so removing one from the list does not delete workloads."""
    return [k8s_object("v1", "Namespace", name, labels=dict(settings.labels, **{INCLUDE_LABEL: "true"}),
                       annotations={"kustomize.toolkit.fluxcd.io/prune": "disabled"})
            for name in settings.signed_namespaces]


def values(settings):
    """The chart's values. policy-controller fetches signatures from the high-side registry itself: with a private
    CA it trusts the registry CA (``webhook.registryCaBundle``, the ConfigMap ``petra-registry-ca`` in its own
    namespace, added to its system roots), and with a pull secret its pods use it (the Secret must exist in its
    namespace; for signature lookups it also uses the workloads' own pull secrets)."""
    webhook = {
        "image": {"repository": settings.image_repository("policy-controller"),
                  "version": settings.image_tag("policy-controller")},
        "configData": {"no-match-policy": "deny"},
        "resources": resources("100m", "128Mi", "500m", "512Mi"),
    }
    if settings.registry_ca:
        webhook["registryCaBundle"] = {"name": REGISTRY_CA, "key": "ca.crt"}
    result = {
        "webhook": webhook,
        "leasescleanup": {"image": {"repository": settings.image_repository("kubectl"),
                                    "version": settings.image_tag("kubectl")}},
    }
    if settings.registry_pull_secret:
        result["imagePullSecrets"] = [{"name": settings.registry_pull_secret}]
    return result
