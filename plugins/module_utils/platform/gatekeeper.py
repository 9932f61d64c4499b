# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Gatekeeper: the Helm values, the ConstraintTemplates (Rego from the ``rego/`` files beside this module, embedded
as they are) and the Constraints of Petra's admission policies."""

from __future__ import annotations

import os

from ansible_collections.petra.core.plugins.module_utils.platform.errors import PlatformError
from ansible_collections.petra.core.plugins.module_utils.platform.objects import k8s_object, resources

REGO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rego")
TARGET = "admission.k8s.gatekeeper.sh"
TEMPLATE_API = "templates.gatekeeper.sh/v1"
CONSTRAINT_API = "constraints.gatekeeper.sh/v1beta1"

# Everything that creates pods, and the pods themselves: a workload is refused when it is applied, not later when
# its controller fails to create pods.
WORKLOAD_KINDS = [
    {"apiGroups": [""], "kinds": ["Pod", "ReplicationController"]},
    {"apiGroups": ["apps"], "kinds": ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"]},
    {"apiGroups": ["batch"], "kinds": ["Job", "CronJob"]},
]
# Labels are checked where people write them: pods and the workloads whose templates label the pods. (ReplicaSets and
# Jobs made by controllers copy labels from elsewhere, so they are left out.)
LABELLED_KINDS = [
    {"apiGroups": [""], "kinds": ["Pod"]},
    {"apiGroups": ["apps"], "kinds": ["Deployment", "StatefulSet", "DaemonSet"]},
    {"apiGroups": ["batch"], "kinds": ["CronJob"]},
]
_STRINGS = {"type": "array", "items": {"type": "string"}}
# How long the API server waits for Gatekeeper before refusing the request (failure policy Fail).
WEBHOOK_TIMEOUT_SECONDS = 5


class Policy:
    """One admission policy: its template (name, constraint kind, parameter schema) and its constraint."""

    def __init__(self, name, kind, constraint, title, description, parameters, match):
        self.name = name
        self.kind = kind
        self.constraint = constraint
        self.title = title
        self.description = description
        self.parameters = parameters
        self.match = match

    @property
    def rego_path(self):
        return os.path.join(REGO_DIR, self.name + ".rego")

    def rego(self):
        try:
            with open(self.rego_path, "r", encoding="utf-8") as handle:
                return handle.read()
        except OSError as exc:
            raise PlatformError("cannot read the Rego of %s (%s): %s" % (self.name, self.rego_path, exc.strerror),
                                hint="The .rego files ship in the collection's plugins/module_utils/platform/rego; "
                                     "reinstall petra.core", reason="rego-missing")


POLICIES = (
    Policy("k8spetraprivileged", "K8sPetraPrivileged", "petra-no-privileged-containers",
           "No privileged containers",
           "Refuses pods and workloads with a privileged container, init container or ephemeral container.",
           {"exemptNamespaces": _STRINGS}, WORKLOAD_KINDS),
    Policy("k8spetraallowedregistries", "K8sPetraAllowedRegistries", "petra-allowed-registries",
           "Images only from allowed registries",
           "Refuses containers whose image is not below one of the allowed registries; Docker Hub short names count "
           "as docker.io.", {"registries": _STRINGS, "exemptNamespaces": _STRINGS}, WORKLOAD_KINDS),
    Policy("k8spetracontainerlimits", "K8sPetraContainerLimits", "petra-container-limits",
           "CPU and memory limits required",
           "Refuses containers and init containers without the listed resource limits.",
           {"limits": _STRINGS, "exemptNamespaces": _STRINGS}, WORKLOAD_KINDS),
    Policy("k8spetrarequiredlabels", "K8sPetraRequiredLabels", "petra-required-labels",
           "Required labels",
           "Refuses objects without the required labels, or with values that do not match a label's allowedRegex.",
           {"labels": {"type": "array", "items": {"type": "object", "properties": {
               "key": {"type": "string"}, "allowedRegex": {"type": "string"}}}},
            "exemptNamespaces": _STRINGS}, LABELLED_KINDS),
)


def template(policy, labels):
    return k8s_object(
        TEMPLATE_API, "ConstraintTemplate", policy.name, labels=labels,
        annotations={"metadata.gatekeeper.sh/title": policy.title, "description": policy.description},
        spec={
            "crd": {"spec": {"names": {"kind": policy.kind}, "validation": {"openAPIV3Schema": {
                "type": "object", "properties": policy.parameters}}}},
            "targets": [{"target": TARGET, "rego": policy.rego()}],
        })


def _parameters(policy, settings):
    parameters = {}
    if policy.name == "k8spetraallowedregistries":
        parameters["registries"] = list(settings.allowed_registries)
    elif policy.name == "k8spetracontainerlimits":
        parameters["limits"] = ["cpu", "memory"]
    elif policy.name == "k8spetrarequiredlabels":
        parameters["labels"] = [dict(label) for label in settings.required_labels]
    parameters["exemptNamespaces"] = list(settings.exempt_namespaces)
    return parameters


def constraint(policy, settings):
    return k8s_object(
        CONSTRAINT_API, policy.kind, policy.constraint, labels=settings.labels,
        annotations={"description": policy.description},
        spec={
            "enforcementAction": "deny",
            # Gatekeeper skips these namespaces before evaluating; the Rego checks the same list, so the policy is
            # also right on its own (audit, gator, the tests).
            "match": {"kinds": [dict(item) for item in policy.match],
                      "excludedNamespaces": list(settings.exempt_namespaces)},
            "parameters": _parameters(policy, settings),
        })


def policies(settings):
    """The policies to render: required labels only when labels are required."""
    return [policy for policy in POLICIES if policy.name != "k8spetrarequiredlabels" or settings.required_labels]


def templates(settings):
    return [template(policy, settings.labels) for policy in policies(settings)]


def constraints(settings):
    return [constraint(policy, settings) for policy in policies(settings)]


def values(settings):
    """Helm values of the gatekeeper chart: the FIPS image from the high-side registry, CRDs from the chart's crds/
    (no upgrade job, so no second image), no post-install jobs that would need further images.

    The admission webhook fails closed (the chart's default is Ignore: a request Gatekeeper does not answer in time,
    or at all, would pass unchecked). So that the cluster can still recover while Gatekeeper is down, the webhook is
    not called at all for the exempt namespaces named exactly (Kubernetes sets ``kubernetes.io/metadata.name`` on
    every namespace): kube-system, the addons' namespaces, Gatekeeper's own."""
    exact = [name for name in settings.exempt_namespaces if not name.endswith("*")]
    return {
        "image": {"repository": settings.image_repository("gatekeeper"), "release": settings.image_tag("gatekeeper")},
        "validatingWebhookFailurePolicy": "Fail",
        "validatingWebhookTimeoutSeconds": WEBHOOK_TIMEOUT_SECONDS,
        "validatingWebhookExemptNamespacesLabels": {"kubernetes.io/metadata.name": exact},
        # The webhook that stops anyone labelling a namespace admission.gatekeeper.sh/ignore fails closed too.
        "validatingWebhookCheckIgnoreFailurePolicy": "Fail",
        "upgradeCRDs": {"enabled": False},
        "postInstall": {"labelNamespace": {"enabled": False}, "probeWebhook": {"enabled": False}},
        "postUpgrade": {"labelNamespace": {"enabled": False}},
        "controllerManager": {"resources": resources("100m", "256Mi", "1", "512Mi")},
        "audit": {"resources": resources("100m", "256Mi", "1", "512Mi")},
        "podLabels": dict(settings.labels),
    }
