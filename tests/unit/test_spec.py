import pytest

from ansible_collections.petra.core.plugins.module_utils.bundle.errors import SpecError
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec


def spec(**overrides):
    document = {
        "apiVersion": "petra.dev/v1alpha1",
        "kind": "Bundle",
        "metadata": {"name": "platform", "version": "1.4.0", "expires": "2027-06-30"},
        "images": [{"ref": "cgr.dev/chainguard/nginx:1.27"},
                   {"ref": "registry.example:5000/team/app@sha256:" + "b" * 64, "platforms": ["linux/amd64"]}],
        "charts": [{"path": "charts/podinfo-6.5.0.tgz"},
                   {"ref": "oci://registry.example:5000/charts/podinfo", "version": "6.5.0"}],
        "manifests": [{"name": "apps", "path": "manifests/apps"}],
        "files": [{"name": "k3s", "path": "bin/k3s"}],
    }
    for key, value in overrides.items():
        if value is None:
            document.pop(key, None)
        else:
            document[key] = value
    return document


def test_issue_example_is_valid_and_paths_resolve(tmp_path):
    parsed = BundleSpec(spec(), str(tmp_path))
    assert parsed.name == "platform" and parsed.version == "1.4.0" and parsed.expires == "2027-06-30"
    assert parsed.files[0]["path"] == str(tmp_path / "bin" / "k3s")
    assert parsed.charts[0]["path"] == str(tmp_path / "charts" / "podinfo-6.5.0.tgz")
    assert "path" not in parsed.charts[1]


def test_from_file_resolves_against_spec_directory(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "bundle.yml"
    path.write_text("apiVersion: petra.dev/v1alpha1\nkind: Bundle\nmetadata: {name: a, version: 1.0.0, expires: 2027-06-30}\n"
                    "files: [{name: f, path: ../f.bin}]\n")
    parsed = BundleSpec.from_file(str(path))
    assert parsed.files[0]["path"] == str(tmp_path / "f.bin")
    assert parsed.expires == "2027-06-30"


@pytest.mark.parametrize("mutate, field, words", [
    (lambda d: d["metadata"].update(name="Platform_1"), "metadata.name", "lowercase"),
    (lambda d: d["metadata"].update(version="1.4"), "metadata.version", "semantic version"),
    (lambda d: d["metadata"].update(expires="tomorrow"), "metadata.expires", "neither a date YYYY-MM-DD nor a period"),
    (lambda d: d["metadata"].update(expires="P0D"), "metadata.expires", "neither a date YYYY-MM-DD nor a period"),
    (lambda d: d["metadata"].update(created="today"), "metadata.created", "neither an RFC 3339 date-time nor 'now'"),
    (lambda d: d.update(kind="Package"), "kind", "must be 'Bundle'"),
    (lambda d: d["images"][1].update(platforms=["amd64"]), "images[1].platforms[0]", "os/arch"),
    (lambda d: d["images"].append({"ref": "Bad/Ref"}), "images[2].ref", "lowercase"),
    (lambda d: d["charts"].append({"path": "x.tgz", "ref": "oci://r/x", "version": "1.0.0"}), "charts[2]", "either 'path'"),
    (lambda d: d["charts"].append({"ref": "oci://r/x"}), "charts[2]", "either 'path'"),
    (lambda d: d["files"].append({"name": "k3s", "path": "other"}), "files[1].name", "used twice"),
    (lambda d: d.update(extra=1), "(the spec)", "unknown field"),
    (lambda d: d["metadata"].pop("version"), "metadata", "'version' is a required property"),
])
def test_errors_name_the_field(tmp_path, mutate, field, words):
    document = spec()
    mutate(document)
    with pytest.raises(SpecError) as info:
        BundleSpec(document, str(tmp_path))
    assert field in str(info.value)
    assert words in str(info.value)


def test_empty_bundle_refused(tmp_path):
    with pytest.raises(SpecError, match="lists no images"):
        BundleSpec(spec(images=None, charts=None, manifests=None, files=None), str(tmp_path))


def test_invalid_yaml_is_reported(tmp_path):
    path = tmp_path / "bundle.yml"
    path.write_text("apiVersion: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        BundleSpec.from_file(str(path))
