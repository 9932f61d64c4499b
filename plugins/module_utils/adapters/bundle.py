# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The adapter of petra_bundle: its argument spec, and what each state does with validated parameters.

Shared by the module file and its action plugin. It wires the domain packages together (bundle, load, trust,
custody, k8s) and holds no logic of its own beyond turning parameters into their objects.
"""

from __future__ import annotations

import os

from ansible_collections.petra.core.plugins.module_utils.aws.client import AWSConnection
from ansible_collections.petra.core.plugins.module_utils.bundle.completeness import MODES as COMPLETENESS_MODES
from ansible_collections.petra.core.plugins.module_utils.bundle.create import create_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.delta import DeltaBase
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError
from ansible_collections.petra.core.plugins.module_utils.bundle.rebuild import rebuild_and_compare
from ansible_collections.petra.core.plugins.module_utils.bundle.second_signature import cosign_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys
from ansible_collections.petra.core.plugins.module_utils.k8s.client import KubeClient
from ansible_collections.petra.core.plugins.module_utils.k8s.k3s import REGISTRY_CA_PATH
from ansible_collections.petra.core.plugins.module_utils.load.flux import FluxSync
from ansible_collections.petra.core.plugins.module_utils.load.loader import BundleLoader
from ansible_collections.petra.core.plugins.module_utils.load.registries import k3s_registries, write_registries
from ansible_collections.petra.core.plugins.module_utils.load.targets import TargetRegistry
from ansible_collections.petra.core.plugins.module_utils.oci.writer import RegistryWriter
from ansible_collections.petra.core.plugins.module_utils.options.aws import AWS_ARGUMENT_SPEC
from ansible_collections.petra.core.plugins.module_utils.options.custody import (
    CUSTODY_ARGUMENT_SPEC,
    custody_from_params,
)
from ansible_collections.petra.core.plugins.module_utils.options.kube import KUBE_ARGUMENT_SPEC, KUBE_CONTROLLER_FILES
from ansible_collections.petra.core.plugins.module_utils.options.registry import (
    client_pool_from_params,
    REGISTRY_ARGUMENT_SPEC,
)
from ansible_collections.petra.core.plugins.module_utils.options.signing import (
    signer_from_params,
    SIGNING_ARGUMENT_SPEC,
    SIGNING_MUTUALLY_EXCLUSIVE,
)
from ansible_collections.petra.core.plugins.module_utils.options.specs import merged
from ansible_collections.petra.core.plugins.module_utils.options.trust import (
    gate_from_params,
    TRUST_ARGUMENT_SPEC,
    verify_options_from_params,
    WITNESS_ARGUMENT_SPEC,
)
from ansible_collections.petra.core.plugins.module_utils.trust.custody import custody_record
from ansible_collections.petra.core.plugins.module_utils.trust.witness import TrustWitness

ARGUMENT_SPEC = merged(
    REGISTRY_ARGUMENT_SPEC,
    SIGNING_ARGUMENT_SPEC,
    AWS_ARGUMENT_SPEC,
    TRUST_ARGUMENT_SPEC,
    WITNESS_ARGUMENT_SPEC,
    CUSTODY_ARGUMENT_SPEC,
    KUBE_ARGUMENT_SPEC,
    state=dict(type="str", default="present", choices=["present", "loaded", "signed"]),
    spec=dict(type="path"),
    definition=dict(type="dict"),
    base_dir=dict(type="path"),
    dest=dict(type="path"),
    signature=dict(type="path"),
    compression_level=dict(type="int", default=3),
    image_completeness=dict(type="str", default="fail", choices=list(COMPLETENESS_MODES)),
    force=dict(type="bool", default=False),
    rebuild=dict(type="bool", default=False),
    mode=dict(type="raw", default="0644"),
    src=dict(type="path"),
    base=dict(type="path"),
    base_verification=dict(type="dict"),
    public_keys=dict(type="list", elements="str", aliases=["public_key"], no_log=False),
    registry=dict(type="str"),
    parallel=dict(type="int", default=4),
    registries_dest=dict(type="path"),
    registries_ca_path=dict(type="str", default=REGISTRY_CA_PATH),
    flux_namespace=dict(type="str", default="flux-system"),
    flux_interval=dict(type="str", default="10m"),
    flux_secret_ref=dict(type="str", no_log=False),
    flux_cert_secret_ref=dict(type="str", no_log=False),
    flux_verify_secret_ref=dict(type="str", no_log=False),
    flux_wait=dict(type="bool", default=False),
    flux_timeout=dict(type="int", default=300),
)
# Options naming controller files that a playbook may give relative to its files/ directory.
CONTROLLER_FILES = ("spec", "signing_key", "ca_file", "src", "public_keys", "signature",
                    "cosignatures", "base") + KUBE_CONTROLLER_FILES
MUTUALLY_EXCLUSIVE = [("spec", "definition"), ("base", "base_verification")] + SIGNING_MUTUALLY_EXCLUSIVE
REQUIRED_IF = [
    ("state", "present", ("spec", "definition"), True),
    ("state", "present", ("signing_key", "signing_key_content"), True),
    ("state", "present", ("dest",)),
    ("state", "loaded", ("src", "public_keys", "registry")),
    ("state", "signed", ("src", "public_keys")),
    ("state", "signed", ("signing_key", "signing_key_content"), True),
    ("rebuild", True, ("spec", "definition"), True),
]

# run() takes a progress sink (progress.Progress): the action plugin shows it in -v output, the petra command as bars.
REPORTS_PROGRESS = True
# run() takes the environment the task states (``environment:``, for SOURCE_DATE_EPOCH): the action plugin runs in
# ansible-playbook's own process, whose environment Ansible leaves as it is.
TAKES_ENVIRON = True

# What a load reports about the signatures that admitted the bundle (besides key_id, the primary signer).
SIGNATURE_RESULT_KEYS = ("sha256", "signers", "signer_details", "unsigned_keys", "rejected_signatures", "threshold",
                         "cosignatures_consulted")


def parse_mode(value):
    if isinstance(value, int):
        return value
    try:
        mode = int(str(value), 8)
    except ValueError:
        raise BundleError("mode %r is not an octal file mode such as '0644'" % (value,))
    if mode & ~0o777:
        raise BundleError("mode %r sets bits beyond rwx for user, group and other" % (value,))
    return mode


def spec_from_params(params, default_base_dir=None):
    """The bundle spec of ``spec`` (a file) or ``definition`` (inline, its paths relative to base_dir)."""
    if params.get("spec"):
        return BundleSpec.from_file(params["spec"])
    return BundleSpec.from_definition(params["definition"], params.get("base_dir") or default_base_dir or os.getcwd())


def high_side_from_params(params):
    """The load target (``registry``) the content's manifests may name images under, or None."""
    return str(TargetRegistry(params["registry"])) if params.get("registry") else None


def run_create(params, check_mode, default_base_dir=None, progress=None, environ=None):
    level = params["compression_level"]
    if not 1 <= level <= 19:
        raise BundleError("compression_level %d is outside 1..19" % level,
                          hint="3 is fast and close to the best ratio for already-compressed layers")
    spec = spec_from_params(params, default_base_dir)
    signer = signer_from_params(params)
    pool = client_pool_from_params(params)
    custody = custody_from_params(params, lambda: AWSConnection.from_params(params))
    return create_bundle(spec, params["dest"], signer, pool, signature_path=params.get("signature"), level=level,
                         check_mode=check_mode, force=params["force"], mode=parse_mode(params["mode"]),
                         base=delta_base_from_params(params, signer), progress=progress, environ=environ,
                         image_completeness=params.get("image_completeness"), high_side=high_side_from_params(params),
                         **custody)


def delta_base_from_params(params, signer):
    """The base of a delta (None for a full bundle): a bundle file, verified with public_keys (default: the signing
    key's own public key) before it is used, or what petra_verify returned for it."""
    if params.get("base_verification"):
        return DeltaBase.from_verification(params["base_verification"])
    if not params.get("base"):
        return None
    keys = load_public_keys(params["public_keys"]) if params.get("public_keys") else [signer.public_key()]
    return DeltaBase.from_bundle(params["base"], keys)


def run_load(params, check_mode, progress=None):
    if params["parallel"] < 1:
        raise BundleError("parallel must be at least 1")
    target = TargetRegistry(params["registry"])
    keys = load_public_keys(params["public_keys"])
    # The trust state is proven before the bundle is read, and must be writable before anything is pushed (check
    # mode writes nothing: there it only has to be readable and proven).
    gate = gate_from_params(params)
    if gate is not None and not check_mode:
        gate.require_writable()
    pool = client_pool_from_params(params)
    if gate is not None:
        bind_witness(gate, pool, target, params.get("trust_witness_reset"), check_mode)
    loader = BundleLoader(params["src"], keys, target, lambda: pool.new_client(target.host),
                          signature_path=params.get("signature"), parallel=params["parallel"],
                          verify_options=verify_options_from_params(params), admit=gate.admit if gate else None,
                          progress=progress)
    result = loader.run(check_mode=check_mode)
    result.update((name, loader.verification[name]) for name in SIGNATURE_RESULT_KEYS)
    result["delta"] = loader.verification["delta"]
    insecure = target.host in (params.get("insecure_registries") or [])
    registries = k3s_registries(loader.metadata, target, insecure=insecure,
                                ca_path=params["registries_ca_path"] if params.get("ca_file") else None,
                                username=params.get("registry_username"), password=params.get("registry_password"))
    result["registries"] = registries
    if params.get("registries_dest"):
        written = write_registries(registries, params["registries_dest"], check_mode)
        result["registries_dest"] = params["registries_dest"]
        result["changed"] = result["changed"] or written
    if params.get("kubeconfig"):
        result["flux"] = sync_flux(params, loader, target, insecure, check_mode)
        result["changed"] = result["changed"] or any(item["changed"] for item in result["flux"]["objects"])
    record_custody(result, gate, loader, target, check_mode)
    return result


def bind_witness(gate, pool, target, reset=None, check_mode=False):
    """The trust state must not be behind its witness in the target registry (checked before the bundle is read)."""
    gate.bind_witness(TrustWitness(RegistryWriter(pool.new_client(target.host)), target), reset, check_mode)


def record_custody(result, gate, loader, target, check_mode):
    """After a successful load: the custody record, and with a trust state the acceptance, written beside it."""
    targets = {(item.source, item.digest): item.target(target.host) for item in loader.items if item.kind == "image"}
    if gate is None:
        result["custody"] = custody_record(loader.metadata, loader.verification, targets)
        return
    trust, record, path, changed = gate.record(loader.verification, loader.metadata, targets, str(target), check_mode)
    result.update(trust_state=trust, custody=record, custody_path=path)
    result["changed"] = result["changed"] or changed


def sync_flux(params, loader, target, insecure, check_mode):
    kube = KubeClient(params["kubeconfig"], params.get("kube_context"))
    flux = FluxSync(kube, target, params["flux_namespace"], {
        "bundle": loader.metadata["name"], "interval": params["flux_interval"], "secret_ref": params.get("flux_secret_ref"),
        "cert_secret_ref": params.get("flux_cert_secret_ref"), "verify_secret_ref": params.get("flux_verify_secret_ref"),
        "insecure": insecure})
    objects, requested_at = flux.apply(loader.items, check_mode)
    if params["flux_wait"] and not check_mode:
        flux.wait(objects, params["flux_timeout"])
    return {"objects": objects, "requested_at": requested_at, "waited": bool(params["flux_wait"] and not check_mode)}


def run_cosign(params, check_mode, default_base_dir=None, progress=None, environ=None):
    signer = signer_from_params(params)
    keys = load_public_keys(params["public_keys"])
    reproduce = None
    if params.get("rebuild"):
        reproduce = rebuilder(params, keys, signer, default_base_dir, progress, environ)
    return cosign_bundle(params["src"], signer, keys, signature_path=params.get("signature"),
                         cosignature_path=params.get("cosignatures"), check_mode=check_mode,
                         mode=parse_mode(params["mode"]), reproduce=reproduce)


def rebuilder(params, keys, signer, default_base_dir=None, progress=None, environ=None):
    """rebuild=true: the function that rebuilds the verified bundle from the options of state=present and compares."""
    if params.get("scan"):
        raise BundleError("rebuild cannot be combined with scan: scan reports are not reproducible",
                          hint="Leave scan out of the co-signing task")
    spec = spec_from_params(params, default_base_dir)
    pool = client_pool_from_params(params)
    custody = custody_from_params(params, lambda: AWSConnection.from_params(params))
    base = delta_base_from_params(params, signer)
    return lambda verification: rebuild_and_compare(
        spec, params["src"], verification, keys, pool, verifier=custody["verifier"], sbom=custody["sbom"], base=base,
        environ=environ, progress=progress, image_completeness=params.get("image_completeness"),
        high_side=high_side_from_params(params))


def run(params, check_mode, playbook_dir=None, progress=None, environ=None):
    """What the task asks for; a relative base_dir of an inline definition is taken from the playbook's directory.
    ``progress`` (progress.Progress) follows a create or a load; ``environ`` is the environment a build or rebuild
    reads SOURCE_DATE_EPOCH from (None: this process's)."""
    if params["state"] == "loaded":
        return run_load(params, check_mode, progress)
    if params["state"] == "signed":
        return run_cosign(params, check_mode, playbook_dir, progress, environ)
    return run_create(params, check_mode, playbook_dir, progress, environ)
