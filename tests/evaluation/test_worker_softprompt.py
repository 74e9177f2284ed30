"""Soft-prompt training in real Celery worker processes (Redis, PostgreSQL): queued by the service, trained on
the gpu queue, its variant scored on the held-out phrasings by the same worker; and a worker killed mid-training,
whose job a new worker finishes as exactly one soft prompt."""

from __future__ import annotations

import os
import signal

import pytest
import redis
from django.db.models import Count

from collection.demo import load_demo
from collection.models import Collection, Task
from evaluation.models import ModelVariant, Prediction, ScoringRun, SoftPrompt, VariantKind
from evaluation.runs import registry
from tests.workers import manage, process_env, running_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.worker]

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
QUEUE = (
    "from evaluation.models import LanguageModel; from evaluation.robustness.softprompts import softprompt_queue; "
    "from evaluation.ml.config import AlignConfig; "
    "print(softprompt_queue(model=LanguageModel.objects.get(name='tiny-t5'), "
    "config=AlignConfig(num_virtual_tokens=2, steps={steps}, instances_per_batch=2, paraphrases=1)).id)"
)


@pytest.fixture
def demo_model(tiny_models):
    redis.Redis.from_url(REDIS_URL).flushdb()  # no jobs left over from earlier tests
    load_demo()
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=4)
    registry.language_model_register(
        name="tiny-t5",
        source=str(tiny_models["t5"]),
        family="seq2seq",
        tuned_on=[Collection.objects.get(slug="demotune")],
        score=False,
    )


def queue_training(env, steps: int) -> int:
    """Queue a training from a separate process (as the app would), so it reaches the worker through Redis."""
    return int(manage(env, "shell", "--no-imports", "-c", QUEUE.format(steps=steps)).split()[-1])


def trained_and_scored(soft_id: int) -> bool:
    soft = SoftPrompt.objects.get(id=soft_id)
    assert soft.status != "failed", soft.error
    runs = ScoringRun.objects.filter(variant_id=soft.variant_id)
    return (
        soft.status == "succeeded"
        and runs.exists()
        and not runs.filter(status__in=ScoringRun.ACTIVE).exists()
    )


def test_a_worker_trains_a_soft_prompt_and_scores_it_on_held_out_phrasings(demo_model, tmp_path):
    env = process_env(
        CELERY_BROKER_URL=REDIS_URL,
        VAR_DIR=str(tmp_path),
        WORKER_DEVICE="cpu",
        SOFTPROMPT_DIR=str(tmp_path / "softprompts"),
    )
    log = tmp_path / "worker.log"
    with running_worker(env, queues="gpu,default,gpu-bulk", log=log):
        soft_id = queue_training(env, steps=6)
        wait_for(
            lambda: trained_and_scored(soft_id), timeout=180, what="the training and its scoring", log=log
        )
    soft = SoftPrompt.objects.get(id=soft_id)
    assert soft.worker.startswith("test-") and len(soft.curve) == 6
    assert (tmp_path / "softprompts" / "tiny-t5" / str(soft.id) / "adapter_model.safetensors").is_file()
    assert set(ScoringRun.objects.filter(variant=soft.variant).values_list("status", flat=True)) == {
        "succeeded"
    }
    assert "evaluation.tasks.train_softprompt" in log.read_text(encoding="utf-8")


def test_a_training_whose_worker_is_killed_finishes_on_a_new_worker_as_one_soft_prompt(demo_model, tmp_path):
    env = process_env(
        CELERY_BROKER_URL=REDIS_URL,
        VAR_DIR=str(tmp_path),
        WORKER_DEVICE="cpu",
        SOFTPROMPT_DIR=str(tmp_path / "softprompts"),
        # Short timeouts so the killed worker's job comes back within seconds, not the production hour.
        CELERY_VISIBILITY_TIMEOUT="4",
        JOB_LEASE_SECONDS="3",
    )
    steps = 150  # the kill comes within a poll of step 10 (heartbeats every 5 steps), far from the last
    soft_id = queue_training(env, steps)

    first_log = tmp_path / "first.log"
    with running_worker(env, queues="gpu,gpu-bulk", log=first_log) as first:
        wait_for(
            lambda: SoftPrompt.objects.get(id=soft_id).steps_done >= 10,
            timeout=120,
            what="the first worker to start training",
            log=first_log,
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    killed = SoftPrompt.objects.get(id=soft_id)
    assert killed.status == "running" and 0 < killed.steps_done < steps, (
        "the training finished before the kill"
    )
    assert not (tmp_path / "softprompts" / "tiny-t5" / str(soft_id)).exists()

    second_log = tmp_path / "second.log"
    with running_worker(env, queues="gpu,default,gpu-bulk", log=second_log):
        wait_for(
            lambda: trained_and_scored(soft_id),
            timeout=300,
            what="the second worker to train and score",
            log=second_log,
        )
    soft = SoftPrompt.objects.get(id=soft_id)
    assert SoftPrompt.objects.count() == 1 and soft.attempts >= 2
    # Restarted from its seed: one curve of `steps` points, not the killed attempt's points plus the new ones.
    assert [point["step"] for point in soft.curve] == list(range(1, steps + 1))
    assert ModelVariant.objects.filter(kind=VariantKind.SOFT_PROMPT).count() == 1
    assert sorted(p.name for p in (tmp_path / "softprompts" / "tiny-t5").iterdir()) == [str(soft_id)]
    runs = ScoringRun.objects.filter(variant=soft.variant)
    assert set(runs.values_list("status", flat=True)) == {"succeeded"}
    duplicates = (
        Prediction.objects.values("variant", "revision", "instance").annotate(n=Count("id")).filter(n__gt=1)
    )
    assert not duplicates.exists()
    assert Prediction.objects.filter(variant=soft.variant).count() == sum(r.total_cells for r in runs) > 0
