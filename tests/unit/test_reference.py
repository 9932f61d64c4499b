import pytest

from ansible_collections.petra.core.plugins.module_utils.oci.errors import InvalidReference
from ansible_collections.petra.core.plugins.module_utils.oci.reference import ImageReference

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize("text, registry, repository, tag, digest", [
    ("nginx", "docker.io", "library/nginx", "latest", None),
    ("nginx:1.27", "docker.io", "library/nginx", "1.27", None),
    ("cgr.dev/chainguard/nginx:1.27", "cgr.dev", "chainguard/nginx", "1.27", None),
    ("registry.example:5000/team/app@" + DIGEST, "registry.example:5000", "team/app", None, DIGEST),
    ("localhost/app:v1@" + DIGEST, "localhost", "app", "v1", DIGEST),
    ("127.0.0.1:5000/a/b/c:x", "127.0.0.1:5000", "a/b/c", "x", None),
    ("team/app", "docker.io", "team/app", "latest", None),
    ("[::1]:5000/app:1", "[::1]:5000", "app", "1", None),
])
def test_parse(text, registry, repository, tag, digest):
    ref = ImageReference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


def test_docker_hub_api_host():
    assert ImageReference.parse("nginx").api_host == "registry-1.docker.io"
    assert ImageReference.parse("cgr.dev/x/y").api_host == "cgr.dev"


def test_str_round_trip():
    text = "registry.example:5000/team/app:2.0@" + DIGEST
    assert str(ImageReference.parse(text)) == text


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    (" nginx", "surrounding spaces"),
    ("nginx@sha256:abc", "64 hex digits"),
    ("nginx@md5:" + "a" * 32, "only SHA-256"),
    ("Registry.example/UPPER/app", "lowercase"),
    ("app:bad/tag", "not a valid registry host"),
    ("app:-bad", "not a valid tag"),
])
def test_invalid(text, fragment):
    with pytest.raises(InvalidReference) as info:
        ImageReference.parse(text)
    assert fragment in str(info.value)
