"""The broker is down when a curator approves a phrasing: the approval is saved, its scoring run is saved
as unsent (the outbox), and once the broker is back the sweep sends it and a real worker scores it, once. With
Redis and with RabbitMQ: each fails to send in its own way (kombu's OperationalError, an OSError)."""

from __future__ import annotations

import os

import pytest
import redis
from django.contrib.auth import get_user_model
from django.db.models import Count

from collection import services as collection_services
from collection.demo import load_demo
from collection.models import Instruction, Task
from core import roles
from core import services as core_services
from core.jobs import JobStatus
from evaluation.models import Prediction, ScoringRun
from evaluation.runs import registry
from tests.workers import manage, process_env, running_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.worker]

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Nothing listens on port 1.
DEAD_BROKERS = {"redis": "redis://127.0.0.1:1/0", "rabbitmq": "amqp://guest:guest@127.0.0.1:1//"}

APPROVE = """
from django.contrib.auth import get_user_model
from collection import services
from collection.models import Instruction
services.instruction_review(instruction=Instruction.objects.get(id={id}), reviewer=get_user_model().objects.get(username="carol"), status="approved")
print("approved")
"""


@pytest.mark.parametrize("broker", ["redis", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def test_an_approval_while_the_broker_is_down_is_scored_once_it_is_back(
    broker, tiny_models, tmp_path, request
):
    if broker == "redis":
        redis.Redis.from_url(REDIS_URL).flushdb()
        live_broker = REDIS_URL
    else:
        live_broker = request.getfixturevalue("rabbitmq_broker")
    load_demo()
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=5)
    registry.language_model_register(
        name="tiny-t5", source=str(tiny_models["t5"]), family="seq2seq", score=False
    )
    User = get_user_model()
    alice, carol = User.objects.create_user(username="alice"), User.objects.create_user(username="carol")
    core_services.user_role_set(user=alice, role=roles.AUTHOR)
    core_services.user_role_set(user=carol, role=roles.CURATOR)
    phrasing = collection_services.instruction_submit(
        task=Task.objects.get(slug="parity"), template="Tell me: is {number} even?", author=alice
    )

    # The approval happens in a web process whose broker is unreachable.
    down = process_env(CELERY_BROKER_URL=DEAD_BROKERS[broker], VAR_DIR=str(tmp_path))
    assert "approved" in manage(down, "shell", "--no-imports", "-c", APPROVE.format(id=phrasing.id))
    phrasing.refresh_from_db()
    assert phrasing.status == Instruction.Status.APPROVED  # the approval is not lost
    run = ScoringRun.objects.get(instruction=phrasing)
    assert run.status == JobStatus.QUEUED and run.sent_at is None  # saved, not sent

    # The broker is back: a worker and one sweep (what the scheduler sends every minute) finish it.
    up = process_env(CELERY_BROKER_URL=live_broker, VAR_DIR=str(tmp_path), WORKER_DEVICE="cpu")
    log = tmp_path / "worker.log"
    with running_worker(up, queues="gpu,default,gpu-bulk", log=log):
        manage(up, "shell", "--no-imports", "-c", "from evaluation.tasks import sweep; sweep.delay()")
        wait_for(
            lambda: ScoringRun.objects.get(id=run.id).status == JobStatus.SUCCEEDED,
            timeout=120,
            what="the swept run to be scored",
            log=log,
        )
    run.refresh_from_db()
    assert run.sent_at is not None
    cells = Prediction.objects.filter(revision=phrasing.current_revision)
    assert cells.count() == 5
    assert not cells.values("instance").annotate(n=Count("id")).filter(n__gt=1).exists()
