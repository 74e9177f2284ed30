"""A phrasing submitted in one process is embedded by a real worker process (the `default` queue, Redis)."""

import os
import subprocess
import sys

import pytest
from django.core.management import call_command

from collection.models import PhrasingEmbedding
from tests.workers import REPO, manage, process_env, running_worker, wait_for

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
    assert "collection.embed_revision" in log.read_text(encoding="utf-8")


UPLOAD = """
from django.contrib.auth import get_user_model
from collection.importers.instructions import import_instructions_upload
from core import services as core_services
user = get_user_model().objects.create_user(username="workshop-curator")
core_services.user_role_set(user=user, role="curator")
rows = "".join(f"demo/parity,Workshop {i}: is {{number}} even? yes or no,workshop\\n" for i in range(2000))
import_instructions_upload(name="w.csv", data=("task,template,source\\n" + rows).encode(), by=user)
print(user.id)
"""


def test_after_a_2000_row_upload_the_check_and_preview_embed_a_few_texts_and_the_worker_stores_the_rest(
    tmp_path, monkeypatch
):
    # Issue 27: such an upload queued no embeddings, and the check then embedded all 2,000 in the request
    # (30 s; the web worker was killed), storing nothing. Now the upload queues them in batches for a real
    # worker, and each check or preview embeds the draft and at most INLINE_EMBEDDINGS stored texts (the
    # bound), saying how many neighbours are still pending.
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse
    from rest_framework.test import APIClient

    from collection import similarity
    from collection.models import Instruction, Task
    from core import jobs

    call_command("load_demo")
    env = process_env(
        CELERY_BROKER_URL=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"), VAR_DIR=str(tmp_path)
    )
    log = tmp_path / "worker.log"
    embedded: list[int] = []
    real_embed = similarity.embed
    monkeypatch.setattr(similarity, "embed", lambda texts: embedded.append(len(texts)) or real_embed(texts))
    # This process is no worker: what a check queues again is left to the real one (not run inline).
    monkeypatch.setattr(jobs, "send_on_commit", lambda *args, **kwargs: None)
    task = Task.objects.get(benchmark__slug="demo", slug="parity")
    draft = {"task": task.id, "template": "Say whether the number {number} is even: yes or no."}
    with running_worker(env, log=log):
        # 2,000 rows take minutes on a loaded two-core machine: longer than manage() waits.
        upload = subprocess.run(
            [sys.executable, "manage.py", "shell", "--no-imports", "-c", UPLOAD],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=900,
        )
        assert upload.returncode == 0, upload.stderr[-3000:]
        user_id = int(upload.stdout.strip().splitlines()[-1])
        curator = get_user_model().objects.get(id=user_id)
        uploaded = Instruction.objects.filter(author=curator).values_list("current_revision_id", flat=True)
        assert uploaded.count() == 2000
        api = APIClient()
        api.force_authenticate(curator)
        body = api.post("/api/instructions/check/", draft, format="json").json()
        assert sum(embedded) <= similarity.INLINE_EMBEDDINGS + 1, embedded
        assert body["pending"] > 0, "the worker cannot have embedded 2,000 texts already"
        embedded.clear()
        page = Client()
        page.force_login(curator)
        preview = page.post(
            reverse("phrasing_preview", args=["demo", "parity"]), {"template": draft["template"]}
        )
        assert preview.status_code == 200 and sum(embedded) <= similarity.INLINE_EMBEDDINGS + 1, embedded
        wait_for(
            lambda: PhrasingEmbedding.objects.filter(revision_id__in=uploaded).count() == 2000,
            timeout=600,
            what="the worker to embed the 2,000 uploaded phrasings",
            log=log,
        )
    assert "collection.embed_revision" in log.read_text(encoding="utf-8")
    embedded.clear()
    body = api.post("/api/instructions/check/", draft, format="json").json()
    assert embedded == [1] and body["pending"] == 0
