# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Flatcar into a region with no official AMIs (GovCloud, isolated regions): verify, upload, import, register, publish.

The image file is proven first (its digest, and its detached OpenPGP signature when a key is given) and only then
uploaded; the AMI carries the digest as a tag, so a re-run with the same image finds it and does nothing.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import os
import shutil
import subprocess
import tempfile
import time

from ansible_collections.petra.core.plugins.module_utils.aws.errors import AWSCalls
from ansible_collections.petra.core.plugins.module_utils.flatcar.errors import AMIImportError

APPROVED_DIGESTS = ("sha256", "sha384", "sha512")
TAG_SOURCE = "petra:source-digest"
CHUNK = 4 << 20


def parse_checksum(text):
    algorithm, sep, value = (text or "").partition(":")
    algorithm = algorithm.lower()
    if not sep:
        raise AMIImportError("image_checksum %r has no algorithm prefix" % text,
                             hint="Write it as sha512:<hex> (Flatcar's DIGESTS file lists SHA-512) or sha256:<hex>")
    if algorithm not in APPROVED_DIGESTS:
        raise AMIImportError("image_checksum uses %s, which is not a FIPS-approved digest for integrity" % algorithm,
                             hint="Use the SHA-512 (or SHA-256/384) value of the image, not MD5 or SHA-1")
    value = value.strip().lower()
    if len(value) != hashlib.new(algorithm).digest_size * 2 or any(c not in "0123456789abcdef" for c in value):
        raise AMIImportError("image_checksum is not a %s hex digest" % algorithm)
    return algorithm, value


def file_digest(path, algorithm):
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_signature(path, signature, public_key, timeout=300):
    """Check a detached OpenPGP signature with gpgv and a keyring holding only ``public_key``."""
    gpg, gpgv = shutil.which("gpg"), shutil.which("gpgv")
    if not gpg or not gpgv:
        raise AMIImportError("gpg and gpgv are needed to check the image's OpenPGP signature",
                             hint="Install the gnupg and gpgv packages on the controller")
    key_text = public_key
    if os.path.isfile(public_key):
        with open(public_key, "rb") as handle:
            key_text = handle.read().decode("ascii", "replace")
    with tempfile.TemporaryDirectory(prefix="petra-gpg-") as home:
        keyring = os.path.join(home, "trusted.gpg")
        dearmor = subprocess.run([gpg, "--homedir", home, "--batch", "--dearmor", "--output", keyring],
                                 input=key_text.encode("ascii", "replace"), capture_output=True, timeout=timeout,
                                 check=False)
        if dearmor.returncode != 0:
            raise AMIImportError("gpg_public_key is not an OpenPGP public key: %s" % dearmor.stderr.decode(errors="replace"),
                                 hint="Give the armored key Flatcar publishes (Flatcar_Image_Signing_Key.asc) or its path")
        check = subprocess.run([gpgv, "--homedir", home, "--keyring", keyring, signature, path], capture_output=True,
                               timeout=timeout, check=False)
    output = check.stderr.decode(errors="replace").strip()
    if check.returncode != 0:
        raise AMIImportError("the OpenPGP signature %s does not verify %s with the given key: %s" % (
            signature, path, output.splitlines()[-1] if output else "gpgv failed"), reason="bad-signature",
            hint="Download the image and its .sig again from the release; do not import it")
    return output


class HashingReader(io.RawIOBase):
    """A read-only, forward-only file object that hashes everything read through it."""

    def __init__(self, handle, algorithm):
        super().__init__()
        self._handle = handle
        self._digest = hashlib.new(algorithm)

    def readinto(self, buffer):
        count = self._handle.readinto(buffer)
        self._digest.update(memoryview(buffer)[:count or 0])
        return count

    def readable(self):
        return True

    def drain(self):
        """Hash what a reader left unread (trailing bytes after the last bz2 stream, say)."""
        while self.read(CHUNK):
            continue

    def hexdigest(self):
        return self._digest.hexdigest()


class FlatcarImporter:
    def __init__(self, params, connection, check_mode, sleep=time.sleep):
        self.params = params
        self.check_mode = check_mode
        self.ec2 = connection.client("ec2")
        self.s3 = connection.client("s3")
        self.ssm = connection.client("ssm") if params.get("ssm_parameter") else None
        self.actions = []
        self._sleep = sleep
        self.algorithm, self.expected = parse_checksum(params["image_checksum"])
        self.source_digest = "%s:%s" % (self.algorithm, self.expected)
        self._aws = AWSCalls(AMIImportError, reason="aws")

    def existing_image(self):
        answer = self._aws("EC2 DescribeImages", self.ec2.describe_images, Owners=["self"],
                           Filters=[{"Name": "name", "Values": [self.params["image_name"]]}])
        images = answer.get("Images") or []
        if not images:
            return None
        image = images[0]
        tags = {tag["Key"]: tag["Value"] for tag in image.get("Tags") or []}
        if tags.get(TAG_SOURCE) != self.source_digest:
            raise AMIImportError("an AMI named %s (%s) already exists from another image (%s)" % (
                self.params["image_name"], image["ImageId"], tags.get(TAG_SOURCE) or "no source digest"),
                hint="Give each Flatcar release its own image_name, e.g. flatcar-stable-<version>")
        return image

    def run(self):
        image = self.existing_image()
        result = {"image_name": self.params["image_name"], "source_digest": self.source_digest}
        if image is not None:
            result.update(image_id=image["ImageId"], verified="the AMI was imported from this digest before")
        else:
            result.update(self.verify())
            key = self.params["import_prefix"] + os.path.basename(self.upload_name())
            result["s3_uri"] = "s3://%s/%s" % (self.params["import_bucket"], key)
            self.upload(key)
            snapshot = self.import_snapshot(key)
            result["snapshot_id"] = snapshot
            result["image_id"] = self.register(snapshot)
        if self.params.get("ssm_parameter"):
            self.publish(result.get("image_id"))
            result["ssm_parameter"] = self.params["ssm_parameter"]
        result["actions"] = self.actions
        result["changed"] = bool(self.actions)
        return result

    def upload_name(self):
        path = self.params["image_file"]
        return path[:-4] if path.endswith(".bz2") else path

    def verify(self):
        path = self.params["image_file"]
        if not os.path.isfile(path):
            raise AMIImportError("image_file %s does not exist" % path)
        actual = file_digest(path, self.algorithm)
        if actual != self.expected:
            raise AMIImportError("image_file %s has %s %s, not the expected %s" % (path, self.algorithm, actual, self.expected),
                                 reason="digest-mismatch", hint="The download is damaged or not the release you meant")
        facts = {"verified": "%s digest" % self.algorithm}
        if bool(self.params.get("image_signature")) != bool(self.params.get("gpg_public_key")):
            raise AMIImportError("image_signature and gpg_public_key go together: a signature needs the key to check it "
                                 "with, and a key is given to have the signature checked",
                                 hint="Give both (the release's .sig and Flatcar's image signing key), or neither")
        if self.params.get("image_signature"):
            facts["signature"] = verify_signature(path, self.params["image_signature"], self.params["gpg_public_key"])
            facts["verified"] += " and OpenPGP signature"
        return facts

    def upload(self, key):
        """Upload the image, hashing the very bytes read; an object whose source did not match is deleted again.

        An object already in the bucket is never reused: its content cannot be proven without reading it back.
        """
        bucket = self.params["import_bucket"]
        self.actions.append({"action": "upload", "s3_uri": "s3://%s/%s" % (bucket, key)})
        if self.check_mode:
            return
        extra = {"ChecksumAlgorithm": "SHA256", "Metadata": {"petra-source-digest": self.source_digest}}
        if self.params.get("kms_key_id"):
            extra.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=self.params["kms_key_id"])
        path = self.params["image_file"]
        with self._aws.errors("S3 upload s3://%s/%s" % (bucket, key),
                              hint="The caller needs s3:PutObject on the import bucket (and kms:GenerateDataKey)"):
            try:
                with open(path, "rb") as raw:
                    source = HashingReader(raw, self.algorithm)
                    # A .bz2 release file is decompressed on the fly: the disk image is never written out.
                    body = bz2.BZ2File(source, "rb") if path.endswith(".bz2") else source
                    try:
                        self.s3.upload_fileobj(body, bucket, key, ExtraArgs=extra)
                    finally:
                        if body is not source:
                            body.close()
                    source.drain()
            except (OSError, EOFError) as exc:  # reading the file or its bz2 stream; a PetraError passes the handler
                raise AMIImportError("cannot read %s: %s" % (path, exc))
        if source.hexdigest() != self.expected:
            self._aws("S3 DeleteObject s3://%s/%s" % (bucket, key), self.s3.delete_object, Bucket=bucket, Key=key)
            raise AMIImportError("%s changed while it was uploaded: %s %s, not the verified %s; the upload was deleted" % (
                path, self.algorithm, source.hexdigest(), self.expected), reason="digest-mismatch",
                hint="Make sure nothing writes to the image file during the import, then re-run")

    def import_snapshot(self, key):
        self.actions.append({"action": "import-snapshot"})
        if self.check_mode:
            return None
        request = {
            "Description": "Flatcar %s (%s)" % (self.params["image_name"], self.source_digest[:19]),
            "DiskContainer": {"Format": "VMDK", "UserBucket": {"S3Bucket": self.params["import_bucket"], "S3Key": key}},
            "Encrypted": True, "RoleName": self.params["import_role"],
            "TagSpecifications": [{"ResourceType": "import-snapshot-task", "Tags": self.tags()}],
        }
        if self.params.get("kms_key_id"):
            request["KmsKeyId"] = self.params["kms_key_id"]
        task = self._aws("EC2 ImportSnapshot", self.ec2.import_snapshot, **request)["ImportTaskId"]
        deadline = time.monotonic() + self.params["import_timeout"]
        while True:
            answer = self._aws("EC2 DescribeImportSnapshotTasks %s" % task, self.ec2.describe_import_snapshot_tasks,
                               ImportTaskIds=[task])
            detail = (answer.get("ImportSnapshotTasks") or [{}])[0].get("SnapshotTaskDetail") or {}
            status = detail.get("Status")
            if status == "completed":
                self.actions[-1].update(task=task, snapshot_id=detail["SnapshotId"])
                return detail["SnapshotId"]
            if status in ("deleted", "deleting") or detail.get("StatusMessage", "").lower().startswith("clienterror"):
                raise AMIImportError("snapshot import %s ended %s: %s" % (task, status, detail.get("StatusMessage")),
                                     reason="import-failed",
                                     hint="Check the vmimport service role's access to the bucket and KMS key")
            if time.monotonic() >= deadline:
                raise AMIImportError("snapshot import %s is still %s after %ds" % (task, status, self.params["import_timeout"]),
                                     reason="import-timeout", hint="Wait for it in the EC2 console, then re-run")
            self._sleep(self.params["poll_interval"])

    def tags(self):
        tags = dict(self.params.get("tags") or {})
        tags[TAG_SOURCE] = self.source_digest
        tags["Name"] = self.params["image_name"]
        return [{"Key": key, "Value": str(value)} for key, value in sorted(tags.items())]

    def register(self, snapshot):
        self.actions.append({"action": "register-image", "name": self.params["image_name"]})
        if self.check_mode:
            return None
        request = {
            "Name": self.params["image_name"], "Architecture": self.params["architecture"],
            "Description": "Flatcar Container Linux, imported and verified by petra.core",
            "RootDeviceName": "/dev/xvda", "VirtualizationType": "hvm", "EnaSupport": True,
            "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {
                "SnapshotId": snapshot, "VolumeType": "gp3", "DeleteOnTermination": True}}],
            "TagSpecifications": [{"ResourceType": "image", "Tags": self.tags()}],
        }
        if self.params.get("boot_mode"):
            request["BootMode"] = self.params["boot_mode"]
        image = self._aws("EC2 RegisterImage %s" % self.params["image_name"], self.ec2.register_image, **request)["ImageId"]
        # The snapshot is tagged too, and the image again for APIs that ignore TagSpecifications on RegisterImage.
        self._aws("EC2 CreateTags %s" % image, self.ec2.create_tags, Resources=[image, snapshot], Tags=self.tags())
        self.actions[-1]["image_id"] = image
        return image

    def publish(self, image_id):
        name = self.params["ssm_parameter"]
        answer = self._aws("SSM GetParameter %s" % name, self.ssm.get_parameter, missing_ok=True, Name=name)
        current = answer["Parameter"]["Value"] if answer else None
        if current == image_id and image_id is not None:
            return
        self.actions.append({"action": "put-parameter", "name": name, "value": image_id})
        if self.check_mode:
            return
        self._aws("SSM PutParameter %s" % name, self.ssm.put_parameter, Name=name, Value=image_id, Type="String",
                  DataType="aws:ec2:image", Overwrite=True,
                  Description="Flatcar AMI imported by petra.core (%s)" % self.source_digest[:26])


def import_image(params, connection, check_mode):
    return FlatcarImporter(params, connection, check_mode).run()
