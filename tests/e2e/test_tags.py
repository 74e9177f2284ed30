"""Issue 31 item 4 in the browser: an author tags a phrasing on its page (checkboxes, what each tag means),
and the model page compares the tagged phrasings with the rest, at 1280 and 390 px.
Screenshots: test-output/screenshots/tags-*.png."""

from __future__ import annotations

import pytest

from collection.models import Instruction, PhrasingTag
from core import roles
from tests.e2e.conftest import PASSWORD, SCREENSHOTS

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.e2e]


def _login(tab, live_server, username: str) -> None:
    tab.goto(f"{live_server.url}/accounts/login/")
    tab.fill("#id_username", username)
    tab.fill("#id_password", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_load_state()


def test_a_curator_tags_a_phrasing_and_the_model_page_shows_the_tags_effect(
    live_server, page, screenshot, demo_scored
):
    demo_scored("carol", roles.CURATOR)
    terse = PhrasingTag.objects.get(slug="terse")
    # Two phrasings of every demo task tagged beforehand, so every task has both sides.
    for task_id in Instruction.objects.filter(status="approved").values_list("task_id", flat=True).distinct():
        for instruction in Instruction.objects.filter(task_id=task_id, status="approved").order_by("id")[:2]:
            instruction.tags.add(terse)
    target = Instruction.objects.filter(status="approved").exclude(tags=terse).order_by("id").first()

    _login(page, live_server, "carol")
    page.goto(f"{live_server.url}/phrasings/{target.id}/")
    page.click("summary:has-text('Tag what it varies')")
    page.check("label:has-text('Question') input")
    page.check("label:has-text('Formal') input")
    page.click("summary:has-text('What the tags mean')")
    screenshot(page, "tags-phrasing-1280")
    page.click("button:has-text('Save tags')")
    page.wait_for_load_state()
    assert "Tags saved." in page.content()
    assert page.locator(".note .tag").all_inner_texts() == ["Formal", "Question"]
    assert set(target.tags.values_list("slug", flat=True)) == {"question", "formal"}

    page.goto(f"{live_server.url}/models/tiny-t5/#tags")
    table = page.locator("#tags + p + div table")
    rows = table.locator("tbody tr")
    assert rows.count() == 3  # formal, question (one phrasing each: too few), terse
    terse_row = rows.filter(has_text="Terse")
    assert "Too few" not in terse_row.inner_text()
    assert "Too few" in rows.filter(has_text="Question").inner_text()
    screenshot(page, "tags-model-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("#tags").evaluate("el => el.scrollIntoView()")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the model page lays out {width} px wide at 390 px"
    page.screenshot(path=str(SCREENSHOTS / "tags-model-390.png"))
    assert not page.errors
