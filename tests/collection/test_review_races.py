"""A decision means exactly what the curator saw: it names the revision it decides, a phrasing edited since is
a conflict that shows the new text, and concurrent decisions on one phrasing give exactly one decision and one
set of scoring runs (the review service locks the phrasing's row)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from collection import services
from collection.demo import load_demo
from collection.models import Instruction, Task
from evaluation.models import LanguageModel, ScoringRun

FIRST = "Is {number} even? Answer yes or no."
SECOND = "Tell me whether {number} is an even number: yes or no."


@pytest.fixture
def parity(db):
    load_demo()
    return Task.objects.get(benchmark__slug="demo", slug="parity")


def _edited(parity, alice) -> tuple[Instruction, int]:
    """A phrasing the curator read at revision 1, which its author then edited to revision 2."""
    instruction = services.instruction_submit(task=parity, template=FIRST, author=alice)
    read = instruction.current_revision_id
    services.instruction_edit(instruction=instruction, template=SECOND, by=alice)
    return instruction, read


def test_a_queue_decision_on_a_text_edited_since_is_a_conflict_that_shows_the_new_text(
    client, parity, alice, carol
):
    LanguageModel.objects.create(name="m", source="/nowhere", family="seq2seq", is_active=True)
    instruction, read = _edited(parity, alice)
    client.force_login(carol)
    response = client.post(
        reverse("curation_review", args=[instruction.id]),
        {"decision": "approved", "revision": read},
        HTTP_HX_REQUEST="true",
    )
    page = response.content.decode()
    assert response.status_code == 409
    assert "was edited after you read it" in page and "Tell me whether {number} is an even number" in page
    instruction.refresh_from_db()
    assert instruction.status == "pending" and instruction.reviewer is None
    assert not ScoringRun.objects.exists()
    # Deciding again on the text now shown works.
    response = client.post(
        reverse("curation_review", args=[instruction.id]),
        {"decision": "approved", "revision": instruction.current_revision_id},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    instruction.refresh_from_db()
    assert instruction.status == "approved"
    assert list(ScoringRun.objects.values_list("revisions", flat=True)) == [instruction.current_revision_id]


def test_an_api_decision_on_a_text_edited_since_is_a_409_with_the_new_revision(parity, alice, carol):
    instruction, read = _edited(parity, alice)
    api = APIClient()
    api.force_authenticate(carol)
    url = f"/api/instructions/{instruction.id}/review/"
    response = api.post(url, {"decision": "rejected", "reason": "Vague.", "revision": read}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["revision"] == instruction.current_revision_id != read
    assert body["template"] == SECOND and "was edited after you read it" in body["detail"]
    assert Instruction.objects.get(id=instruction.id).status == "pending"
    response = api.post(url, {"decision": "approved"}, format="json")
    assert response.status_code == 400 and "revision" in response.json()


def test_a_bulk_decision_leaves_out_a_phrasing_edited_since_and_decides_the_rest(
    client, parity, alice, bob, carol
):
    edited, read = _edited(parity, alice)
    other = services.instruction_submit(task=parity, template="Number {number}: even? yes/no", author=bob)
    client.force_login(carol)
    response = client.post(
        reverse("curation_bulk"),
        {"decision": "approved", "ids": [f"{edited.id}:{read}", f"{other.id}:{other.current_revision_id}"]},
        follow=True,
    )
    page = response.content.decode()
    assert f"Phrasing #{edited.id}: Phrasing #{edited.id} was edited after you read it" in page
    assert "1 phrasing(s): approved." in page
    assert Instruction.objects.get(id=edited.id).status == "pending"
    assert Instruction.objects.get(id=other.id).status == "approved"


@pytest.mark.parametrize("value", ["²", "1²:1", "12", "1:", ":1", "9" * 30 + ":1", "1:1:1"])
def test_malformed_bulk_ticks_are_refused_with_a_message(client, parity, carol, value):
    client.force_login(carol)
    response = client.post(reverse("curation_bulk"), {"decision": "approved", "ids": [value]}, follow=True)
    assert response.status_code == 200
    assert "Tick the phrasings to review and choose a decision." in response.content.decode()


# serialized_rollback: flushing after a transactional test would also drop the rows migrations create (roles).
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_ten_concurrent_approvals_give_one_approval_and_one_run_per_active_model(alice, carol, admin_user):
    load_demo()
    parity = Task.objects.get(benchmark__slug="demo", slug="parity")
    for name in ("m1", "m2"):
        LanguageModel.objects.create(name=name, source="/nowhere", family="seq2seq", is_active=True)
    instruction = services.instruction_submit(task=parity, template=FIRST, author=alice)
    revision = instruction.current_revision_id
    barrier = threading.Barrier(10)
    statuses: list[int] = []
    failures: list[BaseException] = []

    def decide(use_api: bool, reviewer) -> None:
        try:
            if use_api:
                api = APIClient()
                api.force_authenticate(reviewer)
                barrier.wait()
                response = api.post(
                    f"/api/instructions/{instruction.id}/review/",
                    {"decision": "approved", "revision": revision},
                    format="json",
                )
            else:
                page = Client()
                page.force_login(reviewer)
                barrier.wait()
                response = page.post(
                    reverse("curation_review", args=[instruction.id]),
                    {"decision": "approved", "revision": revision},
                    HTTP_HX_REQUEST="true",
                )
            statuses.append(response.status_code)
        except BaseException as exc:  # reported below: a thread's exception would otherwise vanish
            failures.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=decide, args=(i % 2 == 0, carol if i < 5 else admin_user)) for i in range(10)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert sorted(statuses) == [200] + [400] * 9
    instruction.refresh_from_db()
    assert instruction.status == "approved"
    runs = ScoringRun.objects.filter(instruction=instruction)
    assert runs.count() == 2
    assert set(runs.values_list("variant__model__name", flat=True)) == {"m1", "m2"}
