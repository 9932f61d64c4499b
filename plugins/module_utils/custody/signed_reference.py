# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The repository a legacy cosign signature was made for, and the ``verify_images`` check of it.

A simple-signing payload names the image's repository in ``critical.identity.docker-reference`` beside the digest.
Cosign binds a signature by the digest alone, so a signature made for ``registry.example/team/app`` verifies for
every repository that holds the same bytes: signed by the right key, it can still vouch for an image the signer
never published under that name. A rule compares the signed reference with the repository the image is taken
from; mirrors keep the upstream name in the signature, which ``path`` (same repository path, any registry host)
and ``docker_reference_globs`` (repositories listed by pattern) allow for. Cosign v3 statements carry no
reference: their subject is the digest only, so there is nothing to record or compare.
"""

from __future__ import annotations

import fnmatch

from ansible_collections.petra.core.plugins.module_utils.oci.errors import InvalidReference
from ansible_collections.petra.core.plugins.module_utils.oci.reference import DEFAULT_REGISTRY, ImageReference

MODES = ("repository", "path", "ignore")
DEFAULT_MODE = "repository"
# What the signed reference was found to be, recorded whatever the mode so an audit sees a mismatch ignored on
# purpose: the image's own repository, the same path on another registry, a listed pattern, or none of these.
MATCHES = ("repository", "path", "glob", "none")
# Cosign (go-containerregistry) writes Docker Hub as index.docker.io; docker and skopeo spell it docker.io.
_DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")


def normalised_name(text):
    """``registry/repository`` of a reference, Docker Hub's host names folded into docker.io (tag and digest
    dropped: the digest claim is checked on its own); None when ``text`` is not an image reference."""
    if not isinstance(text, str):
        return None
    try:
        ref = ImageReference.parse(text)
    except InvalidReference:
        return None
    if ref.registry not in _DOCKER_HUB:
        return ref.name
    path = ref.repository if "/" in ref.repository else "library/" + ref.repository
    return "%s/%s" % (DEFAULT_REGISTRY, path)


def _path(name):
    return name.split("/", 1)[1]


def relation(signed, ref, globs=()):
    """How the signed reference relates to the image ``ref`` (an ImageReference): one of MATCHES."""
    signed_name = normalised_name(signed)
    if signed_name is None:
        return "none"
    image_name = normalised_name(ref.name)
    if signed_name == image_name:
        return "repository"
    # A listed pattern before the path: a rule that lists the upstream name accepts it in any mode.
    if any(fnmatch.fnmatchcase(candidate, glob) for glob in globs for candidate in (signed, signed_name)):
        return "glob"
    if _path(signed_name) == _path(image_name):
        return "path"
    return "none"


def accepted(mode, found):
    """Whether a signature whose reference relates as ``found`` (see relation) satisfies a rule with ``mode``."""
    return mode == "ignore" or found in ("repository", "glob") or (mode == "path" and found == "path")


def judge(mode, globs, signed, ref):
    """(record fields for ``sourceVerification``, refusal text or None) for a verified legacy signature."""
    found = relation(signed, ref, globs)
    record = {"dockerReferenceMatch": found}
    if isinstance(signed, str):
        record["dockerReference"] = signed
    if accepted(mode, found):
        return record, None
    if signed is None:
        named = "names no docker-reference"
    elif normalised_name(signed) is None:
        named = "names docker-reference %r, which is not an image reference" % (signed,)
    else:
        named = "was made for %s" % signed
    wanted = "this repository" if mode == "repository" else "this repository path on any registry"
    if globs:
        wanted += " or one matching %s" % ", ".join(globs)
    return record, "%s, not for %s (docker_reference: %s wants %s)" % (named, ref.name, mode, wanted)
