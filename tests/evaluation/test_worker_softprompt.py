"""Soft-prompt training in a real Celery worker process (Redis, PostgreSQL): queued by the service, trained on
the gpu queue, its variant scored on the held-out phrasings by the same worker."""

from __future__ import annotations

import os

import pytest
import redis

from collection.demo import load_demo
from collection.models import Collection, Task
from evaluation import services
from evaluation.models import ScoringRun, SoftPrompt
from tests.workers import manage, process_env, running_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.worker]

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
QUEUE = (
    "from evaluation.models import LanguageModel; from evaluation.softprompts import softprompt_queue; "
    "from evaluation.ml.softprompt import AlignConfig; "
    "print(softprompt_queue(model=LanguageModel.objects.get(name='tiny-t5'), "
    "config=AlignConfig(num_virtual_tokens=2, steps=6, instances_per_batch=2, paraphrases=1)).id)"
)


def test_a_worker_trains_a_soft_prompt_and_scores_it_on_held_out_phrasings(tiny_models, tmp_path):
    redis.Redis.from_url(REDIS_URL).flushdb()
    load_demo()
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=4)
    services.language_model_register(
        name="tiny-t5", source=str(tiny_models["t5"]), family="seq2seq",
        tuned_on=[Collection.objects.get(slug="demotune")], score=False,
    )
    env = process_env(CELERY_BROKER_URL=REDIS_URL, VAR_DIR=str(tmp_path), SCORING_DEVICE="cpu",
                      SOFTPROMPT_DIR=str(tmp_path / "softprompts"))
    log = tmp_path / "worker.log"
    with running_worker(env, queues="default,gpu", log=log):
        soft_id = int(manage(env, "shell", "--no-imports", "-c", QUEUE).strip().splitlines()[-1])

        def trained_and_scored() -> bool:
            soft = SoftPrompt.objects.get(id=soft_id)
            if soft.status == "failed":
                raise AssertionError(soft.error)
            runs = ScoringRun.objects.filter(variant_id=soft.variant_id) if soft.variant_id else None
            return soft.status == "succeeded" and runs.exists() and not runs.filter(status__in=ScoringRun.ACTIVE).exists()

        wait_for(trained_and_scored, timeout=180, what="the training and its scoring", log=log)
    soft = SoftPrompt.objects.get(id=soft_id)
    assert soft.worker.startswith("test-") and len(soft.curve) == 6
    assert (tmp_path / "softprompts" / "tiny-t5" / str(soft.id) / "adapter_model.safetensors").is_file()
    assert set(ScoringRun.objects.filter(variant=soft.variant).values_list("status", flat=True)) == {"succeeded"}
    assert "evaluation.tasks.train_softprompt" in log.read_text()
