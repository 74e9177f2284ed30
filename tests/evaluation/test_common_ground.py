"""Leaderboards compare rows on the cells they share, report each row's coverage, and flag what is not
comparable: partial coverage, spread figures from too few phrasings, accuracy at chance."""

from __future__ import annotations

import re

import numpy as np
import pytest
from django.urls import reverse

from collection.demo import load_demo
from collection.models import Task
from evaluation.leaderboards import comparisons
from evaluation.leaderboards.aggregates import aggregates_refresh_many
from evaluation.leaderboards.common_ground import choose_ground
from evaluation.models import LanguageModel, ModelVariant, Prediction, VariantKind
from tests.evaluation.published import imported_variant, synthetic_variant

pytestmark = pytest.mark.django_db


def test_the_greedy_rule_keeps_rows_that_keep_half_the_ground():
    cells = {1: {(1, p) for p in range(10)}, 2: {(1, p) for p in range(6)}, 3: {(1, 0), (1, 1)}}
    ground = choose_ground(cells, [1, 2, 3], min_share=0.5)
    assert ground.ranked == [1, 2] and ground.partial == [3]
    assert ground.cells == frozenset(cells[2]) and (ground.tasks, ground.phrasings) == (1, 6)
    # The share is against the first row's cells: a chain of rows each keeping 6 of the last ground's
    # cells cannot whittle it down below half of the largest row.
    chain = {1: set(range(10)), 2: set(range(7)), 3: set(range(4)) | {20, 21, 22}}
    ground = choose_ground(chain, [1, 2, 3], min_share=0.5)
    assert ground.ranked == [1, 2] and ground.partial == [3]  # 4 of 7 is over half the ground, not of 10


def test_published_rows_and_rows_scored_here_share_no_cell():
    """A published row's accuracies are over its source's instances, a scored row's over the evaluation
    sample: the same (task, phrasing) pairs are not the same cells, so the other kind is never ranked."""
    cells = {1: {(1, p) for p in range(10)}, 2: {(1, p) for p in range(10)}, 3: {(1, p) for p in range(8)}}
    ground = choose_ground(cells, [1, 2, 3], min_share=0.5, published={2})
    assert ground.ranked == [1, 3] and ground.partial == [2] and not ground.published
    ground = choose_ground(cells, [2, 1, 3], min_share=0.5, published={2})
    assert ground.ranked == [2] and ground.partial == [1, 3] and ground.published


@pytest.fixture
def rows(db):
    """Three models on the demo benchmark: `wide` has every phrasing, `narrow` the first four of each task
    (4 of 6: it keeps 2/3 of the ground, so it is ranked), `single` one phrasing per task (partial)."""
    load_demo(generated_per_task=0)
    tasks = list(Task.objects.filter(benchmark__slug="demo").order_by("slug"))
    phrasings = {t: list(t.instructions.filter(status="approved").order_by("id")) for t in tasks}
    rng = np.random.default_rng(0)
    wide = {i: float(rng.uniform(0.5, 1.0)) for t in tasks for i in phrasings[t]}
    # narrow is better than wide on the shared phrasings, worse on its own average over everything wide has.
    narrow = {i: min(1.0, wide[i] + 0.05) for t in tasks for i in phrasings[t][:4]}
    single = {phrasings[t][0]: 0.99 for t in tasks}
    imported_variant("wide", wide)
    imported_variant("narrow", narrow)
    imported_variant("single", single)
    return tasks, phrasings, wide, narrow


def test_the_default_leaderboard_ranks_on_shared_cells_and_reports_coverage(client, rows):
    tasks, phrasings, wide, narrow = rows
    body = client.get("/api/leaderboard/", {"benchmark": "demo"}).json()
    assert body["ground"]["tasks"] == 4 and body["ground"]["phrasings"] == 16
    assert body["ground"]["partial_rows"] == 1
    results = {r["model"]: r for r in body["results"]}
    assert set(results) == {"wide", "narrow"}  # `single` is not ranked by default
    # Equal ground: the same task and phrasing counts on every ranked row.
    assert {(r["tasks"], r["phrasings"]) for r in results.values()} == {(4, 16)}
    # wide's figures are on the shared 16 phrasings, not its own 24.
    shared = [np.mean([wide[i] for i in phrasings[t][:4]]) for t in tasks]
    assert results["wide"]["avgp"] == pytest.approx(np.mean(shared))
    assert results["narrow"]["avgp"] == pytest.approx(
        np.mean([np.mean([narrow[i] for i in phrasings[t][:4]]) for t in tasks])
    )
    assert results["narrow"]["avgp"] > results["wide"]["avgp"]
    assert body["results"][0]["model"] == "narrow"  # ranked on the common ground
    assert results["wide"]["coverage"] == {
        "cells": 24,
        "tasks": 4,
        "shared_with_ground": 16,
        "share_of_ground": 1.0,
    }
    assert results["narrow"]["coverage"]["cells"] == 16 and results["wide"]["on_common_ground"]
    # On request, the partial row comes apart, flagged, with n/a spread figures (one phrasing per task).
    body = client.get("/api/leaderboard/", {"benchmark": "demo", "partial": "1"}).json()
    (single,) = body["partial"]
    assert single["model"] == "single" and not single["on_common_ground"]
    assert single["coverage"]["cells"] == 4 and single["coverage"]["shared_with_ground"] == 4
    assert single["std"] is None and single["spread"] is None and single["avgp"] == pytest.approx(0.99)


def test_a_row_scored_here_is_not_ranked_with_published_rows_on_the_same_phrasings(client, rows):
    tasks, phrasings, _, _ = rows
    """`here` has a third of each task's phrasings, over the evaluation sample: fewer cells than `wide` or
    `narrow`, but rows scored here lead, so it is the ground, and the published rows come apart, sharing none
    of it (a published row with more cells used to put every row scored here apart)."""
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=4)
    here = synthetic_variant("here")
    kept = {phrasings[t][0].current_revision_id for t in tasks} | {
        phrasings[t][1].current_revision_id for t in tasks
    }
    Prediction.objects.filter(variant=here).exclude(revision_id__in=kept).delete()
    aggregates_refresh_many({(here.id, t.id) for t in tasks})
    body = client.get("/api/leaderboard/", {"benchmark": "demo", "partial": "1"}).json()
    assert [r["model"] for r in body["results"]] == ["here"] and body["ground"]["phrasings"] == 8
    assert body["ground"]["instances"] == "each task's evaluation sample"
    assert {r["model"] for r in body["partial"]} == {"wide", "narrow", "single"}
    assert {r["coverage"]["shared_with_ground"] for r in body["partial"]} == {0}
    page = client.get(reverse("leaderboard", args=["demo"]), {"partial": "1"}).content.decode()
    assert "published rows, on the instances their source scored, are listed apart" in page


def test_the_page_states_the_ground_and_shows_partial_rows_on_request(client, rows):
    url = reverse("leaderboard", args=["demo"])
    page = client.get(url).content.decode()
    assert "Common ground:" in page and "16 (task, phrasing) pairs" in page
    assert ">single<" not in page.replace(" ", "") and "show it" in page
    page = client.get(url, {"partial": "1"}).content.decode()
    assert "Partial coverage (not ranked with the rows above)" in page and "partial coverage</span>" in page
    assert "n/a" in page and "Needs at least 3 phrasings" in page
    csv_text = client.get(url, {"format": "csv", "partial": "1"}).content.decode()
    assert "partial_coverage" in csv_text.splitlines()[0] and "single" in csv_text


def test_a_row_at_chance_is_flagged(client, db):
    load_demo(generated_per_task=0)
    tasks = list(Task.objects.filter(benchmark__slug="demo"))
    # Always "A"-like: every phrasing exactly at the task's chance level, so Std is 0 and it looks robust.
    accuracies = {}
    for task in tasks:
        options = [len(o) for o in task.instances.filter(split="eval").values_list("options", flat=True)]
        chance = float(np.mean([1 / n for n in options]))
        accuracies |= {i: chance for i in task.instructions.filter(status="approved")}
    imported_variant("always-a", accuracies)
    body = client.get("/api/leaderboard/", {"benchmark": "demo"}).json()
    (row,) = body["results"]
    assert row["std"] == pytest.approx(0.0) and row["below_chance"] is True
    assert "not above chance" in client.get(reverse("leaderboard", args=["demo"])).content.decode()


def test_the_task_page_ranks_rows_and_the_grid_mean_on_the_tasks_common_ground(client, rows):
    tasks, phrasings, wide, narrow = rows
    task = tasks[0]
    url = reverse("task_results", args=["demo", task.slug])
    page = client.get(url).content.decode()
    assert "Common ground:" in page and "2 rows ranked on the" in page and "4 (task, phrasing) pairs" in page
    # The grid's mean is over the two ranked models: the 4 phrasings both scored come first, with a mean;
    # the 2 only `wide` scored follow without one.
    grid = client.get(url, {"part": "grid"}, HTTP_HX_REQUEST="true").content.decode()
    assert "on the task's common ground" in grid
    order = [int(n) for n in re.findall(r'href="/phrasings/(\d+)/"', grid)]
    assert set(order[:4]) == {i.id for i in phrasings[task][:4]}
    assert set(order[4:]) == {i.id for i in phrasings[task][4:]}
    means = [np.mean([wide[i], narrow[i]]) for i in phrasings[task][:4]]
    best = phrasings[task][:4][int(np.argmax(means))]
    assert order[0] == best.id


def test_two_models_are_compared_on_their_shared_cells_with_paired_intervals(client, rows):
    tasks, phrasings, wide, narrow = rows
    ids = {v.model.name: v.id for v in ModelVariant.objects.select_related("model")}
    body = client.get("/api/compare/", {"benchmark": "demo", "a": ids["narrow"], "b": ids["wide"]}).json()
    assert body["ground"] == {"tasks": 4, "phrasings": 16}
    expected = np.mean([np.mean([narrow[i] - wide[i] for i in phrasings[t][:4]]) for t in tasks])
    avgp = body["overall"]["avgp"]
    assert avgp["difference"] == pytest.approx(expected)
    assert avgp["excludes_zero"] and avgp["ci"][0] > 0  # narrow is ahead on every shared phrasing
    assert len(body["tasks"]) == 4 and body["ci_method"] == "phrasings only"
    page = client.get(reverse("compare", args=["demo"]), {"a": ids["narrow"], "b": ids["wide"]})
    assert page.status_code == 200
    text = page.content.decode()
    assert "Shared ground:" in text and "16 (task, phrasing) pairs" in text and "A − B" in text
    # Bad input: the same model twice, a set that depends on the model, an unknown id, a published variant
    # against one scored here.
    same = client.get("/api/compare/", {"benchmark": "demo", "a": ids["wide"], "b": ids["wide"]})
    assert same.status_code == 400 and "two different models" in same.json()["detail"]
    observed = client.get(
        "/api/compare/", {"benchmark": "demo", "a": ids["narrow"], "b": ids["wide"], "set": "observed"}
    )
    assert observed.status_code == 400 and "differ by model" in observed.json()["detail"]
    unknown = client.get(reverse("compare", args=["demo"]), {"a": "999999", "b": "x²"})
    assert unknown.status_code == 400 and "Choose two models" in unknown.content.decode()
    scored_here = ModelVariant.objects.create(
        model=LanguageModel.objects.create(name="here", source="/nowhere", family="seq2seq"),
        kind=VariantKind.BASE,
    )
    with pytest.raises(comparisons.NotComparable, match="not paired with a variant scored here"):
        comparisons.compare_variants(
            benchmark=tasks[0].benchmark,
            a=ModelVariant.objects.get(model__name="wide"),
            b=scored_here,
            phrasing_set="all",
            version=None,
        )


def test_the_glance_shows_four_figures_with_definitions_and_every_figure_on_request(client, rows):
    url = reverse("leaderboard", args=["demo"])
    glance = client.get(url).content.decode()
    assert 'title="10th percentile of per-phrasing accuracy' in glance and ">Spread" in glance
    assert ">Consistency" not in glance and ">CPS" not in glance and "show every figure" in glance
    every = client.get(url, {"figures": "all"}).content.decode()
    assert ">Consistency" in every and ">CPS" in every and "show the glance" in every
    # Sorting keeps the choice in the URL.
    assert "figures=all&amp;sort=cps" in every or "figures=all&sort=cps" in every


def test_a_models_page_lists_its_worst_tasks_and_phrasings(client, rows):
    tasks, phrasings, wide, narrow = rows
    page = client.get(reverse("model_detail", args=["wide"]), {"order": "worst"}).content.decode()
    worst = min(wide, key=wide.get)
    section = page.split('id="worst-phrasings"', 1)[1]
    listed = [int(n) for n in re.findall(r'href="/phrasings/(\d+)/"', section)]
    assert listed[0] == worst.id and len(listed) == 10
    assert [wide[i] for i in sorted(wide, key=lambda i: listed.index(i.id) if i.id in listed else 99)][
        :10
    ] == sorted(wide.values())[:10]
    by_task = {t.name: np.mean([wide[i] for i in phrasings[t]]) for t in tasks}
    table = page.split('id="tasks"', 1)[1].split('id="worst-phrasings"', 1)[0]
    positions = {name: table.index(name) for name in by_task}
    assert sorted(by_task, key=by_task.get) == sorted(positions, key=positions.get)


def test_the_filters_keep_the_partial_rows_and_every_figure(client, rows):
    page = client.get(
        reverse("leaderboard", args=["demo"]), {"partial": "1", "figures": "all"}
    ).content.decode()
    form = page.split('<form class="filters"', 1)[1].split("</form>", 1)[0]
    assert 'name="partial" value="1"' in form and 'name="figures" value="all"' in form
    # A published row has no per-instance data: its Consistency is n/a for that reason, not for too few phrasings.
    assert "Published results have no per-instance data, so no Consistency." in page
