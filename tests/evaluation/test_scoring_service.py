"""Scoring runs through the services, in process (Celery runs tasks eagerly here; see test_worker_scoring.py
for real worker processes)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from collection import services as collection_services
from collection.demo import load_demo
from collection.models import Collection, Instruction, Task
from collection.selectors import task_eval_sample_ids
from core import jobs
from core.errors import ApplicationError
from core.jobs import JobStatus
from evaluation.models import LanguageModel, Prediction, ScoringRun
from evaluation.runs import registry, scoring
from tests.evaluation.tiny import OutOfMemoryAbove

SAMPLE = 5  # eval instances per task, to keep tests quick


@pytest.fixture
def demo(db):
    load_demo()
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=SAMPLE)


def register(tiny_models, name="tiny-t5", source=None, family="seq2seq", **kwargs):
    # Checked here, in the foreground, as the commands do: the model is ready when this returns.
    kwargs.setdefault("check_now", True)
    return registry.language_model_register(
        name=name, source=str(source or tiny_models["t5"]), family=family, **kwargs
    )


def unsent_run(tiny_models, **kwargs) -> ScoringRun:
    """A registered model's first queued run, not sent to any worker: the test runs it."""
    model = register(tiny_models, score=False, **kwargs)
    return scoring.scoring_runs_for_variant(
        variant=scoring.base_variant(model), trigger="manual", enqueue=False
    )[0]


def approved_count() -> int:
    return Instruction.objects.filter(status="approved", task__benchmark__slug="demo").count()


def test_registering_a_model_scores_every_approved_phrasing(
    demo, tiny_models, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        model = register(tiny_models)
    runs = ScoringRun.objects.filter(variant__model=model)
    assert runs.count() == 4  # one per demo task
    assert all(run.status == JobStatus.SUCCEEDED for run in runs)
    assert Prediction.objects.count() == approved_count() * SAMPLE
    assert (
        sum(run.done_cells for run in runs)
        == sum(run.total_cells for run in runs)
        == Prediction.objects.count()
    )
    prediction = Prediction.objects.select_related("instance").first()
    assert len(prediction.logliks) == len(prediction.lengths) == len(prediction.instance.options)
    assert prediction.correct == (prediction.predicted == prediction.instance.gold)
    assert runs.first().config["model"]["source"] == str(tiny_models["t5"])


def test_scoring_the_same_work_again_writes_nothing(demo, tiny_models, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        model = register(tiny_models)
    before = Prediction.objects.count()
    assert scoring.scoring_runs_for_variant(variant=scoring.base_variant(model), trigger="manual") == []
    call_command("score", "--model", model.name)
    assert Prediction.objects.count() == before
    assert ScoringRun.objects.count() == 4


def test_approving_a_phrasing_scores_only_that_phrasing(
    demo, tiny_models, alice, carol, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        register(tiny_models)
    task = Task.objects.get(benchmark__slug="demo", slug="parity")
    instruction = collection_services.instruction_create(
        task=task,
        template="Is {number} an even number? Answer yes or no.",
        collection=Collection.objects.get(slug="crowd"),
        author=alice,
    )
    before = Prediction.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        collection_services.instruction_review(instruction=instruction, reviewer=carol, status="approved")
    run = ScoringRun.objects.get(instruction=instruction)
    assert (run.status, run.total_cells, run.cached_cells) == (JobStatus.SUCCEEDED, SAMPLE, 0)
    assert Prediction.objects.count() == before + SAMPLE
    assert set(Prediction.objects.filter(run=run).values_list("revision_id", flat=True)) == {
        instruction.current_revision_id
    }


def test_reapproving_an_unchanged_phrasing_costs_nothing(
    demo, tiny_models, carol, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        register(tiny_models)
    instruction = Instruction.objects.filter(task__slug="parity", status="approved").first()
    runs = ScoringRun.objects.count()
    collection_services.instruction_review(instruction=instruction, reviewer=carol, status="retired")
    with django_capture_on_commit_callbacks(execute=True):
        collection_services.instruction_review(instruction=instruction, reviewer=carol, status="approved")
    assert ScoringRun.objects.count() == runs


def test_the_evaluation_sample_is_fixed_seeded_and_sized(demo):
    task = Task.objects.get(benchmark__slug="demo", slug="parity")
    first = task_eval_sample_ids(task)
    assert len(first) == SAMPLE and first == task_eval_sample_ids(task)
    task.eval_sample_seed = 1
    assert task_eval_sample_ids(task) != first
    task.eval_sample_size = None
    assert len(task_eval_sample_ids(task)) == task.instances.filter(split="eval").count() == 100


def test_a_model_path_that_does_not_exist_fails_the_run_with_a_reason(
    demo, tiny_models, tmp_path, django_capture_on_commit_callbacks
):
    # A model that loaded when it was checked, whose files are gone by the time a run loads it. (A model that
    # does not load when it is registered is failed by its check, with no runs: tests/evaluation/test_registry.py.)
    model = register(tiny_models, score=False)
    LanguageModel.objects.filter(id=model.id).update(source=str(tmp_path / "missing"))
    with django_capture_on_commit_callbacks(execute=True):
        registry.language_model_score_missing(model=model)
    run = ScoringRun.objects.filter(variant__model=model).first()
    assert run.status == JobStatus.FAILED
    assert f"No model directory at {tmp_path / 'missing'}" in run.error
    # Fix the path and retry: the same run finishes.
    LanguageModel.objects.filter(id=model.id).update(source=str(tiny_models["t5"]))
    with django_capture_on_commit_callbacks(execute=True):
        jobs.requeue(run)
    run.refresh_from_db()
    assert (run.status, run.error, run.done_cells) == (JobStatus.SUCCEEDED, "", run.total_cells)


def test_only_one_delivery_runs_a_claimed_run(demo, tiny_models):
    run = unsent_run(tiny_models)
    held = uuid.uuid4()
    ScoringRun.objects.filter(id=run.id).update(
        status=JobStatus.RUNNING, heartbeat_at=timezone.now(), claimed_by_task="a", claim_token=held
    )
    assert scoring.scoring_run_execute(run_id=run.id, task_id="b") is None
    # The broker redelivering the live holder's own message (Redis does, after its visibility timeout) does
    # not take over either: that would restart a long training every time.
    assert scoring.scoring_run_execute(run_id=run.id, task_id="a") is None
    # The holder's own retry after a database interruption carries its claim and carries on.
    assert (
        scoring.scoring_run_execute(run_id=run.id, task_id="a", resume_token=str(held)).status
        == JobStatus.SUCCEEDED
    )


def test_a_run_whose_worker_went_silent_can_be_claimed(demo, tiny_models, settings):
    run = unsent_run(tiny_models)
    silent_since = timezone.now() - timedelta(seconds=settings.JOB_LEASE_SECONDS + 1)
    ScoringRun.objects.filter(id=run.id).update(
        status=JobStatus.RUNNING, heartbeat_at=silent_since, claimed_by_task="dead", claim_token=uuid.uuid4()
    )
    run = scoring.scoring_run_execute(run_id=run.id, task_id="fresh")
    assert (run.status, run.attempts) == (JobStatus.SUCCEEDED, 1)


def test_cancelling_stops_a_run_and_retrying_resumes_it(
    demo, tiny_models, django_capture_on_commit_callbacks
):
    run = unsent_run(tiny_models)
    jobs.cancel(run)
    assert scoring.scoring_run_execute(run_id=run.id, task_id="late") is None
    assert run.status == JobStatus.CANCELLED
    with pytest.raises(ApplicationError, match="Only a planned, queued or running run"):
        jobs.cancel(run)
    with django_capture_on_commit_callbacks(execute=True):
        jobs.requeue(run)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED
    with pytest.raises(ApplicationError, match="Only a failed or cancelled run"):
        jobs.requeue(run)


def test_a_run_cancelled_mid_way_stops_after_the_current_batch(demo, tiny_models):
    run = unsent_run(tiny_models, batch_size=2)

    def cancel_after_first_batch(done, total):
        if done > 0:
            ScoringRun.objects.filter(id=run.id).update(status=JobStatus.CANCELLED)

    scoring.scoring_run_execute(run_id=run.id, task_id="t", on_progress=cancel_after_first_batch)
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED
    assert 0 < Prediction.objects.filter(run=run).count() < run.total_cells


def test_causal_models_score_through_the_same_service(demo, tiny_models, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        register(
            tiny_models, name="tiny-llama", source=tiny_models["llama"], family="causal", prompt_format="chat"
        )
    assert Prediction.objects.count() == approved_count() * SAMPLE
    assert set(ScoringRun.objects.values_list("status", flat=True)) == {JobStatus.SUCCEEDED}


def test_a_bad_registration_is_refused_with_the_field_named(db, tiny_models):
    with pytest.raises(ApplicationError, match="family"):
        register(tiny_models, family="encoder")
    register(tiny_models, score=False)
    with pytest.raises(ApplicationError, match="already registered"):
        register(tiny_models, score=False)


def test_the_score_command_prints_the_plan_and_scores_in_the_foreground(demo, tiny_models, capsys):
    call_command("register_model", "tiny-t5", str(tiny_models["t5"]), "--family", "seq2seq", "--no-score")
    call_command("score", "--model", "tiny-t5", "--task", "parity", "--plan")
    cells = approved_count() // 4 * SAMPLE
    assert f"{cells} cells in scope, 0 already scored, {cells} to compute" in capsys.readouterr().out
    assert Prediction.objects.count() == 0
    call_command("score", "--model", "tiny-t5", "--task", "demo/parity")
    assert Prediction.objects.count() == cells
    call_command("score", "--model", "tiny-t5")
    assert f"{approved_count() * SAMPLE} cells in scope, {cells} already scored" in capsys.readouterr().out
    assert Prediction.objects.count() == approved_count() * SAMPLE


def test_the_score_command_names_what_is_wrong(demo):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No model named 'nope'"):
        call_command("score", "--model", "nope")


def test_recovery_resends_queued_runs(demo, tiny_models, django_capture_on_commit_callbacks):
    model = register(tiny_models, score=False)
    runs = scoring.scoring_runs_for_variant(
        variant=scoring.base_variant(model), trigger="manual", enqueue=False
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.recover() == len(runs)
    assert set(ScoringRun.objects.values_list("status", flat=True)) == {JobStatus.SUCCEEDED}


def test_out_of_memory_at_batch_size_one_fails_the_run_with_a_reason_and_its_retry_button_resumes_it(
    demo, tiny_models, carol, client, monkeypatch, django_capture_on_commit_callbacks
):
    run = unsent_run(tiny_models, batch_size=4)
    real_get = scoring._models().get

    def too_small_a_device(spec, device):  # the worker's model, on a device where not even one instance fits
        loaded = real_get(spec, device)
        return dataclasses.replace(loaded, model=OutOfMemoryAbove(loaded.model, limit=0))

    monkeypatch.setattr(scoring._models(), "get", too_small_a_device)
    run = scoring.scoring_run_execute(run_id=run.id, task_id="small-gpu")
    assert run.status == JobStatus.FAILED
    assert run.error == (
        "Out of memory on cpu even at batch size 1; use a smaller model, a lower precision "
        "or a device with more memory."
    )
    assert not Prediction.objects.filter(run=run).exists()

    client.force_login(carol)
    page = client.get(reverse("run_detail", args=[run.id])).content.decode()
    assert "even at batch size 1" in page and "Retry (scores only missing cells)" in page
    monkeypatch.undo()  # a device with more memory
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("run_retry", args=[run.id]))
    assert response.status_code == 302
    run.refresh_from_db()
    assert (run.status, run.error, run.attempts) == (JobStatus.SUCCEEDED, "", 2)
    assert Prediction.objects.filter(run=run).count() == run.total_cells > 0


def test_a_delivery_that_finds_the_database_down_before_its_claim_is_retried(demo, tiny_models, monkeypatch):
    from django.db import OperationalError

    from evaluation.tasks import score_run

    run = unsent_run(tiny_models)
    real_claim, calls = jobs.claim, []

    def claim_once_the_database_is_back(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise OperationalError("the database system is shutting down")
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(jobs, "claim", claim_once_the_database_is_back)
    # Not propagating, Celery applies the retry at once (its countdown is for real workers).
    score_run.apply(args=[run.id], throw=False)
    run.refresh_from_db()
    assert len(calls) == 2 and run.status == JobStatus.SUCCEEDED


def _database_error(message: str, sqlstate: str | None):
    """Django's OperationalError as psycopg's error becomes one: the server's SQLSTATE on its __cause__."""
    from django.db import OperationalError

    class ServerError(Exception):
        pass

    cause = ServerError(message)
    cause.sqlstate = sqlstate
    error = OperationalError(message)
    error.__cause__ = cause
    return error


def test_a_run_interrupted_by_a_lost_connection_is_handed_back_and_its_retry_resumes_it(
    demo, tiny_models, monkeypatch
):
    from evaluation.tasks import score_run

    run = unsent_run(tiny_models)
    real_heartbeat, calls = scoring._progress, []

    def heartbeat_lost_once(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise _database_error("server closed the connection unexpectedly", None)
        return real_heartbeat(*args, **kwargs)

    monkeypatch.setattr(scoring, "_progress", heartbeat_lost_once)
    with pytest.raises(jobs.DatabaseInterrupted, match="Database unavailable") as interrupted:
        scoring.scoring_run_execute(run_id=run.id, task_id="t")
    run.refresh_from_db()
    assert (run.status, run.claim_token) == (JobStatus.QUEUED, None)  # handed back
    assert interrupted.value.token
    score_run.apply(args=[run.id], throw=False)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED


def test_a_database_error_that_persists_fails_the_run_with_it_after_the_retries(
    demo, tiny_models, monkeypatch
):
    """A lost connection is retried for as long as it lasts; an error the server answers with (here a
    statement timeout) may never go away, so after ANSWERED_ERROR_RETRIES the run fails saying so."""
    from evaluation import tasks

    run = unsent_run(tiny_models)
    calls = []

    def statement_timeout(*args, **kwargs):
        calls.append(args)
        raise _database_error("canceling statement due to statement timeout", "57014")

    monkeypatch.setattr(jobs, "claim", statement_timeout)
    # Eager, each retry is applied at once; not propagating, a retry is a retry rather than an exception.
    # Set under its CELERY_ name, as core/celery.py reads settings (Celery 5.5 ignores the bare name there).
    conf = tasks.score_run.app.conf
    propagates, conf.CELERY_TASK_EAGER_PROPAGATES = conf.task_eager_propagates, False
    try:
        tasks.score_run.apply(args=[run.id])
    finally:
        conf.CELERY_TASK_EAGER_PROPAGATES = propagates
    run.refresh_from_db()
    assert len(calls) == jobs.ANSWERED_ERROR_RETRIES + 1
    assert run.status == JobStatus.FAILED
    assert run.error == "Database error after 9 attempts: canceling statement due to statement timeout"
    assert jobs.connection_lost(
        _database_error("terminating connection due to administrator command", "57P01")
    )
    assert jobs.connection_lost(_database_error("connection failed", None))


def test_a_retry_that_cannot_reach_the_broker_puts_the_run_back_in_the_outbox(demo, tiny_models, monkeypatch):
    from celery.exceptions import Reject

    from evaluation.tasks import score_run

    run = unsent_run(tiny_models)
    ScoringRun.objects.filter(id=run.id).update(sent_at=timezone.now())
    assert run.id not in jobs.to_sweep(ScoringRun)  # sent, and waiting in a healthy queue

    def connection_lost(*args, **kwargs):
        raise _database_error("server closed the connection unexpectedly", None)

    def broker_down_too(*args, **kwargs):
        raise Reject("Error 111 connecting to 127.0.0.1:6379. Connection refused.", requeue=False)

    monkeypatch.setattr(scoring, "_progress", connection_lost)
    monkeypatch.setattr(score_run, "retry", broker_down_too)
    score_run.apply(args=[run.id], throw=False)
    run.refresh_from_db()
    assert (run.status, run.sent_at) == (JobStatus.QUEUED, None)
    assert run.id in jobs.to_sweep(ScoringRun)
