"""A co-signature by an AWS KMS key (moto server on loopback) beside a bundle signed with a file key."""

import base64
import json
import subprocess

from ansible_collections.petra.core.plugins.module_utils.bundle.create import create_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.adapters.bundle import run as run_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys, verify_bundle
from ansible_collections.petra.core.plugins.module_utils.oci.registry import ClientPool
from ansible_collections.petra.core.plugins.module_utils.signing.keys import key_id, load_signer
from ansible_collections.petra.core.tests.integration.test_kms_signing import CREDS, make_key


def test_kms_cosignature_meets_a_two_key_threshold(moto, tmp_path, sources, ec_key):
    key, pub = ec_key
    spec = BundleSpec({"apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
                       "metadata": {"name": "kms-cosigned", "version": "1.0.0"},
                       "files": [{"name": "k3s", "path": "bin/k3s"}]}, str(sources))
    bundle = create_bundle(spec, str(tmp_path / "b.tar.zst"), load_signer(key), ClientPool(),
                           environ={"SOURCE_DATE_EPOCH": "1767225600"})["path"]
    kms_key, pem = make_key(moto, "us-gov-west-1", alias="alias/petra-approver")
    kms_pub = tmp_path / "approver.pub"
    kms_pub.write_text(pem)
    params = dict(CREDS, state="signed", src=bundle, public_keys=[pub], signature=None, cosignatures=None,
                  signing_key="awskms:///alias/petra-approver", signing_key_content=None, signing_key_password=None,
                  region="us-gov-west-1", endpoint_url=moto.endpoint, mode="0644")
    preview = run_bundle(params, check_mode=True)
    assert preview["changed"] is True and preview["key_id"] == key_id(load_public_keys([str(kms_pub)])[0])

    added = run_bundle(params, check_mode=False)
    assert added["changed"] is True and added["already_signed"] is None
    both = load_public_keys([pub, str(kms_pub)])
    result = verify_bundle(bundle, both, threshold=2)
    assert result["signers"] == [key_id(both[0]), key_id(both[1])] and result["sha256"] == added["sha256"]
    assert run_bundle(params, check_mode=False)["changed"] is False

    # The KMS signature (Sign with MessageType=DIGEST) checks out with openssl over the whole file.
    entry = json.loads(open(bundle + ".sigs.json").read())["signatures"][0]
    assert entry["keyId"] == added["key_id"] and entry["bundleSha256"] == added["sha256"]
    der = tmp_path / "kms.der"
    der.write_bytes(base64.b64decode(entry["signature"]))
    check = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(kms_pub), "-signature", str(der), bundle],
                           capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0 and "Verified OK" in check.stdout
    assert kms_key["Arn"].startswith("arn:aws-us-gov:kms:")
