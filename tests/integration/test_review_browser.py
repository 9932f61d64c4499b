"""The review sheet in a real browser: headless Chromium renders each kind of sheet with no console message at all,
injects nothing from a hostile bundle, and takes a screenshot. A control page proves the console check sees errors."""

import os

import pytest

from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys
from ansible_collections.petra.core.plugins.module_utils.review.render import write_sheets
from ansible_collections.petra.core.plugins.module_utils.review.sheet import review_bundle
from ansible_collections.petra.core.tests.conftest import require_tools
from ansible_collections.petra.core.tests.support import browser
from ansible_collections.petra.core.tests.support.review_bundles import hostile_bundle
from ansible_collections.petra.core.tests.unit.test_bundle_local import build
from ansible_collections.petra.core.tests.unit.test_review_sheet import (
    TEMPLATE_TAGS,
    elements,
    flip_byte,
    reproduced_bundle,
)


@pytest.fixture(scope="module", autouse=True)
def chromium():
    require_tools("chromium")


def test_the_console_check_sees_errors(tmp_path):
    page = tmp_path / "control.html"
    page.write_text("<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src "
                    "'none'\"><title>control</title></head><body><p>control</p><script>undefinedFunction()</script>"
                    "</body></html>")
    rendered = browser.render(str(page))
    assert rendered.console and "Content Security Policy" in rendered.console[0]
    page.write_text("<!DOCTYPE html><html><head><title>control</title></head><body><script>undefinedFunction()"
                    "</script></body></html>")
    assert any("undefinedFunction is not defined" in line for line in browser.render(str(page)).console)


def show(data, tmp_path, name):
    path = str(tmp_path / (name + ".html"))
    write_sheets(data, path)
    shot = str(tmp_path / (name + ".png"))
    rendered = browser.render(path, screenshot=shot)
    assert rendered.console == [], rendered.console
    assert browser.png_size(shot) == (1280, 2000) and os.path.getsize(shot) > 20_000
    return rendered


def test_a_verified_sheet_renders_cleanly(sources, spool, ec_key, tmp_path):
    key, pub = ec_key
    created = build(sources, spool, key)
    rendered = show(review_bundle(created["path"], load_public_keys([pub])), tmp_path, "verified")
    assert 'class="banner verified"' in rendered.dom and created["sha256"] in rendered.dom
    assert "<svg" in rendered.dom and "<rect" in rendered.dom


def test_a_reproduced_cosignature_is_marked_in_the_browser(sources, spool, tmp_path):
    path, pubs, rebuilder, approver = reproduced_bundle(sources, spool, tmp_path)
    rendered = show(review_bundle(path, load_public_keys(pubs), threshold=3), tmp_path, "reproduced")
    rows = {key: rendered.dom.split(key, 1)[1].split("</tr>", 1)[0] for key in (rebuilder, approver)}
    assert '<span class="pill ok">reproduced</span>' in rows[rebuilder] and "reproduced" not in rows[approver]
    assert rendered.dom.count('class="pill ok">reproduced</span>') == 1


def test_a_refused_sheet_renders_cleanly(sources, spool, ec_key, tmp_path):
    key, pub = ec_key
    created = build(sources, spool, key)
    flip_byte(created["path"])
    rendered = show(review_bundle(created["path"], load_public_keys([pub])), tmp_path, "refused")
    assert 'class="banner refused"' in rendered.dom and "REFUSED" in rendered.dom


def test_a_hostile_bundle_injects_nothing_in_the_browser(tmp_path):
    crafted = hostile_bundle(tmp_path)
    rendered = show(review_bundle(crafted.path, load_public_keys([crafted.pub])), tmp_path, "hostile")
    # The DOM the browser built (not just the text written) holds only the template's elements (and the tbody a
    # browser puts in every table).
    found = elements(rendered.dom)
    assert found.tags <= TEMPLATE_TAGS | {"tbody"}, found.tags - TEMPLATE_TAGS
    assert "&lt;script&gt;alert('petra')&lt;/script&gt;" in rendered.dom
