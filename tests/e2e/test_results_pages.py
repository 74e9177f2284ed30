"""The results side in a real browser: a model scored on the demo, then its leaderboard (with charts and
htmx sorting), task grid, phrasing page and run page, with a screenshot of each."""

from __future__ import annotations

import pytest

from collection.demo import load_demo
from collection.models import Collection, Task
from evaluation.leaderboards.selectors import GRID_PAGE_SIZE
from evaluation.models import PhrasingResult, ScoringRun
from evaluation.runs import registry

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.e2e]


@pytest.fixture
def scored(tiny_models):
    load_demo()
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=8)
    # Celery runs eagerly in tests and these commits are real, so scoring and aggregates run inline here.
    for name, arch, family in [("tiny-t5", "t5", "seq2seq"), ("tiny-gpt2", "gpt2", "causal")]:
        registry.language_model_register(
            name=name,
            source=str(tiny_models[arch]),
            family=family,
            tuned_on=[Collection.objects.get(slug="demotune")],
        )


def test_a_visitor_reads_the_leaderboard_and_drills_down(live_server, page, screenshot, scored):
    page.goto(f"{live_server.url}/b/demo/")
    page.click("text=Robustness leaderboard")
    page.wait_for_selector("#board .chart .main-svg")  # plotly drew the charts
    assert page.locator("#board tbody tr").count() == 2
    screenshot(page, "leaderboard")

    # Sorting by model name swaps the board through htmx and updates the address bar.
    page.click("#board th >> text=Model")
    page.wait_for_url("**sort=model**")
    page.wait_for_selector("#board .chart .main-svg")
    names = page.locator("#board tbody tr td:first-child").all_inner_texts()
    assert names == sorted(names)
    page.select_option("#set", "unobserved")
    page.wait_for_url("**set=unobserved**")
    screenshot(page, "leaderboard-unobserved")

    page.goto(f"{live_server.url}/b/demo/t/parity/results/")
    page.wait_for_selector("#grid table")
    approved = Task.objects.get(benchmark__slug="demo", slug="parity").instructions.filter(status="approved")
    assert page.locator("#grid tbody tr").count() == min(GRID_PAGE_SIZE, approved.count())
    screenshot(page, "task-results")

    phrasing = PhrasingResult.objects.filter(task__slug="parity").first().revision.instruction_id
    page.goto(f"{live_server.url}/phrasings/{phrasing}/")
    assert page.locator("#predictions .card").count() == 8
    screenshot(page, "phrasing")

    run = ScoringRun.objects.first()
    page.goto(f"{live_server.url}/runs/{run.id}/")
    assert "100%" in page.inner_text("#progress")
    screenshot(page, "run")
    assert page.errors == []


def test_the_results_pages_fit_a_phone_and_the_comparison_reads_at_a_glance(
    live_server, browser, screenshot, scored
):
    from evaluation.models import ModelVariant

    a, b = (v.id for v in ModelVariant.objects.order_by("model__name"))
    phrasing = PhrasingResult.objects.filter(task__slug="parity").first().revision.instruction_id
    pages = {
        "leaderboard": "/b/demo/leaderboard/",
        "task-results": "/b/demo/t/parity/results/",
        "compare": f"/b/demo/compare/?a={a}&b={b}",
        "phrasing": f"/phrasings/{phrasing}/",
    }
    for width in (1280, 390):
        context = browser.new_context(viewport={"width": width, "height": 900})
        tab = context.new_page()
        errors = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        for name, path in pages.items():
            tab.goto(f"{live_server.url}{path}")
            if name == "compare":
                assert "Shared ground:" in tab.inner_text("main") and "A − B" in tab.inner_text("main")
            # Nothing makes the page itself scroll sideways; wide tables scroll inside their own box.
            page_width = tab.evaluate("document.documentElement.scrollWidth")
            assert page_width <= width, f"{name} at {width} px lays out {page_width} px wide"
            screenshot(tab, f"{name}-{width}")
        if width == 390:
            # The navigation wraps instead of widening the page.
            nav_box = tab.locator("header.top nav").bounding_box()
            assert nav_box["width"] <= 390
        assert errors == []
        context.close()


def test_the_soft_prompt_page_shows_its_outcome_at_both_widths(
    live_server, browser, screenshot, scored, settings, tmp_path
):
    from evaluation.ml.config import AlignConfig
    from evaluation.models import LanguageModel
    from evaluation.robustness import softprompts

    settings.SOFTPROMPT_DIR = tmp_path / "softprompts"
    model = LanguageModel.objects.get(name="tiny-t5")
    config = AlignConfig(num_virtual_tokens=2, steps=3, instances_per_batch=2, paraphrases=1)
    soft = softprompts.softprompt_queue(
        model=model, config=config
    )  # Celery is eager: trained and scored here
    soft.refresh_from_db()
    assert soft.status == "succeeded", soft.error
    for width in (1280, 390):
        context = browser.new_context(viewport={"width": width, "height": 900})
        tab = context.new_page()
        tab.goto(f"{live_server.url}/softprompts/{soft.id}/")
        text = tab.inner_text("main")
        assert "Loss per step" in text and "Outcome on its held-out unobserved phrasings" in text
        assert tab.evaluate("document.documentElement.scrollWidth") <= width
        screenshot(tab, f"softprompt-{width}")
        context.close()


def test_estimated_figures_are_labelled_as_estimates_at_both_widths(
    live_server, browser, screenshot, scored, tiny_models, settings
):
    from evaluation.leaderboards import aggregates
    from evaluation.runs import scoring

    settings.ADAPTIVE_TARGET_WIDTH = 0  # spend the whole budget
    model = registry.language_model_register(
        name="tiny-t5-sampled",
        source=str(tiny_models["t5"]),
        family="seq2seq",
        tuned_on=[Collection.objects.get(slug="demotune")],
        score=False,
        check_now=True,
    )
    variant = scoring.base_variant(model)
    parity = Task.objects.get(benchmark__slug="demo", slug="parity")
    run = scoring.scoring_adaptive(variant=variant, task=parity, budget_cells=20, enqueue=False)
    assert scoring.scoring_run_execute(run_id=run.id, task_id="e2e").status == "succeeded"
    aggregates.aggregates_refresh(variant_id=variant.id, task_id=parity.id)
    for width in (1280, 390):
        context = browser.new_context(viewport={"width": width, "height": 900})
        tab = context.new_page()
        errors = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        for name, path in (
            ("leaderboard", "/b/demo/leaderboard/"),
            ("task-results", "/b/demo/t/parity/results/"),
        ):
            tab.goto(f"{live_server.url}{path}")
            text = tab.inner_text("main")
            assert "tiny-t5-sampled" in text and "of cells" in text and "estimated" in text.lower()
            if name == "leaderboard":  # not on the common ground: no coverage count, a dash
                row = tab.locator("tr", has_text="tiny-t5-sampled").first.inner_text()
                assert "0/0" not in row and "–" in row
            page_width = tab.evaluate("document.documentElement.scrollWidth")
            assert page_width <= width, f"{name} at {width} px lays out {page_width} px wide"
            screenshot(tab, f"estimated-{name}-{width}")
        assert errors == []
        context.close()
