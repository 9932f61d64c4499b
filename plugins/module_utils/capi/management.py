# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Cluster API core and CAPA on an air-gapped management cluster, installed by Flux from a Petra bundle.

Connected side (``bundle_tree``): the release's components files, byte for byte, each as a manifest set of the
management bundle, and the bundle spec listing every image they run. High side, after the load
(``install_objects``): per provider an ``OCIRepository`` pinned to the loaded manifest set's digest and verified
with the bundle key (the names the load step gives them, so a later load pins them again), and a ``Kustomization``
whose ``images`` send every controller image to the high-side registry by digest, whose post-build substitution
gives clusterctl's variables (no static AWS keys: the controller uses the nodes' instance profile), and whose
patches add the region and the custom AWS endpoints. No clusterctl run, no bootstrap or control-plane provider.
"""

from __future__ import annotations

import re
import types
from urllib.parse import urlparse

try:
    import yaml
except ImportError:  # pragma: no cover - components.py reports it
    yaml = None

from ansible_collections.petra.core.plugins.module_utils.bundle.spec import API_VERSION as BUNDLE_API, KIND as BUNDLE_KIND
from ansible_collections.petra.core.plugins.module_utils.capi.components import image_name
from ansible_collections.petra.core.plugins.module_utils.capi.errors import CapiError
from ansible_collections.petra.core.plugins.module_utils.errors import PetraError
from ansible_collections.petra.core.plugins.module_utils.load.flux import KUSTOMIZATION, MANAGED_BY, object_name, oci_repository
from ansible_collections.petra.core.plugins.module_utils.load.targets import TargetRegistry
from ansible_collections.petra.core.plugins.module_utils.oci.reference import ImageReference

# provider -> (manifest set, components file name in its release, controller Deployment, its namespace)
PROVIDERS = {
    "core": ("capi-core", "core-components.yaml", "capi-controller-manager", "capi-system"),
    "infrastructure": ("capi-aws", "infrastructure-components.yaml", "capa-controller-manager", "capa-system"),
}
# "\n", base64: the value `clusterawsadm controller zero-credentials` writes. CAPA's credentials file is then empty
# and the AWS SDK falls back to the instance profile of the node the controller runs on.
ZERO_CREDENTIALS = "Cg=="
# CAPA's clusterctl variables as Petra sets them: the Ignition bootstrap format on (Petra renders Ignition), EKS,
# Fargate and the tagging of bring-your-own subnets off, no static keys, no IRSA role annotation.
INFRA_VARIABLES = {
    "EXP_BOOTSTRAP_FORMAT_IGNITION": "true",
    "CAPA_EKS": "false",
    "CAPA_EKS_IAM": "false",
    "CAPA_EKS_ADD_ROLES": "false",
    "EXP_EKS_FARGATE": "false",
    "TAG_UNMANAGED_NETWORK_RESOURCES": "false",
    "AWS_B64ENCODED_CREDENTIALS": ZERO_CREDENTIALS,
    "AWS_CONTROLLER_IAM_ROLE": "",
}
FIXED = {"AWS_B64ENCODED_CREDENTIALS": "static AWS keys never go into the cluster: the controller uses the "
                                       "management nodes' instance profile",
         "EXP_BOOTSTRAP_FORMAT_IGNITION": "Petra's workload nodes boot Ignition, which CAPA hands over only with "
                                          "this gate on"}
_VARIABLE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SERVICE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
PRUNE_OFF = "kustomize.toolkit.fluxcd.io/prune"


def check_variables(components, given):
    """Refuse variables a provider needs without a default that neither Petra nor ``given`` sets."""
    known = set(given) | (set(INFRA_VARIABLES) if components.label == "infrastructure" else set())
    missing = sorted(name for name, needs in components.variables.items() if needs and name not in known)
    if missing:
        raise CapiError("%s %s needs clusterctl variables without a default: %s" % (
            components.label, components.version, ", ".join(missing)), reason="capi-variables",
            hint="Give their values in variables (Flux substitutes an unset variable with nothing)")


def settings_variables(label, given):
    for name, value in given.items():
        if not _VARIABLE_NAME_RE.match(name):
            raise CapiError("variables: %r is not a variable name" % name, reason="capi-variables")
        if name in FIXED and str(value) != INFRA_VARIABLES[name]:
            raise CapiError("variables: %s cannot be changed: %s" % (name, FIXED[name]), reason="capi-variables")
    values = dict(INFRA_VARIABLES) if label == "infrastructure" else {}
    values.update((name, str(value)) for name, value in given.items())
    return values


def bundle_tree(core, infrastructure, bundle_name, bundle_version, platforms, given_variables):
    """``{relative path: bytes}``: the two components files as manifest sets, and the bundle spec."""
    files = {}
    images = {}
    for components in (core, infrastructure):
        settings_variables(components.label, given_variables)
        check_variables(components, given_variables)
        set_name, file_name = PROVIDERS[components.label][:2]
        files["%s/%s" % (set_name, file_name)] = components.text.encode("utf-8")
        images.update((image, True) for image in components.images)
    spec = {
        "apiVersion": BUNDLE_API,
        "kind": BUNDLE_KIND,
        "metadata": {"name": bundle_name, "version": bundle_version,
                     "description": "Cluster API %s (contract %s) and CAPA %s (contract %s) for a Petra management "
                                    "cluster" % (core.version, core.contract, infrastructure.version,
                                                 infrastructure.contract)},
        "images": [{"ref": image, "platforms": list(platforms)} for image in sorted(images)],
        "manifests": [{"name": PROVIDERS[label][0], "path": PROVIDERS[label][0]} for label in ("core", "infrastructure")],
    }
    return files, spec, sorted(images)


def service_endpoints_flag(region, endpoints):
    """CAPA's ``--service-endpoints`` value: ``<signing region>:<service id>=<URL>,...``."""
    seen = set()
    pairs = []
    for index, item in enumerate(endpoints):
        service, url = item.get("service"), item.get("url")
        if not isinstance(service, str) or not _SERVICE_ID_RE.match(service):
            raise CapiError("service_endpoints[%d].service %r is not an AWS SDK service id such as ec2, sts, s3 or "
                            "elasticloadbalancing" % (index, service), reason="capi-endpoints")
        if service in seen:
            raise CapiError("service_endpoints: %s is given twice (CAPA refuses that)" % service, reason="capi-endpoints")
        seen.add(service)
        parsed = urlparse(url if isinstance(url, str) else "")
        if parsed.scheme != "https" or not parsed.netloc or any(char in url for char in ",;= "):
            raise CapiError("service_endpoints[%d].url %r is not an https:// URL" % (index, url), reason="capi-endpoints",
                            hint="For example https://ec2.us-gov-west-1.amazonaws.com or a VPC endpoint's DNS name")
        pairs.append("%s=%s" % (service, url))
    return "%s:%s" % (region, ",".join(pairs)) if pairs else ""


def _split_target(text):
    """``host/repository[:tag]@digest`` of the load result -> (repository without host, digest)."""
    try:
        ref = ImageReference.parse(text)
    except PetraError as exc:
        raise CapiError("the load result names %r: %s" % (text, exc.message), reason="capi-loaded")
    if not ref.digest:
        raise CapiError("the load result names %r without a digest" % text, reason="capi-loaded",
                        hint="Give the registered result of petra_bundle state=loaded")
    return ref, ref.digest


def image_rewrites(loaded, target):
    """Kustomize ``images`` entries: every loaded image, as the components write it, to its high-side copy by
    digest."""
    rewrites = {}
    for image in loaded.get("images") or []:
        ref, digest = _split_target(image["target"])
        if ref.registry != target.host:
            raise CapiError("loaded image %s is not in the registry %s" % (image["target"], target),
                            reason="capi-loaded")
        name = image_name(image["source"])
        entry = {"name": name, "newName": ref.name, "digest": digest}
        if rewrites.get(name, entry) != entry:
            raise CapiError("image %s was loaded twice with different content" % name, reason="capi-loaded",
                            hint="A management bundle carries one build of each controller image")
        rewrites[name] = entry
    if not rewrites:
        raise CapiError("the load result lists no images", reason="capi-loaded",
                        hint="Give the registered result of petra_bundle state=loaded of the management bundle")
    return [rewrites[name] for name in sorted(rewrites)]


def _manifest_set(loaded, set_name):
    for artifact in loaded.get("artifacts") or []:
        if artifact.get("kind") == "manifests" and artifact.get("source") == set_name:
            ref, digest = _split_target(artifact["target"])
            return types.SimpleNamespace(kind="manifests", name=set_name, repository=ref.repository, digest=digest)
    raise CapiError("the loaded bundle %s has no manifest set %s" % (loaded.get("name"), set_name),
                    reason="capi-loaded", hint="Load the management bundle (petra_capi_management state=bundled) "
                                               "and give its load result")


def _crd_patch():
    # Removing a Kustomization (or a set) must never delete the CRDs: that would delete every Cluster API object of
    # every workload cluster with them. Flux leaves objects with this annotation in place.
    return {"target": {"kind": "CustomResourceDefinition"},
            "patch": _yaml({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                            "metadata": {"name": "any", "annotations": {PRUNE_OFF: "disabled"}}})}


def _controller_patches(region, endpoints_flag):
    deployment, namespace = PROVIDERS["infrastructure"][2:]
    target = {"kind": "Deployment", "name": deployment, "namespace": namespace}
    env = [{"name": name, "value": value} for name, value in (
        ("AWS_REGION", region), ("AWS_DEFAULT_REGION", region), ("AWS_STS_REGIONAL_ENDPOINTS", "regional"))]
    # A strategic merge patch: containers merge by name, env by name, so the release's own env stays.
    merge = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": deployment, "namespace": namespace},
             "spec": {"template": {"spec": {"containers": [{"name": "manager", "env": env}]}}}}
    patches = [{"target": dict(target), "patch": _yaml(merge)}]
    if endpoints_flag:
        # args is a plain list (a merge patch would replace it): appended by JSON patch, after checking that the
        # first container is CAPA's manager.
        patches.append({"target": dict(target), "patch": _yaml([
            {"op": "test", "path": "/spec/template/spec/containers/0/name", "value": "manager"},
            {"op": "add", "path": "/spec/template/spec/containers/0/args/-",
             "value": "--service-endpoints=" + endpoints_flag}])})
    return patches


def _yaml(document):
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def install_objects(loaded, params):
    """The Flux objects that install Cluster API core and CAPA from the loaded management bundle."""
    if not isinstance(loaded, dict) or "registry" not in loaded:
        raise CapiError("loaded is not the result of petra_bundle state=loaded", reason="capi-loaded",
                        hint="Register the load task's result and give it as loaded")
    try:
        target = TargetRegistry(loaded["registry"])
    except PetraError as exc:
        raise CapiError(exc.message, reason="capi-loaded")
    region = params["region"]
    if not re.match(r"^[a-z]{2}(-[a-z]+)+-\d+$", region or ""):
        raise CapiError("region %r is not an AWS region such as us-gov-west-1" % (region,), reason="capi-spec")
    namespace = params["namespace"]
    images = image_rewrites(loaded, target)
    endpoints_flag = service_endpoints_flag(region, params.get("service_endpoints") or [])
    labels = dict(MANAGED_BY, **{"petra.dev/bundle": loaded.get("name") or "capi-management"})
    source_options = {"interval": params["interval"], "secret_ref": params.get("secret_ref"),
                      "cert_secret_ref": params.get("cert_secret_ref"), "insecure": params.get("insecure"),
                      "verify_secret_ref": params.get("verify_secret_ref"), "bundle": labels["petra.dev/bundle"]}
    objects = []
    previous = None
    for label in ("core", "infrastructure"):
        set_name = PROVIDERS[label][0]
        item = _manifest_set(loaded, set_name)
        objects.append(oci_repository(item, target, namespace, source_options))
        spec = {
            "interval": params["interval"],
            "retryInterval": "1m",
            "timeout": params["timeout"],
            "sourceRef": {"kind": "OCIRepository", "name": object_name(item)},
            "path": "./",
            "prune": True,
            "wait": True,
            "images": [dict(entry) for entry in images],
            "patches": [_crd_patch()] + (_controller_patches(region, endpoints_flag) if label == "infrastructure"
                                         else []),
        }
        substitute = settings_variables(label, params.get("variables") or {})
        if substitute:
            spec["postBuild"] = {"substitute": substitute}
        if previous:
            spec["dependsOn"] = [{"name": previous}]
        name = "petra-" + set_name
        objects.append({"apiVersion": KUSTOMIZATION.api_version, "kind": KUSTOMIZATION.kind,
                        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)}, "spec": spec})
        previous = name
    return objects
