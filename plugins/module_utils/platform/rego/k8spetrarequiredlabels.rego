# Petra: objects carry the required labels, and a label with an allowedRegex has a value that matches it.
# Gatekeeper hands over the admission request as input.review and the constraint's spec.parameters as
# input.parameters. The policy is whole in this file so that it can be evaluated on its own. Messages are built
# with concat (not sprintf) so that every Rego engine renders them the same.
package k8spetrarequiredlabels

import rego.v1

violation contains {"msg": msg} if {
    not exempt
    some required in input.parameters.labels
    not has_label(required.key)
    msg := concat("", [
        input.review.object.kind, " ", object_name, " lacks the required label ", required.key,
    ])
}

violation contains {"msg": msg} if {
    not exempt
    some required in input.parameters.labels
    pattern := object.get(required, "allowedRegex", "")
    pattern != ""
    value := input.review.object.metadata.labels[required.key]
    not regex.match(pattern, value)
    msg := concat("", [
        input.review.object.kind, " ", object_name, ": label ", required.key, "=", value,
        " does not match ", pattern,
    ])
}

has_label(key) if {
    _ = input.review.object.metadata.labels[key]
}

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
