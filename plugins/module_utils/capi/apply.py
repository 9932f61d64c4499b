# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Objects on the management cluster brought to what Petra renders: created when missing, merge-patched when a
field Petra sets differs (fields that controllers and webhooks add are left alone), otherwise untouched; so a
second run changes nothing. Every change is recorded, and in check mode only recorded.
"""

from __future__ import annotations

import time

from ansible_collections.petra.core.plugins.module_utils.aws.errors import AWSCalls
from ansible_collections.petra.core.plugins.module_utils.capi.errors import CapiError
from ansible_collections.petra.core.plugins.module_utils.k8s.objects import Kind

NAMESPACE = Kind("v1", "Namespace", "namespaces", namespaced=False)
SECRET = Kind("v1", "Secret", "secrets")
CLUSTER = Kind("cluster.x-k8s.io/v1beta2", "Cluster", "clusters")
MACHINE = Kind("cluster.x-k8s.io/v1beta2", "Machine", "machines")
MACHINE_DEPLOYMENT = Kind("cluster.x-k8s.io/v1beta2", "MachineDeployment", "machinedeployments")
MACHINE_SET = Kind("cluster.x-k8s.io/v1beta2", "MachineSet", "machinesets")
MACHINE_HEALTH_CHECK = Kind("cluster.x-k8s.io/v1beta2", "MachineHealthCheck", "machinehealthchecks")
AWS_CLUSTER = Kind("infrastructure.cluster.x-k8s.io/v1beta2", "AWSCluster", "awsclusters")
AWS_MACHINE = Kind("infrastructure.cluster.x-k8s.io/v1beta2", "AWSMachine", "awsmachines")
AWS_MACHINE_TEMPLATE = Kind("infrastructure.cluster.x-k8s.io/v1beta2", "AWSMachineTemplate", "awsmachinetemplates")
KINDS = {kind.kind: kind for kind in (NAMESPACE, SECRET, CLUSTER, MACHINE, MACHINE_DEPLOYMENT, MACHINE_SET,
                                      MACHINE_HEALTH_CHECK, AWS_CLUSTER, AWS_MACHINE, AWS_MACHINE_TEMPLATE)}
# The parts of an object Petra owns; the rest (status, defaults, controllers' annotations) is never compared.
OWNED = ("type", "data", "spec")


def differences(desired, live, path=""):
    """Dotted paths where ``desired`` is not what ``live`` holds; keys only ``live`` has do not count."""
    if isinstance(desired, dict) and isinstance(live, dict):
        found = []
        for key, value in desired.items():
            found += differences(value, live.get(key), "%s.%s" % (path, key) if path else key)
        return found
    return [] if desired == live else [path]


class Log:
    """A run's check mode and action list (the Roll's ``log`` interface), its clock and its AWS error handler."""

    aws = AWSCalls(CapiError, reason="aws")

    def __init__(self, check_mode, clock=time.monotonic, sleep=time.sleep, poll_interval=5.0):
        self.check_mode = check_mode
        self.actions = []
        self.clock = clock
        self.sleep = sleep
        self.poll_interval = poll_interval

    def record(self, action, **facts):
        entry = {"action": action}
        entry.update(facts)
        self.actions.append(entry)

    def poll(self, what, timeout, probe, failure):
        """``probe()`` until it returns something true, every poll_interval, for at most ``timeout`` seconds; then
        ``failure()`` gives the message and details of the error."""
        deadline = self.clock() + timeout
        while True:
            found = probe()
            if found:
                return found
            if self.clock() >= deadline:
                message, details = failure()
                raise CapiError("%s not reached after %ds: %s" % (what, timeout, message), reason="capi-timeout",
                                hint="Read the named objects' conditions (kubectl describe) and the CAPA controller's "
                                     "log; re-run to resume", **details)
            self.sleep(self.poll_interval)


class Applier:
    """Applies rendered objects through a ``k8s.objects.ObjectClient``."""

    def __init__(self, client, log):
        self.client = client
        self.log = log

    def ensure(self, obj):
        """The live object after applying ``obj`` (None when check mode only recorded its creation)."""
        kind = KINDS[obj["kind"]]
        meta = obj["metadata"]
        live = self.client.get(kind, meta.get("namespace"), meta["name"])
        if live is None:
            self.log.record("create", kind=obj["kind"], name=meta["name"])
            return None if self.log.check_mode else self.client.create(kind, obj)
        patch, changed = {}, []
        live_meta = live.get("metadata") or {}
        for key in ("labels", "annotations"):
            found = differences(meta.get(key) or {}, live_meta.get(key) or {})
            if found:
                patch.setdefault("metadata", {})[key] = meta[key]
                changed += ["metadata.%s.%s" % (key, item) for item in found]
        for key in OWNED:
            if key in obj:
                found = differences(obj[key], live.get(key))
                if found:
                    patch[key] = obj[key]
                    changed += found
        if not changed:
            return live
        self.log.record("update", kind=obj["kind"], name=meta["name"], fields=sorted(changed))
        if self.log.check_mode:
            return live
        return self.client.merge_patch(kind, meta.get("namespace"), meta["name"], patch)

    def delete(self, kind, namespace, name, why=None):
        """Ask for the deletion of an object that exists; True when it did."""
        if self.client.get(kind, namespace, name) is None:
            return False
        facts = {"why": why} if why else {}
        self.log.record("delete", kind=kind.kind, name=name, **facts)
        if not self.log.check_mode:
            self.client.delete(kind, namespace, name)
        return True

    def wait_gone(self, kind, namespace, name, timeout, on_poll=None):
        def probe():
            if on_poll is not None:
                on_poll()
            return self.client.get(kind, namespace, name) is None

        def failure():
            live = self.client.get(kind, namespace, name) or {}
            return "%s %s/%s is still there (finalizers %s; %s)" % (
                kind.kind, namespace, name, ", ".join((live.get("metadata") or {}).get("finalizers") or []) or "none",
                conditions_text(live)), {"object": "%s/%s" % (kind.kind, name)}
        if not self.log.check_mode:
            self.log.poll("deletion of %s %s" % (kind.kind, name), timeout, probe, failure)


def conditions_text(obj):
    """The object's conditions in one line: ``Type=Status (Reason: message)``."""
    parts = []
    for condition in ((obj or {}).get("status") or {}).get("conditions") or []:
        text = "%s=%s" % (condition.get("type"), condition.get("status"))
        if condition.get("reason") or condition.get("message"):
            text += " (%s: %s)" % (condition.get("reason") or "", condition.get("message") or "")
        parts.append(text)
    return "conditions: " + ("; ".join(parts) if parts else "none reported")
