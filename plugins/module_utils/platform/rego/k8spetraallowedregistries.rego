# Petra: images only from the allowed registries (the high-side registry, by default).
# An image reference is first written out in full, the way the container runtime reads it: a first path component
# with a '.' or ':', or 'localhost', is a registry host; anything else (nginx, library/nginx, team/app, also with a
# tag or a digest) is a Docker Hub short name and means docker.io. The full reference must then begin with an
# allowed entry followed by '/', so 'registry.example:5000/petra' allows 'registry.example:5000/petra/app@sha256:...'
# but neither 'registry.example:5000/petra-other/app' nor 'registry.example:5000.evil/petra/app'.
# Gatekeeper hands over the admission request as input.review and the constraint's spec.parameters as
# input.parameters. The policy is whole in this file so that it can be evaluated on its own. Messages are built
# with concat (not sprintf) so that every Rego engine renders them the same.
package k8spetraallowedregistries

import rego.v1

container_fields := ["containers", "initContainers", "ephemeralContainers"]

templated_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"}

violation contains {"msg": msg} if {
    not exempt
    some field in container_fields
    some container in pod_spec[field]
    not allowed(object.get(container, "image", ""))
    msg := concat("", [
        input.review.object.kind, " ", object_name, ": ", field, " ", container.name, " uses image ",
        object.get(container, "image", "(none)"), " (", full_reference(object.get(container, "image", "")),
        "), which is not from an allowed registry: ", concat(", ", input.parameters.registries),
    ])
}

allowed(image) if {
    image != ""
    some registry in input.parameters.registries
    startswith(full_reference(image), concat("", [lower(trim_suffix(registry, "/")), "/"]))
}

# The reference with its registry host written out and lower-cased (Docker Hub for short names).
full_reference(image) := concat("/", array.concat([registry_host(parts[0])], array.slice(parts, 1, count(parts)))) if {
    parts := split(image, "/")
    count(parts) > 1
    is_host(parts[0])
} else := concat("/", ["docker.io", image]) if {
    contains(image, "/")
} else := concat("/", ["docker.io", "library", image])

registry_host(host) := "docker.io" if {
    lower(host) in {"index.docker.io", "registry-1.docker.io"}
} else := lower(host)

is_host(part) if contains(part, ".")

is_host(part) if contains(part, ":")

is_host(part) if part == "localhost"

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
