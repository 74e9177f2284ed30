"""Citable snapshots in a real browser: a signed-in user freezes the leaderboard, the data changes (a phrasing is
approved, a model re-scored, a new model imported), the user freezes it again and opens what changed between
the two snapshots. Screenshots at 1280 and 390 px go to SHOTS for people to look at."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth import get_user_model

from collection import services as collection_services
from collection.demo import load_demo
from collection.models import Collection, Instruction, Task
from core import roles
from core import services as core_services
from evaluation.leaderboards.aggregates import aggregates_refresh_many
from evaluation.models import LeaderboardSnapshot, PhrasingResult
from tests.e2e.conftest import PASSWORD
from tests.evaluation.published import imported_variant

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.e2e]

SHOTS = Path(os.environ.get("SNAPSHOT_SHOTS", "/tmp/shots_snap"))


@pytest.fixture
def published(django_user_model):
    """Three published rows on every demo phrasing (`strong` above two twins), an author and a curator."""
    load_demo(generated_per_task=0)
    rng = np.random.default_rng(0)
    rows = {"strong": {}, "twin-a": {}, "twin-b": {}}
    for task in Task.objects.filter(benchmark__slug="demo"):
        phrasings = list(task.instructions.filter(status="approved").order_by("id"))
        noise = rng.normal(0, 0.06, len(phrasings))
        noise -= noise.mean()
        for instruction, e in zip(phrasings, noise, strict=True):
            base = float(rng.uniform(0.45, 0.6))
            rows["twin-a"][instruction], rows["twin-b"][instruction] = base, float(np.clip(base + e, 0, 1))
            rows["strong"][instruction] = base + 0.25
    variants = {name: imported_variant(name, accuracies) for name, accuracies in rows.items()}
    for name, role in (("alice", roles.AUTHOR), ("carol", roles.CURATOR)):
        user = django_user_model.objects.create_user(username=name, password=PASSWORD)
        core_services.user_role_set(user=user, role=role)
    return variants


def _change_the_data(variants) -> None:
    """alice writes a phrasing and carol approves it (every row gets a result on it); `strong` is re-scored
    40 points lower; a new published model arrives."""
    users = {user.username: user for user in get_user_model().objects.all()}
    task = Task.objects.get(benchmark__slug="demo", slug="parity")
    phrasing = collection_services.instruction_create(
        task=task,
        template="Parity check, new wording: {number}",
        collection=Collection.objects.get(slug="crowd"),
        author=users["alice"],
    )
    collection_services.instruction_review(
        instruction=phrasing,
        reviewer=users["carol"],
        status="approved",
        revision=phrasing.current_revision_id,
    )
    for variant in variants.values():
        PhrasingResult.objects.create(
            variant=variant, revision=phrasing.current_revision, task=task, accuracy=0.3, source="imported"
        )
    PhrasingResult.objects.filter(variant=variants["strong"]).update(accuracy=0.35)
    aggregates_refresh_many(
        {(v.id, t.id) for v in variants.values() for t in Task.objects.filter(benchmark__slug="demo")}
    )
    approved = Instruction.objects.filter(task__benchmark__slug="demo", status="approved")
    imported_variant("newcomer", {instruction: 0.9 for instruction in approved})


def _shot(tab, name: str) -> None:
    from playwright.sync_api import Error as PlaywrightError  # only where a browser runs (conftest.browser)

    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    # A long phone page is also kept in screen-high parts, readable at full size.
    width, height = tab.evaluate("[innerWidth, document.documentElement.scrollHeight]")
    if width < 500:
        for part, top in enumerate(range(0, height, 900), start=1):
            clip = {"x": 0, "y": top, "width": width, "height": min(900, height - top)}
            try:
                tab.screenshot(path=str(SHOTS / f"{name}-part{part}.png"), full_page=True, clip=clip)
            except PlaywrightError:
                break  # the page got shorter since it was measured (a chart drawn): its end is reached


def _fits(tab, width: int, name: str) -> None:
    """The page never scrolls sideways (wide tables scroll in their own box); else, what sticks out."""
    wider = tab.evaluate(
        """(width) => [...document.querySelectorAll('main *')]
            .filter(e => e.getBoundingClientRect().right > width + 1 && !e.closest('.scroll'))
            .slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className)""",
        width,
    )
    assert tab.evaluate("document.documentElement.scrollWidth") <= width, (name, wider)


def _freeze(tab, base: str, title: str) -> str:
    tab.goto(f"{base}/b/demo/leaderboard/")
    tab.click("#freeze >> text=Freeze this view")
    tab.wait_for_url("**/b/demo/leaderboard/freeze/**")
    tab.fill("#title", title)
    tab.click("button:has-text('Freeze this leaderboard')")
    tab.wait_for_url("**/snapshots/*/")
    return tab.url.rstrip("/").rsplit("/", 1)[-1]


def test_freeze_change_freeze_again_and_see_what_changed(live_server, browser, published):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on(
        "console",
        lambda message: errors.append(message.text) if "Content Security Policy" in message.text else None,
    )
    tab.goto(f"{live_server.url}/accounts/login/")
    tab.fill("#id_username", "alice")
    tab.fill("#id_password", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_selector("text=My phrasings")

    # Freeze the leaderboard as it is.
    first = _freeze(tab, live_server.url, "Before the new phrasing")
    assert f"Frozen as snapshot {first}" in tab.inner_text(".messages")
    assert tab.locator("table.figures tr[data-tie-group]").count() == 3
    assert "Before the new phrasing" in tab.inner_text("#cite")
    frozen_rows = tab.inner_text("#frozen table.figures")

    _change_the_data(published)

    # The first snapshot has not moved; the live leaderboard has.
    tab.goto(f"{live_server.url}/snapshots/{first}/")
    assert tab.inner_text("#frozen table.figures") == frozen_rows
    tab.goto(f"{live_server.url}/b/demo/leaderboard/")
    assert "newcomer" in tab.inner_text("#board")

    # Freeze again, then compare from the new snapshot's page.
    second = _freeze(tab, live_server.url, "After the new phrasing")
    assert second != first and LeaderboardSnapshot.objects.count() == 2
    tab.select_option("#to", first)
    tab.click("button:has-text('Show what changed')")
    tab.wait_for_url(f"**/snapshots/{first}/diff/{second}/")
    assert "newcomer" in tab.inner_text("#added")
    ranks = tab.inner_text("#rank-changes")
    assert "strong (imported)" in ranks and "1 →" in ranks
    flagged = tab.inner_text("#flagged-changes")
    assert "strong (imported)" in flagged and "AvgP" in flagged and "beyond its interval" in flagged
    assert "intervals disjoint" in flagged
    assert "phrasings 24 → 25" in tab.inner_text("#basis")
    assert "beyond its interval" in tab.inner_text("#diff-rule")
    assert errors == []
    context.close()

    # Every page at both widths, signed in as alice, with screenshots.
    for width in (1280, 390):
        context = browser.new_context(viewport={"width": width, "height": 900})
        tab = context.new_page()
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.goto(f"{live_server.url}/accounts/login/")
        tab.fill("#id_username", "alice")
        tab.fill("#id_password", PASSWORD)
        tab.click("button[type=submit]")
        tab.wait_for_selector("text=My phrasings")
        pages = [
            ("leaderboard", "/b/demo/leaderboard/"),
            ("freeze-form", "/b/demo/leaderboard/freeze/?set=all&kind=&sort=avgp&dir=desc"),
            ("snapshot-first", f"/snapshots/{first}/"),
            ("snapshot-second-every-figure", f"/snapshots/{second}/?figures=all"),
            ("diff", f"/snapshots/{first}/diff/{second}/"),
            ("list", "/b/demo/snapshots/"),
        ]
        for name, path in pages:
            tab.goto(f"{live_server.url}{path}")
            _shot(tab, f"{name}-{width}")
            _fits(tab, width, name)
        tab.goto(f"{live_server.url}/snapshots/{first}/diff/{second}/")
        tab.click("#within summary")
        _shot(tab, f"diff-within-open-{width}")
        context.close()
    assert errors == []
