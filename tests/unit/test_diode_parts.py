"""Parts and the signed part index, through the directory transport (removable media, guard outboxes)."""

import json
import os
import subprocess
import tarfile

import pytest

from ansible_collections.petra.core.plugins.module_utils.bundle.create import create_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import VerificationError
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys
from ansible_collections.petra.core.plugins.module_utils.diode import parts
from ansible_collections.petra.core.plugins.module_utils.diode.errors import TransferError
from ansible_collections.petra.core.plugins.module_utils.diode.transfer import (
    receive_from_directory,
    send_to_directory,
)
from ansible_collections.petra.core.plugins.module_utils.oci.registry import ClientPool
from ansible_collections.petra.core.plugins.module_utils.signing.keys import load_signer
from ansible_collections.petra.core.tests.support import pki

PART = "1300KiB"


@pytest.fixture
def bundle(tmp_path, ec_key):
    key, pub = ec_key
    (tmp_path / "payload").write_bytes(os.urandom(5 * 1024 * 1024 + 321))
    spec = BundleSpec({"apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
                       "metadata": {"name": "diode", "version": "1.0.0"},
                       "files": [{"name": "payload", "path": "payload"}]}, str(tmp_path))
    result = create_bundle(spec, str(tmp_path / "diode-1.0.0.tar.zst"), load_signer(key), ClientPool(),
                           environ={"SOURCE_DATE_EPOCH": "1767225600"})
    (tmp_path / "outbox").mkdir()
    (tmp_path / "inbox").mkdir()
    return {"path": result["path"], "key": key, "pub": pub, "dir": tmp_path}


def send(bundle, **kwargs):
    return send_to_directory(bundle["path"], str(bundle["dir"] / "outbox"), load_signer(bundle["key"]),
                             kwargs.pop("max_part_size", PART), **kwargs)


def receive(bundle, dest_name="received.tar.zst", **kwargs):
    return receive_from_directory(str(bundle["dir"] / "outbox"), str(bundle["dir"] / "inbox" / dest_name),
                                  load_public_keys([bundle["pub"]]), **kwargs)


def test_round_trip_byte_identical(bundle):
    sent = send(bundle)
    assert sent["part_count"] >= 4 and sent["changed"] is True
    outbox = bundle["dir"] / "outbox"
    names = sorted(os.listdir(outbox))
    assert names == sorted(sent["parts"] + [sent["index"]])
    limit = parts.parse_size(PART)
    for name in sent["parts"]:
        assert name.endswith(".tar") and os.path.getsize(outbox / name) <= limit
        with tarfile.open(outbox / name) as archive:  # every part is a plain tar any tool reads
            assert len(archive.getmembers()) == 1
    received = receive(bundle)
    assert received["changed"] is True and received["verification"]["verified"] is True
    with open(bundle["path"], "rb") as a, open(bundle["dir"] / "inbox" / "received.tar.zst", "rb") as b:
        assert a.read() == b.read()
    with open(bundle["path"] + ".sig", "rb") as a, open(bundle["dir"] / "inbox" / "received.tar.zst.sig", "rb") as b:
        assert a.read().strip() == b.read().strip()


def test_gnu_tar_concatenation_rebuilds_the_bundle(bundle):
    """Without Petra, the parts are still just tar files of consecutive slices."""
    sent = send(bundle)
    outbox = bundle["dir"] / "outbox"
    rebuilt = bundle["dir"] / "manual.tar.zst"
    with open(rebuilt, "wb") as out:
        for name in sent["parts"]:
            out.write(subprocess.run(["tar", "-xOf", str(outbox / name)], check=True, capture_output=True,
                                     timeout=60).stdout)
    assert rebuilt.read_bytes() == open(bundle["path"], "rb").read()


def test_resend_and_rereceive_are_idempotent(bundle):
    send(bundle)
    again = send(bundle)
    assert again["changed"] is False and again["written"] == []
    receive(bundle)
    assert receive(bundle)["changed"] is False


def test_check_mode_writes_nothing(bundle):
    sent = send(bundle, check_mode=True)
    assert sent["changed"] is True and os.listdir(bundle["dir"] / "outbox") == []


def test_missing_and_damaged_parts_are_named(bundle):
    sent = send(bundle)
    outbox = bundle["dir"] / "outbox"
    os.unlink(outbox / sent["parts"][1])
    damaged = outbox / sent["parts"][3]
    data = bytearray(damaged.read_bytes())
    data[5000] ^= 0x01
    damaged.write_bytes(bytes(data))
    with pytest.raises(TransferError) as info:
        receive(bundle)
    assert info.value.parts == [sent["parts"][1], sent["parts"][3]]
    assert "missing: %s" % sent["parts"][1] in str(info.value) and "damaged: %s" % sent["parts"][3] in str(info.value)
    assert os.listdir(bundle["dir"] / "inbox") == []
    # Only the named parts need to come again.
    rewritten = send(bundle)["written"]
    assert sorted(rewritten) == sorted([sent["parts"][1], sent["parts"][3]])
    assert receive(bundle)["verification"]["verified"]


def test_forged_index_is_refused(bundle, tmp_path):
    sent = send(bundle)
    index_path = bundle["dir"] / "outbox" / sent["index"]
    document = json.loads(index_path.read_text())
    document["index"]["parts"][0]["sha256"] = "0" * 64
    index_path.write_text(json.dumps(document))
    with pytest.raises(TransferError, match="not signed by any of the given keys"):
        receive(bundle)


def test_index_signed_by_another_key_is_refused(bundle, tmp_path):
    other = tmp_path / "other.pem"
    pki.write_ec_key(str(other))
    send_to_directory(bundle["path"], str(bundle["dir"] / "outbox"), load_signer(str(other)), PART)
    with pytest.raises(TransferError, match="not signed by any of the given keys"):
        receive(bundle)


def test_replaced_part_with_matching_index_fails_whole_bundle_verification(bundle, tmp_path):
    """An attacker who could re-sign the index still cannot forge the bundle signature."""
    other = tmp_path / "other.pem"
    other_pub = pki.write_ec_key(str(other))
    data = bytearray(open(bundle["path"], "rb").read())
    data[len(data) // 2] ^= 0x01
    forged = bundle["dir"] / "forged.tar.zst"
    forged.write_bytes(bytes(data))
    (bundle["dir"] / "forged.tar.zst.sig").write_bytes(open(bundle["path"] + ".sig", "rb").read())
    send_to_directory(str(forged), str(bundle["dir"] / "outbox"), load_signer(str(other)), PART)
    with pytest.raises(VerificationError):
        receive_from_directory(str(bundle["dir"] / "outbox"), str(bundle["dir"] / "inbox" / "x.tar.zst"),
                               load_public_keys([bundle["pub"], other_pub]))
    assert os.listdir(bundle["dir"] / "inbox") == []


def test_extensions_the_cds_refuses(bundle):
    with pytest.raises(TransferError) as info:
        send(bundle, allowed_extensions=["json"])
    assert ".tar" in str(info.value) or "part-" in str(info.value)
    assert os.listdir(bundle["dir"] / "outbox") == []


@pytest.mark.parametrize("text, expected", [("100MB", 100_000_000), ("30GiB", 30 * 1024 ** 3), ("1048576", 1048576),
                                            ("2 MiB", 2 * 1024 ** 2)])
def test_sizes(text, expected):
    assert parts.parse_size(text) == expected


@pytest.mark.parametrize("text", ["lots", "10XB", "-5MB"])
def test_bad_sizes(text):
    with pytest.raises(TransferError):
        parts.parse_size(text)


def test_too_small_parts(bundle):
    with pytest.raises(TransferError, match="below the smallest part size"):
        send(bundle, max_part_size="100KB")


def test_smallest_part_size_is_stated_and_works(bundle):
    """The smallest max_part_size is a number the error, the option description and docs/diode.md all give."""
    smallest = parts.SMALLEST_MAX_PART_SIZE
    with pytest.raises(TransferError) as info:
        send(bundle, max_part_size=str(smallest - 1))
    assert "%d bytes" % (smallest - 1) in str(info.value) and "at least %d" % smallest in str(info.value)
    assert os.listdir(bundle["dir"] / "outbox") == []
    sent = send(bundle, max_part_size=str(smallest))
    outbox = bundle["dir"] / "outbox"
    assert sent["part_count"] == 6 and all(os.path.getsize(outbox / n) <= smallest for n in sent["parts"])
    assert receive(bundle)["verification"]["verified"] is True
    from ansible_collections.petra.core.plugins.modules import petra_diode
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "docs", "diode.md")) as handle:
        assert str(smallest) in handle.read()
    assert str(smallest) in petra_diode.DOCUMENTATION


def resign(bundle, index_path, change, key=None):
    """Rewrite an index the way an attacker holding a signing key would: changed, and validly signed."""
    document = json.loads(index_path.read_text())
    change(document["index"])
    signed = parts.signed_document(document["index"], load_signer(key or bundle["key"]))
    index_path.write_text(json.dumps(signed))


@pytest.mark.parametrize("where", ["relative", "absolute", "backslash", "nul", "dot", "dotdot", "subdir"])
def test_part_names_that_are_not_plain_file_names_are_refused(bundle, where):
    sent = send(bundle)
    outbox = bundle["dir"] / "outbox"
    outside = bundle["dir"] / "outside.tar"  # a valid copy of part 1, outside the inbox: old code read it
    outside.write_bytes((outbox / sent["parts"][0]).read_bytes())
    name = {"relative": "../outside.tar", "absolute": str(outside), "backslash": "..\\outside.tar",
            "nul": "outside\0.tar", "dot": ".", "dotdot": "..", "subdir": "sub/outside.tar"}[where]
    os.unlink(outbox / sent["parts"][0])

    def rename_first(index):
        index["parts"][0]["name"] = name
    resign(bundle, outbox / sent["index"], rename_first)
    with pytest.raises(TransferError) as info:
        receive(bundle)
    message = str(info.value)
    assert "is refused" in message and repr(name) in message and sent["index"] in message
    assert info.value.parts == [sent["index"]]
    assert os.listdir(bundle["dir"] / "inbox") == []


@pytest.mark.parametrize("name, refused", [("diode-1.0.0.part-0001-of-0004.tar", False), ("a.b-c_d.zst", False),
                                           ("..", True), ("a..tar", True), ("a/b", True), ("a\\b", True),
                                           ("", True), (None, True), ("/abs", True), ("a\0", True)])
def test_unsafe_name(name, refused):
    assert bool(parts.unsafe_name(name)) is refused


def test_zst_only_profile(bundle):
    """A profile without .tar still gets parts: named .zst, still tar files inside, and received back."""
    sent = send(bundle, allowed_extensions=[".ZST"])
    outbox = bundle["dir"] / "outbox"
    assert sent["index"] == "diode-1.0.0.parts.zst"
    assert sent["parts"] and all(n.endswith(".zst") for n in sent["parts"])
    assert sorted(os.listdir(outbox)) == sorted(sent["parts"] + [sent["index"]])
    with tarfile.open(outbox / sent["parts"][0]) as archive:
        assert len(archive.getmembers()) == 1
    received = receive(bundle)
    assert received["index"] == sent["index"] and received["verification"]["verified"] is True


@pytest.mark.parametrize("allowed, expected", [(["tar", "json"], ("tar", "json")), (["json", "tar"], ("tar", "json")),
                                               (["zst"], ("zst", "zst")), (["json", "bin", "dat"], ("bin", "json")),
                                               ([".DAT"], ("dat", "dat")), (["tar.gz", "txt"], ("tar.gz", "txt"))])
def test_part_and_index_extensions_follow_the_profile(allowed, expected):
    assert parts.choose_extensions(allowed) == expected


@pytest.mark.parametrize("name, expected", [
    ("a.parts.json", True), ("a.parts.zst", True), (".parts.json", False), ("a.part-0001-of-0002.tar", False),
    ("a.parts.json.6fA3b1e2", False), (".a.parts.json.x1y2.tmp", False), ("a.parts.part-0001-of-0002.zst", False)])
def test_index_names(name, expected):
    assert parts.is_index_name(name) is expected


def test_forged_second_index_does_not_block_delivery(bundle, tmp_path):
    sent = send(bundle)
    outbox = bundle["dir"] / "outbox"
    other = tmp_path / "other.pem"
    pki.write_ec_key(str(other))
    forged = outbox / "aaa-forged.parts.json"  # sorts first
    forged.write_text((outbox / sent["index"]).read_text())
    resign(bundle, forged, lambda index: None, key=str(other))
    (outbox / "zzz-junk.parts.json").write_text("{not json")
    received = receive(bundle)
    assert received["index"] == sent["index"] and received["verification"]["verified"] is True
    ignored = {entry["name"]: entry["reason"] for entry in received["indexes_ignored"]}
    assert set(ignored) == {"aaa-forged.parts.json", "zzz-junk.parts.json"}
    assert "not signed by any of the given keys" in ignored["aaa-forged.parts.json"]
    assert "damaged" in ignored["zzz-junk.parts.json"]
    assert sent["index"] in received["warnings"][0] and "aaa-forged.parts.json" in received["warnings"][0]


def test_several_verifying_indexes_are_refused_and_named(bundle):
    sent = send(bundle)
    outbox = bundle["dir"] / "outbox"
    (outbox / "copy.parts.json").write_text((outbox / sent["index"]).read_text())
    with pytest.raises(TransferError) as info:
        receive(bundle)
    assert "2 of them verify with the given keys (copy.parts.json, %s)" % sent["index"] in str(info.value)
    assert "say which one to use in 'index'" in str(info.value)
    assert receive(bundle, index=sent["index"])["verification"]["verified"] is True


def test_no_verifying_index_among_several_is_refused_with_reasons(bundle, tmp_path):
    sent = send(bundle)
    outbox = bundle["dir"] / "outbox"
    other = tmp_path / "other.pem"
    pki.write_ec_key(str(other))
    (outbox / "junk.parts.json").write_text("[]")
    resign(bundle, outbox / sent["index"], lambda index: None, key=str(other))
    with pytest.raises(TransferError) as info:
        receive(bundle)
    message = str(info.value)
    assert "none verifies with the given keys" in message
    assert "%s: the part index" % sent["index"] in message and "junk.parts.json: the part index" in message
