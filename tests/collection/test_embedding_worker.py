"""A phrasing submitted in one process is embedded by a real worker process (the `default` queue, Redis)."""

import os

import pytest
from django.core.management import call_command

from collection.models import PhrasingEmbedding
from tests.workers import manage, process_env, running_worker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.worker]

SUBMIT = """
from django.contrib.auth import get_user_model
from collection import services
from collection.models import Task
from core import services as core_services
user = get_user_model().objects.create_user(username="writer")
core_services.user_role_set(user=user, role="author")
task = Task.objects.get(benchmark__slug="demo", slug="parity")
print(services.instruction_submit(task=task, template="Tell me whether {number} is even.", author=user).current_revision_id)
"""


def test_a_worker_embeds_a_submitted_phrasing_once(tmp_path):
    call_command("load_demo")
    env = process_env(
        CELERY_BROKER_URL=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"), VAR_DIR=str(tmp_path)
    )
    log = tmp_path / "worker.log"
    with running_worker(env, log=log):
        revision_id = int(manage(env, "shell", "--no-imports", "-c", SUBMIT).strip().splitlines()[-1])
        wait_for(
            lambda: PhrasingEmbedding.objects.filter(revision_id=revision_id).exists(),
            timeout=120,
            what="the worker to embed the new phrasing",
            log=log,
        )
    embedding = PhrasingEmbedding.objects.get(revision_id=revision_id)
    assert len(bytes(embedding.vector)) == 384 * 4  # all-MiniLM-L6-v2: 384 float32 dimensions
    assert "collection.embed_revision" in log.read_text()
