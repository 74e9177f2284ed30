"""Model and run pages: who sees what, live progress through htmx, cancel and retry, and the admin."""

from __future__ import annotations

import pytest
from django.urls import reverse

from collection.demo import load_demo
from collection.models import Task
from core.jobs import JobStatus
from evaluation.models import LanguageModel, Prediction, ScoringRun
from evaluation.runs import registry, scoring

pytestmark = pytest.mark.django_db


@pytest.fixture
def model(tiny_models):
    load_demo()
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=3)
    return registry.language_model_register(
        name="tiny-t5", source=str(tiny_models["t5"]), family="seq2seq", score=False, check_now=True
    )


@pytest.fixture
def run(model):
    # Created without sending it, so it stays queued for the tests to act on.
    registry.language_model_score_missing(model=model)
    return ScoringRun.objects.first()


def test_anyone_can_see_models_and_runs(client, run):
    assert "tiny-t5" in client.get(reverse("model_list")).content.decode()
    assert f"#{run.id}" in client.get(reverse("model_detail", args=["tiny-t5"])).content.decode()
    assert f"#{run.id}" in client.get(reverse("run_list")).content.decode()
    page = client.get(reverse("run_detail", args=[run.id])).content.decode()
    assert (
        f"{run.total_cells} cells: 0 already scored when the run was created, {run.total_cells} to compute"
        in page
    )
    assert client.get(reverse("run_detail", args=[99999])).status_code == 404


def test_the_progress_fragment_polls_while_active_and_stops_when_done(client, run):
    fragment = client.get(reverse("run_detail", args=[run.id]), HTTP_HX_REQUEST="true").content.decode()
    assert 'id="progress"' in fragment and 'hx-trigger="every 1s"' in fragment and "<h1>" not in fragment
    scoring.scoring_run_execute(run_id=run.id, task_id="test")
    fragment = client.get(reverse("run_detail", args=[run.id]), HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in fragment and "succeeded" in fragment
    assert f"{run.total_cells} of {run.total_cells} cells scored (100%)" in fragment


@pytest.mark.parametrize(
    ("who", "status"), [(None, 302), ("alice", 403), ("carol", 302), ("admin_user", 302)]
)
def test_only_curators_and_admins_cancel_runs(client, run, request, who, status):
    if who:
        client.force_login(request.getfixturevalue(who))
    response = client.post(reverse("run_cancel", args=[run.id]))
    assert response.status_code == status
    run.refresh_from_db()
    if who in ("carol", "admin_user"):
        assert response["Location"] == reverse("run_detail", args=[run.id])
        assert run.status == JobStatus.CANCELLED
    else:
        assert run.status == JobStatus.QUEUED


def test_a_curator_retries_a_failed_run_and_it_finishes(
    client, carol, run, tiny_models, django_capture_on_commit_callbacks
):
    LanguageModel.objects.update(source="/no/such/model")
    scoring.scoring_run_execute(run_id=run.id, task_id="test")
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED
    page = client.get(reverse("run_detail", args=[run.id])).content.decode()
    # Anonymous: no button, and the reason without the path on our disks (admins see it).
    assert "No model directory at (local path)" in page and "/no/such" not in page and "Retry" not in page
    client.force_login(carol)
    assert (
        "Retry (scores only missing cells)"
        in client.get(reverse("run_detail", args=[run.id])).content.decode()
    )
    LanguageModel.objects.update(source=str(tiny_models["t5"]))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("run_retry", args=[run.id]))
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED


def test_retrying_a_finished_run_says_why_not(client, carol, run):
    scoring.scoring_run_execute(run_id=run.id, task_id="test")
    client.force_login(carol)
    response = client.post(reverse("run_retry", args=[run.id]), follow=True)
    assert (
        "Only a failed or cancelled run can be retried; this one is succeeded." in response.content.decode()
    )


@pytest.mark.parametrize(("who", "status"), [("alice", 403), ("carol", 403), ("admin_user", 302)])
def test_only_admins_start_scoring_by_hand(
    client, model, request, who, status, django_capture_on_commit_callbacks
):
    client.force_login(request.getfixturevalue(who))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("model_score", args=[model.name]))
    assert response.status_code == status
    assert Prediction.objects.exists() == (status == 302)


def test_the_run_list_needs_a_fixed_number_of_queries(client, run, django_assert_max_num_queries):
    registry.language_model_register(name="other", source="/x", family="causal")
    with django_assert_max_num_queries(8):
        client.get(reverse("run_list"))


@pytest.fixture
def staff_admin(admin_user):
    admin_user.is_staff = True
    admin_user.save()
    return admin_user


@pytest.mark.parametrize("name", ["languagemodel", "scoringrun", "prediction"])
def test_admins_see_every_evaluation_changelist(client, staff_admin, run, name):
    client.force_login(staff_admin)
    assert client.get(reverse(f"admin:evaluation_{name}_changelist")).status_code == 200


def test_registering_a_model_in_admin_queues_its_scoring(
    client, staff_admin, tiny_models, django_capture_on_commit_callbacks
):
    load_demo()
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=2)
    client.force_login(staff_admin)
    form = {
        "name": "admin-t5",
        "source": str(tiny_models["t5"]),
        "family": "seq2seq",
        "dtype": "auto",
        "prompt_format": "none",
        "batch_size": 8,
        "is_active": "on",
        "variants-TOTAL_FORMS": 0,
        "variants-INITIAL_FORMS": 0,
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:evaluation_languagemodel_add"), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    model = LanguageModel.objects.get(name="admin-t5")
    assert model.created_by == staff_admin
    assert {r.status for r in ScoringRun.objects.filter(variant__model=model)} == {JobStatus.SUCCEEDED}


def test_the_admin_cancels_runs_through_the_service(client, staff_admin, run):
    client.force_login(staff_admin)
    client.post(
        reverse("admin:evaluation_scoringrun_changelist"), {"action": "cancel", "_selected_action": [run.id]}
    )
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED
