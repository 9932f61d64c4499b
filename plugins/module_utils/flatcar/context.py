# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""What every part of one standalone-cluster run shares: the spec, the AWS clients, check mode and the action log.

Each part records what it does (or, in check mode, would do) in ``actions``; the module returns that list, and a
failed roll carries it in its details.
"""

from __future__ import annotations

import time

from ansible_collections.petra.core.plugins.module_utils.aws.client import parse_arn
from ansible_collections.petra.core.plugins.module_utils.aws.errors import AWSCalls
from ansible_collections.petra.core.plugins.module_utils.flatcar.errors import ClusterError


class ClusterRun:
    """One run against one cluster; ``aws(action, call, missing_ok=..., **kwargs)`` fails as a ClusterError."""

    aws = AWSCalls(ClusterError, reason="aws")

    def __init__(self, spec, connection, check_mode=False, wait_timeout=600, sleep=time.sleep):
        self.spec = spec
        self.check_mode = check_mode
        self.wait_timeout = wait_timeout
        self.sleep = sleep
        self.actions = []
        self.ec2 = connection.client("ec2")
        self._connection = connection
        self._partition = None

    def client(self, service):
        return self._connection.client(service)

    def record(self, action, **facts):
        entry = {"action": action}
        entry.update(facts)
        self.actions.append(entry)

    def wait(self, state, instance_ids, hint=None):
        """Until every instance is ``running`` or ``terminated``, bounded by wait_timeout."""
        waiter = self.ec2.get_waiter("instance_%s" % state)
        try:
            waiter.wait(InstanceIds=instance_ids, WaiterConfig={"Delay": 5, "MaxAttempts": max(1, self.wait_timeout // 5)})
        except Exception as exc:  # botocore's WaiterError and ClientError: either way the instances are not there yet
            raise ClusterError("instances %s did not reach %s within %ds: %s" % (
                ", ".join(instance_ids), state, self.wait_timeout, exc), reason="instance-timeout", hint=hint)

    def partition(self):
        """The caller's AWS partition (aws, aws-us-gov, aws-iso, ...), for ARNs and service principals."""
        if self._partition is None:
            identity = self.aws("STS GetCallerIdentity", self.client("sts").get_caller_identity)
            self._partition = parse_arn(identity["Arn"])["partition"]
        return self._partition
