# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Rolling replacement and scale-down of k3s nodes without losing etcd quorum, whatever launches the machines.

Servers surge (the new one Ready before an old one leaves), and no server is added or removed unless the Ready
servers keep quorum; agents are drained (evictions honour PodDisruptionBudgets), then replaced. A failure stops the
roll and says at which node and step; re-running resumes with the members still outdated.

``Roll`` works against three small interfaces, so a standalone cluster on EC2 and a Cluster API cluster share it:

- ``machines``: ``members(role)`` (each with ``id``, ``role``, ``address``, ``launched``), ``is_current(member)``,
  ``launch(role, members)`` (a new member, running, with its address) and ``terminate(member, why)``;
- ``nodes``: ``k8s.nodes.NodeOperations`` (find by address, wait Ready, drain, delete), or None without a kubeconfig;
- ``log``: ``check_mode``, the ``actions`` list and ``record(action, **facts)``.
"""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.errors import PetraError
from ansible_collections.petra.core.plugins.module_utils.flatcar.errors import ClusterError
from ansible_collections.petra.core.plugins.module_utils.k8s.nodes import node_is_ready


def quorum(members):
    return members // 2 + 1


class Roll:
    """Brings the members of each role to the current version and to their count, one member at a time."""

    def __init__(self, machines, nodes, log, node_ready_timeout=900, drain_timeout=600):
        self.machines = machines
        self.nodes = nodes
        self.log = log
        self.node_ready_timeout = node_ready_timeout
        self.drain_timeout = drain_timeout

    def replace_outdated(self, role, count):
        """Replace outdated members one at a time; servers surge (new one Ready first) so etcd never loses quorum."""
        while True:
            members = self.machines.members(role)
            outdated = [item for item in members if not self.machines.is_current(item)]
            if not outdated or count == 0:
                return
            if self.log.check_mode:
                for old in outdated:
                    self.log.record("replace", instance_id=old.id, role=role)
                return
            old = outdated[0]
            if role == "server":
                if len(members) <= count:
                    # A new etcd member is added only while every member there is healthy.
                    self._check_all_ready(old, members)
                    self._step("launch", old, lambda: self._launch_ready(role, members))
                    continue
                # A surge server from an interrupted run must be Ready before any old server leaves.
                for item in members:
                    if self.machines.is_current(item):
                        self._step("wait-ready", item, lambda item=item: self._wait_ready(item))
                self._check_quorum(old, members)
                self._step("drain", old, lambda: self._retire(old, "outdated"))
            else:
                self._step("drain", old, lambda: self._retire(old, "outdated"))
                self._step("launch", old, lambda: self._launch_ready(role, [i for i in members if i.id != old.id]))

    def scale_down(self, role, count):
        """Remove the members above ``count``: outdated ones first, then the newest, each drained first."""
        members = self.machines.members(role)
        extra = len(members) - count
        if extra <= 0:
            return
        # Outdated first, then the newest: long-lived nodes keep their place.
        newest_first = sorted(members, key=lambda item: (item.launched, item.id), reverse=True)
        victims = sorted(newest_first, key=self.machines.is_current)[:extra]
        if self.log.check_mode:
            for victim in victims:
                self.log.record("terminate", instance_id=victim.id, role=role, why="scale-down")
            return
        if self.nodes is None:
            raise ClusterError("%d %s node(s) are above the requested count and removing them needs the kubeconfig "
                               "to drain them first" % (extra, role), hint="Give kubeconfig", reason="kubeconfig-needed")
        for victim in victims:
            if role == "server":
                self._check_quorum(victim, members)
            self._step("drain", victim, lambda victim=victim: self._retire(victim, "scale-down"))
            members = [item for item in members if item.id != victim.id]

    def _step(self, step, old, action):
        try:
            action()
        except PetraError as exc:
            details = dict(exc.details)
            details.update(stopped_at={"instance_id": old.id, "role": old.role, "step": step}, actions=self.log.actions)
            raise ClusterError("rolling replacement stopped at %s %s (%s step): %s" % (old.role, old.id, step, exc.message),
                               hint=exc.hint or "Fix the cause and re-run: the roll resumes from the nodes still outdated",
                               **details)

    def _launch_ready(self, role, members):
        member = self.machines.launch(role, members)
        name = self.nodes.wait_ready(member.address, self.node_ready_timeout)
        # The launch is the last action recorded: it gains the name of the Node the new member registered as.
        self.log.actions[-1]["node"] = name

    def _retire(self, member, why):
        """Drain the member's Node (evictions honour PodDisruptionBudgets), delete it, terminate the member."""
        node = self.nodes.find(member.address) if self.nodes is not None and member.address else None
        if node is not None:
            name = node["metadata"]["name"]
            evicted = self.nodes.drain(name, self.drain_timeout)
            self.log.record("drain", instance_id=member.id, node=name, evicted=evicted)
            # Deleting the Node lets k3s remove the server's etcd member; the machine goes only once the Node has.
            self.nodes.delete(name)
            self.nodes.wait_deleted(name, self.drain_timeout)
        self.machines.terminate(member, why)

    def _wait_ready(self, member):
        self.nodes.wait_ready(member.address, self.node_ready_timeout)

    def _ready_servers(self, servers):
        ready = []
        for item in servers:
            node = self.nodes.find(item.address) if item.address else None
            if node is not None and node_is_ready(node):
                ready.append(item)
        return ready

    def _check_all_ready(self, outdated, members):
        servers = [item for item in members if item.role == "server"]
        ready = self._ready_servers(servers)
        if len(ready) < len(servers):
            raise ClusterError("adding a server while %d of %d servers are not Ready (%s) could leave etcd without "
                               "quorum" % (len(servers) - len(ready), len(servers), ", ".join(
                                   item.id for item in servers if item not in ready)), reason="quorum",
                               hint="Bring every server back to Ready before re-running the roll",
                               stopped_at={"instance_id": outdated.id, "role": "server", "step": "quorum-check"},
                               actions=self.log.actions)

    def _check_quorum(self, leaving, members):
        servers = [item for item in members if item.role == "server"]
        remaining = [item for item in servers if item.id != leaving.id]
        ready = len(self._ready_servers(remaining))
        needed = quorum(len(remaining))
        if ready < needed:
            raise ClusterError("removing server %s would leave %d Ready server(s) of %d, below the etcd quorum of %d" % (
                leaving.id, ready, len(remaining), needed), reason="quorum",
                hint="Bring the other servers back to Ready before re-running the roll",
                stopped_at={"instance_id": leaving.id, "role": "server", "step": "quorum-check"},
                actions=self.log.actions)
