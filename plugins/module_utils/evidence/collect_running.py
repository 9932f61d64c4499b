# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The nodes as running: a read-only shell script sent to every instance with SSM Run Command
(``AWS-RunShellScript``), through the collection's one AWS path, and its answer per instance.

The script reads what is running, not what was configured: whether sshd is active and anything listens on port 22,
the k3s unit's main process (its arguments, the GODEBUG/GOFIPS140 entries of its environment, the SHA-256 of its
executable as running), the newest ``Running kube-apiserver`` line of its journal (k3s logs every apiserver argument,
including those from config.yaml), the SHA-256 of the k3s files the Ignition configs pin, every listening TCP socket,
the kernel's FIPS mode, how ``/usr`` is mounted, the state of the units Petra's Ignition configs set and the list of
enabled units, and the time of the newest event in Tetragon's JSON export (only its ``time`` field: an event's
arguments may hold secrets). The node's own clock is read too, so an event's age does not depend on the controller's.

Of k3s's command line and of the apiserver's journal line only the ``audit-*`` flags leave the node (an allow-list:
the flags the checks read). The rest may carry the join token (``--token K10...``, ``-t``), the datastore's
credentials (``--datastore-endpoint=postgres://user:password@host``), S3 keys for etcd snapshots, VPN join keys or
``--kube-apiserver-arg=oidc-client-secret=...``; of the environment only GODEBUG and GOFIPS140 (K3S_TOKEN lives there).
The controller keeps the same allow-list and masks secret-looking values again (``mask_args``), in case a node
answers more than this script prints.

Before the commands, SSM's inventory of managed instances (``DescribeInstanceInformation``) says whether each
instance's agent is online: the one way into a Petra node.

One command per instance (an instance SSM does not manage fails only its own), all sent first, then each waited for
within one bounded deadline. An instance that is stopped, not managed by SSM, whose command failed or did not answer
in time is recorded with the reason: the checks report it as not collected, never as a pass.
"""

from __future__ import annotations

import re
import shlex
import time

from ansible_collections.petra.core.plugins.module_utils.aws.errors import AWSCalls, error_code, wrap_client_error
from ansible_collections.petra.core.plugins.module_utils.errors import PetraError
from ansible_collections.petra.core.plugins.module_utils.evidence.errors import EvidenceError
from ansible_collections.petra.core.plugins.module_utils.evidence.store import REDACTED
from ansible_collections.petra.core.plugins.module_utils.flatcar.spec import TAG_ROLE

FORMAT = "petra-node-evidence/2"
DOCUMENT = "AWS-RunShellScript"
SCRIPT = r"""set -u
echo "format=%(format)s"
for u in sshd.service sshd.socket; do echo "unit.$u=$(systemctl is-active "$u" 2>/dev/null)"; done
if command -v ss >/dev/null; then
  echo "listen22=$(ss -Htln | awk '{print $4}' | grep -c ':22$')"
  echo "ports=read"
  ss -Htln | awk '{print "listen.tcp=" $4}'
fi
echo "kernel.fips_enabled=$(cat /proc/sys/crypto/fips_enabled 2>/dev/null)"
awk '$2 == "/usr" {d = $1; o = $4} END {if (d != "") print "usr.device=" d "\nusr.options=" o}' /proc/mounts
for u in %(units)s; do echo "unitfile.$u=$(systemctl is-enabled "$u" 2>/dev/null)"; done
systemctl list-unit-files --state=enabled --no-legend --no-pager 2>/dev/null | awk '{print "enabled.unit=" $1}'
t=%(tetragon)s
if [ -f "$t" ]; then
  echo "tetragon.export=present"
  echo "tetragon.mtime=$(date -u -r "$t" +%%Y-%%m-%%dT%%H:%%M:%%SZ)"
  echo "tetragon.time=$(tail -c 1048576 "$t" | grep -o '"time": *"[^"]*"' | tail -n 1 | cut -d'"' -f4)"
else
  echo "tetragon.export=missing"
fi
echo "now=$(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ)"
pid=
for u in k3s k3s-agent; do
  pid=$(systemctl show -p MainPID --value "$u.service" 2>/dev/null)
  if [ -n "$pid" ] && [ "$pid" != 0 ]; then break; fi
  pid=
done
if [ -n "$pid" ]; then
  echo "k3s.unit=$u.service"
  tr '\0' '\n' < "/proc/$pid/cmdline" | grep -E '%(allowed)s' | sed 's/^/k3s.arg=/'
  tr '\0' '\n' < "/proc/$pid/environ" | grep -E '^(GODEBUG|GOFIPS140)=' | sed 's/^/k3s.env=/'
  echo "k3s.exe=$(sha256sum "/proc/$pid/exe" | cut -d' ' -f1)"
  line=$(journalctl -u "$u.service" -o cat --no-pager -r 2>/dev/null | grep -m1 'Running kube-apiserver')
  if [ -n "$line" ]; then
    echo "k3s.apiserver=found"
    printf '%%s\n' "$line" | tr ' ' '\n' | tr -d '"' | grep -E '%(allowed)s' | sed 's/^/k3s.apiserver.arg=/'
  fi
fi
for f in %(paths)s; do if [ -f "$f" ]; then echo "file.$f=$(sha256sum "$f" | cut -d' ' -f1)"; fi; done
echo "end=ok"
"""
# Keys that may repeat; every other key has one value.
LISTS = ("k3s.arg", "k3s.apiserver.arg", "k3s.env", "listen.tcp", "enabled.unit")
# Every key the script prints (``file.<path>`` and the like by prefix): a key a node sends besides is not kept.
KEYS = ("format", "listen22", "ports", "kernel.fips_enabled", "usr.device", "usr.options", "tetragon.export",
        "tetragon.mtime", "tetragon.time", "now", "k3s.unit", "k3s.exe", "k3s.apiserver", "end") + LISTS
PREFIXES = ("unit.", "unitfile.", "file.")
# Every unit Petra's Ignition configs enable or mask (flatcar/ignition.py render; a unit test keeps them in step).
UNITS = ("sshd.service", "sshd.socket", "coreos-metadata-sshkeys@core.service", "auditd.service", "k3s.service",
         "k3s-agent.service", "petra-provider-id.service", "systemd-sysupdate.timer")
# Where Tetragon's Helm chart writes the JSON export on each node (exportDirectory/exportFilename, a hostPath).
TETRAGON_EXPORT = "/var/run/cilium/tetragon/tetragon.log"
DONE = ("Success", "Failed", "Cancelled", "TimedOut", "Cancelling", "Undeliverable", "Terminated", "InvalidPlatform",
        "AccessDenied", "DeliveryTimedOut", "ExecutionTimedOut")
# The only k3s and apiserver arguments that leave a node: the audit flags, as ``--audit-x=v``, as
# ``--kube-apiserver-arg=audit-x=v``, or as the value after a separate ``--kube-apiserver-arg`` (grep -E and re alike).
ALLOWED_ARG = r"^(-{1,2}kube-apiserver-arg=)?-{0,2}audit-[A-Za-z0-9-]+="
_ALLOWED_ARG = re.compile(ALLOWED_ARG)
# A flag, or a key inside a flag's value (``--kube-apiserver-arg=oidc-client-secret=x``, ``name=x,joinKey=y``), whose
# name says it holds a secret; ``-t`` is k3s's short form of ``--token``.
THROTTLING_CODES = ("ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded")
THROTTLED = "throttled"
MAX_BACKOFF = 30.0  # seconds between two rounds of GetCommandInvocation while SSM throttles
_SECRET_NAME = re.compile(r"(?i)(token|passw(or)?d|secret|private-?key|access-?key|join-?key|auth-?key|api-?key|"
                          r"credential|vpn-auth)")
_SHORT_SECRETS = ("-t",)
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")


def _secret_name(name):
    name = name.lstrip("-")
    return bool(_SECRET_NAME.search(name)) and not name.lower().endswith("-file")


def _mask_value(name, value):
    """``value`` of the flag or key ``name`` with what looks secret in it masked."""
    value = _URL_USERINFO.sub(lambda match: match.group(1) + REDACTED + "@", value)
    if _secret_name(name) and not value.startswith("/"):
        return REDACTED
    if "=" not in value:
        return value
    pairs = []
    for pair in value.split(","):  # key=value[,key=value]: the -arg flags and --vpn-auth
        key, sep, inner = pair.partition("=")
        pairs.append(key + sep + _mask_value(key, inner) if sep else pair)
    return ",".join(pairs)


def mask_args(args):
    """Arguments with every value that looks secret masked: ``--name=value`` and ``--name value`` (``-t value``) when
    the name says so, ``key=value`` pairs inside a value whose key says so, and the user:password of URLs."""
    masked, secret_next = [], False
    for arg in args:
        if secret_next:
            masked.append(REDACTED)
            secret_next = False
            continue
        name, sep, value = arg.partition("=")
        if sep and name.startswith("-"):
            masked.append(name + "=" + _mask_value(name, value))
            continue
        if arg.startswith("-"):
            secret_next = arg in _SHORT_SECRETS or _secret_name(arg)
            masked.append(arg)
            continue
        masked.append(_mask_value("", arg) if not sep else name + "=" + _mask_value(name, value))
    return masked


def script(paths, tetragon_export=TETRAGON_EXPORT):
    return SCRIPT % {"format": FORMAT, "paths": " ".join(shlex.quote(path) for path in paths),
                     "units": " ".join(UNITS), "tetragon": shlex.quote(tetragon_export), "allowed": ALLOWED_ARG}


def parse(stdout):
    """What the script printed, as a dict; raises ValueError when it is not the script's complete answer."""
    facts = {key: [] for key in LISTS}
    for line in stdout.splitlines():
        key, sep, value = line.partition("=")
        if not sep or not (key in KEYS or key.startswith(PREFIXES)):
            continue
        if key in LISTS:
            facts[key].append(value)
        else:
            facts[key] = value
    if facts.get("format") != FORMAT:
        raise ValueError("the answer is not the Petra node script's (format %r)" % facts.get("format"))
    if facts.pop("end", None) != "ok":
        raise ValueError("the answer is incomplete (SSM keeps only the first 24,000 characters of the output)")
    for key in ("k3s.arg", "k3s.apiserver.arg"):
        facts[key] = mask_args([arg for arg in facts[key] if _ALLOWED_ARG.match(arg)])
    if facts.get("k3s.apiserver"):  # the script says only whether it found the line; its words are the args
        facts["k3s.apiserver"] = "found"
    facts["k3s.env"] = [item for item in facts["k3s.env"] if item.startswith(("GODEBUG=", "GOFIPS140="))]
    return facts


class RunningCollector:
    """``aws`` is an AWSCollector that has run; ``connection`` the task's AWSConnection."""

    def __init__(self, store, aws, connection, paths, timeout=120, poll=2.0, clock=time.monotonic, sleep=time.sleep,
                 tetragon_export=TETRAGON_EXPORT, send=True):
        self.store, self.aws, self.paths, self.tetragon_export = store, aws, tuple(paths), tetragon_export
        self.send = send
        self.connection, self.timeout, self.poll = connection, timeout, poll
        self.clock, self.sleep = clock, sleep
        self.calls = AWSCalls(EvidenceError, hint="The assessment needs ssm:SendCommand (document AWS-RunShellScript) "
                              "on the cluster's instances and ssm:GetCommandInvocation", reason="ssm")

    def collect(self):
        self.store.gather("nodes-running/ssm-instances.json", "SSM's managed-instance inventory of the cluster's "
                          "instances (DescribeInstanceInformation: agent ping status)", self._agents)
        self.store.gather("nodes-running/commands.json", "What runs on each node, read with SSM Run Command "
                          "(AWS-RunShellScript)", self._read)
        return self

    def _agents(self):
        ids = [item["InstanceId"] for item in self.aws.instances]
        if not ids:
            raise EvidenceError("no instance of the cluster was found, so SSM was not asked about any",
                                reason="no-instances")
        ssm, found = self.connection.client("ssm"), []
        calls = AWSCalls(EvidenceError, hint="The assessment needs ssm:DescribeInstanceInformation", reason="ssm")
        for start in range(0, len(ids), 50):  # the InstanceIds filter takes at most 50 values
            with calls.errors("SSM DescribeInstanceInformation"):
                for page in ssm.get_paginator("describe_instance_information").paginate(
                        Filters=[{"Key": "InstanceIds", "Values": ids[start:start + 50]}]):
                    found.extend(page.get("InstanceInformationList") or [])
        keep = ("InstanceId", "PingStatus", "LastPingDateTime", "AgentVersion", "IsLatestVersion", "PlatformType",
                "PlatformName", "PlatformVersion", "ResourceType", "IamRole")
        return {"instances": [{"InstanceId": item["InstanceId"],
                               "State": (item.get("State") or {}).get("Name")} for item in self.aws.instances],
                "InstanceInformationList": sorted(({key: item[key] for key in keep if key in item} for item in found),
                                                  key=lambda item: item["InstanceId"])}

    def _read(self):
        if not self.send:  # check mode: SSM's inventory is read, but no command runs on any node
            raise EvidenceError("check mode: no command sent to the nodes, so what they run was not read",
                                reason="check-mode")
        if not self.aws.instances:
            raise EvidenceError("no instance of the cluster was found, so no node was asked what it runs",
                                reason="no-instances")
        ssm = self.connection.client("ssm")
        nodes, pending = [], {}
        for item in self.aws.instances:
            instance = item["InstanceId"]
            tags = {tag["Key"]: tag["Value"] for tag in item.get("Tags") or []}
            entry = {"InstanceId": instance, "role": tags.get(TAG_ROLE)}
            nodes.append(entry)
            state = (item.get("State") or {}).get("Name")
            if state != "running":
                entry["notCollected"] = "instance %s is %s, so no command can run on it" % (instance, state)
                continue
            try:
                answer = self.calls("SSM SendCommand %s to %s" % (DOCUMENT, instance), ssm.send_command,
                                    InstanceIds=[instance], DocumentName=DOCUMENT,
                                    Comment="petra_evidence: read-only node evidence",
                                    TimeoutSeconds=max(30, int(self.timeout)),
                                    Parameters={"commands": [script(self.paths, self.tetragon_export)],
                                                "executionTimeout": [str(max(30, int(self.timeout)))]})
            except PetraError as exc:
                if exc.details.get("code") == "InvalidInstanceId":
                    entry["notCollected"] = "instance %s is not managed by SSM (the agent is not online or the " \
                                            "instance profile lacks AmazonSSMManagedInstanceCore): %s" % (instance, exc)
                else:
                    entry["notCollected"] = str(exc)
                continue
            entry["CommandId"] = answer["Command"]["CommandId"]
            pending[instance] = entry
        deadline, delay = self.clock() + self.timeout, self.poll
        while pending:
            throttled = False
            for instance, entry in list(pending.items()):
                if self._answer(ssm, entry):
                    del pending[instance]
                elif entry.get("status") == THROTTLED:  # the others would be refused too: wait longer first
                    throttled = True
                    break
            if not pending:
                break
            if self.clock() >= deadline:
                for entry in pending.values():
                    entry["notCollected"] = "instance %s did not answer within %d s (status %s)" % (
                        entry["InstanceId"], self.timeout, entry.pop("status", "unknown"))
                break
            delay = min(max(delay, self.poll) * 2, MAX_BACKOFF) if throttled else self.poll
            self.sleep(max(0.0, min(delay, deadline - self.clock())))
        return {"document": DOCUMENT, "format": FORMAT, "nodes": nodes}

    def _answer(self, ssm, entry):
        """Whether the invocation has ended; its facts, or why there are none, go into ``entry``."""
        try:
            answer = ssm.get_command_invocation(CommandId=entry["CommandId"], InstanceId=entry["InstanceId"])
        except Exception as exc:  # pylint: disable=broad-except  # botocore raises many types
            if error_code(exc) == "InvocationDoesNotExist":  # usual for a moment after sending
                entry["status"] = "not yet registered"
                return False
            if error_code(exc) in THROTTLING_CODES:  # botocore's retries are spent; the deadline is not
                entry["status"] = THROTTLED
                return False
            entry["notCollected"] = str(wrap_client_error(exc, "SSM GetCommandInvocation %s on %s" % (
                entry["CommandId"], entry["InstanceId"]), EvidenceError))
            return True
        status = answer.get("Status")
        entry["status"] = status
        if status not in DONE:
            return False
        entry.pop("status", None)
        if status != "Success":
            entry["notCollected"] = "the command on instance %s ended %s (%s): %s" % (
                entry["InstanceId"], status, answer.get("StatusDetails"),
                (answer.get("StandardErrorContent") or "").strip()[:500] or "no error output")
            return True
        try:
            entry["facts"] = parse(answer.get("StandardOutputContent") or "")
        except ValueError as exc:
            entry["notCollected"] = "instance %s: %s" % (entry["InstanceId"], exc)
        return True
