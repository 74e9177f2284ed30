"""A worker on RabbitMQ, which pushes jobs to workers rather than being asked (Redis), in real processes.

A busy `--pool solo` worker must hold no job but the one it runs (core/celery.py), so that an idle worker, or
the interactive job that arrives next, is not kept waiting behind it.

A `--pool solo` worker runs its job in the thread that would send AMQP heartbeats and read the broker, so the
broker drops the connection of a job longer than about two heartbeats (or than its consumer_timeout, 30 min)
and hands the message back; the worker finds out when it tries to acknowledge, reconnects and receives the
same job again. With heartbeats on (1 s here), the job must still be scored exactly once, the redelivery must
do nothing, and the worker must go on taking jobs. The app's default turns heartbeats off on RabbitMQ
(core/settings.py), where Celery's own default would have met the server's 60 s: the connection a worker
opens must say 0.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.db.models import Count

from collection.demo import load_demo
from collection.models import Task
from core.jobs import JobStatus
from core.models import WorkerPing
from evaluation.models import Prediction, ScoringRun
from evaluation.runs import registry, scoring
from tests.workers import (
    REPO,
    SEND_PING,
    manage,
    process_env,
    rabbitmq_ready,
    running_worker,
    send_score_run,
    wait_for,
)

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.worker,
    pytest.mark.rabbitmq,
    pytest.mark.usefixtures("rabbitmq_broker"),
]

SAMPLE = 15  # 24 phrasings x 15 instances at batch size 1: several seconds on any CPU, far over 2 heartbeats
# Three jobs for the `default` queue at once (worker_ping_send sends one per interval; these are its job).
SEND_THREE = (
    "from core.models import WorkerPing; from core.tasks import worker_ping_answer\n"
    "for _ in range(3): worker_ping_answer.delay(WorkerPing.objects.create().id)"
)
LOST = "Connection to broker lost"


def long_run(tiny_models) -> ScoringRun:
    load_demo(generated_per_task=0)
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=SAMPLE)
    model = registry.language_model_register(
        name="tiny-t5", source=str(tiny_models["t5"]), family="seq2seq", batch_size=1, score=False
    )
    run = ScoringRun.objects.create(variant=scoring.base_variant(model), trigger="manual")
    run.revisions.set(scoring.approved_revisions())
    return run


def test_a_busy_worker_holds_no_job_but_its_own(tiny_models, tmp_path, rabbitmq_broker):
    run = long_run(tiny_models)
    url = rabbitmq_broker
    env = process_env(CELERY_BROKER_URL=url, VAR_DIR=str(tmp_path), WORKER_DEVICE="cpu")
    log = tmp_path / "worker.log"
    with running_worker(env, queues="gpu,default,gpu-bulk", log=log):
        send_score_run(env, run.id)
        wait_for(lambda: Prediction.objects.exists(), timeout=120, what="the run to start", log=log)
        manage(env, "shell", "--no-imports", "-c", SEND_THREE)
        assert ScoringRun.objects.get(id=run.id).status == JobStatus.RUNNING, "the run ended; make it longer"
        # Celery's default (prefetch = the CPU count, 2 here) had the broker push one to the busy worker.
        assert rabbitmq_ready(url, "default") == 3
        wait_for(
            lambda: WorkerPing.objects.filter(answered_at__isnull=False).count() == 3,
            timeout=120,
            what="the worker to take the three jobs after the run",
            log=log,
        )
    assert ScoringRun.objects.get(id=run.id).status == JobStatus.SUCCEEDED


def test_a_job_longer_than_two_heartbeats_is_scored_once_and_the_worker_goes_on(
    tiny_models, tmp_path, rabbitmq_broker
):
    run = long_run(tiny_models)
    env = process_env(
        CELERY_BROKER_URL=rabbitmq_broker,
        VAR_DIR=str(tmp_path),
        WORKER_DEVICE="cpu",
        CELERY_BROKER_HEARTBEAT="1",
    )
    log = tmp_path / "worker.log"
    with running_worker(env, queues="gpu,default,gpu-bulk", log=log):
        send_score_run(env, run.id)
        wait_for(
            lambda: ScoringRun.objects.get(id=run.id).status not in ScoringRun.ACTIVE,
            timeout=240,
            what="the run to finish",
            log=log,
        )
        # The worker still takes jobs: a ping sent after the run is answered.
        ping = int(manage(env, "shell", "--no-imports", "-c", SEND_PING).split()[-1])
        wait_for(
            lambda: WorkerPing.objects.filter(id=ping, answered_at__isnull=False).exists(),
            timeout=60,
            what="the worker to answer a ping after the run",
            log=log,
        )
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.attempts == 1  # the redelivery claimed nothing
    assert run.total_cells == run.done_cells == Prediction.objects.count() == 24 * SAMPLE
    duplicates = (
        Prediction.objects.values("variant", "revision", "instance").annotate(n=Count("id")).filter(n__gt=1)
    )
    assert not duplicates.exists()
    # The premise: the broker did drop the connection, and the job came back after it had finished.
    text = log.read_text(encoding="utf-8")
    assert LOST in text, "the run ended within two heartbeats; make it longer"
    assert "is not claimable" in text


HEARTBEAT = """
from core.celery import app
connection = app.connection_for_read(heartbeat=app.conf.broker_heartbeat)
connection.connect()
print(connection.connection.server_heartbeat, connection.connection.heartbeat)
connection.release()
"""


@pytest.mark.parametrize(("setting", "expected"), [(None, 0), ("1", 1)])
def test_a_worker_connection_has_no_heartbeats_unless_asked(setting, expected, tmp_path, rabbitmq_broker):
    env = process_env(
        CELERY_BROKER_URL=rabbitmq_broker, VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="core.settings"
    )
    if setting:
        env["CELERY_BROKER_HEARTBEAT"] = setting
    code = "import django; django.setup()\n" + HEARTBEAT
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    server, negotiated = (float(v) for v in done.stdout.split()[-2:])
    assert server > 0  # RabbitMQ proposes heartbeats (60 s by default); the worker's side decides
    assert negotiated == expected
