"""Ranked views say which differences are real: rank intervals and tie groups on the leaderboard and task
pages and in the API, from the paired bootstrap on the common ground (evaluation/stats/ranking.py)."""

from __future__ import annotations

import numpy as np
import pytest

from collection.demo import load_demo
from collection.models import Task
from evaluation.models import LanguageModel
from tests.evaluation.published import imported_variant

pytestmark = pytest.mark.django_db


@pytest.fixture
def board(db):
    """Three published rows on every demo phrasing: `strong` is 25 points above `twin_a` on every phrasing;
    `twin_b` is `twin_a` plus noise that averages to zero on every task, so the twins cannot be told apart."""
    load_demo(generated_per_task=0)
    rng = np.random.default_rng(0)
    strong, twin_a, twin_b = {}, {}, {}
    for task in Task.objects.filter(benchmark__slug="demo"):
        phrasings = list(task.instructions.filter(status="approved").order_by("id"))
        noise = rng.normal(0, 0.06, len(phrasings))
        noise -= noise.mean()
        for instruction, e in zip(phrasings, noise, strict=True):
            base = float(rng.uniform(0.45, 0.6))
            twin_a[instruction], twin_b[instruction] = base, float(np.clip(base + e, 0, 1))
            strong[instruction] = base + 0.25
    for name, accuracies in (("strong", strong), ("twin-a", twin_a), ("twin-b", twin_b)):
        imported_variant(name, accuracies)


def test_api_rows_carry_rank_intervals_and_tie_groups(client, board):
    body = client.get("/api/leaderboard/", {"benchmark": "demo"}).json()
    rows = {r["model"]: r for r in body["results"]}
    assert body["results"][0]["model"] == "strong"
    assert rows["strong"]["rank_interval"] == [1, 1] and rows["strong"]["tie_group"] == 1
    for twin in ("twin-a", "twin-b"):
        assert rows[twin]["rank_interval"] == [2, 3] and rows[twin]["tie_group"] == 2
    assert "Bonferroni" in body["ranking_rule"]


def test_the_standing_follows_the_sort_figure_and_direction(client, board):
    body = client.get("/api/leaderboard/", {"benchmark": "demo", "sort": "avgp", "dir": "asc"}).json()
    rows = {r["model"]: r for r in body["results"]}
    assert [r["model"] for r in body["results"]][-1] == "strong"
    assert rows["strong"]["rank_interval"] == [3, 3] and rows["strong"]["tie_group"] == 2
    assert rows["twin-a"]["tie_group"] == rows["twin-b"]["tie_group"] == 1
    by_model = client.get("/api/leaderboard/", {"benchmark": "demo", "sort": "model"}).json()
    assert {r["tie_group"] for r in by_model["results"]} == {None}  # names are not a measured order


def test_the_leaderboard_and_task_pages_show_them(client, board):
    page = client.get("/b/demo/leaderboard/").content.decode()
    assert "2–3" in page and 'data-tie-group="1"' in page and 'data-tie-group="2"' in page
    task = Task.objects.filter(benchmark__slug="demo").order_by("slug").first()
    page = client.get(f"/b/demo/t/{task.slug}/results/").content.decode()
    assert 'data-tie-group="1"' in page


def test_exports_carry_them(client, board):
    rows = client.get("/b/demo/leaderboard/", {"format": "json"}).json()
    standing = {r["model"]: (r["rank_low"], r["rank_high"], r["tie_group"]) for r in rows}
    assert standing == {"strong": (1, 1, 1), "twin-a": (2, 3, 2), "twin-b": (2, 3, 2)}
    csv = client.get("/b/demo/leaderboard/", {"format": "csv"}).content.decode().splitlines()
    assert csv[0].endswith("rank_low,rank_high,tie_group") and csv[1].endswith(",1,1,1")


def test_the_front_pages_name_the_leaders_with_intervals(client, board):
    home = client.get("/").content.decode()
    line = home[home.index('data-figure="avgp"') :].split("</p>")[0]
    assert "strong" in line and "twin" not in line and "[" in line  # the leader, with its interval
    assert "told apart from the other 2 ranked rows" in line
    detail = client.get("/b/demo/").content.decode()
    assert 'data-figure="avgp"' in detail and 'data-figure="q10"' in detail
    assert "provisional" not in detail  # every row is scored on every approved phrasing


def test_a_tied_top_is_named_as_a_tie(client, board):
    LanguageModel.objects.filter(name="strong").delete()
    page = client.get("/b/demo/").content.decode()
    line = page[page.index('data-figure="avgp"') :].split("</p>")[0]
    assert "twin-a" in line and "twin-b" in line and "cannot be told apart" in line


def test_a_leader_scored_on_few_phrasings_is_provisional(client, db):
    load_demo(generated_per_task=0)
    few = {}
    for task in Task.objects.filter(benchmark__slug="demo"):
        for instruction in task.instructions.filter(status="approved").order_by("id")[:2]:
            few[instruction] = 0.7
    imported_variant("early", few)
    page = client.get("/").content.decode()
    line = page[page.index('data-figure="avgp"') :].split("</p>")[0]
    assert "early" in line and "provisional" in line and "the only ranked row" in line
