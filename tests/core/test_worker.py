"""A real worker process answers jobs enqueued by another process, with Redis, with RabbitMQ and with the
embedded filesystem broker (the default on a machine with no servers)."""

import os

import pytest

from core.models import WorkerPing
from tests.workers import SEND_PING, manage, process_env, running_worker, wait_for

# serialized_rollback: flushing after a transactional test would also drop the rows migrations create.
pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.worker]


def _round_trip(env, log) -> WorkerPing:
    with running_worker(env, log=log):
        ping_id = int(manage(env, "shell", "--no-imports", "-c", SEND_PING).strip().splitlines()[-1])
        wait_for(
            lambda: WorkerPing.objects.filter(id=ping_id, answered_at__isnull=False).exists(),
            timeout=60,
            what="the worker to answer the ping",
            log=log,
        )
    return WorkerPing.objects.get(id=ping_id)


def test_a_worker_answers_through_redis(tmp_path):
    env = process_env(
        CELERY_BROKER_URL=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"), VAR_DIR=str(tmp_path)
    )
    ping = _round_trip(env, tmp_path / "worker.log")
    assert ping.worker.startswith("test-")


@pytest.mark.rabbitmq
def test_a_worker_answers_through_rabbitmq(tmp_path, rabbitmq_broker):
    env = process_env(CELERY_BROKER_URL=rabbitmq_broker, VAR_DIR=str(tmp_path))
    ping = _round_trip(env, tmp_path / "worker.log")
    assert ping.worker.startswith("test-")


def test_a_worker_answers_through_the_embedded_filesystem_broker(tmp_path):
    env = process_env(VAR_DIR=str(tmp_path))
    ping = _round_trip(env, tmp_path / "worker.log")
    assert ping.worker.startswith("test-")
    assert (tmp_path / "broker" / "queue").is_dir()
