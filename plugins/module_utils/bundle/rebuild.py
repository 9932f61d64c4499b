# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""Rebuilding a bundle on the co-signer's host (petra_bundle state=signed rebuild=true) to prove its content.

The rebuild plans the bundle from the same spec and sources with the planner of state=present, writes the archive
into a temporary directory and compares the SHA-256 of the whole file with the bundle's. It cannot sign as the
bundle's signer, and need not: the archive holds that signer's countersignatures, which are reused when they are
valid for the same digest (as an unchanged build by the signer reuses them). A digest the bundle holds no
countersignature for is new content; it is signed with a throwaway key only so the rebuild can be finished and
compared, and the file is deleted either way. The time the builder verified a source signature is replayed (the
rebuild verifies the source again, and that it did, not when, is what the bundle records).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

from ansible_collections.petra.core.plugins.module_utils.bundle import timing
from ansible_collections.petra.core.plugins.module_utils.bundle.create import plan_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.custody_plan import CreationCustody
from ansible_collections.petra.core.plugins.module_utils.bundle.difference import compare
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError, NotReproducedError
from ansible_collections.petra.core.plugins.module_utils.bundle.image_sboms import generate_sboms, generating
from ansible_collections.petra.core.plugins.module_utils.bundle.writer import write_archive
from ansible_collections.petra.core.plugins.module_utils.custody import image_sbom
from ansible_collections.petra.core.plugins.module_utils.custody.countersign import countersign
from ansible_collections.petra.core.plugins.module_utils.signing import keys as signing_keys

WHAT_TO_DO = ("Do not co-sign. Compare with the builder: the source digests (an image tag moved, a chart or file "
              "changed), the spec (the same file, the same SOURCE_DATE_EPOCH or metadata.created, sbom, "
              "verify_images and base), and the tool versions (Petra, zstandard, syft); rebuild once they agree")


class _CannotSign(Exception):
    """The bundle's signer would have to sign something new: the rebuild holds content the bundle does not."""


class ReplaySigner(signing_keys.Signer):
    """The bundle signer's public key, which can only stand for signatures the bundle already holds."""

    def __init__(self, public_key):
        self._public_key = public_key
        self.hash_name = signing_keys.hash_name_for(public_key)
        self.description = "the bundle's signer %s" % signing_keys.key_id(public_key)

    def public_key(self):
        return self._public_key

    def sign_digest(self, digest):
        raise _CannotSign()


class ReplayCustody(CreationCustody):
    """The custody of a rebuild: the bundle's countersignatures and source verification times replayed."""

    def __init__(self, original, public_key, verifier=None, sbom=True):
        # SBOMs are generated again exactly where the builder generated them (whatever sbom_generate says here), so
        # that a rebuild compares syft's output on this host with the builder's.
        generated = any((image.get("sbom") or {}).get("origin") == "petra" for image in original.get("images") or [])
        super().__init__(ReplaySigner(public_key), verifier, None, original, sbom, sbom_generate=generated)
        self._throwaway = None
        self._verified_at = {}
        for image in original.get("images") or []:
            moment = (image.get("sourceVerification") or {}).get("verifiedAt")
            if moment:
                self._verified_at[(image.get("ref"), image.get("digest"))] = moment

    def signed(self, reference, digest, carried=None):
        try:
            return super().signed(reference, digest, carried)
        except _CannotSign:
            return countersign(self._throwaway_signer(), reference, digest, carried)

    def _planned_sbom(self, plan, entry):
        # Never the builder's records standing in: syft runs on this host, or the rebuild would prove nothing.
        return {"origin": "petra", "generator": self.syft.name, "attestations": []}

    def attest_sbom(self, image, subject_size, document, manifest_digest, platform):
        try:
            return super().attest_sbom(image, subject_size, document, manifest_digest, platform)
        except _CannotSign:
            # Another SBOM than the builder's: finish the rebuild so that the comparison can say where it differs.
            return image_sbom.attest(self._throwaway_signer(), image, subject_size, document, manifest_digest,
                                     platform)

    def _throwaway_signer(self):
        if self._throwaway is None:
            self._throwaway = signing_keys.throwaway_signer(self.signer.hash_name)
        return self._throwaway

    def add_image(self, plan, client, ref, ref_text, entry):
        super().add_image(plan, client, ref, ref_text, entry)
        moment = self._verified_at.get((entry.get("ref"), entry.get("digest")))
        if moment and entry.get("sourceVerification"):
            entry["sourceVerification"]["verifiedAt"] = moment


def _signer_key(original, public_keys):
    wanted = (original.get("signer") or {}).get("keyId")
    for key in public_keys:
        if signing_keys.key_id(key) == wanted:
            return key
    raise BundleError("the bundle's signer %s is not among the public keys given" % wanted,
                      hint="Give the builder's public key in public_keys")


def rebuild_and_compare(spec, path, verification, public_keys, pool, verifier=None, sbom=True, base=None,
                        environ=None, progress=None, image_completeness=None, high_side=None):
    """Rebuild the verified bundle at ``path`` and compare; returns the reproduction record, or raises
    NotReproducedError naming the first difference. Nothing is left behind: the rebuild lives in a temporary
    directory beside the bundle, removed whatever happens."""
    started = time.monotonic()
    original = verification.metadata
    if original.get("scan"):
        raise BundleError(
            "the bundle carries vulnerability scan reports, which record a scanner database at one moment and "
            "cannot be rebuilt byte for byte", reason="not-reproducible",
            hint="Co-sign it without rebuild, or have the bundle built without scan (scan the images separately) "
                 "when it is to be reproduced")
    created = timing.stated_created(spec.created, os.environ if environ is None else environ)
    if created is not None and created.source == timing.FROM_CLOCK:
        # created: now, as create_bundle treats an unchanged rebuild: the time the bundle recorded is the one.
        created = timing.recorded(original["created"])
    level = (original.get("compression") or {}).get("level")
    custody = ReplayCustody(original, _signer_key(original, public_keys), verifier, sbom)
    workdir = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".petra-rebuild-")
    try:
        # image_completeness: add changes the content, so the rebuild must ask for it as the build did.
        plan, _report = plan_bundle(spec, pool, created, workdir, custody, original["signer"]["keyId"], level, base,
                                    image_completeness, high_side)
        if generating(plan):
            generate_sboms(plan, custody, tempfile.mkdtemp(dir=workdir, prefix="sbom-"))
        rebuilt = os.path.join(workdir, "rebuild.tar.zst")
        with open(rebuilt, "wb") as handle:
            digests, size = write_archive(plan, handle, plan.created.epoch, ["sha256"], level, progress)
        record = {"reproduced": True, "sha256": digests["sha256"].hex(), "size": size,
                  "entries": len(plan.metadata["entries"]), "duration": None}
        expected = verification.digests["sha256"].hex()
        if record["sha256"] != expected:
            difference = compare(original, plan.metadata, path, rebuilt)
            raise NotReproducedError(
                "the rebuild of %s from the spec and sources differs from the bundle (SHA-256 %s, the bundle's %s): "
                "%s" % (path, record["sha256"], expected, difference["summary"]), hint=WHAT_TO_DO,
                rebuilt_sha256=record["sha256"], difference=difference)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    record["duration"] = round(time.monotonic() - started, 3)
    return record
