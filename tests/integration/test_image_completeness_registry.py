"""No image left behind against a real registry (Debian's docker-registry, TLS + htpasswd, umoci-built images): a
chart pushed as an OCI artifact is read for its images, a missing image refuses petra_bundle (its default) with
the whys and leaves no file, ``add`` puts it in pinned by the digest skopeo sees, and a reference the registry
cannot resolve is "maybe", never added."""

import io
import json
import os
import tarfile

import yaml

from ansible_collections.petra.core.plugins.module_utils.adapters import bundle as bundle_adapter
from ansible_collections.petra.core.plugins.module_utils.adapters.invoke import adapter_validator, checked_run
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys, verify_bundle
from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes
from ansible_collections.petra.core.plugins.module_utils.oci.blobs import Blob, artifact_manifest, canonical_json
from ansible_collections.petra.core.plugins.module_utils.oci.writer import RegistryWriter
from ansible_collections.petra.core.tests.integration.test_create_from_registry import USER, pool_for
from ansible_collections.petra.core.tests.support import images
from ansible_collections.petra.core.tests.support.module_process import run_module


def push_chart(registry, name, version, chart_values):
    """A Helm chart as `helm push` stores it: Helm config, one chart layer."""
    meta = {"apiVersion": "v2", "name": name, "version": version, "appVersion": version}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for relative, text in (("Chart.yaml", yaml.safe_dump(meta)), ("values.yaml", yaml.safe_dump(chart_values))):
            data = text.encode()
            info = tarfile.TarInfo("%s/%s" % (name, relative))
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    config = Blob.from_bytes(canonical_json(meta), mediatypes.HELM_CONFIG)
    layer = Blob.from_bytes(buffer.getvalue(), mediatypes.HELM_CHART_LAYER)
    writer = RegistryWriter(pool_for(registry).for_host(registry.registry.host))
    repository = "charts/%s" % name
    for blob in (config, layer):
        writer.upload(repository, blob.digest, blob.size, iter([blob.data]))
    writer.put_manifest(repository, version, artifact_manifest(config, [(layer, None)]), mediatypes.OCI_MANIFEST)
    return "oci://%s/%s" % (registry.registry.host, repository)


def sources_for(registry, root, extra_image):
    """A spec dir: a Deployment using the bundle's image and ``extra_image``; a chart whose values use tools."""
    chart = push_chart(registry, "toolbox", "0.3.0", {"tools": {"image": {"repository": registry.tools.rsplit(":", 1)[0],
                                                                          "tag": "2.0"}}})
    (root / "apps").mkdir(parents=True)
    (root / "apps" / "web.yaml").write_text(yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": registry.app},
                                                      {"name": "extra", "image": extra_image}]}}}}))
    (root / "bundle.yml").write_text(yaml.safe_dump({
        "apiVersion": "petra.dev/v1alpha1", "kind": "Bundle", "metadata": {"name": "apps", "version": "1.0.0"},
        "images": [{"ref": registry.app}], "charts": [{"ref": chart, "version": "0.3.0"}],
        "manifests": [{"name": "apps", "path": "apps"}]}))
    return str(root / "bundle.yml")


def module_args(registry, key, spec, dest, **options):
    return dict({"ca_file": registry.registry.tls["ca.pem"], "registry_username": USER[0],
                 "registry_password": USER[1], "signing_key": key, "spec": spec, "dest": dest}, **options)


def test_missing_images_refuse_the_build_with_their_whys(registry, tmp_path, ec_key):
    key, _pub = ec_key
    spec = sources_for(registry, tmp_path / "src", registry.multi)
    dest = tmp_path / "out" / "apps.tar.zst"
    dest.parent.mkdir()
    for check_mode in (True, False):
        result = checked_run(bundle_adapter.ARGUMENT_SPEC, adapter_validator(bundle_adapter),
                             module_args(registry, key, spec, str(dest)),
                             lambda params, check_mode=check_mode: bundle_adapter.run(params, check_mode))
        assert result["failed"] is True
        assert "lacks 2 image(s)" in result["msg"], result["msg"]
        assert "%s (manifests/apps web.yaml, Deployment apps/web, spec.template.spec.containers[1].image)" % \
            registry.multi in result["msg"]
        assert "%s (chart toolbox values.yaml, Chart toolbox 0.3.0, tools.image)" % registry.tools in result["msg"]
        report = result["image_completeness"]
        assert report["mode"] == "fail" and report["added"] == []
        assert sorted(item["ref"] for item in report["missing"]) == sorted([registry.multi, registry.tools])
        assert os.listdir(str(dest.parent)) == []


def test_warn_builds_and_add_pins_by_digest_and_unresolvable_is_maybe(registry, tmp_path, ec_key):
    key, pub = ec_key
    absent = "%s/team/absent:9.9" % registry.registry.host
    spec = sources_for(registry, tmp_path / "src", absent)
    warned = run_module("petra_bundle", module_args(registry, key, spec, str(tmp_path / "warn.tar.zst"),
                                                    image_completeness="warn"), cwd=str(tmp_path))
    assert warned["changed"] is True and os.path.isfile(warned["path"])
    assert sorted(item["ref"] for item in warned["image_completeness"]["missing"]) == sorted([absent, registry.tools])
    # AnsibleModule hands the warnings on as its warning events; Ansible shows each message.
    messages = [item["event"]["msg"] if isinstance(item, dict) else item for item in warned["warnings"]]
    assert any(line.startswith("image completeness: missing %s (manifests/apps web.yaml" % absent)
               for line in messages), messages

    added = run_module("petra_bundle", module_args(registry, key, spec, str(tmp_path / "add.tar.zst"),
                                                   image_completeness="add"), cwd=str(tmp_path))
    report = added["image_completeness"]
    tools_digest = images.skopeo_inspect_digest(registry.registry, "team/tools:2.0", USER)
    pinned = "%s@%s" % (registry.tools, tools_digest)
    assert report["added"] == [{"ref": registry.tools, "added": pinned}]
    assert report["missing"] == []
    assert [item["ref"] for item in report["maybe"]] == [absent]
    assert report["maybe"][0]["reason"].startswith("cannot be resolved in the source registry")
    assert {item["ref"]: item["digest"] for item in added["images"]} == {registry.app: registry.app_digest,
                                                                         pinned: tools_digest}
    verified = verify_bundle(added["path"], load_public_keys([pub]))  # raises unless it verifies
    assert [image["ref"] for image in verified["metadata"]["images"]] == [registry.app, pinned]
    assert not any(absent.rsplit(":", 1)[0] in json.dumps(image) for image in verified["metadata"]["images"])
