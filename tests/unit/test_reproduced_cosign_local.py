"""Reproduced co-signatures without a registry: the co-signature file's versions, a rebuild from local sources, and
how a difference is told when the entries agree but the tar headers or the compression do not."""

import base64
import io
import json
import os
import subprocess
import tarfile

import pytest
import zstandard
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.petra.core.plugins.module_utils.adapters.bundle import ARGUMENT_SPEC
from ansible_collections.petra.core.plugins.module_utils.adapters.bundle import run as run_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.difference import compare
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError, NotReproducedError
from ansible_collections.petra.core.plugins.module_utils.bundle.reader import read_metadata
from ansible_collections.petra.core.plugins.module_utils.signing import cosignature_file
from ansible_collections.petra.core.plugins.module_utils.signing.keys import SigningError
from ansible_collections.petra.core.tests.support import pki

DEFINITION = {"apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
              "metadata": {"name": "local", "version": "1.0.0", "created": "2026-01-02T00:00:00Z"},
              "manifests": [{"name": "apps", "path": "manifests/apps"}], "files": [{"name": "k3s", "path": "bin/k3s"}]}


def params_for(**given):
    params = {name: option.get("default") for name, option in ARGUMENT_SPEC.items()}
    params.update(given)
    return params


@pytest.fixture
def setup(sources, spool, tmp_path):
    keys = {}
    for name, curve in (("a", ec.SECP256R1()), ("b", ec.SECP384R1())):
        private = str(tmp_path / ("%s.pem" % name))
        keys[name] = (private, pki.write_ec_key(private, curve=curve))
    dest = str(spool / "local-1.0.0.tar.zst")
    built = run_bundle(params_for(definition=DEFINITION, base_dir=str(sources), dest=dest, signing_key=keys["a"][0]),
                       check_mode=False)
    cosign = params_for(state="signed", src=dest, public_keys=[keys["a"][1]], signing_key=keys["b"][0], rebuild=True,
                        definition=DEFINITION, base_dir=str(sources))
    return keys, dest, built, cosign


def test_p384_cosigner_reproduces_from_local_sources(setup):
    keys, dest, built, cosign = setup
    result = run_bundle(cosign, check_mode=False)
    assert result["reproduced"] is True and result["reproduction"]["sha256"] == built["sha256"]
    (entry,) = cosignature_file.read_document(dest + ".sigs.json")
    statement = json.loads(base64.b64decode(entry["reproduced"]["statement"]))
    assert statement["keyId"] == result["key_id"] and statement["bundleSha256"] == built["sha256"]
    # The builder "rebuilding" their own bundle adds nothing: their primary signature stands, nothing reproduced.
    own = run_bundle(dict(cosign, signing_key=keys["a"][0]), check_mode=False)
    assert own["already_signed"] == "primary" and own["reproduced"] is False and own["changed"] is False


def test_a_plain_cosignature_is_replaced_by_a_reproduced_one(setup):
    _keys, dest, _built, cosign = setup
    plain = run_bundle(dict(cosign, rebuild=False), check_mode=False)
    assert plain["reproduced"] is False
    with open(dest + ".sigs.json") as handle:
        assert json.load(handle)["formatVersion"] == 1  # what an older Petra writes and reads
    reproduced = run_bundle(cosign, check_mode=False)
    assert reproduced["changed"] is True and reproduced["reproduced"] is True
    (entry,) = cosignature_file.read_document(dest + ".sigs.json")
    assert "reproduced" in entry
    # Asked again without a rebuild, the co-signature found is the reproduced one: the result says so.
    again = run_bundle(dict(cosign, rebuild=False), check_mode=False)
    assert again["already_signed"] == "cosignature" and again["changed"] is False
    assert again["reproduced"] is True


def test_changed_file_and_unreproducible_options_are_refused(setup, sources):
    _keys, dest, _built, cosign = setup
    (sources / "bin" / "k3s").write_bytes(b"another k3s")
    with pytest.raises(NotReproducedError) as info:
        run_bundle(cosign, check_mode=False)
    field = info.value.details["difference"]["field"]
    assert field["path"] == "files[0].digest" and field["of"] == "k3s"
    assert not os.path.exists(dest + ".sigs.json")
    with pytest.raises(BundleError) as info:
        run_bundle(dict(cosign, scan={"scanner": "trivy"}), check_mode=False)
    assert "rebuild cannot be combined with scan" in info.value.message
    assert sorted(os.listdir(os.path.dirname(dest))) == ["local-1.0.0.tar.zst", "local-1.0.0.tar.zst.sig"]


def test_cosignature_file_versions():
    der = base64.b64encode(b"\x30\x06\x02\x01\x01\x02\x01\x01").decode()
    plain = {"keyId": "sha256:" + "a" * 64, "bundleSha256": "b" * 64, "signature": der, "signedAt": "x"}
    assert json.loads(cosignature_file.encode_document([plain]))["formatVersion"] == 1
    claim = {"statement": base64.b64encode(json.dumps({
        "_type": cosignature_file.REPRODUCED_TYPE, "bundleSha256": "b" * 64, "keyId": plain["keyId"],
        "reproduced": True, "rebuiltAt": "x"}).encode()).decode(), "signature": der}
    data = cosignature_file.encode_document([dict(plain, reproduced=claim)])
    assert json.loads(data)["formatVersion"] == 2
    assert cosignature_file.decode_document(data, "v2")[0]["reproduced"] == claim
    # A reproduction record in a version 1 document, or a statement of another type, is refused for its form.
    version1 = json.dumps(dict(json.loads(data), formatVersion=1)).encode()
    with pytest.raises(SigningError, match="unknown field"):
        cosignature_file.decode_document(version1, "v1")
    other = dict(claim, statement=base64.b64encode(b'{"_type": "other"}').decode())
    with pytest.raises(SigningError, match="not a https://petra.dev/ReproducedBundle/v1 statement"):
        cosignature_file.decode_document(cosignature_file.encode_document([dict(plain, reproduced=other)]), "v2")
    with pytest.raises(SigningError, match="reads format versions 1 and 2"):
        cosignature_file.decode_document(json.dumps(dict(json.loads(data), formatVersion=3)).encode(), "v3")


def _rewritten(path, target, level=3, mtime_of=None):
    """The same tar, recompressed at ``level``; with ``mtime_of``, that entry's header mtime changed."""
    with open(path, "rb") as handle:
        raw = zstandard.ZstdDecompressor().stream_reader(handle).read()
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as source, \
            tarfile.open(fileobj=out, mode="w:", format=tarfile.PAX_FORMAT) as copy:
        for member in source:
            data = source.extractfile(member).read()
            if member.name == mtime_of:
                member.mtime += 60
            copy.addfile(member, io.BytesIO(data))
    with open(target, "wb") as handle:
        handle.write(zstandard.ZstdCompressor(level=level).compress(out.getvalue()))
    return target


def test_same_entries_differing_in_a_header_or_the_compression(setup, tmp_path):
    _keys, dest, _built, _cosign = setup
    metadata = read_metadata(dest)
    recompressed = _rewritten(dest, str(tmp_path / "level19.tar.zst"), level=19)
    told = compare(metadata, read_metadata(recompressed), dest, recompressed)
    assert told["entry"] is None and told["field"] is None and told["header"] is None
    assert "only the zstd compression differs" in told["summary"]
    retimed = _rewritten(dest, str(tmp_path / "retimed.tar.zst"), mtime_of="index.json")
    told = compare(metadata, read_metadata(retimed), dest, retimed)
    assert told["header"]["entry"] == "index.json" and told["header"]["field"] == "mtime"
    assert told["header"]["got"] == told["header"]["expected"] + 60
    assert "the tar header of index.json differs in mtime" in told["summary"]
    # zstd itself agrees the two files hold the same tar.
    cat = [subprocess.run(["zstd", "-dc", path], capture_output=True, check=True, timeout=60).stdout
           for path in (dest, recompressed)]
    assert cat[0] == cat[1]


def test_check_mode_says_a_rebuild_writes_a_temporary_copy():
    """Check mode of a rebuild writes a full-size temporary file beside src: the module's check_mode attribute says
    so, over the shared fragment's "without writing anything"."""
    import yaml
    from ansible_collections.petra.core.plugins.modules import petra_bundle
    details = yaml.safe_load(petra_bundle.DOCUMENTATION)["attributes"]["check_mode"]["details"]
    assert "full-size temporary rebuild is written beside O(src)" in details and ".petra-rebuild-*" in details
