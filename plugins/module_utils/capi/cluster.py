# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""One workload cluster as Cluster API objects, converged in order (docs/capi.md): namespace, CA, Cluster and
AWSCluster; the API endpoint CAPA makes; bootstrap Secrets rendered against it; servers (created, rolled with the
standalone Roll, scaled down); the agents' template, MachineDeployments and MachineHealthCheck; then bounded
waits for the machines, their Nodes and the workload kubeconfig. ``absent`` deletes the Cluster, waits until
Cluster API removed what it owns, then deletes what Petra made.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile

from ansible_collections.petra.core.plugins.module_utils.atomic import write_atomically
from ansible_collections.petra.core.plugins.module_utils.capi import bootstrap, render
from ansible_collections.petra.core.plugins.module_utils.capi.apply import (
    AWS_CLUSTER, AWS_MACHINE, AWS_MACHINE_TEMPLATE, CLUSTER, MACHINE, MACHINE_DEPLOYMENT, MACHINE_HEALTH_CHECK,
    NAMESPACE, SECRET, Applier, conditions_text)
from ansible_collections.petra.core.plugins.module_utils.capi.errors import CapiError
from ansible_collections.petra.core.plugins.module_utils.capi.machines import ServerMachines, deleting, machine_ready
from ansible_collections.petra.core.plugins.module_utils.capi.prune import CLONED_FROM, Superseded
from ansible_collections.petra.core.plugins.module_utils.capi.spec import CLUSTER_LABEL, MANAGED_LABEL, ROLE_LABEL
from ansible_collections.petra.core.plugins.module_utils.flatcar.roll import Roll


def endpoint_host(aws_cluster):
    return (((aws_cluster or {}).get("spec") or {}).get("controlPlaneEndpoint") or {}).get("host")


class CapiCluster:
    """``connect()`` gives the AWSConnection (SSM, S3, IAM: asked for only when needed); ``node_operations(path)``
    the workload cluster's k8s.nodes.NodeOperations for a kubeconfig file; ``identity(check_mode)`` a
    (NodeIdentity, its action list) for the SSM-only profile Petra makes when none is named."""

    def __init__(self, spec, client, log, connect=None, node_operations=None, identity=None, wait_timeout=600,
                 node_ready_timeout=900, drain_timeout=600, update_strategy="rolling"):
        self.spec = spec
        self.client = client
        self.log = log
        self.applier = Applier(client, log)
        self.connect = connect
        self.node_operations = node_operations
        self.identity = identity
        self.wait_timeout = wait_timeout
        self.node_ready_timeout = node_ready_timeout
        self.drain_timeout = drain_timeout
        self.update_strategy = update_strategy
        self._tmp = None
        self._agent_target = None

    @property
    def actions(self):
        return self.log.actions

    # -- present ------------------------------------------------------------------------------------------------

    def present(self):
        spec = self.spec
        spec.validate()
        try:
            return self._present(spec)
        finally:
            if self._tmp:
                shutil.rmtree(self._tmp, ignore_errors=True)

    def _present(self, spec):
        ami = self._ami()
        profile = self._profile()
        self.applier.ensure(render.namespace(spec))
        ca = self._ca()
        self.applier.ensure(render.cluster(spec))
        host = endpoint_host(self.applier.ensure(render.aws_cluster(spec)))
        if not host and not self.log.check_mode:
            host = self.log.poll("the API endpoint of AWSCluster %s" % spec.name, self.wait_timeout,
                                 self._endpoint, self._endpoint_stuck)
        machine_specs = {role: render.aws_machine_spec(spec, role, ami, profile) for role in ("server", "agent")
                         if spec.count(role)}
        secrets = self._bootstrap(host, ca)
        servers = self._servers(secrets, machine_specs.get("server"))
        agents = self._agents(secrets, machine_specs.get("agent"))
        result = {"namespace": spec.namespace, "cluster": spec.name, "endpoint": host, "image_id": ami,
                  "instance_profile": profile, "bootstrap_secrets": {kind: item[0] for kind, item in secrets.items()},
                  "machine_template": agents, "servers": [member.summary() for member in servers.members("server")]}
        result["outdated"] = [member.summary() for member in servers.members("server")
                              if not servers.is_current(member)]
        # What this run renders; everything else of the kind is superseded (a rotation left it behind).
        current = {item[0] for item in secrets.values()} | ({agents} if agents else set())
        superseded = Superseded(spec, self.client, self.applier, self.log)
        result["superseded_in_use"] = []
        if self.log.check_mode:
            if host:
                superseded.plan(current, {member.id for member in servers.members("server")
                                          if self.update_strategy != "rolling" or servers.is_current(member)})
            return result
        if spec.wait:
            self.log.poll("Cluster %s with every machine's Node Ready" % spec.name, self.node_ready_timeout,
                          self._ready, self._not_ready)
            result["kubeconfig_secret"] = "%s-kubeconfig" % spec.name
            if spec.kubeconfig_dest:
                self._write_kubeconfig(spec.kubeconfig_dest)
                result["kubeconfig_dest"] = spec.kubeconfig_dest
        # Only once the roll is through (the wait above): then a superseded object's users can only be going away.
        result["superseded_in_use"] = superseded.prune(current, self.wait_timeout if spec.wait else 0)
        return result

    def _ami(self):
        image = self.spec.image
        if not image.startswith("resolve:ssm:"):
            return image
        name = image[len("resolve:ssm:"):]
        answer = self.log.aws("SSM GetParameter %s" % name, self.connect().client("ssm").get_parameter, Name=name)
        return answer["Parameter"]["Value"]

    def _profile(self):
        if self.spec.instance_profile:
            return self.spec.instance_profile
        identity, actions = self.identity(self.log.check_mode)
        profile = identity.ensure()
        self.log.actions.extend(actions)
        return profile

    def _ca(self):
        name = "%s-ca" % self.spec.name
        live = self.client.get(SECRET, self.spec.namespace, name)
        if live is not None:
            return bootstrap.ca_from_secret(live)
        ca = bootstrap.new_ca(self.spec.name)
        self.applier.ensure(render.ca_secret(self.spec, *ca))
        return ca

    def _endpoint(self):
        return endpoint_host(self.client.get(AWS_CLUSTER, self.spec.namespace, self.spec.name))

    def _endpoint_stuck(self):
        live = self.client.get(AWS_CLUSTER, self.spec.namespace, self.spec.name)
        return "AWSCluster %s has no controlPlaneEndpoint (%s)" % (self.spec.name, conditions_text(live)), {
            "object": "AWSCluster/%s" % self.spec.name}

    def _bootstrap(self, host, ca):
        """{kind: (Secret name, user data or None)}; before CAPA has made the endpoint (check mode on a new
        cluster) the names cannot be known yet and say so."""
        if not host:
            return {kind: ("%s-bootstrap-%s-<after the API endpoint exists>" % (self.spec.name, kind), None)
                    for kind in bootstrap.KIND_NAMES}
        documents = bootstrap.render(self.spec.params, host, ca)
        secrets = {}
        for kind in bootstrap.KIND_NAMES:
            value, published = bootstrap.user_data(self.spec, kind, documents[kind], self.log.check_mode, self.connect)
            secrets[kind] = (bootstrap.secret_name(self.spec, kind, value), value)
            if published:
                self.log.record("publish", kind="S3Object", name=kind)
        return secrets

    def _ensure_secret(self, secrets, kind, role):
        name, value = secrets[kind]
        if value is None:
            self.log.record("create", kind="Secret", name=name)
        else:
            self.applier.ensure(render.bootstrap_secret(self.spec, name, value, role))

    def _servers(self, secrets, machine_spec):
        spec = self.spec
        desired = {"spec": machine_spec}
        for key, kind in (("init", "server-init"), ("join", "server")):
            desired[key] = (secrets[kind][0], render.server_digest(machine_spec, secrets[kind][0], spec.version))
        servers = ServerMachines(spec, self.client, self.applier, self.log, desired, self.wait_timeout)
        members = servers.members("server")
        count = spec.count("server")
        if not members:
            self._ensure_secret(secrets, "server-init", "server")
        self._ensure_secret(secrets, "server", "server")
        for index in range(len(members), count):
            servers.create(bootstrap=not members and index == 0, zone_index=index)
        outdated = [member for member in members if not servers.is_current(member)]
        if self.update_strategy != "rolling" or not (outdated or len(members) > count):
            return servers
        roll = Roll(servers, self._workload_nodes(), self.log, node_ready_timeout=self.node_ready_timeout,
                    drain_timeout=self.drain_timeout)
        roll.replace_outdated("server", count)
        roll.scale_down("server", count)
        return servers

    def _agents(self, secrets, machine_spec):
        spec = self.spec
        desired_pools = render.agent_pools(spec) if spec.count("agent") else []
        template = None
        if desired_pools:
            self._ensure_secret(secrets, "agent", "agent")
            template_obj = render.machine_template(spec, machine_spec)
            template = template_obj["metadata"]["name"]
            self._agent_target = (secrets["agent"][0], template)
            self.applier.ensure(template_obj)
            for name, zone, replicas in desired_pools:
                self.applier.ensure(render.machine_deployment(spec, name, zone, replicas, template,
                                                              secrets["agent"][0]))
            self.applier.ensure(render.machine_health_check(spec, self.node_ready_timeout))
        else:
            self.applier.delete(MACHINE_HEALTH_CHECK, spec.namespace, "%s-agents" % spec.name, why="no agents")
        wanted = {pool[0] for pool in desired_pools}
        for item in self.client.list(MACHINE_DEPLOYMENT, spec.namespace, spec.labels("agent")):
            if item["metadata"]["name"] not in wanted and not deleting(item):
                self.applier.delete(MACHINE_DEPLOYMENT, spec.namespace, item["metadata"]["name"], why="pool removed")
        return template

    def _kubeconfig(self):
        secret = self.client.get(SECRET, self.spec.namespace, "%s-kubeconfig" % self.spec.name)
        value = ((secret or {}).get("data") or {}).get("value")
        return base64.b64decode(value) if value else None

    def _write_kubeconfig(self, path):
        data = self._kubeconfig()
        current = None
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                current = handle.read()
        if current != data:
            self.log.record("write-kubeconfig", dest=path)
            write_atomically(path, lambda handle: handle.write(data), mode=0o600)

    def _workload_nodes(self):
        """The workload cluster's NodeOperations, through the kubeconfig CAPI keeps; None in check mode."""
        data = self._kubeconfig()
        if data is None:
            if self.log.check_mode:
                return None
            raise CapiError("servers must be replaced but Secret %s-kubeconfig does not exist yet, so their Nodes "
                            "cannot be drained" % self.spec.name, reason="kubeconfig-needed",
                            hint="Wait until the Cluster is provisioned (CAPI writes the Secret), then re-run")
        path = self.spec.kubeconfig_dest
        if path:
            self._write_kubeconfig(path)
        else:
            self._tmp = tempfile.mkdtemp(prefix="petra-capi-")
            path = os.path.join(self._tmp, "kubeconfig")
            write_atomically(path, lambda handle: handle.write(data), mode=0o600)
        return self.node_operations(path)

    def _machines(self):
        """Every Machine of the cluster, those being deleted too: a roll is through only once they are gone."""
        return self.client.list(MACHINE, self.spec.namespace, {CLUSTER_LABEL: self.spec.name})

    def _ready(self):
        cluster = self.client.get(CLUSTER, self.spec.namespace, self.spec.name) or {}
        provisioned = ((cluster.get("status") or {}).get("initialization") or {}).get("infrastructureProvisioned")
        machines = self._machines()
        expected = self.spec.count("server") + self.spec.count("agent")
        return bool(provisioned and len(machines) == expected and all(machine_ready(item) for item in machines)
                    and all(self._rolled(item) for item in machines) and self._kubeconfig() is not None)

    def _rolled(self, machine):
        """An agent Machine from the current bootstrap Secret, version and template (its MachineDeployment's
        roll has reached it); servers are current once Petra's roll is through."""
        if (machine["metadata"].get("labels") or {}).get(ROLE_LABEL) != "agent" or self._agent_target is None:
            return True
        secret, template = self._agent_target
        spec = machine.get("spec") or {}
        if (spec.get("bootstrap") or {}).get("dataSecretName") != secret or spec.get("version") != self.spec.version:
            return False
        name = (spec.get("infrastructureRef") or {}).get("name")
        infra = (self.client.get(AWS_MACHINE, self.spec.namespace, name) if name else None) or {}
        return ((infra.get("metadata") or {}).get("annotations") or {}).get(CLONED_FROM) in (None, template)

    def _not_ready(self):
        cluster = self.client.get(CLUSTER, self.spec.namespace, self.spec.name) or {}
        machines = self._machines()
        parts = ["Cluster %s: phase %s, %s" % (self.spec.name, (cluster.get("status") or {}).get("phase"),
                                               conditions_text(cluster))]
        parts.append("%d of %d machines" % (len(machines), self.spec.count("server") + self.spec.count("agent")))
        parts += ["Machine %s: waiting for its MachineDeployment's roll" % item["metadata"]["name"]
                  for item in machines if machine_ready(item) and not self._rolled(item)]
        waiting = [item for item in machines if not machine_ready(item)]
        for item in waiting:
            node = ((item.get("status") or {}).get("nodeRef") or {}).get("name")
            parts.append("Machine %s: node %s, %s" % (item["metadata"]["name"], node or "none", conditions_text(item)))
        parts += ["Machine %s: being deleted" % item["metadata"]["name"] for item in machines if deleting(item)]
        if self._kubeconfig() is None:
            parts.append("Secret %s-kubeconfig missing" % self.spec.name)
        return "; ".join(parts), {"machines_not_ready": [item["metadata"]["name"] for item in waiting]}

    # -- absent -------------------------------------------------------------------------------------------------

    def absent(self):
        spec = self.spec
        spec.validate_name()
        servers = ServerMachines(spec, self.client, self.applier, self.log, None, self.wait_timeout)
        # Remediation first, so nothing recreates machines while the cluster goes.
        self.applier.delete(MACHINE_HEALTH_CHECK, spec.namespace, "%s-agents" % spec.name)
        if self.applier.delete(CLUSTER, spec.namespace, spec.name):
            # CAPI deletes the MachineDeployments, Machines and the AWSCluster; Petra lifts its etcd hooks, since
            # the whole etcd cluster goes.
            self.applier.wait_gone(CLUSTER, spec.namespace, spec.name, self.wait_timeout, on_poll=servers.release_all)
        mine = {CLUSTER_LABEL: spec.name, MANAGED_LABEL: "petra"}
        for kind in (MACHINE_DEPLOYMENT, MACHINE, AWS_MACHINE, AWS_CLUSTER, AWS_MACHINE_TEMPLATE, SECRET):
            for item in self.client.list(kind, spec.namespace, mine):
                name = item["metadata"]["name"]
                if kind is MACHINE and not self.log.check_mode:
                    servers.release(name)
                if not deleting(item):
                    self.applier.delete(kind, spec.namespace, name)
                self.applier.wait_gone(kind, spec.namespace, name, self.wait_timeout)
        if self.connect is not None and spec.storage == "s3":
            bootstrap.delete_configs(spec, self.connect(), self.log)
        if not spec.instance_profile and self.identity is not None:
            identity, actions = self.identity(self.log.check_mode)
            identity.delete()
            self.log.actions.extend(actions)
        live = self.client.get(NAMESPACE, None, spec.namespace)
        labels = ((live or {}).get("metadata") or {}).get("labels") or {}
        if labels.get(MANAGED_LABEL) == "petra" and labels.get(CLUSTER_LABEL) == spec.name:
            self.applier.delete(NAMESPACE, None, spec.namespace)
        return {"namespace": spec.namespace, "cluster": spec.name}
