"""petra_capi_management: the management bundle's tree from provider release files, and the Flux objects that install
Cluster API core and CAPA from the loaded bundle. Stand-in release files (tests/support/capi_components.py) go through
the whole path: bundled, a load result named the way the load step names things, rendered, then what Flux would do
(kustomize build with the rendered images and patches, run by kubectl's kustomize, and the post-build substitution):
every image is the high-side copy by digest, nothing names an internet host, no static AWS key, every object valid."""

import base64
import hashlib
import os
import re
import shutil
import subprocess

import pytest
import yaml

from ansible_collections.petra.core.plugins.module_utils.adapters.capi_management import ARGUMENT_SPEC, run
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.capi.errors import CapiError
from ansible_collections.petra.core.plugins.module_utils.load.targets import TargetRegistry, host_component
from ansible_collections.petra.core.plugins.module_utils.manifests.documents import read_files
from ansible_collections.petra.core.plugins.module_utils.manifests.schemas import SchemaSet
from ansible_collections.petra.core.plugins.module_utils.manifests.validate import Validator
from ansible_collections.petra.core.plugins.module_utils.oci.reference import ImageReference
from ansible_collections.petra.core.tests.conftest import CRD_DIR, require_tools
from ansible_collections.petra.core.tests.support import capi_components as release

REGISTRY = "registry.high.example:5000/petra"
HIGH = "registry.high.example:5000/"
EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "management", "bundle.yml")
ENDPOINTS = [{"service": "ec2", "url": "https://ec2.us-gov-west-1.amazonaws.com"},
             {"service": "sts", "url": "https://vpce-0a1b-sts.sts.us-gov-west-1.vpce.amazonaws.com"}]


def params(**options):
    values = {name: spec.get("default") for name, spec in ARGUMENT_SPEC.items()}
    values.update(options)
    return values


def digest_of(text):
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def load_result(spec, registry=REGISTRY):
    """What petra_bundle state=loaded returns for the bundle of ``spec``, named as load/targets.py names pushes."""
    target = TargetRegistry(registry)
    images = []
    for item in spec["images"]:
        ref = ImageReference.parse(item["ref"])
        repository = target.repository(host_component(ref.registry), ref.repository)
        images.append({"source": item["ref"], "digest": digest_of(item["ref"]), "pushed": True,
                       "target": "%s/%s:%s@%s" % (target.host, repository, ref.tag, digest_of(item["ref"]))})
    artifacts = [{"kind": "manifests", "source": item["name"], "digest": digest_of(item["name"]), "pushed": True,
                  "target": "%s/%s:%s@%s" % (target.host, target.repository("manifests", spec["metadata"]["name"],
                                                                            item["name"]),
                                             spec["metadata"]["version"], digest_of(item["name"]))}
                 for item in spec["manifests"]]
    return {"changed": True, "name": spec["metadata"]["name"], "version": spec["metadata"]["version"],
            "registry": registry, "images": images, "artifacts": artifacts}


@pytest.fixture
def bundled(tmp_path):
    options = release.write_release(tmp_path)
    result = run(params(state="bundled", dest=str(tmp_path / "bundle"), **options), False)
    with open(result["bundle_spec"]) as handle:
        return tmp_path, result, yaml.safe_load(handle)


def flux_build(set_dir, kustomization, work):
    """The objects Flux's kustomize-controller applies for ``kustomization``: the set's files with the spec's images
    and patches (kustomize itself), then the post-build substitution."""
    shutil.copytree(set_dir, work)
    spec = kustomization["spec"]
    config = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
              "resources": sorted(os.listdir(work)), "images": spec["images"], "patches": spec["patches"]}
    (work / "kustomization.yaml").write_text(yaml.safe_dump(config))
    built = subprocess.run(["kubectl", "kustomize", str(work)], capture_output=True, text=True, timeout=60,
                           check=False)
    assert built.returncode == 0, built.stderr
    text = release.flux_substitute(built.stdout, (spec.get("postBuild") or {}).get("substitute") or {})
    (work / "applied.yaml").write_text(text)
    return text, [doc for doc in yaml.safe_load_all(text) if doc]


def strings_in(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)
    elif isinstance(value, str):
        yield value


def test_bundled_tree_carries_the_release_files_and_every_image(bundled):
    tmp_path, result, spec = bundled
    BundleSpec.from_file(result["bundle_spec"])  # the bundle spec schema petra_bundle applies
    assert [item["ref"] for item in spec["images"]] == sorted([release.CAPA_IMAGE, release.CORE_IMAGE])
    assert [item["name"] for item in spec["manifests"]] == ["capi-core", "capi-aws"]
    # Byte for byte: what crosses is what the release published.
    assert (tmp_path / "bundle" / "capi-core" / "core-components.yaml").read_text() == release.CORE_COMPONENTS
    assert (tmp_path / "bundle" / "capi-aws" / "infrastructure-components.yaml").read_text() == release.CAPA_COMPONENTS
    assert result["providers"] == {
        "core": {"version": "v1.11.1", "contract": "v1beta2", "manifest_set": "capi-core"},
        "infrastructure": {"version": "v2.10.0", "contract": "v1beta1", "manifest_set": "capi-aws"}}
    again = run(params(state="bundled", dest=str(tmp_path / "bundle"), **release.write_release(tmp_path)), False)
    assert not again["changed"]


def test_install_rewrites_every_image_by_digest_and_needs_no_internet(bundled, tmp_path):
    require_tools("kubectl")
    _root, result, spec = bundled
    loaded = load_result(spec)
    rendered = run(params(state="rendered", dest=str(tmp_path / "install"), loaded=loaded, region="us-gov-west-1",
                          service_endpoints=ENDPOINTS), False)
    files, documents = read_files([rendered["install"]])
    objects = [document.obj for document in documents]
    assert [("%s/%s" % (obj["kind"], obj["metadata"]["name"])) for obj in objects] == [
        "OCIRepository/petra-manifests-capi-core", "Kustomization/petra-capi-core",
        "OCIRepository/petra-manifests-capi-aws", "Kustomization/petra-capi-aws"]
    validator = Validator(SchemaSet().load([CRD_DIR]))
    assert [str(finding) for finding in validator.validate_all(documents)] == []
    sources = {obj["metadata"]["name"]: obj["spec"] for obj in objects if obj["kind"] == "OCIRepository"}
    for artifact in loaded["artifacts"]:
        source = sources["petra-manifests-" + artifact["source"]]
        assert source["ref"] == {"digest": artifact["digest"]}
        assert source["url"] == "oci://" + HIGH + "petra/manifests/capi-management/" + artifact["source"]
        assert source["verify"] == {"provider": "cosign", "secretRef": {"name": "petra-bundle-key"}}
    kustomizations = {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == "Kustomization"}
    assert kustomizations["petra-capi-aws"]["spec"]["dependsOn"] == [{"name": "petra-capi-core"}]

    digests = {image["source"]: image["digest"] for image in loaded["images"]}
    applied = {}
    for set_name, name in (("capi-core", "petra-capi-core"), ("capi-aws", "petra-capi-aws")):
        text, built = flux_build(result["dest"] + "/" + set_name, kustomizations[name], tmp_path / set_name)
        assert "${" not in text
        applied[set_name] = built
        for obj in built:
            for value in strings_in(obj):
                # Every registry.k8s.io reference is a path below the high-side registry, nothing else.
                for found in re.finditer(r"registry\.k8s\.io", value):
                    assert value[:found.start()].endswith(HIGH + "petra/"), value
        for obj in built:
            if obj["kind"] != "Deployment":
                continue
            for container in obj["spec"]["template"]["spec"]["containers"]:
                image = ImageReference.parse(container["image"])
                assert container["image"].startswith(HIGH + "petra/registry.k8s.io/")
                assert image.tag is None and image.digest in digests.values()
    images = {obj["metadata"]["name"]: obj["spec"]["template"]["spec"]["containers"][0]["image"]
              for objs in applied.values() for obj in objs if obj["kind"] == "Deployment"}
    assert images == {
        "capi-controller-manager": HIGH + "petra/registry.k8s.io/cluster-api/cluster-api-controller@" +
        digests[release.CORE_IMAGE],
        "capa-controller-manager": HIGH + "petra/registry.k8s.io/cluster-api-aws/cluster-api-aws-controller@" +
        digests[release.CAPA_IMAGE]}

    capa = {obj["kind"]: obj for obj in applied["capi-aws"]}
    # No static keys: the credentials file is the zeroed one, so the SDK takes the instance profile.
    assert base64.b64decode(capa["Secret"]["data"]["credentials"]) == b"\n"
    manager = capa["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert manager["args"][0] == "--leader-elect"
    gates = next(arg for arg in manager["args"] if arg.startswith("--feature-gates="))
    assert "BootstrapFormatIgnition=true" in gates and "EKS=false" in gates
    assert "TagUnmanagedNetworkResources=false" in gates and "AutoControllerIdentityCreator=true" in gates
    assert manager["args"][-1] == ("--service-endpoints=us-gov-west-1:ec2=https://ec2.us-gov-west-1.amazonaws.com,"
                                   "sts=https://vpce-0a1b-sts.sts.us-gov-west-1.vpce.amazonaws.com")
    env = {item["name"]: item.get("value") for item in manager["env"]}
    assert env == {"AWS_SHARED_CREDENTIALS_FILE": "/home/.aws/credentials", "AWS_REGION": "us-gov-west-1",
                   "AWS_DEFAULT_REGION": "us-gov-west-1", "AWS_STS_REGIONAL_ENDPOINTS": "regional"}
    core = {obj["kind"]: obj for obj in applied["capi-core"]}
    assert "MachinePool=true" in core["Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"][3]
    for objs in applied.values():
        crd = next(obj for obj in objs if obj["kind"] == "CustomResourceDefinition")
        assert crd["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/prune"] == "disabled"
        assert crd["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]  # the release's own kept
    # What Flux applies is valid Kubernetes (Namespaces, the Secret, the Deployments, the CRDs).
    _files, built_documents = read_files([str(tmp_path / name / "applied.yaml") for name in ("capi-core", "capi-aws")])
    checker = Validator(SchemaSet())
    assert [str(finding) for finding in checker.validate_all(built_documents)] == []
    assert checker.checked == len(built_documents) == 7

    again = run(params(state="rendered", dest=str(tmp_path / "install"), loaded=loaded, region="us-gov-west-1",
                       service_endpoints=ENDPOINTS), False)
    assert not again["changed"] and again["manifests"][0]["content"] == open(rendered["install"]).read()


def test_example_bundle_spec_is_what_bundled_writes_for_the_reference_releases(bundled):
    _tmp, _result, spec = bundled
    BundleSpec.from_file(EXAMPLE)
    with open(EXAMPLE) as handle:
        example = yaml.safe_load(handle)
    assert example["manifests"] == spec["manifests"]
    assert [item["ref"] for item in example["images"]] == [item["ref"] for item in spec["images"]]
    assert example["metadata"]["name"] == spec["metadata"]["name"]


@pytest.mark.parametrize("change, message", [
    (lambda o: o.update(core_version="v1.12.0"), "lists no release series 1.12"),
    (lambda o: o.update(infrastructure_version="2.10.0"), "is not a release version"),
    (lambda o: o.update(variables={"AWS_B64ENCODED_CREDENTIALS": "W2RlZmF1bHRd"}), "static AWS keys never"),
    (lambda o: o.update(variables={"EXP_BOOTSTRAP_FORMAT_IGNITION": "false"}), "cannot be changed"),
])
def test_bundled_refusals(tmp_path, change, message):
    options = params(state="bundled", dest=str(tmp_path / "bundle"), **release.write_release(tmp_path))
    change(options)
    with pytest.raises(CapiError, match=message):
        run(options, False)
    assert not (tmp_path / "bundle").exists()


def test_a_variable_without_default_must_be_given(tmp_path):
    options = release.write_release(tmp_path)
    path = tmp_path / "infrastructure-components.yaml"
    path.write_text(release.CAPA_COMPONENTS.replace("--v=${CAPA_LOGLEVEL:=0}", "--v=${CAPA_LOGLEVEL}"))
    with pytest.raises(CapiError, match="without a default: CAPA_LOGLEVEL"):
        run(params(state="bundled", dest=str(tmp_path / "b"), **options), False)
    assert run(params(state="bundled", dest=str(tmp_path / "b"), variables={"CAPA_LOGLEVEL": "2"}, **options),
               False)["changed"]


@pytest.mark.parametrize("extra, message", [
    ({"region": "gov-west"}, "is not an AWS region"),
    ({"service_endpoints": [{"service": "ec2", "url": "http://ec2.example"}]}, "is not an https:// URL"),
    ({"service_endpoints": [{"service": "sts", "url": "https://a.example"}, {"service": "sts", "url": "https://b.example"}]},
     "given twice"),
    ({"service_endpoints": [{"service": "EC2", "url": "https://a.example"}]}, "not an AWS SDK service id"),
    ({"loaded": {"registry": REGISTRY, "images": [], "artifacts": []}}, "lists no images"),
])
def test_rendered_refusals(bundled, tmp_path, extra, message):
    _root, _result, spec = bundled
    options = params(state="rendered", dest=str(tmp_path / "install"), loaded=load_result(spec), region="us-gov-west-1")
    options.update(extra)
    with pytest.raises(CapiError, match=message):
        run(options, False)
    assert not (tmp_path / "install").exists()


def test_a_set_missing_from_the_load_is_named(bundled, tmp_path):
    _root, _result, spec = bundled
    loaded = load_result(spec)
    loaded["artifacts"] = loaded["artifacts"][:1]
    with pytest.raises(CapiError, match="has no manifest set capi-aws"):
        run(params(state="rendered", dest=str(tmp_path / "install"), loaded=loaded, region="us-gov-west-1"), False)
