# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Flux after a load: OCIRepository objects pinned to the pushed digests, and a reconcile request for the
Kustomizations and HelmReleases that use them."""

from __future__ import annotations

import datetime
import re
import time

from ansible_collections.petra.core.plugins.module_utils.k8s.client import Resource
from ansible_collections.petra.core.plugins.module_utils.load.errors import LoadError
from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes

OCI_REPOSITORY = Resource("source.toolkit.fluxcd.io", "v1", "ocirepositories", "OCIRepository")
KUSTOMIZATION = Resource("kustomize.toolkit.fluxcd.io", "v1", "kustomizations", "Kustomization")
HELM_RELEASE = Resource("helm.toolkit.fluxcd.io", "v2", "helmreleases", "HelmRelease")
RECONCILE_ANNOTATION = "reconcile.fluxcd.io/requestedAt"
MANAGED_BY = {"app.kubernetes.io/managed-by": "petra"}


def object_name(item):
    """A DNS-1123 name for the OCIRepository of a chart or manifest set: petra-<kind>-<name>."""
    name = re.sub(r"[^a-z0-9-]+", "-", ("petra-%s-%s" % (item.kind, item.name)).lower())
    return name.strip("-")[:63].rstrip("-")


def oci_repository(item, target, namespace, options):
    spec = {
        "url": "oci://%s/%s" % (target.host, item.repository),
        "ref": {"digest": item.digest},
        "interval": options.get("interval") or "10m",
        "provider": "generic",
    }
    if item.kind == "chart":
        # HelmRelease.chartRef needs the packaged chart as it is, not extracted.
        spec["layerSelector"] = {"mediaType": mediatypes.HELM_CHART_LAYER, "operation": "copy"}
    else:
        spec["layerSelector"] = {"mediaType": mediatypes.FLUX_CONTENT_LAYER, "operation": "extract"}
    if options.get("secret_ref"):
        spec["secretRef"] = {"name": options["secret_ref"]}
    if options.get("cert_secret_ref"):
        spec["certSecretRef"] = {"name": options["cert_secret_ref"]}
    if options.get("insecure"):
        spec["insecure"] = True
    if options.get("verify_secret_ref"):
        spec["verify"] = {"provider": "cosign", "secretRef": {"name": options["verify_secret_ref"]}}
    labels = dict(MANAGED_BY, **{"petra.dev/bundle": options["bundle"]})
    return {"apiVersion": OCI_REPOSITORY.api_version, "kind": OCI_REPOSITORY.kind,
            "metadata": {"name": object_name(item), "namespace": namespace, "labels": labels}, "spec": spec}


def _differs(desired, existing):
    if existing is None:
        return True
    current = existing.get("spec") or {}
    if any(current.get(key) != value for key, value in desired["spec"].items()):
        return True
    labels = (existing.get("metadata") or {}).get("labels") or {}
    return any(labels.get(key) != value for key, value in desired["metadata"]["labels"].items())


def _references(obj, field, name, namespace):
    ref = (obj.get("spec") or {}).get(field) or {}
    own_namespace = (obj.get("metadata") or {}).get("namespace")
    return ref.get("kind") == OCI_REPOSITORY.kind and ref.get("name") == name and \
        (ref.get("namespace") or own_namespace) == namespace


def now_text():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class FluxSync:
    """Applies OCIRepositories for loaded charts and manifest sets and requests reconciliation."""

    def __init__(self, kube, target, namespace, options):
        self.kube = kube
        self.target = target
        self.namespace = namespace
        self.options = options

    def apply(self, items, check_mode=False):
        results = []
        requested_at = now_text()
        consumers = None
        for item in items:
            if item.kind not in ("chart", "manifests"):
                continue
            desired = oci_repository(item, self.target, self.namespace, self.options)
            name = desired["metadata"]["name"]
            existing = self.kube.get(OCI_REPOSITORY, self.namespace, name)
            changed = _differs(desired, existing)
            reconciled = []
            if changed and not check_mode:
                if existing is None:
                    self.kube.create(OCI_REPOSITORY, self.namespace, desired)
                else:
                    self.kube.merge_patch(OCI_REPOSITORY, self.namespace, name,
                                          {"metadata": {"labels": desired["metadata"]["labels"]},
                                           "spec": desired["spec"]})
                self._request(OCI_REPOSITORY, self.namespace, name, requested_at)
                if consumers is None:
                    consumers = self._consumers()
                for resource, field, obj in consumers:
                    if _references(obj, field, name, self.namespace):
                        meta = obj["metadata"]
                        self._request(resource, meta["namespace"], meta["name"], requested_at)
                        reconciled.append("%s/%s/%s" % (resource.kind, meta["namespace"], meta["name"]))
            results.append({"name": name, "namespace": self.namespace, "kind": item.kind, "source": item.source,
                            "url": desired["spec"]["url"], "digest": item.digest, "changed": changed,
                            "action": ("create" if existing is None else "update") if changed else "none",
                            "reconciled": reconciled})
        return results, requested_at

    def _consumers(self):
        found = [(KUSTOMIZATION, "sourceRef", obj) for obj in self.kube.list_all(KUSTOMIZATION)]
        found += [(HELM_RELEASE, "chartRef", obj) for obj in self.kube.list_all(HELM_RELEASE)]
        return found

    def _request(self, resource, namespace, name, requested_at):
        self.kube.merge_patch(resource, namespace, name,
                              {"metadata": {"annotations": {RECONCILE_ANNOTATION: requested_at}}})

    def wait(self, results, timeout, poll=2.0):
        """Until every changed OCIRepository, and each object reconciled for it, is Ready at the new digest."""
        deadline = time.monotonic() + timeout
        pending = []
        for result in results:
            if result["changed"]:
                pending.append((OCI_REPOSITORY, result["namespace"], result["name"], result["digest"]))
                for ref in result["reconciled"]:
                    kind, namespace, name = ref.split("/", 2)
                    resource = KUSTOMIZATION if kind == KUSTOMIZATION.kind else HELM_RELEASE
                    pending.append((resource, namespace, name, result["digest"]))
        last = {}
        while pending:
            still = []
            for resource, namespace, name, digest in pending:
                obj = self.kube.get(resource, namespace, name) or {}
                ready, message = _ready_at(obj, resource, digest)
                if not ready:
                    still.append((resource, namespace, name, digest))
                    last[(resource.kind, namespace, name)] = message
            pending = still
            if not pending:
                break
            if time.monotonic() >= deadline:
                details = "; ".join("%s %s/%s: %s" % (kind, namespace, name, last[(kind, namespace, name)])
                                    for kind, namespace, name in sorted(last) if any(
                                        p[0].kind == kind and p[1] == namespace and p[2] == name for p in pending))
                raise LoadError("Flux did not report Ready at the loaded digests within %ds: %s" % (timeout, details),
                                hint="Look at the Flux controllers' logs (flux logs) and the objects' events")
            time.sleep(poll)


def _ready_at(obj, resource, digest):
    status = obj.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if resource is OCI_REPOSITORY:
        revision = (status.get("artifact") or {}).get("revision") or ""
    elif resource is HELM_RELEASE:
        # A HelmRelease records the OCI artifact digest it last attempted, apart from the chart version.
        revision = status.get("lastAttemptedRevisionDigest") or ""
    else:
        revision = status.get("lastAppliedRevision") or ""
    if ready is None:
        return False, "no Ready condition yet"
    if ready.get("status") != "True":
        return False, "not Ready (%s): %s" % (ready.get("reason"), ready.get("message"))
    if digest not in revision:
        return False, "Ready, but at revision %r, not yet %s" % (revision, digest)
    return True, ""
