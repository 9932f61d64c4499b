# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""petra_flatcar's adapter: its argument spec, and which flatcar/ job each state runs with the validated params."""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.aws.client import AWSConnection
from ansible_collections.petra.core.plugins.module_utils.flatcar import ignition, userdata
from ansible_collections.petra.core.plugins.module_utils.flatcar.ami_import import import_image
from ansible_collections.petra.core.plugins.module_utils.flatcar.buildinfo import inspect
from ansible_collections.petra.core.plugins.module_utils.options.aws import AWS_ARGUMENT_SPEC
from ansible_collections.petra.core.plugins.module_utils.options.kube import KUBE_ARGUMENT_SPEC, KUBE_CONTROLLER_FILES

ARGUMENT_SPEC = dict(
    AWS_ARGUMENT_SPEC,
    **KUBE_ARGUMENT_SPEC,
    config_s3_uri=dict(type="str"),
    config_s3_always=dict(type="bool", default=False),
    config_s3_kms_key_id=dict(type="str", no_log=False),
    state=dict(type="str", default="rendered", choices=["rendered", "inspected", "present", "absent", "imported"]),
    provisioner=dict(type="str", default="ec2", choices=["ec2", "capi"]),
    capi=dict(type="dict", options=dict(
        namespace=dict(type="str"),
        vpc_id=dict(type="str"),
        kubernetes_version=dict(type="str"),
        availability_zones=dict(type="list", elements="str", default=[]),
        node_port_cidrs=dict(type="list", elements="str", default=[]),
        security_group_overrides=dict(type="dict", default={}),
        identity_ref=dict(type="dict", options=dict(
            kind=dict(type="str", required=True), name=dict(type="str", required=True))),
        ignition_storage=dict(type="str", default="user-data", choices=["user-data", "s3"]),
        config_s3_prefix=dict(type="str"),
        unhealthy_timeout=dict(type="int", default=300),
        max_unhealthy=dict(type="str", default="40%"),
        kubeconfig_dest=dict(type="path"),
        wait=dict(type="bool", default=True),
    )),
    node_role=dict(type="str", choices=["server", "agent"]),
    cluster_init=dict(type="bool", default=False),
    server_url=dict(type="str"),
    token=dict(type="str", no_log=True),
    k3s=dict(type="dict",
             options=dict(url=dict(type="str", required=True), sha256=dict(type="str", required=True))),
    k3s_kind=dict(type="str", default="binary", choices=["binary", "sysext"]),
    registries=dict(type="dict"),
    registry_ca=dict(type="str"),
    manifests=dict(type="list", elements="dict", default=[]),
    airgap_images=dict(type="list", elements="dict", default=[]),
    ignition_version=dict(type="str", default="3.3.0", choices=list(ignition.SPEC_VERSIONS)),
    updates=dict(type="str", default="disabled"),
    host_fips=dict(type="bool", default=False),
    fips_go=dict(type="bool", default=True),
    k3s_config_extra=dict(type="dict", default={}),
    dest=dict(type="path"),
    binary=dict(type="path"),
    require_fips_module=dict(type="bool", default=False),
    sysext_path=dict(type="str"),
    # Standalone cluster (state present/absent).
    cluster_name=dict(type="str"),
    image=dict(type="str"),
    subnets=dict(type="list", elements="str", default=[]),
    api_cidrs=dict(type="list", elements="str", default=[]),
    kms_key_id=dict(type="str", no_log=False),
    root_volume_size=dict(type="int", default=20),
    instance_profile=dict(type="str"),
    metadata_hop_limit=dict(type="int", default=1),
    tags=dict(type="dict", default={}),
    node_s3_read=dict(type="list", elements="str", default=[]),
    node_kms_key_arns=dict(type="list", elements="str", default=[], no_log=False),
    servers=dict(type="dict", options=dict(
        count=dict(type="int", default=1),
        instance_type=dict(type="str"),
        user_data=dict(type="str", no_log=True),
        init_user_data=dict(type="str", no_log=True),
    )),
    agents=dict(type="dict", options=dict(
        count=dict(type="int", default=0),
        instance_type=dict(type="str"),
        user_data=dict(type="str", no_log=True),
    )),
    update_strategy=dict(type="str", default="rolling", choices=["rolling", "none"]),
    wait_timeout=dict(type="int", default=600),
    node_ready_timeout=dict(type="int", default=900),
    drain_timeout=dict(type="int", default=600),
    poll_interval=dict(type="float", default=5.0),
    # Flatcar image import (state imported).
    image_file=dict(type="path"),
    image_checksum=dict(type="str"),
    image_signature=dict(type="path"),
    gpg_public_key=dict(type="str", no_log=False),
    image_name=dict(type="str"),
    import_bucket=dict(type="str"),
    import_prefix=dict(type="str", default="petra/flatcar-import/"),
    import_role=dict(type="str", default="vmimport"),
    import_timeout=dict(type="int", default=3600),
    architecture=dict(type="str", default="x86_64", choices=["x86_64", "arm64"]),
    boot_mode=dict(type="str", choices=["legacy-bios", "uefi", "uefi-preferred"]),
    ssm_parameter=dict(type="str"),
)
MUTUALLY_EXCLUSIVE = []
CONTROLLER_FILES = ("binary", "image_file", "image_signature") + KUBE_CONTROLLER_FILES
REQUIRED_IF = [
    ("state", "rendered", ("node_role", "token", "k3s")),
    ("state", "inspected", ("binary",)),
    ("state", "present", ("cluster_name", "image", "servers")),
    ("state", "absent", ("cluster_name",)),
    ("state", "imported", ("image_file", "image_checksum", "image_name", "import_bucket")),
]


def run(params, check_mode, playbook_dir=None):  # pylint: disable=unused-argument
    if params["state"] in ("present", "absent"):
        return _cluster(params, check_mode)
    if params["state"] == "imported":
        return import_image(params, AWSConnection.from_params(params), check_mode)
    if params["state"] == "inspected":
        result = inspect(params["binary"], params["require_fips_module"], params.get("sysext_path"))
        result["changed"] = False
        return result
    document = ignition.render(
        params["node_role"], params["token"], params["k3s"], cluster_init=params["cluster_init"],
        server_url=params.get("server_url"), k3s_kind=params["k3s_kind"], registries=params.get("registries"),
        registry_ca=params.get("registry_ca"), manifests=params["manifests"], airgap_images=params["airgap_images"],
        ignition_version=params["ignition_version"], updates=params["updates"], host_fips=params["host_fips"],
        fips_go=params["fips_go"], k3s_config_extra=params["k3s_config_extra"])
    return userdata.deliver(document, params["ignition_version"], check_mode, dest=params.get("dest"),
                            s3_uri=params.get("config_s3_uri"), s3_always=params["config_s3_always"],
                            kms_key_id=params.get("config_s3_kms_key_id"),
                            connect=lambda: AWSConnection.from_params(params))


def _cluster(params, check_mode):
    if params["provisioner"] == "capi":
        return _capi_cluster(params, check_mode)
    # Imported here: the kubernetes client they load takes seconds to import, and only these two states use it.
    from ansible_collections.petra.core.plugins.module_utils.flatcar.cluster import StandaloneCluster
    from ansible_collections.petra.core.plugins.module_utils.flatcar.spec import ClusterSpec
    from ansible_collections.petra.core.plugins.module_utils.k8s.nodes import NodeOperations

    nodes = None
    if params.get("kubeconfig"):
        nodes = NodeOperations(params["kubeconfig"], params.get("kube_context"), poll_interval=params["poll_interval"])
    cluster = StandaloneCluster(ClusterSpec(params), AWSConnection.from_params(params), nodes=nodes,
                                check_mode=check_mode, wait_timeout=params["wait_timeout"],
                                node_ready_timeout=params["node_ready_timeout"], drain_timeout=params["drain_timeout"],
                                update_strategy=params["update_strategy"])
    result = cluster.absent() if params["state"] == "absent" else cluster.present()
    result["actions"] = cluster.actions
    result["changed"] = bool(cluster.actions)
    return result


def _capi_cluster(params, check_mode):
    from ansible_collections.petra.core.plugins.module_utils.capi.apply import Log
    from ansible_collections.petra.core.plugins.module_utils.capi.cluster import CapiCluster
    from ansible_collections.petra.core.plugins.module_utils.capi.errors import CapiError
    from ansible_collections.petra.core.plugins.module_utils.capi.spec import CapiSpec
    from ansible_collections.petra.core.plugins.module_utils.flatcar.context import ClusterRun
    from ansible_collections.petra.core.plugins.module_utils.flatcar.iam import NodeIdentity
    from ansible_collections.petra.core.plugins.module_utils.flatcar.spec import ClusterSpec
    from ansible_collections.petra.core.plugins.module_utils.k8s.nodes import NodeOperations
    from ansible_collections.petra.core.plugins.module_utils.k8s.objects import ObjectClient

    if not params.get("kubeconfig"):
        raise CapiError("provisioner=capi needs kubeconfig: the management cluster's, where Cluster API and CAPA run",
                        reason="capi-spec")

    def identity(check):
        # The standalone mode's SSM-only node role and profile (petra-<cluster>-node), made the same way.
        run = ClusterRun(ClusterSpec(params), AWSConnection.from_params(params), check_mode=check)
        return NodeIdentity(run), run.actions

    cluster = CapiCluster(
        CapiSpec(params), ObjectClient(params["kubeconfig"], params.get("kube_context")),
        Log(check_mode, poll_interval=params["poll_interval"]), connect=lambda: AWSConnection.from_params(params),
        node_operations=lambda path: NodeOperations(path, poll_interval=params["poll_interval"]), identity=identity,
        wait_timeout=params["wait_timeout"], node_ready_timeout=params["node_ready_timeout"],
        drain_timeout=params["drain_timeout"], update_strategy=params["update_strategy"])
    result = cluster.absent() if params["state"] == "absent" else cluster.present()
    result["actions"] = cluster.actions
    result["changed"] = bool(cluster.actions)
    return result
