"""The repository stands alone: no tracked file refers to a path outside it.

A user's clone, the built collection and the execution environment have nothing beside the repository, so a test,
role, Molecule scenario or Makefile line that reads ``../shared`` (or any ``..`` chain that climbs out of the tree)
works on a developer's machine and fails everywhere else.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
SKIP_DIRS = {".git", ".venv", ".build", ".tmp", "demo-out", "bench-out", "__pycache__", ".pytest_cache"}
BINARY_SUFFIXES = (".tgz", ".gz", ".zst", ".png", ".tar", ".squashfs", ".raw", ".der")

# "../x/y" in any text, and os.path.join(..., "..", "..", "x") in Python.
SLASH_CHAIN = re.compile(r"(?<![\w.])((?:\.\./)+)([\w.@{}$-]+)")
JOIN_CHAIN = re.compile(r"""((?:["']\.\.["']\s*,\s*)+)["']([\w.-]+)["']""")
# Places no clone has, whatever the chain looks like.
# Deliberate ones, each with its reason: hostile inputs the product must refuse, and a generated file.
ALLOWED = {
    ("changelogs/config.yaml", "../CHANGELOG.rst"): "antsibull-changelog writes CHANGELOG.rst at the root",
    ("tests/unit/test_spec.py", "../f.bin"): "a spec path that must be refused",
    ("tests/unit/test_verify_tampering.py", "../escape"): "an archive entry that must be refused",
    ("tests/integration/test_diode_transport.py", "../escaped.tar"): "a part name that must be refused",
    ("tests/unit/test_diode_parts.py", "../outside.tar"): "a part name that must be refused",
    ("tests/unit/test_diode_parts.py", '"dotdot": ".."'): "a part name that must be refused",
}
FORBIDDEN = re.compile(r"\.\./shared\b|/work/shared\b|/work/main\b|[\"']shared[\"']\s*,\s*[\"'](?:schemas|vectors|reference)")


def tracked_files():
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                                capture_output=True, check=True, timeout=60).stdout.decode().split("\0")
        return sorted(name for name in listed if name and os.path.isfile(os.path.join(ROOT, name)))
    except (OSError, subprocess.CalledProcessError):
        found = []
        for directory, dirs, files in os.walk(ROOT):
            dirs[:] = [name for name in dirs if name not in SKIP_DIRS]
            found.extend(os.path.relpath(os.path.join(directory, name), ROOT) for name in files)
        return sorted(found)


def _inside(path):
    return os.path.commonpath([ROOT, path]) == ROOT


def escapes(relative_file, ups, first):
    """True when a chain of ``ups`` parent steps then ``first`` leaves the tree from every plausible base.

    The base of a relative path depends on who reads it (the file's directory, a role or scenario directory, the
    working directory), so the chain is accepted when, from the file's directory or any directory above it inside
    the repository, it lands on something that exists in the repository.
    """
    base = os.path.dirname(os.path.join(ROOT, relative_file))
    while _inside(base):
        target = os.path.normpath(os.path.join(base, *([".."] * ups)))
        if _inside(target) and (first.startswith(("{", "$")) or os.path.exists(os.path.join(target, first))):
            return False
        if base == ROOT:
            break
        base = os.path.dirname(base)
    return True


def outside_references(relative_file, text):
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        if any(name == relative_file and snippet in line for (name, snippet) in ALLOWED):
            continue
        if FORBIDDEN.search(line):
            problems.append("%s:%d: %s" % (relative_file, number, line.strip()))
            continue
        for match in SLASH_CHAIN.finditer(line):
            if escapes(relative_file, match.group(1).count("../"), match.group(2)):
                problems.append("%s:%d: %s" % (relative_file, number, line.strip()))
                break
        else:
            for match in JOIN_CHAIN.finditer(line):
                if escapes(relative_file, match.group(1).count(".."), match.group(2)):
                    problems.append("%s:%d: %s" % (relative_file, number, line.strip()))
                    break
    return problems


def test_no_tracked_file_refers_outside_the_repository():
    problems = []
    for name in tracked_files():
        if name.endswith(BINARY_SUFFIXES) or name == "tests/unit/test_repository_stands_alone.py":
            continue
        try:
            with open(os.path.join(ROOT, name), encoding="utf-8") as handle:
                text = handle.read()
        except UnicodeDecodeError:
            continue
        problems.extend(outside_references(name, text))
    assert not problems, "files refer to paths outside the repository (copy the data in, see " \
                         "tests/data/SOURCES.md):\n" + "\n".join(problems)


# The folder beside the repository that only the team's machines have, spelt out here only as test input (the
# literal would itself be a reference the repository-wide scans report).
BESIDE = "sha" + "red"


@pytest.mark.parametrize("relative_file, line", [
    ("roles/platform/molecule/default/converge.yml",
     "- \"{{ lookup('ansible.builtin.env', 'MOLECULE_PROJECT_DIRECTORY') }}/../../../%s/schemas/crds\"" % BESIDE),
    ("tests/unit/test_keys.py", 'VECTORS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "%s", "x")' % BESIDE),
    ("docs/platform.md", "The tests use `../%s/schemas/crds/`." % BESIDE),
    ("Makefile", "\tcp ../../../../etc/thing ."),
    ("tests/conftest.py", 'DATA = os.path.join(HERE, "..", "..", "elsewhere")'),
])
def test_the_check_finds_references_that_climb_out(relative_file, line):
    assert outside_references(relative_file, line)


@pytest.mark.parametrize("relative_file, line", [
    ("roles/platform/molecule/default/converge.yml",
     "- \"{{ lookup('ansible.builtin.env', 'MOLECULE_PROJECT_DIRECTORY') }}/../../tests/data/crds\""),
    ("tests/support/crds.py", 'CRD_DIR = os.path.join(HERE, "..", "data", "crds")'),
    ("docs/platform.md", "See [the spec](../docs/bundle-spec.md)."),
])
def test_the_check_accepts_paths_inside(relative_file, line):
    assert not outside_references(relative_file, line)


def test_the_copied_test_data_is_listed_with_its_source():
    with open(os.path.join(ROOT, "tests", "data", "SOURCES.md"), encoding="utf-8") as handle:
        sources = handle.read()
    for folder in ("crds", "cosign"):
        for name in sorted(os.listdir(os.path.join(ROOT, "tests", "data", folder))):
            assert "`%s`" % name in sources, "tests/data/%s/%s has no row in tests/data/SOURCES.md" % (folder, name)
