# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The sub-commands of ``petra``: each is one module's adapter with a fixed state, and the options of that module
that the sub-command uses, as flags of the same names (``signing_key`` is ``--signing-key``) and the same types,
defaults and documentation.

Options that hold secrets (``no_log`` in the argument spec) are never flags, because every user of the machine can
read a command line; they come from ``PETRA_<OPTION>`` environment variables (``PETRA_REGISTRY_PASSWORD``), and the
engine reads registry auth files (``REGISTRY_AUTH_FILE``) and AWS profiles and variables as the modules do.
"""

from __future__ import annotations

import argparse
import importlib

from ansible_collections.petra.core.plugins.module_utils.cli import summary
from ansible_collections.petra.core.plugins.module_utils.cli.docs import option_help

ENV_PREFIX = "PETRA_"
ADAPTERS = "ansible_collections.petra.core.plugins.module_utils.adapters."

REGISTRY = ("ca_file", "registry_username", "insecure_registries", "registry_timeout", "registry_retries",
            "registry_ecr", "registry_password")
AWS = ("region", "profile", "endpoint_url", "aws_ca_bundle", "validate_certs", "access_key", "secret_key",
       "session_token")
SIGNING = ("signing_key", "signing_key_content", "signing_key_password")
TRUST = ("threshold", "cosignatures", "trust_state", "trust_state_anchor", "trust_state_required", "allow_downgrade")


class Command:
    """One sub-command: ``adapter`` run with ``fixed`` parameters and the flags of ``options``; ``positional``
    names the option that may also be given as the first argument (the bundle, the spec)."""

    def __init__(self, group, name, adapter, module, fixed, options, summarise, about, example, positional=None):
        self.group = group
        self.name = name
        self.adapter_name = adapter
        self.module = module
        self.fixed = fixed
        self.options = options
        self.summarise = summarise
        self.about = about
        self.example = example
        self.positional = positional

    @property
    def adapter(self):
        """The adapter module, imported when a command needs it: the engine's imports take seconds, which
        ``petra version`` and ``petra --help`` need not wait for."""
        return importlib.import_module(ADAPTERS + self.adapter_name)

    @property
    def title(self):
        return "petra %s %s" % (self.group, self.name)

    def secret_options(self):
        return [name for name in self.options if self.adapter.ARGUMENT_SPEC[name].get("no_log")]

    def environment(self):
        return {name: ENV_PREFIX + name.upper() for name in self.secret_options()}


COMMANDS = [
    Command("bundle", "create", "bundle", "petra_bundle", {"state": "present"},
            ("spec", "definition", "base_dir", "dest", "signature", "compression_level", "force", "mode", "sbom",
             "verify_images", "scan", "base", "base_verification", "public_keys", "image_completeness", "registry")
            + SIGNING + REGISTRY + AWS,
            summary.created, "Build a signed, digest-pinned bundle from a spec.",
            "petra bundle create bundle.yaml --dest out/platform-1.4.0.tar.zst --signing-key cosign.key",
            positional="spec"),
    Command("bundle", "verify", "verify", "petra_verify", {},
            ("path", "public_keys", "signature", "registry", "review_html", "review_json") + TRUST + REGISTRY + AWS,
            summary.verified, "Verify a bundle's signatures and every entry, changing nothing.",
            "petra bundle verify platform-1.4.0.tar.zst --public-key cosign.pub", positional="path"),
    Command("bundle", "inspect", "verify", "petra_verify", {},
            ("path", "public_keys", "signature", "registry", "review_html", "review_json") + TRUST + REGISTRY + AWS,
            summary.inspected, "Verify a bundle and list what it carries (images, charts, manifests, files, signers).",
            "petra bundle inspect platform-1.4.0.tar.zst --public-key cosign.pub --review-html review.html",
            positional="path"),
    Command("bundle", "sign", "bundle", "petra_bundle", {"state": "signed"},
            ("src", "public_keys", "signature", "cosignatures", "mode", "rebuild", "spec", "definition", "base_dir",
             "sbom", "verify_images", "base", "image_completeness", "registry") + SIGNING + REGISTRY + AWS,
            summary.signed, "Verify a bundle, then add a second signature by another key (two-person rule).",
            "petra bundle sign platform-1.4.0.tar.zst --public-key builder.pub --signing-key officer.key",
            positional="src"),
    Command("bundle", "load", "bundle", "petra_bundle", {"state": "loaded"},
            ("src", "public_keys", "signature", "registry", "parallel", "registries_dest", "registries_ca_path",
             "trust_witness_reset", "kubeconfig", "kube_context", "flux_namespace", "flux_interval",
             "flux_secret_ref", "flux_cert_secret_ref", "flux_verify_secret_ref", "flux_wait", "flux_timeout")
            + TRUST + REGISTRY + AWS,
            summary.loaded, "Verify a bundle, then push its content into a registry (what is there is skipped).",
            "petra bundle load platform-1.4.0.tar.zst --public-key cosign.pub --registry registry.high.example:5000",
            positional="src"),
    Command("diode", "send", "diode", "petra_diode", {"state": "sent"},
            ("src", "signature", "directory", "max_part_size", "allowed_extensions", "parity_parts", "transport",
             "s3_bucket",
             "s3_prefix", "mapping_id", "kms_key_id", "diode_endpoint_url", "wait", "wait_timeout", "poll_interval",
             "receipt") + SIGNING + AWS,
            summary.sent, "Cut a bundle into parts and a signed index for a cross-domain transfer.",
            "petra diode send platform-1.4.0.tar.zst --directory /media/usb --signing-key cosign.key",
            positional="src"),
    Command("diode", "receive", "diode", "petra_diode", {"state": "received"},
            ("directory", "dest", "public_key", "index", "transport", "delivery_bucket", "s3_prefix", "mapping_id")
            + AWS,
            summary.received, "Prove the parts of a transfer, reassemble the bundle and verify it.",
            "petra diode receive --directory /media/usb --dest platform-1.4.0.tar.zst --public-key cosign.pub"),
]


def flag_names(name, spec):
    return ["--" + alias.replace("_", "-") for alias in [name] + list(spec.get("aliases") or [])]


def add_flags(parser, command):
    """The flags of a command's options, from the adapter's argument spec. Nothing is defaulted here: what is not
    given is left to the spec's defaults, as in a task."""
    states = {other.fixed["state"]: other.title for other in COMMANDS
              if other.module == command.module and "state" in other.fixed}
    helps = option_help(command.module, states)
    group = parser.add_argument_group("options of %s" % command.module)
    for name in command.options:
        spec = command.adapter.ARGUMENT_SPEC[name]
        if spec.get("no_log"):
            continue
        text = helps.get(name, "").replace("%", "%%")
        kind = spec.get("type", "str")
        kwargs = {"dest": name, "default": argparse.SUPPRESS, "help": text}
        if kind == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif kind == "list":
            kwargs.update(action="append", metavar=(spec.get("elements") or "str").upper())
            kwargs["help"] = text + " (repeat the flag for several)"
        else:
            kwargs["metavar"] = {"path": "PATH", "dict": "JSON", "int": "N", "float": "N"}.get(kind, "VALUE")
            if spec.get("choices"):
                kwargs["choices"] = [str(choice) for choice in spec["choices"]]
                kwargs["metavar"] = "{%s}" % ",".join(kwargs["choices"])
        if kind == "list" and spec.get("elements") == "dict":
            kwargs["metavar"] = "JSON"
        if "default" in spec and spec["default"] not in (None, [], {}) and kind != "bool":
            kwargs["help"] += " (default: %s)" % str(spec["default"]).replace("%", "%%")
        group.add_argument(*flag_names(name, spec), **kwargs)
    if command.positional:
        parser.add_argument("positional", nargs="?", default=None, metavar=command.positional.upper(),
                            help="the same as --%s" % command.positional.replace("_", "-"))


def arguments(command, namespace, environ):
    """The task arguments of a parsed command line: fixed state, given flags, the positional, secrets from the
    environment. Raises ValueError for a positional given twice."""
    args = dict(command.fixed)
    for name in command.options:
        if name in vars(namespace):
            args[name] = getattr(namespace, name)
    positional = getattr(namespace, "positional", None)
    if positional is not None:
        if command.positional in args:
            raise ValueError("%s is given twice: as an argument and as --%s" % (
                command.positional, command.positional.replace("_", "-")))
        spec = command.adapter.ARGUMENT_SPEC[command.positional]
        args[command.positional] = [positional] if spec.get("type") == "list" else positional
    for name, variable in command.environment().items():
        if environ.get(variable):
            args[name] = environ[variable]
    return args
