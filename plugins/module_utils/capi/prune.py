# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Superseded bootstrap data Secrets and AWSMachineTemplates after a template rotation.

Content-hashed names mean every rotation leaves the previous Secrets (they hold the cluster token, the first
server's the CA key) and the previous agent template behind. One is deleted only when nothing refers to it any more:
no Machine (one being deleted included: CAPI may still need its bootstrap data), no AWSMachine cloned from it, no
MachineDeployment and no MachineSet (CAPI keeps a scaled-down MachineSet a while, and a rollback scales it up
again). The current ones are never candidates. Deletion waits, bounded, only for users that are going away.
"""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.capi.apply import (
    AWS_MACHINE, AWS_MACHINE_TEMPLATE, MACHINE, MACHINE_DEPLOYMENT, MACHINE_SET, SECRET)
from ansible_collections.petra.core.plugins.module_utils.capi.machines import deleting
from ansible_collections.petra.core.plugins.module_utils.capi.spec import CLUSTER_LABEL, ROLE_LABEL

# What CAPI writes on an infrastructure object cloned from a template: which template it came from.
CLONED_FROM = "cluster.x-k8s.io/cloned-from-name"


def _references(spec_part):
    """(bootstrap Secret, infrastructure template) a Machine(Deployment|Set) spec or template spec names."""
    spec_part = spec_part or {}
    infra = spec_part.get("infrastructureRef") or {}
    template = infra.get("name") if infra.get("kind") == "AWSMachineTemplate" else None
    return (spec_part.get("bootstrap") or {}).get("dataSecretName"), template


def _going_away(kind, obj):
    """A user that will let go by itself: being deleted, or a MachineSet scaled to zero (CAPI deletes those)."""
    if deleting(obj):
        return True
    return kind is MACHINE_SET and not (obj.get("spec") or {}).get("replicas") and \
        not (obj.get("status") or {}).get("replicas")


class Superseded:
    """The superseded objects of one workload cluster; ``current`` = the names this run renders."""

    def __init__(self, spec, client, applier, log):
        self.spec = spec
        self.client = client
        self.applier = applier
        self.log = log

    def candidates(self, current):
        """[(Kind, name)]: Petra's bootstrap Secrets and agent templates of this cluster not rendered by this run."""
        prefix = "%s-bootstrap-" % self.spec.name
        found = [(SECRET, item["metadata"]["name"]) for item in self.client.list(SECRET, self.spec.namespace,
                                                                                 self.spec.labels())
                 if item["metadata"]["name"].startswith(prefix)]
        found += [(AWS_MACHINE_TEMPLATE, item["metadata"]["name"])
                  for item in self.client.list(AWS_MACHINE_TEMPLATE, self.spec.namespace, self.spec.labels("agent"))]
        return sorted((item for item in found if item[1] not in current), key=lambda item: (item[0].kind, item[1]))

    def users(self):
        """{(kind name, object name): [(user "Kind/name", going away, is a server Machine)]}."""
        ns, mine = self.spec.namespace, {CLUSTER_LABEL: self.spec.name}
        found = {}

        def add(kind_name, name, user_kind, user, server=False):
            if name:
                found.setdefault((kind_name, name), []).append(
                    ("%s/%s" % (user_kind.kind, user["metadata"]["name"]), _going_away(user_kind, user), server))

        for kind in (MACHINE, MACHINE_DEPLOYMENT, MACHINE_SET):
            for item in self.client.list(kind, ns, mine):
                spec_part = item.get("spec") or {}
                if kind is not MACHINE:
                    spec_part = (spec_part.get("template") or {}).get("spec")
                secret, template = _references(spec_part)
                server = kind is MACHINE and (item["metadata"].get("labels") or {}).get(ROLE_LABEL) == "server"
                add(SECRET.kind, secret, kind, item, server)
                add(AWS_MACHINE_TEMPLATE.kind, template, kind, item)
        # Cloned AWSMachines need not carry the cluster label: every one of the namespace is looked at.
        for item in self.client.list(AWS_MACHINE, ns, {}):
            add(AWS_MACHINE_TEMPLATE.kind, ((item["metadata"].get("annotations") or {}).get(CLONED_FROM)),
                AWS_MACHINE, item)
        return found

    def plan(self, current, staying_servers):
        """Check mode: every candidate this run would delete, now or once the roll it starts is through; those a
        server Machine that stays (not rolled by this run) still uses are left out."""
        users = self.users()
        for kind, name in self.candidates(current):
            held = [user for user, _away, server in users.get((kind.kind, name), [])
                    if server and user.split("/", 1)[1] in staying_servers]
            if held:
                continue
            why = "superseded; once no Machine uses it" if users.get((kind.kind, name)) else "superseded"
            self.log.record("delete", kind=kind.kind, name=name, why=why)

    def prune(self, current, timeout):
        """Delete every unused candidate, after waiting (at most ``timeout`` seconds, 0: not at all) for users that
        are going away; [{kind, name, used_by}] for those still in use (a later run deletes them)."""
        candidates = self.candidates(current)
        if not candidates:
            return []

        def settled():
            users = self.users()
            pending = [item for item in candidates
                       if any(away for _user, away, _server in users.get((item[0].kind, item[1]), []))]
            return users if not pending else None

        users = None
        if timeout:
            deadline = self.log.clock() + timeout
            while users is None and self.log.clock() < deadline:
                users = settled()
                if users is None:
                    self.log.sleep(self.log.poll_interval)
        if users is None:
            users = self.users()
        kept = []
        for kind, name in candidates:
            used_by = sorted(user for user, _away, _server in users.get((kind.kind, name), []))
            if used_by:
                kept.append({"kind": kind.kind, "name": name, "used_by": used_by})
            else:
                self.applier.delete(kind, self.spec.namespace, name, why="superseded")
        return kept
