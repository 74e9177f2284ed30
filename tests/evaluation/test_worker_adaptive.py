"""An adaptive run in a real Celery worker process against Redis and PostgreSQL: it stops at its budget, the
pages and the API label its task's figures as estimates, and a later exhaustive run reuses its cells."""

from __future__ import annotations

import pytest
from django.db.models import Count
from django.urls import reverse

from collection.demo import load_demo
from collection.models import Task
from core.jobs import JobStatus
from evaluation.models import Prediction, TaskSummary
from evaluation.runs import registry, scoring
from tests.evaluation.test_worker_scoring import REDIS_URL, all_finished
from tests.workers import process_env, running_worker, send_score_run, wait_for

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.worker]

SAMPLE = 10  # 6 phrasings x 10 instances = 60 cells on the parity task
BUDGET = 20


@pytest.fixture
def env(tmp_path):
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()  # no jobs left over from earlier tests
    return process_env(
        CELERY_BROKER_URL=REDIS_URL,
        VAR_DIR=str(tmp_path),
        WORKER_DEVICE="cpu",
        SCORING_CHUNK_CELLS="5",  # one round per chunk: 10 balanced cells in two, then 5 and 5
        ADAPTIVE_TARGET_WIDTH="0",  # spend the whole budget
    )


def summary(variant, task) -> dict:
    row = TaskSummary.objects.filter(variant=variant, task=task, phrasing_set="all").first()
    return row.figures if row else {}


def test_an_adaptive_run_on_a_worker_stops_at_its_budget_and_an_exhaustive_run_reuses_its_cells(
    env, tiny_models, tmp_path, client
):
    load_demo(generated_per_task=0)
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=SAMPLE)
    task = Task.objects.get(benchmark__slug="demo", slug="parity")
    model = registry.language_model_register(
        name="tiny-t5", source=str(tiny_models["t5"]), family="seq2seq", score=False, check_now=True
    )
    variant = scoring.base_variant(model)
    run = scoring.scoring_adaptive(variant=variant, task=task, budget_cells=BUDGET, enqueue=False)
    log = tmp_path / "worker.log"

    with running_worker(env, queues="gpu,default,gpu-bulk", log=log):
        send_score_run(env, run.id)
        wait_for(all_finished, timeout=180, what="the adaptive run", log=log)
        wait_for(
            lambda: summary(variant, task).get("cells_scored") == BUDGET,
            timeout=60,
            what="its estimated figures",
            log=log,
        )
        run.refresh_from_db()
        assert run.status == JobStatus.SUCCEEDED, run.error
        assert run.worker.startswith("test-")
        # Stopped at its budget, in rounds of one chunk each.
        sampled = set(Prediction.objects.filter(variant=variant).values_list("id", flat=True))
        assert len(sampled) == Prediction.objects.filter(run=run).count() == BUDGET
        assert (run.chunks, run.done_cells, run.total_cells) == (4, BUDGET, BUDGET)
        assert run.config["adaptive"]["stopped"] == "budget"

        # The pages and the API say its figures are estimates, with the share of cells scored.
        figures = summary(variant, task)
        assert figures["estimated"] is True
        assert figures["cells_share"] == pytest.approx(BUDGET / 60)
        badge = "estimated · 33.3% of cells"
        assert badge in client.get(reverse("leaderboard", args=["demo"])).content.decode()
        assert badge in client.get(reverse("task_results", args=["demo", "parity"])).content.decode()
        sampled_phrasing = Prediction.objects.filter(run=run).first().revision.instruction_id
        phrasing = client.get(reverse("phrasing_detail", args=[sampled_phrasing])).content.decode()
        assert 'class="badge est"' in phrasing and "(sampled)" in phrasing
        (row,) = client.get("/api/leaderboard/?benchmark=demo").json()["estimated"]
        assert row["estimated"] is True and row["cells_share"] == pytest.approx(BUDGET / 60)
        assert row["ci"]["avgp"][0] <= row["avgp"] <= row["ci"]["avgp"][1]

        # The exhaustive run computes only the cells the adaptive one left.
        (exhaustive,) = scoring.scoring_runs_for_variant(
            variant=variant, trigger="manual", task=task, enqueue=False
        )
        assert (exhaustive.total_cells, exhaustive.cached_cells) == (60, BUDGET)
        send_score_run(env, exhaustive.id)
        wait_for(all_finished, timeout=180, what="the exhaustive run", log=log)
        wait_for(
            lambda: "ci_method" in summary(variant, task) and "estimated" not in summary(variant, task),
            timeout=60,
            what="its exhaustive figures",
            log=log,
        )
    exhaustive.refresh_from_db()
    assert exhaustive.status == JobStatus.SUCCEEDED, exhaustive.error
    assert set(Prediction.objects.filter(run=run).values_list("id", flat=True)) == sampled
    assert Prediction.objects.filter(run=exhaustive).count() == 60 - BUDGET
    assert Prediction.objects.filter(variant=variant).count() == 60
    duplicates = (
        Prediction.objects.values("variant", "revision", "instance").annotate(n=Count("id")).filter(n__gt=1)
    )
    assert not duplicates.exists()
    board = client.get(reverse("leaderboard", args=["demo"])).content.decode()
    assert "badge est" not in board and "tiny-t5" in board
    body = client.get("/api/leaderboard/?benchmark=demo").json()
    assert body["estimated"] == [] and [r["estimated"] for r in body["results"]] == [False]
