"""Parity parts (k=8 data parts, m=2 parity parts): any 2 lost or damaged parts rebuilt byte-identical on the far
side, 3 refused naming the one part to send again, forged indexes refused, the format as docs/diode.md states it."""

import itertools
import json
import os
import shutil
import tarfile

import pytest

from ansible_collections.petra.core.plugins.module_utils.bundle.create import create_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys
from ansible_collections.petra.core.plugins.module_utils.diode import parity, parts
from ansible_collections.petra.core.plugins.module_utils.diode.errors import TransferError
from ansible_collections.petra.core.plugins.module_utils.diode.transfer import (
    receive_from_directory,
    send_to_directory,
)
from ansible_collections.petra.core.plugins.module_utils.oci.registry import ClientPool
from ansible_collections.petra.core.plugins.module_utils.signing.keys import load_signer
from ansible_collections.petra.core.tests.support import pki

PART = str(parts.SMALLEST_MAX_PART_SIZE)  # 1 MiB of bundle per part: a 7.5 MiB bundle makes k=8


@pytest.fixture(scope="module")
def sent(tmp_path_factory):
    """A bundle of 8 data parts sent once with 2 parity parts; tests work on copies of the outbox."""
    root = tmp_path_factory.mktemp("parity")
    key = str(root / "signing.pem")
    pub = pki.write_ec_key(key)
    (root / "payload").write_bytes(os.urandom(7 * 1024 * 1024 + 512 * 1024))
    spec = BundleSpec({"apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
                       "metadata": {"name": "parity", "version": "1.0.0"},
                       "files": [{"name": "payload", "path": "payload"}]}, str(root))
    bundle = create_bundle(spec, str(root / "parity-1.0.0.tar.zst"), load_signer(key), ClientPool(),
                           environ={"SOURCE_DATE_EPOCH": "1767225600"})["path"]
    (root / "outbox").mkdir()
    result = send_to_directory(bundle, str(root / "outbox"), load_signer(key), PART, parity_parts=2)
    return {"root": root, "bundle": bundle, "key": key, "pub": pub, "result": result,
            "files": {name: (root / "outbox" / name).read_bytes() for name in os.listdir(root / "outbox")}}


@pytest.fixture
def inbox(sent, tmp_path):
    """A fresh copy of what crossed, and where to rebuild the bundle."""
    directory = tmp_path / "inbox"
    shutil.copytree(sent["root"] / "outbox", directory)
    return directory


def receive(sent, directory, **kwargs):
    return receive_from_directory(str(directory), str(directory.parent / "received.tar.zst"),
                                  load_public_keys([sent["pub"]]), **kwargs)


def damage(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x40
    path.write_bytes(bytes(data))


def test_send_writes_k_data_and_m_parity_parts_within_the_limits(sent):
    result = sent["result"]
    assert result["part_count"] == 8 and result["parity_count"] == 2
    assert result["parity_parts"] == ["parity-1.0.0.parity-0001-of-0002.tar", "parity-1.0.0.parity-0002-of-0002.tar"]
    assert sorted(sent["files"]) == sorted(result["parts"] + result["parity_parts"] + [result["index"]])
    index = json.loads(sent["files"][result["index"]])["index"]
    assert index["formatVersion"] == 2
    block = index["parity"]
    assert (block["scheme"], block["k"], block["m"]) == ("zfec", 8, 2)
    assert block["blockSize"] == index["parts"][0]["size"] == index["payloadSize"]
    for entry in index["parts"] + block["parts"]:
        data = sent["files"][entry["name"]]
        assert len(data) == entry["partSize"] <= parts.SMALLEST_MAX_PART_SIZE
        assert parts.hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert [entry["share"] for entry in block["parts"]] == [8, 9]
    with tarfile.open(sent["root"] / "outbox" / result["parity_parts"][0]) as archive:  # a plain tar, like the data
        assert [member.size for member in archive.getmembers()] == [block["blockSize"]]


def test_resend_writes_nothing(sent):
    again = send_to_directory(sent["bundle"], str(sent["root"] / "outbox"), load_signer(sent["key"]), PART,
                              parity_parts=2)
    assert again["changed"] is False and again["written"] == []


def test_intact_crossing_rebuilds_nothing(sent, inbox):
    received = receive(sent, inbox)
    assert received["rebuilt"] == [] and received["verification"]["verified"] is True
    assert received["parity_count"] == 2


NAMES = ["d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "p1", "p2"]


def _name(sent, short):
    result = sent["result"]
    return result["parts"][int(short[1:]) - 1] if short[0] == "d" else result["parity_parts"][int(short[1:]) - 1]


@pytest.mark.parametrize("lost, damaged", [
    (["d1", "d8"], []), (["d4", "p2"], []), (["p1", "p2"], []), ([], ["d2", "d3"]), (["d5"], ["p1"]),
    (["d8"], ["d1"]), (["d6"], []), ([], ["p2"])])
def test_two_parts_lost_or_damaged_are_rebuilt_byte_identical(sent, inbox, lost, damaged):
    for short in lost:
        os.unlink(inbox / _name(sent, short))
    for short in damaged:
        damage(inbox / _name(sent, short))
    received = receive(sent, inbox)
    expected = [_name(sent, short) for short in NAMES if short in lost + damaged]
    assert received["rebuilt"] == expected and received["changed"] is True
    assert received["verification"]["verified"] is True
    for name, data in sent["files"].items():
        assert (inbox / name).read_bytes() == data, name
    with open(sent["bundle"], "rb") as original:
        assert (inbox.parent / "received.tar.zst").read_bytes() == original.read()
    assert sorted(os.listdir(inbox)) == sorted(sent["files"])  # no temporary file left behind


def test_every_pair_of_lost_parts_is_rebuilt(sent, inbox):
    """All 45 pairs, through the rebuild alone (the full receive is shown above for a selection)."""
    index = json.loads(sent["files"][sent["result"]["index"]])["index"]
    for pair in itertools.combinations(NAMES, 2):
        names = [_name(sent, short) for short in pair]
        for name in names:
            os.unlink(inbox / name)
        assert parity.rebuild(index, str(inbox), names) == names
        for name in names:
            assert (inbox / name).read_bytes() == sent["files"][name], (pair, name)


def test_three_lost_are_refused_naming_one_part_to_send_again(sent, inbox):
    lost = [_name(sent, short) for short in ("d2", "d7", "p1")]
    for name in lost:
        os.unlink(inbox / name)
    with pytest.raises(TransferError) as info:
        receive(sent, inbox)
    assert info.value.parts == [lost[0]]
    message = str(info.value)
    assert "3 of 10 parts cannot be used (missing: %s)" % ", ".join(lost) in message
    assert "send again %s" % lost[0] in message and "Any 1 of the 3 unusable parts will do" in message
    assert not (inbox.parent / "received.tar.zst").exists()
    assert sorted(os.listdir(inbox)) == sorted(set(sent["files"]) - set(lost))  # nothing half-written
    # The one part named comes again: the other two are rebuilt.
    (inbox / lost[0]).write_bytes(sent["files"][lost[0]])
    assert receive(sent, inbox)["rebuilt"] == lost[1:]


def test_four_unusable_name_two(sent, inbox):
    for short in ("p1", "p2", "d3"):
        os.unlink(inbox / _name(sent, short))
    damage(inbox / _name(sent, "d6"))
    with pytest.raises(TransferError) as info:
        receive(sent, inbox)
    assert info.value.parts == [_name(sent, "d3"), _name(sent, "d6")]
    assert "damaged: %s" % _name(sent, "d6") in str(info.value)


def test_check_mode_names_what_would_be_rebuilt_and_writes_nothing(sent, inbox):
    os.unlink(inbox / _name(sent, "d3"))
    received = receive(sent, inbox, check_mode=True)
    assert received["rebuilt"] == [_name(sent, "d3")] and received["changed"] is True
    assert not (inbox / _name(sent, "d3")).exists() and not (inbox.parent / "received.tar.zst").exists()


def test_index_re_signed_by_another_key_is_refused(sent, inbox, tmp_path):
    """A forged parity part needs a forged index: refused like any index the given keys did not sign."""
    other = tmp_path / "other.pem"
    pki.write_ec_key(str(other))
    index_path = inbox / sent["result"]["index"]
    document = json.loads(index_path.read_text())
    forged_part = inbox / sent["result"]["parity_parts"][0]
    damage(forged_part)
    entry = document["index"]["parity"]["parts"][0]
    entry["sha256"] = parts.hash_file(str(forged_part))
    index_path.write_text(json.dumps(parts.signed_document(document["index"], load_signer(str(other)))))
    os.unlink(inbox / _name(sent, "d1"))
    with pytest.raises(TransferError, match="not signed by any of the given keys") as info:
        receive(sent, inbox)
    assert info.value.parts == [sent["result"]["index"]]
    assert not (inbox / _name(sent, "d1")).exists()


@pytest.mark.parametrize("change, reason", [
    (lambda i: i.update(formatVersion=3), "formatVersion 3 is not one this Petra reads"),
    (lambda i: i["parity"].update(scheme="rs-other"), "parity scheme 'rs-other'"),
    (lambda i: i["parity"].update(k=7), "does not fit its parts"),
    (lambda i: i["parity"]["parts"][1].update(share=8), "is not share 9"),
    (lambda i: i["parity"]["parts"][0].update(name="sub/p.tar"), "is not a plain file name"),
    (lambda i: i.update(formatVersion=1), "carries no parity block"),
])
def test_signed_but_unusable_parity_blocks_are_refused(sent, inbox, change, reason):
    index_path = inbox / sent["result"]["index"]
    document = json.loads(index_path.read_text())
    change(document["index"])
    index_path.write_text(json.dumps(parts.signed_document(document["index"], load_signer(sent["key"]))))
    with pytest.raises(TransferError, match="is refused") as info:
        receive(sent, inbox)
    assert reason in str(info.value)


def test_version_1_index_without_parity_is_still_read(sent, tmp_path):
    """Indexes written before parity (formatVersion 1, no parity block) are unchanged and still received."""
    outbox = tmp_path / "v1"
    outbox.mkdir()
    result = send_to_directory(sent["bundle"], str(outbox), load_signer(sent["key"]), PART)
    index = json.loads((outbox / result["index"]).read_text())["index"]
    assert index["formatVersion"] == 1 and "parity" not in index and result["parity_parts"] == []
    for name in result["parts"]:  # the data parts are the same files with or without parity
        assert (outbox / name).read_bytes() == sent["files"][name]
    received = receive(sent, outbox)
    assert received["rebuilt"] == [] and received["parity_count"] == 0 and received["verification"]["verified"]


@pytest.mark.parametrize("value, k, expected", [(0, 8, 0), (2, 8, 2), ("2", 8, 2), ("25%", 8, 2), ("10%", 8, 1),
                                                ("0%", 8, 0), ("100%", 3, 3), (None, 8, 0), (248, 8, 248)])
def test_parity_count(value, k, expected):
    assert parity.parity_count(value, k) == expected


@pytest.mark.parametrize("value, k, message", [("two", 8, "neither a number"), (-1, 8, "neither a number"),
                                               (True, 8, "neither a number"), (249, 8, "at most 256"),
                                               ("50%", 200, "at most 256")])
def test_bad_parity_counts(value, k, message):
    with pytest.raises(TransferError, match=message):
        parity.parity_count(value, k)


def test_too_many_parts_for_the_code_fail_before_writing(sent, tmp_path):
    outbox = tmp_path / "out"
    outbox.mkdir()
    with pytest.raises(TransferError, match="at most 256"):
        send_to_directory(sent["bundle"], str(outbox), load_signer(sent["key"]), PART, parity_parts=250)
    assert os.listdir(outbox) == []


def _gf_mul(a, b):
    """GF(2^8) product modulo x^8 + x^4 + x^3 + x^2 + 1 (0x11d), as docs/diode.md states."""
    product = 0
    while b:
        if b & 1:
            product ^= a
        a <<= 1
        if a & 0x100:
            a ^= 0x11d
        b >>= 1
    return product


def _gf_inverse(a):
    return next(b for b in range(1, 256) if _gf_mul(a, b) == 1)


def _generator(k, n):
    """The generator matrix as docs/diode.md describes it: G = V * inverse(V[0..k-1])."""
    alpha_power = [1]
    for _power in range(254):
        alpha_power.append(_gf_mul(alpha_power[-1], 2))
    rows = [[1] + [0] * (k - 1)] + [[alpha_power[(r * c) % 255] for c in range(k)] for r in range(n - 1)]
    top = [row[:] + [int(i == j) for j in range(k)] for i, row in enumerate(rows[:k])]
    for col in range(k):  # Gauss-Jordan over GF(2^8)
        pivot = next(r for r in range(col, k) if top[r][col])
        top[col], top[pivot] = top[pivot], top[col]
        scale = _gf_inverse(top[col][col])
        top[col] = [_gf_mul(x, scale) for x in top[col]]
        for r in range(k):
            if r != col and top[r][col]:
                factor = top[r][col]
                top[r] = [x ^ _gf_mul(factor, y) for x, y in zip(top[r], top[col])]
    inverse = [row[k:] for row in top]
    product = []
    for row in rows:
        out = []
        for c in range(k):
            value = 0
            for i in range(k):
                value ^= _gf_mul(row[i], inverse[i][c])
            out.append(value)
        product.append(out)
    return product


@pytest.mark.parametrize("k, m", [(3, 2), (8, 2), (1, 2)])
def test_documented_code_matches_zfec(k, m):
    """docs/diode.md's description of the code is enough for another implementation: a pure-Python one from it
    gives zfec's parity bytes."""
    zfec = parity.require_zfec()
    data = [os.urandom(64) for _share in range(k)]
    produced = zfec.Encoder(k, k + m).encode(data, list(range(k, k + m)))
    generator = _generator(k, k + m)
    assert generator[:k] == [[int(i == j) for j in range(k)] for i in range(k)]  # systematic
    for j in range(m):
        expected = bytearray(64)
        for t in range(64):
            for i in range(k):
                expected[t] ^= _gf_mul(generator[k + j][i], data[i][t])
        assert bytes(expected) == produced[j]
