"""Validation of objects against the addons' CustomResourceDefinitions in tests/data/crds/."""

from __future__ import annotations

import glob
import os

import jsonschema
import yaml

CRD_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "data", "crds")


def _schemas():
    schemas = {}
    for path in glob.glob(os.path.join(CRD_DIR, "*.yaml")):
        with open(path) as handle:
            for document in yaml.safe_load_all(handle):
                if not document or document.get("kind") != "CustomResourceDefinition":
                    continue
                spec = document["spec"]
                for version in spec["versions"]:
                    key = ("%s/%s" % (spec["group"], version["name"]), spec["names"]["kind"])
                    schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


SCHEMAS = _schemas()


def validate(obj):
    """Raise jsonschema.ValidationError when obj does not fit its CRD; KeyError when no CRD is known for it."""
    schema = SCHEMAS[(obj["apiVersion"], obj["kind"])]
    jsonschema.Draft7Validator(schema).validate(obj)
