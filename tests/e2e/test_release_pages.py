"""Dataset releases in a real browser: an admin asks for one on /releases/ (a mistyped license is refused and
what was typed is kept), the export runs (Celery runs eagerly in tests), anyone opens its page and downloads
a file whose SHA-256 is the one the page lists, and the admin deletes it. Screenshots at 1280 and 390 px go
to test-output/screenshots/ for people to look at."""

from __future__ import annotations

import hashlib

import pytest

from evaluation.models import ReleaseExport
from tests.e2e.conftest import PASSWORD

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.e2e]


def _fits(tab, width: int) -> None:
    """The page never scrolls sideways (wide tables scroll in their own box)."""
    assert tab.evaluate("document.documentElement.scrollWidth") <= width


def test_an_admin_asks_for_a_release_and_anyone_downloads_it(
    live_server, browser, page, screenshot, demo_scored, settings, tmp_path
):
    settings.RELEASES_DIR = tmp_path / "releases"
    demo_scored("root", "admin")
    tab = page
    tab.goto(f"{live_server.url}/accounts/login/")
    tab.fill("#id_username", "root")
    tab.fill("#id_password", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_selector("text=My phrasings")

    tab.goto(f"{live_server.url}/")
    tab.click("text=dataset releases")
    tab.wait_for_selector("h2#ask")
    tab.check("input[name=benchmarks][value=demo]")
    tab.fill("#version", "2026.1")
    tab.fill("#license", "CC BY")
    tab.click("button:has-text('Ask a worker for this release')")
    tab.wait_for_selector(".problems")
    assert "is not a Hugging Face license id" in tab.inner_text(".problems")
    screenshot(tab, "release-list-refused-1280")
    assert tab.input_value("#version") == "2026.1" and tab.is_checked("input[value=demo]")
    assert not ReleaseExport.objects.exists()

    tab.fill("#license", "cc-by-4.0")
    tab.click("button:has-text('Ask a worker for this release')")
    tab.wait_for_url("**/releases/*/")
    assert "Release phrasebench-2026.1 asked for" in tab.inner_text(".messages")
    assert "Succeeded" in tab.inner_text("dl.facts")
    screenshot(tab, "release-detail-admin-1280")
    assert not tab.errors

    # Anyone: the list, the release's page and a download checked against the hash it lists.
    anonymous = browser.new_context(viewport={"width": 1280, "height": 900})
    visitor = anonymous.new_page()
    visitor.goto(f"{live_server.url}/releases/")
    assert "phrasebench-2026.1" in visitor.inner_text("table.releases")
    assert "Ask for a release" not in visitor.content()
    screenshot(visitor, "release-list-1280")
    visitor.click("text=phrasebench-2026.1")
    row = visitor.locator("table.files tr", has_text="release.json")
    listed = row.locator("code[title]").get_attribute("title")
    with visitor.expect_download() as download:
        row.locator("a").click()
    assert hashlib.sha256(open(download.value.path(), "rb").read()).hexdigest() == listed
    screenshot(visitor, "release-detail-1280")
    anonymous.close()

    phone = browser.new_context(viewport={"width": 390, "height": 844})
    small = phone.new_page()
    for path, name in (
        ("/releases/", "release-list-390"),
        (tab.url.split(live_server.url)[1], "release-detail-390"),
    ):
        small.goto(f"{live_server.url}{path}")
        _fits(small, 390)
        screenshot(small, name)
    phone.close()

    # The admin deletes it: the box must be ticked first (the browser itself refuses the form without it).
    tab.click("button:has-text('Delete this release')")
    assert tab.evaluate("document.querySelector('input[name=confirm]').validity.valueMissing")
    assert ReleaseExport.objects.exists()
    screenshot(tab, "release-detail-delete-1280")
    tab.check("input[name=confirm]")
    tab.click("button:has-text('Delete this release')")
    tab.wait_for_url("**/releases/")
    assert "Release phrasebench-2026.1 and its files were deleted." in tab.inner_text(".messages")
    assert not ReleaseExport.objects.exists() and not (tmp_path / "releases" / "phrasebench-2026.1").exists()
    assert not tab.errors
