"""Embeddings are computed in the background, never in bulk in a web request (issue 27): every way a phrasing
enters queues its embedding, and the check, the author's preview and the review queue embed the draft and at
most INLINE_EMBEDDINGS stored texts that are missing, saying how many neighbours are still pending. Before,
a 1,980-row upload left every row unembedded and the check embedded them all inline (30 s, the web worker
killed), storing nothing, so every call repeated the work. tests/collection/test_embedding_worker.py runs the
same with 2,000 rows and a real worker."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from collection import similarity
from collection.models import Instruction, PhrasingEmbedding, Task
from core import jobs

pytestmark = pytest.mark.django_db

ROWS = 60
DRAFT = "Say whether the number {number} is even: yes or no."
BOUND = similarity.INLINE_EMBEDDINGS + 1  # a request's stored texts, and the draft


@pytest.fixture
def parity(db):
    call_command("load_demo")
    cache.clear()  # what earlier tests queued must not hide what this one queues
    return Task.objects.get(benchmark__slug="demo", slug="parity")


@pytest.fixture
def embedded(monkeypatch) -> list[int]:
    """The number of texts of each embedding call made in this process."""
    calls: list[int] = []
    real = similarity.embed
    monkeypatch.setattr(similarity, "embed", lambda texts: calls.append(len(texts)) or real(texts))
    return calls


@pytest.fixture
def queued(monkeypatch) -> list[list[int]]:
    """The revision ids of each embedding job sent (to the broker, which no worker reads here)."""
    batches: list[list[int]] = []

    def send(name, *args, **kwargs):
        assert name == "collection.embed_revision", name
        batches.append(list(args[0]))

    monkeypatch.setattr(jobs, "send_on_commit", send)
    return batches


def _upload(client, settings, django_capture_on_commit_callbacks) -> None:
    settings.UPLOAD_MAX_ROWS = ROWS
    rows = "".join(f"demo/parity,Workshop {i}: is {{number}} even? yes or no,workshop\n" for i in range(ROWS))
    data = ("task,template,source\n" + rows).encode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("curation_upload"), {"file": SimpleUploadedFile("w.csv", data)})
    assert response.status_code == 302


def test_after_an_upload_the_check_the_preview_and_the_queue_embed_a_few_texts_and_say_what_is_pending(
    parity, carol, client, settings, embedded, queued, django_capture_on_commit_callbacks
):
    client.force_login(carol)
    _upload(client, settings, django_capture_on_commit_callbacks)
    uploaded = set(Instruction.objects.filter(author=carol).values_list("current_revision_id", flat=True))
    assert len(uploaded) == ROWS and not embedded  # the upload request embedded nothing...
    assert set().union(*queued) == uploaded  # ...and queued every new text, in batches
    assert all(len(batch) <= similarity.EMBED_BATCH for batch in queued)
    compared = Instruction.objects.filter(task=parity, status__in=similarity.COMPARED_STATUSES).count()
    # The demo's own phrasings were loaded here without a worker: missing too.
    assert not PhrasingEmbedding.objects.exists()

    api = APIClient()
    api.force_authenticate(carol)
    embedded.clear()
    body = api.post("/api/instructions/check/", {"task": parity.id, "template": DRAFT}, format="json").json()
    assert sum(embedded) <= BOUND
    assert body["pending"] == compared - similarity.INLINE_EMBEDDINGS and len(body["similar"]) == 5
    # Nothing queued again while the upload's jobs are fresh; once they may have been lost (the broker was
    # down, say), the next check queues what is still missing, once however many checks ask.
    sent = len(queued)
    check = {"task": parity.id, "template": DRAFT + " Now."}
    assert api.post("/api/instructions/check/", check, format="json").status_code == 200
    assert len(queued) == sent
    cache.clear()
    pending = api.post("/api/instructions/check/", check, format="json").json()["pending"]
    assert len(set().union(*queued[sent:])) == pending > 0
    assert api.post("/api/instructions/check/", check, format="json").status_code == 200
    assert len(set().union(*queued[sent:])) == pending

    embedded.clear()
    page = client.post(
        reverse("phrasing_preview", args=["demo", "parity"]), {"template": DRAFT}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert sum(embedded) <= BOUND
    assert "not compared yet" in page

    embedded.clear()
    assert client.get(reverse("curation_queue")).status_code == 200
    assert sum(embedded) <= similarity.INLINE_EMBEDDINGS

    # The worker's job stores them; then a check embeds the draft alone and compares with everything.
    for batch in list(queued):
        similarity.revisions_embed(batch)
    assert PhrasingEmbedding.objects.filter(revision_id__in=uploaded).count() == ROWS
    embedded.clear()
    body = api.post("/api/instructions/check/", {"task": parity.id, "template": DRAFT}, format="json").json()
    assert embedded == [1] and body["pending"] == 0


def test_an_exact_duplicate_is_found_even_while_embeddings_are_pending(
    parity, carol, client, settings, embedded, queued, django_capture_on_commit_callbacks
):
    client.force_login(carol)
    _upload(client, settings, django_capture_on_commit_callbacks)
    api = APIClient()
    api.force_authenticate(carol)
    last = f"Workshop {ROWS - 1}: is {{number}} even? yes or no"
    body = api.post("/api/instructions/check/", {"task": parity.id, "template": last}, format="json").json()
    assert body["pending"] > 0
    assert body["similar"][0]["exact"] and body["similar"][0]["template"] == last
