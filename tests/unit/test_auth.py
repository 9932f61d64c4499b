import base64
import json

import pytest

from ansible_collections.petra.core.plugins.module_utils.oci.auth import Credentials, credentials_from_auth_files
from ansible_collections.petra.core.plugins.module_utils.oci.errors import AuthenticationError


def _write(path, auths):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"auths": auths}))


def _b64(text):
    return base64.b64encode(text.encode()).decode()


def test_order_registry_auth_file_first(tmp_path):
    first = tmp_path / "first.json"
    runtime = tmp_path / "run" / "containers" / "auth.json"
    docker = tmp_path / "home" / ".docker" / "config.json"
    _write(first, {"reg.example": {"auth": _b64("one:1")}})
    _write(runtime, {"reg.example": {"auth": _b64("two:2")}, "other.example": {"auth": _b64("two:2")}})
    _write(docker, {"https://third.example": {"auth": _b64("three:3")}})
    environ = {"REGISTRY_AUTH_FILE": str(first), "XDG_RUNTIME_DIR": str(tmp_path / "run"), "HOME": str(tmp_path / "home")}
    assert credentials_from_auth_files("reg.example", environ=environ) == ("one", "1")
    assert credentials_from_auth_files("other.example", environ=environ) == ("two", "2")
    assert credentials_from_auth_files("third.example", environ=environ) == ("three", "3")
    assert credentials_from_auth_files("none.example", environ=environ) is None


def test_repository_scoped_key_wins(tmp_path):
    path = tmp_path / "auth.json"
    _write(path, {"reg.example": {"auth": _b64("host:h")}, "reg.example/team": {"auth": _b64("team:t")}})
    environ = {"REGISTRY_AUTH_FILE": str(path), "HOME": str(tmp_path)}
    assert credentials_from_auth_files("reg.example", "team/app", environ) == ("team", "t")
    assert credentials_from_auth_files("reg.example", "other/app", environ) == ("host", "h")


def test_password_with_colon(tmp_path):
    path = tmp_path / "auth.json"
    _write(path, {"reg.example": {"auth": _b64("user:pa:ss")}})
    assert credentials_from_auth_files("reg.example", environ={"REGISTRY_AUTH_FILE": str(path), "HOME": str(tmp_path)}) == \
        ("user", "pa:ss")


def test_broken_entry_is_named(tmp_path):
    path = tmp_path / "auth.json"
    _write(path, {"reg.example": {"auth": _b64("nocolon")}})
    with pytest.raises(AuthenticationError) as info:
        credentials_from_auth_files("reg.example", environ={"REGISTRY_AUTH_FILE": str(path), "HOME": str(tmp_path)})
    assert "reg.example" in str(info.value) and str(path) in str(info.value)


def test_explicit_credentials_need_both():
    with pytest.raises(AuthenticationError):
        Credentials("user", None)
    assert Credentials("u", "p").for_registry("any.example") == ("u", "p")
