"""Runs over formats (issue 31 item 1): the declared formats scored as ordinary cells through the same runs
and budget gate, answers mapped back to the instance's option order, and the wording-vs-format
decomposition printed by `score_formats`."""

from __future__ import annotations

from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.urls import reverse

from collection import formats
from collection.demo import load_demo
from collection.models import Task
from core.errors import ApplicationError
from core.jobs import JobStatus
from evaluation.leaderboards.aggregates import aggregates_refresh_many
from evaluation.leaderboards.format_variance import correctness, format_spread
from evaluation.ml.config import ScoreConfig
from evaluation.ml.scoring import score
from evaluation.models import FormatPrediction, Prediction, ScoringPlan
from evaluation.runs import budget, format_cells, registry, scoring

pytestmark = pytest.mark.django_db

SAMPLE = 6


@pytest.fixture
def larger(db):
    load_demo(generated_per_task=12)
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=SAMPLE)
    return Task.objects.get(benchmark__slug="demo", slug="larger-number")


@pytest.fixture
def variant(tiny_models):
    model = registry.language_model_register(
        name="tiny-t5", source=str(tiny_models["t5"]), family="seq2seq", score=False, check_now=True
    )
    return scoring.base_variant(model)


def _formattable(task):
    return format_cells.formattable_revisions(scoring.approved_revisions(task))


def test_a_run_over_formats_scores_each_cell_once_and_maps_answers_back(larger, variant, tiny_models):
    revisions = _formattable(larger)[:2]
    assert len(revisions) == 2
    run = scoring.scoring_run_create(
        variant=variant,
        revisions=revisions,
        trigger="manual",
        task=larger,
        enqueue=False,
        formats=format_cells.DECLARED,
    )
    assert run.total_cells == 2 * len(formats.DECLARED) * SAMPLE and run.formats == list(
        format_cells.DECLARED
    )
    done = scoring.scoring_run_execute(run_id=run.id, task_id="test")
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert FormatPrediction.objects.filter(run=run).count() == run.total_cells == done.done_cells
    assert not Prediction.objects.filter(variant=variant).exists()  # the leaderboards' cells are untouched
    # Running it again computes nothing.
    assert (
        scoring.scoring_run_create(
            variant=variant,
            revisions=revisions,
            trigger="manual",
            task=larger,
            enqueue=False,
            formats=format_cells.DECLARED,
        )
        is None
    )
    # A reversed format's stored scores are the scorer's, put back in the instance's option order.
    stored = FormatPrediction.objects.filter(run=run, format_key="parens-lines-reversed").select_related(
        "revision__instruction__task", "instance"
    )[0]
    cell = format_cells.FormatCell(stored.revision, stored.instance, formats.BY_KEY["parens-lines-reversed"])
    assert cell.positions == list(reversed(range(len(stored.instance.options))))
    loaded = scoring._models().get(variant.spec(), "cpu")
    [(_, direct)] = [
        pair
        for batch in score(loaded, [cell.item()], ScoreConfig(batch_size=4, device="cpu"))
        for pair in batch
    ]
    assert stored.logliks == pytest.approx(list(reversed(direct.logliks)), abs=1e-5)
    assert stored.predicted == cell.positions[direct.predicted]
    assert stored.correct == (stored.predicted == stored.instance.gold)
    assert "(A) " in cell.item().rest


def test_unknown_formats_and_fixed_layouts_are_refused(larger, variant):
    revisions = _formattable(larger)[:1]
    with pytest.raises(ApplicationError, match="Unknown format 'upside-down'"):
        scoring.scoring_run_create(
            variant=variant, revisions=revisions, trigger="manual", formats=["upside-down"]
        )
    fixed = [r for r in scoring.approved_revisions(larger) if not formats.formattable(r.template)][:1]
    with pytest.raises(ApplicationError, match="fixes the layout of its options"):
        scoring.scoring_run_create(
            variant=variant, revisions=fixed, trigger="manual", formats=format_cells.DECLARED
        )
    with pytest.raises(ApplicationError, match="cannot be adaptive"):
        scoring.scoring_run_create(
            variant=variant,
            revisions=revisions,
            trigger="manual",
            formats=format_cells.DECLARED,
            budget_cells=3,
        )


def test_format_runs_pass_the_budget_gate_like_any_bulk_work(larger, variant, settings):
    settings.SCORING_BUDGET_CELLS = 10
    runs = scoring.scoring_formats(variants=[variant], task=larger, wordings=2)
    assert runs and all(run.status == JobStatus.PLANNED and run.plan_id for run in runs)
    plan = ScoringPlan.objects.get(id=runs[0].plan_id)
    assert sum(run.to_compute for run in plan.runs.all()) == 2 * len(formats.DECLARED) * SAMPLE
    # The plan says how much of it is format cells, before anything runs.
    [row] = budget.plan_rows(plan)
    assert row.format_cells == row.cells == 2 * len(formats.DECLARED) * SAMPLE and row.format_share == 1
    assert "in declared formats" in "\n".join(budget.plan_text(plan))


def test_score_formats_scores_and_prints_the_decomposition(larger, variant):
    call_command("score", "--model", "tiny-t5", "--task", "larger-number", stdout=StringIO())
    out = StringIO()
    call_command(
        "score_formats",
        "--model",
        "tiny-t5",
        "--task",
        "larger-number",
        "--wordings",
        "4",
        "--samples",
        "200",
        stdout=out,
    )
    text = out.getvalue()
    assert "4 wordings x 7 formats" in text
    for name in ("wording", "format", "interaction"):
        assert f"{name:<12} share" in text
    grid, left_out, kept = correctness(variant, larger)
    # The formattable wordings past the first four are not scored in the declared formats: left out, and said.
    assert grid.shape == (4, 7, SAMPLE) and not np.isnan(grid).any()
    assert left_out == len(_formattable(larger)) - 4 > 0
    assert f"{left_out} wording(s) left out" in text
    # The as-written column is the ordinary predictions.
    written = dict(
        Prediction.objects.filter(variant=variant, revision_id=kept[0]).values_list("instance_id", "correct")
    )
    assert sorted(grid[0, 0]) == sorted(float(v) for v in written.values())
    spread = format_spread(variant, larger, samples=100)
    assert spread.decomposition is not None and spread.decomposition.shape == (4, 7, SAMPLE)

    # Phrasings written for Alpaca-format models alone are never scored on this one: they count neither as
    # wordings left out for a missing cell nor as fixed layouts (scoring.approved_revisions' rule).
    others = larger.instructions.filter(status="approved").exclude(current_revision_id__in=kept)
    assert others.count() >= 2
    larger.instructions.filter(id__in=list(others.values_list("id", flat=True)[:2])).update(
        prompt_format="alpaca"
    )
    after = format_spread(variant, larger, samples=100)
    assert after.revisions == spread.revisions
    assert after.left_out + after.fixed_layout == spread.left_out + spread.fixed_layout - 2


def test_the_task_page_model_page_and_api_show_the_decomposition(larger, variant, client):
    call_command("score", "--model", "tiny-t5", "--task", "larger-number", stdout=StringIO())
    call_command(
        "score_formats",
        "--model",
        "tiny-t5",
        "--task",
        "larger-number",
        "--wordings",
        "4",
        "--samples",
        "50",
        stdout=StringIO(),
    )
    aggregates_refresh_many({(variant.id, larger.id)})  # the workers' refresh (on commit, which tests skip)
    url = reverse("task_results", args=["demo", "larger-number"])
    # The page loads the section after it shows (htmx), as a fragment that follows the format cells.
    assert 'hx-get="' + url + '?part=formats"' in client.get(url).content.decode()
    task_page = client.get(url, {"part": "formats"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Wording vs format" in task_page and "4 wordings × 7 formats" in task_page
    assert task_page.count('class="cell"') >= 4 * 7  # every prompt of the grid
    assert "(A) lines rev" in task_page
    assert (
        "s fix their options&#x27; layout in their text" in task_page
        or "fix their options' layout" in task_page
    )
    model_page = client.get(reverse("model_detail", args=["tiny-t5"])).content.decode()
    assert 'id="formats"' in model_page and "Larger number" in model_page.split('id="formats"')[1]
    body = client.get("/api/results/", {"task": larger.id, "include": "formats"}).json()
    [entry] = body["formats"]
    assert entry["wordings"] == 4 and len(entry["formats"]) == 7
    assert entry["formats"][0]["key"] == formats.AS_WRITTEN.key
    spread = format_spread(variant, larger, samples=50)
    for name in ("wording", "format", "interaction"):
        share = spread.decomposition.shares[name]
        assert entry["shares"][name]["share"] == (None if share is None else pytest.approx(share, abs=1e-6))
    both = client.get("/api/results/", {"task": larger.id, "include": "fragile,formats"}).json()
    assert "fragile" in both and "formats" in both
    assert client.get("/api/results/", {"task": larger.id, "include": "formats,nope"}).status_code == 400
