"""The status page tells a busy worker from a missing one (core/worker_beats.py, core/worker_status.py); a
real worker's beats are checked in tests/evaluation/test_worker_lanes.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from core import worker_beats, worker_status
from core.models import WorkerBeat, WorkerPing
from evaluation.models import LanguageModel, ModelVariant, ScoringRun

pytestmark = pytest.mark.django_db


def beat(name: str, *, seconds_ago: float, task: str = "", args: str = "") -> WorkerBeat:
    seen = timezone.now() - timedelta(seconds=seconds_ago)
    return WorkerBeat.objects.create(
        name=name, queues="gpu,default,gpu-bulk", started_at=seen, seen_at=seen, task=task, task_args=args
    )


@pytest.fixture
def run(db) -> ScoringRun:
    model = LanguageModel.objects.create(name="m", source="/nowhere", family="seq2seq")
    variant = ModelVariant.objects.create(model=model)
    return ScoringRun.objects.create(variant=variant, trigger="manual", total_cells=100, done_cells=40)


def test_with_no_worker_seen_the_page_asks_whether_celery_runs(client):
    page = client.get(reverse("status")).content.decode()
    assert "No worker has been seen" in page


def test_a_worker_on_a_long_job_is_busy_and_says_which_even_between_two_chunks(client, run, settings):
    settings.SCORING_LEASE_SECONDS = 300
    # Its job heartbeat is fresh, though Celery's own heartbeats stopped while the task runs.
    beat("gpu-1@host", seconds_ago=200, task="evaluation.tasks.score_run", args=f"[{run.id}]")
    ScoringRun.objects.filter(id=run.id).update(
        status="running", worker="gpu-1@host", heartbeat_at=timezone.now()
    )
    (state,) = worker_status.worker_states()
    assert (state.state, state.doing) == ("busy", [run])

    # Between two chunks the run is queued again, yet the worker's task still names it.
    ScoringRun.objects.filter(id=run.id).update(status="queued")
    (state,) = worker_status.worker_states()
    assert (state.state, state.doing) == ("busy", [run])

    WorkerPing.objects.create()
    page = client.get(reverse("status")).content.decode()
    assert "busy" in page and f"Run {run.id} (m)" in page and "40 of 100 cells" in page
    assert "the workers are busy" in page and "Is <code>celery" not in page


def test_an_idle_worker_is_idle_until_its_beats_stop_and_a_clean_stop_is_stopped(run):
    beat("idle@host", seconds_ago=5)
    beat("gone@host", seconds_ago=worker_status.IDLE_SILENT_SECONDS + 5)
    beat("hung@host", seconds_ago=10_000, task="evaluation.tasks.score_run", args=f"[{run.id}]")
    stopped = beat("stopped@host", seconds_ago=60)
    stopped.stopped_at = timezone.now()
    stopped.save()
    states = {state.name: state.state for state in worker_status.worker_states()}
    assert states == {
        "idle@host": "idle",
        "gone@host": "silent",
        "hung@host": "silent",
        "stopped@host": "stopped",
    }


def test_a_worker_writes_its_beats_when_it_starts_runs_a_task_and_stops(monkeypatch):
    monkeypatch.setattr(worker_beats, "_me", None)
    worker_beats.beat()  # not a worker: nothing to write
    assert not WorkerBeat.objects.exists()
    worker_beats.worker_started(name="w@host", queues=["gpu", "gpu-bulk"])
    worker_beats.task_started(name="w@host", task="evaluation.tasks.score_run", args=(7,))
    row = WorkerBeat.objects.get()
    assert (row.queues, row.task, row.task_args) == ("gpu,gpu-bulk", "evaluation.tasks.score_run", "[7]")
    worker_beats.task_finished(name="w@host")
    worker_beats.worker_stopped()
    row.refresh_from_db()
    assert row.task == "" and row.stopped_at is not None
