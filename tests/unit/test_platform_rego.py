"""The Gatekeeper policies, evaluated on AdmissionReview fixtures exactly as rendered: the Rego embedded in each
ConstraintTemplate with the parameters of its Constraint, by regopy, and each .rego file again by opa-eval (regorus).
"""

import glob
import json
import os

import opa_eval
import pytest
import regopy
import yaml

from ansible_collections.petra.core.plugins.module_utils.platform import gatekeeper
from ansible_collections.petra.core.plugins.module_utils.platform.settings import PlatformSettings

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "admission")
REGISTRY = "registry.high.example:5000/petra"
PRIVILEGED = "k8spetraprivileged"
REGISTRIES = "k8spetraallowedregistries"
LIMITS = "k8spetracontainerlimits"
LABELS = "k8spetrarequiredlabels"

# fixture -> {policy: number of violations}; a policy not named allows the request.
EXPECTED = {
    "pod-compliant": {},
    "deployment-compliant": {},
    "pod-privileged-container": {PRIVILEGED: 1},
    "pod-privileged-init-container": {PRIVILEGED: 1},
    "pod-privileged-ephemeral-container": {PRIVILEGED: 1},
    "cronjob-privileged-container": {PRIVILEGED: 1},
    "pod-image-other-registry": {REGISTRIES: 1},
    "pod-image-other-registry-digest": {REGISTRIES: 1},
    "pod-image-no-registry-host": {REGISTRIES: 1},
    "pod-image-docker-hub-short-name": {REGISTRIES: 1},
    "pod-image-docker-hub-short-name-digest": {REGISTRIES: 1},
    "pod-image-lookalike-registries": {REGISTRIES: 2},
    "pod-image-init-container-other-registry": {REGISTRIES: 1},
    "pod-image-allowed-digest": {},
    "pod-missing-limits": {LIMITS: 3},
    "pod-zero-limits": {LIMITS: 7},
    "deployment-missing-label": {LABELS: 1},
    "deployment-label-not-matching": {},
    "pod-exempt-namespace": {},
}


def settings_for(public_key, **options):
    params = {"registry": REGISTRY, "public_key": public_key, "cluster_name": "alpha", "bundle_name": "platform",
              "bundle_version": "1.0.0", "required_labels": [{"key": "app.kubernetes.io/name"}]}
    params.update(options)
    return PlatformSettings(params)


@pytest.fixture(scope="module")
def public_key(tmp_path_factory):
    from ansible_collections.petra.core.tests.support import pki
    return pki.write_ec_key(str(tmp_path_factory.mktemp("key") / "bundle.pem"))


@pytest.fixture(scope="module")
def rendered(public_key):
    """(template, constraint) of each policy, as petra_platform renders them with the default variables."""
    settings = settings_for(public_key)
    return {template["metadata"]["name"]: (template, constraint) for template, constraint in zip(
        gatekeeper.templates(settings), gatekeeper.constraints(settings))}


def load_review(name):
    with open(os.path.join(FIXTURES, name + ".yaml"), "r", encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def gatekeeper_input(review, constraint):
    """What Gatekeeper hands the Rego: the admission request and the constraint's parameters."""
    return {"review": review["request"], "parameters": constraint["spec"]["parameters"]}


def matched(constraint, request):
    """Whether the constraint's match.kinds select the request's kind (Gatekeeper's match, before any Rego)."""
    kind = request["kind"]
    return any(kind["group"] in item["apiGroups"] and kind["kind"] in item["kinds"]
               for item in constraint["spec"]["match"]["kinds"])


def regopy_violations(rego, package, data):
    interpreter = regopy.Interpreter()
    interpreter.add_module(package, rego)
    interpreter.set_input(data)
    output = interpreter.query("x = data.%s.violation" % package)
    assert output.ok(), str(output)
    return sorted(item["msg"] for item in json.loads(output.binding("x").json()))


def opa_violations(package, data):
    evaluator = opa_eval.OpaEval(os.path.join(gatekeeper.REGO_DIR, package + ".rego"),
                                 query="data.%s.violation" % package)
    return sorted(item["msg"] for item in json.loads(evaluator.evaluate(json.dumps(data))))


def test_every_fixture_has_an_expectation():
    names = {os.path.basename(path)[:-len(".yaml")] for path in glob.glob(os.path.join(FIXTURES, "*.yaml"))}
    assert names == set(EXPECTED)


def test_templates_embed_the_shipped_rego(rendered):
    assert set(rendered) == {PRIVILEGED, REGISTRIES, LIMITS, LABELS}
    for name, (template, constraint) in rendered.items():
        with open(os.path.join(gatekeeper.REGO_DIR, name + ".rego"), "r", encoding="utf-8") as handle:
            assert template["spec"]["targets"] == [{"target": "admission.k8s.gatekeeper.sh", "rego": handle.read()}]
        assert "package %s\n" % name in template["spec"]["targets"][0]["rego"]
        assert constraint["kind"] == template["spec"]["crd"]["spec"]["names"]["kind"]
        assert constraint["spec"]["enforcementAction"] == "deny"
        assert "kube-system" in constraint["spec"]["match"]["excludedNamespaces"]


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_admission_decisions(rendered, fixture):
    review = load_review(fixture)
    for name, (template, constraint) in sorted(rendered.items()):
        if not matched(constraint, review["request"]):
            continue
        data = gatekeeper_input(review, constraint)
        found = regopy_violations(template["spec"]["targets"][0]["rego"], name, data)
        assert len(found) == EXPECTED[fixture].get(name, 0), (name, found)
        # The same file, evaluated by a second engine, reaches the same decision with the same messages.
        assert opa_violations(name, data) == found


def test_messages_name_the_container_and_the_reason(rendered):
    review = load_review("pod-image-docker-hub-short-name")
    template, constraint = rendered[REGISTRIES]
    (message,) = regopy_violations(template["spec"]["targets"][0]["rego"], REGISTRIES,
                                   gatekeeper_input(review, constraint))
    assert message == ("Pod web: containers web uses image nginx:1.27 (docker.io/library/nginx:1.27), which is not "
                       "from an allowed registry: " + REGISTRY)
    template, constraint = rendered[PRIVILEGED]
    (message,) = regopy_violations(template["spec"]["targets"][0]["rego"], PRIVILEGED, gatekeeper_input(
        load_review("pod-privileged-ephemeral-container"), constraint))
    assert message == "Pod web: ephemeralContainers debugger is privileged; privileged containers are not allowed"


def test_zero_limits_count_as_missing(rendered):
    """Every zero spelling of a limit is refused, by both engines, naming the container and the resource; limits
    that only look like zero (0.5, 10m) are accepted."""
    template, constraint = rendered[LIMITS]
    data = gatekeeper_input(load_review("pod-zero-limits"), constraint)
    found = regopy_violations(template["spec"]["targets"][0]["rego"], LIMITS, data)
    assert opa_violations(LIMITS, data) == found
    refused = sorted(message.split(": ", 1)[1].split(";", 1)[0] for message in found)
    assert refused == sorted(
        ["containers %s has no %s limit" % (name, resource)
         for name in ("zero-with-units", "zero-plain", "zero-decimal") for resource in ("cpu", "memory")]
        + ["initContainers setup has no memory limit"])


def test_exempt_namespaces_are_honoured_by_the_rego_itself(rendered):
    """Gatekeeper's excludedNamespaces skips kube-system before any Rego runs; the Rego refuses the same pod there
    once kube-system is no longer exempt, so the exemption is not an accident of the fixture."""
    review = load_review("pod-exempt-namespace")
    counts = {}
    for name, (template, constraint) in rendered.items():
        parameters = dict(constraint["spec"]["parameters"], exemptNamespaces=["kube-public"])
        data = {"review": review["request"], "parameters": parameters}
        counts[name] = len(regopy_violations(template["spec"]["targets"][0]["rego"], name, data))
        assert len(opa_violations(name, data)) == counts[name]
    assert counts == {PRIVILEGED: 1, REGISTRIES: 1, LIMITS: 2, LABELS: 1}


def test_non_default_parameters(public_key):
    """A second allowed registry, a label with a pattern, and a prefix exemption."""
    settings = settings_for(public_key, allowed_registries=[REGISTRY, "registry.other.example/team"],
                            required_labels=[{"key": "app.kubernetes.io/name"},
                                             {"key": "team", "allowed_regex": "^[a-z][a-z0-9-]*$"}],
                            exempt_namespaces=["kube-system", "apps*"])
    policies = {template["metadata"]["name"]: (template, constraint) for template, constraint in zip(
        gatekeeper.templates(settings), gatekeeper.constraints(settings))}

    def count(name, fixture, namespace=None):
        template, constraint = policies[name]
        review = load_review(fixture)
        if namespace:
            review["request"]["namespace"] = namespace
            review["request"]["object"]["metadata"]["namespace"] = namespace
        data = gatekeeper_input(review, constraint)
        found = regopy_violations(template["spec"]["targets"][0]["rego"], name, data)
        assert opa_violations(name, data) == found
        return found

    assert count(REGISTRIES, "pod-image-other-registry-digest", "payments") == []
    assert len(count(REGISTRIES, "pod-image-no-registry-host", "payments")) == 1
    (message,) = count(LABELS, "deployment-label-not-matching", "payments")
    assert message == "Deployment web: label team=Payments Team does not match ^[a-z][a-z0-9-]*$"
    assert len(count(LABELS, "deployment-missing-label", "payments")) == 1
    # "apps*" exempts apps and every namespace starting with it, but nothing else.
    assert count(PRIVILEGED, "pod-privileged-container") == []
    assert count(PRIVILEGED, "pod-privileged-container", "apps-staging") == []
    assert len(count(PRIVILEGED, "pod-privileged-container", "payments")) == 1
