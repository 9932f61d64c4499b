"""Configs over the 16 KB user-data limit: published to S3 (moto), user data becomes a validated replace stub."""

import hashlib
import json
import subprocess

import boto3

from ansible_collections.petra.core.plugins.module_utils.adapters import flatcar

CREDS = dict(aws_access_key_id="testing", aws_secret_access_key="testing")


def params(moto, bucket, **extra):
    result = {"state": "rendered", "node_role": "server", "cluster_init": True, "server_url": None, "token": "t0ken",
              "k3s": {"url": "s3://artifacts/k3s", "sha256": "f" * 64}, "k3s_kind": "binary", "registries": None,
              "registry_ca": None, "airgap_images": [], "ignition_version": "3.3.0", "updates": "disabled",
              "host_fips": False, "fips_go": True, "k3s_config_extra": {}, "dest": None, "binary": None,
              "require_fips_module": False, "config_s3_uri": "s3://%s/nodes/server-0.ign" % bucket,
              "config_s3_always": False, "config_s3_kms_key_id": None, "region": "us-east-1", "profile": None,
              "access_key": "testing", "secret_key": "testing", "session_token": None, "endpoint_url": moto.endpoint,
              "aws_ca_bundle": None, "validate_certs": True,
              # Bootstrap manifests large enough to push the config over 16 KB.
              "manifests": [{"name": "big-%d.yaml" % i, "content": "# " + "x" * 4000 + "\n"} for i in range(6)]}
    result.update(extra)
    return result


def test_large_config_goes_to_s3_behind_a_stub(moto, tmp_path):
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto.endpoint, **CREDS)
    s3.create_bucket(Bucket="petra-nodes")
    result = flatcar.run(params(moto, "petra-nodes"), check_mode=False)
    assert result["fits_user_data"] is False and result["changed"] is True
    stored = s3.get_object(Bucket="petra-nodes", Key="nodes/server-0.ign")["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == result["sha256"]
    stub = json.loads(result["user_data"])
    assert stub["ignition"]["config"]["replace"] == {"source": "s3://petra-nodes/nodes/server-0.ign",
                                                     "verification": {"hash": "sha256-" + result["sha256"]}}
    assert len(result["user_data"]) < 16 * 1024
    for name, data in (("stub.ign", result["user_data"].encode()), ("full.ign", stored)):
        (tmp_path / name).write_bytes(data)
        check = subprocess.run(["ignition-validate", str(tmp_path / name)], capture_output=True, text=True,
                               timeout=60, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
    again = flatcar.run(params(moto, "petra-nodes"), check_mode=False)
    assert again["changed"] is False and again["user_data"] == result["user_data"]


def test_small_config_stays_in_user_data(moto):
    result = flatcar.run(params(moto, "petra-nodes-small", manifests=[]), check_mode=False)
    assert result["fits_user_data"] is True and "config_s3_uri" not in result
    assert json.loads(result["user_data"]) == result["ignition"]
