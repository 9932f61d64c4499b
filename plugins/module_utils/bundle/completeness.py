# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""No image left behind: at planning, every image the bundle's manifest sets and charts reference must be one the
bundle carries, or the air-gapped cluster would fail to pull it.

``fail`` (the default) refuses the build naming each missing image and why it is needed; ``warn`` builds and
reports them as warnings; ``add`` resolves each missing image in its source registry and adds it pinned by digest.
A reference that cannot be known (a template expression) or, in ``add`` mode, cannot be resolved is "maybe":
reported, never added, never a refusal. The discovery itself is imagerefs/.
"""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError
from ansible_collections.petra.core.plugins.module_utils.imagerefs import charts as chart_files
from ansible_collections.petra.core.plugins.module_utils.imagerefs import discover, match, objects
from ansible_collections.petra.core.plugins.module_utils.imagerefs.errors import ImageRefsError
from ansible_collections.petra.core.plugins.module_utils.oci.blobs import Blob
from ansible_collections.petra.core.plugins.module_utils.oci.errors import InvalidReference, OCIError
from ansible_collections.petra.core.plugins.module_utils.oci.reference import ImageReference

MODES = ("fail", "warn", "add")
MAX_CHART = 16 << 20


def references(spec, plan):
    """Every objects.Reference of the spec's manifest sets and of the plan's charts."""
    found, installers = [], []
    for item in spec.manifests:
        try:
            refs, found_installers = objects.scan(objects.read_set(item["path"]), "manifests/%s" % item["name"])
        except ImageRefsError as exc:
            raise BundleError(exc.message, hint=exc.hint)
        found += refs
        installers += found_installers
    installed = set()
    for record in plan.charts:
        content = _chart_content(plan, record)
        mine = [installer for installer in installers if installer.chart in (record["name"], content.name)]
        installed.update(id(installer) for installer in mine)
        found += discover.chart_references(content, mine, "chart %s" % record["name"])
    for installer in installers:
        if id(installer) not in installed:
            found += discover.installer_references(installer)
    return found


def _chart_content(plan, record):
    """The packaged chart of a planned chart: from its file, or read once from its registry and kept in the plan so
    the writer does not fetch it again."""
    blob = plan.blobs.get(record.get("chartDigest"))
    where = record["source"]
    if blob is None:
        raise BundleError("the chart %s has no chart layer to read its images from" % where,
                          hint="Check that the chart was pushed with 'helm push'")
    source = blob.data if blob.data is not None else blob.path
    if source is None:
        client, repository = blob.remote
        try:
            source = client.read_blob(repository, blob.digest, blob.size, MAX_CHART)
        except OCIError as exc:
            raise BundleError("cannot read the chart %s to find its images: %s" % (where, exc.message), hint=exc.hint)
        plan.blobs[blob.digest] = Blob(blob.digest, blob.size, blob.media_type, data=source)
    try:
        return chart_files.read_chart(source, where)
    except ImageRefsError as exc:
        raise BundleError(exc.message, hint=exc.hint)


def _source_name(text, high_side=None):
    """The connected-side reference of a reference written for the high side: below the high-side registry and
    prefix the build was told (the load step's ``<registry>[/<prefix>]/<source host>/<path>``), the source host and
    path; any other reference as written. A dotted path component is no host: ``ghcr.io/org/app.server/img`` is
    resolved at ghcr.io, never at a host named by the chart's content."""
    ref = ImageReference.parse(text)
    below = match.high_side_name(high_side, ref.name)
    if below is None or "/" not in below:
        return ref
    host, path = below.split("/", 1)
    return ImageReference.parse(str(ImageReference(host, path, ref.tag, ref.digest)))


def check(spec, plan, mode, add_image, pool, high_side=None):
    """The completeness report of a plan; refuses in ``fail`` mode when an image is missing. In ``add`` mode,
    ``add_image(reference text)`` puts a missing image, pinned by digest, into the plan. ``high_side``
    (``host[:port][/prefix]``, the load target) is the registry whose names stand for the carried images."""
    if mode not in MODES:
        raise BundleError("image_completeness %r is not one of %s" % (mode, ", ".join(MODES)))
    found = references(spec, plan)

    def carried():
        return match.Carried(plan.images, plan.charts, plan.manifests, spec.name, spec.version, high_side)

    result = match.report(found, carried())
    added = []
    if mode == "add":
        unresolved = {}
        for item in result["missing"]:
            if item["kind"] != "image":
                continue
            try:
                pinned = _pin(item["ref"], pool, high_side)
            except (OCIError, InvalidReference) as exc:
                unresolved[item["ref"]] = "cannot be resolved in the source registry: %s" % exc.message
                continue
            add_image(pinned)
            added.append({"ref": item["ref"], "added": pinned})
        result = match.report(found, carried())
        for item in result["missing"]:
            if item["ref"] in unresolved:
                item.update(status=match.MAYBE, reason=unresolved[item["ref"]])
        result = {"discovered": result["discovered"],
                  "missing": [item for item in result["missing"] if item["status"] == match.MISSING],
                  "maybe": [item for item in result["discovered"] if item["status"] == match.MAYBE]}
    result.update(mode=mode, added=added)
    if result["missing"] and mode == "fail":
        raise BundleError(
            "the bundle lacks %d image(s) or artifact(s) its manifests and charts reference: %s" % (
                len(result["missing"]), "; ".join(match.describe(item) for item in result["missing"])),
            hint="Add them to the bundle spec, or set image_completeness to 'add' (added pinned by digest) or 'warn'",
            image_completeness=result)
    return result


def _pin(text, pool, high_side=None):
    """``<name>:<tag>@<digest>`` of a reference, resolved in its source registry."""
    ref = _source_name(text, high_side)
    client = pool.for_host(ref.api_host)
    _data, _media_type, digest = client.get_manifest(ref.repository, ref.digest or ref.tag)
    return str(ref.with_digest(digest))


def warnings(result):
    """The warnings a build reports: missing items in ``warn`` mode, and every maybe."""
    lines = ["image completeness: missing %s" % match.describe(item) for item in result["missing"]]
    lines += ["image completeness: maybe %s" % match.describe(item) for item in result["maybe"]]
    return lines
