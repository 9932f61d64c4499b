#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: petra_manifests
short_description: Validate Kubernetes manifests against the Kubernetes and CRD schemas before they ship
version_added: 0.1.0
description:
  - Reads every YAML document of the given files and directories and validates each object. Built-in kinds are
    checked against the OpenAPI schemas of one Kubernetes version (the C(kubernetes-validate) library, strict, so an
    unknown or misspelt field is an error, as with kubectl's default server-side field validation).
  - Custom resources are checked against the C(openAPIV3Schema) of the served version of their
    CustomResourceDefinition, made strict the same way, and their C(metadata) against ObjectMeta. CRDs come from
    O(crds) (YAML files, directories, or packaged Helm charts whose C(crds/) directory holds them) and from the
    manifests themselves. A Gatekeeper C(ConstraintTemplate) among them defines its constraint kind, so constraint
    parameters are checked too.
  - An object of a kind with no schema is an error unless O(allow_unknown_kinds) names it.
  - Fails with every problem listed in RV(findings) - file and line, object (kind, namespace/name), field path, and
    what is wrong; the message shows the first ones.
  - Never changes anything; C(changed) is always false.
author:
  - Petra maintainers (@petra-maintainers)
options:
  paths:
    description:
      - Files and directories of Kubernetes YAML (directories are read recursively; C(.yaml) and C(.yml) files,
        hidden ones skipped).
    type: list
    elements: path
    required: true
    aliases: [path, src]
  crds:
    description:
      - CustomResourceDefinitions for the custom resources, as YAML files, directories, or packaged charts (C(.tgz)).
    type: list
    elements: path
    default: []
  kubernetes_version:
    description:
      - The Kubernetes minor version whose schemas apply (MAJOR.MINOR). The default is the one of the k3s release
        Petra's nodes run.
    type: str
    default: "1.33"
  allow_unknown_kinds:
    description:
      - Kinds that may appear without a schema, as C(Kind) or C(<apiVersion>/<Kind>); C(*) allows every kind. Their
        metadata is still checked.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - petra.core.attributes
  - petra.core.attributes.read_only
seealso:
  - module: petra.core.petra_platform
requirements:
  - python >= 3.9
  - PyYAML
  - jsonschema
  - kubernetes-validate
"""

EXAMPLES = r"""
- name: Validate the rendered platform against Kubernetes 1.33 and the addons' CRDs
  petra.core.petra_manifests:
    paths:
      - /srv/petra/platform/bootstrap
      - /srv/petra/platform/gatekeeper-templates
      - /srv/petra/platform/gatekeeper-constraints
    crds:
      - /srv/petra/crds
      - /srv/petra/platform/charts/gatekeeper-3.21.0.tgz
"""

RETURN = r"""
files:
  description: How many files were read.
  returned: always
  type: int
objects:
  description: How many objects were validated.
  returned: always
  type: int
kinds:
  description: The C(<apiVersion> <Kind>) of the objects seen.
  returned: always
  type: list
  elements: str
unknown_kinds_allowed:
  description: Kinds that had no schema and were let through by O(allow_unknown_kinds).
  returned: always
  type: list
  elements: str
kubernetes_version:
  description: The Kubernetes version validated against.
  returned: always
  type: str
findings:
  description: Every problem found, each with C(file), C(line), C(object), C(kind), C(namespace), C(name), C(field)
    and C(message).
  returned: failure
  type: list
  elements: dict
  sample:
    - file: platform/bootstrap/30-sources.yaml
      line: 4
      object: OCIRepository flux-system/petra-chart-gatekeeper
      kind: OCIRepository
      namespace: flux-system
      name: petra-chart-gatekeeper
      field: spec.verify.providr
      message: unknown field 'providr'
"""

from ansible_collections.petra.core.plugins.module_utils.adapters import manifests as adapter
from ansible_collections.petra.core.plugins.module_utils.adapters.runner import run_module


def main():
    run_module(adapter)


if __name__ == "__main__":
    main()
