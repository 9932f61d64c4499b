# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The argument spec of petra_flatcar and what it does with validated parameters."""

from __future__ import annotations

import os

from ansible_collections.petra.core.plugins.module_utils.atomic import write_atomically
from ansible_collections.petra.core.plugins.module_utils.aws.client import (
    AWS_ARGUMENT_SPEC,
    AWSConnection,
    error_code,
    wrap_client_error,
)
from ansible_collections.petra.core.plugins.module_utils.flatcar import ignition
from ansible_collections.petra.core.plugins.module_utils.flatcar.ignition import IgnitionError

FLATCAR_ARGUMENT_SPEC = dict(
    AWS_ARGUMENT_SPEC,
    config_s3_uri=dict(type="str"),
    config_s3_always=dict(type="bool", default=False),
    config_s3_kms_key_id=dict(type="str", no_log=False),
    state=dict(type="str", default="rendered", choices=["rendered", "inspected", "present", "absent", "imported"]),
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
    kubeconfig=dict(type="path"),
    kube_context=dict(type="str"),
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
FLATCAR_REQUIRED_IF = [
    ("state", "rendered", ("node_role", "token", "k3s")),
    ("state", "inspected", ("binary",)),
    ("state", "present", ("cluster_name", "image", "servers")),
    ("state", "absent", ("cluster_name",)),
    ("state", "imported", ("image_file", "image_checksum", "image_name", "import_bucket")),
]


def run_flatcar(params, check_mode):
    if params["state"] in ("present", "absent"):
        return run_cluster(params, check_mode)
    if params["state"] == "imported":
        from ansible_collections.petra.core.plugins.module_utils.flatcar.ami_import import import_image
        return import_image(params, AWSConnection.from_params(params), check_mode)
    if params["state"] == "inspected":
        from ansible_collections.petra.core.plugins.module_utils.flatcar.buildinfo import inspect
        result = inspect(params["binary"], params["require_fips_module"], params.get("sysext_path"))
        result["changed"] = False
        return result
    document = ignition.render(
        params["node_role"], params["token"], params["k3s"], cluster_init=params["cluster_init"],
        server_url=params.get("server_url"), k3s_kind=params["k3s_kind"], registries=params.get("registries"),
        registry_ca=params.get("registry_ca"), manifests=params["manifests"], airgap_images=params["airgap_images"],
        ignition_version=params["ignition_version"], updates=params["updates"], host_fips=params["host_fips"],
        fips_go=params["fips_go"], k3s_config_extra=params["k3s_config_extra"])
    data, digest = ignition.serialise(document)
    result = {"changed": False, "ignition": document, "sha256": digest, "size": len(data),
              "fits_user_data": len(data) <= ignition.USER_DATA_LIMIT, "user_data": data.decode("utf-8")}
    uri = params.get("config_s3_uri")
    if uri and (params["config_s3_always"] or not result["fits_user_data"]):
        result["changed"] = _publish(params, uri, data, digest, check_mode) or result["changed"]
        stub = ignition.replace_stub(params["ignition_version"], uri, "sha256-" + digest)
        result["user_data"] = ignition.serialise(stub)[0].decode("utf-8")
        result["config_s3_uri"] = uri
    elif not result["fits_user_data"]:
        result["warnings"] = ["the config is %d bytes, over the 16 KB EC2 user-data limit: give config_s3_uri so "
                              "user data can carry a stub that replaces itself from S3" % len(data)]
    dest = params.get("dest")
    if dest:
        current = None
        if os.path.isfile(dest):
            with open(dest, "rb") as handle:
                current = handle.read()
        if current != data:
            result["changed"] = True
            if not check_mode:
                write_atomically(dest, lambda handle: handle.write(data), mode=0o600)
        result["dest"] = dest
    return result


def _publish(params, uri, data, digest, check_mode):
    """Upload the full config to s3://bucket/key unless it is already there; True when it was (or would be)."""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise IgnitionError("config_s3_uri %r is not s3://bucket/key" % uri)
    bucket, key = uri[5:].split("/", 1)
    s3 = AWSConnection.from_params(params).client("s3")
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
        if (head.get("Metadata") or {}).get("petra-sha256") == digest:
            return False
    except Exception as exc:  # botocore raises many types; a missing object is the expected one
        if error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
            raise IgnitionError(wrap_client_error(exc, "S3 HeadObject %s" % uri).message)
    if check_mode:
        return True
    extra = {"ChecksumAlgorithm": "SHA256", "Metadata": {"petra-sha256": digest}, "ContentType": "application/json"}
    if params.get("config_s3_kms_key_id"):
        extra.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=params["config_s3_kms_key_id"])
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=data, **extra)
    except Exception as exc:  # botocore raises many types; all are reported with their code
        raise IgnitionError(wrap_client_error(exc, "S3 PutObject %s" % uri).message,
                            hint="The node role needs s3:GetObject on it too, to fetch the config at boot")
    return True


def run_cluster(params, check_mode):
    from ansible_collections.petra.core.plugins.module_utils.flatcar.cluster import ClusterSpec, StandaloneCluster

    spec = ClusterSpec(params)
    nodes = None
    if params.get("kubeconfig"):
        from ansible_collections.petra.core.plugins.module_utils.k8s.nodes import NodeOperations
        nodes = NodeOperations(params["kubeconfig"], params.get("kube_context"), poll_interval=params["poll_interval"])
    cluster = StandaloneCluster(spec, AWSConnection.from_params(params), nodes=nodes, check_mode=check_mode,
                                wait_timeout=params["wait_timeout"], node_ready_timeout=params["node_ready_timeout"],
                                drain_timeout=params["drain_timeout"], update_strategy=params["update_strategy"])
    result = cluster.absent() if params["state"] == "absent" else cluster.present()
    result["actions"] = cluster.actions
    result["changed"] = bool(cluster.actions)
    return result
