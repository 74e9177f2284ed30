"""Issue 29 on a 390 px phone: the write page shows a template error at the text box, the review queue stacks
an item's neighbours under it and keeps its pending count current, the model page keeps the task column and
AvgP in view, and the soft prompt's outcome shows its Δ without sideways scrolling. Every figure on those
pages comes from one component (evaluation/templatetags/figures.py) with its definition as a tooltip.
Screenshots: test-output/screenshots/phone-*.png."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from collection import services as collection_services
from collection.models import Task
from core import roles
from evaluation.models import ScoringRun
from tests.e2e.conftest import PASSWORD, SCREENSHOTS

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.e2e]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def demo(demo_scored):
    for name, role in (("carol", roles.CURATOR), ("dana", roles.AUTHOR), ("erin", roles.AUTHOR)):
        demo_scored(name, role)


def _phone(browser, live_server, username: str | None = None):
    context = browser.new_context(viewport=PHONE)
    tab = context.new_page()
    tab.errors = []
    tab.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    if username:
        tab.goto(f"{live_server.url}/accounts/login/")
        tab.fill("#id_username", username)
        tab.fill("#id_password", PASSWORD)
        tab.click("button[type=submit]")
        tab.wait_for_load_state()
    return context, tab


def _fits(tab, name: str) -> None:
    width = tab.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name} lays out {width} px wide at {PHONE['width']} px"


def _view(tab, selector: str, name: str) -> None:
    """What the phone's screen shows with `selector` at its top (the full-page shots are 4000 px tall)."""
    tab.locator(selector).first.evaluate("el => el.scrollIntoView()")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def _in_view(box) -> bool:
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5


def test_the_write_page_shows_a_template_error_at_the_text_box(live_server, browser, screenshot, demo):
    context, tab = _phone(browser, live_server, "dana")
    tab.goto(f"{live_server.url}/b/demo/t/parity/write/")
    tab.fill("#id_template", "")
    tab.type("#id_template", "Is {numbr} even?", delay=5)
    error = tab.locator("#template-check .problems.bad", has_text="Did you mean {number}?")
    error.wait_for()
    field = tab.locator("#id_template").bounding_box()
    box = error.bounding_box()
    # Right under the text box (the help text between them), not a screen or two below with the preview.
    assert 0 <= box["y"] - (field["y"] + field["height"]) < 160, (field, box)
    assert _in_view(box)
    _fits(tab, "the write page")
    error.scroll_into_view_if_needed()
    screenshot(tab, "phone-write-error-390")

    # Fixing the text replaces the error at the field; the preview below renders the instances.
    tab.fill("#id_template", "")
    tab.type("#id_template", "Is {number} even? Reply yes or no.", delay=5)
    tab.locator("#template-check >> text=The phrasing is valid for this task.").wait_for()
    assert tab.locator("#template-check .problems.bad").count() == 0
    assert tab.locator("#preview .card pre.prompt").count() >= 1
    assert tab.errors == []
    context.close()


def test_the_review_queue_on_a_phone_stacks_neighbours_and_counts_decisions(
    live_server, browser, screenshot, demo
):
    parity = Task.objects.get(benchmark__slug="demo", slug="parity")
    users = get_user_model().objects
    first = collection_services.instruction_submit(
        task=parity, template="Is {number} even? Reply yes or no.", author=users.get(username="dana")
    )
    collection_services.instruction_submit(
        task=parity, template="Tell me: is {number} an even number? yes/no", author=users.get(username="erin")
    )
    context, tab = _phone(browser, live_server, "carol")
    tab.goto(f"{live_server.url}/curate/")
    assert tab.inner_text("#pending-count") == "2 pending"
    item = tab.locator(f"#item-{first.id}")
    neighbours = item.locator(".neighbours")
    assert "Nearest approved phrasings" in neighbours.inner_text()
    # Under the item, as wide as its text: not squeezed into the checkbox's 26 px column.
    text_box = item.locator("pre.prompt").first.bounding_box()
    box = neighbours.bounding_box()
    assert box["width"] >= 250 and box["y"] > text_box["y"], box
    _fits(tab, "the review queue")
    screenshot(tab, "phone-review-queue-390")

    # An in-place approval: the count follows, and the card links to the runs the approval started.
    item.locator("button:has-text('Approve')").click()
    tab.locator(f"#item-{first.id}.decided").wait_for()
    tab.wait_for_function("document.getElementById('pending-count').textContent.trim() === '1 pending'")
    run = ScoringRun.objects.get(instruction=first)
    link = tab.locator(f"#item-{first.id} a[href='/runs/{run.id}/']")
    assert link.count() == 1 and "tiny-t5" in tab.inner_text(f"#item-{first.id}")
    _fits(tab, "the review queue after a decision")
    tab.evaluate("window.scrollTo(0, 0)")  # the sticky bulk bar would cover the card in a full-page shot
    screenshot(tab, "phone-review-approved-390")
    link.click()
    tab.wait_for_url(f"**/runs/{run.id}/")
    assert tab.errors == []
    context.close()


def test_the_model_page_and_my_phrasings_keep_the_key_figures_in_view(live_server, browser, screenshot, demo):
    parity = Task.objects.get(benchmark__slug="demo", slug="parity")
    dana = get_user_model().objects.get(username="dana")
    mine = collection_services.instruction_submit(
        task=parity, template="Is {number} even? Reply yes or no.", author=dana
    )
    collection_services.instruction_review(
        instruction=mine, reviewer=get_user_model().objects.get(username="carol"), status="approved"
    )
    context, tab = _phone(browser, live_server, "dana")

    tab.goto(f"{live_server.url}/models/tiny-t5/")
    table = tab.locator("#tasks ~ .scroll-frame table").first
    row = table.locator("tbody tr").first
    # The task and its AvgP with its interval, readable without scrolling sideways; the rest scrolls, and
    # the page says so.
    assert _in_view(row.locator("td.key-col").bounding_box())
    avgp = row.locator("td").nth(1)
    assert _in_view(avgp.bounding_box()) and "[" in avgp.inner_text()
    assert "Mean accuracy over the phrasings" in avgp.locator(".figure").get_attribute("title")
    assert "Mean accuracy over the phrasings" in table.locator("thead th").nth(1).get_attribute("title")
    assert tab.locator("#tasks ~ .scroll-cue").first.is_visible()
    # Tasks near chance say so where their AvgP is shown.
    near_chance = [s for s in tab.locator("td .figure").all() if "not above chance" in (s.inner_text() or "")]
    for badge in near_chance:
        assert "[" in badge.inner_text()
    _fits(tab, "the model page")
    screenshot(tab, "phone-model-390")
    _view(tab, "#tasks", "phone-model-tasks-390")

    # The key column stays put while the figures scroll under it.
    scroller = tab.locator("#tasks ~ .scroll-frame .scroll").first
    before = row.locator("td.key-col").bounding_box()["x"]
    scroller.evaluate("box => { box.scrollLeft = box.scrollWidth; }")
    tab.wait_for_timeout(100)
    assert abs(row.locator("td.key-col").bounding_box()["x"] - before) < 1
    _view(tab, "#tasks", "phone-model-tasks-scrolled-390")

    tab.goto(f"{live_server.url}/me/phrasings/")
    card = tab.locator(f"#phrasing-{mine.id}")
    accuracy = card.locator("tbody tr td").nth(1)
    text = accuracy.inner_text()
    assert "%" in text and "[" in text, text  # the phrasing's accuracy with its interval
    assert "Chance level" in accuracy.locator(".figure").get_attribute("title")
    _fits(tab, "my phrasings")
    screenshot(tab, "phone-my-phrasings-390")
    _view(tab, f"#phrasing-{mine.id}", "phone-my-phrasings-card-390")
    assert tab.errors == []
    context.close()


def test_the_soft_prompt_outcome_on_a_phone_shows_its_delta(
    live_server, browser, screenshot, demo, settings, tmp_path
):
    from evaluation.ml.config import AlignConfig
    from evaluation.models import LanguageModel
    from evaluation.robustness import softprompts

    settings.SOFTPROMPT_DIR = tmp_path / "softprompts"
    config = AlignConfig(num_virtual_tokens=2, steps=3, instances_per_batch=2, paraphrases=1)
    soft = softprompts.softprompt_queue(model=LanguageModel.objects.get(name="tiny-t5"), config=config)
    soft.refresh_from_db()
    assert soft.status == "succeeded", soft.error

    context, tab = _phone(browser, live_server)
    tab.goto(f"{live_server.url}/softprompts/{soft.id}/")
    tab.wait_for_selector("[data-chart='curve-chart'] .main-svg")
    total = tab.locator("table.stack tr.total")
    delta = total.locator("td.key")
    assert "macro average" in total.inner_text()
    assert _in_view(delta.bounding_box()) and "[" in delta.inner_text() and "pp" in delta.inner_text()
    assert "Δ" in tab.evaluate("el => getComputedStyle(el, '::before').content", delta.element_handle())
    # The loss chart draws Total last, on top of CE, dashed.
    names = tab.evaluate("document.querySelector(\"[data-chart='curve-chart']\").data.map(t => t.name)")
    assert names[-1] == "Total" or names[-1].startswith("Agreement"), names
    _fits(tab, "the soft-prompt page")
    screenshot(tab, "phone-softprompt-390")
    _view(tab, "h2:has-text('Outcome')", "phone-softprompt-outcome-390")

    # Its leaderboard row (held-out view): short labels under the box plot, full names on hover.
    tab.goto(f"{live_server.url}/b/demo/leaderboard/?set=heldout")
    chart = tab.locator("#board [data-chart='box-chart']")
    chart.locator(".main-svg").first.wait_for()
    labels = chart.evaluate("el => Array.from(el.querySelectorAll('.xtick text')).map(t => t.textContent)")
    full = tab.evaluate("document.querySelector(\"#board [data-chart='box-chart']\").data.map(t => t.name)")
    assert any("soft prompt" in name for name in full), full
    assert labels and all(len(label) <= 16 for label in labels), labels
    _fits(tab, "the held-out leaderboard")
    screenshot(tab, "phone-leaderboard-heldout-390")
    _view(tab, "#board table.figures", "phone-leaderboard-heldout-table-390")
    _view(tab, "#board [data-chart='box-chart']", "phone-leaderboard-heldout-box-390")
    assert tab.errors == []
    context.close()
