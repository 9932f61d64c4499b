# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Tetragon: the Helm values and the TracingPolicies: every program execution, file integrity of /etc and k3s's
configuration and state, and kernel module loads.

Tetragon reports process_exec and process_exit for every process without any policy; ``petra-process-exec`` adds
the kernel's own check of each exec (``security_bprm_check``), which also sees execs that fail and programs run from
memory. Events go, as JSON, to the export file on each node for the node's log shipper.
"""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.platform import catalog
from ansible_collections.petra.core.plugins.module_utils.platform.objects import k8s_object, resources

POLICY_API = "cilium.io/v1alpha1"
# security_file_permission mask bits (include/linux/fs.h).
MAY_WRITE = "2"
MAY_READ = "4"
# security_kernel_read_file id for a module image (enum kernel_read_file_id).
READING_MODULE = "2"
# Tetragon's export filters, one JSON object per line: events matching any are not written to the export file.
EXPORT_DENY_LIST = '{"health_check":true}'


def _policy(name, description, kprobes, labels):
    return k8s_object(POLICY_API, "TracingPolicy", name, labels=labels,
                      annotations={"description": description}, spec={"kprobes": kprobes})


def _kprobe(call, message, tags, args, selectors=None):
    probe = {"call": call, "syscall": False, "message": message, "tags": ["petra"] + list(tags), "args": args}
    if selectors:
        probe["selectors"] = selectors
    return probe


def watched_paths():
    """Paths whose changes are reported: all of /etc (with k3s's configuration) and k3s's server and agent state."""
    return ["/etc/"] + list(catalog.K3S_SERVER_STATE) + list(catalog.K3S_AGENT_STATE)


def process_exec(labels):
    return _policy("petra-process-exec", "Every program execution, as the kernel checks it (security_bprm_check).", [
        _kprobe("security_bprm_check", "Program executed", ["process-exec"],
                [{"index": 0, "type": "linux_binprm"}]),
    ], labels)


def file_integrity(labels):
    writes = {"matchArgs": [{"index": 0, "operator": "Prefix", "values": watched_paths()},
                            {"index": 1, "operator": "Mask", "values": [MAY_WRITE]}]}
    secret_reads = {"matchBinaries": [{"operator": "NotPrefix", "values": list(catalog.K3S_BINARIES)}],
                    "matchArgs": [{"index": 0, "operator": "Prefix", "values": list(catalog.K3S_SECRETS)},
                                  {"index": 1, "operator": "Mask", "values": [MAY_READ]}]}
    return _policy("petra-file-integrity",
                   "Writes to /etc and to k3s configuration and state, and reads of k3s secrets by anything but k3s.", [
                       _kprobe("security_file_permission", "File in a watched path accessed", ["file-integrity"],
                               [{"index": 0, "type": "file"}, {"index": 1, "type": "int"}], [writes, secret_reads]),
                       _kprobe("security_path_truncate", "File in a watched path truncated", ["file-integrity"],
                               [{"index": 0, "type": "path"}],
                               [{"matchArgs": [{"index": 0, "operator": "Prefix", "values": watched_paths()}]}]),
                   ], labels)


def kernel_modules(labels):
    return _policy("petra-kernel-modules", "Kernel module loads, unloads and load requests.", [
        _kprobe("security_kernel_module_request", "Kernel module requested", ["kernel-module"],
                [{"index": 0, "type": "string"}]),
        _kprobe("security_kernel_read_file", "Kernel module file read for loading", ["kernel-module"],
                [{"index": 0, "type": "file"}, {"index": 1, "type": "int"}],
                [{"matchArgs": [{"index": 1, "operator": "Equal", "values": [READING_MODULE]}]}]),
        _kprobe("do_init_module", "Kernel module loaded", ["kernel-module"], [{"index": 0, "type": "module"}]),
        _kprobe("free_module", "Kernel module unloaded", ["kernel-module"], [{"index": 0, "type": "module"}]),
    ], labels)


def tracing_policies(settings):
    return [process_exec(settings.labels), file_integrity(settings.labels), kernel_modules(settings.labels)]


def values(settings):
    return {
        "tetragon": {
            "image": {"repository": settings.image_repository("tetragon"), "tag": settings.image_tag("tetragon")},
            "enableProcessCred": True,
            "enableProcessNs": True,
            # The chart's default also denies namespace "" (host processes), cilium and kube-system: the host's
            # file-integrity and kernel-module events of Petra's TracingPolicies would never reach the export file,
            # and the compliance freshness check could fail on a healthy cluster. Only health-check execs are left out.
            "exportDenyList": EXPORT_DENY_LIST,
            "resources": resources("100m", "256Mi", "1", "1Gi"),
        },
        "tetragonOperator": {
            "image": {"repository": settings.image_repository("tetragon-operator"),
                      "tag": settings.image_tag("tetragon-operator")},
            "resources": resources("10m", "64Mi", "500m", "256Mi"),
        },
        # No stdout export sidecar (a further image): events stay in the JSON export file on the node.
        "export": {"mode": ""},
    }
