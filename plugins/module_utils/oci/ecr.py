# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Amazon ECR credentials: a registry token from ``GetAuthorizationToken``, in every partition."""

from __future__ import annotations

import base64
import re
import threading
import time

from ansible_collections.petra.core.plugins.module_utils.aws.errors import aws_errors
from ansible_collections.petra.core.plugins.module_utils.oci.errors import AuthenticationError

# Commercial, China, GovCloud (same domain), and the isolated partitions' domains.
_ECR_HOST_RE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\."
    r"(?:amazonaws\.com(?:\.cn)?|c2s\.ic\.gov|sc2s\.sgov\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)(?::\d+)?$")
TOKEN_MARGIN = 300


def parse_ecr_host(host):
    """(account id, region) of an ECR registry host name, else None."""
    match = _ECR_HOST_RE.match(host or "")
    return (match.group("account"), match.group("region")) if match else None


class ECRCredentials:
    """Credentials that ask ECR for a token where the registry is ECR, and defer to ``fallback`` elsewhere.

    ``force`` treats every registry as ECR (for VPC endpoints and private DNS names); the account then comes
    from the caller's credentials and the region from the AWS connection.
    """

    def __init__(self, fallback, connection, force=False):
        self._fallback = fallback
        self._connection = connection
        self._force = force
        self._tokens = {}
        self._lock = threading.Lock()

    def for_registry(self, registry, repository=None):
        parsed = parse_ecr_host(registry)
        if parsed is None and not self._force:
            return self._fallback.for_registry(registry, repository)
        account, region = parsed if parsed else (None, None)
        key = (account, region)
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached[2] - TOKEN_MARGIN > time.time():
                return cached[0], cached[1]
            user, password, expires = self._fetch(registry, account, region)
            self._tokens[key] = (user, password, expires)
            return user, password

    def _fetch(self, registry, account, region):
        client = self._connection.client("ecr", region=region)
        with aws_errors(AuthenticationError, "ECR GetAuthorizationToken for %s" % registry,
                        hint="The caller needs ecr:GetAuthorizationToken; check region and credentials"):
            answer = client.get_authorization_token(**({"registryIds": [account]} if account else {}))
        data = (answer.get("authorizationData") or [{}])[0]
        try:
            user, password = base64.b64decode(data["authorizationToken"]).decode("utf-8").split(":", 1)
        except (KeyError, ValueError):
            raise AuthenticationError("ECR returned no usable authorization token for %s" % registry)
        expires_at = data.get("expiresAt")
        expires = expires_at.timestamp() if hasattr(expires_at, "timestamp") else time.time() + 3600
        return user, password, expires
