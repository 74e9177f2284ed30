import re

import pytest
from django.core.management import call_command
from django.urls import reverse

from core import roles
from core.models import WorkerPing

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(db):
    call_command("load_demo")


def test_anonymous_users_browse_benchmarks_and_tasks(client, demo):
    assert "Demo" in client.get(reverse("home")).content.decode()
    page = client.get(reverse("benchmark_detail", args=["demo"])).content.decode()
    assert "Odd one out" in page
    page = client.get(reverse("task_detail", args=["demo", "parity"])).content.decode()
    assert "Is {number} even? yes or no." in page
    assert "Approved phrasings (6)" in page


def test_the_benchmark_list_runs_a_fixed_number_of_queries(client, demo, django_assert_max_num_queries):
    call_command("load_demo")
    with django_assert_max_num_queries(3):
        client.get(reverse("home"))
    # 6: the leaders' data version (two aggregates), which says there is no board to read yet
    with django_assert_max_num_queries(6):
        client.get(reverse("benchmark_detail", args=["demo"]))


def test_an_unknown_task_is_a_404(client, demo):
    assert client.get(reverse("task_detail", args=["demo", "nope"])).status_code == 404


def test_phrasing_text_is_escaped_on_the_task_page(client, demo):
    from collection import services
    from collection.models import Collection, Task

    services.instruction_create(
        task=Task.objects.get(slug="parity"),
        template="<script>alert(1)</script> {number}",
        collection=Collection.objects.get(slug="crowd"),
        source="x",
        status="approved",
    )
    page = client.get(reverse("task_detail", args=["demo", "parity"])).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_task_s_approved_phrasings_come_in_pages_of_25_with_the_other_parameters_kept(client, demo):
    """The demo's tasks have 70 phrasings each under bin/run: one page of every card was 17,000 pixels."""
    from collection import services
    from collection.models import Collection, Task
    from evaluation.views.browse import TASK_PHRASINGS_PER_PAGE

    task = Task.objects.get(slug="parity")
    for i in range(TASK_PHRASINGS_PER_PAGE + 5 - 6):  # the demo's six, and these
        services.instruction_create(
            task=task,
            template=f"Phrasing number {i:02d}: is {{number}} even?",
            collection=Collection.objects.get(slug="crowd"),
            source="x",
            status="approved",
        )
    url = reverse("task_detail", args=["demo", "parity"])
    first = client.get(url).content.decode()
    assert f"Approved phrasings ({TASK_PHRASINGS_PER_PAGE + 5})" in first
    assert first.count('class="card" id="phrasing-') == TASK_PHRASINGS_PER_PAGE
    assert "page 1 of 2" in first and "Phrasing number 00" in first
    assert 'href="?page=2#phrasings"' in first
    # The fragile section's variants (a multiple select) ride along, each escaped once.
    second = client.get(url, {"variant": ["7", "8"], "page": "2"}).content.decode()
    assert second.count('class="card" id="phrasing-') == 5 and "Phrasing number 00" not in second
    assert 'href="?variant=7&amp;variant=8&amp;page=1#phrasings"' in second
    cards = [
        int(n) for page in (first, second) for n in re.findall(r'class="card" id="phrasing-(\d+)"', page)
    ]
    assert sorted(cards) == sorted(task.instructions.filter(status="approved").values_list("id", flat=True))
    # A page that is not a number, or past the last, is the first or the last, never an error.
    assert client.get(url, {"page": "x"}).status_code == 200
    assert client.get(url, {"page": "99"}).content.decode().count('class="card" id="phrasing-') == 5


def test_sign_up_makes_an_author_and_logs_in(client):
    response = client.post(
        reverse("signup"),
        {
            "username": "dora",
            "email": "d@example.org",
            "password1": "a long passphrase 42",
            "password2": "a long passphrase 42",
        },
    )
    assert response.status_code == 302
    from django.contrib.auth import get_user_model

    dora = get_user_model().objects.get(username="dora")
    assert roles.role_names(dora) == {"author"}
    assert client.get(reverse("home")).context["user"] == dora


def test_sign_up_shows_form_errors(client):
    response = client.post(reverse("signup"), {"username": "x", "password1": "a", "password2": "b"})
    assert response.status_code == 200
    assert "didn’t match" in response.content.decode()


def test_login_page_renders(client):
    assert client.get(reverse("login")).status_code == 200


def test_roles_are_decided_in_one_place(alice, bob, carol, admin_user):
    assert roles.role_names(alice) == {"author"}
    assert roles.is_curator(carol) and not roles.is_curator(alice)
    assert roles.is_admin(admin_user) and roles.is_curator(admin_user)
    assert roles.can_manage_tasks(admin_user) and not roles.can_manage_tasks(carol)


def test_a_ping_is_answered_by_the_eager_worker(client):
    response = client.post(reverse("status_ping"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    ping = WorkerPing.objects.get()
    # Eager mode answers within the request once the row is committed (pytest-django runs on_commit hooks
    # only in transactional tests, so answer explicitly here).
    from core.tasks import worker_ping_answer

    worker_ping_answer.delay(ping.id)
    ping.refresh_from_db()
    assert ping.answered_at is not None
    assert "worker answered" in client.get(reverse("status"), HTTP_HX_REQUEST="true").content.decode()


def test_status_ping_needs_post_and_csrf(client):
    assert client.get(reverse("status_ping")).status_code == 405
    csrf_client = client.__class__(enforce_csrf_checks=True)
    assert csrf_client.post(reverse("status_ping")).status_code == 403


def test_pings_are_throttled_for_everyone_twenty_requests_queue_one(client, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from core import jobs, services

    sent = []
    monkeypatch.setattr(jobs, "send_on_commit", lambda *args, **kwargs: sent.append(args))
    # Anonymous, as the status page is public: 20 of 20 used to be accepted, 20 jobs.
    answers = [client.post(reverse("status_ping"), HTTP_HX_REQUEST="true") for _ in range(20)]
    assert {a.status_code for a in answers} == {200}
    ping = WorkerPing.objects.get()
    assert len(sent) == 1 and all(f"Ping #{ping.id} sent" in a.content.decode() for a in answers)
    # Unanswered: none more while it waits (no worker, or all busy), up to PING_WAIT.
    WorkerPing.objects.update(created_at=timezone.now() - timedelta(minutes=4))
    client.post(reverse("status_ping"))
    assert WorkerPing.objects.count() == 1
    WorkerPing.objects.update(created_at=timezone.now() - services.PING_WAIT - timedelta(seconds=1))
    client.post(reverse("status_ping"))
    assert WorkerPing.objects.count() == 2 and len(sent) == 2
    # Answered: the next one PING_INTERVAL later.
    WorkerPing.objects.update(answered_at=timezone.now(), worker="w")
    client.post(reverse("status_ping"))
    assert WorkerPing.objects.count() == 2
    WorkerPing.objects.update(created_at=timezone.now() - services.PING_INTERVAL - timedelta(seconds=1))
    client.post(reverse("status_ping"))
    assert WorkerPing.objects.count() == 3 and len(sent) == 3


def test_an_empty_leaderboard_charts_nothing_rather_than_empty_axes(client, demo):
    import json
    import re

    page = client.get(reverse("leaderboard", args=["demo"])).content.decode()
    assert (
        '<option value="multiple_choice" >Multiple choice</option>' in page
    )  # the kind's label, not its value
    for chart in ("observed-chart", "box-chart"):
        figure = re.search(rf'<script id="{chart}" type="application/json">(.*?)</script>', page, re.S).group(
            1
        )
        assert json.loads(figure)["data"] == [], chart  # charts.js then says "No results to chart yet."
    page = client.get(reverse("task_results", args=["demo", "parity"])).content.decode()
    assert "no model has results on this task's common ground yet" in page and "over the 0 models" not in page
