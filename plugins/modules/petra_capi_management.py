#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: petra_capi_management
short_description: Cluster API core and CAPA for an air-gapped management cluster, installed by Flux from a bundle
version_added: 0.1.0
description:
  - "Connected side, O(state=bundled): reads the release files of Cluster API core (C(core-components.yaml),
    C(metadata.yaml)) and of CAPA (C(infrastructure-components.yaml), C(metadata.yaml)), checks them (each version is
    a release series of its C(metadata.yaml); every clusterctl variable without a default is one Petra or
    O(variables) sets), and writes under O(dest) the two components files byte for byte as the manifest sets
    C(capi-core) and C(capi-aws), and C(bundle.yml), the M(petra.core.petra_bundle) spec carrying them and every
    image their workloads run."
  - "High side, O(state=rendered): from the result of M(petra.core.petra_bundle) O(petra.core.petra_bundle#module:state=loaded)
    of that bundle, writes C(capi-management.yaml) under O(dest): per provider a Flux C(OCIRepository) pinned to the
    loaded manifest set's digest and verified with the bundle key, and a C(Kustomization) that applies it with every
    controller image rewritten to the high-side registry by digest, clusterctl's variables substituted (Ignition
    bootstrap format on, EKS off, no static AWS keys: the CAPA controller uses the instance profile of the
    management nodes), the region and O(service_endpoints) added to the CAPA controller, and the CRDs kept when a
    Kustomization is removed. No bootstrap or control-plane provider is installed."
  - The two states write into their own O(dest) (each removes files an earlier run of it wrote there and no longer
    writes). Output is deterministic; only files whose bytes differ are rewritten.
  - Validate the output with M(petra.core.petra_manifests); the M(petra.core.capi_management) role does both.
author:
  - Petra maintainers (@petra-maintainers)
options:
  state:
    description:
      - V(bundled) writes the management bundle's tree; V(rendered) writes the install objects from a load result.
    type: str
    choices: [bundled, rendered]
    required: true
  dest:
    description:
      - The directory to write into, on the controller. Created when missing. Use one per state.
    type: path
    required: true
  core_components:
    description: C(core-components.yaml) of the Cluster API release (O(state=bundled)).
    type: path
  core_metadata:
    description: C(metadata.yaml) of the same Cluster API release.
    type: path
  core_version:
    description: The Cluster API release, for example C(v1.11.1).
    type: str
  infrastructure_components:
    description: C(infrastructure-components.yaml) of the CAPA release (O(state=bundled)).
    type: path
  infrastructure_metadata:
    description: C(metadata.yaml) of the same CAPA release.
    type: path
  infrastructure_version:
    description: The CAPA release, for example C(v2.10.0).
    type: str
  bundle_name:
    description: The management bundle's name; its manifest sets load to C(<registry>/manifests/<bundle_name>/<set>).
    type: str
    default: capi-management
  bundle_version:
    description: The management bundle's version (a semantic version).
    type: str
    default: 1.0.0
  image_platforms:
    description: The platforms the bundle carries of each image.
    type: list
    elements: str
    default: [linux/amd64]
  variables:
    description:
      - clusterctl variables of the components and their values, on top of Petra's (for CAPA
        C(EXP_BOOTSTRAP_FORMAT_IGNITION=true), C(CAPA_EKS=false), C(CAPA_EKS_IAM=false), C(CAPA_EKS_ADD_ROLES=false),
        C(EXP_EKS_FARGATE=false), C(TAG_UNMANAGED_NETWORK_RESOURCES=false), C(AWS_B64ENCODED_CREDENTIALS=Cg==)
        (empty credentials), C(AWS_CONTROLLER_IAM_ROLE=)). Flux substitutes them at apply time.
      - C(AWS_B64ENCODED_CREDENTIALS) and C(EXP_BOOTSTRAP_FORMAT_IGNITION) cannot be changed.
      - Give the same values to both states - O(state=bundled) refuses components that need a variable without a
        default that is not set.
    type: dict
    default: {}
  loaded:
    description: The registered result of M(petra.core.petra_bundle) O(petra.core.petra_bundle#module:state=loaded)
      of the management bundle (O(state=rendered)); its images and manifest sets, with their digests.
    type: dict
  region:
    description: The AWS region of the management cluster (C(us-gov-west-1), C(us-iso-east-1), ...), set as
      C(AWS_REGION) of the CAPA controller (O(state=rendered)).
    type: str
  service_endpoints:
    description:
      - Custom AWS endpoints for CAPA (its C(--service-endpoints) flag, signing region O(region)), for isolated
        regions or VPC endpoints with private DNS names.
    type: list
    elements: dict
    default: []
    suboptions:
      service:
        description: The AWS SDK service id (C(ec2), C(elasticloadbalancing), C(sts), C(s3), C(secretsmanager)).
        type: str
        required: true
      url:
        description: The endpoint, C(https://...).
        type: str
        required: true
  namespace:
    description: The namespace of the Flux objects.
    type: str
    default: flux-system
  interval:
    description: How often Flux checks the sources and re-applies the components.
    type: str
    default: 10m
  timeout:
    description: How long Flux waits for the controllers to be ready after an apply.
    type: str
    default: 10m
  verify_secret_ref:
    description: The Secret with the bundle public key (C(cosign.pub)) Flux verifies the manifest sets with; the
      platform creates C(petra-bundle-key).
    type: str
    default: petra-bundle-key
  secret_ref:
    description: A docker-registry Secret for the high-side registry, when it needs credentials.
    type: str
  cert_secret_ref:
    description: A Secret with the high-side registry's CA (C(ca.crt)).
    type: str
  insecure:
    description: Let Flux reach the registry over plain HTTP (tests only).
    type: bool
    default: false
notes:
  - The CAPI and CAPA controllers are upstream Go builds, not FIPS-validated builds; see C(docs/capi.md).
  - The CAPA controller reaches the instance profile through IMDSv2 from a pod - the management nodes need a
    metadata hop limit of 2 (M(petra.core.petra_flatcar) O(petra.core.petra_flatcar#module:metadata_hop_limit)).
  - Check mode reports what would be written and writes nothing.
seealso:
  - module: petra.core.petra_bundle
  - module: petra.core.petra_flatcar
"""

EXAMPLES = r"""
- name: Connected side - the management bundle's tree from the release files
  petra.core.petra_capi_management:
    state: bundled
    dest: /srv/petra/management
    core_components: /srv/releases/cluster-api/v1.11.1/core-components.yaml
    core_metadata: /srv/releases/cluster-api/v1.11.1/metadata.yaml
    core_version: v1.11.1
    infrastructure_components: /srv/releases/cluster-api-provider-aws/v2.10.0/infrastructure-components.yaml
    infrastructure_metadata: /srv/releases/cluster-api-provider-aws/v2.10.0/metadata.yaml
    infrastructure_version: v2.10.0
    bundle_version: 1.0.0

- name: High side - load the management bundle
  petra.core.petra_bundle:
    state: loaded
    src: /media/cds/capi-management-1.0.0.tar.zst
    public_key: /etc/petra/bundle.pub
    registry: registry.high.example:5000/petra
  register: management_load

- name: High side - the install objects
  petra.core.petra_capi_management:
    state: rendered
    dest: /srv/petra/management-install
    loaded: "{{ management_load }}"
    region: us-gov-west-1
    service_endpoints:
      - {service: sts, url: "https://sts.us-gov-west-1.amazonaws.com"}
  register: management
"""

RETURN = r"""
dest:
  description: The directory written.
  returned: always
  type: str
files:
  description: Every file written, with its SHA-256 and whether it was (or would be) written.
  returned: always
  type: list
  elements: dict
removed:
  description: Files of an earlier run that were (or would be) removed.
  returned: always
  type: list
  elements: str
bundle_spec:
  description: The petra_bundle spec of the management bundle.
  returned: O(state=bundled)
  type: str
images:
  description: With O(state=bundled), the images the bundle carries; with O(state=rendered), the kustomize image
    rewrites (C(name), C(newName), C(digest)).
  returned: always
  type: list
providers:
  description: Per provider (C(core), C(infrastructure)) its version, contract and manifest set.
  returned: O(state=bundled)
  type: dict
install:
  description: The file with the install objects.
  returned: O(state=rendered)
  type: str
manifests:
  description: The install file as C({name, content}), for O(petra.core.petra_flatcar#module:manifests) of the
    management cluster's first server.
  returned: O(state=rendered)
  type: list
  elements: dict
objects:
  description: The objects rendered, as C(Kind/namespace/name).
  returned: O(state=rendered)
  type: list
  elements: str
"""

from ansible_collections.petra.core.plugins.module_utils.adapters import capi_management as adapter
from ansible_collections.petra.core.plugins.module_utils.adapters.runner import run_module


def main():
    run_module(adapter)


if __name__ == "__main__":
    main()
