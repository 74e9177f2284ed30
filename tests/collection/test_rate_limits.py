"""Rate limits: submissions per author and uploaded phrasings per curator, counted in the database over a
rolling hour. A refusal is a 429 with Retry-After (seconds until the oldest counted phrasing leaves the hour),
on the pages and in the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from collection import services
from collection.models import Benchmark, Collection, Instruction, Task
from core import roles
from core.services import user_role_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def parity(db) -> Task:
    return Task.objects.create(
        benchmark=Benchmark.objects.create(slug="b", name="Bench"),
        slug="t",
        name="Parity",
        kind="binary",
        answer_format="option_text",
        input_fields=["number"],
        label_space=["yes", "no"],
        max_options=2,
    )


def _submitted(task, author, template: str, minutes_ago: int) -> Instruction:
    instruction = services.instruction_create(
        task=task, template=template, collection=Collection.objects.get(slug="crowd"), author=author
    )
    Instruction.objects.filter(pk=instruction.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago), submitted=True
    )
    return instruction


@override_settings(SUBMISSIONS_PER_HOUR=2)
def test_a_page_over_the_limit_answers_429_with_the_wait_until_the_oldest_leaves_the_hour(
    client, parity, alice
):
    _submitted(parity, alice, "Is {number} even?", minutes_ago=50)
    _submitted(parity, alice, "Even: {number}?", minutes_ago=5)
    client.force_login(alice)
    response = client.post(reverse("phrasing_new", args=["b", "t"]), {"template": "Odd? {number}"})
    assert response.status_code == 429
    # The phrasing from 50 minutes ago leaves the hour in 10 minutes.
    assert 590 <= int(response["Retry-After"]) <= 600
    assert "the limit is 2 per hour" in response.content.decode()
    # An hour-old phrasing no longer counts.
    Instruction.objects.filter(author=alice).update(created_at=timezone.now() - timedelta(minutes=61))
    response = client.post(reverse("phrasing_new", args=["b", "t"]), {"template": "Odd? {number}"})
    assert response.status_code == 302


@override_settings(SUBMISSIONS_PER_HOUR=1)
def test_the_api_over_the_limit_answers_429_with_retry_after(parity, alice):
    api = APIClient()
    api.force_authenticate(alice)
    url = reverse("instruction-list")
    assert (
        api.post(url, {"task": parity.id, "template": "Is {number} even?"}, format="json").status_code == 201
    )
    response = api.post(url, {"task": parity.id, "template": "Even: {number}?"}, format="json")
    assert response.status_code == 429
    assert 3590 <= int(response["Retry-After"]) <= 3600
    assert response.json()["retry_after"] == int(response["Retry-After"])
    assert "the limit is 1 per hour" in response.json()["detail"]


def _upload(client, rows: list[str]):
    data = "task,template,source\n" + "".join(f"b/t,{row},workshop\n" for row in rows)
    return client.post(reverse("curation_upload"), {"file": SimpleUploadedFile("p.csv", data.encode())})


@override_settings(UPLOADS_PER_HOUR=3)
def test_uploaded_phrasings_count_against_the_curators_hourly_limit(client, parity, carol, django_user_model):
    client.force_login(carol)
    assert _upload(client, ["Is {number} even?", "Even: {number}?"]).status_code == 302
    response = _upload(client, ["Odd? {number}", "Is {number} odd?"])
    assert response.status_code == 429
    assert 3590 <= int(response["Retry-After"]) <= 3600
    page = response.content.decode()
    assert "This file adds 2 phrasings to the 2 you added in the last hour; the limit is 3 per hour." in page
    assert "Nothing was imported" in page
    assert Instruction.objects.filter(author=carol).count() == 2
    # A file within what is left goes in; the same file again adds nothing and is not refused.
    assert _upload(client, ["Odd? {number}"]).status_code == 302
    assert _upload(client, ["Odd? {number}"]).status_code == 302
    assert Instruction.objects.filter(author=carol).count() == 3
    # The limit is per curator.
    other = django_user_model.objects.create_user(username="dave")
    user_role_set(user=other, role=roles.CURATOR)
    client.force_login(other)
    assert _upload(client, ["Is {number} odd?", "Say if {number} is odd."]).status_code == 302


@override_settings(SUBMISSIONS_PER_HOUR=2, UPLOADS_PER_HOUR=10)
def test_uploads_do_not_count_against_the_submission_limit_but_submissions_count_against_uploads(
    client, parity, carol
):
    # As the README says: SUBMISSIONS_PER_HOUR limits what authors write on the site. A curator who uploaded a
    # workshop's file may still write phrasings by hand (they used to be refused for the hour).
    client.force_login(carol)
    assert _upload(client, ["Is {number} even?", "Even: {number}?", "Odd? {number}"]).status_code == 302
    for template in ("Is {number} odd?", "Say if {number} is odd."):
        response = client.post(reverse("phrasing_new", args=["b", "t"]), {"template": template})
        assert response.status_code == 302
    # Their own limit still holds, counting what they uploaded.
    response = client.post(reverse("phrasing_new", args=["b", "t"]), {"template": "Tell me: {number} odd?"})
    assert response.status_code == 429
    assert "You have submitted 2 phrasings in the last hour" in response.content.decode()
    # Uploads count everything the curator added, submissions included (UPLOADS_PER_HOUR).
    rows = [f"Row {i}: is {{number}} even?" for i in range(6)]
    response = _upload(client, rows)
    assert response.status_code == 429
    assert "This file adds 6 phrasings to the 5 you added in the last hour" in response.content.decode()


@override_settings(SUBMISSIONS_PER_HOUR=1)
def test_phrasings_an_admin_imported_for_an_author_do_not_count_against_their_submissions(
    client, parity, alice
):
    services.instruction_create(
        task=parity,
        template="Imported for alice: {number}?",
        collection=Collection.objects.get(slug="crowd"),
        author=alice,
    )
    client.force_login(alice)
    response = client.post(reverse("phrasing_new", args=["b", "t"]), {"template": "Is {number} even?"})
    assert response.status_code == 302
