# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""A standalone k3s cluster on EC2, converged in order: security groups, node identity, launch templates, missing
instances, then the roll of outdated nodes and the scale-down; or removed (state=absent).

Each kind of resource has its own file (``security_groups.py``, ``iam.py``, ``launch_templates.py``,
``instances.py``); the roll (``roll.py``) knows EC2 only through ``EC2Machines``, the machines interface below.
"""

from __future__ import annotations

import time

from ansible_collections.petra.core.plugins.module_utils.flatcar.context import ClusterRun
from ansible_collections.petra.core.plugins.module_utils.flatcar.errors import ClusterError
from ansible_collections.petra.core.plugins.module_utils.flatcar.iam import NodeIdentity
from ansible_collections.petra.core.plugins.module_utils.flatcar.instances import Instances
from ansible_collections.petra.core.plugins.module_utils.flatcar.launch_templates import LaunchTemplates
from ansible_collections.petra.core.plugins.module_utils.flatcar.roll import Roll
from ansible_collections.petra.core.plugins.module_utils.flatcar.security_groups import SecurityGroups
from ansible_collections.petra.core.plugins.module_utils.flatcar.spec import ROLES


class EC2Machines:
    """The roll's machines: the cluster's instances of a role, launched from the role's launch template."""

    def __init__(self, instances, templates):
        self._instances = instances
        self._templates = templates

    def members(self, role):
        return [item for item in self._instances.live() if item.role == role]

    def is_current(self, member):
        return self._instances.is_current(member)

    def launch(self, role, members):
        instance = self._instances.launch(role, self._templates.get(role), members)
        return self._instances.wait_running([instance.id])[instance.id]

    def terminate(self, member, why):
        self._instances.terminate(member, why)


class StandaloneCluster:
    """Converges a cluster's EC2 resources; ``nodes`` (k8s NodeOperations) is needed to drain and replace nodes."""

    def __init__(self, spec, connection, nodes=None, check_mode=False, wait_timeout=600, node_ready_timeout=900,
                 drain_timeout=600, update_strategy="rolling", sleep=time.sleep):
        self.spec = spec
        self.run = ClusterRun(spec, connection, check_mode=check_mode, wait_timeout=wait_timeout, sleep=sleep)
        self.nodes = nodes
        self.node_ready_timeout = node_ready_timeout
        self.drain_timeout = drain_timeout
        self.update_strategy = update_strategy
        self.security_groups = SecurityGroups(self.run)
        self.identity = NodeIdentity(self.run)
        self.templates = LaunchTemplates(self.run)
        self.instances = Instances(self.run)

    @property
    def actions(self):
        return self.run.actions

    def present(self):
        self.spec.validate()
        image = self.instances.resolve_image()
        groups = self.security_groups.ensure(self.security_groups.vpc_id())
        profile = self.identity.ensure()
        templates = {}
        for role in ROLES:
            if self.spec.count(role) or self.templates.exists(role):
                data = self.templates.data(role, image, groups, profile) if self.spec.count(role) else None
                templates[role] = self.templates.ensure(role, data) if data else None
        instances = self.instances.live()
        outdated = [item for item in instances if not self.instances.is_current(item)]
        # Check mode shows the plan even without a kubeconfig; a real roll cannot drain without one.
        if outdated and self.update_strategy == "rolling" and self.nodes is None and not self.run.check_mode:
            raise ClusterError("%d node(s) run an older AMI or config (%s) and replacing them needs the cluster's "
                               "kubeconfig to drain them" % (len(outdated), ", ".join(i.id for i in outdated)),
                               hint="Give kubeconfig, or update_strategy=none to only report them", reason="kubeconfig-needed",
                               outdated=[item.summary() for item in outdated])
        self._scale_up(templates, instances)
        roll = Roll(EC2Machines(self.instances, templates), self.nodes, self.run,
                    node_ready_timeout=self.node_ready_timeout, drain_timeout=self.drain_timeout)
        if self.update_strategy == "rolling":
            for role in ROLES:
                roll.replace_outdated(role, self.spec.count(role))
        for role in ROLES:
            roll.scale_down(role, self.spec.count(role))
        final = self.instances.live() if not self.run.check_mode else instances
        return {"instances": [item.summary() for item in final], "image_id": self.instances.image_id,
                "security_groups": groups, "instance_profile": profile,
                "launch_templates": {role: {"id": value[0], "version": value[1]}
                                     for role, value in templates.items() if value},
                "outdated": [item.summary() for item in final if not self.instances.is_current(item)]}

    def _scale_up(self, templates, instances):
        """Launch every missing node at once (a new cluster, or more nodes): no drain, no wait for Ready."""
        launched = []
        current = list(instances)
        for role in ROLES:
            have = [item for item in current if item.role == role]
            missing = self.spec.count(role) - len(have)
            for index in range(max(0, missing)):
                bootstrap = role == "server" and not have and index == 0 and bool(self.spec.groups[role].get("init_user_data"))
                instance = self.instances.launch(role, templates[role], current, bootstrap=bootstrap)
                if instance is not None:
                    current.append(instance)
                    launched.append(instance.id)
        self.instances.wait_running(launched)

    def absent(self):
        instances = self.instances.live()
        self.instances.terminate_all(instances, "absent")
        for role in ROLES:
            self.templates.delete(role)
        self.security_groups.delete()
        self.identity.delete()
        return {"instances": [item.summary() for item in instances]}
