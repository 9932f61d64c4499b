# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations


class ModuleDocFragment:
    # Paired with plugins/module_utils/options/kube.py; each module's description says what it uses the API for.
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - A kubeconfig for the cluster's Kubernetes API, read on the Ansible controller.
      - A relative path is looked up as given, then in the C(files/) directories Ansible searches (the role's, the
        playbook's).
    type: path
  kube_context:
    description:
      - The kubeconfig context to use; the current context when not given.
    type: str
"""
