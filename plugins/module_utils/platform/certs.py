# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""cert-manager: the Helm values and the cluster's internal CA issuer. In an air gap there is no ACME: certificates
come from ``petra-ca``, a CA ClusterIssuer whose key is either made in the cluster (a self-signed P-384 root) or an
existing Secret the operator provides (``ca_secret``: tls.crt and tls.key from the site's PKI)."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.platform import catalog
from ansible_collections.petra.core.plugins.module_utils.platform.objects import k8s_object, resources

API = "cert-manager.io/v1"
CA_ISSUER = "petra-ca"
ROOT_SECRET = "petra-root-ca"
BOOTSTRAP_ISSUER = "petra-selfsigned-bootstrap"


def issuers(settings):
    namespace = catalog.NAMESPACES["cert-manager"]
    documents = []
    secret = settings.ca_secret
    if not secret:
        secret = ROOT_SECRET
        documents.append(k8s_object(API, "ClusterIssuer", BOOTSTRAP_ISSUER, labels=settings.labels,
                                    spec={"selfSigned": {}}))
        documents.append(k8s_object(API, "Certificate", ROOT_SECRET, namespace=namespace, labels=settings.labels, spec={
            "isCA": True,
            "commonName": "%s internal CA" % settings.cluster_name,
            "secretName": ROOT_SECRET,
            # FIPS 186-5: ECDSA P-384 (signed with SHA-384).
            "privateKey": {"algorithm": "ECDSA", "size": 384, "rotationPolicy": "Never"},
            "duration": "87600h",
            "renewBefore": "720h",
            "issuerRef": {"name": BOOTSTRAP_ISSUER, "kind": "ClusterIssuer", "group": "cert-manager.io"},
        }))
    documents.append(k8s_object(API, "ClusterIssuer", CA_ISSUER, labels=settings.labels, spec={"ca": {
        "secretName": secret}}))
    return documents


def _image(settings, role):
    return {"repository": settings.image_repository(role), "tag": settings.image_tag(role)}


def values(settings):
    return {
        "crds": {"enabled": True, "keep": True},
        "image": _image(settings, "cert-manager-controller"),
        "resources": resources("10m", "64Mi", "500m", "256Mi"),
        "webhook": {"image": _image(settings, "cert-manager-webhook"),
                    "resources": resources("10m", "32Mi", "250m", "128Mi")},
        "cainjector": {"image": _image(settings, "cert-manager-cainjector"),
                       "resources": resources("10m", "64Mi", "250m", "256Mi")},
        "startupapicheck": {"image": _image(settings, "cert-manager-startupapicheck"),
                            "resources": resources("10m", "32Mi", "100m", "64Mi")},
        # The CA issuer's Secret lives in the chart's namespace, where ClusterIssuers look for it.
        "clusterResourceNamespace": catalog.NAMESPACES["cert-manager"],
    }
