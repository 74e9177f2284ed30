"""The one job lifecycle (core/jobs.py): every job kind is found, swept and recovered by the same code, and
every Celery task names its queue."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core import jobs
from core.celery import app
from evaluation.models import (
    LanguageModel,
    ModelCheck,
    ModelVariant,
    ReleaseExport,
    ScoringRun,
    SoftPrompt,
)

OUR_APPS = ("core.", "collection.", "evaluation.")


def test_every_task_of_ours_names_its_queue():
    app.loader.import_default_modules()
    ours = {name: task for name, task in app.tasks.items() if name.startswith(OUR_APPS)}
    assert {"evaluation.tasks.score_run", "evaluation.tasks.train_softprompt", "evaluation.sweep"} <= set(
        ours
    )
    assert {name: task.queue for name, task in ours.items() if task.queue not in ("gpu", "default")} == {}
    assert (
        ours["evaluation.tasks.score_run"].queue == ours["evaluation.tasks.train_softprompt"].queue == "gpu"
    )
    assert ours["evaluation.refresh_aggregates"].queue == "default"


def test_the_job_kinds_are_scoring_runs_trainings_model_checks_and_release_exports_each_with_a_task():
    assert set(jobs.job_kinds()) == {ScoringRun, SoftPrompt, ModelCheck, ReleaseExport}
    for kind in jobs.job_kinds():
        assert kind.job_task in app.tasks, kind


@pytest.fixture
def one_of_each(db):
    model = LanguageModel.objects.create(name="m", source="/nowhere", family="seq2seq")
    variant = ModelVariant.objects.create(model=model)
    stale = timezone.now() - timedelta(hours=1)
    return {
        "unsent run": ScoringRun.objects.create(variant=variant, trigger="manual"),
        "sent run": ScoringRun.objects.create(variant=variant, trigger="manual", sent_at=timezone.now()),
        "stalled training": SoftPrompt.objects.create(
            model=model, trigger="manual", config={}, status="running", heartbeat_at=stale, sent_at=stale
        ),
        "finished run": ScoringRun.objects.create(
            variant=variant, trigger="manual", status="succeeded", sent_at=timezone.now()
        ),
    }


def test_the_sweep_sends_the_unsent_and_the_stalled_of_every_kind_and_nothing_else(one_of_each, monkeypatch):
    sent = []
    monkeypatch.setattr(jobs, "enqueue", lambda kind, pk, countdown=None: sent.append((kind, pk)))
    assert jobs.sweep() == 2
    assert sorted(sent, key=str) == sorted(
        [(ScoringRun, one_of_each["unsent run"].id), (SoftPrompt, one_of_each["stalled training"].id)],
        key=str,
    )


def test_recovery_resends_every_active_job_and_delays_none_whose_worker_went_silent(one_of_each, monkeypatch):
    sent = {}
    monkeypatch.setattr(
        jobs, "enqueue", lambda kind, pk, countdown=None: sent.update({(kind, pk): countdown})
    )
    assert jobs.recover() == 3
    assert set(sent) == {
        (ScoringRun, one_of_each["unsent run"].id),
        (ScoringRun, one_of_each["sent run"].id),
        (SoftPrompt, one_of_each["stalled training"].id),
    }
    assert set(sent.values()) == {None}


def test_cancel_and_retry_are_the_same_for_every_kind_and_say_what_the_job_is(one_of_each):
    from core.errors import ApplicationError

    training = one_of_each["stalled training"]
    assert jobs.cancel(training).status == "cancelled"
    with pytest.raises(ApplicationError, match="Only a planned, queued or running training can be cancelled"):
        jobs.cancel(training)
    with pytest.raises(
        ApplicationError, match="Only a failed or cancelled run can be retried; this one is succeeded"
    ):
        jobs.requeue(one_of_each["finished run"])


def test_every_kind_declares_services_that_exist_and_its_task_is_made_from_the_declaration():
    for kind in jobs.job_kinds():
        declared = kind.job
        assert callable(declared.service("work")), kind
        failures = declared.service("failures")
        assert failures and all(issubclass(error, Exception) for error in failures), kind
        if declared.retry:
            assert callable(declared.service("retry")), kind
        task = app.tasks[declared.task]
        assert (task.queue, jobs.task_queue(kind)) == (declared.queue, declared.queue)


def test_a_kind_people_may_not_cancel_or_retry_from_its_row_says_so(db):
    from core.errors import ApplicationError

    model = LanguageModel.objects.create(name="m", source="/nowhere", family="seq2seq")
    check = ModelCheck.objects.create(model=model, trigger="manual", status="failed", error="no")
    with pytest.raises(ApplicationError, match="A check cannot be cancelled."):
        jobs.cancel(check)
    with pytest.raises(ApplicationError, match="A check cannot be retried."):
        jobs.retry(check)
    check.refresh_from_db()
    assert check.status == "failed"


def test_retry_follows_the_kind_the_same_run_or_a_new_training(one_of_each, monkeypatch):
    monkeypatch.setattr(jobs, "enqueue", lambda kind, pk, countdown=None: None)
    run = one_of_each["unsent run"]
    jobs.cancel(run)
    assert jobs.retry(run).id == run.id and run.status == "queued"
    training = jobs.cancel(one_of_each["stalled training"])
    retried = jobs.retry(training)
    assert retried.id != training.id and retried.status == "queued"
    with pytest.raises(
        Exception, match="Only a failed or cancelled training can be retried; this one is queued"
    ):
        jobs.retry(retried)
