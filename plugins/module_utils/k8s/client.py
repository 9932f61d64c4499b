# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""A small wrapper over the kubernetes client for custom resources: get, create, merge-patch, list."""

from __future__ import annotations

import json

# Before kubernetes, which imports jsonschema: see schema.py for what this saves every task.
from ansible_collections.petra.core.plugins.module_utils import schema  # noqa: F401  pylint: disable=unused-import

try:
    import kubernetes
    HAS_KUBERNETES = True
except ImportError:  # pragma: no cover - reported at run time
    HAS_KUBERNETES = False

from ansible_collections.petra.core.plugins.module_utils.errors import PetraError


class KubernetesError(PetraError):
    """The Kubernetes API refused a request or could not be reached."""


class Resource:
    """A custom resource type: group, version, plural, kind."""

    __slots__ = ("group", "version", "plural", "kind")

    def __init__(self, group, version, plural, kind):
        self.group, self.version, self.plural, self.kind = group, version, plural, kind

    @property
    def api_version(self):
        return "%s/%s" % (self.group, self.version)


def api_message(exc):
    """What the API server said in a refused request's Status, else the HTTP reason."""
    try:
        return json.loads(exc.body).get("message") or exc.reason
    except (TypeError, ValueError, AttributeError):
        return exc.reason


UNREACHABLE_HINT = "Check the API server address in the kubeconfig and the network path"


def api_error(exc, describe, hint=None, **details):
    """The KubernetesError for a failed API call: what the server refused (its Status message), or that it could not
    be reached (urllib3 raises several connection error types)."""
    if isinstance(exc, kubernetes.client.ApiException):
        message = "the Kubernetes API refused to %s (HTTP %s): %s" % (describe, exc.status, api_message(exc))
        return KubernetesError(message, hint=hint, **details)
    return KubernetesError("cannot reach the Kubernetes API to %s: %s" % (describe, exc), hint=UNREACHABLE_HINT)


def new_api_client(kubeconfig, context=None, purpose="manage Flux objects"):
    """A kubernetes ApiClient from a kubeconfig file, with errors that say which file and what to check."""
    if not HAS_KUBERNETES:
        raise KubernetesError("the Python library 'kubernetes' is required to %s" % purpose,
                              hint="Install the collection's requirements.txt on the controller")
    try:
        return kubernetes.config.new_client_from_config(config_file=kubeconfig, context=context)
    except (kubernetes.config.ConfigException, OSError, ValueError) as exc:
        raise KubernetesError("cannot use the kubeconfig %s: %s" % (kubeconfig, exc),
                              hint="Check 'kubeconfig' and 'kube_context'")


class KubeClient:
    def __init__(self, kubeconfig, context=None, timeout=30):
        self._custom = kubernetes.client.CustomObjectsApi(new_api_client(kubeconfig, context))
        self._timeout = timeout

    def _call(self, action, describe, *args, **kwargs):
        kwargs["_request_timeout"] = self._timeout
        try:
            return getattr(self._custom, action)(*args, **kwargs)
        except Exception as exc:
            if getattr(exc, "status", None) == 404 and action.startswith(("get_", "list_")):
                return None
            raise api_error(exc, describe, "Check the kubeconfig's permissions for Flux objects (RBAC)")

    def get(self, resource, namespace, name):
        return self._call("get_namespaced_custom_object", "read %s %s/%s" % (resource.kind, namespace, name),
                          resource.group, resource.version, namespace, resource.plural, name)

    def create(self, resource, namespace, body):
        self._call("create_namespaced_custom_object", "create %s %s/%s" % (
            resource.kind, namespace, body["metadata"]["name"]), resource.group, resource.version, namespace,
            resource.plural, body)

    def merge_patch(self, resource, namespace, name, patch):
        return self._call("patch_namespaced_custom_object", "update %s %s/%s" % (resource.kind, namespace, name),
                          resource.group, resource.version, namespace, resource.plural, name, patch)

    def list_all(self, resource):
        """Every object of a resource in all namespaces; empty when the resource is not installed."""
        answer = self._call("list_cluster_custom_object", "list %s objects" % resource.kind,
                            resource.group, resource.version, resource.plural)
        return (answer or {}).get("items") or []


class KubeReader:
    """Read-only GETs of API paths; the answer is the server's JSON as sent, to be kept as evidence."""

    def __init__(self, kubeconfig, context=None, timeout=30):
        self._api = new_api_client(kubeconfig, context, purpose="read the cluster")
        self._timeout = timeout

    def get(self, path, query=None):
        """The JSON at ``path``, or None when the server answers 404 (a resource type that is not installed)."""
        try:
            response = self._api.call_api(path, "GET", query_params=list((query or {}).items()),
                                          header_params={"Accept": "application/json"}, auth_settings=["BearerToken"],
                                          _preload_content=False, _return_http_data_only=True,
                                          _request_timeout=self._timeout)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise api_error(exc, "read %s" % path, "The kubeconfig's user needs get and list on this resource (RBAC)")
        try:
            return json.loads(response.data)
        except ValueError:
            raise KubernetesError("the Kubernetes API answered %s with something that is not JSON" % path)
