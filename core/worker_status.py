"""What each Celery worker is doing, for the status page: its heartbeat row (core/worker_beats.py) and the
jobs it holds, which tells a busy worker from a missing one."""

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
    lease = timedelta(seconds=settings.SCORING_LEASE_SECONDS)
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
