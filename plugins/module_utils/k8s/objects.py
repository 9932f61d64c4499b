# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Any Kubernetes object by apiVersion, kind and plural (core Secrets and Namespaces as much as custom resources):
get, create, merge patch, delete, list by label. ``client.py``'s ``KubeClient`` covers custom resources only, so
core kinds, which live under ``/api/v1`` rather than ``/apis/<group>/<version>``, need this path-based client."""

from __future__ import annotations

import json

from ansible_collections.petra.core.plugins.module_utils.k8s.client import api_error, new_api_client


class Kind:
    """One resource type: ``api_version`` (``v1`` or ``group/version``), kind, plural, and whether it is namespaced."""

    __slots__ = ("api_version", "kind", "plural", "namespaced")

    def __init__(self, api_version, kind, plural, namespaced=True):
        self.api_version, self.kind, self.plural, self.namespaced = api_version, kind, plural, namespaced

    def path(self, namespace=None, name=None):
        base = "/api/v1" if self.api_version == "v1" else "/apis/" + self.api_version
        if self.namespaced and namespace:
            base += "/namespaces/" + namespace
        base += "/" + self.plural
        return base + "/" + name if name else base


def matches_labels(obj, selector):
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(labels.get(key) == value for key, value in selector.items())


class ObjectClient:
    """Objects through one kubeconfig; every request is bounded by ``timeout`` seconds."""

    def __init__(self, kubeconfig, context=None, timeout=30, purpose="manage Cluster API objects"):
        self._api = new_api_client(kubeconfig, context, purpose=purpose)
        self._timeout = timeout

    def _call(self, method, path, describe, body=None, query=None, content_type="application/json"):
        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            response = self._api.call_api(path, method, query_params=query or [], header_params=headers, body=body,
                                          auth_settings=["BearerToken"], _return_http_data_only=True,
                                          _preload_content=False, _request_timeout=self._timeout)
        except Exception as exc:
            if getattr(exc, "status", None) == 404 and method in ("GET", "DELETE"):
                return None
            raise api_error(exc, describe, "Check that Cluster API and its AWS provider are installed on the "
                                           "management cluster and the kubeconfig's RBAC permissions",
                            reason="kube-refused")
        data = response.data
        return json.loads(data) if data else {}

    def get(self, kind, namespace, name):
        return self._call("GET", kind.path(namespace, name), "read %s %s" % (kind.kind, name))

    def create(self, kind, body):
        meta = body["metadata"]
        return self._call("POST", kind.path(meta.get("namespace")), "create %s %s" % (kind.kind, meta["name"]),
                          body=body)

    def merge_patch(self, kind, namespace, name, patch):
        return self._call("PATCH", kind.path(namespace, name), "update %s %s" % (kind.kind, name), body=patch,
                          content_type="application/merge-patch+json")

    def delete(self, kind, namespace, name):
        """True when a deletion was requested, False when the object was already gone."""
        answer = self._call("DELETE", kind.path(namespace, name), "delete %s %s" % (kind.kind, name),
                            body={"propagationPolicy": "Background"})
        return answer is not None

    def list(self, kind, namespace, labels):
        """The objects carrying every label of ``labels``; filtered here too, in case the server ignores selectors."""
        selector = ",".join("%s=%s" % item for item in sorted(labels.items()))
        answer = self._call("GET", kind.path(namespace), "list %s objects" % kind.kind,
                            query=[("labelSelector", selector)])
        return [item for item in (answer or {}).get("items") or [] if matches_labels(item, labels)]
