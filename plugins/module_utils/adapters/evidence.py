# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""petra_evidence's adapter: its argument spec, the collectors the parameters ask for, and the assessment run."""

from __future__ import annotations

import re

from ansible_collections.petra.core.plugins.module_utils.aws.client import AWSConnection
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys
from ansible_collections.petra.core.plugins.module_utils.evidence import compare
from ansible_collections.petra.core.plugins.module_utils.evidence.assess import DEFAULT_SOURCES, SOURCES, Assessment
from ansible_collections.petra.core.plugins.module_utils.evidence.collect_aws import AWSCollector
from ansible_collections.petra.core.plugins.module_utils.evidence.collect_cluster import ClusterCollector
from ansible_collections.petra.core.plugins.module_utils.evidence.collect_custody import CustodyCollector
from ansible_collections.petra.core.plugins.module_utils.evidence.collect_nodes import K3S_PATHS, NodeCollector
from ansible_collections.petra.core.plugins.module_utils.evidence.checks_running import DEFAULT_EVENT_WINDOW
from ansible_collections.petra.core.plugins.module_utils.evidence.collect_running import TETRAGON_EXPORT, RunningCollector
from ansible_collections.petra.core.plugins.module_utils.evidence.collect_transfers import read_transfers
from ansible_collections.petra.core.plugins.module_utils.evidence.errors import EvidenceError
from ansible_collections.petra.core.plugins.module_utils.flatcar.iam import READ_POLICY
from ansible_collections.petra.core.plugins.module_utils.load.targets import TargetRegistry
from ansible_collections.petra.core.plugins.module_utils.options.aws import AWS_ARGUMENT_SPEC
from ansible_collections.petra.core.plugins.module_utils.options.kube import KUBE_ARGUMENT_SPEC, KUBE_CONTROLLER_FILES
from ansible_collections.petra.core.plugins.module_utils.options.registry import (
    REGISTRY_ARGUMENT_SPEC,
    client_pool_from_params,
)
from ansible_collections.petra.core.plugins.module_utils.options.signing import (
    SIGNING_ARGUMENT_SPEC,
    SIGNING_MUTUALLY_EXCLUSIVE,
    signer_from_params,
)
from ansible_collections.petra.core.plugins.module_utils.options.specs import merged
from ansible_collections.petra.core.plugins.module_utils.platform import gatekeeper, runtime

DEFAULT_CONSTRAINTS = [policy.constraint for policy in gatekeeper.POLICIES if policy.name != "k8spetrarequiredlabels"]
DEFAULT_TRACING_POLICIES = [make({})["metadata"]["name"]
                            for make in (runtime.process_exec, runtime.file_integrity, runtime.kernel_modules)]
ODP_ID = re.compile(r"^[a-z]{2}-[0-9]{1,2}(\.[0-9]+)?_(odp|prm)[._0-9a-z-]*$")
# The assessment's own settings, recorded in the results beside the organization-defined parameters.
SETTINGS = ("api_cidrs", "kms_key_id", "hop_limit", "cluster_admin_subjects", "required_constraints",
            "required_tracing_policies", "node_inline_policies", "registry", "node_allowed_ports", "tetragon_export",
            "tetragon_event_window")

ARGUMENT_SPEC = merged(
    AWS_ARGUMENT_SPEC,
    KUBE_ARGUMENT_SPEC,
    REGISTRY_ARGUMENT_SPEC,
    SIGNING_ARGUMENT_SPEC,
    cluster_name=dict(type="str", required=True),
    dest=dict(type="path", required=True),
    sources=dict(type="list", elements="str", choices=list(SOURCES), default=list(DEFAULT_SOURCES)),
    k3s_binary=dict(type="path"),
    trust_state=dict(type="path"),
    registry=dict(type="str"),
    api_cidrs=dict(type="list", elements="str", default=[]),
    kms_key_id=dict(type="str", no_log=False),
    hop_limit=dict(type="int", default=1),
    cluster_admin_subjects=dict(type="list", elements="str", default=["Group/system:masters"]),
    required_constraints=dict(type="list", elements="str", default=DEFAULT_CONSTRAINTS),
    required_tracing_policies=dict(type="list", elements="str", default=DEFAULT_TRACING_POLICIES),
    node_inline_policies=dict(type="list", elements="str", default=[READ_POLICY]),
    organization_parameters=dict(type="dict", default={}),
    node_command_timeout=dict(type="int", default=120),
    node_command_poll=dict(type="float", default=2.0),
    node_allowed_ports=dict(type="list", elements="int", default=[]),
    tetragon_export=dict(type="str", default=TETRAGON_EXPORT),
    tetragon_event_window=dict(type="int", default=DEFAULT_EVENT_WINDOW),
    transfer_records=dict(type="path"),
    transfer_public_key=dict(type="list", elements="str", no_log=False),
    previous=dict(type="path"),
    previous_public_key=dict(type="str", no_log=False),
)
MUTUALLY_EXCLUSIVE = list(SIGNING_MUTUALLY_EXCLUSIVE)
REQUIRED_IF = []
CONTROLLER_FILES = ("k3s_binary", "trust_state", "ca_file", "signing_key", "previous", "previous_public_key",
                    "transfer_records", "transfer_public_key") + KUBE_CONTROLLER_FILES


def collectors(params, check_mode=False):
    """source -> callable(store) collecting it, or the reason it cannot be collected."""
    wanted = set(params.get("sources") or DEFAULT_SOURCES)
    result = {source: "the source %s was not selected (sources)" % source for source in SOURCES}
    state = {}

    def aws(store):
        state["connection"] = AWSConnection.from_params(params)
        state["aws"] = AWSCollector(store, state["connection"], params["cluster_name"]).collect()

    def nodes(store):
        if "aws" not in state:
            raise EvidenceError("node configurations are read from EC2 user data: select the aws source too")
        NodeCollector(store, state["aws"], params.get("k3s_binary")).collect()

    def nodes_running(store):
        if "aws" not in state:
            raise EvidenceError("the nodes are found and asked through AWS: select the aws source too")
        RunningCollector(store, state["aws"], state["connection"], K3S_PATHS, params["node_command_timeout"],
                         params["node_command_poll"], tetragon_export=params["tetragon_export"],
                         send=not check_mode).collect()

    def cluster(store):
        if not params.get("kubeconfig"):
            raise EvidenceError("no kubeconfig was given, so the Kubernetes API was not read")
        ClusterCollector(store, params["kubeconfig"], params.get("kube_context")).collect()

    def custody(store):
        pool = client_pool_from_params(params) if params.get("registry") else None
        CustodyCollector(store, params.get("trust_state"), pool).collect()
        store.gather("custody/transfers.json", "Signed part indexes and Diode receipts of the cross-domain transfers",
                     lambda: read_transfers(params.get("transfer_records"),
                                            load_public_keys(params["transfer_public_key"])
                                            if params.get("transfer_public_key") else []))

    for name, function in (("aws", aws), ("nodes", nodes), ("nodes-running", nodes_running), ("cluster", cluster),
                           ("custody", custody)):
        if name in wanted:
            result[name] = function
    return result


def check_params(params):
    registries = []
    if params.get("registry"):
        registries.append(TargetRegistry(params["registry"]).host)
    values = {name: params.get(name) for name in SETTINGS}
    values["registries"] = registries
    return values


def run(params, check_mode=False, playbook_dir=None):  # pylint: disable=unused-argument
    """Collecting reads only; check mode reports whether the findings differ from the latest run's."""
    if params.get("tetragon_event_window") is not None and params["tetragon_event_window"] < 1:
        raise EvidenceError("tetragon_event_window must be at least 1 (minutes), not %d" %
                            params["tetragon_event_window"], reason="parameters")
    if not str(params.get("tetragon_export") or "").startswith("/"):
        raise EvidenceError("tetragon_export must be an absolute path on the nodes, not %r" %
                            params.get("tetragon_export"), reason="parameters")
    if not (params.get("signing_key") or params.get("signing_key_content")):
        raise EvidenceError("the assessment results must be signed: no signing key was given",
                            hint="Set signing_key (a PEM or cosign key file, or awskms://...) or signing_key_content",
                            reason="no-signing-key")
    signer = signer_from_params(params)
    settings = check_params(params)
    recorded = {"setting.%s" % name: ", ".join(str(item) for item in value) if isinstance(value, list) else value
                for name, value in settings.items() if name != "registries" and value not in (None, [], "")}
    for name, value in (params.get("organization_parameters") or {}).items():
        if not ODP_ID.match(name):
            raise EvidenceError("organization_parameters has the key %r, which is not a parameter id" % name,
                                hint="Use NIST's ids, for example au-02_odp.01 or sr-04_odp", reason="parameters")
        recorded["odp.%s" % name] = value
    previous = None
    if params.get("previous"):  # refused before anything is collected when its signature does not verify
        key = load_public_keys([params["previous_public_key"]])[0] if params.get("previous_public_key") else \
            signer.public_key()
        previous = compare.load(params["previous"], key)
    sources = collectors(params, check_mode)
    assessment = Assessment(params["cluster_name"], params["dest"], sources, settings, signer,
                            parameters={name: str(value) for name, value in recorded.items()}, previous=previous)
    return assessment.run(check_mode=check_mode)
