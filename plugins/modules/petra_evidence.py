#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: petra_evidence
short_description: Collect NIST SP 800-53 evidence for a Petra cluster and write signed OSCAL assessment results
version_added: 0.1.0
description:
  - Assesses one cluster against the six controls Petra claims (AC-6, AU-2, CM-7, SC-13, SI-7, SR-4), per NIST
    SP 800-53A assessment objective (NIST's ids, for example C(ac-6_obj), C(au-2_obj.c-1), C(cm-7_obj.b-2)).
  - Reads only. From AWS, through the collection's AWS connection options - launch template versions, instances,
    security groups, AMIs, the node instance profile's policies and CloudTrail trails. From the nodes' Ignition
    configs as launched (EC2 user data, following a replace stub to S3) - SSH keys, masked sshd, k3s audit log
    arguments, C(GODEBUG=fips140=on); and from O(k3s_binary), the Go build information of the k3s the configs pin. From
    the Kubernetes API - pods and their running image digests, cluster-admin bindings, Gatekeeper constraints and audit
    results, admission webhooks, Tetragon TracingPolicies, policy-controller ClusterImagePolicies and the kube-bench
    results. From custody - the trust state, the custody record of every loaded bundle, and O(registry) compared with
    every image of those records.
  - Every answer is kept as an evidence file (JSON) with its SHA-256 under C(<dest>/<run>/evidence/). Secrets are
    not kept - user data is replaced by its hash, Ignition configs are kept with token and password lines redacted,
    pods without their environment.
  - Each check yields an observation with its evidence and passes, fails with reasons, or is not collected (with the
    error). An objective is C(satisfied) only when all its checks passed; objectives no tool can prove (for example
    C(au-2_obj.b), C(sc-13_obj.a), firmware in C(si-7_obj.a-2)) are C(not-satisfied) with reason C(other) and what a
    person must examine or ask. docs/compliance.md maps every claim to its checks.
  - Writes C(assessment-results.json) (OSCAL assessment results, checked with compliance-trestle's models, every
    link and hash checked by Petra), C(evidence-manifest.json), a detached signature of each (C(.sig), cosign
    C(sign-blob) format, which C(openssl dgst -verify) checks), and C(report.html), a self-contained page for people.
  - A run is written to C(<dest>/<run id>) and C(<dest>/latest) then points at it. When the findings equal those of
    C(latest) nothing is written and C(changed) is false. A failure leaves C(dest) as it was.
author:
  - Petra maintainers (@petra-maintainers)
options:
  cluster_name:
    description:
      - The Petra cluster, as given to M(petra.core.petra_flatcar) (AWS resources tagged C(petra:cluster=<name>)).
    type: str
    required: true
  dest:
    description:
      - The directory on the controller that holds the assessment runs.
    type: path
    required: true
  sources:
    description:
      - The evidence sources to read. A source left out is not skipped silently - the checks that need it are reported
        as not collected.
      - C(nodes) reads EC2 user data and needs C(aws).
      - C(nodes-running) (not a default, opt in by listing it) asks every running instance of the cluster what it
        runs, with SSM Run Command (C(AWS-RunShellScript), a read-only script shown in docs/compliance.md that the
        SSM agent runs as root). It needs C(aws), and the caller needs C(ssm:SendCommand) on the instances and the
        C(AWS-RunShellScript) document, and C(ssm:GetCommandInvocation). An instance that is stopped, not managed by
        SSM, whose command fails or does not answer within O(node_command_timeout) is reported as not collected. It
        also reads SSM's inventory of managed instances (C(ssm:DescribeInstanceInformation)) for each agent's ping
        status. Of k3s's command line and the apiserver's journal line only the C(audit-*) flags leave the node.
      - In check mode no command is sent to any node (the inventory is still read) and the running-node checks are
        reported as not collected.
    type: list
    elements: str
    choices: [aws, nodes, nodes-running, cluster, custody]
    default: [aws, nodes, cluster, custody]
  k3s_binary:
    description:
      - The k3s binary (or systemd-sysext image) on the controller that the nodes' Ignition configs pin, for its Go build
        information (C(GOFIPS140)). Its SHA-256 must be the one the configs pin.
    type: path
  trust_state:
    description:
      - The trust state the loads keep; the custody records are read from C(custody/) beside it.
    type: path
  registry:
    description:
      - The high-side registry, C(host[:port][/prefix]), as given to the loads. Images of the custody records are
        checked there, and running containers must come from it (or from a source a bundle carried, served through
        k3s's mirror).
      - The registry connection options (O(ca_file), O(registry_username), ...) apply.
    type: str
  api_cidrs:
    description:
      - The networks allowed to reach the Kubernetes API (port 6443); an ingress rule from anywhere else is a finding.
    type: list
    elements: str
    default: []
  kms_key_id:
    description:
      - The KMS key the root volumes must be encrypted with; without it any encryption is accepted.
    type: str
  hop_limit:
    description:
      - The highest instance metadata hop limit accepted.
    type: int
    default: 1
  cluster_admin_subjects:
    description:
      - The subjects allowed to be bound to cluster-admin, as C(Kind/name) or C(ServiceAccount/namespace/name).
    type: list
    elements: str
    default: [Group/system:masters]
  required_constraints:
    description:
      - Gatekeeper constraints that must exist and deny. Defaults to the constraints M(petra.core.petra_platform)
        renders (required labels left out, as it is optional).
    type: list
    elements: str
    default: [petra-no-privileged-containers, petra-allowed-registries, petra-container-limits]
  required_tracing_policies:
    description:
      - Tetragon TracingPolicies that must exist. Defaults to those M(petra.core.petra_platform) renders.
    type: list
    elements: str
    default: [petra-process-exec, petra-file-integrity, petra-kernel-modules]
  node_inline_policies:
    description:
      - Inline policies the node role may have besides C(AmazonSSMManagedInstanceCore); they may only allow
        C(s3:GetObject) and C(kms:Decrypt) on named resources.
    type: list
    elements: str
    default: [petra-node-read]
  node_command_timeout:
    description:
      - Seconds to wait, for all instances together, for the answers of the SSM command (source C(nodes-running));
        also the command's own execution timeout (at least 30).
    type: int
    default: 120
  node_command_poll:
    description:
      - Seconds between two reads of the SSM command invocations.
    type: float
    default: 2.0
  node_allowed_ports:
    description:
      - TCP ports the organization accepts listening on a node's network addresses besides those the cluster's
        security groups open (6443, 10250, 4240, 4244; 2379-2380 on servers). Any other port listening beyond loopback
        is a finding of check C(nodes.running.ports). Recorded in the results as a setting.
    type: list
    elements: int
    default: []
  tetragon_export:
    description:
      - Tetragon's JSON export file on the nodes (the Helm chart's C(exportDirectory)/C(exportFilename)); the script
        reads only the time of its newest event.
    type: str
    default: /var/run/cilium/tetragon/tetragon.log
  tetragon_event_window:
    description:
      - Minutes. Check C(nodes.running.tetragon-events) fails for a node whose newest exported Tetragon event is older
        than this by the node's own clock (the organization's measure of logging "continuously", C(au-02_odp.03)).
        Recorded in the results as a setting.
    type: int
    default: 15
  transfer_records:
    description:
      - The directory of the cross-domain transfer records M(petra.core.petra_diode) wrote - the signed part indexes
        (C(<name>.parts.json)) and AWS Diode receipts (its O(petra.core.petra_diode#module:receipt) files) - kept after
        receiving. Every loaded bundle of the custody records must have a part index that verifies with
        O(transfer_public_key) and names its SHA-256; a receipt that names that index must give its SHA-256 and
        transfers that succeeded. Without it, check C(custody.transfer-records) is not collected.
    type: path
  transfer_public_key:
    description:
      - The bundle signers' public keys (paths or PEM) the part indexes are verified with.
    type: list
    elements: str
  previous:
    description:
      - An earlier assessment to compare with - its run directory or its C(assessment-results.json), with the C(.sig)
        beside it. Its signature is verified first; when it does not verify the task fails and nothing is collected.
      - The result (RV(comparison)), the OSCAL findings (prop C(change-since-previous)) and the report then list per
        objective what changed - newly failing, newly satisfied, another status, or the same status with other
        evidence or check states.
    type: path
  previous_public_key:
    description:
      - The public key (path or PEM) that signed O(previous), when it is not the key of O(signing_key).
    type: str
  organization_parameters:
    description:
      - Values of the organization-defined parameters (NIST's ids, for example C(au-02_odp.01), C(sr-04_odp)),
        recorded in the assessment results as assumed for this run.
    type: dict
    default: {}
extends_documentation_fragment:
  - petra.core.aws
  - petra.core.kube
  - petra.core.registry
  - petra.core.signing_key
  - petra.core.attributes
  - petra.core.attributes.check_mode
notes:
  - Check mode collects and judges, and reports whether the findings differ from the latest run, without writing.
  - The nodes as running are read with SSM Run Command (source C(nodes-running)); firmware is not. See docs/compliance.md.
seealso:
  - module: petra.core.petra_flatcar
  - module: petra.core.petra_bundle
  - module: petra.core.petra_platform
requirements:
  - python >= 3.11
  - boto3 (sources aws, nodes, nodes-running)
  - kubernetes (source cluster)
  - requests (source custody with registry)
  - compliance-trestle
  - Jinja2
"""

EXAMPLES = r"""
- name: Assess the cluster and keep the signed results
  petra.core.petra_evidence:
    cluster_name: prod
    dest: /srv/petra/assessments/prod
    region: us-gov-west-1
    kubeconfig: /srv/petra/prod.kubeconfig
    k3s_binary: /srv/petra/artifacts/k3s
    trust_state: /srv/petra/trust/trust-state.json
    registry: registry.high.example:5000/petra
    ca_file: /etc/pki/high-registry-ca.pem
    api_cidrs: [10.20.0.0/16]
    kms_key_id: arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/0b1e7c55-5a8e-4c5e-9d55-3f4d2a1b0c9d
    signing_key: awskms:///alias/petra-assessment
    organization_parameters:
      sr-04_odp: container images and node images of the platform
  register: assessment

- name: Where the report is
  ansible.builtin.debug:
    msg: "{{ assessment.report }} ({{ assessment.summary }})"

- name: Only custody (SI-7, SR-4), for example on the data transfer officer's machine
  petra.core.petra_evidence:
    cluster_name: prod
    dest: /srv/petra/assessments/custody
    sources: [custody]
    trust_state: /srv/petra/trust/trust-state.json
    registry: registry.high.example:5000/petra
    signing_key: /etc/petra/assessment.pem
"""

RETURN = r"""
changed:
  description: Whether a new run was written (false when the findings equal the latest run's).
  returned: always
  type: bool
path:
  description: The run directory (the latest one when nothing changed; null in check mode when something would).
  returned: success
  type: str
run_id:
  description: The id of the run written (UTC time it started).
  returned: changed
  type: str
assessment_results:
  description: The OSCAL assessment results file.
  returned: when path is set
  type: str
manifest:
  description: The evidence manifest (every evidence file with SHA-256 and size, the results' SHA-256, the signer).
  returned: when path is set
  type: str
report:
  description: The HTML report.
  returned: when path is set
  type: str
findings_sha256:
  description: SHA-256 over the findings (objective states and reasons, every check's problems), without times.
  returned: success
  type: str
summary:
  description: Per control, how many objectives are C(satisfied), C(not_satisfied) and left to a person (C(manual)).
  returned: success
  type: dict
findings:
  description: Per objective - C(objective), C(control), C(state), C(reason), C(checks), C(remarks), C(manual).
  returned: success
  type: list
  elements: dict
checks:
  description: Per check - C(check), C(title), C(state) (pass, fail, not-collected), C(objectives), C(problems),
    C(notes), C(evidence) (files).
  returned: success
  type: list
  elements: dict
cluster:
  description: The cluster assessed.
  returned: success
  type: str
comparison:
  description:
    - With O(previous) - C(previous) (C(path), C(sha256), C(uuid), C(run), C(signer) of the earlier document) and
      C(changes), per objective that changed - C(objective), C(control), C(change) (C(newly-failing),
      C(newly-satisfied), C(status-changed), C(evidence-changed)), C(before), C(after), C(evidence) (files whose
      SHA-256 differs) and C(checks) (checks whose state differs).
  returned: when previous is given
  type: dict
"""

from ansible_collections.petra.core.plugins.module_utils.adapters import evidence as adapter
from ansible_collections.petra.core.plugins.module_utils.adapters.runner import run_module


def main():
    run_module(adapter)


if __name__ == "__main__":
    main()
