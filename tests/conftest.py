"""Shared fixtures: keys, a TLS + htpasswd registry with umoci-built images, and bundle sources."""

from __future__ import annotations

import os
import shutil

import pytest

from ansible_collections.petra.core.tests.support import images, pki, servers

REGISTRY_USER = ("petra", "s3cret-Passw0rd")
# Test data copied into the repository, unmodified; tests/data/SOURCES.md gives each file's origin.
TEST_DATA = os.path.join(os.path.dirname(os.path.realpath(__file__)), "data")
CRD_DIR = os.path.join(TEST_DATA, "crds")
COSIGN_VECTORS = os.path.join(TEST_DATA, "cosign")


def require_tools(*names):
    missing = [name for name in names if shutil.which(name) is None]
    if missing:
        pytest.fail("missing tools %s: run 'make test' (it installs the Debian packages)" % ", ".join(missing))


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    return pki.make_ca_and_server(str(directory))


class PublishedImages:
    """What the registry fixture holds: references and digests as skopeo pushed them."""

    def __init__(self, registry):
        self.registry = registry
        self.app = "%s/team/app:1.0" % registry.host
        self.app_digest = None
        self.tools = "%s/team/tools:2.0" % registry.host
        self.tools_digest = None
        self.multi = "%s/team/multi:3.0" % registry.host
        self.multi_digest = None
        self.multi_children = {}


@pytest.fixture(scope="session")
def registry(tmp_path_factory, tls_material):
    """docker-registry with TLS and htpasswd, holding an image, a second image sharing a layer, and a 2-arch index."""
    require_tools("docker-registry", "skopeo", "umoci", "htpasswd")
    workdir = str(tmp_path_factory.mktemp("registry"))
    server = servers.Registry(workdir, tls=tls_material, users=dict([REGISTRY_USER])).start()
    try:
        layout = os.path.join(workdir, "layout")
        published = PublishedImages(server)
        published.app_digest = images.build_image(layout, "app", ["base", "app"], layer_size=300_000)
        published.tools_digest = images.build_image(layout, "tools", ["base", "tools"], layer_size=300_000)
        amd = images.build_image(layout, "multi-amd64", ["m-amd64"], arch="amd64")
        arm = images.build_image(layout, "multi-arm64", ["m-arm64"], arch="arm64")
        published.multi_digest = images.add_multiarch_index(
            layout, "multi", {"linux/amd64": "multi-amd64", "linux/arm64": "multi-arm64"})
        published.multi_children = {"linux/amd64": amd, "linux/arm64": arm}
        images.push(layout, "app", server, "team/app", "1.0", creds=REGISTRY_USER)
        images.push(layout, "tools", server, "team/tools", "2.0", creds=REGISTRY_USER)
        images.push(layout, "multi", server, "team/multi", "3.0", creds=REGISTRY_USER, all_platforms=True)
        yield published
    finally:
        server.stop()


@pytest.fixture
def ec_key(tmp_path):
    """(private key path, public key path) of a fresh P-256 PKCS#8 key."""
    key = str(tmp_path / "signing.pem")
    pub = pki.write_ec_key(key)
    return key, pub


@pytest.fixture
def sources(tmp_path):
    """A spec directory with a manifest set and a file."""
    root = tmp_path / "src"
    (root / "manifests" / "apps").mkdir(parents=True)
    (root / "manifests" / "apps" / "namespace.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n")
    (root / "manifests" / "apps" / "config.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  namespace: apps\ndata:\n  a: b\n")
    (root / "bin").mkdir()
    (root / "bin" / "k3s").write_bytes(os.urandom(200_000))
    return root


@pytest.fixture
def spool(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    return out


@pytest.fixture(scope="session")
def moto():
    """moto in server mode on loopback (S3, KMS, ECR, ...), with the harness-only KMS DIGEST fix."""
    from ansible_collections.petra.core.tests.support.moto_server import MotoServer
    with MotoServer() as server:
        yield server
