# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The ``petra`` command: the modules' adapters, run the way their action plugins run them (adapters/invoke.py:
ansible-core's argument validation, secrets masked), for people at a terminal.

Exit codes: 0 done, 1 refused or failed (the module's message and hint on stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ansible_collections.petra.core.plugins.module_utils.adapters.invoke import adapter_validator, checked_run
from ansible_collections.petra.core.plugins.module_utils.cli import version as petra_version
from ansible_collections.petra.core.plugins.module_utils.cli.commands import COMMANDS, add_flags, arguments
from ansible_collections.petra.core.plugins.module_utils.cli.display import progress_display

DONE, FAILED, USAGE = 0, 1, 2
GROUPS = {"bundle": "build, verify, co-sign, inspect and load bundles",
          "diode": "send and receive bundles as parts across a cross-domain solution"}


class UsageError(Exception):
    pass


class Exit(Exception):
    def __init__(self, status):
        super().__init__(status)
        self.status = status


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors and --help raised rather than exiting, so that main() returns the exit code."""

    def error(self, message):
        raise UsageError("%s: error: %s" % (self.prog, message))

    def exit(self, status=0, message=None):
        if message:
            sys.stderr.write(message)
        raise Exit(status)


def common_flags():
    parent = argparse.ArgumentParser(add_help=False)
    output = parent.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="print the module's result as JSON on stdout, and nothing "
                        "else on stdout")
    output.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    output.add_argument("--check", action="store_true", help="check mode: say what would change, change nothing")
    return parent


def selected(argv):
    """(group, command) named on the command line, as far as it names them: only that command's flags are built."""
    words = [word for word in argv if not word.startswith("-")][:2]
    return tuple(words + [None] * (2 - len(words)))


def build_parser(argv=()):
    chosen = selected(argv)
    parser = Parser(prog="petra", description="Petra: signed, digest-pinned bundles for air-gapped Kubernetes, "
                    "on the same engine as the petra.core Ansible modules.",
                    epilog="Run 'petra <group> <command> --help' for a command's options and an example.")
    groups = parser.add_subparsers(dest="group", metavar="{bundle,diode,version}", parser_class=Parser)
    subparsers = {}
    for name, text in GROUPS.items():
        group = groups.add_parser(name, help=text, description=text)
        subparsers[name] = group.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    parent = common_flags()
    for command in COMMANDS:
        epilog = "example:\n  %s" % command.example
        environment = command.environment() if (command.group, command.name) == chosen else {}
        if environment:
            epilog += "\n\nsecrets are read from the environment, never from flags:\n" + "\n".join(
                "  %-28s %s" % (variable, name) for name, variable in environment.items())
        sub = subparsers[command.group].add_parser(
            command.name, parents=[parent], help=command.about, description=command.about, epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.set_defaults(command_object=command)
        if (command.group, command.name) == chosen:
            add_flags(sub, command)
    version = groups.add_parser("version", help="print the versions of Petra and what it runs on",
                                description="Print the versions of Petra, ansible-core and Python.",
                                epilog="example:\n  petra version --json",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    version.add_argument("--json", action="store_true", help="as JSON")
    return parser


def run_command(command, args, check_mode, quiet, stream):
    """The module's result for these task arguments (masked like a task's), with progress shown on ``stream``."""
    def work(params):
        with progress_display(stream, quiet) as progress:
            return command.adapter.run(params, check_mode, progress=progress)
    return checked_run(command.adapter.ARGUMENT_SPEC, adapter_validator(command.adapter), args, work)


def show_version(as_json, out):
    info = petra_version.versions()
    if as_json:
        out.write(json.dumps(info, indent=2, sort_keys=True) + "\n")
    else:
        out.write("petra %(petra)s (collection petra.core), ansible-core %(ansible_core)s, Python %(python)s\n" % info)
    return DONE


def main(argv=None, environ=None, out=None, err=None):
    environ = os.environ if environ is None else environ
    out = out or sys.stdout
    err = err or sys.stderr
    argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    parser = build_parser(argv)
    try:
        namespace = parser.parse_args(argv)
        if namespace.group == "version":
            return show_version(namespace.json, out)
        command = getattr(namespace, "command_object", None)
        if command is None:
            raise UsageError(parser.format_usage().rstrip() + "\npetra: error: name a command" +
                             (" of 'petra %s'" % namespace.group if namespace.group else ""))
        args = arguments(command, namespace, environ)
        validation = adapter_validator(command.adapter).validate(args)
        if validation.error_messages:
            raise UsageError("%s: error: %s\n(option names are flags: signing_key is --signing-key; see '%s --help')"
                             % (command.title, "; ".join(validation.error_messages), command.title))
    except Exit as exc:
        return exc.status
    except UsageError as exc:
        err.write("%s\n" % exc)
        return USAGE
    except ValueError as exc:
        err.write("petra: error: %s\n" % exc)
        return USAGE
    result = run_command(command, args, namespace.check, namespace.quiet, err)
    if namespace.json:
        out.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    if result.get("failed"):
        err.write("%s: %s\n" % (command.title, result.get("msg", "failed")))
        return FAILED
    if not namespace.json:
        out.write("\n".join(command.summarise(result, namespace.check)) + "\n")
        for warning in result.get("warnings") or []:
            err.write("%s: warning: %s\n" % (command.title, warning))
    return DONE


if __name__ == "__main__":
    raise SystemExit(main())
