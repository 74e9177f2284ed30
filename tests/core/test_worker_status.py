"""The status page tells a busy worker from a missing one (core/worker_beats.py, core/worker_status.py); a
real worker's beats are checked in tests/evaluation/test_worker_lanes.py."""

from __future__ import annotations

import os
import socket
import sys
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from core import jobs, worker_beats, worker_status
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
    settings.JOB_LEASE_SECONDS = 300
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


def test_a_job_a_command_runs_in_its_own_process_shows_as_running_by_that_process(client, run, monkeypatch):
    """The reported case: reproduce_study scores in its own process beside an idle worker, with more runs it
    queued for itself (never sent to a queue). The page names the command's process as the runner and says
    why the idle worker does not take the queued runs."""
    monkeypatch.setattr(sys, "argv", ["manage.py", "reproduce_study", "--split-seeds", "0"])
    beat("demo@host", seconds_ago=5)
    variant = run.variant
    for _ in range(3):
        ScoringRun.objects.create(variant=variant, trigger="cli", total_cells=10)  # sent_at empty: not sent
    pages = []

    def work(job, token):
        pages.append(client.get(reverse("status")).content.decode())
        jobs.finish(ScoringRun, job.pk, token, jobs.JobStatus.SUCCEEDED)

    jobs.execute(ScoringRun, run.id, work=work, failures=(), task_id="cli-1")  # no worker: this process
    (page,) = pages
    process = f"manage.py reproduce_study, pid {os.getpid()} on host {socket.gethostname()}"
    assert ScoringRun.objects.get(id=run.id).worker == process
    running = page.split('id="running-table"')[1].split("</table>")[0]
    assert f"Run {run.id} (m)" in running and f"process <code>{process}</code>" in running
    assert "Runs: 1 running, 3 queued" in page
    assert "3 runs are queued but never sent to a worker&#x27;s queue, so no worker will take them" in page


def test_a_job_a_worker_runs_shows_its_worker_by_name(client, run):
    beat("gpu-1@host", seconds_ago=5, task="evaluation.tasks.score_run", args=f"[{run.id}]")
    jobs.claim(ScoringRun, run.id, task_id="celery-1", worker="gpu-1@host")
    page = client.get(reverse("status")).content.decode()
    running = page.split('id="running-table"')[1].split("</table>")[0]
    assert f"Run {run.id} (m)" in running and "worker <code>gpu-1@host</code>" in running
    assert "silent" not in running and "not taken" not in page


def test_queued_jobs_with_no_live_worker_say_plainly_that_nothing_takes_them(client, run):
    ScoringRun.objects.filter(id=run.id).update(sent_at=timezone.now())  # in the broker's queue
    page = client.get(reverse("status")).content.decode()
    assert "1 run is queued and no worker is taking it: no worker has been heard from" in page
    assert "No job is running." in page

    # A worker that went silent is no taker either.
    beat("gone@host", seconds_ago=worker_status.IDLE_SILENT_SECONDS + 5)
    page = client.get(reverse("status")).content.decode()
    assert "1 run is queued and no worker is taking it" in page

    # A live worker that takes the run's queue: nothing to say.
    beat("gpu-1@host", seconds_ago=5)
    assert worker_status.queue_warnings(worker_status.worker_states()) == []


def test_queued_jobs_on_a_queue_no_live_worker_takes_say_which_queue(run):
    ScoringRun.objects.filter(id=run.id).update(sent_at=timezone.now(), lane="bulk")
    WorkerBeat.objects.create(
        name="light@host", queues="default", started_at=timezone.now(), seen_at=timezone.now()
    )
    (warning,) = worker_status.queue_warnings(worker_status.worker_states())
    assert warning.startswith("1 run is waiting on the gpu-bulk queue, which no live worker takes")
    assert "(they take: default)" in warning
