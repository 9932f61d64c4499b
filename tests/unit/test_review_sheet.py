"""The transfer review sheet: its data from real bundles (built from local content, and hand-made with an image, a
carried SBOM and a scan), refusals, petra_verify's review_html / review_json, and markup in every name escaped."""

import hashlib
import html.parser
import json
import os

import pytest

from ansible_collections.petra.core.plugins.module_utils.adapters.verify import run as run_verify
from ansible_collections.petra.core.plugins.module_utils.bundle.errors import VerificationError
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys
from ansible_collections.petra.core.plugins.module_utils.review.render import encode_json, render_html, write_sheets
from ansible_collections.petra.core.plugins.module_utils.review.sheet import review_bundle
from ansible_collections.petra.core.plugins.module_utils.trust.errors import TrustError
from ansible_collections.petra.core.plugins.module_utils.trust.state import TrustState
from ansible_collections.petra.core.tests.support import pki
from ansible_collections.petra.core.tests.support.review_bundles import IMG, SCRIPT, hostile_bundle
from ansible_collections.petra.core.tests.unit.test_bundle_local import build

# Every element and attribute the template itself writes: anything else on a page came from the data.
TEMPLATE_TAGS = {"html", "head", "meta", "title", "style", "body", "header", "div", "span", "main", "h1", "h2", "h3",
                 "table", "tr", "th", "td", "p", "strong", "br", "svg", "g", "text", "rect", "footer"}
TEMPLATE_ATTRIBUTES = {"lang", "charset", "http-equiv", "content", "name", "class", "id", "role", "colspan", "xmlns",
                       "aria-labelledby", "width", "height", "viewbox", "x", "y", "rx", "text-anchor"}


class Elements(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attributes = set(), set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes.update(name for name, _value in attrs)


def elements(page):
    parser = Elements()
    parser.feed(page)
    return parser


def flip_byte(path):
    """Flip the last byte: the metadata in the first zstd block stays readable (a byte in the middle may fall in that
    block, depending on the random content)."""
    with open(path, "r+b") as handle:
        handle.seek(os.path.getsize(path) - 1)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 1]))


def test_sheet_of_a_local_bundle(sources, spool, ec_key):
    key, pub = ec_key
    created = build(sources, spool, key, metadata={"expires": "2099-12-31"})
    data = review_bundle(created["path"], load_public_keys([pub]))
    assert data["verdict"] == {"status": "verified", "reason": None, "message": None, "hint": None}
    bundle = data["bundle"]
    assert (bundle["name"], bundle["version"], bundle["created"], bundle["expires"]) == (
        "local", "1.0.0", "2026-01-01T00:00:00Z", "2099-12-31")
    assert (bundle["sha256"], bundle["size"]) == (created["sha256"], os.path.getsize(created["path"]))
    signatures = data["signatures"]
    assert signatures["met"] is True and signatures["threshold"] == 1 and signatures["signers"] == [created["key_id"]]
    (chart,), (manifest_set,), (item,) = data["charts"], data["manifests"], data["files"]
    assert (chart["name"], chart["version"]) == ("podinfo", "6.5.0") and chart["countersignature"]["tag"].endswith(".sig")
    assert manifest_set["fileCount"] == 2 and item["filename"] == "k3s"
    # A file's size is its content plus the artifact manifest and config that carry it.
    assert 200_000 < item["size"] < 201_000
    # The bundle's own SBOM lists each of them, and nothing carried any other SBOM.
    assert data["sbom"]["format"] == "CycloneDX" and data["sbom"]["components"] == 3
    assert [entry["sbom"]["bomRef"] for entry in (chart, manifest_set, item)] == [
        "chart:podinfo@6.5.0", "manifests:apps", "file:k3s"]
    assert data["images"] == [] and data["scan"] is None
    # The breakdown accounts for every byte of content, each once; the file takes most of it.
    sizes = data["sizes"]
    assert sum(part["bytes"] for part in sizes["parts"]) == sizes["uncompressed"]
    assert sizes["parts"][0]["label"] == "k3s" and sizes["compressed"] == bundle["size"]
    json.loads(encode_json(data))
    page = render_html(data)
    assert "VERIFIED" in page and created["sha256"] in page and "podinfo" in page
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")


def test_sheets_are_written_only_when_they_change(sources, spool, ec_key, tmp_path):
    key, pub = ec_key
    created = build(sources, spool, key)
    data = review_bundle(created["path"], load_public_keys([pub]))
    html_path, json_path = str(tmp_path / "sheets" / "sheet.html"), str(tmp_path / "sheets" / "sheet.json")
    assert write_sheets(data, html_path, json_path, check_mode=True)["changed"] is True
    assert not os.path.exists(tmp_path / "sheets")
    written = write_sheets(data, html_path, json_path)
    assert written == {"html": html_path, "json": json_path, "verdict": "verified", "changed": True}
    stamp = os.stat(html_path).st_mtime_ns
    # The same bundle reviewed again gives the same bytes: no time of review is recorded.
    again = review_bundle(created["path"], load_public_keys([pub]))
    assert write_sheets(again, html_path, json_path)["changed"] is False
    assert os.stat(html_path).st_mtime_ns == stamp
    with open(json_path, encoding="utf-8") as handle:
        assert json.load(handle) == data


def test_a_damaged_bundle_gets_a_refused_sheet(sources, spool, ec_key):
    key, pub = ec_key
    created = build(sources, spool, key)
    flip_byte(created["path"])
    data = review_bundle(created["path"], load_public_keys([pub]))
    verdict = data["verdict"]
    assert verdict["status"] == "refused" and verdict["reason"] and "signature does not" in verdict["message"]
    assert verdict["hint"]
    # What the bundle claims is shown as unverified, with no sizes or contents read from it.
    assert data["claimed"] is True and data["bundle"]["name"] == "local" and data["sizes"] is None
    assert data["signatures"]["signers"] == [] and data["bundle"]["sha256"] is None
    page = render_html(data)
    assert "REFUSED" in page and "Not verified." in page and "VERIFIED" not in page
    missing = review_bundle(str(spool / "absent.tar.zst"), load_public_keys([pub]))
    assert missing["verdict"]["reason"] == "missing" and missing["bundle"]["name"] is None
    assert "REFUSED" in render_html(missing)


def test_hostile_bundle_data(tmp_path):
    crafted = hostile_bundle(tmp_path)
    data = review_bundle(crafted.path, load_public_keys([crafted.pub]))
    assert data["verdict"]["status"] == "verified"
    (image,) = data["images"]
    assert image["ref"] == crafted.image_ref and image["size"] == crafted.sizes["image"]
    assert image["platforms"][0]["platform"] == "linux%s/amd64" % SCRIPT
    (carried,) = image["sbom"]["carried"]
    assert (carried["format"], carried["specVersion"], carried["components"]) == ("CycloneDX", "1.5", 3)
    assert {entry["name"] for entry in carried["licences"]} == {"Apache-2.0", SCRIPT, "GPL-2.0-only OR " + IMG}
    assert image["sbom"]["bomRef"] == "image:" + crafted.image_ref and image["sbom"]["licences"] == [
        {"name": "MIT" + IMG, "components": 1}]
    assert image["sourceSignature"]["identity"] == IMG
    (scan,) = image["scan"]
    assert scan["findings"] == [{"severity": "critical", "count": 1}, {"severity": "high", "count": 2},
                                {"severity": "low", "count": 3}] and scan["ignored"] == 1
    assert data["scan"]["findings"] == scan["findings"]
    assert data["charts"][0]["size"] == crafted.sizes["chart"] and data["files"][0]["size"] == crafted.sizes["file"]
    parts = {part["kind"]: part for part in data["sizes"]["parts"]}
    assert parts["chart"]["bytes"] == crafted.sizes["chart"] - crafted.shared
    assert parts["chart"]["shared"] == crafted.shared
    assert data["sizes"]["uncompressed"] == crafted.total


def test_markup_in_a_bundle_never_reaches_the_page_as_markup(tmp_path):
    crafted = hostile_bundle(tmp_path)
    data = review_bundle(crafted.path, load_public_keys([crafted.pub]))
    page = render_html(data)
    found = elements(page)
    assert found.tags <= TEMPLATE_TAGS, found.tags - TEMPLATE_TAGS
    assert found.attributes <= TEMPLATE_ATTRIBUTES, found.attributes - TEMPLATE_ATTRIBUTES
    assert "<script" not in page and "<img" not in page and "<style>body" not in page
    assert "&lt;script&gt;alert(&#39;petra&#39;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    # The same bundle refused (another key) still shows what it claims, escaped the same way.
    other = pki.write_ec_key(str(tmp_path / "other.pem"))
    refused = review_bundle(crafted.path, load_public_keys([other]))
    assert refused["verdict"]["reason"] == "wrong-key"
    page = render_html(refused)
    assert elements(page).tags <= TEMPLATE_TAGS and "<script" not in page and "platform&lt;script&gt;" in page


def params(path, pub, **extra):
    base = {"path": path, "public_keys": [pub], "signature": None, "threshold": 1, "cosignatures": None,
            "trust_state": None, "trust_state_anchor": None, "trust_state_required": False, "allow_downgrade": False,
            "registry": None, "review_html": None, "review_json": None}
    base.update(extra)
    return base


def test_petra_verify_writes_the_sheet(sources, spool, ec_key, tmp_path):
    key, pub = ec_key
    created = build(sources, spool, key)
    html_path, json_path = str(tmp_path / "review.html"), str(tmp_path / "review.json")
    task = params(created["path"], pub, review_html=html_path, review_json=json_path)
    checked = run_verify(task, check_mode=True)
    assert checked["changed"] is True and checked["review"]["changed"] is True and not os.path.exists(html_path)
    result = run_verify(task)
    assert result["verified"] is True and result["changed"] is True
    assert result["review"] == {"html": html_path, "json": json_path, "verdict": "verified", "changed": True}
    with open(json_path, encoding="utf-8") as handle:
        sheet = json.load(handle)
    assert sheet["bundle"]["sha256"] == result["sha256"] and sheet["signatures"]["signers"] == result["signers"]
    assert run_verify(task)["changed"] is False
    assert run_verify(params(created["path"], pub))["changed"] is False and "review" not in run_verify(
        params(created["path"], pub))


def test_petra_verify_writes_a_refused_sheet_and_still_fails(sources, spool, ec_key, tmp_path):
    key, pub = ec_key
    created = build(sources, spool, key)
    html_path, json_path = str(tmp_path / "review.html"), str(tmp_path / "review.json")
    task = params(created["path"], pub, review_html=html_path, review_json=json_path)
    run_verify(task)
    flip_byte(created["path"])
    with pytest.raises(VerificationError) as info:
        run_verify(task)
    # The verified sheet of the earlier run is replaced: it can never be mistaken for this one.
    assert info.value.details["review"] == {"html": html_path, "json": json_path, "verdict": "refused",
                                            "changed": True}
    with open(json_path, encoding="utf-8") as handle:
        assert json.load(handle)["verdict"]["reason"] == info.value.reason
    with open(html_path, encoding="utf-8") as handle:
        assert "REFUSED" in handle.read()


def test_a_rollback_refusal_keeps_the_verified_content(sources, spool, ec_key, tmp_path):
    key, pub = ec_key
    created = build(sources, spool, key)
    state_path = str(tmp_path / "trust" / "trust-state.json")
    os.makedirs(os.path.dirname(state_path))
    state = TrustState.load(state_path)
    decision = state.decide("local", "2.0.0", "ab" * 32, allow_downgrade=False)
    state.append("local", "2.0.0", "ab" * 32, ["sha256:" + "1" * 64], registry="high:5000", decision=decision,
                 accepted_at="2026-02-01T00:00:00Z")
    state.save()
    json_path = str(tmp_path / "review.json")
    with pytest.raises(TrustError) as info:
        run_verify(params(created["path"], pub, trust_state=state_path, review_json=json_path))
    assert info.value.reason == "rollback"
    with open(json_path, encoding="utf-8") as handle:
        sheet = json.load(handle)
    assert sheet["verdict"]["status"] == "refused" and sheet["verdict"]["reason"] == "rollback"
    assert sheet["claimed"] is False and sheet["bundle"]["sha256"] == hashlib.sha256(
        open(created["path"], "rb").read()).hexdigest()
    assert sheet["files"][0]["size"] > 200_000


def reproduced_bundle(sources, spool, tmp_path):
    """A bundle with a primary signature and two co-signatures: one reproduced (the co-signer rebuilt it from the same
    definition and sources), one plain. Returns the path, the three public keys, and the two co-signers' key ids."""
    from ansible_collections.petra.core.plugins.module_utils.adapters.bundle import run as run_bundle
    from ansible_collections.petra.core.tests.unit.test_reproduced_cosign_local import DEFINITION
    from ansible_collections.petra.core.tests.unit.test_reproduced_cosign_local import params_for as bundle_params

    keys = {}
    for name in ("builder", "rebuilder", "approver"):
        private = str(tmp_path / ("%s.pem" % name))
        keys[name] = (private, pki.write_ec_key(private))
    dest = str(spool / "reproduced.tar.zst")
    run_bundle(bundle_params(definition=DEFINITION, base_dir=str(sources), dest=dest,
                             signing_key=keys["builder"][0]), check_mode=False)
    cosigned = {}
    for name, rebuild in (("rebuilder", True), ("approver", False)):
        cosigned[name] = run_bundle(bundle_params(state="signed", src=dest, public_keys=[keys["builder"][1]],
                                                  signing_key=keys[name][0], rebuild=rebuild, definition=DEFINITION,
                                                  base_dir=str(sources)), check_mode=False)
        assert cosigned[name]["reproduced"] is rebuild
    return dest, [item[1] for item in keys.values()], cosigned["rebuilder"]["key_id"], cosigned["approver"]["key_id"]


def test_reproduced_cosignatures_are_shown_per_signer(sources, spool, tmp_path):
    path, pubs, rebuilder, approver = reproduced_bundle(sources, spool, tmp_path)
    data = review_bundle(path, load_public_keys(pubs), threshold=3)
    signatures = data["signatures"]
    assert signatures["met"] is True and set(signatures["signers"]) >= {rebuilder, approver}
    assert signatures["reproduced"] == [rebuilder]
    page = render_html(data)
    rows = {key: page.split('<td class="mono">%s</td>' % key, 1)[1].split("</tr>", 1)[0]
            for key in signatures["signers"]}
    assert 'class="pill ok">reproduced</span>' in rows[rebuilder] and "byte-identical" in rows[rebuilder]
    assert "reproduced" not in rows[approver] and "reproduced" not in rows[signatures["primary"]]
    # petra_verify's result says the same, signer by signer.
    result = run_verify(dict(params(path, pubs[0]), public_keys=pubs, threshold=3))
    assert {item["key_id"]: item["reproduced"] for item in result["signer_details"]} == {
        signatures["primary"]: False, rebuilder: True, approver: False}
    # Without co-signatures counted, no signer is reproduced.
    assert review_bundle(path, load_public_keys(pubs))["signatures"]["reproduced"] == []
