"""The REST API: leaderboard with every metric, models registered with a token, runs acted on by curators,
filters and pagination, and an OpenAPI schema served with offline docs."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from collection.demo import load_demo
from collection.models import Collection, Task
from core.jobs import JobStatus
from evaluation.models import BenchmarkSummary, LanguageModel, PhrasingResult, ScoringRun
from evaluation.runs import registry

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def scored(tiny_models, django_capture_on_commit_callbacks):
    load_demo()
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=3)
    with django_capture_on_commit_callbacks(execute=True):
        registry.language_model_register(
            name="tiny-t5",
            source=str(tiny_models["t5"]),
            family="seq2seq",
            tuned_on=[Collection.objects.get(slug="demotune")],
        )


def test_the_leaderboard_endpoint_returns_every_metric_per_variant(
    api, scored, django_assert_max_num_queries
):
    # 8: the estimated rows' version and their summaries, the ground's tasks and the ranked rows' replicates
    with django_assert_max_num_queries(8):
        body = api.get("/api/leaderboard/", {"benchmark": "demo"}).json()
    (row,) = body["results"]
    summary = BenchmarkSummary.objects.get(benchmark__slug="demo", phrasing_set="all", task_kind="")
    assert row["model"] == "tiny-t5" and row["kind"] == "base"
    for name in (
        "avgp",
        "std",
        "min",
        "q10",
        "median",
        "maxp",
        "spread",
        "cps",
        "consistency",
        "observed_avgp",
        "unobserved_avgp",
        "gap",
        "pdr",
    ):
        assert row[name] == pytest.approx(summary.figures[name]), name
    assert set(row["ci"]) >= {"avgp", "std", "gap"}
    unobserved = api.get("/api/leaderboard/", {"benchmark": "demo", "set": "unobserved"}).json()
    assert unobserved["results"][0]["phrasings"] == 12  # 3 crowd phrasings x 4 tasks
    assert api.get("/api/leaderboard/").status_code == 400
    assert api.get("/api/leaderboard/", {"benchmark": "nope"}).status_code == 404


def test_results_filter_and_paginate(api, scored):
    body = api.get("/api/results/", {"model": "tiny-t5", "benchmark": "demo"}).json()
    assert body["count"] == PhrasingResult.objects.count() == 24
    task = Task.objects.get(benchmark__slug="demo", slug="parity")
    assert api.get("/api/results/", {"task": task.id}).json()["count"] == 6
    assert len(api.get("/api/tasks/", {"benchmark": "demo"}).json()["results"]) == 4


def test_admins_register_models_with_a_token_and_others_cannot(
    api, admin_user, alice, tiny_models, django_capture_on_commit_callbacks
):
    load_demo()
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=2)
    payload = {
        "name": "api-t5",
        "source": str(tiny_models["t5"]),
        "family": "seq2seq",
        "tuned_on": ["demotune"],
        "trust_remote_code": True,
    }
    assert api.post("/api/models/", payload, format="json").status_code in (401, 403)
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=alice).key}")
    assert api.post("/api/models/", payload, format="json").status_code == 403
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin_user).key}")
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/models/", payload, format="json")
    assert response.status_code == 201, response.content
    model = LanguageModel.objects.get(name="api-t5")
    assert model.trust_remote_code is False  # never from the API
    assert {r.status for r in ScoringRun.objects.filter(variant__model=model)} == {JobStatus.SUCCEEDED}
    again = api.post("/api/models/", {**payload, "name": "api-t5-2", "family": "encoder"}, format="json")
    assert again.status_code == 400


def test_curators_cancel_runs_through_the_api(api, alice, carol, tiny_models):
    load_demo()
    model = registry.language_model_register(
        name="t", source=str(tiny_models["t5"]), family="seq2seq", score=False, check_now=True
    )
    run = registry.language_model_score_missing(model=model)[0]
    api.force_authenticate(alice)
    assert api.post(f"/api/runs/{run.id}/cancel/").status_code == 403
    api.force_authenticate(carol)
    assert api.post(f"/api/runs/{run.id}/cancel/").json()["status"] == "cancelled"
    response = api.post(f"/api/runs/{run.id}/cancel/")
    assert (
        response.status_code == 400 and "Only a planned, queued or running run" in response.json()["detail"]
    )


def test_the_schema_and_docs_are_served_without_a_cdn(api, db):
    schema = api.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/leaderboard/" in schema.content
    docs = api.get("/api/docs/").content.decode()
    assert "swagger" in docs.lower() and "cdn" not in docs.lower() and "unpkg" not in docs.lower()
