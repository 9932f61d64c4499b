# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""The collection's code as a Python package: this directory is ``ansible_collections.petra.core``, and every
directory under plugins/ that holds Python is one of its packages, with its other files (the Diode API model, the
Rego policies) as package data. Metadata is in pyproject.toml; what it marks dynamic is read here from the files
that state it for the collection."""

from __future__ import annotations

import json
import os
import re

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))
PACKAGE = "ansible_collections.petra.core"


def read(name):
    path = os.path.join(ROOT, name)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def version():
    """galaxy.yml in a checkout, MANIFEST.json in a built collection."""
    text = read("galaxy.yml")
    if text is not None:
        return re.search(r"^version:\s*['\"]?([^'\"\s]+)", text, re.MULTILINE).group(1)
    return json.loads(read("MANIFEST.json"))["collection_info"]["version"]


def dependencies():
    """requirements.txt, and the ansible-core the collection requires (its ArgumentSpecValidator checks the flags)."""
    lines = [line.split("#", 1)[0].strip() for line in read("requirements.txt").splitlines()]
    requires_ansible = re.search(r"^requires_ansible:\s*['\"]?([^'\"\n]+)", read("meta/runtime.yml"), re.MULTILINE)
    return [line for line in lines if line] + ["ansible-core" + requires_ansible.group(1).strip()]


def packages_and_data():
    packages, data = [], {}
    for directory, names, files in os.walk(os.path.join(ROOT, "plugins")):
        names[:] = sorted(name for name in names if name != "__pycache__")
        if any(name.endswith(".py") for name in files):
            packages.append(os.path.relpath(directory, ROOT).replace(os.sep, "."))
    for directory, names, files in os.walk(os.path.join(ROOT, "plugins")):
        names[:] = [name for name in names if name != "__pycache__"]
        for name in files:
            if name.endswith((".py", ".pyc")):
                continue
            relative = os.path.relpath(os.path.join(directory, name), ROOT).replace(os.sep, "/")
            owner = max((package for package in packages if relative.startswith(package.replace(".", "/") + "/")),
                        key=len)
            data.setdefault(PACKAGE + "." + owner, []).append(relative[len(owner) + 1:])
    return [PACKAGE + "." + package for package in packages], data


PACKAGES, PACKAGE_DATA = packages_and_data()

setup(
    version=version(),
    install_requires=dependencies(),
    package_dir={PACKAGE: "."},
    packages=PACKAGES,
    package_data=PACKAGE_DATA,
    include_package_data=False,
    zip_safe=False,
)
