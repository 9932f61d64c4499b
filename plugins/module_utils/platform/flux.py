# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The bootstrap (what k3s applies from its auto-deploy directory) and the Flux objects that manage the rest.

Cilium and Flux come first, from k3s HelmChart objects: no pod has a network before the CNI runs, Flux included, and
Flux cannot install itself. Both charts come from the high-side registry at pinned versions. Everything after them
is Flux's: an ``OCIRepository`` per chart and manifest set, each verified with the bundle key (``spec.verify``,
cosign, the key in the Secret ``petra-bundle-key``), and the ``HelmRelease`` (``chartRef``) or ``Kustomization``
that uses it. The OCIRepositories carry the names the load step gives them (``petra-<kind>-<name>``), so
``petra_bundle state=loaded`` pins them to the digests it pushed.
"""

from __future__ import annotations

import types

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - reported at run time
    HAS_YAML = False

from ansible_collections.petra.core.plugins.module_utils.load.flux import (
    HELM_RELEASE,
    KUSTOMIZATION,
    OCI_REPOSITORY,
    object_name,
)
from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes
from ansible_collections.petra.core.plugins.module_utils.platform import catalog
from ansible_collections.petra.core.plugins.module_utils.platform.objects import deep_merge, k8s_object, resources

HELM_CHART_API = "helm.cattle.io/v1"
BUNDLE_KEY_SECRET = "petra-bundle-key"
REGISTRY_CA = "petra-registry-ca"
FLUX = catalog.FLUX_NAMESPACE
PRIVILEGED_NAMESPACES = ("tetragon", "kube-bench")


def _ref(version):
    """Pin to one version: an exact semver range (a tag with build metadata, written with '_', is pinned as a tag)."""
    tag = version.replace("+", "_")
    return {"tag": tag} if tag != version else {"semver": version}


def oci_name(kind, name):
    return object_name(types.SimpleNamespace(kind=kind, name=name))


def namespaces(settings):
    """The addons' namespaces (kube-system is k3s's own). Tetragon and kube-bench read the host: their namespaces
    are privileged for Pod Security admission, as petra_flatcar's admission configuration exempts them too."""
    documents = []
    for addon in ("flux", "gatekeeper", "tetragon", "cert-manager", "policy-controller", "kube-bench"):
        name = catalog.NAMESPACES[addon]
        labels = dict(settings.labels)
        if name in PRIVILEGED_NAMESPACES:
            labels["pod-security.kubernetes.io/enforce"] = "privileged"
        if addon == "gatekeeper":
            labels["admission.gatekeeper.sh/ignore"] = "no-self-managing"
        documents.append(k8s_object("v1", "Namespace", name, labels=labels))
    return documents


def trust_objects(settings):
    """The bundle public key for Flux's verification and, when given, the registry CA for Flux, the k3s Helm jobs and
    policy-controller."""
    documents = [k8s_object("v1", "Secret", BUNDLE_KEY_SECRET, namespace=FLUX, labels=settings.labels,
                            annotations={"petra.dev/key-id": settings.public_key_id},
                            type="Opaque", stringData={"cosign.pub": settings.public_key_pem})]
    if settings.registry_ca:
        ca = settings.registry_ca + "\n"
        documents.append(k8s_object("v1", "Secret", REGISTRY_CA, namespace=FLUX, labels=settings.labels,
                                    type="Opaque", stringData={"ca.crt": ca}))
        # For the k3s Helm jobs, and for policy-controller, which fetches signatures from the registry itself.
        for namespace in ("kube-system", catalog.NAMESPACES["policy-controller"]):
            documents.append(k8s_object("v1", "ConfigMap", REGISTRY_CA, namespace=namespace, labels=settings.labels,
                                        data={"ca.crt": ca}))
    return documents


def _values_text(values):
    return yaml.safe_dump(values, sort_keys=True, default_flow_style=False)


def helm_chart(settings, chart, target_namespace, values, bootstrap=False):
    spec = {"chart": settings.chart_url(chart), "version": settings.charts[chart].version,
            "targetNamespace": target_namespace}
    if bootstrap:
        spec["bootstrap"] = True
    if settings.registry_ca:
        spec["repoCAConfigMap"] = {"name": REGISTRY_CA}
    if settings.registry_pull_secret:
        spec["dockerRegistrySecret"] = {"name": settings.registry_pull_secret}
    spec["valuesContent"] = _values_text(deep_merge(values, settings.helm_values.get(chart) or {}))
    return k8s_object(HELM_CHART_API, "HelmChart", chart, namespace="kube-system", labels=settings.labels, spec=spec)


def flux_values(settings):
    def controller(role):
        return {"image": settings.image_repository(role), "tag": settings.image_tag(role),
                "resources": resources("50m", "64Mi", "1", "1Gi")}

    return {
        "installCRDs": True,
        "sourceController": controller("flux-source-controller"),
        "kustomizeController": controller("flux-kustomize-controller"),
        "helmController": controller("flux-helm-controller"),
        "notificationController": {"create": False},
        "imageAutomationController": {"create": False},
        "imageReflectionController": {"create": False},
    }


def oci_repository(settings, kind, name, url, version):
    spec = {
        "interval": settings.flux_interval,
        "url": url,
        "ref": _ref(version),
        "provider": "generic",
        "layerSelector": {"mediaType": mediatypes.HELM_CHART_LAYER, "operation": "copy"} if kind == "chart"
        else {"mediaType": mediatypes.FLUX_CONTENT_LAYER, "operation": "extract"},
        "verify": {"provider": "cosign", "secretRef": {"name": BUNDLE_KEY_SECRET}},
    }
    if settings.registry_pull_secret:
        spec["secretRef"] = {"name": settings.registry_pull_secret}
    if settings.registry_ca:
        spec["certSecretRef"] = {"name": REGISTRY_CA}
    labels = dict(settings.labels, **{"petra.dev/bundle": settings.bundle_name})
    return k8s_object(OCI_REPOSITORY.api_version, OCI_REPOSITORY.kind, oci_name(kind, name), namespace=FLUX,
                      labels=labels, spec=spec)


def helm_release(settings, chart, target_namespace, values):
    return k8s_object(HELM_RELEASE.api_version, HELM_RELEASE.kind, chart, namespace=FLUX, labels=settings.labels,
                      spec={
                          "interval": settings.flux_interval,
                          "releaseName": chart,
                          "targetNamespace": target_namespace,
                          "storageNamespace": target_namespace,
                          "chartRef": {"kind": OCI_REPOSITORY.kind, "name": oci_name("chart", chart)},
                          "install": {"crds": "CreateReplace", "remediation": {"retries": 3}},
                          "upgrade": {"crds": "CreateReplace", "remediation": {"retries": 3}},
                          "values": deep_merge(values, settings.helm_values.get(chart) or {}),
                      })


def kustomization(settings, set_name, wait=False, depends_on=()):
    spec = {
        "interval": settings.flux_interval,
        "retryInterval": "1m",
        "sourceRef": {"kind": OCI_REPOSITORY.kind, "name": oci_name("manifests", set_name)},
        "path": "./",
        "prune": True,
        "wait": wait,
    }
    if depends_on:
        spec["dependsOn"] = [{"name": "petra-" + name} for name in depends_on]
    return k8s_object(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, "petra-" + set_name, namespace=FLUX,
                      labels=settings.labels, spec=spec)
