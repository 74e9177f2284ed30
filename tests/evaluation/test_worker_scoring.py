"""Scoring in real Celery worker processes against Redis and PostgreSQL: a run over the demo benchmark, a
repeated run that writes nothing, a worker killed mid-run (through Redis and through RabbitMQ, which hand a
dead worker's job back differently), and a model that cannot load (failed by its check, on the worker, before
any run)."""

from __future__ import annotations

import os
import signal

import pytest
import redis
from django.db.models import Count

from collection.demo import load_demo
from collection.models import Task
from core.jobs import JobStatus
from evaluation.models import LanguageModel, ModelCheck, Prediction, ScoringRun
from evaluation.runs import registry, scoring
from tests.workers import manage, process_env, running_worker, send_score_run, wait_for

# serialized_rollback: flushing after a transactional test would also drop the rows migrations create.
pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.worker]

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def worker_env(tmp_path, broker: str) -> dict[str, str]:
    if broker == REDIS_URL:
        redis.Redis.from_url(REDIS_URL).flushdb()  # no jobs left over from earlier tests
    return process_env(
        CELERY_BROKER_URL=broker,
        VAR_DIR=str(tmp_path),
        WORKER_DEVICE="cpu",
        # Short timeouts so a killed worker's job comes back within seconds, not the production hour (Redis
        # hands it back after the visibility timeout; RabbitMQ at once, when the worker's connection drops).
        CELERY_VISIBILITY_TIMEOUT="4",
        JOB_LEASE_SECONDS="3",
    )


@pytest.fixture
def env(tmp_path):
    return worker_env(tmp_path, REDIS_URL)


@pytest.fixture(params=["redis", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def any_broker_env(request, tmp_path):
    broker = REDIS_URL if request.param == "redis" else request.getfixturevalue("rabbitmq_broker")
    return worker_env(tmp_path, broker)


@pytest.fixture
def demo(db):
    load_demo(generated_per_task=0)  # the six hand-written phrasings per task


SAMPLE = 15


def registered_and_finished() -> bool:
    """The model's check is done (the command runs it, unless the worker's outbox sweep took it first, then
    the worker runs it) and the runs it queued have finished."""
    checked = not ModelCheck.objects.filter(status__in=ModelCheck.ACTIVE).exists()
    return checked and ScoringRun.objects.exists() and all_finished()


def all_finished() -> bool:
    return not ScoringRun.objects.filter(status__in=ScoringRun.ACTIVE).exists()


def test_a_worker_scores_the_demo_and_a_second_run_writes_nothing(demo, env, tiny_models, tmp_path):
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=10)
    log = tmp_path / "worker.log"
    with running_worker(env, queues="gpu,default,gpu-bulk", log=log):
        manage(env, "register_model", "tiny-t5", str(tiny_models["t5"]), "--family", "seq2seq")
        wait_for(registered_and_finished, timeout=180, what="the registration's runs", log=log)
        runs = ScoringRun.objects.all()
        assert [r.status for r in runs] == [JobStatus.SUCCEEDED] * 4, [r.error for r in runs]
        assert all(r.worker.startswith("test-") for r in runs)
        cells = sum(r.total_cells for r in runs)
        assert Prediction.objects.count() == cells == 4 * 6 * 10

        # The same work again, as a new run sent to the worker: it finds every cell scored.
        first = runs.first()
        again = ScoringRun.objects.create(variant=first.variant, task=first.task, trigger="manual")
        again.revisions.set(first.revisions.all())
        send_score_run(env, again.id)
        wait_for(all_finished, timeout=60, what="the repeated run", log=log)
    again.refresh_from_db()
    assert (again.status, again.done_cells) == (JobStatus.SUCCEEDED, first.total_cells)
    assert Prediction.objects.count() == cells
    assert not Prediction.objects.filter(run=again).exists()


def test_a_run_whose_worker_is_killed_finishes_on_a_new_worker_with_one_prediction_per_cell(
    demo, any_broker_env, tiny_models, tmp_path
):
    env = any_broker_env
    # 24 phrasings x 15 instances at batch size 1: the kill comes within a poll (0.2 s) of the 30th cell, far
    # from the 360th even on a fast CPU, and the second worker's share stays short on a slow one.
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=SAMPLE)
    model = registry.language_model_register(
        name="tiny-t5", source=str(tiny_models["t5"]), family="seq2seq", batch_size=1, score=False
    )
    run = ScoringRun.objects.create(variant=scoring.base_variant(model), trigger="manual")
    run.revisions.set(scoring.approved_revisions())
    send_score_run(env, run.id)  # waits in the broker until a worker starts

    def progress() -> int:
        return Prediction.objects.filter(run__isnull=False).count()

    with running_worker(env, queues="gpu,gpu-bulk", log=tmp_path / "first.log") as first:
        wait_for(
            lambda: progress() >= 30,
            timeout=120,
            what="the first worker to start scoring",
            log=tmp_path / "first.log",
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    run.refresh_from_db()
    assert run.status == JobStatus.RUNNING, "the run finished before the kill; make it longer"
    assert 0 < progress() < 24 * SAMPLE

    with running_worker(env, queues="gpu,gpu-bulk", log=tmp_path / "second.log"):
        wait_for(
            all_finished, timeout=360, what="the second worker to finish the run", log=tmp_path / "second.log"
        )
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.attempts >= 2  # (in our runs the broker redelivered the killed worker's own message)
    assert run.total_cells == run.done_cells == Prediction.objects.count() == 24 * SAMPLE
    duplicates = (
        Prediction.objects.values("variant", "revision", "instance").annotate(n=Count("id")).filter(n__gt=1)
    )
    assert not duplicates.exists()


def test_a_model_that_cannot_load_is_failed_by_its_check_on_a_worker_and_queues_no_run(demo, env, tmp_path):
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=2)
    log = tmp_path / "worker.log"
    with running_worker(env, queues="gpu,default,gpu-bulk", log=log):
        # --queue: the check is the worker's, as for a model registered through the web.
        manage(
            env, "register_model", "ghost", str(tmp_path / "no-such-model"), "--family", "causal", "--queue"
        )
        model = LanguageModel.objects.get(name="ghost")
        wait_for(
            lambda: not model.checks.filter(status__in=ModelCheck.ACTIVE).exists(),
            timeout=120,
            what="the model check",
            log=log,
        )
    model.refresh_from_db()
    assert model.state == LanguageModel.State.FAILED
    assert f"No model directory at {tmp_path / 'no-such-model'}" in model.check_error
    assert model.checks.get().worker.startswith("test-")
    assert not ScoringRun.objects.filter(variant__model=model).exists()
