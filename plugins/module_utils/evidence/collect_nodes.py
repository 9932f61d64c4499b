# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The nodes' configuration as launched: each instance's Ignition config (from its user data, following a replace
stub to S3 and checking its pinned hash), and the build information of the k3s binary those configs pin.

"As launched" is what EC2 gave the instance; nothing here runs on a node, so what a node does after boot (a unit
started by hand, a changed file) is not seen: that needs a node-side collector (docs/compliance.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import urllib.parse

from ansible_collections.petra.core.plugins.module_utils.errors import PetraError
from ansible_collections.petra.core.plugins.module_utils.evidence.errors import EvidenceError
from ansible_collections.petra.core.plugins.module_utils.evidence.store import redact_text
from ansible_collections.petra.core.plugins.module_utils.flatcar import buildinfo
from ansible_collections.petra.core.plugins.module_utils.flatcar.spec import TAG_CONFIG, TAG_ROLE

K3S_PATHS = ("/opt/bin/k3s", "/opt/extensions/k3s/k3s.raw")
MAX_CONFIG = 4 << 20


def _data_url_text(source):
    """The text of a ``data:`` URL, or None for other URLs (or binary content)."""
    if not source.startswith("data:"):
        return None
    header, _sep, payload = source[5:].partition(",")
    try:
        raw = base64.b64decode(payload) if header.endswith(";base64") else urllib.parse.unquote_to_bytes(payload)
        return raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def redact_ignition(document):
    """A copy of an Ignition config whose inline files have secret values replaced (the k3s token)."""
    copy = json.loads(json.dumps(document))
    for item in ((copy.get("storage") or {}).get("files") or []):
        contents = item.get("contents") or {}
        text = _data_url_text(contents.get("source") or "")
        if text is None:
            continue
        redacted, changed = redact_text(text)
        if changed:
            contents["source"] = "data:;base64," + base64.b64encode(redacted.encode("utf-8")).decode("ascii")
            contents.pop("verification", None)
            item["petraRedacted"] = True
    return copy


def facts(document):
    """What the checks read from one Ignition config."""
    files = {item.get("path"): item for item in ((document.get("storage") or {}).get("files") or [])}
    units = {unit.get("name"): unit for unit in ((document.get("systemd") or {}).get("units") or [])}
    texts = {path: _data_url_text((item.get("contents") or {}).get("source") or "") for path, item in files.items()}
    k3s = [{"path": path, "source": (files[path].get("contents") or {}).get("source"),
            "hash": ((files[path].get("contents") or {}).get("verification") or {}).get("hash")}
           for path in K3S_PATHS if path in files]
    defaults = "".join(texts.get(path) or "" for path in ("/etc/default/k3s", "/etc/default/k3s-agent"))
    return {
        "ssh_authorized_keys": sorted(key for user in ((document.get("passwd") or {}).get("users") or [])
                                      for key in user.get("sshAuthorizedKeys") or []),
        "units": {name: {"mask": bool(unit.get("mask")), "enabled": unit.get("enabled")}
                  for name, unit in sorted(units.items())},
        "k3s_environment": [line for line in redact_text(defaults)[0].splitlines() if line.strip()],
        "k3s_config": redact_text(texts.get("/etc/rancher/k3s/config.yaml") or "")[0],
        "audit_policy": "/etc/rancher/k3s/audit-policy.yaml" in files,
        "k3s": k3s,
        "kernel_arguments": ((document.get("kernelArguments") or {}).get("shouldExist") or []),
    }


class NodeCollector:
    """Ignition configs of the instances ``aws`` (an AWSCollector that has run) found; ``k3s_binary`` on the
    controller is the binary (or sysext image) the configs pin, inspected without running it."""

    def __init__(self, store, aws, k3s_binary=None):
        self.store, self.aws, self.k3s_binary = store, aws, k3s_binary

    def collect(self):
        self.store.gather("nodes/ignition.json", "Ignition configs as launched, per instance (secrets redacted)",
                          self._configs)
        self.store.gather("nodes/k3s-buildinfo.json", "Go build information of the k3s binary the configs pin",
                          self._buildinfo)
        return self

    def _configs(self):
        if not self.aws.instances:
            raise EvidenceError("no instance of the cluster was found, so no node configuration could be read",
                                reason="no-instances")
        nodes = []
        for item in self.aws.instances:
            tags = {tag["Key"]: tag["Value"] for tag in item.get("Tags") or []}
            raw = self.aws.user_data.get(item["InstanceId"], b"")
            entry = {"InstanceId": item["InstanceId"], "role": tags.get(TAG_ROLE),
                     "userDataSha256": hashlib.sha256(raw).hexdigest(), "configHashTag": tags.get(TAG_CONFIG)}
            try:
                document, entry["replacedFrom"] = self._document(raw)
            except PetraError as exc:
                entry["error"] = str(exc)
                nodes.append(entry)
                continue
            entry["ignition"] = redact_ignition(document)
            entry["facts"] = facts(document)
            nodes.append(entry)
        return {"nodes": nodes}

    def _document(self, raw):
        try:
            document = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise EvidenceError("the user data is not an Ignition JSON config", reason="ignition")
        replace = ((document.get("ignition") or {}).get("config") or {}).get("replace") or {}
        source = replace.get("source")
        if not source:
            return document, None
        if not source.startswith("s3://"):
            raise EvidenceError("the config is replaced from %s, which the collector does not fetch" % source,
                                reason="ignition")
        bucket, _sep, key = source[5:].partition("/")
        answer = self.aws.calls("S3 GetObject %s" % source, self.aws.clients["s3"].get_object, Bucket=bucket, Key=key)
        data = answer["Body"].read(MAX_CONFIG + 1)
        algorithm, _sep, expected = ((replace.get("verification") or {}).get("hash") or "").partition("-")
        if algorithm not in ("sha256", "sha512") or hashlib.new(algorithm, data).hexdigest() != expected:
            raise EvidenceError("the config at %s does not match the hash its stub pins (%s)" % (
                source, (replace.get("verification") or {}).get("hash")), reason="ignition")
        return json.loads(data.decode("utf-8")), source

    def _buildinfo(self):
        if not self.k3s_binary:
            raise EvidenceError("no k3s_binary was given, so the build of k3s was not inspected",
                                hint="Give k3s_binary: the file (or sysext image) the Ignition configs pin",
                                reason="no-k3s-binary")
        digest = hashlib.sha256()
        try:
            with open(self.k3s_binary, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
        except OSError as exc:
            raise EvidenceError("cannot read k3s_binary %s: %s" % (self.k3s_binary, exc.strerror), reason="k3s-binary")
        info = buildinfo.inspect(self.k3s_binary)
        return {"file": os.path.basename(self.k3s_binary), "sha256": digest.hexdigest(), "go_version": info["go_version"],
                "path": info["path"], "settings": info["settings"], "gofips140": info["gofips140"],
                "fips_module": info["fips_module"], "boringcrypto": info["boringcrypto"],
                "sysext_path": info.get("sysext_path"), "binary_sha256": info["binary_sha256"]}
