"""A decision means exactly what the curator saw: it names the revision it decides, a phrasing edited since is
a conflict that shows the new text, and concurrent decisions on one phrasing give exactly one decision and one
set of scoring runs (the review service locks the phrasing's row)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from collection import services
from collection.demo import load_demo
from collection.models import Instruction, InstructionRevision, Task
from core.env import sqlite_url
from evaluation.models import LanguageModel, ScoringRun
from tests.collection.races import race_matrix
from tests.workers import REPO, manage

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
    assert (
        f"Phrasing #{edited.id} was edited after you read it" in page
        and f"#{edited.id}: Phrasing #" not in page
    )
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


# --- One decision per text, and a decided text never swapped (issue 27) ---------------------------------------


@pytest.mark.parametrize("decision", ["approved", "rejected"])
def test_an_edit_that_meets_a_decision_committed_since_it_read_the_phrasing_is_a_409(
    parity, alice, carol, decision
):
    # The interleaving of the race: the edit read the phrasing while pending; the decision committed before
    # the edit locked the row.
    instruction = services.instruction_submit(task=parity, template=FIRST, author=alice)
    read_by_edit = Instruction.objects.get(id=instruction.id)
    services.instruction_review(
        instruction=instruction,
        reviewer=carol,
        status=decision,
        reason="Vague.",
        revision=instruction.current_revision_id,
    )
    with pytest.raises(
        services.Conflict, match=f"decided on this phrasing while you were editing it: it is now {decision}"
    ):
        services.instruction_edit(instruction=read_by_edit, template=SECOND, by=alice)
    instruction.refresh_from_db()
    assert instruction.status == decision
    assert instruction.current_revision.template == FIRST
    assert instruction.reviewed_revision_id == instruction.current_revision_id
    assert instruction.revisions.count() == 1


def test_the_api_and_the_edit_page_answer_409_to_an_edit_a_decision_overtook(
    client, parity, alice, carol, monkeypatch
):
    instruction = services.instruction_submit(task=parity, template=FIRST, author=alice)
    stale = Instruction.objects.select_related("task__benchmark", "current_revision").get(id=instruction.id)
    services.instruction_review(
        instruction=instruction, reviewer=carol, status="approved", revision=instruction.current_revision_id
    )
    # Both doors read the phrasing before the approval committed (the race): they get that copy.
    monkeypatch.setattr(services.access, "get_instruction_for_user", lambda *args, **kwargs: stale)
    api = APIClient()
    api.force_authenticate(alice)
    response = api.patch(f"/api/instructions/{instruction.id}/", {"template": SECOND}, format="json")
    assert response.status_code == 409
    assert "decided on this phrasing while you were editing it" in response.json()["detail"]
    client.force_login(alice)
    response = client.post(reverse("phrasing_edit", args=[instruction.id]), {"template": SECOND})
    assert response.status_code == 409
    assert "Nothing was saved" in response.content.decode()
    instruction.refresh_from_db()
    assert (instruction.status, instruction.current_revision.template) == ("approved", FIRST)


def test_an_edit_sent_after_the_approval_is_refused_saying_why_and_gives_the_text_back(
    client, parity, alice, carol
):
    """The edit page was opened while pending; the approval committed before Save: 403, the reason in the
    site's layout, and the text the author wrote shown to copy rather than lost."""
    instruction = services.instruction_submit(task=parity, template=FIRST, author=alice)
    services.instruction_review(instruction=instruction, reviewer=carol, status="approved")
    client.force_login(alice)
    response = client.post(reverse("phrasing_edit", args=[instruction.id]), {"template": SECOND})
    html = response.content.decode()
    assert response.status_code == 403 and "<h1>Not allowed</h1>" in html
    assert "This phrasing is approved, so its text can no longer be edited" in html
    assert f"{SECOND}</textarea>" in html.replace("&#x27;", "'")
    instruction.refresh_from_db()
    assert instruction.current_revision.template == FIRST


def test_the_database_refuses_a_decided_phrasing_whose_text_is_not_the_one_reviewed(parity, alice, carol):
    instruction = services.instruction_submit(task=parity, template=FIRST, author=alice)
    services.instruction_review(
        instruction=instruction, reviewer=carol, status="approved", revision=instruction.current_revision_id
    )
    other = InstructionRevision.objects.create(instruction=instruction, number=2, template=SECOND)
    with pytest.raises(IntegrityError), transaction.atomic():
        Instruction.objects.filter(id=instruction.id).update(current_revision=other)
    # The service says so before the database has to.
    with pytest.raises(services.Conflict, match="approved as reviewed; its text cannot change"):
        services.instruction_revise(instruction=instruction, template=SECOND)


def test_a_text_sent_back_is_decided_once_and_the_author_must_change_it(parity, alice, carol, admin_user):
    instruction = services.instruction_submit(task=parity, template=FIRST, author=alice)
    read = instruction.current_revision_id
    services.instruction_review(
        instruction=instruction, reviewer=carol, status="needs_edit", reason="Say 'even'.", revision=read
    )
    with pytest.raises(services.ApplicationError, match="sent back for an edit by carol"):
        services.instruction_review(
            instruction=instruction, reviewer=admin_user, status="approved", revision=read
        )
    # Sending the same text back for review would ask for a second decision on it.
    with pytest.raises(services.ApplicationError, match="the text a curator sent back"):
        services.instruction_edit(instruction=instruction, template=FIRST, by=alice)
    instruction.refresh_from_db()
    assert instruction.status == "needs_edit"
    services.instruction_edit(instruction=instruction, template=SECOND, by=alice)
    instruction.refresh_from_db()
    assert instruction.status == "pending"
    # ...nor may a later edit go back to it.
    with pytest.raises(services.ApplicationError, match="the text a curator sent back"):
        services.instruction_edit(instruction=instruction, template=FIRST, by=alice)
    services.instruction_review(
        instruction=instruction,
        reviewer=admin_user,
        status="approved",
        revision=instruction.current_revision_id,
    )
    instruction.refresh_from_db()
    assert instruction.status == "approved" and instruction.current_revision.template == SECOND
    assert instruction.reviewed_revision_id == instruction.current_revision_id


@pytest.fixture
def staff_carol(carol):
    carol.is_staff = True
    carol.save()
    return carol


def test_admin_approve_selected_leaves_out_a_phrasing_edited_since_the_list_showed_it(
    client, parity, alice, bob, staff_carol
):
    edited = services.instruction_submit(task=parity, template=FIRST, author=alice)
    other = services.instruction_submit(task=parity, template="Number {number}: even? yes/no", author=bob)
    client.force_login(staff_carol)
    changelist = reverse("admin:collection_instruction_changelist")
    shown = client.get(changelist).content.decode()
    # The list shows each phrasing's text and carries the revision it showed.
    for instruction in (edited, other):
        assert f'name="read_revision_{instruction.id}" value="{instruction.current_revision_id}"' in shown
    read = {f"read_revision_{i.id}": i.current_revision_id for i in (edited, other)}
    services.instruction_edit(instruction=edited, template=SECOND, by=alice)
    page = client.post(
        changelist, {"action": "approve", "_selected_action": [edited.id, other.id], **read}, follow=True
    ).content.decode()
    assert (
        f"Phrasing #{edited.id} was edited after you read it" in page
        and f"#{edited.id}: Phrasing #" not in page
    )
    assert "1 phrasing(s) approved." in page
    assert Instruction.objects.get(id=edited.id).status == "pending"
    assert Instruction.objects.get(id=other.id).status == "approved"
    # A phrasing whose text the page did not show ("select all" across pages) is not decided either.
    third = services.instruction_submit(task=parity, template="Even or odd: {number}? yes/no", author=bob)
    page = client.post(changelist, {"action": "approve", "_selected_action": [third.id]}, follow=True)
    assert "its text was not on the page you decided from" in page.content.decode()
    assert Instruction.objects.get(id=third.id).status == "pending"


def test_an_admin_change_form_saved_after_a_decision_keeps_the_decision(
    client, parity, alice, staff_carol, bob
):
    from collection.admin import InstructionAdmin

    instruction = services.instruction_submit(task=parity, template=FIRST, author=alice)
    client.force_login(staff_carol)
    url = reverse("admin:collection_instruction_change", args=[instruction.id])
    stale = Instruction.objects.get(id=instruction.id)  # the form's copy, read before the approval committed
    bob.groups.add(Group.objects.get(name="curator"))
    services.instruction_review(
        instruction=instruction, reviewer=bob, status="approved", revision=instruction.current_revision_id
    )
    original = InstructionAdmin.get_object
    InstructionAdmin.get_object = lambda self, request, object_id, from_field=None: stale
    try:
        response = client.post(
            url,
            {
                "prompt_format": "",
                "external_id": "x-1",
                "text_available": "on",
                "revisions-TOTAL_FORMS": "1",
                "revisions-INITIAL_FORMS": "1",
                "revisions-MIN_NUM_FORMS": "0",
                "revisions-MAX_NUM_FORMS": "1000",
                "revisions-0-id": instruction.current_revision_id,
                "revisions-0-instruction": instruction.id,
            },
        )
    finally:
        InstructionAdmin.get_object = original
    assert response.status_code == 302, response.content.decode()[:2000]
    instruction.refresh_from_db()
    assert instruction.external_id == "x-1"
    assert (instruction.status, instruction.reviewer) == ("approved", bob)


def test_check_decisions_reports_a_phrasing_whose_text_changed_after_its_decision(parity, alice, carol):
    fine = services.instruction_submit(task=parity, template=FIRST, author=alice)
    services.instruction_review(
        instruction=fine, reviewer=carol, status="approved", revision=fine.current_revision_id
    )
    out = StringIO()
    call_command("check_decisions", stdout=out)
    assert "Every decided phrasing's current text is the one reviewed." in out.getvalue()
    # What the race used to leave: approved before decisions named their revision, then a new text.
    broken = services.instruction_submit(task=parity, template="Even? {number} yes/no", author=alice)
    services.instruction_review(
        instruction=broken, reviewer=carol, status="approved", revision=broken.current_revision_id
    )
    newer = InstructionRevision.objects.create(instruction=broken, number=2, template=SECOND)
    Instruction.objects.filter(id=broken.id).update(
        reviewed_revision=None, current_revision=newer, reviewed_at=newer.created_at - timedelta(seconds=1)
    )
    out = StringIO()
    with pytest.raises(CommandError, match="1 phrasing\\(s\\) stand decided on a text nobody reviewed"):
        call_command("check_decisions", stdout=out)
    assert f"Phrasing #{broken.id} (demo/parity) is approved by carol" in out.getvalue()
    assert "its current text is revision 2" in out.getvalue()
    assert f"#{fine.id} " not in out.getvalue()


def test_the_migration_names_the_reviewed_revision_only_where_the_rows_tell_it(parity, alice, carol):
    from importlib import import_module

    from django.apps import apps

    migration = import_module("collection.migrations.0008_instruction_reviewed_revision")
    kept = services.instruction_submit(task=parity, template=FIRST, author=alice)
    swapped = services.instruction_submit(task=parity, template="Even? {number} yes/no", author=alice)
    for instruction in (kept, swapped):
        services.instruction_review(
            instruction=instruction,
            reviewer=carol,
            status="approved",
            revision=instruction.current_revision_id,
        )
    newer = InstructionRevision.objects.create(instruction=swapped, number=2, template=SECOND)
    Instruction.objects.filter(id=swapped.id).update(reviewed_revision=None, current_revision=newer)
    Instruction.objects.filter(id=kept.id).update(reviewed_revision=None)
    migration.name_reviewed_revisions(apps, connection.schema_editor())
    kept.refresh_from_db()
    swapped.refresh_from_db()
    assert kept.reviewed_revision_id == kept.current_revision_id
    assert swapped.reviewed_revision_id is None


# --- Edits racing decisions, through every door (issue 27) -------------------------------------------------
# Before issue 27 an edit checked the status on a copy read before a racing approval committed and swapped the
# text anyway: both answered 200 and the phrasing stood approved with a text nobody reviewed (15 of 30 races);
# and among concurrent mixed decisions a "needs edit" and an approval could both be taken on one text.


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_edits_racing_decisions_through_every_door_never_leave_a_decision_on_an_unread_text():
    summary = race_matrix(rounds=2, mixed_rounds=6)
    assert summary["violations"] == [], summary
    # 2 rounds of 3 decisions x 4 doors x 2 edit doors, then 6 bursts of 10 mixed decisions.
    assert summary["races"] == 2 * 3 * 4 * 2 + 6, summary


def test_the_same_races_on_the_embedded_sqlite_default(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "VAR_DIR": str(tmp_path),
        "DATABASE_URL": sqlite_url(tmp_path / "db.sqlite3"),
        "PYTHONUNBUFFERED": "1",
        "HF_HUB_OFFLINE": "1",
    }
    manage(env, "migrate", "--noinput", "-v", "0")
    result = subprocess.run(
        [sys.executable, "-m", "tests.collection.races", "2", "6"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["violations"] == [], summary
    assert summary["races"] == 2 * 3 * 4 * 2 + 6, summary
