"""The Content-Security-Policy: every answer carries it, scripts run only from our static files (no inline
script, no inline event handler, no eval), and no template or rendered page holds an inline script."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.core import test_permissions
from tests.core.test_permissions import CASES, _login, _request

pytestmark = pytest.mark.django_db

world = test_permissions.world  # the permission table's fixture: its users, task, phrasings and runs

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"""<[^>]*\s(on[a-z]+|hx-on[:\w-]*)\s*=""", re.IGNORECASE)
# Not /healthz: plain text for health checks, answered before every other middleware (core.middleware.HealthCheck,
# tests/core/test_deploy.py), so that a check by the server's address over HTTP passes.
GETS = [case for case in CASES if case[2] == "get" and case[0] != "healthz"]


def inline_scripts(html: str) -> list[str]:
    """<script> tags that would run code written in the page: neither src= nor a JSON data block."""
    return [
        tag.group(0)
        for tag in SCRIPT_TAG.finditer(html)
        if not re.search(r"\ssrc\s*=", tag.group(1)) and 'type="application/json"' not in tag.group(1)
    ]


def directives(header: str) -> dict[str, list[str]]:
    parts = (part.split() for part in header.split(";") if part.strip())
    return {name: values for name, *values in parts}


def test_no_template_holds_an_inline_script_or_event_handler():
    offenders = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        offenders += [f"{path.relative_to(TEMPLATES)}: {tag}" for tag in inline_scripts(text)]
        offenders += [f"{path.relative_to(TEMPLATES)}: {m.group(0)}" for m in EVENT_HANDLER.finditer(text)]
        offenders += [
            f"{path.relative_to(TEMPLATES)}: javascript: URL" for _ in re.finditer("javascript:", text)
        ]
    assert not offenders, "move these into static/js (data attributes and listeners):\n" + "\n".join(
        offenders
    )


def test_the_checks_above_catch_what_they_are_for():
    assert inline_scripts('<script>alert(1)</script><script type="module">x</script>') == [
        "<script>",
        '<script type="module">',
    ]
    assert not inline_scripts(
        '<script src="/static/a.js" defer></script><script type="application/json" id="c">'
    )
    assert not inline_scripts('<script src="/static/a.js" defer></script>')
    assert EVENT_HANDLER.search('<select name="x" onchange="this.form.submit()">')
    assert not EVENT_HANDLER.search('<select name="x" data-autosubmit>')


@pytest.mark.parametrize("role", ["anonymous", "admin"])
@pytest.mark.parametrize(
    "name,args,method,data,expected", GETS, ids=[f"{c[0]}-{i}" for i, c in enumerate(GETS)]
)
def test_every_page_sends_the_policy_and_runs_no_inline_script(
    client, world, role, name, args, method, data, expected
):
    _login(client, role)
    response = _request(client, world, name, args, method, data)
    policy = directives(response["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"], policy
    assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    if response.get("Content-Type", "").startswith("text/html"):
        assert not inline_scripts(response.content.decode()), name


def test_the_api_docs_load_their_start_up_script_from_a_url(client):
    from django.urls import reverse

    page = client.get(reverse("api_docs")).content.decode()
    assert not inline_scripts(page)
    script = client.get(reverse("api_docs"), {"script": ""})
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
