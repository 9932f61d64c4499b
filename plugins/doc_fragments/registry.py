# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  ca_file:
    description:
      - A PEM bundle of CA certificates that replaces the system trust store when talking TLS to registries.
      - Read on the Ansible controller.
    type: path
  registry_username:
    description:
      - User name for every registry this task talks to. Must be given together with O(registry_password).
      - When not given, credentials come from the first auth file that names the registry,
        in the order containers-auth.json(5) reads them, C($REGISTRY_AUTH_FILE),
        C($XDG_RUNTIME_DIR/containers/auth.json), then C(~/.docker/config.json).
      - Registries that answer with a bearer-token challenge get these credentials sent to their token service.
    type: str
  registry_password:
    description:
      - Password or token for O(registry_username).
    type: str
  insecure_registries:
    description:
      - Registry hosts (C(host[:port])) that are reached over plain HTTP instead of HTTPS.
      - Never needed for a registry with a valid certificate; use O(ca_file) for a private CA instead.
    type: list
    elements: str
    default: []
  registry_timeout:
    description:
      - Seconds to wait for a registry to answer or to send the next bytes, before retrying.
      - Connecting and sending a request body wait 10 seconds, or this long when it is shorter, so a stalled upload is
        noticed within this time.
    type: float
    default: 60.0
  registry_ecr:
    description:
      - Get registry credentials from Amazon ECR (C(GetAuthorizationToken)) for every registry, for ECR behind a VPC
        endpoint or a private DNS name. Registries named C(<account>.dkr.ecr.<region>.<partition domain>) use ECR
        tokens anyway when no O(registry_username) is given. The AWS connection options apply.
    type: bool
    default: false
  registry_retries:
    description:
      - How many times a failed registry request (connection error, HTTP 429 or 5xx, broken download) is retried
        with exponential backoff. Broken blob downloads resume where they stopped.
      - A blob upload that is reset, stalls or loses its upload session is sent again in a new session (or resumed
        from the offset the registry confirms) this many times; a load then tries it again in a later pass over the
        bundle.
    type: int
    default: 4
"""
