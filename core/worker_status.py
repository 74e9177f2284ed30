"""What each Celery worker is doing, for the status page: its heartbeat row (core/worker_beats.py) and the
jobs it holds, which tells a busy worker from a missing one. Also every running job with who runs it (a
worker, or a command's own process: core/jobs.py this_process), and whether queued jobs have a worker that
will take them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from core import jobs
from core.models import WorkerBeat

# An idle worker writes every BEAT_EVERY_SECONDS; one silent this long (a few missed beats) is taken to be gone.
IDLE_SILENT_SECONDS = 45


@dataclass
class WorkerState:
    beat: WorkerBeat
    state: str  # busy, idle, silent or stopped
    doing: list  # the jobs it holds now (rows of core.jobs kinds), for "what it is doing"

    @property
    def name(self) -> str:
        return self.beat.name


def worker_states(*, now: datetime | None = None) -> list[WorkerState]:
    """Every worker seen in the last day, with its state: busy (running a task, and heard from within a
    job's lease), idle (heard from within IDLE_SILENT_SECONDS), silent (neither: stopped without a word,
    killed, or stuck) or stopped (shut down cleanly)."""
    now = now or timezone.now()
    beats = list(WorkerBeat.objects.filter(seen_at__gte=now - timedelta(days=1)))
    held: dict[str, list] = {}
    kinds = {kind.job_task: kind for kind in jobs.job_kinds()}
    for kind in kinds.values():
        running = kind.objects.filter(status=jobs.JobStatus.RUNNING, worker__in=[b.name for b in beats])
        for job in running:
            held.setdefault(job.worker, []).append(job)
    for beat_row in beats:
        # A job between two chunks is queued, not running, yet its task is what the worker is on.
        job = _job_of_task(kinds, beat_row)
        if job is not None and job not in held.get(beat_row.name, []):
            held.setdefault(beat_row.name, []).append(job)
    lease = timedelta(seconds=settings.JOB_LEASE_SECONDS)
    states = []
    for beat_row in beats:
        doing = held.get(beat_row.name, [])
        fresh_beat = max([beat_row.seen_at] + [j.heartbeat_at for j in doing if j.heartbeat_at])
        if beat_row.stopped_at and not doing:
            state = "stopped"
        elif (beat_row.task or doing) and now - fresh_beat <= lease:
            state = "busy"
        elif not beat_row.task and now - beat_row.seen_at <= timedelta(seconds=IDLE_SILENT_SECONDS):
            state = "idle"
        else:
            state = "silent"
        states.append(WorkerState(beat=beat_row, state=state, doing=doing))
    return states


def _job_of_task(kinds: dict, beat_row: WorkerBeat):
    """The job a worker's current task works on: job tasks take its id first."""
    kind = kinds.get(beat_row.task)
    if kind is None:
        return None
    try:
        args = json.loads(beat_row.task_args or "[]")
    except ValueError:
        return None
    if not args or not isinstance(args[0], int):
        return None
    return kind.objects.filter(pk=args[0]).first()


@dataclass
class Backlog:
    noun: str  # "run", "training", "check"
    planned: int
    queued: int
    running: int


def backlog() -> list[Backlog]:
    """Jobs waiting and running, per kind (planned ones wait for an admin, not for a worker)."""
    rows = []
    for kind in jobs.job_kinds():
        counts = dict(
            kind.objects.filter(status__in=(jobs.JobStatus.PLANNED, *jobs.ACTIVE))
            .values_list("status")
            .annotate(n=models.Count("pk"))
            .values_list("status", "n")
        )
        rows.append(
            Backlog(
                noun=kind.job_noun,
                planned=counts.get(jobs.JobStatus.PLANNED, 0),
                queued=counts.get(jobs.JobStatus.QUEUED, 0),
                running=counts.get(jobs.JobStatus.RUNNING, 0),
            )
        )
    return rows


@dataclass
class RunningJob:
    job: object  # a row of a core.jobs kind
    runner: str  # the job's `worker`: a worker's node name, or a process ("manage.py score, pid 7 on host h")
    by_worker: bool  # runner is a Celery worker the page knows (it has a heartbeat row)
    silent: bool  # no heartbeat within the lease: taken to be dead, and handed on by the sweep


def running_jobs(*, now: datetime | None = None) -> list[RunningJob]:
    """Every running job of every kind, oldest claim first, with who runs it. A job a command runs in its own
    process (not through a worker) is here too: the workers' rows alone would show nobody working."""
    now = now or timezone.now()
    workers = set(WorkerBeat.objects.values_list("name", flat=True))
    lease = timedelta(seconds=settings.JOB_LEASE_SECONDS)
    rows = []
    for kind in jobs.job_kinds():
        for job in kind.objects.filter(status=jobs.JobStatus.RUNNING):
            silent = job.heartbeat_at is None or now - job.heartbeat_at > lease
            rows.append(
                RunningJob(job=job, runner=job.worker, by_worker=job.worker in workers, silent=silent)
            )
    return sorted(rows, key=lambda row: row.job.started_at or now)


def queue_warnings(states: list[WorkerState]) -> list[str]:
    """Plain sentences for queued jobs that nothing is taking: no worker heard from recently, live workers
    none of which takes the queue the jobs wait on, or jobs never sent to any queue (a command queued them to
    run in its own process, or the broker was down). Empty when every queued job has a live taker."""
    live = [state for state in states if state.state in ("busy", "idle")]
    taken = {queue for state in live for queue in state.beat.queues.split(",") if queue}
    queued: dict[str, int] = {}  # noun -> queued jobs
    unsent: dict[str, int] = {}  # noun -> queued jobs never sent to the broker
    untaken: dict[str, dict[str, int]] = {}  # queue -> noun -> sent jobs no live worker takes
    for kind in jobs.job_kinds():
        waiting = kind.objects.filter(status=jobs.JobStatus.QUEUED)
        count = waiting.count()
        if not count:
            continue
        queued[kind.job_noun] = count
        not_sent = waiting.filter(sent_at__isnull=True).count()
        if not_sent:
            unsent[kind.job_noun] = not_sent
        for queue, n in kind.queue_counts(waiting.filter(sent_at__isnull=False)).items():
            if queue not in taken:
                untaken.setdefault(queue, {})[kind.job_noun] = n
    warnings = []
    if queued and not live:
        warnings.append(
            f"{_counted(queued)} queued and no worker is taking {_them(queued)}: no worker has been heard "
            f"from in the last {IDLE_SILENT_SECONDS} s. Start one: celery -A core worker -Q gpu,default,gpu-bulk "
            "--pool solo."
        )
    elif live:
        takes = ", ".join(sorted(taken)) or "no queue"
        for queue, nouns in sorted(untaken.items()):
            warnings.append(
                f"{_counted(nouns)} waiting on the {queue} queue, which no live worker takes "
                f"(they take: {takes}). Start a worker with -Q {queue}."
            )
    if unsent:
        warnings.append(
            f"{_counted(unsent)} queued but never sent to a worker's queue, so no worker will take "
            f"{_them(unsent)}: a command queued {_them(unsent)} to run in its own process (score, "
            "train_softprompt and reproduce_study do; see Running jobs), or the broker could not be reached "
            "when it was saved (then the outbox sweep, celery -A core beat, or the next worker to start sends "
            f"{_them(unsent)})."
        )
    return warnings


def _one(nouns: dict[str, int]) -> bool:
    return sum(nouns.values()) == 1


def _them(nouns: dict[str, int]) -> str:
    return "it" if _one(nouns) else "them"


def _counted(nouns: dict[str, int]) -> str:
    """{"run": 3, "training": 1} -> "3 runs and 1 training are"; {"run": 1} -> "1 run is"."""
    parts = [f"{n} {noun}{'' if n == 1 else 's'}" for noun, n in nouns.items()]
    verb = "is" if _one(nouns) else "are"
    text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{text} {verb}"
