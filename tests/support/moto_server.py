"""moto in server mode on loopback, with test-harness-only fills for four gaps: KMS Sign with MessageType=DIGEST,
EC2 ImportSnapshot / DescribeImportSnapshotTasks (not implemented by moto), SSM Run Command output, and SSM
DescribeInstanceInformation (not implemented by moto).

moto accepts SendCommand for any instance and answers GetCommandInvocation with a canned empty "Success": no
script runs. ``MotoServer.node_answers`` lets a test say what each instance answers (its stdout, the invocation
status, or that SSM does not manage it, as real SSM says with InvalidInstanceId, or that SSM throttles the first
reads of its invocation) and its agent's ping status (``ping``, default Online; an instance SSM does not manage is
not in the inventory).

moto's KMS Sign signs the message as if it were RAW even when MessageType=DIGEST, which real KMS does
not. The patch below is applied to the in-process moto server only, never to product code.
"""

from __future__ import annotations

import base64
import json
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from moto.ec2.responses import EC2Response
from moto.kms import responses as kms_responses
from moto.server import ThreadedMotoServer
from moto.ssm import models as ssm_models
from moto.ssm import responses as ssm_responses
from moto.ssm.exceptions import SSMException

from ansible_collections.petra.core.tests.support.servers import free_port, wait_for_port

_HASHES = {"ECDSA_SHA_256": hashes.SHA256, "ECDSA_SHA_384": hashes.SHA384, "ECDSA_SHA_512": hashes.SHA512}
_original_sign = kms_responses.KmsResponse.sign


def _sign_with_digest(self):
    if self._get_param("MessageType") != "DIGEST":
        return _original_sign(self)
    key_id = self._get_param("KeyId")
    algorithm = self._get_param("SigningAlgorithm")
    message = self._get_param("Message")
    # moto parses blob members with the service model (raw bytes) or not at all (base64 text).
    digest = message if isinstance(message, bytes) else base64.b64decode(message)
    key = self.kms_backend.describe_key(key_id)
    hash_class = _HASHES[algorithm]
    if len(digest) != hash_class.digest_size:
        raise ValueError("digest length %d does not fit %s" % (len(digest), algorithm))
    signature = key.private_key.private_key.sign(digest, ec.ECDSA(utils.Prehashed(hash_class())))
    return json.dumps({"KeyId": key.arn, "Signature": base64.b64encode(signature).decode(),
                       "SigningAlgorithm": algorithm})


_IMPORT_TASKS = {}


def _import_snapshot(self):
    """EC2 ImportSnapshot, which moto lacks: the disk image must exist in S3; the snapshot is real in moto's EBS."""
    from moto.core.responses import ActionResult
    from moto.s3.models import s3_backends

    container = self._get_param("DiskContainer") or {}
    bucket = (container.get("UserBucket") or {}).get("S3Bucket")
    key = (container.get("UserBucket") or {}).get("S3Key")
    if not self._get_param("RoleName"):
        raise ValueError("ImportSnapshot needs the vmimport service role (RoleName)")
    stored = s3_backends[self.current_account][self.partition].get_object(bucket, key)
    size_gib = max(1, -(-stored.size // (1 << 30)))
    kms_key = self._get_param("KmsKeyId")
    volume = self.ec2_backend.create_volume(size=size_gib, zone_name=self.region + "a",
                                            encrypted=self._get_bool_param("Encrypted", False), kms_key_id=kms_key)
    snapshot = self.ec2_backend.create_snapshot(volume.id, "imported from s3://%s/%s" % (bucket, key))
    task = "import-snap-%016x" % (len(_IMPORT_TASKS) + 1)
    detail = {"Status": "completed", "SnapshotId": snapshot.id, "DiskImageSize": float(stored.size), "Format": "VMDK",
              "Encrypted": snapshot.encrypted, "KmsKeyId": volume.kms_key_id,
              "UserBucket": {"S3Bucket": bucket, "S3Key": key}}
    # The first DescribeImportSnapshotTasks answers "active", as a real import does for a while.
    _IMPORT_TASKS[task] = {"detail": detail, "polls": 0, "s3_size": stored.size}
    return ActionResult({"ImportTaskId": task, "SnapshotTaskDetail": dict(detail, Status="active")})


def _describe_import_snapshot_tasks(self):
    from moto.core.responses import ActionResult

    tasks = []
    for task in self._get_param("ImportTaskIds") or list(_IMPORT_TASKS):
        entry = _IMPORT_TASKS[task]
        entry["polls"] += 1
        detail = entry["detail"] if entry["polls"] > 1 else dict(entry["detail"], Status="active")
        tasks.append({"ImportTaskId": task, "SnapshotTaskDetail": detail})
    return ActionResult({"ImportSnapshotTasks": tasks})


# instance id -> {"stdout": str, "status": "Success" | "Failed" | "InProgress" ..., "managed": bool,
#                 "throttle": how many GetCommandInvocation calls to refuse with ThrottlingException first}
NODE_ANSWERS = {}
_original_invocation = ssm_models.Command.invocation_response
_original_send_command = ssm_responses.SimpleSystemManagerResponse.send_command
_original_get_command_invocation = ssm_responses.SimpleSystemManagerResponse.get_command_invocation


def _invocation_response(self, instance_id, plugin_name):
    answer = _original_invocation(self, instance_id, plugin_name)
    wanted = NODE_ANSWERS.get(instance_id)
    if wanted:
        status = wanted.get("status", "Success")
        answer.update(Status=status, StatusDetails=status, StandardOutputContent=wanted.get("stdout", "")[:24000],
                      StandardErrorContent=wanted.get("stderr", ""), ResponseCode=0 if status == "Success" else 1)
    return answer


def _get_command_invocation(self):
    wanted = NODE_ANSWERS.get(self._get_param("InstanceId"))
    if wanted and wanted.get("throttle"):  # the next n calls are refused, as a busy SSM does
        wanted["throttle"] -= 1
        raise SSMException("ThrottlingException", "Rate exceeded")
    return _original_get_command_invocation(self)


def _send_command(self):
    unmanaged = [instance for instance in self._get_param("InstanceIds", [])
                 if not NODE_ANSWERS.get(instance, {}).get("managed", True)]
    if unmanaged:
        raise SSMException("InvalidInstanceId", "Instances [%s] not in a valid state for account" % unmanaged)
    return _original_send_command(self)


def _describe_instance_information(self):
    """The running EC2 instances SSM manages (not ``managed: False``), with the ``ping`` status the test set."""
    from moto.ec2.models import ec2_backends

    wanted = set()
    for item in self._get_param("Filters") or []:
        if item.get("Key") == "InstanceIds":
            wanted.update(item.get("Values") or [])
    backend = ec2_backends[self.current_account][self.region]
    found = []
    for instance in backend.all_instances():
        answer = NODE_ANSWERS.get(instance.id, {})
        if (wanted and instance.id not in wanted) or instance.state != "running" or not answer.get("managed", True):
            continue
        found.append({"InstanceId": instance.id, "PingStatus": answer.get("ping", "Online"), "PlatformType": "Linux",
                      "PlatformName": "Flatcar Container Linux by Kinvolk", "ResourceType": "EC2Instance",
                      "AgentVersion": "3.3.0.0", "IsLatestVersion": True, "LastPingDateTime": 1767225600.0})
    return json.dumps({"InstanceInformationList": sorted(found, key=lambda item: item["InstanceId"])})


class MotoServer:
    def __init__(self):
        self.port = free_port()
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    def __enter__(self):
        # AWS-managed IAM policies (AmazonSSMManagedInstanceCore, ...) exist in every real account.
        os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        kms_responses.KmsResponse.sign = _sign_with_digest
        EC2Response.import_snapshot = _import_snapshot
        EC2Response.describe_import_snapshot_tasks = _describe_import_snapshot_tasks
        ssm_models.Command.invocation_response = _invocation_response
        ssm_responses.SimpleSystemManagerResponse.send_command = _send_command
        ssm_responses.SimpleSystemManagerResponse.get_command_invocation = _get_command_invocation
        ssm_responses.SimpleSystemManagerResponse.describe_instance_information = _describe_instance_information
        self._server.start()
        wait_for_port(self.port)
        return self

    def __exit__(self, *exc):
        self._server.stop()
        kms_responses.KmsResponse.sign = _original_sign
        del EC2Response.import_snapshot, EC2Response.describe_import_snapshot_tasks
        ssm_models.Command.invocation_response = _original_invocation
        ssm_responses.SimpleSystemManagerResponse.send_command = _original_send_command
        ssm_responses.SimpleSystemManagerResponse.get_command_invocation = _original_get_command_invocation
        del ssm_responses.SimpleSystemManagerResponse.describe_instance_information
        NODE_ANSWERS.clear()

    node_answers = NODE_ANSWERS
