"""docs/architecture.md stays true to the code: every package it names exists and every package is named, the
"uses" column is what each package really imports, and the layers diagram lists every role and playbook.

The import directions themselves are contracts checked by import-linter (.importlinter, `make imports`); this test
keeps the picture a maintainer reads in step with them.
"""

from __future__ import annotations

import configparser
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
MODULE_UTILS = os.path.join(ROOT, "plugins", "module_utils")
PREFIX = "ansible_collections.petra.core.plugins.module_utils."
# Single modules every package may use (the bottom layer of .importlinter); the table states them once, not per row.
BASE_MODULES = {"errors.py", "atomic.py", "progress.py", "schema.py"}
IMPORT = re.compile(r"^\s*(?:from|import)\s+" + re.escape(PREFIX) + r"(\w+)", re.MULTILINE)


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
        return handle.read()


def packages_on_disk():
    """Package directories and single modules directly under module_utils/, as the table names them."""
    names = set()
    for entry in os.listdir(MODULE_UTILS):
        path = os.path.join(MODULE_UTILS, entry)
        if os.path.isdir(path) and any(name.endswith(".py") for name in os.listdir(path)):
            names.add(entry + "/")
        elif entry.endswith(".py"):
            names.add(entry)
    return names


def documented_table():
    """{package: set of packages in its "uses" column} from the packages table of docs/architecture.md."""
    table = {}
    for line in read("docs/architecture.md").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not re.fullmatch(r"`[\w.]+/?`", cells[0]):
            continue
        uses = set(re.findall(r"`([\w]+/|[\w]+\.py)`", cells[2]))
        table[cells[0].strip("`")] = uses
    return table


def actual_uses(package):
    """The other module_utils packages a package (or single module) imports, anywhere in its files, besides the
    base modules."""
    stem = package.rstrip("/")[:-3] if package.endswith(".py") else package.rstrip("/")
    files = [os.path.join(MODULE_UTILS, package)] if package.endswith(".py") else [
        os.path.join(directory, name) for directory, _dirs, names in os.walk(os.path.join(MODULE_UTILS, stem))
        for name in names if name.endswith(".py")]
    used = set()
    for path in files:
        with open(path, encoding="utf-8") as handle:
            for target in IMPORT.findall(handle.read()):
                if target != stem:
                    used.add(target + ("/" if os.path.isdir(os.path.join(MODULE_UTILS, target)) else ".py"))
    return used - BASE_MODULES


def test_the_table_names_every_package_and_only_packages_that_exist():
    table = documented_table()
    on_disk = packages_on_disk()
    assert sorted(set(table) - on_disk) == [], "docs/architecture.md names packages that do not exist"
    assert sorted(on_disk - set(table)) == [], "packages missing from the table in docs/architecture.md"


def test_the_uses_column_is_what_each_package_imports():
    table = documented_table()
    wrong = {}
    for package, documented in table.items():
        actual = actual_uses(package)
        if actual != documented:
            wrong[package] = {"imports but not documented": sorted(actual - documented),
                              "documented but not imported": sorted(documented - actual)}
    assert not wrong, wrong


def test_the_uses_column_follows_the_import_contract_layers():
    """A package may only use packages of lower layers: the same rule import-linter enforces, applied to the doc."""
    parser = configparser.ConfigParser()
    parser.read(os.path.join(ROOT, ".importlinter"))
    layers = [line.strip() for line in parser["importlinter:contract:layers"]["layers"].splitlines() if line.strip()]
    rank = {}
    for position, line in enumerate(layers):
        for name in line.split("|"):
            rank[name.strip()] = position
    for package, uses in documented_table().items():
        own = package.rstrip("/")[:-3] if package.endswith(".py") else package.rstrip("/")
        assert own in rank, "%s is in no layer of .importlinter" % package
        for used in uses:
            target = used.rstrip("/")[:-3] if used.endswith(".py") else used.rstrip("/")
            assert rank[target] > rank[own], "%s uses %s, which is not in a lower layer" % (package, used)


def test_the_layers_diagram_lists_every_role_and_playbook():
    text = read("docs/architecture.md")
    diagram = text.split("## Layers", 1)[1].split("```", 2)[1]
    roles = sorted(name for name in os.listdir(os.path.join(ROOT, "roles"))
                   if os.path.isdir(os.path.join(ROOT, "roles", name)))
    playbooks = sorted(name for name in os.listdir(os.path.join(ROOT, "playbooks")) if name.endswith(".yml"))
    missing = [name for name in roles + playbooks if not re.search(r"\b%s\b" % re.escape(name), diagram)]
    assert not missing, "the layers diagram of docs/architecture.md does not list %s" % ", ".join(missing)


def test_no_module_utils_file_is_long_without_a_reason():
    """A file over 400 lines does several jobs unless its docstring says why it is one."""
    long_files = []
    for directory, _dirs, names in os.walk(MODULE_UTILS):
        for name in names:
            if not name.endswith(".py"):
                continue
            path = os.path.join(directory, name)
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
            if text.count("\n") > 400 and "One file because" not in text[:3000]:
                long_files.append("%s (%d lines)" % (os.path.relpath(path, ROOT), text.count("\n")))
    assert not long_files, "split these by job, or say at the top why they are one ('One file because ...'): " + \
        ", ".join(sorted(long_files))
