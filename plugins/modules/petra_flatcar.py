#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: petra_flatcar
short_description: Render the Ignition config of a hardened Flatcar node running k3s in FIPS mode
version_added: 0.1.0
description:
  - "With O(state=rendered), renders the Ignition config (spec 3.3.0, or 3.4.0 on request) of a k3s server (the
    first one with O(cluster_init), or one joining O(server_url)) or agent, returned as data and optionally written to
    O(dest) (mode 0600: it holds the token)."
  - "No SSH: C(sshd.socket), C(sshd.service) and C(coreos-metadata-sshkeys@core.service) are masked, user C(core) has
    no keys and the shell C(/sbin/nologin). auditd is enabled. Flatcar updates are off (C(SERVER=disabled), nodes
    are replaced) unless O(updates) names a Nebraska server."
  - "k3s comes from a binary (C(/opt/bin/k3s)) or a systemd-sysext image, fetched from O(k3s) (https:// or s3://)
    and pinned by hash; C(/etc/default/k3s) sets C(GODEBUG=fips140=on) and the token; C(/etc/rancher/k3s/config.yaml)
    follows the k3s CIS guide (protect-kernel-defaults with its sysctls, secrets encryption, audit log and policy,
    Pod Security admission, controller-manager and kubelet arguments, AES-GCM TLS cipher suites only), and prepares
    Cilium (C(flannel-backend: none), C(disable-network-policy)) without traefik and servicelb."
  - Air-gap image tarballs (hash-pinned) go to C(/var/lib/rancher/k3s/agent/images/), the load step's
    C(registries.yaml) to C(/etc/rancher/k3s/registries.yaml), bootstrap manifests to the server's auto-deploy
    directory. O(host_fips) adds the C(fips=1) kernel argument and C(/etc/system-fips).
  - RV(fits_user_data) tells whether the config fits EC2 user data (16 KB); a larger one needs a stub that replaces
    itself from an C(s3://) object with a hash.
  - "With O(state=inspected), reads the Go build information embedded in O(binary) (what C(go version -m) shows) and
    reports the Go version, C(GOFIPS140) and C(GOEXPERIMENT); with O(require_fips_module), refuses a binary not built
    against the validated Go FIPS module (C(GOFIPS140=v1.0.0)). C(GODEBUG=fips140=on) alone does not make an
    unvalidated build compliant."
author:
  - Petra maintainers (@petra-maintainers)
options:
  state:
    description:
      - V(rendered) renders the config; V(inspected) reads a k3s binary's Go build information.
    type: str
    choices: [rendered, inspected]
    default: rendered
  node_role:
    description:
      - The k3s role of the node. Required with O(state=rendered).
    type: str
    choices: [server, agent]
  cluster_init:
    description:
      - The first server, which initialises the embedded etcd cluster.
    type: bool
    default: false
  server_url:
    description:
      - The API endpoint joining servers and agents register with, C(https://<host>:6443).
    type: str
  token:
    description:
      - The k3s cluster token. Written only into the root-only C(/etc/default/k3s*) file of the config.
        Required with O(state=rendered).
    type: str
  k3s:
    description:
      - Where the node fetches k3s from, pinned. Required with O(state=rendered).
    type: dict
    suboptions:
      url:
        description: An https://, http:// (internal mirror) or s3:// URL.
        type: str
        required: true
      sha256:
        description: The SHA-256 of the file (hex, or C(sha256-<hex>)).
        type: str
        required: true
  k3s_kind:
    description:
      - V(binary) installs C(/opt/bin/k3s); V(sysext) installs a systemd-sysext image and masks C(systemd-sysupdate.timer).
    type: str
    choices: [binary, sysext]
    default: binary
  registries:
    description:
      - The k3s C(registries.yaml) document, as returned by M(petra.core.petra_bundle) with O(petra.core.petra_bundle#module:state=loaded).
    type: dict
  registry_ca:
    description:
      - PEM of the registry CA, written to C(/etc/rancher/k3s/petra-registry-ca.pem).
    type: str
  manifests:
    description:
      - Files for the server's auto-deploy directory, each C({name, content}).
    type: list
    elements: dict
    default: []
  airgap_images:
    description:
      - Image tarballs to import at start, each C({url, sha256, name}) (name defaults to the URL's last part).
    type: list
    elements: dict
    default: []
  ignition_version:
    description:
      - The Ignition spec version.
    type: str
    choices: [3.3.0, 3.4.0]
    default: 3.3.0
  updates:
    description:
      - V(disabled), or the https:// URL of a Nebraska update server.
    type: str
    default: disabled
  host_fips:
    description:
      - Boot the host in FIPS mode (C(fips=1) kernel argument, C(/etc/system-fips)).
    type: bool
    default: false
  fips_go:
    description:
      - Set C(GODEBUG=fips140=on) for k3s (the Go FIPS 140-3 module's approved mode).
    type: bool
    default: true
  k3s_config_extra:
    description:
      - More C(config.yaml) settings, merged over the hardened defaults.
    type: dict
    default: {}
  dest:
    description:
      - Also write the rendered JSON here (mode 0600).
    type: path
  config_s3_uri:
    description:
      - "C(s3://bucket/key) for the full config when it does not fit EC2 user data (16 KB): it is uploaded there
        (SHA-256 checksum, its digest in metadata so an unchanged config is not uploaded again) and RV(user_data)
        becomes a stub whose C(ignition.config.replace) fetches it with C(verification.hash). The node's instance
        profile needs C(s3:GetObject) on it."
    type: str
  config_s3_always:
    description:
      - Use O(config_s3_uri) even when the config would fit user data.
    type: bool
    default: false
  config_s3_kms_key_id:
    description:
      - Encrypt the uploaded config with this KMS key (SSE-KMS).
    type: str
  binary:
    description:
      - With O(state=inspected), the k3s binary (a Go program) on the controller.
    type: path
  require_fips_module:
    description:
      - With O(state=inspected), fail unless the binary was built against the validated Go FIPS module.
    type: bool
    default: false
extends_documentation_fragment:
  - petra.core.aws
  - petra.core.attributes
  - petra.core.attributes.check_mode
seealso:
  - module: petra.core.petra_bundle
requirements:
  - python >= 3.9
  - PyYAML
"""

EXAMPLES = r"""
- name: Render the first server of a cluster
  petra.core.petra_flatcar:
    node_role: server
    cluster_init: true
    token: "{{ vault_k3s_token }}"
    k3s:
      url: s3://petra-artifacts/k3s/v1.33.4+k3s1/k3s
      sha256: "{{ k3s_sha256 }}"
    registries: "{{ loaded.registries }}"
    dest: /srv/petra/ignition/server-0.ign
  register: server0

- name: Refuse a k3s binary that does not link the validated Go FIPS module
  petra.core.petra_flatcar:
    state: inspected
    binary: /srv/artifacts/k3s
    require_fips_module: true
"""

RETURN = r"""
ignition:
  description: The Ignition config (contains the token; do not log it).
  returned: state is rendered
  type: dict
sha256:
  description: SHA-256 of the rendered JSON (compact, sorted keys), for tags and replace stubs.
  returned: state is rendered
  type: str
size:
  description: Size of the rendered JSON in bytes.
  returned: state is rendered
  type: int
fits_user_data:
  description: Whether the config fits EC2 user data (16 KB).
  returned: state is rendered
  type: bool
user_data:
  description: What to put in EC2 user data, the config itself, or the replace stub when O(config_s3_uri) is used.
  returned: state is rendered
  type: str
config_s3_uri:
  description: Where the full config was published, when the stub is used.
  returned: when the stub is used
  type: str
go_version:
  description: With O(state=inspected), the Go toolchain that built the binary.
  returned: state is inspected
  type: str
  sample: go1.24.6
gofips140:
  description: With O(state=inspected), the C(GOFIPS140) build setting, or null.
  returned: state is inspected
  type: str
goexperiment:
  description: With O(state=inspected), the C(GOEXPERIMENT) build setting, or null.
  returned: state is inspected
  type: str
fips_module:
  description: With O(state=inspected), whether the binary links the validated Go FIPS module.
  returned: state is inspected
  type: bool
settings:
  description: With O(state=inspected), every build setting recorded in the binary.
  returned: state is inspected
  type: dict
dest:
  description: The file written, when O(dest) is given.
  returned: when dest is given
  type: str
"""

from ansible_collections.petra.core.plugins.module_utils.module_runner import run_module
from ansible_collections.petra.core.plugins.module_utils.flatcar.options import (
    FLATCAR_ARGUMENT_SPEC,
    FLATCAR_REQUIRED_IF,
    run_flatcar,
)


def main():
    run_module(run_flatcar, FLATCAR_ARGUMENT_SPEC, required_if=FLATCAR_REQUIRED_IF)


if __name__ == "__main__":
    main()
