# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""What petra_bundle and petra_verify do with validated parameters; shared by module and action plugin."""

from __future__ import annotations

import os

from ansible_collections.petra.core.plugins.module_utils.aws.client import AWSConnection
from ansible_collections.petra.core.plugins.module_utils.bundle.create import create_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.options.custody import custody_from_params
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys, verify
from ansible_collections.petra.core.plugins.module_utils.options.registry import client_pool_from_params
from ansible_collections.petra.core.plugins.module_utils.options.signing import signer_from_params
from ansible_collections.petra.core.plugins.module_utils.trust.custody import custody_record
from ansible_collections.petra.core.plugins.module_utils.options.trust import gate_from_params, verify_options_from_params

# What a load reports about the signatures that admitted the bundle (besides key_id, the primary signer).
SIGNATURE_RESULT_KEYS = ("sha256", "signers", "unsigned_keys", "rejected_signatures", "threshold",
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


def run_create(params, check_mode, default_base_dir=None):
    level = params["compression_level"]
    if not 1 <= level <= 19:
        raise BundleError("compression_level %d is outside 1..19" % level,
                          hint="3 is fast and close to the best ratio for already-compressed layers")
    if params.get("spec"):
        spec = BundleSpec.from_file(params["spec"])
    else:
        spec = BundleSpec.from_definition(params["definition"], params.get("base_dir") or default_base_dir or os.getcwd())
    signer = signer_from_params(params)
    pool = client_pool_from_params(params)
    custody = custody_from_params(params, lambda: AWSConnection.from_params(params))
    return create_bundle(spec, params["dest"], signer, pool, signature_path=params.get("signature"), level=level,
                         check_mode=check_mode, force=params["force"], mode=parse_mode(params["mode"]), **custody)


def run_load(params, check_mode):
    from ansible_collections.petra.core.plugins.module_utils.load.loader import BundleLoader
    from ansible_collections.petra.core.plugins.module_utils.load.registries import k3s_registries, write_registries
    from ansible_collections.petra.core.plugins.module_utils.load.targets import TargetRegistry

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
                          verify_options=verify_options_from_params(params), admit=gate.admit if gate else None)
    result = loader.run(check_mode=check_mode)
    result.update((name, loader.verification[name]) for name in SIGNATURE_RESULT_KEYS)
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
    from ansible_collections.petra.core.plugins.module_utils.oci.registry import RegistryWriter
    from ansible_collections.petra.core.plugins.module_utils.trust.witness import TrustWitness

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
    from ansible_collections.petra.core.plugins.module_utils.k8s.client import KubeClient
    from ansible_collections.petra.core.plugins.module_utils.load.flux import FluxSync

    kube = KubeClient(params["kubeconfig"], params.get("kube_context"))
    flux = FluxSync(kube, target, params["flux_namespace"], {
        "bundle": loader.metadata["name"], "interval": params["flux_interval"], "secret_ref": params.get("flux_secret_ref"),
        "cert_secret_ref": params.get("flux_cert_secret_ref"), "verify_secret_ref": params.get("flux_verify_secret_ref"),
        "insecure": insecure})
    objects, requested_at = flux.apply(loader.items, check_mode)
    if params["flux_wait"] and not check_mode:
        flux.wait(objects, params["flux_timeout"])
    return {"objects": objects, "requested_at": requested_at, "waited": bool(params["flux_wait"] and not check_mode)}


def run_cosign(params, check_mode):
    from ansible_collections.petra.core.plugins.module_utils.bundle.second_signature import cosign_bundle

    signer = signer_from_params(params)
    keys = load_public_keys(params["public_keys"])
    return cosign_bundle(params["src"], signer, keys, signature_path=params.get("signature"),
                         cosignature_path=params.get("cosignatures"), check_mode=check_mode,
                         mode=parse_mode(params["mode"]))


def run_bundle(params, check_mode, default_base_dir=None):
    if params["state"] == "loaded":
        return run_load(params, check_mode)
    if params["state"] == "signed":
        return run_cosign(params, check_mode)
    return run_create(params, check_mode, default_base_dir)


def run_verify(params):
    from ansible_collections.petra.core.plugins.module_utils.load.targets import TargetRegistry

    keys = load_public_keys(params["public_keys"])
    gate = gate_from_params(params)
    if params.get("registry"):
        if gate is None:
            raise BundleError("registry needs trust_state: it names where the trust state's witness is kept",
                              hint="Give trust_state, or leave registry out")
        bind_witness(gate, client_pool_from_params(params), TargetRegistry(params["registry"]), check_mode=True)
    verification = verify(params["path"], keys, params.get("signature"), **verify_options_from_params(params))
    result = verification.result
    if gate is not None:
        gate.admit(result, verification.metadata)
        result["trust_state"] = gate.preview()
    result["custody"] = custody_record(verification.metadata, result)
    result["changed"] = False
    return result
