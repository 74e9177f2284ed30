"""Issue 31 items 1-2 in the browser: the task results page and the model page show wording vs format (share
bars with intervals, every prompt's accuracy as a heat grid) at 1280 and 390 px.
Screenshots: test-output/screenshots/formats-*.png. The cells are tiny-t5's, scored through a run over the
declared formats; tiny-t5 answers nearly every prompt alike, so the correctness of its format cells is then
rewritten with a planted pattern (a wording effect, a format effect and noise) to give the page shares to draw."""

from __future__ import annotations

from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command

from collection.demo import load_demo
from collection.models import Task
from evaluation.leaderboards.aggregates import aggregates_refresh_many
from evaluation.models import FormatPrediction, ModelVariant, Prediction
from tests.e2e.conftest import SCREENSHOTS

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.e2e]


def test_the_task_and_model_pages_show_wording_vs_format(live_server, page, screenshot, demo_scored):
    load_demo(generated_per_task=16)
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=8)
    call_command("score", "--model", "tiny-t5", "--task", "larger-number", stdout=StringIO())
    call_command(
        "score_formats",
        "--model",
        "tiny-t5",
        "--task",
        "larger-number",
        "--wordings",
        "6",
        "--samples",
        "300",
        stdout=StringIO(),
    )
    rng = np.random.default_rng(0)
    wording = {}
    for cell in FormatPrediction.objects.all().order_by("id"):
        effect = wording.setdefault(cell.revision_id, rng.normal(0, 0.15))
        shift = {"parens-lines-reversed": -0.2, "letters-inline-reversed": -0.15, "closing-inline-given": 0.1}
        cell.correct = bool(rng.random() < np.clip(0.6 + effect + shift.get(cell.format_key, 0), 0, 1))
        cell.save(update_fields=["correct"])
    task = Task.objects.get(slug="larger-number")
    variant = ModelVariant.objects.get(model__name="tiny-t5", kind="base")
    assert Prediction.objects.filter(variant=variant, revision__instruction__task=task).exists()
    aggregates_refresh_many({(variant.id, task.id)})

    page.goto(f"{live_server.url}/b/demo/t/larger-number/results/#formats")
    section = page.locator("#formats")
    section.locator(".share-row").first.wait_for()  # the section loads after the page shows
    assert section.locator(".share-row").count() >= 2
    assert section.locator("table.format-grid tbody tr").count() == 6 + 1
    section.evaluate("el => el.scrollIntoView()")
    screenshot(page, "formats-task-1280")
    page.goto(f"{live_server.url}/models/tiny-t5/#formats")
    assert page.locator("#formats + p + div table tbody tr").count() == 1
    screenshot(page, "formats-model-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    for url, name in (
        ("/b/demo/t/larger-number/results/", "formats-task-390"),
        ("/models/tiny-t5/", "formats-model-390"),
    ):
        page.goto(live_server.url + url)
        # The task page loads its section after it shows; the model page has it at once (an h2).
        page.locator("#formats .format-spread, h2#formats").first.wait_for()
        page.locator("#formats").evaluate("el => el.scrollIntoView()")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{url} lays out {width} px wide at 390 px"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    assert not page.errors
