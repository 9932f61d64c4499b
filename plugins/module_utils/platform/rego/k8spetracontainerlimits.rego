# Petra: every container and init container sets limits for the listed resources (cpu and memory by default).
# Ephemeral containers cannot set resources at all (the API refuses it), so they are not checked. A limit that is
# empty or zero counts as missing.
# Gatekeeper hands over the admission request as input.review and the constraint's spec.parameters as
# input.parameters. The policy is whole in this file so that it can be evaluated on its own. Messages are built
# with concat (not sprintf) so that every Rego engine renders them the same.
package k8spetracontainerlimits

import rego.v1

container_fields := ["containers", "initContainers"]

templated_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"}

violation contains {"msg": msg} if {
    not exempt
    some field in container_fields
    some container in pod_spec[field]
    some resource in input.parameters.limits
    not has_limit(container, resource)
    msg := concat("", [
        input.review.object.kind, " ", object_name, ": ", field, " ", container.name,
        " has no ", resource, " limit; set resources.limits.", resource,
    ])
}

has_limit(container, resource) if {
    value := container.resources.limits[resource]
    not zero_quantity(value)
}

# A quantity that is zero however it is written: 0, "0", "0m", "0Mi", "0.0", "0e3", "+0k"; or nothing at all.
zero_quantity(value) if value == null

zero_quantity(value) if value == ""

zero_quantity(value) if {
    is_number(value)
    value == 0
}

zero_quantity(value) if {
    is_string(value)
    regex.match(`^[+-]?(0+(\.0*)?|\.0+)([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$`, value)
}

pod_spec := input.review.object.spec if input.review.object.kind == "Pod"

pod_spec := input.review.object.spec.template.spec if input.review.object.kind in templated_kinds

pod_spec := input.review.object.spec.jobTemplate.spec.template.spec if input.review.object.kind == "CronJob"

object_name := name if {
    name := input.review.object.metadata.name
} else := input.review.object.metadata.generateName

review_namespace := name if {
    input.review.object.kind == "Namespace"
    name := input.review.object.metadata.name
} else := ns if {
    ns := input.review.namespace
    ns != ""
} else := ns if {
    ns := input.review.object.metadata.namespace
} else := ""

exempt if {
    some pattern in input.parameters.exemptNamespaces
    namespace_matches(review_namespace, pattern)
}

namespace_matches(ns, pattern) if {
    not endswith(pattern, "*")
    ns == pattern
}

namespace_matches(ns, pattern) if {
    endswith(pattern, "*")
    startswith(ns, trim_suffix(pattern, "*"))
}
