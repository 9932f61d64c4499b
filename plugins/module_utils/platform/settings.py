# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The platform's settings, checked once: the high-side registry and where each artifact lands in it (the same
naming as the load step), the bundle public key, the images and charts, and the policy lists."""

from __future__ import annotations

import re

from ansible_collections.petra.core.plugins.module_utils.errors import PetraError
from ansible_collections.petra.core.plugins.module_utils.load.targets import TargetRegistry, host_component
from ansible_collections.petra.core.plugins.module_utils.oci.reference import ImageReference
from ansible_collections.petra.core.plugins.module_utils.platform import catalog, keyless
from ansible_collections.petra.core.plugins.module_utils.platform.errors import PlatformError
from ansible_collections.petra.core.plugins.module_utils.signing import keys as signing_keys

_DNS_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_LABEL_KEY_RE = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                           r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_NAMESPACE_PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,61}\*$")


def _label_value(text):
    """A label value from free text: at most 63 characters of [A-Za-z0-9._-], starting and ending alphanumeric."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")[:63].rstrip("-._")


class ChartSource:
    """One chart: its name and version, and its ``oci://`` source when petra_bundle pulls it itself."""

    __slots__ = ("name", "version", "ref")

    def __init__(self, name, version, ref=None):
        self.name = name
        self.version = version
        self.ref = ref

    def bundle_entry(self):
        """The chart's item in a bundle spec: the oci:// reference, or the packaged chart ``helm pull`` writes."""
        if self.ref:
            return {"ref": self.ref, "version": self.version}
        return {"path": "charts/%s-%s.tgz" % (self.name, self.version)}


class PlatformSettings:
    """Validated options of petra_platform, and where artifacts land in the high-side registry."""

    def __init__(self, params):
        try:
            self.target = TargetRegistry(params["registry"])
        except PetraError as exc:
            raise PlatformError(exc.message, hint=exc.hint, reason="registry")
        self.cluster_name = self._dns_label("cluster_name", params["cluster_name"])
        self.bundle_name = self._dns_label("bundle_name", params["bundle_name"])
        self.bundle_version = params["bundle_version"]
        self.public_key = self._public_key(params["public_key"])
        self.public_key_pem = signing_keys.public_key_pem(self.public_key)
        self.public_key_id = signing_keys.key_id(self.public_key)
        self.hash_name = signing_keys.hash_name_for(self.public_key)
        self.allowed_registries = self._registries(params.get("allowed_registries") or []) or [str(self.target)]
        self.required_labels = self._labels(params.get("required_labels") or [])
        self.exempt_namespaces = self._namespaces("exempt_namespaces", params.get("exempt_namespaces"),
                                                  catalog.EXEMPT_NAMESPACES, patterns=True)
        self.signed_namespaces = self._namespaces("signed_namespaces", params.get("signed_namespaces"), ())
        for name in self.signed_namespaces:
            if name in self.exempt_namespaces:
                raise PlatformError("signed_namespaces: %s is also an exempt (system) namespace" % name,
                                    hint="Opt workload namespaces in; system namespaces run the platform itself")
        self.kube_proxy_replacement = bool(params.get("kube_proxy_replacement"))
        self.api_server_host = params.get("api_server_host") or ""
        self.api_server_port = int(params.get("api_server_port") or 6443)
        if self.kube_proxy_replacement and not self.api_server_host:
            raise PlatformError("kube_proxy_replacement needs api_server_host",
                                hint="Without kube-proxy, Cilium reaches the API server directly: give the address "
                                     "the nodes use (a load balancer or the first server)")
        self.images = self._images(params.get("images") or {})
        self.charts = self._charts(params.get("charts") or {})
        self.image_platforms = list(params.get("image_platforms") or ["linux/amd64"])
        self.registry_ca = (params.get("registry_ca") or "").strip()
        if self.registry_ca and "-----BEGIN CERTIFICATE-----" not in self.registry_ca:
            raise PlatformError("registry_ca is not PEM certificate text",
                                hint="Give the CA certificate(s) of the high-side registry, not a path")
        self.registry_pull_secret = params.get("registry_pull_secret") or ""
        self.ca_secret = params.get("ca_secret") or ""
        self.network_allow = list(params.get("network_allow") or [])
        self.helm_values = dict(params.get("helm_values") or {})
        unknown = sorted(set(self.helm_values) - set(catalog.CHARTS))
        if unknown:
            raise PlatformError("helm_values has values for %s, which the platform does not install" % (
                ", ".join(unknown)), hint="Keys are chart names: %s" % ", ".join(catalog.CHARTS))
        self.kube_bench_schedule = params.get("kube_bench_schedule") or "0 3 * * *"
        self.kube_bench_benchmark = params.get("kube_bench_benchmark") or "k3s-cis-1.8"
        self.flux_interval = params.get("flux_interval") or "10m"
        # Keyless admission (platform/keyless.py): the trusted root the bundle carries and the identities to require.
        self.trusted_root, self.keyless = keyless.parse(params)
        self.labels = {"app.kubernetes.io/part-of": "petra-platform", "app.kubernetes.io/managed-by": "petra",
                       "petra.dev/cluster": _label_value(self.cluster_name)}

    # ---- checks ---------------------------------------------------------------------------------------------
    @staticmethod
    def _dns_label(option, value):
        if not isinstance(value, str) or not _DNS_LABEL_RE.match(value):
            raise PlatformError("%s %r must be lowercase letters, digits and '-' (at most 63)" % (option, value))
        return value

    @staticmethod
    def _registries(items):
        registries = []
        for index, item in enumerate(items):
            try:
                registries.append(str(TargetRegistry(str(item).strip().rstrip("/"))))
            except PetraError as exc:
                raise PlatformError("allowed_registries[%d]: %s" % (index, exc.message),
                                    hint="Give host[:port] with an optional /path, without a scheme", reason="registry")
        return registries

    @staticmethod
    def _public_key(item):
        try:
            key = signing_keys.load_public_key(item)
        except PetraError as exc:
            raise PlatformError(exc.message, hint=exc.hint or "Give the bundle signer's public key (PEM or path)",
                                reason="public-key")
        # Flux's source-controller verifies cosign signatures with SHA-256 only, while Petra signs with SHA-384 for
        # a P-384 key: every OCIRepository would fail its verification and nothing would reach the cluster.
        if signing_keys.hash_name_for(key) != "sha256":
            raise PlatformError(
                "the bundle public key is ECDSA P-384 (%s); the platform needs a P-256 key, because Flux verifies "
                "the countersignatures of its charts and manifest sets with SHA-256 only and Petra signs with "
                "SHA-384 for P-384 keys (every OCIRepository would be refused)" % key.curve.name,
                hint="Sign the bundles whose content Flux verifies (the platform bundle) with a P-256 key "
                     "(openssl ecparam -name prime256v1, or cosign generate-key-pair) and give its public key",
                reason="public-key")
        return key

    @staticmethod
    def _labels(items):
        labels = []
        for index, item in enumerate(items):
            key = item.get("key") if isinstance(item, dict) else item
            if not isinstance(key, str) or not _LABEL_KEY_RE.match(key):
                raise PlatformError("required_labels[%d]: %r is not a label key" % (index, key),
                                    hint="For example app.kubernetes.io/name or team")
            label = {"key": key}
            pattern = item.get("allowed_regex") if isinstance(item, dict) else None
            if pattern:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise PlatformError("required_labels[%d].allowed_regex %r: %s" % (index, pattern, exc))
                label["allowedRegex"] = pattern
            labels.append(label)
        return labels

    @staticmethod
    def _namespaces(option, given, default, patterns=False):
        names = list(default if given is None else given)
        for name in names:
            if not isinstance(name, str) or not (_DNS_LABEL_RE.match(name) or
                                                 (patterns and _NAMESPACE_PREFIX_RE.match(name))):
                raise PlatformError("%s: %r is not a namespace name%s" % (
                    option, name, " (or a prefix ending in '*')" if patterns else ""))
        return sorted(set(names))

    def _images(self, overrides):
        images = {}
        for role, default in catalog.IMAGES.items():
            text = overrides.get(role, default)
            try:
                ref = ImageReference.parse(text)
            except PetraError as exc:
                raise PlatformError("images.%s: %s" % (role, exc.message), reason="image")
            if not ref.tag or (ref.tag == "latest" and ":latest" not in text):
                raise PlatformError("images.%s: %r has no tag" % (role, text),
                                    hint="Chart values name images by repository and tag; give repository:tag")
            if ref.tag in catalog.MOVING_TAGS:
                raise PlatformError("images.%s: %r has the moving tag %s" % (role, text, ref.tag),
                                    hint="Give a versioned tag (e.g. 1.33.4, or 1.33.4-dev where a shell is "
                                         "needed), checked against the source registry", reason="image")
            images[role] = (text, ref)
        unknown = sorted(set(overrides) - set(catalog.IMAGES))
        if unknown:
            raise PlatformError("images: unknown image roles %s" % ", ".join(unknown),
                                hint="Known roles: %s" % ", ".join(sorted(catalog.IMAGES)))
        if "-generic" not in images["cilium-operator"][1].repository.rsplit("/", 1)[-1]:
            raise PlatformError("images.cilium-operator: the repository name must contain '-generic'",
                                hint="The Cilium chart builds <repository>-generic<suffix>, e.g. "
                                     "cilium-operator-generic or cilium-operator-generic-fips")
        return images

    @staticmethod
    def _charts(overrides):
        charts = {}
        for name, default in catalog.CHARTS.items():
            given = dict(default)
            override = overrides.get(name) or {}
            if not isinstance(override, dict) or set(override) - {"version", "ref"}:
                raise PlatformError("charts.%s must be a mapping of version and (optionally) ref" % name,
                                    hint="For example {version: 1.5.1} or {ref: oci://host/path/name, version: 1.2.3}")
            given.update(override)
            version = given.get("version")
            if not isinstance(version, str) or not re.match(r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?$", version):
                raise PlatformError("charts.%s.version %r is not a chart version such as 1.2.3" % (name, version))
            ref = given.get("ref")
            if ref is not None and not (isinstance(ref, str) and ref.startswith("oci://")):
                raise PlatformError("charts.%s.ref %r must start with oci://" % (name, ref),
                                    hint="Charts from an HTTP Helm repository are fetched with 'helm pull' into "
                                         "charts/ and need no ref")
            if ref and version.startswith("v"):
                raise PlatformError("charts.%s: version %r cannot be pulled from oci:// by petra_bundle" % (
                    name, version), hint="Use a packaged chart (no ref) for versions with a 'v' prefix")
            charts[name] = ChartSource(name, version, ref)
        unknown = sorted(set(overrides) - set(catalog.CHARTS))
        if unknown:
            raise PlatformError("charts: unknown charts %s" % ", ".join(unknown),
                                hint="Known charts: %s" % ", ".join(sorted(catalog.CHARTS)))
        return charts

    # ---- where things land in the high-side registry (the load step's naming) --------------------------------
    def image_repository(self, role):
        """The high-side repository of an image: <registry>[/<prefix>]/<source host>/<source path>."""
        ref = self.images[role][1]
        return "%s/%s" % (self.target.host, self.target.repository(host_component(ref.registry), ref.repository))

    def image_tag(self, role):
        return self.images[role][1].tag

    def image(self, role):
        return "%s:%s" % (self.image_repository(role), self.image_tag(role))

    def chart_url(self, name):
        """oci:// URL of a chart in the high-side registry, where petra_bundle state=loaded puts it."""
        chart = self.charts[name]
        if chart.ref:
            host, _sep, path = chart.ref[len("oci://"):].partition("/")
            repository = self.target.repository(host_component(host), path)
        else:
            repository = self.target.repository("charts", name)
        return "oci://%s/%s" % (self.target.host, repository)

    def manifests_url(self, set_name):
        return "oci://%s/%s" % (self.target.host, self.target.repository("manifests", self.bundle_name, set_name))

    @property
    def registry_glob(self):
        """The ClusterImagePolicy glob for every image of the high-side registry (below its prefix)."""
        return "%s/**" % self.target
