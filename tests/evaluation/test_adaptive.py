"""Adaptive runs and estimated figures, in process (evaluation/leaderboards/adaptive_estimates.py; the real-worker test is
test_worker_adaptive.py): an adaptive run spends its budget in rounds, stops early once its intervals are
narrow enough, its cells are reused by an exhaustive run, and the pages label its figures as estimates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from collection import services as collection_services
from collection.demo import load_demo
from collection.models import Collection, Task
from core.errors import ApplicationError
from core.jobs import JobStatus
from evaluation.leaderboards import adaptive_estimates, aggregates
from evaluation.models import Prediction, RunMode, ScoringRun, TaskSummary
from evaluation.runs import registry, scoring
from evaluation.stats import estimation, figure_registry, metrics

pytestmark = pytest.mark.django_db

SAMPLE = 12  # instances per task: 6 phrasings x 12 = 72 cells on the parity task


@pytest.fixture
def parity(db, settings):
    load_demo(generated_per_task=0)
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=SAMPLE)
    settings.SCORING_CHUNK_CELLS = 5  # several rounds
    settings.ADAPTIVE_TARGET_WIDTH = 0  # spend the whole budget
    return Task.objects.get(benchmark__slug="demo", slug="parity")


@pytest.fixture
def variant(tiny_models):
    model = registry.language_model_register(
        name="tiny-t5", source=str(tiny_models["t5"]), family="seq2seq", score=False, check_now=True
    )
    return scoring.base_variant(model)


def execute(run: ScoringRun) -> ScoringRun:
    done = scoring.scoring_run_execute(run_id=run.id, task_id="test")
    assert done.status == JobStatus.SUCCEEDED, done.error
    return done


def test_an_adaptive_run_spends_its_budget_and_an_exhaustive_run_computes_only_the_rest(parity, variant):
    run = scoring.scoring_adaptive(variant=variant, task=parity, budget_cells=20)
    assert (run.mode, run.budget_cells, run.total_cells, run.cached_cells) == (RunMode.ADAPTIVE, 20, 20, 0)
    run = execute(run)
    sampled = set(Prediction.objects.filter(variant=variant).values_list("id", flat=True))
    assert len(sampled) == Prediction.objects.filter(run=run).count() == run.done_cells == 20
    assert run.config["adaptive"]["stopped"] == "budget"
    # Balanced first: the first half of the budget (adaptive_estimates.FIRST_SHARE) gives every phrasing of the
    # task cells before any has two more than another. Later rounds follow the intervals, so a phrasing may
    # stay at one cell (seen: [1, 4, 4, 5, 3, 3]; the rounds are seeded by the run's id).
    first_round = math.ceil(20 * adaptive_estimates.FIRST_SHARE)
    first = (
        Prediction.objects.filter(run=run).order_by("id").values_list("revision_id", flat=True)[:first_round]
    )
    per_phrasing = [list(first).count(r.id) for r in run.revisions.all()]
    assert min(per_phrasing) >= 1 and max(per_phrasing) - min(per_phrasing) <= 1

    aggregates.aggregates_refresh(variant_id=variant.id, task_id=parity.id)
    figures = TaskSummary.objects.get(variant=variant, task=parity, phrasing_set="all").figures
    assert figures["estimated"] is True
    assert figures["cells_share"] == pytest.approx(20 / (6 * SAMPLE))
    low, high = figures["ci"]["avgp"]
    assert low <= figures["avgp"] <= high and high - low > 0
    assert figures["consistency"] is None
    assert len(figures["phrasing_estimates"]) == 6  # every phrasing is partly scored

    (exhaustive,) = scoring.scoring_runs_for_variant(
        variant=variant, trigger="manual", task=parity, enqueue=False
    )
    assert (exhaustive.total_cells, exhaustive.cached_cells) == (6 * SAMPLE, 20)
    execute(exhaustive)
    # No cell computed twice: the sampled predictions are the same rows, the rest is the exhaustive run's.
    assert set(Prediction.objects.filter(run=run).values_list("id", flat=True)) == sampled
    assert Prediction.objects.filter(run=exhaustive).count() == 6 * SAMPLE - 20
    assert Prediction.objects.filter(variant=variant).count() == 6 * SAMPLE
    aggregates.aggregates_refresh(variant_id=variant.id, task_id=parity.id)
    figures = TaskSummary.objects.get(variant=variant, task=parity, phrasing_set="all").figures
    assert "estimated" not in figures and figures["ci_method"] == "instances and phrasings"


def test_an_adaptive_run_stops_early_once_its_intervals_are_narrow_enough(parity, variant, settings):
    settings.ADAPTIVE_TARGET_WIDTH = 1.0  # any interval will do: the balanced first half is all it scores
    run = execute(scoring.scoring_adaptive(variant=variant, task=parity, budget_cells=20))
    assert Prediction.objects.filter(run=run).count() == math.ceil(20 * adaptive_estimates.FIRST_SHARE)
    assert run.config["adaptive"]["stopped"] == "intervals narrow enough"
    assert run.config["adaptive"]["widest_interval"] <= 1.0


def test_its_default_budget_is_the_share_setting_and_a_bad_budget_is_refused(parity, variant, settings):
    settings.ADAPTIVE_BUDGET_SHARE = 0.25
    run = scoring.scoring_adaptive(variant=variant, task=parity)
    assert run.budget_cells == math.ceil(0.25 * 6 * SAMPLE)
    with pytest.raises(ApplicationError, match="at least one cell"):
        scoring.scoring_adaptive(variant=variant, task=parity, budget_cells=0)


def test_a_phrasing_approved_on_a_large_row_is_estimated_from_a_sample_when_the_setting_says_so(
    client, parity, variant, alice, carol, settings, django_capture_on_commit_callbacks
):
    execute(
        scoring.scoring_runs_for_variant(variant=variant, trigger="manual", task=parity, enqueue=False)[0]
    )
    settings.ADAPTIVE_APPROVAL_ABOVE_CELLS = SAMPLE - 1  # this task's rows count as large
    settings.ADAPTIVE_BUDGET_SHARE = 0.5
    instruction = collection_services.instruction_create(
        task=parity,
        template="Is {number} an even number? Answer yes or no.",
        collection=Collection.objects.get(slug="crowd"),
        author=alice,
    )
    with django_capture_on_commit_callbacks(execute=True):
        collection_services.instruction_review(instruction=instruction, reviewer=carol, status="approved")
    run = ScoringRun.objects.get(instruction=instruction)
    assert (run.mode, run.status, run.budget_cells) == (RunMode.ADAPTIVE, JobStatus.SUCCEEDED, SAMPLE // 2)
    assert Prediction.objects.filter(run=run).count() == SAMPLE // 2
    summary = TaskSummary.objects.get(variant=variant, task=parity, phrasing_set="all")
    assert summary.figures["estimated"] is True
    assert list(summary.figures["phrasing_estimates"]) == [str(instruction.current_revision_id)]

    html = client.get(reverse("phrasing_detail", args=[instruction.id])).content.decode()
    assert 'class="badge est"' in html and f" / {SAMPLE // 2} (sampled)" in html


def test_with_the_setting_off_an_approval_scores_the_whole_row(
    parity, variant, alice, carol, django_capture_on_commit_callbacks
):
    instruction = collection_services.instruction_create(
        task=parity,
        template="Is {number} an even number? Answer yes or no.",
        collection=Collection.objects.get(slug="crowd"),
        author=alice,
    )
    with django_capture_on_commit_callbacks(execute=True):
        collection_services.instruction_review(instruction=instruction, reviewer=carol, status="approved")
    run = ScoringRun.objects.get(instruction=instruction)
    assert (run.mode, run.budget_cells, run.total_cells) == (RunMode.EXHAUSTIVE, None, SAMPLE)


def test_the_pages_and_the_api_mark_an_estimated_task_until_it_is_exhaustive(client, parity, variant):
    execute(scoring.scoring_adaptive(variant=variant, task=parity, budget_cells=20))
    aggregates.aggregates_refresh(variant_id=variant.id, task_id=parity.id)
    share = "27.8%"  # 20 of 72 cells

    board = client.get(reverse("leaderboard", args=["demo"])).content.decode()
    assert "Estimated (not yet scored exhaustively)" in board and f"estimated · {share} of cells" in board
    results = client.get(reverse("task_results", args=["demo", "parity"])).content.decode()
    assert f"estimated · {share} of cells" in results
    assert 'class="badge est"' in results.split('id="grid"')[1]  # the grid's column, and its cells
    assert "~" in results.split('id="grid"')[1]

    body = client.get("/api/leaderboard/?benchmark=demo").json()
    assert body["results"] == []
    (row,) = body["estimated"]
    assert (row["estimated"], row["on_common_ground"]) == (True, False)
    assert row["cells_share"] == pytest.approx(20 / 72)
    assert row["ci"]["avgp"][0] <= row["avgp"] <= row["ci"]["avgp"][1]
    exported = client.get(reverse("task_results", args=["demo", "parity"]) + "?format=json").json()
    assert [r["estimated"] for r in exported] == [True]
    results = client.get("/api/results/", {"task": parity.id}).json()["results"]
    assert len(results) == 6 and not any(r["complete"] for r in results)
    for r in results:
        low, high = r["estimate"]["ci"]
        assert low <= r["estimate"]["accuracy"] <= high

    execute(
        scoring.scoring_runs_for_variant(variant=variant, trigger="manual", task=parity, enqueue=False)[0]
    )
    aggregates.aggregates_refresh(variant_id=variant.id, task_id=parity.id)
    board = client.get(reverse("leaderboard", args=["demo"])).content.decode()
    assert "Estimated (not yet scored exhaustively)" not in board and "badge est" not in board
    body = client.get("/api/leaderboard/?benchmark=demo").json()
    assert body["estimated"] == [] and [r["estimated"] for r in body["results"]] == [False]
    results = client.get("/api/results/", {"task": parity.id}).json()["results"]
    assert [r["estimate"] for r in results] == [None] * 6


def test_a_benchmark_row_with_an_estimated_task_averages_its_tasks_and_counts_exhaustive_ones_as_exact():
    estimated = {
        "avgp": 0.6,
        "q10": 0.4,
        "phrasings": 10,
        "instances": 100,
        "ci": {"avgp": (0.5, 0.7), "q10": (0.3, 0.5)},
        "estimated": True,
        "cells_scored": 100,
        "cells_total": 1000,
        "chance": 0.5,
    }
    exhaustive = {"avgp": 0.8, "q10": None, "phrasings": 2, "instances": 50, "ci": {"avgp": (0.7, 0.9)}}
    row = adaptive_estimates.benchmark_figures([estimated, exhaustive | {"chance": 0.25}])
    assert row["avgp"] == pytest.approx(0.7) and row["ci"]["avgp"] == pytest.approx((0.65, 0.75))
    assert row["q10"] == 0.4 and row["ci"]["q10"] == (0.3, 0.5)  # only the task that defines it
    assert (row["tasks"], row["estimated_tasks"], row["phrasings"]) == (2, 1, 12)
    assert row["cells_share"] == pytest.approx(200 / 1100) and row["chance"] == pytest.approx(0.375)


def test_with_stored_draws_a_benchmark_row_averages_its_tasks_draw_by_draw():
    rng = np.random.default_rng(4)
    names = figure_registry.names()

    def task(center):
        draws = {name: rng.normal(center, 0.05, 500) for name in names}
        figures = {name: float(draws[name].mean()) for name in names}
        low_high = {name: tuple(np.percentile(draws[name], [2.5, 97.5])) for name in names}
        return figures | {"ci": low_high, "estimated": True, "cells_scored": 10, "cells_total": 100}, draws

    (a, draws_a), (b, draws_b) = task(0.6), task(0.4)
    exact = {name: 0.5 for name in names} | {"ci": {}}
    row = adaptive_estimates.benchmark_figures([a, b, exact], [draws_a, draws_b, None])
    expected = np.percentile((draws_a["avgp"] + draws_b["avgp"] + 0.5) / 3, [2.5, 97.5])
    assert row["ci"]["avgp"] == pytest.approx(tuple(expected))
    assert row["ci_method"] == "estimated: the tasks' posterior draws averaged draw by draw"
    # Independent errors partly cancel: narrower than the mean of the bounds, which the fallback takes.
    fallback = adaptive_estimates.benchmark_figures([a, b, exact])
    assert fallback["ci_method"] == "estimated: mean of the tasks' intervals"
    width = row["ci"]["avgp"][1] - row["ci"]["avgp"][0]
    assert width < 0.85 * (fallback["ci"]["avgp"][1] - fallback["ci"]["avgp"][0])
    assert row["avgp"] == fallback["avgp"]  # the point is the same mean either way


def test_the_leaderboard_s_estimated_row_averages_the_stored_draws(parity, variant):
    from evaluation.leaderboards import common_ground
    from evaluation.stats import replicates

    execute(scoring.scoring_adaptive(variant=variant, task=parity, budget_cells=20))
    aggregates.aggregates_refresh(variant_id=variant.id, task_id=parity.id)
    summary = TaskSummary.with_replicates.get(variant=variant, task=parity, phrasing_set="all")
    draws = replicates.unpack(summary.replicates)
    assert len(draws["avgp"]) == estimation.DRAWS
    assert np.mean(draws["avgp"]) == pytest.approx(summary.figures["avgp"], abs=1e-6)
    board = common_ground.board(benchmark=parity.benchmark, phrasing_set="all", task_kind="", version="t")
    (row,) = [figures for v, figures, _ in board.estimated if v.id == variant.id]
    assert row["ci_method"] == "estimated: the tasks' posterior draws averaged draw by draw"
    assert row["ci"]["avgp"] == pytest.approx(tuple(np.percentile(draws["avgp"], [2.5, 97.5])), abs=1e-6)
    # The exact benchmark rows never take an estimated task's draws for bootstrap replicates.
    assert not variant.benchmark_summaries.filter(phrasing_set="all").exists()


def test_figure_draws_carry_the_replicate_names_and_equal_the_exhaustive_figures_on_a_full_matrix():
    rng = np.random.default_rng(1)
    right = rng.random((5, 30)) < 0.6
    matrix = adaptive_estimates.Matrix(list(range(5)), list(range(30)), np.ones_like(right), right)
    fitted = estimation.estimate_spread(matrix.cells(), matrix.shape)
    estimate = adaptive_estimates.TaskEstimate([], matrix, fitted)
    observed = np.array([True, True, False, False, False])
    draws = estimate.figure_draws(np.arange(5), observed, ~observed)
    replicates = metrics.replicate_figures(rng, 3, observed, right)
    assert set(draws) == set(replicates)
    assert np.isnan(draws["consistency"]).all()  # needs whole rows: never estimated

    figures = estimate.figures(draws, 5)
    exhaustive = metrics.point_figures(right, right.mean(axis=1), observed)
    assert {k: v for k, v in figures.items() if k in exhaustive and k != "consistency"} == pytest.approx(
        {k: v for k, v in exhaustive.items() if k != "consistency"}
    )
    assert figures["estimated"] and figures["cells_share"] == 1.0

    two = estimate.figure_draws(np.arange(2), observed[:2], ~observed[:2], min_phrasings=3)
    assert all(np.isnan(two[name]).all() for name in figure_registry.spread_names())
    assert not np.isnan(two["avgp"]).any()


def test_the_score_command_runs_an_adaptive_budget_and_the_run_page_says_so(client, parity, variant, capsys):
    call_command("score", "--model", "tiny-t5", "--task", "demo/parity", "--adaptive", "15")
    run = ScoringRun.objects.get(variant=variant)
    assert (run.mode, run.budget_cells, run.status) == (RunMode.ADAPTIVE, 15, JobStatus.SUCCEEDED)
    assert Prediction.objects.filter(run=run).count() == 15
    page = client.get(reverse("run_detail", args=[run.id])).content.decode()
    assert "at most 15 new cells" in page and "stopped: budget" in page
    with pytest.raises(CommandError, match="number of cells"):
        call_command("score", "--model", "tiny-t5", "--task", "demo/parity", "--adaptive", "many")
