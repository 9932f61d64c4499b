"""petra_manifests: objects are checked against Kubernetes 1.33 and the CRD schemas, and every failure names the file
and line, the object and the field."""

import io
import os
import shutil
import tarfile

import jsonschema
import pytest
import yaml

from ansible_collections.petra.core.plugins.module_utils.manifests.documents import ManifestError
from ansible_collections.petra.core.plugins.module_utils.adapters.manifests import ARGUMENT_SPEC as MANIFESTS_ARGUMENT_SPEC, run as run_manifests
from ansible_collections.petra.core.plugins.module_utils.manifests.schemas import SchemaSet, strict
from ansible_collections.petra.core.plugins.module_utils.manifests.validate import check_manifests
from ansible_collections.petra.core.plugins.module_utils.platform.gatekeeper import REGO_DIR
from ansible_collections.petra.core.tests.conftest import CRD_DIR


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: apps
spec:
  replicas: %(replicas)s
  selector:
    matchLabels: {app: web}
  strategy:
    rollingUpdate: {maxSurge: 25%%, maxUnavailable: 1}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: registry.high.example:5000/petra/cgr.dev/chainguard/nginx:1.27
          %(field)s: IfNotPresent
"""
SOURCE = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: petra-chart-gatekeeper
  namespace: flux-system
spec:
  interval: 10m
  url: oci://registry.high.example:5000/petra/charts/gatekeeper
  ref: {semver: 3.21.0}
  verify:
    %(field)s: cosign
    secretRef: {name: petra-bundle-key}
"""


def write(directory, name, text):
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def crds():
    return [CRD_DIR]


def params(paths, **options):
    result = {name: spec.get("default") for name, spec in MANIFESTS_ARGUMENT_SPEC.items()}
    result.update(paths=paths, **options)
    return result


def test_valid_objects_pass(tmp_path, crds):
    write(tmp_path, "apps/web.yaml", DEPLOYMENT % {"replicas": 2, "field": "imagePullPolicy"}
          + "---\n" + SOURCE % {"field": "provider"})
    result = run_manifests(params([str(tmp_path)], crds=crds), False)
    assert result == {"changed": False, "files": 1, "objects": 2,
                      "kinds": ["apps/v1 Deployment", "source.toolkit.fluxcd.io/v1 OCIRepository"],
                      "unknown_kinds_allowed": [], "kubernetes_version": "1.33"}


def test_core_failure_names_file_line_object_and_field(tmp_path, crds):
    path = write(tmp_path, "web.yaml", "---\n# the web app\n" + DEPLOYMENT % {"replicas": 2, "field": "imagePullPolicyy"})
    _files, _documents, findings, _validator = check_manifests([str(tmp_path)], crds)
    assert [finding.as_dict() for finding in findings] == [{
        "file": path, "line": 3, "object": "Deployment apps/web", "kind": "Deployment", "namespace": "apps",
        "name": "web", "field": "spec.template.spec.containers[0].imagePullPolicyy",
        "message": "unknown field 'imagePullPolicyy'"}]
    with pytest.raises(ManifestError) as caught:
        run_manifests(params([str(tmp_path)], crds=crds), False)
    assert caught.value.reason == "invalid"
    assert str(caught.value).startswith("1 problem(s) in 1 object(s) of 1 file(s): %s:3: Deployment apps/web: "
                                        "spec.template.spec.containers[0].imagePullPolicyy: unknown field" % path)
    assert caught.value.details["findings"][0]["field"] == "spec.template.spec.containers[0].imagePullPolicyy"


def test_core_wrong_type(tmp_path, crds):
    write(tmp_path, "web.yaml", DEPLOYMENT % {"replicas": "two", "field": "imagePullPolicy"})
    (finding,) = check_manifests([str(tmp_path)], crds)[2]
    assert finding.field == "spec.replicas" and "'two' is not of type" in finding.message


def test_custom_resource_failure_names_the_field(tmp_path, crds):
    path = write(tmp_path, "sources.yaml", SOURCE % {"field": "providr"})
    findings = check_manifests([path], crds)[2]
    assert [(f.object, f.field, f.message) for f in findings] == [
        ("OCIRepository flux-system/petra-chart-gatekeeper", "spec.verify", "'provider' is a required property"),
        ("OCIRepository flux-system/petra-chart-gatekeeper", "spec.verify.providr", "unknown field 'providr'")]
    assert {f.file for f in findings} == {path} and {f.line for f in findings} == {1}


def test_custom_resource_metadata_and_scope(tmp_path, crds):
    write(tmp_path, "issuer.yaml", """\
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata:
  name: petra-ca
  namespace: cert-manager
  labels: {team: [payments]}
spec:
  ca: {secretName: petra-root-ca}
""")
    findings = check_manifests([str(tmp_path)], crds)[2]
    assert sorted((f.field, f.message.split(" is ")[0]) for f in findings) == [
        ("metadata.labels.team", "['payments']"), ("metadata.namespace", "ClusterIssuer")]


def test_int_or_string_fields(tmp_path, crds):
    chart = """\
apiVersion: helm.cattle.io/v1
kind: HelmChart
metadata: {name: cilium, namespace: kube-system}
spec:
  chart: oci://registry.high.example:5000/petra/quay.io/cilium/charts/cilium
  set: %s
"""
    write(tmp_path, "good.yaml", chart % "{replicas: 1, mode: strict}")
    assert check_manifests([str(tmp_path)], crds)[2] == []
    write(tmp_path, "bad.yaml", chart % "{replicas: [1]}")
    (finding,) = check_manifests([str(tmp_path)], crds)[2]
    assert finding.field == "spec.set.replicas" and finding.file.endswith("bad.yaml")


def test_constraint_parameters_are_checked_against_their_template(tmp_path, crds):
    with open(os.path.join(REGO_DIR, "k8spetraallowedregistries.rego"), "r", encoding="utf-8") as handle:
        rego = handle.read()
    parameters = {"type": "object", "properties": {"registries": {"type": "array", "items": {"type": "string"}}}}
    template = {"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
                "metadata": {"name": "k8spetraallowedregistries"},
                "spec": {"crd": {"spec": {"names": {"kind": "K8sPetraAllowedRegistries"},
                                          "validation": {"openAPIV3Schema": parameters}}},
                         "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": rego}]}}
    write(tmp_path, "templates/registries.yaml", yaml.safe_dump(template))
    write(tmp_path, "constraints/registries.yaml", """\
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sPetraAllowedRegistries
metadata: {name: petra-allowed-registries}
spec:
  enforcementAction: deny
  match:
    kinds: [{apiGroups: [""], kinds: [Pod]}]
    excludedNamespace: [kube-system]
  parameters:
    registry: [registry.high.example:5000/petra]
""")
    findings = check_manifests([str(tmp_path)], crds)[2]
    assert [(f.object, f.field, f.message) for f in findings] == [
        ("K8sPetraAllowedRegistries petra-allowed-registries", "spec.match.excludedNamespace",
         "unknown field 'excludedNamespace'"),
        ("K8sPetraAllowedRegistries petra-allowed-registries", "spec.parameters.registry",
         "unknown field 'registry'")]
    # Without its template the constraint kind is unknown.
    findings = check_manifests([str(tmp_path / "constraints")], crds)[2]
    assert [f.message for f in findings] == [
        "no schema for constraints.gatekeeper.sh/v1beta1 K8sPetraAllowedRegistries: not a Kubernetes 1.33 kind and "
        "no CRD given for it"]


def test_unknown_kinds_fail_unless_allowed(tmp_path):
    write(tmp_path, "config.yaml", """\
apiVersion: config.gatekeeper.sh/v1alpha1
kind: Config
metadata: {name: config, namespace: gatekeeper-system}
spec: {match: []}
""")
    (finding,) = check_manifests([str(tmp_path)])[2]
    assert finding.object == "Config gatekeeper-system/config" and "no schema" in finding.message
    for allowed in (["Config"], ["config.gatekeeper.sh/v1alpha1/Config"], ["*"]):
        result = run_manifests(params([str(tmp_path)], allow_unknown_kinds=allowed), False)
        assert result["unknown_kinds_allowed"] == ["config.gatekeeper.sh/v1alpha1 Config"]
    with pytest.raises(ManifestError):
        run_manifests(params([str(tmp_path)], allow_unknown_kinds=["config.gatekeeper.sh/v1/Config"]), False)


def test_crds_from_a_packaged_chart_and_from_the_manifests(tmp_path):
    """CRDs in a chart's crds/ directory (read from the .tgz), and CRDs shipped among the manifests, define kinds."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for name, source in (("gatekeeper/Chart.yaml", None),
                             ("gatekeeper/crds/constrainttemplate.yaml",
                              os.path.join(CRD_DIR, "constrainttemplate-customresourcedefinition.yaml"))):
            data = b"apiVersion: v2\nname: gatekeeper\nversion: 3.21.0\n" if source is None else open(source, "rb").read()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    chart = tmp_path / "gatekeeper-3.21.0.tgz"
    chart.write_bytes(raw.getvalue())
    template = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8sexample}
spec:
  crd: {spec: {names: {kind: K8sExample}}}
  targets: [{target: admission.k8s.gatekeeper.sh, rego: "package k8sexample"}]
  tragets: []
"""
    write(tmp_path, "manifests/template.yaml", template)
    (finding,) = check_manifests([str(tmp_path / "manifests")], [str(chart)])[2]
    assert (finding.field, finding.message) == ("spec.tragets", "unknown field 'tragets'")
    assert check_manifests([str(tmp_path / "manifests")])[2][0].message.startswith("no schema for templates")
    # The same CRD shipped with the manifests.
    shutil.copy(os.path.join(CRD_DIR, "constrainttemplate-customresourcedefinition.yaml"), tmp_path / "manifests")
    findings = check_manifests([str(tmp_path / "manifests")])[2]
    assert [(f.field, f.message) for f in findings] == [("spec.tragets", "unknown field 'tragets'")]


def test_strict_schemas():
    schema = strict({"type": "object", "properties": {
        "a": {"type": "string", "nullable": True},
        "b": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"c": {"type": "string"}}},
        "d": {"x-kubernetes-int-or-string": True},
    }, "oneOf": [{"properties": {"a": {}}, "required": ["a"]}, {"properties": {"b": {}}, "required": ["b"]}]})
    validator = jsonschema.Draft7Validator(schema)
    assert list(validator.iter_errors({"a": None, "d": "50%"})) == []
    assert list(validator.iter_errors({"b": {"c": "x", "extra": 1}, "d": 3})) == []
    assert [error.message for error in validator.iter_errors({"a": "x", "e": 1})] == [
        "Additional properties are not allowed ('e' was unexpected)"]
    assert len(list(validator.iter_errors({"a": "x", "d": [1]}))) == 1


@pytest.mark.parametrize("text, expected", [
    ("- just\n- a list\n", "not a Kubernetes object"),
    ("kind: ConfigMap\nmetadata: {name: x}\n", "apiVersion and kind are required"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {labels: {a: b}}\n", "a name is required"),
])
def test_documents_that_are_not_objects(tmp_path, text, expected):
    write(tmp_path, "odd.yaml", text)
    findings = check_manifests([str(tmp_path)])[2]
    assert len(findings) == 1 and expected in findings[0].message


def test_reading_errors(tmp_path):
    with pytest.raises(ManifestError) as caught:
        check_manifests([str(tmp_path / "missing")])
    assert caught.value.reason == "missing" and caught.value.details["file"] == str(tmp_path / "missing")
    write(tmp_path, "broken.yaml", "apiVersion: v1\nkind: [ConfigMap\n")
    with pytest.raises(ManifestError) as caught:
        check_manifests([str(tmp_path)])
    assert caught.value.reason == "yaml" and "broken.yaml" in str(caught.value)


def test_unsupported_kubernetes_version(tmp_path):
    write(tmp_path, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    with pytest.raises(ManifestError) as caught:
        check_manifests([str(tmp_path)], kubernetes_version="1.9")
    assert caught.value.reason == "version" and "1.33" in caught.value.hint
    assert check_manifests([str(tmp_path)], kubernetes_version="1.30")[2] == []


def test_schema_set_ignores_unserved_versions(tmp_path):
    schemas = SchemaSet().load([os.path.join(CRD_DIR, "source.toolkit.fluxcd.io_ocirepositories.yaml")])
    served = sorted(key for key in schemas.schemas)
    assert ("source.toolkit.fluxcd.io/v1", "OCIRepository") in served
    assert all(key[1] == "OCIRepository" for key in served)
