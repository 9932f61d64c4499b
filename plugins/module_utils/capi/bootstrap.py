# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Bootstrap data for Cluster API machines: the same Ignition standalone mode renders (``flatcar/ignition.py``),
plus the kubelet provider ID and, on the first server, the cluster CA; as user data, or as Petra's hash-pinned
S3 stub (``flatcar/userdata.py``) so that the token never sits in EC2 user data.

The cluster CA is Petra's (ECDSA P-256), kept in ``<cluster>-ca`` on the management cluster: k3s uses it as both
its server and client CA, so the kubeconfig Cluster API core signs with it is accepted by the workload API.
"""

from __future__ import annotations

import base64
import datetime

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - reported at run time
    HAS_CRYPTOGRAPHY = False

from ansible_collections.petra.core.plugins.module_utils.capi.errors import CapiError
from ansible_collections.petra.core.plugins.module_utils.capi.render import content_hash
from ansible_collections.petra.core.plugins.module_utils.flatcar import ignition, userdata

# (bootstrap kind, k3s role, initialises the cluster)
KINDS = (("server-init", "server", True), ("server", "server", False), ("agent", "agent", False))
KIND_NAMES = tuple(item[0] for item in KINDS)
CA_YEARS = 10


def new_ca(cluster_name):
    """A self-signed ECDSA P-256 / SHA-256 CA: (certificate PEM, PKCS#8 key PEM)."""
    if not HAS_CRYPTOGRAPHY:
        raise CapiError("the Python library 'cryptography' is required to make the cluster CA")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "%s-ca" % cluster_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365 * CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii"), key_pem.decode("ascii")


def ca_from_secret(secret):
    data = secret.get("data") or {}
    try:
        return base64.b64decode(data["tls.crt"]).decode("ascii"), base64.b64decode(data["tls.key"]).decode("ascii")
    except (KeyError, ValueError) as exc:
        raise CapiError("Secret %s has no usable tls.crt/tls.key (%s)" % (secret["metadata"]["name"], exc),
                        hint="Delete it only if the workload cluster does not exist yet: its nodes trust this CA",
                        reason="capi-ca")


def render(params, endpoint_host, ca):
    """The Ignition document of each bootstrap kind; ``endpoint_host`` is the API load balancer CAPA made."""
    server_url = "https://%s:6443" % endpoint_host
    documents = {}
    for kind, role, init in KINDS:
        extra = dict(params.get("k3s_config_extra") or {})
        if role == "server":
            # Servers answer on the load balancer's name too (the kubeconfig and joining nodes use it).
            extra["tls-san"] = sorted(set(list(extra.get("tls-san") or []) + [endpoint_host]))
        documents[kind] = ignition.render(
            role, params.get("token"), params.get("k3s"), cluster_init=init, server_url=None if init else server_url,
            k3s_kind=params.get("k3s_kind") or "binary", registries=params.get("registries"),
            registry_ca=params.get("registry_ca"), manifests=params.get("manifests") if role == "server" else None,
            airgap_images=params.get("airgap_images"), ignition_version=params.get("ignition_version") or "3.3.0",
            updates=params.get("updates") or "disabled", host_fips=bool(params.get("host_fips")),
            fips_go=params.get("fips_go", True), k3s_config_extra=extra, aws_provider_id=True,
            cluster_ca={"cert": ca[0], "key": ca[1]} if init else None)
    return documents


def user_data(spec, kind, document, check_mode, connect):
    """(user data, whether an S3 object was or would be written): the config itself, or with ignition_storage=s3
    a stub that replaces itself from ``<prefix>/<cluster>/<kind>-<hash>.ign`` pinned by SHA-256."""
    version = spec.params.get("ignition_version") or "3.3.0"
    if spec.storage == "s3":
        digest = ignition.serialise(document)[1]
        uri = "%s/%s/%s-%s.ign" % (spec.config_s3_prefix, spec.name, kind, digest[:16])
        result = userdata.deliver(document, version, check_mode, s3_uri=uri, s3_always=True,
                                  kms_key_id=spec.params.get("config_s3_kms_key_id"), connect=connect)
        return result["user_data"], result["changed"]
    data = ignition.serialise(document)[0]
    if len(data) > ignition.USER_DATA_LIMIT:
        raise CapiError("the %s config is %d bytes, over the 16 KB EC2 user-data limit" % (kind, len(data)),
                        hint="Set capi.ignition_storage=s3 and capi.config_s3_prefix: user data then carries a "
                             "hash-pinned stub", reason="capi-spec")
    return data.decode("utf-8"), False


def secret_name(spec, kind, value):
    return "%s-bootstrap-%s-%s" % (spec.name, kind, content_hash(value))


def delete_configs(spec, connection, log):
    """Remove the cluster's configs from S3 (they hold the token): every object under <prefix>/<cluster>/."""
    if spec.storage != "s3" or not spec.config_s3_prefix:
        return
    bucket, prefix = (spec.config_s3_prefix[len("s3://"):] + "/").split("/", 1)
    prefix = prefix.rstrip("/")
    prefix = "%s/%s/" % (prefix, spec.name) if prefix else "%s/" % spec.name
    s3 = connection.client("s3")
    with log.aws.errors("S3 ListObjectsV2 s3://%s/%s" % (bucket, prefix)):
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = [item["Key"] for page in pages for item in page.get("Contents") or []]
    for key in keys:
        log.record("delete", kind="S3Object", name="s3://%s/%s" % (bucket, key))
        if not log.check_mode:
            with log.aws.errors("S3 DeleteObject s3://%s/%s" % (bucket, key)):
                s3.delete_object(Bucket=bucket, Key=key)
