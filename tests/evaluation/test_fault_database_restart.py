"""PostgreSQL stopped and started again while a real worker is scoring: the run resumes where its last stored
batch ended, ends with exactly one prediction per cell, and the stored aggregates are exactly what a full
refresh from the predictions gives (each refresh is one transaction, so none is half-written).

It stops this machine's whole PostgreSQL cluster, cutting every other connection too, so it runs only when
asked: FAULT_TESTS_RESTART_POSTGRES=1, which .ci/run sets. It skips where it cannot restart the cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest
import redis
from django.db import connections
from django.db.models import Count

from collection.demo import load_demo
from core.jobs import JobStatus
from evaluation.leaderboards.aggregates import aggregates_refresh_many
from evaluation.models import BenchmarkSummary, PhrasingResult, Prediction, ScoringRun, TaskSummary
from evaluation.runs import registry, scoring
from tests.workers import process_env, running_worker, send_score_run, wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.worker,
    pytest.mark.postgres,
]

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
DOWN_SECONDS = 3


def local_cluster() -> tuple[str, str]:
    """(version, name) of the local cluster serving the test database, or skip."""
    if os.environ.get("FAULT_TESTS_RESTART_POSTGRES") != "1":
        pytest.skip(
            "stops the local PostgreSQL cluster; set FAULT_TESTS_RESTART_POSTGRES=1 to run it (.ci/run does)"
        )
    settings = connections["default"].settings_dict
    port = str(settings["PORT"] or 5432)
    if settings["HOST"] not in ("", "127.0.0.1", "localhost") or not shutil.which("pg_lsclusters"):
        pytest.skip(
            "needs the test database on a local Debian PostgreSQL cluster (pg_ctlcluster) to restart it"
        )
    if os.geteuid() != 0:
        pytest.skip("restarting PostgreSQL needs root")
    for line in subprocess.run(
        ["pg_lsclusters", "-h"], capture_output=True, text=True, encoding="utf-8"
    ).stdout.splitlines():
        version, name, cluster_port, status, *_ = line.split()
        if cluster_port == port and status.startswith("online"):
            return version, name
    pytest.skip(f"no online local cluster on port {port}")


def pg_ctl(cluster: tuple[str, str], action: str) -> None:
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, action], check=True, timeout=60)


def aggregates_snapshot(variant) -> dict:
    return {
        "results": sorted(
            PhrasingResult.objects.filter(variant=variant).values_list(
                "revision_id", "accuracy", "n_correct", "n_total"
            )
        ),
        "tasks": sorted(
            (t, s, repr(f))
            for t, s, f in TaskSummary.objects.filter(variant=variant).values_list(
                "task_id", "phrasing_set", "figures"
            )
        ),
        "benchmarks": sorted(
            (b, s, k, repr(f))
            for b, s, k, f in BenchmarkSummary.objects.filter(variant=variant).values_list(
                "benchmark_id", "phrasing_set", "task_kind", "figures"
            )
        ),
    }


def test_a_run_survives_a_database_restart_with_one_prediction_per_cell_and_whole_aggregates(
    tiny_models, tmp_path
):
    cluster = local_cluster()
    redis.Redis.from_url(REDIS_URL).flushdb()
    load_demo()
    model = registry.language_model_register(
        name="tiny-t5", source=str(tiny_models["t5"]), family="seq2seq", batch_size=1, score=False
    )
    variant = scoring.base_variant(model)
    run = ScoringRun.objects.create(variant=variant, trigger="manual")
    run.revisions.set(scoring.approved_revisions())
    env = process_env(CELERY_BROKER_URL=REDIS_URL, VAR_DIR=str(tmp_path), WORKER_DEVICE="cpu")
    send_score_run(env, run.id)

    def progress() -> int:
        return Prediction.objects.filter(run=run).count()

    log = tmp_path / "worker.log"
    with running_worker(env, queues="gpu,default,gpu-bulk", log=log):
        wait_for(lambda: progress() >= 50, timeout=120, what="the worker to start scoring", log=log)
        pg_ctl(cluster, "stop")  # fast shutdown: every connection, the worker's included, is cut
        try:
            time.sleep(DOWN_SECONDS)
        finally:
            pg_ctl(cluster, "start")
        connections.close_all()  # this process's connection died with the server too
        stopped_at = progress()
        assert stopped_at < 24 * 100, "the run finished before the restart; make it longer"
        wait_for(
            lambda: not ScoringRun.objects.filter(status__in=ScoringRun.ACTIVE).exists(),
            timeout=300,
            what="the run to finish after the restart",
            log=log,
        )
        run.refresh_from_db()
        # The last aggregate refresh is queued when the run finishes; give the worker time to take it.
        wait_for(
            lambda: PhrasingResult.objects.filter(variant=variant, complete=True).count() == 24,
            timeout=120,
            what="the aggregates of the finished run",
            log=log,
        )
        time.sleep(2)
    worker_log = log.read_text(encoding="utf-8")
    assert "Database unavailable" in worker_log, "the worker never saw the database go away"
    assert (
        "raised unexpected" not in worker_log
    )  # every delivery that met the outage was retried, none dropped

    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.attempts >= 2  # claimed again by the retried task after the restart
    assert run.total_cells == run.done_cells == progress() == 24 * 100
    duplicates = (
        Prediction.objects.values("variant", "revision", "instance").annotate(n=Count("id")).filter(n__gt=1)
    )
    assert not duplicates.exists()

    # The aggregates the worker left equal a full refresh from the predictions, row for row.
    stored = aggregates_snapshot(variant)
    task_ids = set(PhrasingResult.objects.filter(variant=variant).values_list("task_id", flat=True))
    aggregates_refresh_many({(variant.id, task_id) for task_id in task_ids})
    assert aggregates_snapshot(variant) == stored
    assert len(stored["results"]) == 24 and stored["tasks"] and stored["benchmarks"]
