# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Image references in Helm values, in the shapes charts commonly use, nested anywhere:

- ``image: "repo:tag"`` (a whole reference in one string);
- ``{image: repo, tag: t}`` (the Flux community chart's controllers);
- ``{repository, tag}``, ``{registry, repository, tag, digest}``, with ``version`` or ``release`` for the tag
  (policy-controller, Gatekeeper) and a ``suffix`` appended to the repository (Cilium);
- an empty tag stands for the chart's ``appVersion``, as most charts' templates default it.

Values are not rendered: a component whose mapping says ``enabled: false`` is not deployed, so its images are
reported as disabled, not needed; a value holding a template expression (``{{ ... }}``) cannot be known and is
"maybe".
"""

from __future__ import annotations

TAG_KEYS = ("tag", "version", "release")
IMAGE_KEYS = ("repository", "registry", "digest", "image") + TAG_KEYS

# Where a chart's templates add to what its values say, for charts Petra installs: (chart, values path) -> how the
# repository becomes the image name. Cilium's operator template writes "<repository>-<cloud><suffix>", and the
# platform deploys it with the generic cloud.
TEMPLATE_RULES = {
    ("cilium", "operator.image"): lambda repository, suffix: "%s-generic%s" % (repository, suffix),
}


class ValueImage:
    """One image found in values: the reference text (or None when it cannot be known), where it is, and why it
    is not needed (``disabled``) or not certain (``maybe``)."""

    __slots__ = ("text", "path", "disabled", "maybe")

    def __init__(self, text, path, disabled=None, maybe=None):
        self.text = text
        self.path = path
        self.disabled = disabled
        self.maybe = maybe


def _join(path, key):
    return "%s.%s" % (path, key) if path else str(key)


def _templated(*values):
    return any(isinstance(value, str) and "{{" in value for value in values)


def _text(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) else None


def _tag_of(mapping):
    for key in TAG_KEYS:
        value = _text(mapping.get(key))
        if value is not None:
            return value
    return None


def _compose(registry, repository, tag, digest, app_version):
    """(reference text, maybe reason)."""
    if _templated(registry, repository, tag, digest):
        return None, "the value is a template expression, known only when the chart is rendered"
    name = "%s/%s" % (registry.rstrip("/"), repository) if registry else repository
    if digest:
        return "%s@%s" % (name if not tag else "%s:%s" % (name, tag), digest), None
    if not tag:
        if not app_version:
            return None, "no tag is given and the chart's appVersion is unknown"
        tag = str(app_version)
    return "%s:%s" % (name, tag), None


def _image_mapping(mapping, path, chart, app_version):
    """[(values path, text, maybe)] when the mapping is an image in one of the known shapes, else None. A second
    repository beside the first (Gatekeeper's ``crdRepository``) shares its tag."""
    repository = mapping.get("repository")
    if isinstance(repository, str) and repository:
        if not any(key in mapping for key in ("registry", "digest") + TAG_KEYS) and not path.endswith("image"):
            return None
        suffix = mapping.get("suffix") if isinstance(mapping.get("suffix"), str) else ""
        rule = TEMPLATE_RULES.get((chart, path))
        digest = mapping.get("digest") if mapping.get("useDigest", True) is not False else None
        registry, tag = _text(mapping.get("registry")), _tag_of(mapping)
        found = [(path, ) + _compose(registry, rule(repository, suffix) if rule else repository + suffix, tag,
                                     _text(digest), app_version)]
        for key, value in mapping.items():
            if key != "repository" and key.endswith("Repository") and isinstance(value, str) and value:
                found.append((_join(path, key), ) + _compose(registry, value, tag, None, app_version))
        return found
    image = mapping.get("image")
    if isinstance(image, str) and image and _tag_of(mapping) is not None and ":" not in image.rsplit("/", 1)[-1]:
        text, maybe = _compose(None, image, _tag_of(mapping), _text(mapping.get("digest")), app_version)
        return [(_join(path, "image"), text, maybe)]
    return None


def find(values, chart=None, app_version=None, path=""):
    """Every ValueImage in a values tree, in document order."""
    found = []
    _walk(values, path, chart, app_version, None, found)
    return found


def _walk(node, path, chart, app_version, disabled, found):
    if isinstance(node, list):
        for index, item in enumerate(node):
            _walk(item, "%s[%d]" % (path, index), chart, app_version, disabled, found)
        return
    if not isinstance(node, dict):
        return
    if node.get("enabled") is False and disabled is None:
        disabled = "%s is false" % _join(path, "enabled")
    shaped = _image_mapping(node, path, chart, app_version)
    if shaped is not None:
        found.extend(ValueImage(text, where, disabled, maybe) for where, text, maybe in shaped)
        return
    for key, value in node.items():
        child = _join(path, key)
        if key == "image" and isinstance(value, str) and value:
            if _templated(value):
                found.append(ValueImage(None, child, disabled,
                                        "the value is a template expression, known only when the chart is rendered"))
            else:
                found.append(ValueImage(value, child, disabled))
            continue
        _walk(value, child, chart, app_version, disabled, found)


def merged(defaults, overrides):
    """Helm's value coalescing: mappings merge key by key, anything else is replaced; null deletes a default."""
    if not isinstance(defaults, dict) or not isinstance(overrides, dict):
        return overrides
    result = dict(defaults)
    for key, value in overrides.items():
        if value is None:
            result.pop(key, None)
        elif key in result:
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result
