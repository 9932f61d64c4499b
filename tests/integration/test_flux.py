"""Flux objects after a load, against kmock's Kubernetes API emulator; every object checked against the Flux CRDs."""

import gzip
import io
import tarfile
import threading
import time

import pytest
import requests

from ansible_collections.petra.core.plugins.module_utils.bundle.create import create_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.adapters.bundle import run_load
from ansible_collections.petra.core.plugins.module_utils.load.errors import LoadError
from ansible_collections.petra.core.plugins.module_utils.oci.registry import ClientPool
from ansible_collections.petra.core.plugins.module_utils.signing.keys import load_signer
from ansible_collections.petra.core.tests.support import crds, servers
from ansible_collections.petra.core.tests.support.kube import KubeAPI

OCIREPOS = "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/ocirepositories"
KS = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/%s/kustomizations"
HR = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/%s/helmreleases"


def make_chart(path):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        for member, text in (("podinfo/Chart.yaml", "apiVersion: v2\nname: podinfo\nversion: 6.5.0\n"),
                             ("podinfo/values.yaml", "replicaCount: 1\n")):
            info = tarfile.TarInfo(member)
            info.size = len(text)
            archive.addfile(info, io.BytesIO(text.encode()))
    path.write_bytes(gzip.compress(raw.getvalue(), mtime=0))


@pytest.fixture
def setup(tmp_path, ec_key):
    key, pub = ec_key
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "ns.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n")
    make_chart(tmp_path / "podinfo-6.5.0.tgz")
    spec = BundleSpec({"apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
                       "metadata": {"name": "platform", "version": "1.4.0"},
                       "charts": [{"path": "podinfo-6.5.0.tgz"}],
                       "manifests": [{"name": "apps", "path": "apps"}]}, str(tmp_path))
    bundle = create_bundle(spec, str(tmp_path / "b.tar.zst"), load_signer(key), ClientPool(),
                           environ={"SOURCE_DATE_EPOCH": "1767225600"})
    (tmp_path / "registry").mkdir()
    (tmp_path / "kube").mkdir()
    with servers.Registry(str(tmp_path / "registry")) as registry, KubeAPI(str(tmp_path / "kube")) as kube:
        seed(kube)
        yield {"bundle": bundle["path"], "pub": pub, "registry": registry, "kube": kube}


def seed(kube):
    """Flux objects a platform already has: two that use Petra's sources, one that does not."""
    objects = [
        (KS % "flux-system", {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                              "metadata": {"name": "apps", "namespace": "flux-system"},
                              "spec": {"interval": "10m", "prune": True, "path": "./",
                                       "sourceRef": {"kind": "OCIRepository", "name": "petra-manifests-apps"}}}),
        (HR % "podinfo", {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                          "metadata": {"name": "podinfo", "namespace": "podinfo"},
                          "spec": {"interval": "10m", "chartRef": {
                              "kind": "OCIRepository", "name": "petra-chart-podinfo", "namespace": "flux-system"}}}),
        (KS % "flux-system", {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                              "metadata": {"name": "unrelated", "namespace": "flux-system"},
                              "spec": {"interval": "10m", "prune": True,
                                       "sourceRef": {"kind": "GitRepository", "name": "flux-system"}}}),
    ]
    for path, obj in objects:
        crds.validate(obj)
        requests.post(kube.url + path, json=obj, timeout=10).raise_for_status()


def params(setup, **extra):
    registry = setup["registry"]
    result = {"src": setup["bundle"], "public_keys": [setup["pub"]], "signature": None, "registry": registry.host,
              "ca_file": None, "registry_username": None, "registry_password": None,
              "insecure_registries": [registry.host], "registry_timeout": 30.0, "registry_retries": 1, "parallel": 2,
              "registries_dest": None, "registries_ca_path": "/etc/rancher/k3s/petra-registry-ca.pem",
              "kubeconfig": setup["kube"].kubeconfig, "kube_context": None, "flux_namespace": "flux-system",
              "flux_interval": "5m", "flux_secret_ref": "high-registry", "flux_cert_secret_ref": None,
              "flux_verify_secret_ref": "petra-bundle-key", "flux_wait": False, "flux_timeout": 30}
    result.update(extra)
    return result


def get(kube, path):
    response = requests.get(kube.url + path, timeout=10)
    response.raise_for_status()
    return response.json()


def test_oci_repositories_and_reconcile_requests(setup):
    kube = setup["kube"]
    result = run_load(params(setup), check_mode=False)
    flux = {item["name"]: item for item in result["flux"]["objects"]}
    assert set(flux) == {"petra-chart-podinfo", "petra-manifests-apps"}
    artifacts = {a["kind"]: a for a in result["artifacts"]}
    for name, kind in (("petra-chart-podinfo", "chart"), ("petra-manifests-apps", "manifests")):
        obj = get(kube, OCIREPOS + "/" + name)
        crds.validate(obj)
        assert obj["spec"]["ref"] == {"digest": artifacts[kind]["digest"]}
        target = artifacts[kind]["target"].split("@")[0].rsplit(":", 1)[0]
        assert obj["spec"]["url"] == "oci://" + target
        assert obj["spec"]["insecure"] is True and obj["spec"]["secretRef"] == {"name": "high-registry"}
        assert obj["spec"]["verify"] == {"provider": "cosign", "secretRef": {"name": "petra-bundle-key"}}
        assert obj["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"] == result["flux"]["requested_at"]
    chart = get(kube, OCIREPOS + "/petra-chart-podinfo")
    assert chart["spec"]["layerSelector"] == {"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                                              "operation": "copy"}
    assert get(kube, OCIREPOS + "/petra-manifests-apps")["spec"]["url"].endswith("/manifests/platform/apps")
    apps = get(kube, KS % "flux-system" + "/apps")
    release = get(kube, HR % "podinfo" + "/podinfo")
    unrelated = get(kube, KS % "flux-system" + "/unrelated")
    for obj in (apps, release, unrelated):
        crds.validate(obj)
    stamp = result["flux"]["requested_at"]
    assert apps["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"] == stamp
    assert release["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"] == stamp
    assert "annotations" not in unrelated["metadata"]
    assert flux["petra-manifests-apps"]["reconciled"] == ["Kustomization/flux-system/apps"]
    assert flux["petra-chart-podinfo"]["reconciled"] == ["HelmRelease/podinfo/podinfo"]

    again = run_load(params(setup), check_mode=False)
    assert again["changed"] is False
    assert all(not item["changed"] for item in again["flux"]["objects"])


def test_check_mode_creates_nothing(setup):
    result = run_load(params(setup), check_mode=True)
    assert result["changed"] is True
    assert all(item["action"] == "create" for item in result["flux"]["objects"])
    for name in ("petra-chart-podinfo", "petra-manifests-apps"):
        assert requests.get(setup["kube"].url + OCIREPOS + "/" + name, timeout=10).status_code == 404
    assert "annotations" not in get(setup["kube"], KS % "flux-system" + "/apps")["metadata"]


def controller(kube, stop, ready=True):
    """A stand-in for the Flux controllers: report the requested revision (or a failure) in status."""
    while not stop.is_set():
        listing = requests.get(kube.url + OCIREPOS, timeout=10)
        for repo in listing.json().get("items", []) if listing.status_code == 200 else []:
            digest = repo["spec"]["ref"]["digest"]
            status = {"conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                      "reason": "Succeeded" if ready else "OCIPullFailed",
                                      "message": "stored artifact" if ready else "failed to pull artifact: 401",
                                      "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                      "artifact": {"revision": digest, "digest": digest, "path": "x", "url": "http://x",
                                   "lastUpdateTime": "2026-01-01T00:00:00Z"}}
            requests.patch(kube.url + OCIREPOS + "/" + repo["metadata"]["name"], json={"status": status},
                           headers={"Content-Type": "application/merge-patch+json"}, timeout=10)
            for path, field in ((KS % "flux-system" + "/apps", "lastAppliedRevision"),
                                (HR % "podinfo" + "/podinfo", "lastAttemptedRevisionDigest")):
                obj = get(kube, path)
                ref = obj["spec"].get("sourceRef") or obj["spec"].get("chartRef")
                if ref["name"] == repo["metadata"]["name"]:
                    body = {"status": {"conditions": status["conditions"], field: digest}}
                    requests.patch(kube.url + path, json=body, headers={"Content-Type": "application/merge-patch+json"},
                                   timeout=10)
        time.sleep(0.2)


def test_wait_until_ready(setup):
    stop = threading.Event()
    thread = threading.Thread(target=controller, args=(setup["kube"], stop), daemon=True)
    thread.start()
    try:
        result = run_load(params(setup, flux_wait=True, flux_timeout=30), check_mode=False)
    finally:
        stop.set()
        thread.join()
    assert result["flux"]["waited"] is True
    for name in ("petra-chart-podinfo", "petra-manifests-apps"):
        crds.validate(get(setup["kube"], OCIREPOS + "/" + name))


def test_wait_reports_the_controller_message(setup):
    stop = threading.Event()
    thread = threading.Thread(target=controller, args=(setup["kube"], stop, False), daemon=True)
    thread.start()
    try:
        with pytest.raises(LoadError) as info:
            run_load(params(setup, flux_wait=True, flux_timeout=3), check_mode=False)
    finally:
        stop.set()
        thread.join()
    assert "failed to pull artifact: 401" in str(info.value) and "within 3s" in str(info.value)
