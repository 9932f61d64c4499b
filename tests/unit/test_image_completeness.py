"""No image left behind (issue 16 §3): every shape of image reference in manifests, Helm values, Chart.yaml and
templates is found with its why, matched against what the bundle carries, and a local build refuses, warns or
reports as the mode says. Charts are made here as .tgz; the reference platform's manifest sets are rendered."""

import io
import os
import tarfile

import pytest
import yaml

from ansible_collections.petra.core.plugins.module_utils.adapters.platform import (
    ARGUMENT_SPEC as PLATFORM_ARGUMENT_SPEC,
    run as run_platform,
)
from ansible_collections.petra.core.plugins.module_utils.bundle import completeness
from ansible_collections.petra.core.plugins.module_utils.bundle.create import create_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError
from ansible_collections.petra.core.plugins.module_utils.bundle.plan import BundlePlan
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.imagerefs import charts, discover, match, objects, values
from ansible_collections.petra.core.plugins.module_utils.imagerefs.errors import ImageRefsError
from ansible_collections.petra.core.plugins.module_utils.oci.reference import ImageReference
from ansible_collections.petra.core.plugins.module_utils.oci.registry import ClientPool
from ansible_collections.petra.core.plugins.module_utils.signing.keys import load_signer

DIGEST = "sha256:" + "a" * 64
PINNED = {"SOURCE_DATE_EPOCH": "1767225600"}


def chart_tgz(path, name, chart_values, annotations=None, templates=None, app_version="1.2.3", version="0.1.0"):
    meta = {"apiVersion": "v2", "name": name, "version": version, "appVersion": app_version}
    if annotations:
        meta["annotations"] = annotations
    files = {"Chart.yaml": yaml.safe_dump(meta), "values.yaml": yaml.safe_dump(chart_values)}
    files.update({"templates/" + key: text for key, text in (templates or {}).items()})
    with tarfile.open(path, "w:gz") as archive:
        for relative, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo("%s/%s" % (name, relative))
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return str(path)


def texts(found):
    return {item.path: item.text for item in found}


def test_value_shapes_nested_anywhere():
    found = values.find({
        "plain": {"image": "ghcr.io/a/plain:1.0"},
        "split": {"image": {"repository": "quay.io/b/split", "tag": "2.0"}},
        "full": {"deep": {"image": {"registry": "registry.k8s.io", "repository": "c/full", "tag": "3.0",
                                    "digest": DIGEST}}},
        "pair": {"image": "ghcr.io/d/pair", "tag": "4.0"},
        "versioned": {"image": {"repository": "e/versioned", "version": "5.0"}},
        "gatekeeper": {"image": {"repository": "f/gk", "crdRepository": "f/gk-crds", "release": "v6"}},
        "apptag": {"image": {"repository": "g/app", "tag": ""}},
        "list": [{"image": "h/listed:7"}],
        "templated": {"image": {"repository": "{{ .Values.global.registry }}/x", "tag": "1"}},
        "off": {"enabled": False, "sidecar": {"image": "i/off:8"}},
        "number": {"image": {"repository": "j/num", "tag": 9}},
    }, chart="demo", app_version="1.2.3")
    by_path = {item.path: item for item in found}
    assert texts(found) == {
        "plain.image": "ghcr.io/a/plain:1.0",
        "split.image": "quay.io/b/split:2.0",
        "full.deep.image": "registry.k8s.io/c/full:3.0@" + DIGEST,
        "pair.image": "ghcr.io/d/pair:4.0",
        "versioned.image": "e/versioned:5.0",
        "gatekeeper.image": "f/gk:v6",
        "gatekeeper.image.crdRepository": "f/gk-crds:v6",
        "apptag.image": "g/app:1.2.3",
        "list[0].image": "h/listed:7",
        "templated.image": None,
        "off.sidecar.image": "i/off:8",
        "number.image": "j/num:9",
    }
    assert "template expression" in by_path["templated.image"].maybe
    assert by_path["off.sidecar.image"].disabled == "off.enabled is false"
    assert all(item.disabled is None for path, item in by_path.items() if path != "off.sidecar.image")


def test_cilium_operator_template_rule_and_suffix():
    given = {"image": {"repository": "r/cilium-agent", "suffix": "-fips", "tag": "1.18.4", "useDigest": False,
                       "digest": DIGEST},
             "operator": {"image": {"repository": "r/cilium-operator", "suffix": "-fips", "tag": "1.18.4"}}}
    assert texts(values.find(given, chart="cilium")) == {"image": "r/cilium-agent-fips:1.18.4",
                                                         "operator.image": "r/cilium-operator-generic-fips:1.18.4"}
    assert texts(values.find(given, chart="other"))["operator.image"] == "r/cilium-operator-fips:1.18.4"


def test_merge_follows_helm():
    assert values.merged({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 5}, "d": None, "e": 6}) == \
        {"a": {"b": 5, "c": 2}, "e": 6}


def test_chart_archive_annotation_values_and_literal_templates(tmp_path):
    path = chart_tgz(tmp_path / "demo-0.1.0.tgz", "demo", {"image": {"repository": "ghcr.io/demo/app", "tag": ""}},
                     annotations={"helm.sh/images": "- name: app\n  image: ghcr.io/demo/app:1.2.3\n"
                                                    "- name: helper\n  image: docker.io/library/busybox:1.36\n"},
                     templates={"job.yaml": "spec:\n  containers:\n    - name: x\n      image: \"alpine:3.20\"\n"
                                            "    - name: y\n      image: {{ .Values.image.repository }}\n"})
    content = charts.read_chart(path, "demo")
    assert (content.name, content.version, content.app_version) == ("demo", "0.1.0", "1.2.3")
    assert [text for _a, _i, text in content.annotated] == ["ghcr.io/demo/app:1.2.3", "docker.io/library/busybox:1.36"]
    assert content.literals == [("templates/job.yaml", 4, "alpine:3.20")]
    with open(path, "rb") as handle:
        assert charts.read_chart(handle.read(), "demo").values == content.values


def bomb_tgz(path, members):
    """A chart archive with Chart.yaml and then ``members`` [(name, size)] of zeros, gzip-compressed."""
    with tarfile.open(path, "w:gz", compresslevel=1) as archive:
        for relative, size in [("Chart.yaml", None)] + list(members):
            data = b"apiVersion: v2\nname: bomb\nversion: 0.1.0\n" if size is None else bytes(size)
            info = tarfile.TarInfo("bomb/" + relative)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return str(path)


def test_a_chart_that_unpacks_too_far_is_refused_before_memory_grows(tmp_path):
    """Entries of at most 4 MiB each, but too many of them, or too many bytes (skipped ones count: they are
    decompressed too), make a clear refusal, not a process that runs out of memory."""
    many = bomb_tgz(tmp_path / "many.tgz", [("templates/t%05d.yaml" % index, 1) for index in range(10001)])
    with pytest.raises(ImageRefsError, match="holds more than 10000 entries"):
        charts.read_chart(many, "many")
    large = bomb_tgz(tmp_path / "large.tgz", [("templates/t%02d.yaml" % index, 4 << 20) for index in range(25)] +
                     [("charts/sub.bin", 10 << 20)])
    with pytest.raises(ImageRefsError, match="holds more than 100 MiB unpacked"):
        charts.read_chart(large, "large")
    assert charts.read_chart(bomb_tgz(tmp_path / "fine.tgz", [("templates/a.yaml", 1000)]), "fine").name == "bomb"


def test_chart_refs_overridden_by_installer_are_unused():
    content = charts.ChartContent("demo", "0.1.0", "1.2.3",
                                  [("helm.sh/images", 0, "ghcr.io/demo/app:1.2.3")],
                                  {"image": {"repository": "ghcr.io/demo/app", "tag": ""},
                                   "extra": {"image": "ghcr.io/demo/extra:1"}}, [])
    installer = objects.Installer("demo", {"image": {"repository": "cgr.dev/org/app-fips", "tag": "1.2.3"}},
                                  {"source": "manifests/apps", "file": "release.yaml",
                                   "object": "HelmRelease apps/demo", "field": "spec.values"})
    found = discover.chart_references(content, [installer], "chart demo")
    state = {(item.text, item.why["field"]): item.disabled for item in found}
    assert state == {
        ("cgr.dev/org/app-fips:1.2.3", "spec.values.image"): None,
        ("ghcr.io/demo/extra:1", "extra.image"): None,
        ("ghcr.io/demo/app:1.2.3", "image"): "the installers' values replace it",
        ("ghcr.io/demo/app:1.2.3", "annotations.helm.sh/images[0]"): "the installers' values replace it",
    }


POD_KINDS = """
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: ns}
spec:
  initContainers: [{name: init, image: busybox}]
  containers: [{name: c, image: "nginx:1.27"}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: ns}
spec: {template: {spec: {containers: [{name: c, image: "ghcr.io/o/deploy:1"}]}}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: cj, namespace: ns}
spec: {jobTemplate: {spec: {template: {spec: {containers: [{name: c, image: "ghcr.io/o/cron@%s"}]}}}}}
---
apiVersion: example.dev/v1
kind: Worker
metadata: {name: w, namespace: ns}
spec: {podTemplate: {spec: {containers: [{name: c, image: "ghcr.io/o/custom:2"}]}}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: charts-demo, namespace: flux-system}
spec: {url: "oci://high.example/petra/charts/demo", ref: {semver: "0.1.0"}}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: demo, namespace: ns}
spec:
  chartRef: {kind: OCIRepository, name: charts-demo, namespace: flux-system}
  values: {image: {repository: high.example/petra/ghcr.io/o/app, tag: "3"}}
---
apiVersion: helm.cattle.io/v1
kind: HelmChart
metadata: {name: remote, namespace: kube-system}
spec: {chart: stable/remote, valuesContent: "image: ghcr.io/o/remote:4\\n"}
""" % DIGEST


def test_objects_of_every_pod_kind_and_installers(tmp_path):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "all.yaml").write_text(POD_KINDS)
    references, installers = objects.scan(objects.read_set(str(tmp_path / "set")), "manifests/apps")
    assert [(ref.text, ref.why["object"], ref.why["field"]) for ref in references if ref.kind == "image"] == [
        ("busybox", "Pod ns/p", "spec.initContainers[0].image"),
        ("nginx:1.27", "Pod ns/p", "spec.containers[0].image"),
        ("ghcr.io/o/deploy:1", "Deployment ns/d", "spec.template.spec.containers[0].image"),
        ("ghcr.io/o/cron@" + DIGEST, "CronJob ns/cj", "spec.jobTemplate.spec.template.spec.containers[0].image"),
        ("ghcr.io/o/custom:2", "Worker ns/w", "spec.podTemplate.spec.containers[0].image"),
    ]
    artifacts = [(ref.text, ref.version, ref.maybe is not None) for ref in references if ref.kind == "artifact"]
    assert artifacts == [("oci://high.example/petra/charts/demo", "0.1.0", False), ("stable/remote", None, True)]
    assert [(item.chart, item.why["field"]) for item in installers] == [
        ("demo", "spec.values"), ("remote", "spec.valuesContent")]
    assert all(ref.why["file"] == "all.yaml" and ref.why["source"] == "manifests/apps" for ref in references)


HIGH = "high.example/petra"


def carried(images, charts_=(), manifests=(), name="apps", version="1.0.0", high_side=HIGH):
    entries = []
    for text, digest in images:
        ref = ImageReference.parse(text)
        entries.append({"ref": text, "name": ref.name, "tag": ref.tag, "digest": digest})
    return match.Carried(entries, list(charts_), list(manifests), name, version, high_side)


def test_matching_normalises_names_tags_digests_and_loaded_names():
    bundle = carried([("docker.io/library/nginx:1.27", DIGEST), ("ghcr.io/o/app:3", "sha256:" + "b" * 64),
                      ("registry.example:5000/team/x:1", "sha256:" + "c" * 64)])
    assert bundle.image(ImageReference.parse("nginx:1.27"))["ref"] == "docker.io/library/nginx:1.27"
    assert bundle.image(ImageReference.parse("index.docker.io/library/nginx:1.27")) is None  # another host name
    assert bundle.image(ImageReference.parse("nginx@" + DIGEST)) is not None
    assert bundle.image(ImageReference.parse("nginx:1.26")) is None
    assert bundle.image(ImageReference.parse("high.example/petra/ghcr.io/o/app:3")) is not None
    assert bundle.image(ImageReference.parse("high.example/petra/registry.example-5000/team/x:1")) is not None
    assert bundle.image(ImageReference.parse("high.example/petra/ghcr.io/o/other:3")) is None


def test_loaded_names_count_only_below_the_known_high_side_registry():
    """A name ending in a carried image's loaded name is that image only below the load target and its prefix."""
    images = [("cgr.dev/chainguard/nginx:1", DIGEST)]
    bundle = carried(images)
    assert bundle.image(ImageReference.parse("high.example/petra/cgr.dev/chainguard/nginx:1")) is not None
    for text in ("evil.example/x/cgr.dev/chainguard/nginx:1", "high.example/petra-other/cgr.dev/chainguard/nginx:1",
                 "high.example/cgr.dev/chainguard/nginx:1", "other.example/petra/cgr.dev/chainguard/nginx:1"):
        assert bundle.image(ImageReference.parse(text)) is None, text
    unknown = carried(images, high_side=None)  # no load target told: only the source name itself
    assert unknown.image(ImageReference.parse("high.example/petra/cgr.dev/chainguard/nginx:1")) is None
    assert unknown.image(ImageReference.parse("cgr.dev/chainguard/nginx:1")) is not None
    charts_ = [{"name": "demo", "version": "0.1.0", "digest": DIGEST, "source": "charts/demo.tgz"}]
    assert carried([], charts_).artifact("oci://high.example/petra/charts/demo", "0.1.0")
    assert not carried([], charts_).artifact("oci://evil.example/charts/demo", "0.1.0")
    assert not carried([], manifests=[{"name": "apps", "digest": DIGEST}]).artifact(
        "oci://evil.example/manifests/apps/apps", "1.0.0")


def test_report_names_each_missing_image_with_its_whys(tmp_path):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "all.yaml").write_text(POD_KINDS)
    references, installers = objects.scan(objects.read_set(str(tmp_path / "set")), "manifests/apps")
    for installer in installers:
        references += discover.installer_references(installer)
    bundle = carried([("nginx:1.27", DIGEST), ("ghcr.io/o/app:3", "sha256:" + "b" * 64)],
                     charts_=[{"name": "demo", "version": "0.1.0", "digest": DIGEST, "source": "charts/demo.tgz"}])
    result = match.report(references, bundle)
    assert sorted(item["ref"] for item in result["missing"]) == [
        "docker.io/library/busybox:latest", "ghcr.io/o/cron@" + DIGEST, "ghcr.io/o/custom:2", "ghcr.io/o/deploy:1",
        "ghcr.io/o/remote:4"]
    assert [item["ref"] for item in result["maybe"]] == ["stable/remote"]
    status = {item["ref"]: item["status"] for item in result["discovered"]}
    assert status["high.example/petra/ghcr.io/o/app:3"] == status["docker.io/library/nginx:1.27"] == "present"
    assert status["oci://high.example/petra/charts/demo@0.1.0"] == "present"
    line = match.describe(next(item for item in result["missing"] if item["ref"] == "ghcr.io/o/deploy:1"))
    assert line == "ghcr.io/o/deploy:1 (manifests/apps all.yaml, Deployment ns/d, spec.template.spec.containers[0].image)"


def local_spec(root, images=(), charts_=()):
    return BundleSpec({"apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
                       "metadata": {"name": "apps", "version": "1.0.0"}, "images": list(images),
                       "charts": [{"path": path} for path in charts_],
                       "manifests": [{"name": "apps", "path": "apps"}]}, str(root))


def test_local_build_refuses_warns_and_writes_nothing(tmp_path, ec_key):
    """Missing images refuse the build (check mode too) naming each and why, and no file is left; warn builds."""
    key, _pub = ec_key
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "deploy.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: apps}\n"
        "spec: {template: {spec: {containers: [{name: web, image: \"ghcr.io/o/web:1\"}]}}}\n")
    chart = chart_tgz(tmp_path / "demo-0.1.0.tgz", "demo", {"image": {"repository": "ghcr.io/demo/app", "tag": ""},
                                                            "off": {"enabled": False, "image": "ghcr.io/demo/off:1"}})
    spec = local_spec(tmp_path, charts_=[chart])
    dest = tmp_path / "out" / "b.tar.zst"
    dest.parent.mkdir()
    for check_mode in (True, False):
        with pytest.raises(BundleError) as info:
            create_bundle(spec, str(dest), load_signer(key), ClientPool(), environ=PINNED, check_mode=check_mode,
                          image_completeness="fail")
        message = str(info.value)
        assert "lacks 2 image(s)" in message
        assert "ghcr.io/o/web:1 (manifests/apps deploy.yaml, Deployment apps/web, " \
               "spec.template.spec.containers[0].image)" in message
        assert "ghcr.io/demo/app:1.2.3 (chart demo values.yaml, Chart demo 0.1.0, image)" in message
        assert "ghcr.io/demo/off" not in message
        assert [item["ref"] for item in info.value.details["image_completeness"]["missing"]] == [
            "ghcr.io/demo/app:1.2.3", "ghcr.io/o/web:1"]
        assert os.listdir(str(dest.parent)) == []
    result = create_bundle(spec, str(dest), load_signer(key), ClientPool(), environ=PINNED, image_completeness="warn")
    assert os.path.isfile(str(dest)) and result["changed"] is True
    assert [item["ref"] for item in result["image_completeness"]["missing"]] == ["ghcr.io/demo/app:1.2.3",
                                                                                 "ghcr.io/o/web:1"]
    assert {item["ref"]: item["status"] for item in result["image_completeness"]["discovered"]}[
        "ghcr.io/demo/off:1"] == "unused"
    assert len(result["warnings"]) == 2 and result["warnings"][0].startswith("image completeness: missing ")
    # Without the check (the domain default), nothing is reported.
    assert "image_completeness" not in create_bundle(spec, str(tmp_path / "out" / "c.tar.zst"), load_signer(key),
                                                     ClientPool(), environ=PINNED)


REGISTRY = "registry.high.example:5000/petra"


def test_reference_platform_manifest_sets_are_complete(tmp_path, ec_key):
    """The reference platform (the default render, as examples/platform/bundle.yml) references only images and
    artifacts its bundle spec lists: every pod image and every image its HelmChart and HelmRelease values set. The
    upstream charts themselves cannot be fetched offline, so they stand in as records without chart content."""
    _key, pub = ec_key
    params = {name: option.get("default") for name, option in PLATFORM_ARGUMENT_SPEC.items()}
    params.update(dest=str(tmp_path / "out"), registry=REGISTRY, public_key=pub, cluster_name="example")
    spec = BundleSpec.from_file(run_platform(params, False)["bundle_spec"])
    plan = BundlePlan()
    for item in spec.images:
        ref = ImageReference.parse(item["ref"])
        plan.images.append({"ref": item["ref"], "name": ref.name, "tag": ref.tag, "digest": DIGEST})
    for item in spec.charts:
        name, version = (item["ref"].rsplit("/", 1)[-1], item["version"]) if "ref" in item else \
            os.path.basename(item["path"])[:-len(".tgz")].rsplit("-", 1)
        plan.charts.append({"name": name, "version": version, "digest": DIGEST,
                            "source": item.get("ref") or "charts/%s" % os.path.basename(item["path"])})
    plan.manifests = [{"name": item["name"], "digest": DIGEST} for item in spec.manifests]
    found = completeness.references(spec, BundlePlan())  # the manifest sets, their installers' values
    result = match.report(found, match.Carried(plan.images, plan.charts, plan.manifests, spec.name, spec.version,
                                               REGISTRY))
    assert result["missing"] == [] and result["maybe"] == []
    images = {item["image"] for item in result["discovered"] if item["kind"] == "image"}
    assert images == {item["ref"] for item in spec.images}, "every listed image is referenced, and only those"
    artifacts = {item["ref"] for item in result["discovered"] if item["kind"] == "artifact"}
    assert len(artifacts) == len(spec.charts) + len(spec.manifests) - 1  # the bootstrap set is applied by k3s
    example = BundleSpec.from_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples",
                                                "platform", "bundle.yml"))
    assert example.images == spec.images


def test_a_high_side_name_is_traced_back_to_its_source_for_add():
    high = "high.example:5000/petra"
    assert str(completeness._source_name("high.example:5000/petra/ghcr.io/o/app:3", high)) == "ghcr.io/o/app:3"
    assert str(completeness._source_name("ghcr.io/o/app@" + DIGEST, high)) == "ghcr.io/o/app@" + DIGEST
    assert str(completeness._source_name("nginx:1.27", high)) == "docker.io/library/nginx:1.27"


def test_a_dotted_path_component_is_no_host():
    """Only a name below the known load target is traced back; a dot in a path never makes a host to query."""
    high = "high.example:5000/petra"
    for text in ("ghcr.io/org/app.server/img:1", "registry.k8s.io/sig-storage/csi.driver/x:1",
                 "other.example:5000/petra/ghcr.io/o/app:3", "high.example:5000/petra-x/ghcr.io/o/app:3"):
        assert str(completeness._source_name(text)) == text
        assert str(completeness._source_name(text, high)) == text
    assert str(completeness._source_name("high.example:5000/petra/ghcr.io/o/app:3")) == \
        "high.example:5000/petra/ghcr.io/o/app:3"  # no load target told: resolved as written
