"""Every way a bundle can be damaged or forged is refused, each with its own message."""

import hashlib
import os
import shutil
import tarfile

import pytest
from cryptography.hazmat.primitives import serialization

from ansible_collections.petra.core.plugins.module_utils.bundle.create import create_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import VerificationError
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys, verify_bundle
from ansible_collections.petra.core.plugins.module_utils.oci.registry import ClientPool
from ansible_collections.petra.core.plugins.module_utils.signing.keys import key_id, load_signer
from ansible_collections.petra.core.tests.support import craft, pki


@pytest.fixture
def bundle(sources, spool, ec_key):
    key, pub = ec_key
    spec = BundleSpec({
        "apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
        "metadata": {"name": "tamper", "version": "1.0.0", "expires": "2099-01-01"},
        "manifests": [{"name": "apps", "path": "manifests/apps"}],
        "files": [{"name": "k3s", "path": "bin/k3s"}],
    }, str(sources))
    result = create_bundle(spec, str(spool / "b.tar.zst"), load_signer(key), ClientPool(),
                           environ={"SOURCE_DATE_EPOCH": "1767225600"})
    return result["path"], key, pub


def refused(path, pub, **kwargs):
    with pytest.raises(VerificationError) as info:
        verify_bundle(path, load_public_keys([pub]), **kwargs)
    return info.value


def private_key(path):
    with open(path, "rb") as handle:
        return serialization.load_pem_private_key(handle.read(), None)


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0])
def test_one_flipped_byte_anywhere(bundle, fraction):
    path, _key, pub = bundle
    size = os.path.getsize(path)
    position = min(size - 1, int(size * fraction))
    with open(path, "r+b") as handle:
        handle.seek(position)
        byte = handle.read(1)
        handle.seek(position)
        handle.write(bytes([byte[0] ^ 0x01]))
    error = refused(path, pub)
    assert "signature does not" in error.message


def test_flipped_byte_resigned_names_the_entry(bundle, tmp_path):
    """An archive re-signed by the legitimate key after alteration: the entry check still catches it."""
    path, key, pub = bundle
    plain = tmp_path / "plain.tar"
    os.system("zstd -q -dc %s > %s" % (path, plain))
    with tarfile.open(plain) as archive:
        members = list(archive.getmembers())
        blob = next(m for m in members if m.name.startswith("blobs/") and m.size > 1000)
    with open(plain, "r+b") as handle:
        handle.seek(blob.offset_data + 10)
        byte = handle.read(1)
        handle.seek(blob.offset_data + 10)
        handle.write(bytes([byte[0] ^ 0xFF]))
    os.system("zstd -q -f %s -o %s" % (plain, path))
    craft.sign_file(path, private_key(key))
    error = refused(path, pub)
    assert error.reason == "altered"
    assert blob.name in error.message and "was altered" in error.message


def test_truncated(bundle):
    path, _key, pub = bundle
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) // 2)
    error = refused(path, pub)
    assert "truncated" in error.message


def test_truncated_and_resigned(bundle, tmp_path):
    path, key, pub = bundle
    plain = tmp_path / "plain.tar"
    os.system("zstd -q -dc %s > %s" % (path, plain))
    with tarfile.open(plain) as archive:
        last = archive.getmembers()[-1]
    with open(plain, "r+b") as handle:
        handle.truncate(last.offset)  # cut exactly at an entry boundary
    os.system("zstd -q -f %s -o %s" % (plain, path))
    craft.sign_file(path, private_key(key))
    error = refused(path, pub)
    assert error.reason == "truncated"
    assert last.name in error.message


def test_swapped_signature(bundle, sources, spool, ec_key):
    path, key, pub = bundle
    (sources / "bin" / "k3s").write_bytes(b"other content")
    spec = BundleSpec({"apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
                       "metadata": {"name": "tamper", "version": "1.0.1"},
                       "files": [{"name": "k3s", "path": "bin/k3s"}]}, str(sources))
    other = create_bundle(spec, str(spool / "other.tar.zst"), load_signer(key), ClientPool(),
                          environ={"SOURCE_DATE_EPOCH": "1767225600"})
    shutil.copy(other["signature"], path + ".sig")
    error = refused(path, pub)
    assert error.reason == "bad-signature"
    assert "swapped or altered" in error.message


def test_wrong_key(bundle, tmp_path):
    path, _key, _pub = bundle
    other_pub = pki.write_ec_key(str(tmp_path / "other.pem"))
    error = refused(path, other_pub)
    assert error.reason == "wrong-key"
    assert "wrong key" in error.message


def test_any_of_several_keys(bundle, tmp_path):
    path, _key, pub = bundle
    other_pub = pki.write_ec_key(str(tmp_path / "other.pem"))
    result = verify_bundle(path, load_public_keys([other_pub, pub]))
    assert result["key_id"] == key_id(load_public_keys([pub])[0])


def test_missing_signature(bundle):
    path, _key, pub = bundle
    os.unlink(path + ".sig")
    error = refused(path, pub)
    assert error.reason == "signature-missing"


def test_expired(sources, spool, ec_key):
    key, pub = ec_key
    spec = BundleSpec({"apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
                       "metadata": {"name": "old", "version": "1.0.0", "expires": "2020-01-31"},
                       "files": [{"name": "k3s", "path": "bin/k3s"}]}, str(sources))
    result = create_bundle(spec, str(spool / "old.tar.zst"), load_signer(key), ClientPool(), environ={})
    error = refused(result["path"], pub)
    assert error.reason == "expired"
    assert "expired on 2020-01-31" in error.message
    import datetime
    assert verify_bundle(result["path"], load_public_keys([pub]), today=datetime.date(2020, 1, 31))["verified"]


# -- hand-made archives, validly signed, so the structural check is what refuses them ----------------
def crafted(tmp_path, ec_key, members, declared):
    key, pub = ec_key
    signer_id = key_id(load_public_keys([pub])[0])
    metadata = craft.metadata_for(declared, key_id=signer_id)
    path = str(tmp_path / "crafted.tar.zst")
    craft.write_archive(path, [("petra-bundle.json", craft.metadata_bytes(metadata))] + members)
    craft.sign_file(path, private_key(key))
    return path, pub


def test_control_crafted_archive_verifies(tmp_path, ec_key):
    entries = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", b"{}")]
    path, pub = crafted(tmp_path, ec_key, entries, entries)
    assert verify_bundle(path, load_public_keys([pub]))["verified"]


def test_dotdot_entry(tmp_path, ec_key):
    entries = [("../escape", b"x")]
    path, pub = crafted(tmp_path, ec_key, entries, [("oci-layout", b"x")])
    error = refused(path, pub)
    assert error.reason == "unsafe-path" and "'../escape'" in error.message and "'..' component" in error.message


def test_absolute_entry(tmp_path, ec_key):
    path, pub = crafted(tmp_path, ec_key, [("/etc/cron.d/x", b"x")], [("oci-layout", b"x")])
    error = refused(path, pub)
    assert error.reason == "unsafe-path" and "absolute path" in error.message


def test_symlink_entry(tmp_path, ec_key):
    link = tarfile.TarInfo("oci-layout")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/shadow"
    path, pub = crafted(tmp_path, ec_key, [link], [("oci-layout", b"x")])
    error = refused(path, pub)
    assert error.reason == "entry-type" and "symbolic link" in error.message and "/etc/shadow" in error.message


def test_hardlink_and_device_entries(tmp_path, ec_key):
    hard = tarfile.TarInfo("oci-layout")
    hard.type = tarfile.LNKTYPE
    hard.linkname = "petra-bundle.json"
    path, pub = crafted(tmp_path, ec_key, [hard], [("oci-layout", b"x")])
    assert "hard link" in refused(path, pub).message
    device = tarfile.TarInfo("oci-layout")
    device.type = tarfile.CHRTYPE
    device.devmajor, device.devminor = 1, 3
    path, pub = crafted(tmp_path, ec_key, [device], [("oci-layout", b"x")])
    assert "device node" in refused(path, pub).message


def test_oversized_entry(tmp_path, ec_key):
    big = tarfile.TarInfo("oci-layout")
    big.size = 10 * 1024 * 1024
    path, pub = crafted(tmp_path, ec_key, [(big, bytes(big.size))], [("oci-layout", b"tiny")])
    error = refused(path, pub)
    assert error.reason == "oversized" and "oversized entry" in error.message and "declares 4" in error.message


def test_duplicate_entry(tmp_path, ec_key):
    entries = [("oci-layout", b"x")]
    path, pub = crafted(tmp_path, ec_key, entries + entries, entries)
    error = refused(path, pub)
    assert error.reason == "duplicate" and "twice" in error.message


def test_extra_entry(tmp_path, ec_key):
    path, pub = crafted(tmp_path, ec_key, [("oci-layout", b"x"), ("smuggled", b"y")], [("oci-layout", b"x")])
    error = refused(path, pub)
    assert error.reason == "extra" and "'smuggled'" in error.message


def test_missing_entry(tmp_path, ec_key):
    path, pub = crafted(tmp_path, ec_key, [("oci-layout", b"x")], [("oci-layout", b"x"), ("index.json", b"{}")])
    error = refused(path, pub)
    assert error.reason == "truncated" and "'index.json'" in error.message


def test_altered_entry(tmp_path, ec_key):
    path, pub = crafted(tmp_path, ec_key, [("oci-layout", b"y")], [("oci-layout", b"x")])
    error = refused(path, pub)
    assert error.reason == "altered" and "'oci-layout' was altered" in error.message


def test_metadata_not_first(tmp_path, ec_key):
    key, pub = ec_key
    path = str(tmp_path / "c.tar.zst")
    craft.write_archive(path, [("oci-layout", b"x")])
    craft.sign_file(path, private_key(key))
    error = refused(path, pub)
    assert error.reason == "metadata" and "not a Petra bundle" in error.message


def test_trailing_garbage_after_zstd(bundle):
    path, key, pub = bundle
    with open(path, "ab") as handle:
        handle.write(b"garbage")
    craft.sign_file(path, private_key(key))
    error = refused(path, pub)
    assert error.reason == "corrupt" and "zstd" in error.message


def test_not_zstd_at_all(tmp_path, ec_key):
    key, pub = ec_key
    path = tmp_path / "x.tar.zst"
    path.write_bytes(b"this is not a bundle" * 100)
    craft.sign_file(str(path), private_key(key))
    error = refused(str(path), pub)
    assert error.reason == "corrupt"


def test_digest_of_file_reported(bundle):
    path, _key, pub = bundle
    result = verify_bundle(path, load_public_keys([pub]))
    with open(path, "rb") as handle:
        assert result["sha256"] == hashlib.sha256(handle.read()).hexdigest()
    assert result["size"] == os.path.getsize(path)
