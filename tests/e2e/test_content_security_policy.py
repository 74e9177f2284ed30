"""The Content-Security-Policy in a real browser: an inline script is blocked (and reported, which the page
fixture collects as an error), while the page's own scripts (htmx, app.js) run."""

from __future__ import annotations

import pytest

from collection.demo import load_demo

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.e2e]


def test_an_inline_script_is_blocked_and_reported(live_server, page):
    load_demo()
    page.goto(f"{live_server.url}/b/demo/")
    assert page.evaluate("typeof window.htmx") == "object"
    page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.injected = true;";
            document.body.appendChild(script);
        }"""
    )
    page.wait_for_timeout(200)
    assert page.evaluate("window.injected === undefined")
    assert any("Content Security Policy" in error for error in page.errors), page.errors

    # htmx still filters the task list as you type (its requests and swaps need no inline script or eval).
    page.errors.clear()
    page.fill("input[name=q]", "parity")
    page.wait_for_url("**q=parity**")
    assert page.locator("text=Parity").count() >= 1
    assert page.errors == []
