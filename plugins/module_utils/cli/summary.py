# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""What ``petra`` prints when it is done, for people: a few lines from the module's result saying what was done,
what was skipped because it was already in place, and where the files are. ``--json`` prints the result itself.
"""

from __future__ import annotations

from ansible_collections.petra.core.plugins.module_utils.progress import human_bytes


def _short(digest):
    return (digest or "")[:19]


def _plural(count, word):
    if count == 1:
        return "%d %s" % (count, word)
    return "%d %s" % (count, word[:-1] + "ies" if word.endswith("y") else word + "s")


def _check(check):
    return " (check mode: nothing was written)" if check else ""


def created(result, check=False):
    what = "%s %s" % (result["name"], result["version"])
    counts = ", ".join([_plural(len(result["images"]), "image"), _plural(len(result["charts"]), "chart"),
                        _plural(len(result["manifests"]), "manifest set"), _plural(len(result["files"]), "file")])
    if not result["changed"]:
        head = "skipped: %s already holds bundle %s, signed by %s (nothing rewritten)" % (
            result["path"], what, result["key_id"])
    elif result.get("sha256") is None:
        head = "would create bundle %s at %s (check mode: nothing was written)" % (what, result["path"])
    else:
        head = "created bundle %s: %s (%s), signed by %s" % (
            what, result["path"], human_bytes(result["size"]), result["key_id"])
    lines = [head, "  %s; %s in %s of content" % (counts, _plural(result["blob_count"], "blob"),
                                                  human_bytes(result["content_size"]))]
    if result.get("sha256"):
        lines.append("  sha256 %s" % result["sha256"])
    lines.append("  signature: %s" % result["signature"])
    return lines


def _signers(result):
    return "signed by %s (%s, %d required)" % (", ".join(result["signers"]), _plural(len(result["signers"]), "signer"),
                                               result["threshold"])


def verified(result, check=False):  # pylint: disable=unused-argument
    """Verification writes nothing, in check mode or not."""
    metadata = result["metadata"]
    lines = ["verified: %s is bundle %s %s, %s" % (result["path"], metadata["name"], metadata["version"],
                                                   _signers(result)),
             "  %s and %s checked; sha256 %s" % (_plural(result["entries_checked"], "entry"),
                                                 human_bytes(result["bytes_checked"]), result["sha256"])]
    reproduced = [item["key_id"] for item in result.get("signer_details") or [] if item.get("reproduced")]
    if reproduced:
        lines.append("  reproduced by %s: rebuilt from the spec and sources, byte-identical" % ", ".join(reproduced))
    if metadata.get("expires"):
        lines.append("  expires %s" % metadata["expires"])
    if result.get("trust_state"):
        lines.append("  trust state: admitted (nothing recorded; a load records it)")
    return lines


def inspected(result, check=False):
    metadata = result["metadata"]
    lines = verified(result, check)
    lines += ["", "bundle     %s %s" % (metadata["name"], metadata["version"]),
              "created    %s" % metadata.get("created"),
              "expires    %s" % (metadata.get("expires") or "never"),
              "size       %s (%s in %s)" % (human_bytes(result["size"]), human_bytes(result["bytes_checked"]),
                                            _plural(metadata["entry_count"], "entry"))]
    for image in metadata.get("images") or []:
        verification = image.get("sourceVerification") or {}
        source = " source signature: %s" % verification.get("method") if verification else ""
        lines.append("image      %s@%s%s" % (image["ref"].split("@")[0], image["digest"], source))
    for kind, word in (("charts", "chart"), ("manifests", "manifests"), ("files", "file")):
        for item in metadata.get(kind) or []:
            version = (" " + item["version"]) if item.get("version") else ""
            lines.append("%-10s %s%s %s" % (word, item["name"], version, _short(item.get("digest"))))
    if metadata.get("sbom"):
        lines.append("sbom       %s" % metadata["sbom"]["name"])
    return lines


def signed(result, check=False):
    what = "%s %s" % (result["name"], result["version"])
    if result["already_signed"]:
        head = "skipped: key %s has already signed %s (%s)" % (result["key_id"], what, result["already_signed"])
    else:
        head = "co-signed %s with key %s%s" % (what, result["key_id"], _check(check))
    lines = [head, "  bundle %s (primary signer %s)" % (result["path"], result["primary_key_id"]),
             "  co-signatures: %s (%s)" % (result["cosignatures"], ", ".join(result["cosignature_keys"]))]
    if result.get("reproduced"):
        lines.append("  reproduced: rebuilt from the spec and sources on this host, byte-identical (sha256 %s)" %
                     result["sha256"])
    return lines


def loaded(result, check=False):
    blobs, size = result["blobs"], result["bytes"]
    pushed = [image for image in result["images"] if image["pushed"]]
    verb = "would load" if check else "loaded"
    if not result["changed"]:
        head = "skipped: %s %s is already in %s, nothing pushed" % (result["name"], result["version"],
                                                                    result["registry"])
    else:
        head = "%s %s %s into %s%s" % (verb, result["name"], result["version"], result["registry"], _check(check))
    lines = [head,
             "  %s (%d pushed, %d already there), %s" % (
                 _plural(len(result["images"]), "image"), len(pushed), len(result["images"]) - len(pushed),
                 _plural(len(result["artifacts"]), "artifact")),
             "  blobs: %d sent (%s), %d mounted, %d skipped (%s already there); %d manifests, %d tags" % (
                 blobs["pushed"], human_bytes(size["pushed"]), blobs["mounted"], blobs["skipped"],
                 human_bytes(size["skipped"]), result["manifests_pushed"], result["tags_pushed"])]
    for image in result["images"]:
        lines.append("  %s" % image["target"])
    if result.get("registries_dest"):
        lines.append("  k3s registries: %s" % result["registries_dest"])
    if result.get("custody_path"):
        lines.append("  custody record: %s" % result["custody_path"])
    return lines


def sent(result, check=False):
    written = result["written"]
    kept = result["part_count"] + 1 - len(written)
    verb = "would write" if check else "wrote"
    if not result["changed"]:
        head = "skipped: %s already holds all %d parts and the index, unchanged" % (
            result["directory"], result["part_count"])
    else:
        head = "%s %s to %s (%d kept unchanged)" % (verb, _plural(len(written), "file"), result["directory"], kept)
    lines = [head, "  index: %s; %s; bundle sha256 %s" % (result["index"], _plural(result["part_count"], "part"),
                                                          result["bundle_sha256"])]
    for transfer in result.get("transfers") or []:
        lines.append("  %s: %s" % (transfer["name"], transfer.get("status") or ("uploaded" if transfer["uploaded"]
                                                                                else "already uploaded")))
    return lines


def received(result, check=False):
    if not result["changed"]:
        head = "skipped: %s already is the bundle these parts carry (verified again)" % result["dest"]
    elif result.get("verification"):
        head = "received %s from %s, verified" % (result["dest"], _plural(result["part_count"], "part"))
    else:
        head = "would reassemble %s from %s (check mode: nothing was written)" % (
            result["dest"], _plural(result["part_count"], "part"))
    lines = [head, "  index %s; bundle sha256 %s (%s)" % (result["index"], result["bundle_sha256"],
                                                          human_bytes(result["size"])),
             "  signature: %s" % result["signature"]]
    for warning in result.get("warnings") or []:
        lines.append("  warning: %s" % warning)
    return lines
