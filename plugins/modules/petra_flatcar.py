#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
module: petra_flatcar
short_description: Hardened Flatcar + FIPS k3s nodes, from the Ignition config to the standalone cluster on EC2
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
  - "With O(state=present), converges a standalone cluster's EC2 nodes with boto3: one launch template per node role
    (IMDSv2 only with O(metadata_hop_limit) hops and no instance tags in metadata, the instance profile, an encrypted
    gp3 root volume with O(kms_key_id), no key pair, the rendered Ignition as user data, tags naming the cluster, the
    role, the SHA-256 of the config and the AMI), a node security group (k3s ports between the nodes only) and an API
    security group (port 6443 from O(api_cidrs)), an instance profile with SSM core access only (unless
    O(instance_profile) names one), and O(servers) (1 or an odd number of at least 3) and O(agents) spread over
    O(subnets). The first server of a new cluster boots O(servers.init_user_data)."
  - "Nodes running another AMI or config than requested are replaced one at a time (O(update_strategy=rolling)):
    servers first, each new server Ready before the old one is drained, deleted and terminated, so etcd keeps its
    quorum (the roll refuses to remove a server when the remaining Ready servers would be below quorum); agents are
    drained (evictions through the Kubernetes API, which honours PodDisruptionBudgets), terminated, replaced and
    waited for. A failure stops the roll and says at which node and step (RV(stopped_at)); re-running resumes with
    the nodes still outdated. Draining and replacing need O(kubeconfig)."
  - With O(state=absent), terminates every instance tagged for the cluster and deletes the launch templates,
    security groups and instance profile Petra created for it.
  - "With O(provisioner=capi), O(state=present) and O(state=absent) manage the cluster as Cluster API objects on the
    management cluster O(kubeconfig) names, with CAPA as the infrastructure provider and no bootstrap or
    control-plane provider (see docs/capi.md): C(Cluster), C(AWSCluster) (existing VPC O(capi.vpc_id) and
    O(subnets), internal NLB, no SSH key, no bastion, the partition from O(region)), server C(Machine) +
    C(AWSMachine) pairs, the agents' C(AWSMachineTemplate) and C(MachineDeployment)s and a C(MachineHealthCheck).
    Machines are hardened like standalone nodes (AMI by id, IMDSv2 at one hop, no key, encrypted gp3 root with
    O(kms_key_id), the SSM-only profile) and boot the same Ignition, rendered by the module from the node options
    (O(token), O(k3s), O(registries), O(manifests), ...) into content-hashed bootstrap Secrets, with the kubelet
    provider ID C(aws:///<zone>/<instance-id>) set from the instance metadata. Outdated servers are replaced one at a
    time with the standalone roll (quorum checks, drains); agents roll through their MachineDeployment. Waits are
    bounded; the workload kubeconfig is written to O(capi.kubeconfig_dest). With O(state=absent), the Cluster is
    deleted and waited for, then what Petra created."
  - "With O(state=imported), brings Flatcar into a region without official AMIs (GovCloud, isolated regions):
    checks O(image_file) against O(image_checksum) (SHA-256/384/512 only) and, with O(gpg_public_key), its detached
    OpenPGP signature O(image_signature) (gpgv), uploads it to O(import_bucket) (a C(.bz2) release file is
    decompressed on the way, never written out), imports it as an encrypted snapshot (EC2 ImportSnapshot with the
    O(import_role) service role), registers an AMI tagged with the source digest, and writes its id to
    O(ssm_parameter) (usable as O(image=resolve:ssm:<name>)). An AMI already imported from the same digest is reused."
author:
  - Petra maintainers (@petra-maintainers)
options:
  state:
    description:
      - V(rendered) renders the config; V(inspected) reads a k3s binary's Go build information; V(present) and
        V(absent) manage a standalone cluster on EC2; V(imported) imports a Flatcar image as an AMI.
    type: str
    choices: [rendered, inspected, present, absent, imported]
    default: rendered
  provisioner:
    description:
      - How O(state=present) and O(state=absent) manage the cluster. V(ec2) makes the instances with the AWS API
        (standalone). V(capi) declares Cluster API objects on the management cluster O(kubeconfig) names.
    type: str
    choices: [ec2, capi]
    default: ec2
  capi:
    description:
      - The Cluster API options of O(provisioner=capi).
    type: dict
    suboptions:
      namespace:
        description: The namespace of the cluster's objects (created, and deleted with O(state=absent), if Petra
          created it). Defaults to O(cluster_name).
        type: str
      vpc_id:
        description: The existing VPC the AWSCluster reuses (CAPA then makes only the load balancer and security
          groups). Required with O(state=present).
        type: str
      kubernetes_version:
        description: The Machines' version, the k3s release O(k3s) holds (for example C(v1.33.4+k3s1)). Required with
          O(state=present).
        type: str
      availability_zones:
        description: Failure domains; servers are placed in them in turn and agents get one MachineDeployment each.
        type: list
        elements: str
        default: []
      node_port_cidrs:
        description: Networks allowed to the NodePort range; defaults to O(api_cidrs). Petra refuses to leave it to
          CAPA, which would open it to 0.0.0.0/0.
        type: list
        elements: str
        default: []
      security_group_overrides:
        description: CAPA's C(network.securityGroupOverrides) (role to security group id).
        type: dict
        default: {}
      identity_ref:
        description: The AWSCluster's C(identityRef) (C(kind), C(name)); CAPA's default identity when unset.
        type: dict
        suboptions:
          kind:
            description: C(AWSClusterControllerIdentity), C(AWSClusterRoleIdentity) or C(AWSClusterStaticIdentity).
            type: str
            required: true
          name:
            description: The identity's name.
            type: str
            required: true
      ignition_storage:
        description:
          - V(user-data) puts the whole config into EC2 user data (it holds the token).
          - V(s3) uploads it under O(capi.config_s3_prefix) and puts a stub into user data that replaces itself
            from that object, pinned by its SHA-256.
        type: str
        choices: [user-data, s3]
        default: user-data
      config_s3_prefix:
        description: C(s3://bucket/prefix) for O(capi.ignition_storage=s3); objects go to
          C(<prefix>/<cluster_name>/), encrypted with O(config_s3_kms_key_id) when given.
        type: str
      unhealthy_timeout:
        description: Seconds an agent's Node may be NotReady or Unknown before its Machine is replaced.
        type: int
        default: 300
      max_unhealthy:
        description: The MachineHealthCheck replaces nothing while more agents than this (count or percentage) are
          unhealthy at once.
        type: str
        default: 40%
      kubeconfig_dest:
        description: Where to write the workload cluster's kubeconfig (mode 0600), from the Secret Cluster API keeps.
        type: path
      wait:
        description: Wait until every Machine's Node is Ready and the kubeconfig exists (bounded by
          O(node_ready_timeout)).
        type: bool
        default: true
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
      - With O(state=inspected), the k3s binary (a Go program) on the controller, or a squashfs systemd-sysext
        image holding it (read with C(unsquashfs), nothing is mounted).
    type: path
  sysext_path:
    description:
      - With O(state=inspected) and a sysext image, the k3s binary's path inside it. Without it,
        C(/usr/local/bin/k3s) then C(/usr/bin/k3s) are tried.
    type: str
  require_fips_module:
    description:
      - With O(state=inspected), fail unless the binary was built against the validated Go FIPS module.
    type: bool
    default: false
  cluster_name:
    description:
      - The cluster's name; resources are named C(petra-<cluster_name>-...) and tagged C(petra:cluster).
        Required with O(state=present) and O(state=absent).
    type: str
  image:
    description:
      - The Flatcar AMI, by id or as C(resolve:ssm:<parameter name>). Required with O(state=present).
    type: str
  subnets:
    description:
      - Subnet ids (one VPC) the nodes are spread over, the least used first.
    type: list
    elements: str
    default: []
  api_cidrs:
    description:
      - Networks allowed to reach the Kubernetes API (port 6443) on the servers. Nodes reach each other through the
        node security group regardless.
    type: list
    elements: str
    default: []
  kms_key_id:
    description:
      - KMS key for the encrypted root volumes (O(state=present)), or for the uploaded image and imported snapshot
        (O(state=imported)). The account's default EBS key when omitted.
    type: str
  root_volume_size:
    description:
      - Root volume size in GiB (gp3).
    type: int
    default: 20
  instance_profile:
    description:
      - An existing instance profile for the nodes. Without it, C(petra-<cluster_name>-node) is created with
        C(AmazonSSMManagedInstanceCore) and an inline policy C(petra-node-read) that lets Ignition read exactly the
        C(s3://) objects the configs name, O(node_s3_read) and O(node_kms_key_arns).
    type: str
  metadata_hop_limit:
    description:
      - The IMDSv2 response hop limit. 1 keeps instance credentials away from pods.
    type: int
    default: 1
  tags:
    description:
      - More tags for everything created (instances, volumes, templates, groups, AMIs, snapshots).
    type: dict
    default: {}
  node_s3_read:
    description:
      - "C(s3://bucket/prefix) locations the nodes may read (C(s3:GetObject) on C(prefix*)) besides the C(s3://) objects
        their configs name, which are granted one by one. Give the prefix of configs published with O(config_s3_uri)
        and of the artifacts they fetch. Only for the instance profile Petra creates (inline policy C(petra-node-read))."
    type: list
    elements: str
    default: []
  node_kms_key_arns:
    description:
      - ARNs of KMS keys the nodes may decrypt with (C(kms:Decrypt)), for SSE-KMS objects they fetch at boot.
        Only for the instance profile Petra creates.
    type: list
    elements: str
    default: []
  servers:
    description:
      - The k3s servers. Required with O(state=present).
    type: dict
    suboptions:
      count:
        description: 1, or an odd number of at least 3 (embedded etcd quorum).
        type: int
        default: 1
      instance_type:
        description: The EC2 instance type.
        type: str
      user_data:
        description:
          - The RV(user_data) of M(petra.core.petra_flatcar) with O(state=rendered) for a joining server. It holds
            the k3s token; it is never logged.
        type: str
      init_user_data:
        description:
          - The rendered config of the first server (O(cluster_init=true)), booted only when the cluster has no
            server at all. Keep giving it, since the bootstrap server is compared with it.
        type: str
  agents:
    description:
      - The k3s agents.
    type: dict
    suboptions:
      count:
        description: How many agents.
        type: int
        default: 0
      instance_type:
        description: The EC2 instance type.
        type: str
      user_data:
        description: The rendered config of an agent. It holds the k3s token; it is never logged.
        type: str
  update_strategy:
    description:
      - V(rolling) replaces outdated nodes; V(none) only reports them in RV(outdated).
    type: str
    choices: [rolling, none]
    default: rolling
  wait_timeout:
    description:
      - Seconds to wait for instances to run or terminate.
    type: int
    default: 600
  node_ready_timeout:
    description:
      - Seconds to wait for a replacement's Node to be Ready.
    type: int
    default: 900
  drain_timeout:
    description:
      - Seconds a drain may take, including evictions a PodDisruptionBudget refuses for a while.
    type: int
    default: 600
  poll_interval:
    description:
      - Seconds between polls of the Kubernetes API and of the snapshot import.
    type: float
    default: 5.0
  image_file:
    description:
      - The Flatcar AMI disk image on the controller (C(flatcar_production_ami_vmdk_image.vmdk), or the C(.bz2)
        release file). Required with O(state=imported).
    type: path
  image_checksum:
    description:
      - "The expected digest of O(image_file), C(sha512:<hex>) (as Flatcar's DIGESTS file lists it), C(sha384:<hex>)
        or C(sha256:<hex>). MD5 and SHA-1 are refused. Required with O(state=imported)."
    type: str
  image_signature:
    description:
      - The detached OpenPGP signature of O(image_file) (the release's C(.sig)), checked with O(gpg_public_key).
    type: path
  gpg_public_key:
    description:
      - The armored OpenPGP public key (or its path) the image is signed with, such as Flatcar's image signing key.
    type: str
  image_name:
    description:
      - The AMI name, one per release (for example C(flatcar-stable-4230.2.3)). Required with O(state=imported).
    type: str
  import_bucket:
    description:
      - The S3 bucket the image is uploaded to for import. Required with O(state=imported).
    type: str
  import_prefix:
    description:
      - Key prefix in O(import_bucket).
    type: str
    default: petra/flatcar-import/
  import_role:
    description:
      - The VM Import service role EC2 uses to read the bucket.
    type: str
    default: vmimport
  import_timeout:
    description:
      - Seconds to wait for the snapshot import.
    type: int
    default: 3600
  architecture:
    description:
      - The image's architecture.
    type: str
    choices: [x86_64, arm64]
    default: x86_64
  boot_mode:
    description:
      - The AMI boot mode; the region's default when omitted.
    type: str
    choices: [legacy-bios, uefi, uefi-preferred]
  ssm_parameter:
    description:
      - An SSM parameter to write the AMI id to (data type C(aws:ec2:image)).
    type: str
extends_documentation_fragment:
  - petra.core.aws
  - petra.core.kube
  - petra.core.attributes
  - petra.core.attributes.check_mode
seealso:
  - module: petra.core.petra_bundle
requirements:
  - python >= 3.9
  - PyYAML
  - boto3 (states present, absent, imported, and config_s3_uri)
  - kubernetes (draining nodes)
  - gpgv (checking image signatures)
  - unsquashfs (inspecting a sysext image)
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

- name: A three-server, two-agent cluster; outdated nodes are replaced one at a time
  petra.core.petra_flatcar:
    state: present
    cluster_name: mission
    image: resolve:ssm:/petra/flatcar/stable
    subnets: [subnet-0a1b2c3d4e5f60718, subnet-0f1e2d3c4b5a69788]
    api_cidrs: [10.40.0.0/16]
    kms_key_id: alias/petra-ebs
    servers:
      count: 3
      instance_type: m6i.large
      init_user_data: "{{ first_server.user_data }}"
      user_data: "{{ joining_server.user_data }}"
    agents:
      count: 2
      instance_type: m6i.xlarge
      user_data: "{{ agent.user_data }}"
    kubeconfig: /srv/petra/mission.kubeconfig
    region: us-gov-west-1

- name: The same node options as Cluster API objects on a management cluster
  petra.core.petra_flatcar:
    state: present
    provisioner: capi
    cluster_name: edge-1
    kubeconfig: /srv/petra/management.kubeconfig
    region: us-gov-west-1
    image: resolve:ssm:/petra/flatcar/stable
    subnets: [subnet-0a1b2c3d4e5f60718, subnet-0f1e2d3c4b5a69788]
    api_cidrs: [10.40.0.0/16]
    kms_key_id: arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/0b1e7c55-5a8e-4c5e-9d55-3f4d2a1b0c9d
    instance_profile: petra-ssm-only
    token: "{{ vault_k3s_token }}"
    k3s:
      url: s3://petra-artifacts/k3s/v1.33.4+k3s1/k3s
      sha256: "{{ k3s_sha256 }}"
    servers: {count: 3, instance_type: m6i.large}
    agents: {count: 4, instance_type: m6i.xlarge}
    capi:
      vpc_id: vpc-0123456789abcdef0
      kubernetes_version: v1.33.4+k3s1
      availability_zones: [us-gov-west-1a, us-gov-west-1b]
      ignition_storage: s3
      config_s3_prefix: s3://petra-configs/fleet
      kubeconfig_dest: /srv/petra/edge-1.kubeconfig

- name: Import a Flatcar release into GovCloud
  petra.core.petra_flatcar:
    state: imported
    image_file: /srv/media/flatcar_production_ami_vmdk_image.vmdk.bz2
    image_checksum: "sha512:{{ flatcar_sha512 }}"
    image_signature: /srv/media/flatcar_production_ami_vmdk_image.vmdk.bz2.sig
    gpg_public_key: "{{ lookup('file', 'Flatcar_Image_Signing_Key.asc') }}"
    image_name: flatcar-stable-4230.2.3
    import_bucket: petra-imports
    kms_key_id: alias/petra-ebs
    ssm_parameter: /petra/flatcar/stable
    region: us-gov-west-1

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
sysext_path:
  description: With O(state=inspected) and a sysext image, where the inspected k3s binary is inside it.
  returned: state is inspected and binary is a sysext image
  type: str
settings:
  description: With O(state=inspected), every build setting recorded in the binary.
  returned: state is inspected
  type: dict
dest:
  description: The file written, when O(dest) is given.
  returned: when dest is given
  type: str
actions:
  description: With O(state=present), O(state=absent) or O(state=imported), what was done (or would be, in check mode), in order.
  returned: state is present, absent or imported
  type: list
  elements: dict
  sample: [{"action": "launch", "role": "server", "subnet_id": "subnet-0a1b", "instance_id": "i-0abc", "node": "ip-10-0-1-5"}]
instances:
  description: The cluster's instances (after the run; before it in check mode and with O(state=absent)).
  returned: state is present or absent
  type: list
  elements: dict
outdated:
  description: Instances (server Machines with O(provisioner=capi)) still running another AMI or config than requested.
  returned: state is present
  type: list
  elements: dict
image_id:
  description: The AMI the nodes run (O(state=present)), or the imported AMI (O(state=imported)).
  returned: state is present or imported
  type: str
launch_templates:
  description: The launch template id and version per node role.
  returned: state is present
  type: dict
security_groups:
  description: The ids of the node and API security groups.
  returned: state is present
  type: dict
instance_profile:
  description: The nodes' instance profile.
  returned: state is present
  type: str
namespace:
  description: With O(provisioner=capi), the namespace of the cluster's Cluster API objects.
  returned: provisioner is capi
  type: str
cluster:
  description: With O(provisioner=capi), the Cluster object's name.
  returned: provisioner is capi
  type: str
endpoint:
  description: With O(provisioner=capi), the API load balancer CAPA made (null in check mode before it exists).
  returned: provisioner is capi and state is present
  type: str
bootstrap_secrets:
  description: With O(provisioner=capi), the bootstrap data Secret per kind (C(server-init), C(server), C(agent)).
  returned: provisioner is capi and state is present
  type: dict
machine_template:
  description: With O(provisioner=capi), the agents' AWSMachineTemplate.
  returned: provisioner is capi and state is present
  type: str
superseded_in_use:
  description:
    - With O(provisioner=capi), the bootstrap Secrets and AWSMachineTemplates a template rotation superseded that
      something still uses (C(kind), C(name), C(used_by)); a later run deletes them once nothing does. Superseded
      objects nothing uses are deleted (a C(delete) action each; check mode lists them).
  returned: provisioner is capi and state is present
  type: list
  elements: dict
servers:
  description: With O(provisioner=capi), the server Machines (C(machine), C(private_ip), C(bootstrap)).
  returned: provisioner is capi and state is present
  type: list
  elements: dict
kubeconfig_secret:
  description: With O(provisioner=capi), the Secret holding the workload kubeconfig (key C(value)).
  returned: provisioner is capi, state is present and capi.wait is true
  type: str
kubeconfig_dest:
  description: With O(provisioner=capi), where the workload kubeconfig was written.
  returned: when capi.kubeconfig_dest is given
  type: str
machines_not_ready:
  description: On a failed wait for the machines, the Machines whose Node is not Ready (part of the failure result).
  returned: when the wait for the machines fails
  type: list
  elements: str
stopped_at:
  description: On a failed roll, the instance, role and step where it stopped (part of the failure result).
  returned: when a rolling replacement fails
  type: dict
snapshot_id:
  description: The imported, encrypted snapshot.
  returned: state is imported and an import ran
  type: str
source_digest:
  description: The verified digest of the image file, also the AMI's C(petra:source-digest) tag.
  returned: state is imported
  type: str
verified:
  description: What was checked of the image file.
  returned: state is imported
  type: str
s3_uri:
  description: Where the image was uploaded for import.
  returned: state is imported and an import ran
  type: str
ssm_parameter:
  description: The SSM parameter holding the AMI id.
  returned: state is imported and ssm_parameter is given
  type: str
"""

from ansible_collections.petra.core.plugins.module_utils.adapters import flatcar as adapter
from ansible_collections.petra.core.plugins.module_utils.adapters.runner import run_module


def main():
    run_module(adapter)


if __name__ == "__main__":
    main()
