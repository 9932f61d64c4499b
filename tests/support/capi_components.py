"""Stand-ins for the release files of Cluster API core and CAPA, with the structure of the real ones (the real files
cannot be downloaded here): the providers' namespaces, a CRD, the controller Deployments in capi-system and
capa-system with their image references and clusterctl variables as the providers' config/manager/manager.yaml write
them, and CAPA's credentials Secret holding ``${AWS_B64ENCODED_CREDENTIALS}``. Plus Flux's post-build substitution,
emulated: ``${VAR}``, ``${VAR:=default}``, ``${VAR:-default}``, ``${VAR=default}``."""

from __future__ import annotations

import re

CORE_VERSION = "v1.11.1"
CAPA_VERSION = "v2.10.0"
CORE_IMAGE = "registry.k8s.io/cluster-api/cluster-api-controller:" + CORE_VERSION
CAPA_IMAGE = "registry.k8s.io/cluster-api-aws/cluster-api-aws-controller:" + CAPA_VERSION
# The controller's --feature-gates argument, one gate per line here (the release file has it on one line).
CAPA_FEATURE_GATES = ",".join([
    "EKS=${CAPA_EKS:=true}",
    "EKSEnableIAM=${CAPA_EKS_IAM:=false}",
    "EKSAllowAddRoles=${CAPA_EKS_ADD_ROLES:=false}",
    "EKSFargate=${EXP_EKS_FARGATE:=false}",
    "MachinePool=${EXP_MACHINE_POOL:=false}",
    "AutoControllerIdentityCreator=${AUTO_CONTROLLER_IDENTITY_CREATOR:=true}",
    "BootstrapFormatIgnition=${EXP_BOOTSTRAP_FORMAT_IGNITION:=false}",
    "TagUnmanagedNetworkResources=${TAG_UNMANAGED_NETWORK_RESOURCES:=true}",
])


def _crd(group, plural, kind, provider):
    return """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  annotations:
    cert-manager.io/inject-ca-from: %(ns)s/%(short)s-serving-cert
  labels:
    cluster.x-k8s.io/provider: %(provider)s
  name: %(plural)s.%(group)s
spec:
  group: %(group)s
  names:
    kind: %(kind)s
    listKind: %(kind)sList
    plural: %(plural)s
    singular: %(singular)s
  scope: Namespaced
  versions:
  - name: v1beta2
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
""" % {"group": group, "plural": plural, "kind": kind, "singular": kind.lower(), "provider": provider,
       "ns": "capi-system" if provider == "cluster-api" else "capa-system",
       "short": "capi" if provider == "cluster-api" else "capa"}


CORE_COMPONENTS = """apiVersion: v1
kind: Namespace
metadata:
  labels:
    cluster.x-k8s.io/provider: cluster-api
  name: capi-system
---
""" + _crd("cluster.x-k8s.io", "clusters", "Cluster", "cluster-api") + """---
apiVersion: apps/v1
kind: Deployment
metadata:
  labels:
    cluster.x-k8s.io/provider: cluster-api
    control-plane: controller-manager
  name: capi-controller-manager
  namespace: capi-system
spec:
  replicas: 1
  selector:
    matchLabels:
      cluster.x-k8s.io/provider: cluster-api
      control-plane: controller-manager
  template:
    metadata:
      labels:
        cluster.x-k8s.io/provider: cluster-api
        control-plane: controller-manager
    spec:
      containers:
      - args:
        - --leader-elect
        - --diagnostics-address=${CAPI_DIAGNOSTICS_ADDRESS:=:8443}
        - --insecure-diagnostics=${CAPI_INSECURE_DIAGNOSTICS:=false}
        - --feature-gates=MachinePool=${EXP_MACHINE_POOL:=true},ClusterTopology=${CLUSTER_TOPOLOGY:=false},RuntimeSDK=${EXP_RUNTIME_SDK:=false}
        command:
        - /manager
        env:
        - name: POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        image: """ + CORE_IMAGE + """
        imagePullPolicy: IfNotPresent
        name: manager
        ports:
        - containerPort: 9443
          name: webhook-server
          protocol: TCP
      serviceAccountName: capi-manager
      terminationGracePeriodSeconds: 10
"""

CAPA_COMPONENTS = """apiVersion: v1
kind: Namespace
metadata:
  labels:
    cluster.x-k8s.io/provider: infrastructure-aws
    control-plane: controller-manager
  name: capa-system
---
""" + _crd("infrastructure.cluster.x-k8s.io", "awsclusters", "AWSCluster", "infrastructure-aws") + """---
apiVersion: v1
data:
  credentials: ${AWS_B64ENCODED_CREDENTIALS}
kind: Secret
metadata:
  labels:
    cluster.x-k8s.io/provider: infrastructure-aws
  name: capa-manager-bootstrap-credentials
  namespace: capa-system
type: Opaque
---
apiVersion: apps/v1
kind: Deployment
metadata:
  labels:
    cluster.x-k8s.io/provider: infrastructure-aws
    control-plane: capa-controller-manager
  name: capa-controller-manager
  namespace: capa-system
spec:
  replicas: 1
  selector:
    matchLabels:
      cluster.x-k8s.io/provider: infrastructure-aws
      control-plane: capa-controller-manager
  template:
    metadata:
      labels:
        cluster.x-k8s.io/provider: infrastructure-aws
        control-plane: capa-controller-manager
    spec:
      containers:
      - args:
        - --leader-elect
        - --feature-gates=""" + CAPA_FEATURE_GATES + """
        - --v=${CAPA_LOGLEVEL:=0}
        env:
        - name: AWS_SHARED_CREDENTIALS_FILE
          value: /home/.aws/credentials
        image: """ + CAPA_IMAGE + """
        imagePullPolicy: IfNotPresent
        name: manager
        volumeMounts:
        - mountPath: /home/.aws
          name: credentials
      serviceAccountName: capa-controller-manager
      volumes:
      - name: credentials
        secret:
          secretName: capa-manager-bootstrap-credentials
"""

CORE_METADATA = """apiVersion: clusterctl.cluster.x-k8s.io/v1alpha3
kind: Metadata
releaseSeries:
- major: 1
  minor: 10
  contract: v1beta1
- major: 1
  minor: 11
  contract: v1beta2
"""

CAPA_METADATA = """apiVersion: clusterctl.cluster.x-k8s.io/v1alpha3
kind: Metadata
releaseSeries:
- major: 2
  minor: 9
  contract: v1beta1
- major: 2
  minor: 10
  contract: v1beta1
"""


def write_release(directory):
    """The four release files under ``directory``; their paths as petra_capi_management's options."""
    files = {"core_components": ("core-components.yaml", CORE_COMPONENTS),
             "core_metadata": ("core-metadata.yaml", CORE_METADATA),
             "infrastructure_components": ("infrastructure-components.yaml", CAPA_COMPONENTS),
             "infrastructure_metadata": ("infrastructure-metadata.yaml", CAPA_METADATA)}
    options = {"core_version": CORE_VERSION, "infrastructure_version": CAPA_VERSION}
    for option, (name, text) in files.items():
        path = directory / name
        path.write_text(text)
        options[option] = str(path)
    return options


_SUBST_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:=|:-|=|-)([^}]*))?\}")


def flux_substitute(text, values):
    """Flux's post-build substitution (the envsubst subset the providers use): unset variables become empty."""
    def replace(match):
        name, operator, default = match.group(1), match.group(2), match.group(3)
        if operator in (":=", ":-"):
            return values.get(name) or default
        if operator in ("=", "-"):
            return values[name] if name in values else default
        return values.get(name, "")
    return _SUBST_RE.sub(replace, text)
