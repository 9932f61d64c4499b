# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Server Machines (each a ``Machine`` + ``AWSMachine`` pair) as the machines of ``flatcar/roll.py``'s Roll, so
Cluster API servers are replaced with exactly the quorum checks and drains of standalone mode.

A member's ``id`` is its Machine name and its ``address`` the InternalIP CAPA copies into the Machine's status.
``terminate`` runs after the Roll drained and deleted the Node (k3s removes the etcd member with it): it releases
Petra's pre-terminate hook, deletes the Machine (CAPI deletes the instance) and waits until it is gone.
"""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.capi import render
from ansible_collections.petra.core.plugins.module_utils.capi.apply import AWS_MACHINE, MACHINE, conditions_text
from ansible_collections.petra.core.plugins.module_utils.capi.spec import BOOTSTRAP_LABEL, SPEC_ANNOTATION


def deleting(obj):
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def internal_address(machine):
    for address in (machine.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP" and address.get("address"):
            return address["address"]
    return None


def condition(obj, kind):
    for item in (obj.get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return item.get("status") == "True"
    return False


def machine_ready(machine):
    """The Machine has its Node (matched by providerID) and CAPI mirrors that Node as Ready."""
    return bool(((machine.get("status") or {}).get("nodeRef") or {}).get("name")) and condition(machine, "NodeReady")


class Member:
    __slots__ = ("id", "role", "address", "launched", "bootstrap", "digest")

    def __init__(self, machine):
        meta = machine["metadata"]
        self.id = meta["name"]
        self.role = "server"
        self.address = internal_address(machine)
        self.launched = meta.get("creationTimestamp") or ""
        self.bootstrap = (meta.get("labels") or {}).get(BOOTSTRAP_LABEL) == "true"
        self.digest = (meta.get("annotations") or {}).get(SPEC_ANNOTATION)

    def summary(self):
        return {"machine": self.id, "role": self.role, "private_ip": self.address, "bootstrap": self.bootstrap}


class ServerMachines:
    """The servers of one workload cluster; ``desired`` = {"init": (secret, digest), "join": (secret, digest),
    "spec": AWSMachine spec} from the current render."""

    def __init__(self, spec, client, applier, log, desired, wait_timeout):
        self.spec = spec
        self.client = client
        self.applier = applier
        self.log = log
        self.desired = desired
        self.wait_timeout = wait_timeout
        # Names check mode has planned: the plan names each new server once.
        self._planned = set()

    def _machines(self):
        found = self.client.list(MACHINE, self.spec.namespace, self.spec.labels("server"))
        return sorted((item for item in found if not deleting(item)),
                      key=lambda item: (item["metadata"].get("creationTimestamp") or "", item["metadata"]["name"]))

    def members(self, role):
        return [Member(item) for item in self._machines()] if role == "server" else []

    def is_current(self, member):
        return member.digest == self.desired["init" if member.bootstrap else "join"][1]

    def next_name(self):
        """<cluster>-server-<n>, n above every index used so far: a replacement never takes a gone server's name."""
        machines = self.client.list(MACHINE, self.spec.namespace, self.spec.labels("server"))
        prefix = "%s-server-" % self.spec.name
        used = [int(name[len(prefix):]) for name in {item["metadata"]["name"] for item in machines} | self._planned
                if name.startswith(prefix) and name[len(prefix):].isdigit()]
        return "%s%d" % (prefix, max(used) + 1 if used else 0)

    def create(self, bootstrap=False, zone_index=0, record=True):
        """One AWSMachine + Machine pair; the Machine last, so CAPI finds its infrastructure ready to reconcile."""
        secret, digest = self.desired["init" if bootstrap else "join"]
        name = self.next_name()
        zone = self.spec.zones[zone_index % len(self.spec.zones)] if self.spec.zones else None
        facts = {"kind": "Machine", "name": name, "role": "server", "bootstrap_secret": secret}
        if bootstrap:
            facts["bootstrap"] = True
        if self.log.check_mode:
            self._planned.add(name)
            self.log.record("create", **facts)
            return None
        self.client.create(AWS_MACHINE, render.aws_machine(self.spec, name, self.desired["spec"], bootstrap))
        self.client.create(MACHINE, render.server_machine(self.spec, name, secret, digest, zone, bootstrap))
        if record:
            self.log.record("create", **facts)
        return name

    def launch(self, role, members):
        """A new joining server, returned once CAPA gave it an address (the Roll then waits for its Node)."""
        name = self.create(zone_index=len(members), record=False)
        machine = self.log.poll("an address for Machine %s" % name, self.wait_timeout,
                                lambda: self._addressed(name), lambda: self._stuck(name))
        # The Roll names the Node of the last recorded action: the launch.
        self.log.record("launch", instance_id=name, role=role)
        return Member(machine)

    def _addressed(self, name):
        machine = self.client.get(MACHINE, self.spec.namespace, name)
        return machine if machine and internal_address(machine) else None

    def _stuck(self, name):
        machine = self.client.get(MACHINE, self.spec.namespace, name) or {}
        aws = self.client.get(AWS_MACHINE, self.spec.namespace, name) or {}
        return ("Machine %s has no InternalIP; Machine %s; AWSMachine %s" % (
            name, conditions_text(machine), conditions_text(aws)), {"object": "Machine/%s" % name})

    def terminate(self, member, why):
        self.log.record("terminate", instance_id=member.id, role=member.role, why=why)
        if self.log.check_mode:
            return
        self.release(member.id)
        self.client.delete(MACHINE, self.spec.namespace, member.id)
        self.applier.wait_gone(MACHINE, self.spec.namespace, member.id, self.wait_timeout)

    def release(self, name):
        """Lift Petra's pre-terminate hook: its etcd member is gone (or the whole cluster is)."""
        machine = self.client.get(MACHINE, self.spec.namespace, name)
        if machine and render.PRE_TERMINATE_HOOK in ((machine.get("metadata") or {}).get("annotations") or {}):
            self.client.merge_patch(MACHINE, self.spec.namespace, name,
                                    {"metadata": {"annotations": {render.PRE_TERMINATE_HOOK: None}}})

    def release_all(self):
        """During state=absent: lift the hook of every server Machine Cluster API is deleting."""
        for item in self.client.list(MACHINE, self.spec.namespace, self.spec.labels("server")):
            if deleting(item):
                self.release(item["metadata"]["name"])
