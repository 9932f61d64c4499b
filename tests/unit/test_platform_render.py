"""petra_platform: the rendered tree validates (Kubernetes 1.33 and the addons' CRDs) for the default variables and a
non-default set, points only at the high-side registry, carries the bundle key, and is written idempotently."""

import base64
import hashlib
import json
import os
import subprocess

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.petra.core.plugins.module_utils.bundle.create import create_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys, verify_bundle
from ansible_collections.petra.core.plugins.module_utils.load.flux import oci_repository as loader_oci_repository
from ansible_collections.petra.core.plugins.module_utils.load.targets import TargetRegistry, plan_push
from ansible_collections.petra.core.plugins.module_utils.manifests.documents import read_files
from ansible_collections.petra.core.plugins.module_utils.manifests.schemas import SchemaSet
from ansible_collections.petra.core.plugins.module_utils.manifests.validate import Validator
from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes
from ansible_collections.petra.core.plugins.module_utils.oci.reference import ImageReference
from ansible_collections.petra.core.plugins.module_utils.oci.registry import ClientPool
from ansible_collections.petra.core.plugins.module_utils.platform import catalog
from ansible_collections.petra.core.plugins.module_utils.platform.errors import PlatformError
from ansible_collections.petra.core.plugins.module_utils.adapters.platform import ARGUMENT_SPEC as PLATFORM_ARGUMENT_SPEC, run as run_platform
from ansible_collections.petra.core.plugins.module_utils.signing.keys import key_id, load_signer
from ansible_collections.petra.core.tests.conftest import CRD_DIR
from ansible_collections.petra.core.tests.support import pki

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "platform", "bundle.yml")
REGISTRY = "registry.high.example:5000/petra"
SETS = ["bootstrap", "cert-issuers", "gatekeeper-constraints", "gatekeeper-templates", "image-policies", "kube-bench",
        "network-policies", "runtime-policies"]


def params_for(dest, public_key, **options):
    params = {name: spec.get("default") for name, spec in PLATFORM_ARGUMENT_SPEC.items()}
    params.update(dest=str(dest), registry=REGISTRY, public_key=public_key, cluster_name="alpha")
    params.update(options)
    return params


def documents_of(dest):
    files, documents = read_files([os.path.join(str(dest), name) for name in SETS])
    return files, [document.obj for document in documents]


def by_kind(objects, kind):
    return [obj for obj in objects if obj["kind"] == kind]


@pytest.fixture(scope="module")
def crd_schemas():
    return SchemaSet().load([CRD_DIR])


@pytest.fixture
def non_default(tmp_path):
    """Options far from the defaults: another key format, images and charts, CA, secrets, allow-lists, values. (The
    key stays P-256: Flux verifies with SHA-256 only, and petra_platform refuses P-384.)"""
    ca = pki.make_ca_and_server(str(tmp_path))
    with open(ca["ca.pem"], "r", encoding="ascii") as handle:
        ca_pem = handle.read()
    pub = pki.write_ec_key(str(tmp_path / "sec1.pem"), sec1=True)
    return pub, dict(
        bundle_name="edge-platform", bundle_version="2.3.1+build.7",
        allowed_registries=[REGISTRY, "registry.other.example/team"],
        required_labels=[{"key": "app.kubernetes.io/name"}, {"key": "team", "allowed_regex": "^[a-z]+$"}],
        exempt_namespaces=["kube-system", "kube-public", "kube-node-lease", "flux-system", "gatekeeper-system",
                           "tetragon", "cert-manager", "cosign-system", "kube-bench", "sandbox-*"],
        signed_namespaces=["payments", "ledger"], kube_proxy_replacement=True, api_server_host="10.0.0.10",
        images={"gatekeeper": "cgr.dev/example.com/gatekeeper-fips:3.21.1",
                "cilium-operator": "quay.io/cilium/operator-generic:v1.18.4"},
        charts={"cert-manager": {"ref": "oci://quay.io/jetstack/charts/cert-manager", "version": "1.18.2"},
                "tetragon": {"version": "1.5.1"}},
        image_platforms=["linux/amd64", "linux/arm64"], registry_ca=ca_pem, registry_pull_secret="high-registry",
        ca_secret="site-issuing-ca",
        network_allow=[{"name": "allow-payments-to-ledger", "description": "payments calls ledger", "spec": {
            "endpointSelector": {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "ledger"}},
            "ingress": [{"fromEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "payments"}}],
                         "toPorts": [{"ports": [{"port": "8443", "protocol": "TCP"}]}]}]}}],
        helm_values={"gatekeeper": {"replicas": 3}, "cilium": {"hubble": {"enabled": False}}},
        kube_bench_schedule="30 2 * * 0", kube_bench_benchmark="k3s-cis-1.7", flux_interval="5m")


def assert_valid(dest, crd_schemas):
    """Validate the tree like petra_manifests: CRDs from tests/data/crds plus the ConstraintTemplates rendered."""
    _files, documents = read_files([os.path.join(str(dest), name) for name in SETS])
    schemas = SchemaSet()
    schemas.schemas.update(crd_schemas.schemas)
    schemas.add_documents(documents)
    validator = Validator(schemas)
    findings = validator.validate_all(documents)
    assert [str(finding) for finding in findings] == []
    assert validator.checked == len(documents) and validator.skipped == []
    return [document.obj for document in documents]


def test_defaults_render_and_validate(tmp_path, ec_key, crd_schemas):
    _key, pub = ec_key
    result = run_platform(params_for(tmp_path / "out", pub), False)
    assert result["changed"] is True and result["removed"] == []
    assert result["manifest_sets"] == SETS
    objects = assert_valid(tmp_path / "out", crd_schemas)
    kinds = {obj["kind"] for obj in objects}
    assert kinds >= {"Namespace", "Secret", "HelmChart", "OCIRepository", "HelmRelease", "Kustomization",
                     "CiliumClusterwideNetworkPolicy", "ConstraintTemplate", "K8sPetraPrivileged",
                     "K8sPetraAllowedRegistries", "K8sPetraContainerLimits", "K8sPetraRequiredLabels", "TracingPolicy",
                     "ClusterIssuer", "Certificate", "ClusterImagePolicy", "CronJob", "ClusterRole"}
    # Every OCIRepository is pinned, verified with the bundle key's Secret, and in the high-side registry.
    sources = by_kind(objects, "OCIRepository")
    assert len(sources) == 4 + 7
    for source in sources:
        assert source["spec"]["url"].startswith("oci://" + REGISTRY + "/")
        assert source["spec"]["verify"] == {"provider": "cosign", "secretRef": {"name": "petra-bundle-key"}}
        assert list(source["spec"]["ref"]) == ["semver"]
    names = {source["metadata"]["name"] for source in sources}
    assert {release["spec"]["chartRef"]["name"] for release in by_kind(objects, "HelmRelease")} <= names
    assert {item["spec"]["sourceRef"]["name"] for item in by_kind(objects, "Kustomization")} <= names
    assert "petra-manifests-gatekeeper-templates" in names and "petra-chart-gatekeeper" in names
    (deny,) = [obj for obj in objects if obj["metadata"]["name"] == "petra-default-deny"]
    assert deny["spec"]["enableDefaultDeny"] == {"ingress": True, "egress": True}
    assert deny["spec"]["egress"][0]["toPorts"][0]["ports"] == [{"port": "53", "protocol": "UDP"},
                                                                {"port": "53", "protocol": "TCP"}]
    (bench,) = by_kind(objects, "CronJob")
    pod = bench["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert {volume["hostPath"]["path"] for volume in pod["volumes"] if "hostPath" in volume} >= {
        "/var/lib/rancher", "/etc/rancher"}
    assert {"name": "BENCHMARK", "value": "k3s-cis-1.8"} in pod["initContainers"][0]["env"]
    # Gatekeeper fails closed, within an explicit timeout, and is never called for the exempt namespaces.
    (gatekeeper_release,) = [r for r in by_kind(objects, "HelmRelease") if r["metadata"]["name"] == "gatekeeper"]
    values = gatekeeper_release["spec"]["values"]
    assert values["validatingWebhookFailurePolicy"] == "Fail"
    assert values["validatingWebhookCheckIgnoreFailurePolicy"] == "Fail"
    assert values["validatingWebhookTimeoutSeconds"] == 5
    assert values["validatingWebhookExemptNamespacesLabels"] == {
        "kubernetes.io/metadata.name": sorted(catalog.EXEMPT_NAMESPACES)}
    # Tetragon exports host and system-pod events (its chart's default denies namespaces "", cilium, kube-system):
    # only health-check execs are left out of the export file.
    (tetragon_release,) = [r for r in by_kind(objects, "HelmRelease") if r["metadata"]["name"] == "tetragon"]
    assert tetragon_release["spec"]["values"]["tetragon"]["exportDenyList"] == '{"health_check":true}'
    # Without a registry CA or pull secret, policy-controller gets neither.
    (policy_release,) = [r for r in by_kind(objects, "HelmRelease") if r["metadata"]["name"] == "policy-controller"]
    assert "registryCaBundle" not in policy_release["spec"]["values"]["webhook"]
    assert "imagePullSecrets" not in policy_release["spec"]["values"] and by_kind(objects, "ConfigMap") == []
    assert "ACME" not in str(by_kind(objects, "ClusterIssuer")) and not any(
        "acme" in issuer["spec"] for issuer in by_kind(objects, "ClusterIssuer"))


def test_non_default_set_renders_and_validates(tmp_path, non_default, crd_schemas):
    pub, options = non_default
    result = run_platform(params_for(tmp_path / "out", pub, **options), False)
    objects = assert_valid(tmp_path / "out", crd_schemas)
    sources = by_kind(objects, "OCIRepository")
    for source in sources:
        assert source["spec"]["secretRef"] == {"name": "high-registry"}
        assert source["spec"]["certSecretRef"] == {"name": "petra-registry-ca"}
        assert source["spec"]["interval"] == "5m"
    (tetragon_chart,) = [source for source in sources if source["metadata"]["name"] == "petra-chart-tetragon"]
    assert tetragon_chart["spec"]["ref"] == {"semver": "1.5.1"}
    (cert_manager_chart,) = [source for source in sources if source["metadata"]["name"] == "petra-chart-cert-manager"]
    assert cert_manager_chart["spec"]["url"] == "oci://%s/quay.io/jetstack/charts/cert-manager" % REGISTRY
    # A bundle version with build metadata is pinned as the tag the load step writes ('+' becomes '_').
    (set_source,) = [source for source in sources if source["metadata"]["name"] == "petra-manifests-kube-bench"]
    assert set_source["spec"]["ref"] == {"tag": "2.3.1_build.7"}
    assert set_source["spec"]["url"] == "oci://%s/manifests/edge-platform/kube-bench" % REGISTRY
    (policy,) = by_kind(objects, "ClusterImagePolicy")
    assert policy["spec"]["authorities"][0]["key"]["hashAlgorithm"] == "sha256"
    assert sorted(ns["metadata"]["name"] for ns in by_kind(objects, "Namespace")
                  if ns["metadata"]["labels"].get("policy.sigstore.dev/include") == "true") == ["ledger", "payments"]
    (issuer,) = by_kind(objects, "ClusterIssuer")
    assert issuer["spec"] == {"ca": {"secretName": "site-issuing-ca"}} and by_kind(objects, "Certificate") == []
    (cilium,) = [chart for chart in by_kind(objects, "HelmChart") if chart["metadata"]["name"] == "cilium"]
    values = yaml.safe_load(cilium["spec"]["valuesContent"])
    assert values["kubeProxyReplacement"] is True and values["k8sServiceHost"] == "10.0.0.10"
    assert values["hubble"] == {"enabled": False, "relay": {"enabled": False}, "ui": {"enabled": False}}
    assert values["operator"]["image"]["repository"] == "%s/quay.io/cilium/operator" % REGISTRY
    assert values["operator"]["image"]["suffix"] == "" and values["operator"]["image"]["tag"] == "v1.18.4"
    assert cilium["spec"]["repoCAConfigMap"] == {"name": "petra-registry-ca"}
    (gatekeeper_release,) = [r for r in by_kind(objects, "HelmRelease") if r["metadata"]["name"] == "gatekeeper"]
    assert gatekeeper_release["spec"]["values"]["replicas"] == 3
    # The webhook skips only exempt namespaces named exactly: a prefix cannot be a namespaceSelector value.
    assert gatekeeper_release["spec"]["values"]["validatingWebhookExemptNamespacesLabels"] == {
        "kubernetes.io/metadata.name": sorted(name for name in options["exempt_namespaces"] if "*" not in name)}
    # policy-controller trusts the registry CA (a ConfigMap in its namespace) and pulls with the pull secret.
    (policy_release,) = [r for r in by_kind(objects, "HelmRelease") if r["metadata"]["name"] == "policy-controller"]
    assert policy_release["spec"]["values"]["webhook"]["registryCaBundle"] == {
        "name": "petra-registry-ca", "key": "ca.crt"}
    assert policy_release["spec"]["values"]["imagePullSecrets"] == [{"name": "high-registry"}]
    (policy_ca,) = [obj for obj in by_kind(objects, "ConfigMap") if obj["metadata"]["namespace"] == "cosign-system"]
    assert policy_ca["metadata"]["name"] == "petra-registry-ca"
    assert policy_ca["data"]["ca.crt"].strip() == options["registry_ca"].strip()
    assert gatekeeper_release["spec"]["values"]["image"] == {
        "repository": "%s/cgr.dev/example.com/gatekeeper-fips" % REGISTRY, "release": "3.21.1"}
    (deny,) = [obj for obj in objects if obj["metadata"]["name"] == "petra-default-deny"]
    assert "sandbox-*" not in deny["spec"]["endpointSelector"]["matchExpressions"][0]["values"]
    policies = by_kind(objects, "CiliumClusterwideNetworkPolicy")
    assert "allow-payments-to-ledger" in {obj["metadata"]["name"] for obj in policies}
    spec = BundleSpec.from_file(result["bundle_spec"])
    assert spec.version == "2.3.1+build.7" and spec.images[0]["platforms"] == ["linux/amd64", "linux/arm64"]
    assert {"ref": "oci://quay.io/jetstack/charts/cert-manager", "version": "1.18.2"} in spec.charts


def strings_in(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)
    elif isinstance(value, str):
        yield value


def test_only_bundled_images_and_charts_are_referenced(tmp_path, ec_key):
    """Every image, chart and manifest set the platform names in the high-side registry is one the bundle spec
    carries, under the name the load step gives it."""
    _key, pub = ec_key
    result = run_platform(params_for(tmp_path / "out", pub), False)
    spec = BundleSpec.from_file(result["bundle_spec"])
    images = {"%s/%s" % (REGISTRY, image["ref"].rsplit(":", 1)[0]) for image in spec.images}
    sources = {"oci://%s/charts/%s" % (REGISTRY, os.path.basename(item["path"]).rsplit("-", 1)[0])
               for item in spec.charts if "path" in item}
    sources |= {"oci://%s/%s" % (REGISTRY, item["ref"][len("oci://"):]) for item in spec.charts if "ref" in item}
    sources |= {"oci://%s/manifests/platform/%s" % (REGISTRY, item["name"]) for item in spec.manifests}
    _files, objects = documents_of(tmp_path / "out")
    values = [yaml.safe_load(chart["spec"]["valuesContent"]) for chart in by_kind(objects, "HelmChart")]
    # valuesContent is YAML text (its values are looked at parsed); the registry itself is the allow-list entry and,
    # with "/**", the ClusterImagePolicy glob.
    referenced = {text for text in strings_in(objects + values)
                  if REGISTRY in text and "\n" not in text and text not in (REGISTRY, REGISTRY + "/**")}
    assert referenced, "the platform names nothing in the high-side registry"
    # Cilium's chart appends "-generic" and the suffix to the operator repository it is given.
    operator = "%s/cgr.dev/chainguard/cilium-operator" % REGISTRY
    for text in referenced:
        if text.startswith("oci://"):
            assert text in sources, text
        else:
            name = text.rsplit(":", 1)[0] if text.count(":") > 1 else text
            assert name in images or (name == operator and name + "-generic-fips" in images), text
    assert {ref.rsplit(":", 1)[0] for ref in result["images"].values()} == images
    assert {"oci://%s/charts/gatekeeper" % REGISTRY, "oci://%s/quay.io/cilium/charts/cilium" % REGISTRY} <= referenced


def test_names_match_what_the_load_step_pushes(tmp_path, non_default):
    """The load step's own push plan for this bundle's content (petra_bundle state=loaded) lands every image, chart
    and manifest set where the platform looks for it, and names the OCIRepositories it pins as the platform does."""
    pub, options = non_default
    result = run_platform(params_for(tmp_path / "out", pub, **options), False)
    spec = BundleSpec.from_file(result["bundle_spec"])
    config = "sha256:" + hashlib.sha256(b"{}").hexdigest()
    manifests = {}

    def artifact(seed):
        digest = "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
        manifests[digest] = json.dumps({"schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST,
                                        "config": {"digest": config, "size": 2}, "layers": []}).encode()
        return digest

    images = []
    for item in spec.images:
        ref = ImageReference.parse(item["ref"])
        images.append({"ref": item["ref"], "name": ref.name, "tag": ref.tag, "digest": artifact(item["ref"]),
                       "mediaType": mediatypes.OCI_MANIFEST})
    charts = []
    for item in spec.charts:
        name, version = (item["ref"].rsplit("/", 1)[-1], item["version"]) if "ref" in item else \
            os.path.basename(item["path"])[:-len(".tgz")].rsplit("-", 1)
        charts.append({"name": name, "version": version, "source": item.get("ref") or "charts/%s" % name,
                       "digest": artifact(name)})
    metadata = {"name": spec.name, "version": spec.version, "images": images, "charts": charts, "files": [],
                "manifests": [{"name": item["name"], "digest": artifact(item["name"])} for item in spec.manifests],
                "entries": [{"name": "blobs/sha256/" + config.split(":")[1], "digest": config, "size": 2}]}
    target = TargetRegistry(REGISTRY)
    pushed = plan_push(metadata, manifests, target)
    loaded = {item.kind: set() for item in pushed}
    for item in pushed:
        loaded[item.kind].add("%s/%s" % (target.host, item.repository))
    assert {ref.rsplit(":", 1)[0] for ref in result["images"].values()} == loaded["image"]
    _files, objects = documents_of(tmp_path / "out")
    sources = {obj["metadata"]["name"]: obj for obj in by_kind(objects, "OCIRepository")}
    pinned = {}
    for item in pushed:
        if item.kind in ("chart", "manifests"):
            desired = loader_oci_repository(item, target, "flux-system", {"bundle": spec.name})
            pinned[desired["metadata"]["name"]] = desired["spec"]["url"]
    for name, source in sources.items():
        assert pinned[name] == source["spec"]["url"], name
        assert source["metadata"]["namespace"] == "flux-system"
    charts_by_url = {obj["spec"]["chart"] for obj in by_kind(objects, "HelmChart")}
    assert charts_by_url <= {"oci://" + url for url in loaded["chart"]}
    # The OCIRepositories the load step would make beyond the platform's are those of the k3s-installed charts and
    # of the bootstrap set, which no Flux object uses.
    assert set(pinned) - set(sources) == {"petra-chart-cilium", "petra-chart-flux2", "petra-manifests-bootstrap"}


def test_policies_carry_exactly_the_bundle_key(tmp_path, ec_key, spool):
    """The key in the ClusterImagePolicy and in the Secret every OCIRepository verifies with is the public half of
    the key that signs the platform bundle: a bundle of the rendered manifest sets, signed with ec_key, verifies with
    either copy (by Petra and by openssl)."""
    key, pub = ec_key
    dest = tmp_path / "out"
    run_platform(params_for(dest, pub), False)
    _files, objects = documents_of(dest)
    (policy,) = by_kind(objects, "ClusterImagePolicy")
    (secret,) = [obj for obj in by_kind(objects, "Secret") if obj["metadata"]["name"] == "petra-bundle-key"]
    assert secret["metadata"]["namespace"] == "flux-system"
    assert {source["spec"]["verify"]["secretRef"]["name"] for source in by_kind(objects, "OCIRepository")} == {
        secret["metadata"]["name"]}
    with open(pub, "r", encoding="ascii") as handle:
        pem = handle.read()
    assert policy["spec"]["authorities"][0]["key"]["data"] == pem
    assert secret["stringData"] == {"cosign.pub": pem}
    assert policy["spec"]["images"] == [{"glob": REGISTRY + "/**"}]
    assert secret["metadata"]["annotations"]["petra.dev/key-id"] == key_id(load_public_keys([pub])[0])

    spec = BundleSpec({"apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
                       "metadata": {"name": "platform", "version": "1.0.0"},
                       "manifests": [{"name": name, "path": name} for name in SETS]}, str(dest))
    built = create_bundle(spec, str(spool / "platform.tar.zst"), load_signer(key), ClientPool(),
                          environ={"SOURCE_DATE_EPOCH": "1767225600"})
    for copy in (policy["spec"]["authorities"][0]["key"]["data"], secret["stringData"]["cosign.pub"]):
        assert verify_bundle(built["path"], load_public_keys([copy]))["verified"] is True
        key_file = tmp_path / "from-manifest.pub"
        key_file.write_text(copy)
        der = tmp_path / "sig.der"
        with open(built["path"] + ".sig", "rb") as handle:
            der.write_bytes(base64.b64decode(handle.read()))
        checked = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(key_file), "-signature", str(der),
                                  built["path"]], capture_output=True, text=True, timeout=60, check=False)
        assert checked.returncode == 0 and checked.stdout.strip() == "Verified OK"


def test_kube_bench_script_runs_the_benchmark_and_keeps_the_results(tmp_path, ec_key):
    """The CronJob's two steps, run with stand-ins for kube-bench and kubectl that record their arguments: the init
    container runs the k3s benchmark as JSON into a file (its command as Kubernetes expands it, no shell of ours),
    then the results container's script (/bin/sh) applies the ConfigMap kube-bench-<node> server-side and labels it.
    Each step runs in an image that carries what it needs: kube-bench's -dev variant (kube-bench runs its audit
    commands through /bin/sh) and kubectl's -dev variant (the script needs /bin/sh and kubectl)."""
    _key, pub = ec_key
    result = run_platform(params_for(tmp_path / "out", pub, kube_bench_benchmark="k3s-cis-1.7"), False)
    _files, objects = documents_of(tmp_path / "out")
    (cronjob,) = by_kind(objects, "CronJob")
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (bench,) = pod["initContainers"]
    (results,) = pod["containers"]
    assert bench["image"] == result["images"]["kube-bench"] and bench["image"].endswith("-dev")
    assert results["image"] == result["images"]["kubectl"] and results["image"].endswith("-dev")
    assert results["command"][:2] == ["/bin/sh", "-c"]
    assert pod["nodeSelector"] == {"node-role.kubernetes.io/control-plane": "true"}
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    (bin_dir / "kube-bench").write_text(
        "#!/bin/sh\necho \"kube-bench $*\" >> %s\nwhile [ $# -gt 0 ]; do [ \"$1\" = --outputfile ] && "
        "printf '{\"Controls\": []}' > \"$2\"; shift; done\n" % log)
    (bin_dir / "kubectl").write_text("#!/bin/sh\necho \"kubectl $*\" >> %s\n" % log)
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    work = tmp_path / "work"
    # The pod's emptyDir is /tmp/kube-bench; here a private directory stands in for it.
    work.mkdir()
    env = {item["name"]: item.get("value", "") for item in results["env"]}
    env.update(NODE_NAME="server-0", PATH="%s:/usr/bin:/bin" % bin_dir, HOME=str(tmp_path))
    command = [os.path.join(str(bin_dir), bench["command"][0])] + [
        arg.replace("$(BENCHMARK)", env["BENCHMARK"]).replace("/tmp/kube-bench", str(work))
        for arg in bench["command"][1:]]
    ran = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 0, ran.stderr
    script = results["command"][2].replace("/tmp/kube-bench", str(work))
    ran = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == '{"Controls": []}'
    assert log.read_text().splitlines() == [
        "kube-bench run --benchmark k3s-cis-1.7 --json --outputfile %s/results.json" % work,
        "kubectl create configmap kube-bench-server-0 --namespace kube-bench --from-file=results.json=%s/results.json "
        "--dry-run=client -o yaml" % work,
        "kubectl apply --server-side --force-conflicts -f %s/configmap.yaml" % work,
        "kubectl label --namespace kube-bench --overwrite configmap kube-bench-server-0 petra.dev/kube-bench=results "
        "petra.dev/benchmark=k3s-cis-1.7"]


def test_example_bundle_spec_is_the_default_render(tmp_path, ec_key):
    """examples/platform/bundle.yml parses as a bundle spec and lists exactly what the defaults render."""
    _key, pub = ec_key
    example = BundleSpec.from_file(EXAMPLE)
    result = run_platform(params_for(tmp_path / "out", pub, cluster_name="example"), False)
    with open(result["bundle_spec"], "r", encoding="utf-8") as handle:
        rendered = yaml.safe_load(handle)
    with open(EXAMPLE, "r", encoding="utf-8") as handle:
        assert yaml.safe_load(handle) == rendered
    assert [image["ref"] for image in example.images] == list(catalog.IMAGES.values())
    assert sorted(item["name"] for item in example.manifests) == SETS
    assert all(not image["ref"].startswith("cgr.dev/") or "-fips:" in image["ref"] for image in example.images)


def test_idempotent_check_mode_and_stale_files(tmp_path, ec_key):
    _key, pub = ec_key
    dest = tmp_path / "out"
    first = run_platform(params_for(dest, pub, signed_namespaces=["payments"]), True)
    assert first["changed"] is True and not dest.exists()
    run_platform(params_for(dest, pub, signed_namespaces=["payments"]), False)
    stamp = {path: os.stat(os.path.join(str(dest), path)).st_mtime_ns for path in (
        "bundle.yml", "bootstrap/00-base.yaml", "image-policies/namespaces.yaml")}
    again = run_platform(params_for(dest, pub, signed_namespaces=["payments"]), False)
    assert again["changed"] is False and not any(item["changed"] for item in again["files"])
    assert stamp == {path: os.stat(os.path.join(str(dest), path)).st_mtime_ns for path in stamp}
    # Without opted-in namespaces, their file goes; check mode only reports it.
    preview = run_platform(params_for(dest, pub), True)
    assert preview["changed"] is True and preview["removed"] == ["image-policies/namespaces.yaml"]
    assert (dest / "image-policies" / "namespaces.yaml").exists()
    done = run_platform(params_for(dest, pub), False)
    assert done["removed"] == ["image-policies/namespaces.yaml"]
    assert not (dest / "image-policies" / "namespaces.yaml").exists()
    assert [item["path"] for item in done["files"] if item["changed"]] == []
    assert run_platform(params_for(dest, pub), False)["changed"] is False


def test_deterministic_bytes_and_bootstrap_manifests(tmp_path, ec_key):
    _key, pub = ec_key
    one = run_platform(params_for(tmp_path / "a", pub), False)
    two = run_platform(params_for(tmp_path / "b", pub), False)
    assert [(item["path"], item["sha256"]) for item in one["files"]] == [
        (item["path"], item["sha256"]) for item in two["files"]]
    assert [item["name"] for item in one["bootstrap_manifests"]] == [
        "petra-00-base.yaml", "petra-10-cilium.yaml", "petra-20-flux.yaml", "petra-30-sources.yaml",
        "petra-40-addons.yaml"]
    with open(os.path.join(str(tmp_path / "a"), "bootstrap", "30-sources.yaml"), "r", encoding="utf-8") as handle:
        assert one["bootstrap_manifests"][3]["content"] == handle.read()


@pytest.mark.parametrize("options, fragment", [
    ({"registry": "Registry.Example/UPPER"}, "registry"),
    ({"cluster_name": "Alpha_1"}, "cluster_name"),
    ({"bundle_version": "1.0"}, "bundle_version"),
    ({"kube_proxy_replacement": True}, "api_server_host"),
    ({"images": {"gatekeeper": "cgr.dev/chainguard/gatekeeper-fips@sha256:" + "a" * 64}}, "has no tag"),
    ({"images": {"cilium-operator": "quay.io/cilium/operator:v1.18.4"}}, "-generic"),
    ({"images": {"grafana": "cgr.dev/chainguard/grafana:1"}}, "unknown image roles"),
    ({"charts": {"cert-manager": {"ref": "oci://quay.io/jetstack/charts/cert-manager", "version": "v1.18.2"}}},
     "'v' prefix"),
    ({"required_labels": [{"key": "bad key!"}]}, "not a label key"),
    ({"signed_namespaces": ["kube-system"]}, "exempt"),
    ({"helm_values": {"grafana": {}}}, "does not install"),
    ({"network_allow": [{"name": "petra-default-deny", "spec": {}}]}, "used twice"),
    ({"registry_ca": "/etc/ssl/ca.pem"}, "PEM"),
    ({"allowed_registries": ["https://registry.other.example"]}, "allowed_registries[0]"),
    ({"charts": {"tetragon": {"versoin": "1.5.1"}}}, "charts.tetragon"),
    ({"images": {"kubectl": "cgr.dev/chainguard/kubectl-fips:latest-dev"}}, "moving tag latest-dev"),
    ({"images": {"kube-bench": "cgr.dev/chainguard/kube-bench-fips:latest"}}, "moving tag latest"),
])
def test_refuses_bad_options(tmp_path, ec_key, options, fragment):
    _key, pub = ec_key
    with pytest.raises(PlatformError) as caught:
        run_platform(params_for(tmp_path / "out", pub, **options), False)
    assert fragment in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_refuses_keys_fips_does_not_allow(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    pem = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    with pytest.raises(PlatformError) as caught:
        run_platform(params_for(tmp_path / "out", pem), False)
    assert caught.value.reason == "public-key" and "P-256 or P-384" in str(caught.value)


def test_refuses_a_p384_bundle_key(tmp_path):
    """Flux verifies cosign signatures with SHA-256 only and Petra signs with SHA-384 for P-384 keys: a P-384 bundle
    key would make every OCIRepository fail, so the platform refuses it and says what to do."""
    pub = pki.write_ec_key(str(tmp_path / "p384.pem"), curve=ec.SECP384R1())
    with pytest.raises(PlatformError) as caught:
        run_platform(params_for(tmp_path / "out", pub), False)
    assert caught.value.reason == "public-key"
    assert "P-384" in caught.value.message and "SHA-256 only" in caught.value.message
    assert "P-256" in caught.value.hint
    assert not (tmp_path / "out").exists()


def test_catalog_images_have_versioned_tags():
    """No reference image moves under the bundle: every tag names a version."""
    for role, text in catalog.IMAGES.items():
        tag = ImageReference.parse(text).tag
        assert tag not in catalog.MOVING_TAGS and tag[0].isdigit(), (role, text)


def test_exempt_namespaces_are_created_by_the_platform_or_kubernetes(tmp_path, ec_key):
    """Every namespace exempt from a policy (Gatekeeper's constraints and webhook, Cilium's default deny, the Pod
    Security exemptions of the Ignition petra_flatcar renders) is one the platform creates itself or a Kubernetes
    system namespace: a name nobody creates would let whoever may create namespaces escape every policy at once."""
    from ansible_collections.petra.core.plugins.module_utils.flatcar import ignition
    _key, pub = ec_key
    run_platform(params_for(tmp_path / "out", pub), False)
    _files, base = read_files([os.path.join(str(tmp_path / "out"), "bootstrap", "00-base.yaml")])
    created = {document.obj["metadata"]["name"] for document in base if document.obj["kind"] == "Namespace"}
    trusted = created | set(catalog.KUBERNETES_NAMESPACES)
    _files, objects = documents_of(tmp_path / "out")
    exempt = {}
    for constraint in [obj for obj in objects if obj["apiVersion"].startswith("constraints.gatekeeper.sh/")]:
        exempt["constraint " + constraint["metadata"]["name"]] = set(constraint["spec"]["match"]["excludedNamespaces"])
        exempt["parameters " + constraint["metadata"]["name"]] = set(constraint["spec"]["parameters"]["exemptNamespaces"])
    (gatekeeper_release,) = [r for r in by_kind(objects, "HelmRelease") if r["metadata"]["name"] == "gatekeeper"]
    exempt["gatekeeper webhook"] = set(
        gatekeeper_release["spec"]["values"]["validatingWebhookExemptNamespacesLabels"]["kubernetes.io/metadata.name"])
    (deny,) = [obj for obj in objects if obj["metadata"]["name"] == "petra-default-deny"]
    (expression,) = deny["spec"]["endpointSelector"]["matchExpressions"]
    exempt["cilium default deny"] = set(expression["values"])
    document = ignition.render(token="K10-secret", node_role="server", cluster_init=True,
                               k3s={"url": "s3://petra-artifacts/k3s/v1.33.4+k3s1/k3s", "sha256": "a" * 64})
    (psa,) = [item for item in document["storage"]["files"] if item["path"] == "/etc/rancher/k3s/psa.yaml"]
    source = psa["contents"]["source"]
    config = yaml.safe_load(base64.b64decode(source[len("data:;base64,"):]))
    exempt["pod security"] = set(config["plugins"][0]["configuration"]["exemptions"]["namespaces"])
    assert len(exempt) == 2 * 4 + 3
    for where, names in exempt.items():
        assert names and names <= trusted, (where, sorted(names - trusted))
    assert "cilium" not in set().union(*exempt.values())
    # The platform's own namespaces are all exempt from Pod Security (the addons need it), and nothing else is.
    assert exempt["pod security"] == created | {"kube-system"}
