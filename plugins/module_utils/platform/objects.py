# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Kubernetes objects as plain dicts, with their keys in the order people read them."""

from __future__ import annotations


def k8s_object(api_version, kind, name, namespace=None, labels=None, annotations=None, **body):
    """``{apiVersion, kind, metadata, <body>...}``; body keys keep the order given."""
    metadata = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)
    document = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
    document.update(body)
    return document


def deep_merge(base, override):
    """A copy of base with override merged in: mappings merge key by key, anything else is replaced."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = value
    return result


def resources(cpu_request, memory_request, cpu_limit, memory_limit):
    return {"requests": {"cpu": cpu_request, "memory": memory_request},
            "limits": {"cpu": cpu_limit, "memory": memory_limit}}
