"""Go build information read from binaries: Debian's Go programs, and constructed FIPS builds."""

import shutil
import subprocess

import pytest

from ansible_collections.petra.core.plugins.module_utils.flatcar import buildinfo
from ansible_collections.petra.core.plugins.module_utils.flatcar.errors import BuildInfoError


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def fake_binary(settings, go="go1.24.6"):
    modinfo = "path\tgithub.com/k3s-io/k3s\n" + "".join("build\t%s=%s\n" % item for item in settings.items())
    modinfo = "0" * 16 + modinfo + "1" * 16
    header = buildinfo.MAGIC + bytes([8, buildinfo.FLAG_INLINE]) + b"\0" * 16
    body = header + varint(len(go)) + go.encode() + varint(len(modinfo)) + modinfo.encode()
    return b"\x7fELF" + b"\0" * 60 + body + b"\0" * 100


@pytest.mark.parametrize("program, main_path", [("skopeo", "github.com/containers/skopeo/cmd/skopeo"),
                                                ("docker-registry", "github.com/docker/distribution/cmd/registry")])
def test_debian_go_binaries(program, main_path):
    path = shutil.which(program)
    if path is None:
        pytest.fail("%s is missing: run 'make test'" % program)
    info = buildinfo.inspect(path)
    assert info["go_version"].startswith("go1.") and info["path"] == main_path
    assert info["settings"]["GOOS"] == "linux" and info["settings"]["-compiler"] == "gc"
    assert info["gofips140"] is None and info["fips_module"] is False
    with pytest.raises(BuildInfoError) as error:
        buildinfo.inspect(path, require_fips_module=True)
    assert "not built against the validated Go FIPS module" in str(error.value)


def test_validated_module_build(tmp_path):
    path = tmp_path / "k3s"
    path.write_bytes(fake_binary({"GOFIPS140": "v1.0.0", "CGO_ENABLED": "1", "GOOS": "linux"}))
    info = buildinfo.inspect(str(path), require_fips_module=True)
    assert info["fips_module"] is True and info["gofips140"] == "v1.0.0" and info["go_version"] == "go1.24.6"
    assert info["path"] == "github.com/k3s-io/k3s" and info["settings"]["GOOS"] == "linux"


@pytest.mark.parametrize("settings", [{"GOFIPS140": "latest"}, {"GOFIPS140": "off"}, {},
                                      {"GOEXPERIMENT": "boringcrypto"}])
def test_other_builds_refused(tmp_path, settings):
    path = tmp_path / "k3s"
    path.write_bytes(fake_binary(settings))
    info = buildinfo.inspect(str(path))
    assert info["fips_module"] is False
    assert info["boringcrypto"] is (settings.get("GOEXPERIMENT") == "boringcrypto")
    with pytest.raises(BuildInfoError):
        buildinfo.inspect(str(path), require_fips_module=True)


def test_not_a_go_binary(tmp_path):
    path = tmp_path / "script"
    path.write_bytes(b"#!/bin/sh\necho hi\n")
    with pytest.raises(BuildInfoError, match="no Go build information"):
        buildinfo.inspect(str(path))


def sysext(tmp_path, members):
    """A systemd-sysext squashfs image (as the k3s sysext is built) holding ``members`` {path: bytes}."""
    root = tmp_path / "sysext-root"
    release = root / "usr/lib/extension-release.d/extension-release.k3s"
    release.parent.mkdir(parents=True)
    release.write_text("ID=flatcar\nSYSEXT_LEVEL=1.0\n")
    for member, data in members.items():
        target = root / member
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    image = tmp_path / "k3s.raw"
    subprocess.run(["mksquashfs", str(root), str(image), "-all-root", "-noappend", "-quiet"], check=True,
                   capture_output=True, timeout=120)
    return str(image)


def test_k3s_inside_a_sysext_image(tmp_path):
    image = sysext(tmp_path, {"usr/local/bin/k3s": fake_binary({"GOFIPS140": "v1.0.0"})})
    info = buildinfo.inspect(image, require_fips_module=True)
    assert info["fips_module"] is True and info["sysext_path"] == "/usr/local/bin/k3s"
    assert info["binary"] == image + ":/usr/local/bin/k3s"


def test_sysext_with_a_debian_go_binary_is_refused(tmp_path):
    with open(shutil.which("skopeo"), "rb") as handle:
        image = sysext(tmp_path, {"usr/bin/k3s": handle.read()})
    info = buildinfo.inspect(image)
    assert info["sysext_path"] == "/usr/bin/k3s" and info["path"] == "github.com/containers/skopeo/cmd/skopeo"
    with pytest.raises(BuildInfoError, match=r"k3s.raw:/usr/bin/k3s .* not built against the validated"):
        buildinfo.inspect(image, require_fips_module=True)


def test_sysext_member_path_and_missing_binary(tmp_path):
    image = sysext(tmp_path, {"opt/k3s/bin/k3s": fake_binary({"GOFIPS140": "v1.0.0"})})
    with pytest.raises(BuildInfoError, match="holds none of usr/local/bin/k3s, usr/bin/k3s"):
        buildinfo.inspect(image)
    assert buildinfo.inspect(image, sysext_path="/opt/k3s/bin/k3s")["fips_module"] is True
